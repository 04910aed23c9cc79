"""What a joint layout costs, and how fast SMG's skeleton CSVs import.

    python benchmarks/bench_layouts.py [--width 16] [--frames 32] [--batch 8] [--rounds 5]
                                       [--smg-frames 27000] [--json OUT]

layouts  one AGCN training step (forward + cross-entropy + backward + SGD) per layout (coco17,
         imigue22, ntu25, miga35, openpose67), the layouts interleaved round by round in one
         process, so a busy machine slows them alike; reported as the fastest and the median step
         and as ratios of the fastest to miga35's (the fastest of several rounds is the least
         disturbed by other jobs; absolute times on a shared machine are noisy), and the forward
         FLOPs of one clip counted by torch.utils.flop_counter, which no other job can disturb.
smg      writing and importing one SMG-format sequence of `--smg-frames` frames (27,000 frames is
         SMG's typical 15-minute recording at 30 fps) with one label row every 60 frames:
         read_skeleton alone and the whole import_smg, in frames/s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from microgesture.data.formats import smg
from microgesture.domain.layouts import get_layout
from microgesture.models.agcn import build_agcn

LAYOUTS = ("coco17", "imigue22", "ntu25", "miga35", "openpose67")


def layout_costs(width: int, frames: int, batch: int, rounds: int) -> list[dict]:
    torch.manual_seed(0)
    models = {name: build_agcn(32, name, base_channels=width) for name in LAYOUTS}
    optims = {name: torch.optim.SGD(m.parameters(), lr=0.01) for name, m in models.items()}
    inputs = {name: torch.randn(batch, 1, frames, get_layout(name).num_joints, 3) for name in LAYOUTS}
    labels = torch.randint(0, 32, (batch,))
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for r in range(rounds + 1):  # round 0 warms up
        for name in LAYOUTS:
            start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(models[name](inputs[name]), labels)
            optims[name].zero_grad()
            loss.backward()
            optims[name].step()
            if r:
                times[name].append(time.perf_counter() - start)
    base = min(times["miga35"])
    flops = {n: forward_flops(models[n], inputs[n][:1]) for n in LAYOUTS}
    return [{"layout": n, "joints": get_layout(n).num_joints, "min_ms": 1000 * min(times[n]),
             "median_ms": 1000 * statistics.median(times[n]), "ratio_to_miga35": min(times[n]) / base,
             "gflops_per_clip": flops[n] / 1e9, "flops_ratio_to_miga35": flops[n] / flops["miga35"]}
            for n in LAYOUTS]


def forward_flops(model: torch.nn.Module, clip: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    model.train()
    return counter.get_total_flops()


def smg_import(frames: int) -> dict:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, (frames, 25, smg.JOINT_VALUES))
    values[..., 7:9] = rng.uniform(0, 1000, (frames, 25, 2))
    rows = [(1 + k % 17, 1 + 60 * k, 50 + 60 * k) for k in range(frames // 60)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        smg.write_sequence(root, 1, values, rows)
        written = time.perf_counter() - start
        path = smg.sequence_files(root / "Sample0001").skeleton
        start = time.perf_counter()
        smg.read_skeleton(path)
        read = time.perf_counter() - start
        start = time.perf_counter()
        clips = smg.import_smg(root, protocol="none")[0]
        whole = time.perf_counter() - start
        size = path.stat().st_size
    return {"frames": frames, "csv_mib": size / 2**20, "clips": len(clips), "write_s": written, "read_s": read,
            "import_s": whole, "read_frames_per_s": frames / read, "import_frames_per_s": frames / whole}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--smg-frames", type=int, default=27000)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    costs = layout_costs(a.width, a.frames, a.batch, a.rounds)
    print(f"AGCN c{a.width}, T={a.frames}, batch {a.batch}, {a.rounds} interleaved rounds, "
          f"{info['torch_threads']} torch thread(s), load {info['load_before']:.1f}")
    for row in costs:
        print(f"  {row['layout']:<11} V={row['joints']:<3} fastest {row['min_ms']:8.1f} ms/step, median "
              f"{row['median_ms']:8.1f}  {row['ratio_to_miga35']:.2f} x miga35; "
              f"{row['gflops_per_clip']:.3f} GFLOPs/clip forward ({row['flops_ratio_to_miga35']:.2f} x)")
    read = smg_import(a.smg_frames)
    print(f"SMG: {read['frames']} frames ({read['csv_mib']:.1f} MiB CSV, {read['clips']} clips): read "
          f"{read['read_frames_per_s']:,.0f} frames/s, whole import {read['import_frames_per_s']:,.0f} frames/s")
    info["load_after"] = os.getloadavg()[0]
    if a.json:
        a.json.write_text(json.dumps({"info": info, "layouts": costs, "smg": read}, indent=1))


if __name__ == "__main__":
    main()
