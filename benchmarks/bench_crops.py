"""Skeleton-guided crops against whole-frame RGB: extraction frames/s and RGB-stream training clips/s.

    python benchmarks/bench_crops.py [--quick] [--data runs/bench_crops] [--json OUT] [--threads 1]

Sections (both sides measured in one process, interleaved pass by pass; medians of the passes):
  extract  frames/s of one clip's RGB input at test time, decoding included: the whole frame
           (`RGBClip`: decode, resize, centre crop, normalise) against the crops (`CropBoxes` on
           the clip's skeleton, `CropFrames` decode, `TileCrops`), 8 frames at the demo's 96x96
           (2x2 tiles of 48) and 16 frames at MViTv2-S's 224x224 (tiles of 112); plain decoding
           of the same frames as the reference
  train    clips/s of one RGB-stream training step (DataLoader over `ClipDataset` with the
           training pipeline and its appearance augmentation, then forward, backward and AdamW on
           the light encoder) at the demo's size, whole frame against crops
Figures on a shared machine are noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import describe, machine, synthetic_annotations  # noqa: E402

from microgesture.data.datasets import ClipDataset  # noqa: E402
from microgesture.data.formats.annotations import load_annotations  # noqa: E402
from microgesture.data.transforms.pipelines import VideoAugment, VideoInput, build_pipeline  # noqa: E402
from microgesture.models.base import KINETICS_MEAN, KINETICS_STD  # noqa: E402
from microgesture.models.light_rgb import build_light_rgb  # noqa: E402
from microgesture.utils.io import write_text  # noqa: E402

AUGMENT = VideoAugment(box_jitter=0.1)  # configs/synthetic/rgb_crops.yaml
DEMO = dict(frames=8, size=96, width=16, batch=16)  # the demo's RGB stream (apps/crops_demo.py)


def pipeline(modality: str, frames: int, size: int, train: bool, root: str | None):
    augment = AUGMENT if modality != "rgb" else replace(AUGMENT, erase_clothing=0.0)  # crops only
    video = {modality: VideoInput(frames, size, KINETICS_MEAN, KINETICS_STD, augment=augment)}
    return build_pipeline([modality], layout="miga35", num_frames=32, train=train, video=video, video_root=root)


def decode_only(root: str | None, frames: int):
    from microgesture.data.transforms.crops import CropFrames
    from microgesture.data.transforms.core import Compose
    from microgesture.data.transforms.rgb import VideoFile
    from microgesture.data.transforms.sampling import UniformSample

    return Compose([UniformSample(32, "test"), VideoFile(root), CropFrames(frames)])


def interleaved(cases: dict, passes: int) -> dict[str, float]:
    """Median seconds of each case's pass, the cases run in turn within every pass (one warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for k in range(passes + 1):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            if k:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_extract(clips: list[dict], root: str | None, passes: int) -> list[dict]:
    rows = []
    for frames, size in ((8, 96), (16, 224)):
        cases = {
            f"decode only {frames}f": decode_only(root, frames),
            f"whole frame {frames}x{size}x{size}": pipeline("rgb", frames, size, False, root),
            f"crops {frames}x{size}x{size} (tiles {size // 2})": pipeline("rgb_crops", frames, size, False, root),
        }
        runs = {name: (lambda p=p: [p(dict(c)) for c in clips]) for name, p in cases.items()}
        seconds = interleaved(runs, passes)
        base = seconds[f"whole frame {frames}x{size}x{size}"]
        for name, sec in seconds.items():
            rows.append({"section": "extract", "case": name, "per_s": frames * len(clips) / sec, "unit": "frames/s",
                         "vs_whole_frame": base / sec})
    return rows


def bench_train(clips: list[dict], root: str | None, batches: int, passes: int) -> list[dict]:
    f, s, width, batch = DEMO["frames"], DEMO["size"], DEMO["width"], DEMO["batch"]
    picked = [clips[i % len(clips)] for i in range(batch * batches)]
    steps = {}
    for modality in ("rgb", "rgb_crops"):
        data = ClipDataset(picked, pipeline(modality, f, s, True, root), [modality], seed=0)
        torch.manual_seed(0)
        net = build_light_rgb(32, width=width, depth=3)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def epoch(data=data, net=net, opt=opt, modality=modality) -> None:
            for b in DataLoader(data, batch_size=batch, num_workers=0):
                loss = torch.nn.functional.cross_entropy(net(b[modality]), b["label"].clamp(min=0))
                opt.zero_grad()
                loss.backward()
                opt.step()

        steps[f"{'whole frame' if modality == 'rgb' else 'crops'} {f}x{s}x{s}, light w{width}"] = epoch
    seconds = interleaved(steps, passes)
    base = next(iter(seconds.values()))
    return [{"section": "train", "case": name, "per_s": len(picked) / sec, "unit": "clips/s",
             "vs_whole_frame": base / sec} for name, sec in seconds.items()]


def table(rows: list[dict]) -> str:
    lines = ["| section | case | rate | vs whole frame |", "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['section']} | {r['case']} | {r['per_s']:.1f} {r['unit']} | {r['vs_whole_frame']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("runs/bench_crops"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--quick", action="store_true", help="a few clips and one pass: checks the script runs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = machine()
    print(describe(start))
    ann = synthetic_annotations(args.data, 2 if args.quick else 4, 1, 8.0 if args.quick else 30.0, (192, 144))
    data = load_annotations(ann)
    root = data["meta"].get("video_root")
    clips = data["annotations"][: 4 if args.quick else 24]
    passes = 1 if args.quick else 3
    rows = bench_extract(clips, root, passes) + bench_train(clips, root, 1 if args.quick else 3, passes)
    text = f"{describe(start)}\n\n{table(rows)}\n"
    print("\n" + table(rows))
    if args.json:
        write_text(args.json, json.dumps({"machine_start": start, "machine_end": machine(), "rows": rows}, indent=2))
    else:
        write_text(args.data / "bench_crops.md", text)


if __name__ == "__main__":
    main()
