"""Data loading throughput: annotations, skeleton transforms, the DataLoader, RGB clip decoding.

    python benchmarks/bench_data.py [--quick] [--data runs/bench_data] [--annotations FILE] [--json OUT]

Sections (every figure is clips/s, higher is better; median of several timed passes after a
warm-up pass):
  annotations  read + validate a whole annotation pickle with `load_annotations`
  pipeline     `skeleton_pipeline` (T=32) on every clip: train/test mode, joint/bone stream
  loader       a DataLoader over `ClipDataset` (train pipeline, joint, batch 16) with 0 and 2
               workers; one epoch, worker start-up included (the data module does not keep
               workers between epochs)
  rgb          16 frames per clip (start_frame + uniform test indices) with `video.read_frames`;
               `cold` is the first pass, which builds each video's frame index, `warm` later
               passes; then `data.rgb.load_rgb_clip` (decode + resize + crop + normalise) to the
               light encoder's 96x96 (training crop) and MViTv2-S's 224x224 (test crop)
Data: a synthetic dataset (`generate_dataset`, imported with `import_miga_to_file`) cached under
--data, or your own annotation file with --annotations (videos are then whatever it points to).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from microgesture.data.formats.annotations import load_annotations, resolve_video_path
from microgesture.data.datasets import ClipDataset
from microgesture.data.samplers import EpochSampler
from microgesture.data.formats.miga import import_miga_to_file
from microgesture.data.synth import generate_dataset
from microgesture.data.transforms import UniformSample, skeleton_pipeline
from microgesture.data.video import read_frames
from microgesture.utils.io import write_text

REPO = Path(__file__).resolve().parents[1]
NUM_FRAMES = 32  # skeleton frames per clip, as in the default configs
RGB_FRAMES = 16  # RGB frames per clip, as MViTv2-S and the light RGB encoder take


# ----------------------------------------------------------------------------- machine


def machine() -> dict:
    """What the figures depend on: CPU, cores, torch and its threads, the load right now."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "loadavg": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def busy_note(m: dict) -> str:
    """A warning when other processes already use the cores: every figure will be pessimistic."""
    if m["loadavg"][0] < 0.75 * (m["cores"] or 1):
        return ""
    return ("\nWARNING: the machine is busy (1-min load >= 3/4 of the cores): figures are pessimistic and noisy; "
            "with more than one torch thread they can collapse 10x (try --threads 1)")


def describe(m: dict) -> str:
    load = " ".join(f"{x:.2f}" for x in m["loadavg"])
    return (f"machine: {m['cpu']}, {m['cores']} cores; python {m['python']}, torch {m['torch']}, "
            f"{m['threads']} torch threads; load average {load} (1/5/15 min); {m['date']}")


# ----------------------------------------------------------------------------- timing


def median_seconds(fn: Callable[[], object], repeats: int, budget: float) -> tuple[float, int]:
    """Median wall time of `fn` over up to `repeats` calls after one warm-up call.

    Stops early once `budget` seconds are spent, but never with fewer than 3 timed calls.
    """
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def row(section: str, case: str, clips: int, seconds: float, passes: int, note: str = "") -> dict:
    rate = clips / seconds if seconds > 0 else float("nan")
    r = {"section": section, "case": case, "clips_per_s": rate, "ms_per_clip": 1000.0 / rate,
         "clips": clips, "passes": passes, "load1": round(os.getloadavg()[0], 2), "note": note}
    print(f"  {section:11s} {case:40s} {rate:9.1f} clips/s  (load {r['load1']:.2f}) {note}", flush=True)
    return r


# ----------------------------------------------------------------------------- data


def synthetic_annotations(root: Path, subjects: int, videos: int, seconds: float, size: tuple[int, int]) -> Path:
    """Generate and import once; the folder name holds every setting so a changed one never reuses old data."""
    w, h = size
    folder = root / f"s{subjects}x{videos}_{seconds:g}s_{w}x{h}"
    ann = folder / "annotations.pkl"
    if ann.is_file():
        print(f"data: reusing {ann}")
        return ann
    t = time.perf_counter()
    summary = generate_dataset(folder / "data", subjects=subjects, videos_per_subject=videos, seconds=seconds,
                               size=size, overwrite=True)
    import_miga_to_file(folder / "data", ann, val_fraction=0.0)
    print(f"data: generated {summary.describe()} in {time.perf_counter() - t:.1f} s")
    return ann


