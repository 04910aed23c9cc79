"""The real datasets' size: every stage from `data import miga` to online recognition, at 4 sizes up to iMiGUE's.

    python benchmarks/bench_scale.py [--quick] [--out runs/bench_scale] [--steps 32] [--json OUT] [--md OUT]
                                     [--plot OUT] [--replot JSON]

iMiGUE has 18,499 clips in 359 videos (72 subjects, 2,092 minutes at 25 fps: 8,741 frames a
video on average). Nothing in the project had run at that size; this script builds skeleton-only
synthetic datasets of

    1x  = 1/32 of iMiGUE (578 clips, 11 videos: the size of the embedded synthetic dataset, 596 clips)
    4x  = 1/8  (2,312 clips, 45 videos)
    16x = 1/2  (9,250 clips, 180 videos)
    32x = the full iMiGUE size (18,499 clips, 359 videos, 3.1 M skeleton frames, about 1.9 GB of CSV)

and measures each stage in a process of its own, which reports its peak resident memory
(VmHWM; DataLoader worker processes, forked from it, are not included):

  generate   (not a goal) writing the MiGA folders: no video is rendered. 24 synthetic videos
             (`data.synth`: subjects, motions, detector noise; 45 s each at 1280x720) are formatted
             to CSV text once; each dataset video (5.8 min on average, length drawn 0.5-1.5x) is a
             chain of those pool videos, its label rows the pool's gesture segments that fall inside,
             subsampled to iMiGUE's 51.5 clips a video. `videos.csv` (72 subjects at full size,
             iMiGUE's win:lose ratio) and `synth.json` (1280x720, 25 fps) as the generator writes them.
  import     `microgesture data import miga SRC --out FILE` (the command line, as a subprocess; its
             wall time includes the interpreter's start); the annotation file's size
  load       `load_annotations` (restricted unpickling + validation of every clip)
  train      the project's training entry point (`train.run.fit`) with the shipped joint config
             `configs/synthetic/agcn_joint.yaml` (2s-AGCN joint stream, c16, T=32, batch 16, miga35) and
             `data.num_workers: auto`. CAPPED: `--steps` training steps (and 4 validation batches)
             per size; the epoch time is extrapolated linearly: first step + mean later step x
             batches an epoch. The data path is measured in full and honestly at every size: one
             whole epoch of the training DataLoader alone (same dataset, sampler, workers, no model),
             and inside the capped fit, the time each step waited for its batch (a callback).
             `model/data` = the model's time for an epoch (step time less the wait, x batches)
             over the DataLoader's time for the same epoch: the goal is >= 3.
  evaluate   `train.run.evaluate` of the trained checkpoint on the whole test split (not capped)
  online_windows, online
             one untrimmed skeleton stream, a one-video MiGA folder made like the others (every
             gesture labelled) and imported with `--protocol none`: 30 minutes at 25 fps at the full
             size, proportionally shorter at the smaller sizes (1x: 56 s), so these exponents are
             the growth in a video's length (`--online-minutes` sets the full-size length).
             online_windows: `online windows` (data/windows.py: labelled training windows, 32
             frames, stride 8). online: what `online evaluate` does for one video (apps/online.py):
             read the whole sequence from the annotation file's video record, windows (stride 4),
             the trained checkpoint's probabilities, per-frame probabilities and segment decoding
             (eval/segments.py). No video: `analyze`'s pose extraction is not part of it
             (docs/analyze.md measures that).

Then a markdown table and a JSON file of every figure, and a log-log plot (PNG) of time and peak
memory against the clip count with each stage's exponent: least squares of log y on log x over
the sizes, x being the stage's own work (all clips for import and load, the training split's
clips for train_epoch and data_epoch, the test split's for evaluate, the stream's frames for the
online stages; the time exponent against the dataset's clips is shown beside it). Goals: every
exponent <= 1.1; the full-size import under 2 minutes and 4 GB; the model/data ratio >= 3 at
every size. `--quick` runs two tiny sizes (3 and 6 short videos) in
well under a minute: a smoke run, its figures mean nothing.

Datasets are generated under `--out` (deleted after each size unless `--keep`; about 2.5 GB at
the full size). The whole default run took 14 minutes on the 2-core development machine while
others used it (load 4-7). Figures and what was fixed on the way: docs/benchmarks.md, "The real
datasets' size".
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

FULL_CLIPS, FULL_VIDEOS, FULL_SUBJECTS, FULL_MINUTES = 18_499, 359, 72, 2092
FPS = 25
FRAMES_PER_VIDEO = round(FULL_MINUTES * 60 * FPS / FULL_VIDEOS)  # 8,741
FRAME_SIZE = (1280, 720)  # (w, h) of iMiGUE's videos: the skeleton's pixel coordinates
POOL_VIDEOS = 24
POOL_SECONDS = 45.0
CONFIG = REPO / "configs" / "synthetic" / "agcn_joint.yaml"
DEFAULT_STEPS = 32
VAL_BATCHES = 4
ONLINE_STRIDE = 4


# ----------------------------------------------------------------------------- sizes


@dataclass
class Size:
    name: str
    fraction: float  # of iMiGUE
    videos: int
    clips: int
    subjects: int
    frames_per_video: int
    online_frames: int

    @property
    def folder(self) -> str:
        return self.name.split(" ")[0]


def make_sizes(quick: bool, online_minutes: float) -> list[Size]:
    if quick:
        return [Size("q1", 3 / FULL_VIDEOS, 3, 24, 3, 750, 1500), Size("q2", 6 / FULL_VIDEOS, 6, 48, 3, 750, 3000)]
    out = []
    for name, frac in (("1x", 1 / 32), ("4x", 1 / 8), ("16x", 1 / 2), ("32x (full)", 1.0)):
        out.append(Size(name, frac, max(3, round(FULL_VIDEOS * frac)), round(FULL_CLIPS * frac),
                        max(3, round(FULL_SUBJECTS * frac)), FRAMES_PER_VIDEO,
                        round(online_minutes * 60 * FPS * frac)))
    return out


# ----------------------------------------------------------------------------- generation


class Pool:
    """Synthetic skeleton videos formatted to `_light_hand.csv` text once, chained into longer ones."""

    def __init__(self, seed: int, videos: int = POOL_VIDEOS, seconds: float = POOL_SECONDS):
        from microgesture.data.synth.generate import synth_video
        from microgesture.data.synth.schedule import plan_dataset
        from microgesture.domain.classes import raw_from_class_index

        self.rows: list[list[str]] = []
        self.segments: list[list[tuple[int, int, int]]] = []
        for plan in plan_dataset(seed, videos, 1, seconds):
            sv = synth_video(plan, seed, FRAME_SIZE)
            flat = sv.detections().reshape(sv.num_frames, -1)
            # as miga.write_skeleton writes them: 6 significant digits, exact zeros as "0"
            self.rows.append([",".join(f"{v:.6g}" for v in r) for r in flat])
            self.segments.append([(raw_from_class_index(c), s, e) for c, s, e in sv.segments])

    def chain(self, frames: int, rng: np.random.Generator) -> tuple[list[str], list[tuple[int, int, int]]]:
        """`frames` rows (pool videos one after another, in a random order) and the segments inside them."""
        rows: list[str] = []
        segments: list[tuple[int, int, int]] = []
        order = rng.permutation(len(self.rows))
        k = 0
        while len(rows) < frames:
            p = int(order[k % len(order)])
            k += 1
            take = min(len(self.rows[p]), frames - len(rows))
            off = len(rows)
            rows.extend(self.rows[p][:take])
            segments.extend((raw, s + off, e + off) for raw, s, e in self.segments[p] if e < take)
        return rows, segments


def write_csv_rows(path: Path, rows: list[str]) -> int:
    text = "\n".join([f"{i},{r}" for i, r in enumerate(rows)]) + "\n"
    data = text.encode("ascii")
    path.write_bytes(data)
    return len(data)


def generate(size: Size, root: Path, pool: Pool, seed: int) -> dict:
    """The MiGA folders of one size under root/miga, and root/stream_light_hand.csv (the online stream)."""
    rng = np.random.default_rng([seed, size.videos])
    src = root / "miga"
    if root.exists():
        shutil.rmtree(root)
    src.mkdir(parents=True)
    lengths = rng.uniform(0.5, 1.5, size.videos)
    lengths = np.maximum(64, np.round(lengths / lengths.mean() * size.frames_per_video)).astype(int)
    share = lengths / lengths.sum() * size.clips  # clips per video, in proportion to its length, summing exactly
    per_video = np.floor(share).astype(int)
    per_video[np.argsort(share - per_video)[::-1][: size.clips - per_video.sum()]] += 1
    subjects = 1 + (np.arange(size.videos) * size.subjects) // size.videos
    lose = set(rng.choice(size.videos, round(size.videos * 101 / 359), replace=False).tolist())
    csv_bytes = written = 0
    for v in range(size.videos):
        vid = v + 1
        rows, segments = pool.chain(int(lengths[v]), rng)
        want = min(int(per_video[v]), len(segments))
        keep = np.sort(rng.choice(len(segments), want, replace=False))
        written += want
        folder = src / f"{vid:04d}"
        folder.mkdir()
        (folder / f"{vid:04d}_label.csv").write_text("".join(f"{segments[i][0]},{segments[i][1]},{segments[i][2]}\n"
                                                             for i in keep))
        csv_bytes += write_csv_rows(folder / f"{vid:04d}_light_hand.csv", rows)
    (src / "videos.csv").write_text("video_id,subject_id,emotion\n" + "".join(
        f"{v + 1},{subjects[v]},{'lose' if v in lose else 'win'}\n" for v in range(size.videos)))
    (src / "synth.json").write_text(json.dumps({
        "generator": "benchmarks/bench_scale.py", "seed": seed, "width": FRAME_SIZE[0], "height": FRAME_SIZE[1],
        "fps": FPS, "video": False, "num_videos": size.videos, "num_clips": written,
        "num_frames": int(lengths.sum())}, indent=2) + "\n")
    # The online stream: one untrimmed video of its own (every gesture labelled), MiGA layout too.
    stream_rows, stream_segments = pool.chain(size.online_frames, rng)
    folder = root / "stream" / "0001"
    folder.mkdir(parents=True)
    (folder / "0001_label.csv").write_text("".join(f"{r},{s},{e}\n" for r, s, e in stream_segments))
    write_csv_rows(folder / "0001_light_hand.csv", stream_rows)
    (root / "stream" / "synth.json").write_text(json.dumps({"width": FRAME_SIZE[0], "height": FRAME_SIZE[1],
                                                             "fps": FPS}) + "\n")
    return {"frames": int(lengths.sum()), "csv_bytes": csv_bytes, "clips_written": written}


# ----------------------------------------------------------------------------- children


def peak_mib() -> float:
    """This process's peak resident memory: VmHWM of /proc/self/status (ru_maxrss elsewhere).

    Not ru_maxrss on Linux: a child started by a process keeps that process's high-water mark
    across exec, so it would report at least the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# The command line as a user runs it, reporting its own peak memory on the way out.
