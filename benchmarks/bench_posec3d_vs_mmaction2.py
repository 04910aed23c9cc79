"""Training speed and memory of our PoseC3D (models/posec3d.py) beside MMAction2's, same shapes.

    nice -n 10 python benchmarks/bench_posec3d_vs_mmaction2.py --mm-python /path/to/mmaction2-venv/bin/python \
        [--batch 16 --channels 17 --frames 48 --size 56] [--rounds 3] [--steps 2] [--threads 2] [--device cpu|cuda]
        [--json OUT]

Each measurement is a fresh process (so its peak resident memory is its own) that builds the
network (SlowOnly-R50: base 32, blocks 4-6-3, as PoseC3D's configs), makes one random batch of
heatmap volumes [batch, channels, frames, size, size] and runs SGD training steps (forward,
cross-entropy, backward, gradient clipping at 40 as PoseC3D's configs, update): one warm-up,
then `--steps` timed. Variants run in turn, A B C A B C ... for `--rounds`, so a change in the
machine's load hits all of them alike; the table gives medians of the per-step times and of
the peak RSS, and the ratios to MMAction2. Speed is judged by CPU time (process time of all
threads per step): on a shared machine the wall time of one step varies several-fold with the
other users' load, the work done does not. With one thread (--threads 1) CPU time is compute;
with more, OpenMP threads spinning at barriers count too. Wall times are reported beside.

Variants: `mmaction2` (their Recognizer3D built from the config dict, trained through its own
`loss` path, float32 as their configs; run with --mm-python, MMAction2 lives in its own
virtualenv), `mmaction2-bf16` (the same under bf16 autocast, to tell the precision's share of
the difference from the implementation's), `ours-fp32` (our defaults: channels-last, max pool without stored indices),
`ours-bf16` (the same under bf16 autocast: what `trainer.precision: bf16-mixed` does),
`ours-bf16-recompute` (plus `recompute_stem`). RSS includes Python, torch and the batch.

After the training steps each process also times inference (model.eval(), the network's forward
under torch.inference_mode, the same batch and autocast): one warm-up, then `--steps`.
`--device cuda` runs every variant on the GPU: steps are waited for (torch.cuda.synchronize), wall
time is then the figure to read (CPU time only counts the host's work), and the peak GPU memory
(torch.cuda.max_memory_allocated) is reported beside the RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("mmaction2", "mmaction2-bf16", "ours-fp32", "ours-bf16", "ours-bf16-recompute")
NUM_CLASSES = 32


# ----------------------------------------------------------------------------- workers (one process each)


def _rss_gb() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1e6


def _train_steps(step, steps: int, sync=lambda: None) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads of the process) of each timed step, after one warm-up."""
    step()  # warm-up: oneDNN picks its kernels, the allocator grows
    sync()
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _ours(a, x, y):
    import torch

    sys.path.insert(0, str(REPO / "src"))
    from microgesture.models.posec3d import build_posec3d

    model = build_posec3d(NUM_CLASSES, a.channels, recompute_stem=a.variant.endswith("recompute")).train().to(x.device)
    bf16 = "bf16" in a.variant

    def loss_fn():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return torch.nn.functional.cross_entropy(model(x), y)

    def infer_fn():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    return model, loss_fn, infer_fn


def _mmaction2(a, x, y):
    import torch
    from mmaction.registry import MODELS
    from mmaction.structures import ActionDataSample
    from mmaction.utils import register_all_modules

    register_all_modules()
    config = dict(
        type="Recognizer3D",
        backbone=dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, in_channels=a.channels, base_channels=32,
                      num_stages=3, out_indices=(2,), stage_blocks=(4, 6, 3), conv1_stride_s=1, pool1_stride_s=1,
                      inflate=(0, 1, 1), spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 2), dilations=(1, 1, 1)),
        cls_head=dict(type="I3DHead", in_channels=512, num_classes=NUM_CLASSES, dropout_ratio=0.5,
                      average_clips="prob"))
    model = MODELS.build(config)
    model.init_weights()
    model.train().to(x.device)
    samples = [ActionDataSample().set_gt_label(int(label)).to(x.device) for label in y]
    inputs = x[:, None]  # [N, num_clips = 1, K, T, H, W], as their data pipeline packs it

    def loss_fn():
        losses = model(inputs, samples, mode="loss")
        return sum(v for k, v in losses.items() if "loss" in k)

    def bf16_loss_fn():  # their loss path scores accuracy with numpy, which has no bf16: the same network by hand
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            scores = model.cls_head(model.backbone(x))
        return torch.nn.functional.cross_entropy(scores.float(), y)

    def infer_fn():  # backbone and head, as ours: their `predict` path adds test-time clip averaging
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=a.variant.endswith("bf16")):
            return model.cls_head(model.backbone(x))

    if a.variant.endswith("bf16"):
        return model, bf16_loss_fn, infer_fn

    return model, loss_fn, infer_fn


def worker(a) -> None:
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    x = torch.rand(a.batch, a.channels, a.frames, a.size, a.size).to(device)
    y = torch.randint(0, NUM_CLASSES, (a.batch,)).to(device)
    model, loss_fn, infer_fn = (_mmaction2 if a.variant.startswith("mmaction2") else _ours)(a, x, y)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-4)
    before = _rss_gb()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times, cpu_times = _train_steps(step, a.steps, sync)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KB -> GB
    peak_cuda = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
    model.eval()

    def infer():
        with torch.inference_mode():
            infer_fn()

    infer_times, _ = _train_steps(infer, a.steps, sync)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"variant": a.variant, "step_s": times, "cpu_s": cpu_times, "peak_rss_gb": peak, "rss_before_gb": before,
                      "peak_cuda_gb": peak_cuda, "infer_s": infer_times, "params": params, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "device": str(device)}))