# ----------------------------------------------------------------------------- sections


def bench_annotations(path: Path, repeats: int, budget: float) -> list[dict]:
    data = load_annotations(path)
    n = len(data["annotations"])
    sec, passes = median_seconds(lambda: load_annotations(path), repeats, budget)
    size_mb = path.stat().st_size / 2**20
    return [row("annotations", f"load_annotations ({size_mb:.1f} MB file)", n, sec, passes)]


def bench_pipelines(clips: list[dict], repeats: int, budget: float) -> list[dict]:
    rows = []
    cases = [("train", "joint", "miga35"), ("train", "bone", "miga35"), ("test", "joint", "miga35"),
             ("test", "bone", "miga35"), ("train", "joint", "imigue22")]
    for mode, stream, layout in cases:
        pipe = skeleton_pipeline(layout=layout, num_frames=NUM_FRAMES, stream=stream, train=mode == "train")

        def one_pass(pipe=pipe) -> None:
            rng = np.random.default_rng(0)
            for clip in clips:
                pipe(clip, rng)

        sec, passes = median_seconds(one_pass, repeats, budget)
        rows.append(row("pipeline", f"{mode} {stream} {layout} T={NUM_FRAMES}", len(clips), sec, passes))
    return rows


def bench_loader(clips: list[dict], size: int, batch: int, workers: list[int], epochs: int) -> list[dict]:
    """Whole epochs, worker start-up included; the clip list is repeated to `size` clips."""
    many = [clips[i % len(clips)] for i in range(max(size, batch))]
    pipe = skeleton_pipeline(layout="miga35", num_frames=NUM_FRAMES, stream="joint", train=True)
    dataset = ClipDataset(many, pipe, ["joint"], seed=0)
    rows = []
    for w in workers:
        sampler = EpochSampler(len(dataset), seed=0)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=w)
        times, first = [], []
        for epoch in range(epochs + 1):  # epoch 0 is the warm-up
            sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            for k, _ in enumerate(loader):
                if k == 0:
                    t_first = time.perf_counter() - t0
            if epoch > 0:
                times.append(time.perf_counter() - t0)
                first.append(t_first)
        note = f"first batch after {1000 * statistics.median(first):.0f} ms"
        rows.append(row("loader", f"DataLoader workers={w} batch={batch} train joint", len(dataset),
                        statistics.median(times), len(times), note))
    return rows


def rgb_relative(clip: dict) -> np.ndarray:
    """A clip's 16 RGB frames relative to its start: uniform test indices, as the pipeline samples them."""
    return UniformSample(RGB_FRAMES, "test")(dict(clip), None)["frame_inds"]


def rgb_indices(clip: dict) -> list[int]:
    """The same frames in the source video: start_frame + the relative indices."""
    return [int(clip["start_frame"]) + int(i) for i in rgb_relative(clip)]