CLI = ("import sys\nfrom microgesture.cli import main\ntry:\n    rc = main(sys.argv[1:])\nfinally:\n"
       "    sys.path.insert(0, {here!r})\n    from bench_scale import peak_mib\n"
       "    print('PEAK_MIB', peak_mib(), flush=True)\nsys.exit(rc)")


def run_child(argv: list[str], log: Path) -> tuple[dict, float, float]:
    """Run a process; (its RESULT json or {}, wall seconds, its peak RSS in MiB as it reported it)."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(argv, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {proc.returncode}; log {log}:\n{text[-3000:]}")
    result, peak = {}, float("nan")
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        elif line.startswith("PEAK_MIB "):
            peak = float(line.split()[1])
    return result, wall, peak


def child_load(a: dict) -> dict:
    from microgesture.data.formats.annotations import load_annotations

    t0 = time.perf_counter()
    data = load_annotations(a["ann"])
    return {"seconds": time.perf_counter() - t0, "clips": len(data["annotations"]),
            "splits": {k: len(v) for k, v in data["split"].items()}}


def _config(a: dict):
    from microgesture.train.config import load_config

    sets = [f"data.annotations={a['ann']}", "data.synthetic=null", "data.num_workers=auto", "trainer.max_epochs=1",
            "trainer.progress_bar=false", "trainer.log_every_n_steps=1000"]
    return load_config(a["config"], sets)


def child_train(a: dict) -> dict:
    import lightning as L
    import torch

    from microgesture.train.datamodule import loader_workers
    from microgesture.train.run import data_module, fit

    cfg = _config(a)

    class StepTimes(L.Callback):
        """Per training step: the wait for its batch (previous step's end -> this step's start) and its whole time."""

        def __init__(self):
            self.waits, self.steps, self.last = [], [], None

        def on_train_epoch_start(self, trainer, module):
            self.last = time.perf_counter()

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.waits.append(time.perf_counter() - self.last)

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            now = time.perf_counter()
            self.steps.append(now - self.last)
            self.last = now

    # The data path alone: one whole epoch of the same training DataLoader, no model.
    dm = data_module(cfg, progress=False)
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.train_dataloader()
    t0 = time.perf_counter()
    first = None
    clips = 0
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        clips += int(batch["label"].shape[0])
    data_epoch = time.perf_counter() - t0
    batches = len(loader)
    del loader, dm
    gc.collect()

    timer = StepTimes()
    t0 = time.perf_counter()
    result = fit(cfg, Path(a["run"]), callbacks=[timer], limit_train_batches=a["steps"],
                 limit_val_batches=VAL_BATCHES)
    fit_s = time.perf_counter() - t0
    steps, waits = np.array(timer.steps), np.array(timer.waits)
    later = steps[1:] if len(steps) > 1 else steps
    step_s = float(later.mean())
    compute_s = float((later - waits[1:len(steps)]).mean()) if len(steps) > 1 else float(steps[0] - waits[0])
    return {
        "fit_seconds": fit_s, "steps": len(steps), "first_step_s": float(steps[0]), "step_s": step_s,
        "compute_s": compute_s, "wait_share": float(waits[1:].sum() / later.sum()) if len(steps) > 1 else
        float(waits[0] / steps[0]), "batches_per_epoch": batches, "train_clips": clips,
        "epoch_s_extrapolated": float(steps[0] + step_s * (batches - 1)),
        "model_epoch_s": compute_s * batches, "data_epoch_s": data_epoch, "data_first_batch_s": first,
        "data_clips_per_s": clips / data_epoch, "workers": loader_workers(cfg.data.num_workers),
        "threads": torch.get_num_threads(), "checkpoint": str(result.last_checkpoint),
    }


def child_evaluate(a: dict) -> dict:
    from microgesture.train.run import evaluate

    cfg = _config(a)
    t0 = time.perf_counter()
    metrics = evaluate(cfg, a["checkpoint"], Path(a["eval_out"]), device="cpu")
    seconds = time.perf_counter() - t0
    clips = len((Path(a["eval_out"]) / "scores.csv").read_text().splitlines()) - 1
    return {"seconds": seconds, "clips": clips, "top1": metrics.get("top1")}


def child_windows(a: dict) -> dict:
    from microgesture.data.windows import write_window_annotations

    t0 = time.perf_counter()
    counts = write_window_annotations(a["stream"], a["out"], length=32, stride=8)
    return {"seconds": time.perf_counter() - t0, **{k: v for k, v in counts.items() if k != "classes"}}


def child_online(a: dict) -> dict:
    """What `online evaluate` does for one video, stage by stage (apps/online.py)."""
    from microgesture.apps.online import decode_options, load_online_model, window_scores
    from microgesture.data.formats.annotations import load_annotations
    from microgesture.data.formats.sequences import video_sequence
    from microgesture.eval.segments import decode, frame_probabilities

    t0 = time.perf_counter()
    model = load_online_model(a["checkpoint"], device="cpu")
    t1 = time.perf_counter()
    data = load_annotations(a["stream"])
    seq = video_sequence(data, data["videos"][0], model.layout)
    t2 = time.perf_counter()
    starts, length, probs = window_scores(model, seq, stride=ONLINE_STRIDE)
    t3 = time.perf_counter()
    frames = frame_probabilities(probs, starts, length, seq.num_frames)
    segments = decode(frames, decode_options(model, seq.fps))
    t4 = time.perf_counter()
    return {"seconds": t4 - t1, "model_s": t1 - t0, "read_s": t2 - t1, "windows_s": t3 - t2, "decode_s": t4 - t3,
            "frames": seq.num_frames, "windows": len(starts), "segments": len(segments),
            "realtime": seq.num_frames / FPS / (t4 - t1)}


CHILDREN = {"load": child_load, "train": child_train, "evaluate": child_evaluate, "windows": child_windows,
            "online": child_online}


def child_main(stage: str, payload: str) -> None:
    result = CHILDREN[stage](json.loads(payload))
    print("RESULT " + json.dumps(result), flush=True)
    print("PEAK_MIB", peak_mib(), flush=True)


# ----------------------------------------------------------------------------- one size


def measure(size: Size, out: Path, pool: Pool, args: argparse.Namespace) -> dict:
    root = out / size.folder
    logs = root.parent / f"{size.folder}_logs"
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir(parents=True)
    rec: dict = {"size": size.name, **asdict(size)}
    print(f"\n== {size.name}: {size.clips} clips, {size.videos} videos, {size.subjects} subjects", flush=True)

    t0 = time.perf_counter()
    rec["generate"] = generate(size, root, pool, args.seed)
    rec["generate"]["seconds"] = time.perf_counter() - t0
    print(f"  generate  {rec['generate']['seconds']:7.1f} s  {rec['generate']['frames']:,} frames, "
          f"{rec['generate']['csv_bytes'] / 2**30:.2f} GiB of skeleton CSV", flush=True)

    ann = root / "annotations.pkl"
    cli = [sys.executable, "-c", CLI.format(here=str(Path(__file__).resolve().parent))]
    _, wall, peak = run_child(cli + ["data", "import", "miga", str(root / "miga"), "--out", str(ann),
                                     "--val-fraction", "0.2"], logs / "import.log")
    rec["import"] = {"seconds": wall, "peak_mib": peak, "file_mib": ann.stat().st_size / 2**20}
    print(f"  import    {wall:7.1f} s  peak {peak:7.0f} MiB  file {rec['import']['file_mib']:.0f} MiB", flush=True)

    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    common = {"ann": str(ann), "config": str(args.config)}
    res, wall, peak = run_child(me + ["load", json.dumps(common)], logs / "load.log")
    rec["load"] = {**res, "peak_mib": peak, "wall": wall}
    print(f"  load      {res['seconds']:7.2f} s  peak {peak:7.0f} MiB  splits {res['splits']}", flush=True)

    run = root / "run"
    res, wall, peak = run_child(me + ["train", json.dumps({**common, "run": str(run), "steps": args.steps})],
                                logs / "train.log")
    rec["train"] = {**res, "peak_mib": peak, "wall": wall}
    ratio = res["model_epoch_s"] / res["data_epoch_s"]
    rec["train"]["model_over_data"] = ratio
    print(f"  train     {res['steps']} steps: {res['step_s']:.3f} s/step ({res['wait_share']:.1%} waiting for data); "
          f"epoch ({res['batches_per_epoch']} batches) ~{res['epoch_s_extrapolated']:.0f} s extrapolated; "
          f"DataLoader alone {res['data_epoch_s']:.1f} s ({res['data_clips_per_s']:.0f} clips/s, "
          f"{res['workers']} worker(s)); model/data {ratio:.1f}x; peak {peak:.0f} MiB", flush=True)

    ckpt = res["checkpoint"]
    res, wall, peak = run_child(me + ["evaluate", json.dumps({**common, "checkpoint": ckpt,
                                                               "eval_out": str(root / "eval")})], logs / "eval.log")
    rec["evaluate"] = {**res, "peak_mib": peak, "wall": wall}
    print(f"  evaluate  {res['seconds']:7.1f} s  {res['clips']} test clips  peak {peak:.0f} MiB", flush=True)

    stream = root / "stream.pkl"
    _, wall, peak = run_child(cli + ["data", "import", "miga", str(root / "stream"), "--out", str(stream),
                                     "--protocol", "none"], logs / "stream_import.log")
    rec["stream_import"] = {"seconds": wall, "peak_mib": peak}
    res, wall, peak = run_child(me + ["windows", json.dumps({"stream": str(stream), "out": str(root / "windows.pkl")})],
                                logs / "windows.log")
    rec["windows"] = {**res, "peak_mib": peak, "wall": wall}
    print(f"  windows   {res['seconds']:7.1f} s  training windows of the stream: {res['windows']} "
          f"({res['background']} background, {res['ambiguous']} ambiguous)  peak {peak:.0f} MiB", flush=True)
    res, wall, peak = run_child(me + ["online", json.dumps({"checkpoint": ckpt, "stream": str(stream)})],
                                logs / "online.log")
    rec["online"] = {**res, "peak_mib": peak, "wall": wall}
    print(f"  online    {res['seconds']:7.1f} s  {res['frames'] / FPS / 60:.1f} min stream, {res['windows']} windows "
          f"(read {res['read_s']:.1f} s, windows+model {res['windows_s']:.1f} s, decode {res['decode_s']:.2f} s); "
          f"{res['realtime']:.0f}x real time; peak {peak:.0f} MiB", flush=True)
    rec["load1"] = round(os.getloadavg()[0], 2)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return rec


# ----------------------------------------------------------------------------- report


def stage_series(recs: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Per stage over the sizes: x (the dataset's clips), work (what the stage itself goes through:
    every clip, the training or test split's clips, the stream's frames), seconds and peak MiB."""
    clips = [r["clips"] for r in recs]
    train = [r["train"]["train_clips"] for r in recs]
    frames = [r["online"]["frames"] for r in recs]

    def series(work, seconds, peak=None):
        out = {"x": clips, "work": work, "seconds": seconds}
        if peak is not None:
            out["peak_mib"] = peak
        return out

    return {
        "import": series(clips, [r["import"]["seconds"] for r in recs], [r["import"]["peak_mib"] for r in recs]),
        "load": series(clips, [r["load"]["seconds"] for r in recs], [r["load"]["peak_mib"] for r in recs]),
        "train_epoch": series(train, [r["train"]["epoch_s_extrapolated"] for r in recs],
                              [r["train"]["peak_mib"] for r in recs]),
        "data_epoch": series(train, [r["train"]["data_epoch_s"] for r in recs]),
        "evaluate": series([r["evaluate"]["clips"] for r in recs], [r["evaluate"]["seconds"] for r in recs],
                           [r["evaluate"]["peak_mib"] for r in recs]),
        "online_windows": series(frames, [r["windows"]["seconds"] for r in recs],
                                 [r["windows"]["peak_mib"] for r in recs]),
        "online": series(frames, [r["online"]["seconds"] for r in recs], [r["online"]["peak_mib"] for r in recs]),
    }