# ----------------------------------------------------------------------------- driver


def run_variant(variant: str, a) -> dict | None:
    python = a.mm_python if variant.startswith("mmaction2") else sys.executable
    cmd = [str(python), __file__, "--worker", "--variant", variant, "--batch", str(a.batch), "--channels",
           str(a.channels), "--frames", str(a.frames), "--size", str(a.size), "--steps", str(a.steps),
           "--threads", str(a.threads), "--device", a.device]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"  {variant} stopped after --timeout {a.timeout:.0f} s: no figure this round", flush=True)
        return None
    if proc.returncode != 0:
        # -9 is usually the kernel's out-of-memory killer on a shared machine: report it and let the
        # other variants and rounds go on, so one failure does not lose the whole table
        hint = " (killed: out of memory?)" if proc.returncode == -9 else ""
        print(f"  {variant} failed ({proc.returncode}){hint}:\n{proc.stderr[-1500:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(results: dict[str, list[dict]], batch: int) -> dict[str, dict]:
    out = {}
    for variant, runs in results.items():
        step = statistics.median(t for r in runs for t in r["step_s"])
        cpu = statistics.median(t for r in runs for t in r["cpu_s"])
        infer = statistics.median(t for r in runs for t in r["infer_s"])
        cuda = [r["peak_cuda_gb"] for r in runs if r.get("peak_cuda_gb") is not None]
        out[variant] = {"step_s": step, "cpu_s": cpu, "clips_per_s": batch / step, "clips_per_cpu_s": batch / cpu,
                        "infer_s": infer, "infer_clips_per_s": batch / infer,
                        "peak_cuda_gb": statistics.median(cuda) if cuda else None,
                        "peak_rss_gb": statistics.median(r["peak_rss_gb"] for r in runs),
                        "rss_before_gb": statistics.median(r["rss_before_gb"] for r in runs),
                        "params": runs[0]["params"], "measured_steps": sum(len(r["step_s"]) for r in runs)}
    base = out.get("mmaction2")
    for row in out.values():
        row["speed_vs_mmaction2"] = base["cpu_s"] / row["cpu_s"] if base else None
        row["wall_speed_vs_mmaction2"] = base["step_s"] / row["step_s"] if base else None
        row["memory_vs_mmaction2"] = row["peak_rss_gb"] / base["peak_rss_gb"] if base else None
        row["infer_speed_vs_mmaction2"] = base["infer_s"] / row["infer_s"] if base else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="ours-bf16", help=argparse.SUPPRESS)
    parser.add_argument("--variants", default="mmaction2,ours-fp32,ours-bf16,ours-bf16-recompute", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--mm-python", type=Path, default=None, help="the Python of a virtualenv with MMAction2")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=17)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per process (after 1 warm-up)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one process may take")
    parser.add_argument("--device", default="cpu", help="torch device of every variant: cpu (default), cuda, cuda:1")
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args()
    if a.worker:
        return worker(a)
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    if any(v.startswith("mmaction2") for v in variants) and a.mm_python is None:
        raise SystemExit("--mm-python: the mmaction2 variant needs the Python of a virtualenv with MMAction2")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_data import busy_note, describe, machine

    m = machine()
    print(describe(m) + busy_note(m))
    print(f"input [{a.batch}, {a.channels}, {a.frames}, {a.size}, {a.size}], device {a.device}, {a.threads} threads, "
          f"{a.rounds} rounds x {a.steps} timed steps per variant, interleaved")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(a.rounds):
        for v in variants:
            result = run_variant(v, a)
            if result is None:
                continue
            results[v].append(result)
            print(f"  round {r + 1} {v}: steps {['%.1f' % t for t in results[v][-1]['step_s']]} s wall, "
                  f"{['%.1f' % t for t in results[v][-1]['cpu_s']]} s CPU, "
                  f"peak {results[v][-1]['peak_rss_gb']:.2f} GB", flush=True)
    table = summarise({v: runs for v, runs in results.items() if runs}, a.batch)
    print("\n| variant | clips per CPU-s | CPU-s/step | wall s/step | peak RSS GB | speed vs MMAction2 (CPU, wall) "
          "| memory vs MMAction2 | infer clips/s (wall) | infer speed vs MMAction2 (wall) |\n|---|---|---|---|---|---|---|---|---|")
    for v, row in table.items():
        ratio = "" if row["speed_vs_mmaction2"] is None else (f"{row['speed_vs_mmaction2']:.2f}x, "
                                                                f"{row['wall_speed_vs_mmaction2']:.2f}x")
        mem = "" if row["memory_vs_mmaction2"] is None else f"{row['memory_vs_mmaction2']:.2f}"
        infer = "" if row["infer_speed_vs_mmaction2"] is None else f"{row['infer_speed_vs_mmaction2']:.2f}x"
        print(f"| {v} | {row['clips_per_cpu_s']:.3f} | {row['cpu_s']:.1f} | {row['step_s']:.1f} "
              f"| {row['peak_rss_gb']:.2f} | {ratio} | {mem} | {row['infer_clips_per_s']:.2f} | {infer} |")
    if a.json:
        sys.path.insert(0, str(REPO / "src"))
        from microgesture.utils.io import write_text

        write_text(a.json, json.dumps({"machine": m, "args": {k: str(v) for k, v in vars(a).items()},
                                       "runs": results, "summary": table}, indent=2))


if __name__ == "__main__":
    main()