def bench_rgb(data: dict, limit: int, repeats: int, budget: float) -> list[dict]:
    clips = [c for c in data["annotations"] if c.get("video_path")]
    if not clips:
        return [skipped("rgb", "read_frames", "the annotations name no videos")]
    step = max(1, len(clips) // limit)
    clips = clips[::step][:limit]  # spread over every video
    jobs = [(resolve_video_path(data, c), rgb_indices(c)) for c in clips]
    shape = read_frames(jobs[0][0], jobs[0][1][:1]).shape[1:3]
    t0 = time.perf_counter()
    for path, idx in jobs:  # first pass: each video's frame index is built on its first read
        read_frames(path, idx)
    cold = time.perf_counter() - t0
    videos = len({p for p, _ in jobs})
    rows = [row("rgb", f"read_frames {RGB_FRAMES}f {shape[1]}x{shape[0]} cold", len(jobs), cold, 1,
                f"first read of {videos} videos builds their frame index")]
    sec, passes = median_seconds(lambda: [read_frames(p, i) for p, i in jobs], repeats, budget)
    rows.append(row("rgb", f"read_frames {RGB_FRAMES}f {shape[1]}x{shape[0]} warm", len(jobs), sec, passes))
    return rows + bench_rgb_clip(data, clips, repeats, budget)


def bench_rgb_clip(data: dict, clips: list[dict], repeats: int, budget: float) -> list[dict]:
    """The full clip load of data/rgb.py: decode, resize the short side, crop, normalise."""
    try:
        from microgesture.data.transforms.rgb import load_rgb_clip
        from microgesture.models.base import KINETICS_MEAN, KINETICS_STD
    except ImportError as exc:  # an older tree, or no OpenCV
        return [skipped("rgb", "load_rgb_clip", f"not available ({exc})")]
    jobs = [(resolve_video_path(data, c), int(c["start_frame"]), rgb_relative(c), c["frame_dir"]) for c in clips]
    rows = []
    for size, train in ((96, True), (224, False)):  # the light encoder's training input, MViTv2-S's test input

        def one_pass(size=size, train=train) -> None:
            rng = np.random.default_rng(0)
            for path, start, inds, name in jobs:
                load_rgb_clip(path, start, inds, size=size, train=train, rng=rng, name=name, mean=KINETICS_MEAN,
                              std=KINETICS_STD)

        sec, passes = median_seconds(one_pass, repeats, budget)
        crop = "random crop" if train else "centre crop"
        rows.append(row("rgb", f"load_rgb_clip {RGB_FRAMES}f -> {size}x{size} {crop}", len(jobs), sec, passes,
                        f"short side to {round(size * 8 / 7)}, float32 normalised"))
    return rows


def skipped(section: str, case: str, why: str) -> dict:
    print(f"  {section:11s} {case:40s} skipped: {why}", flush=True)
    return {"section": section, "case": case, "clips_per_s": None, "ms_per_clip": None, "clips": 0,
            "passes": 0, "load1": round(os.getloadavg()[0], 2), "note": f"skipped: {why}"}


# ----------------------------------------------------------------------------- output


def table(rows: list[dict]) -> str:
    lines = ["| section | case | clips/s | ms/clip | clips | passes | load1 | note |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        rate = "-" if r["clips_per_s"] is None else f"{r['clips_per_s']:.1f}"
        ms = "-" if r["ms_per_clip"] is None else f"{r['ms_per_clip']:.3f}"
        lines.append(f"| {r['section']} | {r['case']} | {rate} | {ms} | {r['clips']} | {r['passes']} "
                     f"| {r['load1']:.2f} | {r['note']} |")
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 192x144, got {text!r}") from None
    return w, h


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and few passes: a smoke run of seconds")
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "bench_data", help="synthetic data cache")
    parser.add_argument("--annotations", type=Path, help="benchmark this annotation file instead of synthetic data")
    parser.add_argument("--size", type=parse_size, default=(192, 144), help="synthetic frame size WxH")
    parser.add_argument("--repeats", type=int, help="timed passes per case (default 7, quick 3)")
    parser.add_argument("--budget", type=float, help="seconds per case before stopping early (default 3)")
    parser.add_argument("--rgb-clips", type=int, help="RGB clips per pass (default 48, quick 6)")
    parser.add_argument("--loader-clips", type=int, help="clips per DataLoader epoch (default 1024, quick 64)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice; 1 with --quick)")
    parser.add_argument("--json", type=Path, help="also write the rows and the machine to this JSON file")
    args = parser.parse_args(argv)
    if args.quick and args.threads is None:
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    budget = args.budget if args.budget is not None else (0.5 if quick else 3.0)

    start = machine()
    print(describe(start) + busy_note(start), flush=True)
    if args.annotations is not None:
        ann = args.annotations
    elif quick:
        ann = synthetic_annotations(args.data, 2, 1, 12.0, args.size)
    else:
        ann = synthetic_annotations(args.data, 6, 2, 45.0, args.size)
    data = load_annotations(ann)
    clips = data["annotations"]
    print(f"data: {ann}: {len(clips)} clips, {sum(c['total_frames'] for c in clips)} frames", flush=True)

    rows = bench_annotations(ann, repeats, budget)
    rows += bench_pipelines(clips, repeats, budget)
    rows += bench_loader(clips, args.loader_clips or (64 if quick else 1024), 16, [0, 2], 1 if quick else 3)
    rows += bench_rgb(data, args.rgb_clips or (6 if quick else 48), repeats, budget)

    end = machine()
    print(f"\nstart: {describe(start)}\nend:   {describe(end)}{busy_note(end)}\n")
    print(table(rows))
    if args.json is not None:
        report = {"script": "bench_data", "argv": sys.argv[1:], "annotations": str(ann), "machine_start": start,
                  "machine_end": end, "rows": rows}
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