def exponent(x: list[float], y: list[float]) -> float:
    """Slope of log y against log x (least squares)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return float("nan")
    return float(np.polyfit(lx, ly, 1)[0])


def exponents(series: dict) -> dict[str, dict[str, float]]:
    """Per stage: `seconds` and `peak_mib` against the stage's own work (the goals), and the
    time against the dataset's clips (`seconds_vs_clips`, the plot's slope)."""
    out = {}
    for stage, s in series.items():
        out[stage] = {k: exponent(s["work"], s[k]) for k in ("seconds", "peak_mib") if k in s}
        out[stage]["seconds_vs_clips"] = exponent(s["x"], s["seconds"])
    return out


def goals(recs: list[dict], exps: dict, full: bool) -> list[tuple[str, bool, str]]:
    out = []
    for stage, e in exps.items():
        out.append((f"{stage}: time exponent <= 1.1", e["seconds"] <= 1.1, f"{e['seconds']:.2f}"))
        if "peak_mib" in e:
            out.append((f"{stage}: memory exponent <= 1.1", e["peak_mib"] <= 1.1, f"{e['peak_mib']:.2f}"))
    if full:
        last = recs[-1]["import"]
        out.append(("full-size import < 2 min", last["seconds"] < 120, f"{last['seconds']:.0f} s"))
        out.append(("full-size import < 4 GB", last["peak_mib"] < 4096, f"{last['peak_mib']:.0f} MiB"))
    for r in recs:
        ratio = r["train"]["model_over_data"]
        out.append((f"{r['size']}: data path >= 3x faster than the model", ratio >= 3, f"{ratio:.1f}x"))
    return out


WORK = {"import": "clips", "load": "clips", "train_epoch": "training clips", "data_epoch": "training clips",
        "evaluate": "test clips", "online_windows": "stream frames", "online": "stream frames"}


def markdown(recs: list[dict], exps: dict, checks: list) -> str:
    lines = [
        "| size | clips | videos | frames | CSV GiB | generate s | import s | import peak MiB | file MiB | load s "
        "| load peak MiB | train s/step (steps) | wait share | epoch s (extrap.) | DataLoader epoch s | model/data "
        "| train peak MiB | evaluate s (clips) | evaluate peak MiB | online stream min | online windows s "
        "| online s | online x real time | online peak MiB |",
        "| --- |" + " ---: |" * 23,
    ]
    for r in recs:
        t, o = r["train"], r["online"]
        lines.append(
            f"| {r['size']} | {r['clips']:,} | {r['videos']} | {r['generate']['frames']:,} "
            f"| {r['generate']['csv_bytes'] / 2**30:.2f} | {r['generate']['seconds']:.1f} "
            f"| {r['import']['seconds']:.1f} "
            f"| {r['import']['peak_mib']:.0f} | {r['import']['file_mib']:.0f} | {r['load']['seconds']:.2f} "
            f"| {r['load']['peak_mib']:.0f} | {t['step_s']:.3f} ({t['steps']}) | {t['wait_share']:.1%} "
            f"| {t['epoch_s_extrapolated']:.0f} | {t['data_epoch_s']:.1f} | {t['model_over_data']:.1f}x "
            f"| {t['peak_mib']:.0f} | {r['evaluate']['seconds']:.1f} ({r['evaluate']['clips']:,}) "
            f"| {r['evaluate']['peak_mib']:.0f} | {o['frames'] / FPS / 60:.1f} | {r['windows']['seconds']:.1f} "
            f"| {o['seconds']:.1f} "
            f"| {o['realtime']:.0f} | {o['peak_mib']:.0f} |")
    lines += ["", "| stage | its work | time exponent | memory exponent | time exponent vs the dataset's clips |",
              "| --- | --- | ---: | ---: | ---: |"]
    for stage, e in exps.items():
        mem = f"{e['peak_mib']:.2f}" if "peak_mib" in e else "-"
        lines.append(f"| {stage} | {WORK[stage]} | {e['seconds']:.2f} | {mem} | {e['seconds_vs_clips']:.2f} |")
    lines += ["", "| goal | met | figure |", "| --- | --- | ---: |"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} | {fig} |" for name, ok, fig in checks]
    return "\n".join(lines) + "\n"


def plot(series: dict, exps: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(15, 5.5))
    for stage, s in series.items():
        x = np.asarray(s["x"], float)
        if stage.startswith("online"):  # plotted against the dataset's clips; its exponent is in stream length
            x = np.asarray(series["import"]["x"], float)
        ax_t.plot(x, s["seconds"], "o-", label=f"{stage} (exp {exps[stage]['seconds']:.2f})")
        if "peak_mib" in s:
            ax_m.plot(x, s["peak_mib"], "o-", label=f"{stage} (exp {exps[stage]['peak_mib']:.2f})")
    for ax, ylabel in ((ax_t, "wall seconds"), (ax_m, "peak RSS, MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clips in the dataset (the online stream grows with it: 30 min at the full size)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  title="stage (exponent against\nits own work)", title_fontsize=8)
    ax_m.axhline(4096, color="red", ls="--", lw=0.8)
    ax_m.text(x[0], 4096 * 1.05, "import goal at full size: 4 GB", color="red", fontsize=8)
    ax_t.axhline(120, color="red", ls="--", lw=0.8)
    ax_t.text(x[0], 120 * 1.1, "import goal at full size: 2 min", color="red", fontsize=8, zorder=5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def machine() -> dict:
    """CPU, cores, versions and load, without importing torch here: a child started by a big
    process would otherwise be charged the parent's memory (see peak_mib), and it saves seconds."""
    import datetime
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from microgesture.train.precision import cpu_name

    cpu = cpu_name()
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "absent"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch_version,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def describe(m: dict) -> str:
    note = ("\nWARNING: the machine is busy (1-min load >= 3/4 of the cores): figures are pessimistic"
            if m["loadavg"][0] >= 0.75 * (m["cores"] or 1) else "")
    return (f"machine: {m['cpu']}, {m['cores']} cores; python {m['python']}, torch {m['torch']}; load average "
            f"{' '.join(f'{x:.2f}' for x in m['loadavg'])}; {m['date']}{note}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="two tiny sizes, a smoke run")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench_scale", help="working folder")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps per size (default {DEFAULT_STEPS}; --quick: 1)")
    p.add_argument("--config", type=Path, default=CONFIG, help="training config (default: the synthetic joint one)")
    p.add_argument("--online-minutes", type=float, default=30.0, help="online stream length at the full size")
    p.add_argument("--sizes", default=None, help="comma-separated size names to run (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep each size's data and runs")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--md", type=Path, default=None, help="write the markdown tables here too")
    p.add_argument("--plot", type=Path, default=None, help="PNG (default: OUT/scale.png)")
    p.add_argument("--replot", type=Path, default=None, metavar="JSON",
                   help="only redraw the plot and tables of an earlier run's --json file")
    args = p.parse_args()
    if args.replot:
        report = json.loads(args.replot.read_text())
        recs, m0 = report["rows"], report["machine_start"]
        series = stage_series(recs)
        exps = exponents(series)
        print(markdown(recs, exps, goals(recs, exps, full=any(r["fraction"] == 1.0 for r in recs))))
        plot_path = args.plot or args.replot.with_suffix(".png")
        plot(series, exps, plot_path, f"bench_scale.py: {m0['cpu']}, {m0['cores']} cores, torch {m0['torch']}, "
                                      f"{m0['date']}")
        print(f"wrote {plot_path}")
        return 0
    args.steps = args.steps or (1 if args.quick else DEFAULT_STEPS)
    m0 = machine()
    print(describe(m0), flush=True)
    sizes = make_sizes(args.quick, args.online_minutes)
    if args.sizes:
        wanted = set(args.sizes.split(","))
        sizes = [s for s in sizes if s.folder in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool = Pool(args.seed, videos=4 if args.quick else POOL_VIDEOS, seconds=20.0 if args.quick else POOL_SECONDS)
    print(f"pool: {len(pool.rows)} synthetic videos, {sum(map(len, pool.rows)):,} frames formatted in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    recs = [measure(s, args.out, pool, args) for s in sizes]
    series = stage_series(recs)
    exps = exponents(series)
    checks = goals(recs, exps, full=any(s.fraction == 1.0 for s in sizes))
    table = markdown(recs, exps, checks)
    m1 = machine()
    print("\n" + table)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in m1['loadavg'])}; "
          f"total {time.perf_counter() - t0:.0f} s", flush=True)
    plot_path = args.plot or args.out / "scale.png"
    plot(series, exps, plot_path,
         f"bench_scale.py: {m0['cpu']}, {m0['cores']} cores, torch {m0['torch']}, {m0['date']}")
    print(f"wrote {plot_path}")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine_start": m0, "machine_end": m1, "args": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "rows": recs, "series": series,
            "exponents": exps, "goals": [{"goal": g, "met": ok, "figure": f} for g, ok, f in checks]}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
