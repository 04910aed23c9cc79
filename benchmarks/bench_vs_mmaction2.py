"""Our 2s-AGCN against MMAction2 1.2.0's AAGCN(gcn_attention=False) + GCNHead, side by side.

    python benchmarks/bench_vs_mmaction2.py --mm-python PATH/TO/venv-mm/bin/python
        [--pairs 5] [--steps 3] [--threads 2] [--batch 16] [--frames 100] [--amp none|bf16]
        [--compile] [--device cpu|cuda] [--json OUT] [--quick]

The same network on both sides: 10 blocks of widths 64x4, 128x3, 256x3 (stride 2 where the
width doubles), the COCO-17 graph in its "spatial" partition (ours: layout `coco17`, which the
script checks equals MMAction2's `Graph(layout='coco', mode='spatial')`), the data-dependent graph
alpha * tanh(...) (ours: similarity="tanh"), one person, 60 classes, a linear head on the pooled
embedding. Inputs are random [batch, 1, frames, 17, 3] tensors; no data loading.

Each side runs in its own process (MMAction2 lives in its own virtual environment), started once
and kept. The parent alternates the two in time, in A B B A order, so that both meet the same
load on a shared machine: per phase (inference first, then training), `--pairs` pairs of turns,
each turn `--steps` timed steps after the warm-up steps that open the phase. A turn's figure is
batch / its median step time; a side's figure is the median of its turns; the ratio is ours /
MMAction2's (above 1: ours is faster), given with the range of the per-pair ratios.
  train: model.train(), forward, cross-entropy, backward, SGD step (momentum 0.9)
  infer: model.eval(), forward under torch.inference_mode()
  peak:  peak resident memory of the phase above the process's size before the model was built
         (the `Memory` gauge of bench_models.py: VmHWM reset per phase, less code paged in)
  GFLOP/s: each side's counted operations a step (torch.utils.flop_counter: products and
         convolutions) x steps/s, and its share of the float32 peak of a large matrix product
         measured in the parent: how much room the same arithmetic leaves.
`--device cuda` runs both sides on the GPU (each step waited for with torch.cuda.synchronize; peak
memory is then torch.cuda.max_memory_allocated above the allocation before the model, and the
GEMM peak is the GPU's float32 one, 8192^3, TF32 as torch's default for matrix products: off).

Installing MMAction2 (optional, never a dependency of this project; its own venv, not ours):

    python3 -m venv venv-mm
    venv-mm/bin/pip install torch==2.14.1 torchvision==0.29.1 mmengine==0.10.7 mmcv-lite==2.1.0 \\
        einops scipy importlib_metadata
    venv-mm/bin/pip install --no-deps mmaction2==1.2.0

mmcv-lite is mmcv 2.1 without its compiled operators: AAGCN and GCNHead use none, and MMAction2
1.2.0 accepts mmcv < 2.2. `--no-deps` leaves out decord and opencv-contrib, which the models do
not need. The 1.2.0 wheel lacks the folder mmaction/models/localizers/drn (MMAction2 issue 2714),
so `import mmaction.models` fails; copy that folder from the v1.2.0 source into the installed
package, or let this script stand in an empty module for it (DRN is a temporal-grounding model,
never built here). Then run this script with the project's Python and `--mm-python` pointing at
the venv's. Without `--mm-python`, only our side is measured (the MMAction2 figures are skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIDES = ("ours", "mmaction2")


# ----------------------------------------------------------------------------- workers (one per side)


def build_ours(classes: int):
    from microgesture.models.agcn import build_agcn

    model = build_agcn(classes, "coco17", similarity="tanh", num_person=1)
    return model, model, model.adjacency


def _import_mmaction_models() -> None:
    import importlib.util

    package = Path(importlib.util.find_spec("mmaction").origin).parent
    if not (package / "models" / "localizers" / "drn" / "drn.py").is_file():
        # The 1.2.0 wheel lacks this module (see the docstring): an empty stand-in, as nothing here uses DRN.
        drn = types.ModuleType("mmaction.models.localizers.drn")
        drn.__path__ = []
        stub = types.ModuleType("mmaction.models.localizers.drn.drn")
        stub.DRN = None
        sys.modules.update({drn.__name__: drn, stub.__name__: stub})
    import mmaction.models  # noqa: F401


def build_mmaction2(classes: int):
    import torch

    _import_mmaction_models()
    from mmaction.models.backbones.aagcn import AAGCN
    from mmaction.models.heads.gcn_head import GCNHead
    from mmaction.utils import register_all_modules

    register_all_modules()
    backbone = AAGCN(graph_cfg=dict(layout="coco", mode="spatial"), gcn_attention=False, num_person=1)
    head = GCNHead(num_classes=classes, in_channels=256)
    backbone.init_weights()
    head.init_weights()

    class Recognizer(torch.nn.Module):  # backbone + head, as RecognizerGCN calls them
        def __init__(self):
            super().__init__()
            self.backbone, self.cls_head = backbone, head

        def forward(self, x):
            return self.cls_head(self.backbone(x))

    return Recognizer(), backbone, backbone.A


def silence_mmengine() -> None:
    import logging

    for name in ("mmengine", "mmaction"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from mmengine.logging import MMLogger

        MMLogger.get_current_instance().setLevel(logging.ERROR)
    except Exception:  # noqa: BLE001 - only quietens logs
        pass


def worker(args: argparse.Namespace) -> int:
    """Build one side, then answer the parent's commands (JSON lines on stdin) with step times."""
    import torch
    import torch.nn.functional as F

    from bench_models import Memory, prime_runtime

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    prime_runtime(device)
    memory = Memory(device)
    if args.worker == "mmaction2":
        warnings.filterwarnings("ignore", message=".*mmcv-lite.*")  # the compiled operators are not needed
        silence_mmengine()
        model, _, graph = build_mmaction2(args.classes)
        silence_mmengine()
    else:
        model, _, graph = build_ours(args.classes)
    model = model.to(device)
    if args.compile:
        model = torch.compile(model)
    x = torch.randn(args.batch, 1, args.frames, 17, 3).to(device)
    labels = torch.randint(0, args.classes, (args.batch,)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dtype = torch.bfloat16 if args.amp == "bf16" else None

    def sync() -> None:  # CUDA runs asynchronously: a step's time is read once it has finished
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()

    def infer_step() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(x)
        sync()

    steps = {"train": train_step, "infer": infer_step}
    params = sum(p.numel() for p in model.parameters())
    send({"ready": True, "params": params, "graph": graph.detach().float().tolist(), "torch": torch.__version__,
          "threads": torch.get_num_threads()})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        if cmd["cmd"] == "flops":  # asked after the timed phases: counting would disturb their memory figures
            send({phase: step_flops(model, step, phase) for phase, step in steps.items()})
            continue
        phase, step = cmd["cmd"], steps[cmd["cmd"]]
        if cmd.get("start"):  # a new phase: its mode, warm-up steps, a fresh memory peak
            model.train(phase == "train")
            memory.start_phase()
            for _ in range(cmd["warmup"]):
                step()
        times = []
        for _ in range(cmd["steps"]):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        send({"times": times, "peak_mib": memory.peak(), "load1": os.getloadavg()[0]})
    return 0


def step_flops(model, step, phase: str) -> float:
    """Floating-point operations of one step (torch's counter: matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.train(phase == "train")
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def gemm_peak(threads: int, size: int = 2048, repeats: int = 5, rounds: int = 4, device: str = "cpu") -> float:
    """GFLOP/s of a large float32 matrix product on `threads` threads or `device` (best round): the practical ceiling."""
    import torch

    torch.set_num_threads(threads)
    dev = torch.device(device)
    a, b = torch.randn(size, size, device=dev), torch.randn(size, size, device=dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    best = 0.0
    for _ in range(rounds):  # the first rounds warm the thread pool and the clock up
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def send(message: dict) -> None:
    print(json.dumps(message), flush=True)


# ----------------------------------------------------------------------------- the parent


class Side:
    """One worker process, talked to with JSON lines."""

    def __init__(self, name: str, python: str, args: argparse.Namespace):
        self.name = name
        env = dict(os.environ)
        if name == "ours":  # this checkout's code, whatever is installed
            env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--threads", str(args.threads),
               "--batch", str(args.batch), "--frames", str(args.frames), "--classes", str(args.classes),
               "--amp", args.amp, "--device", args.device] + (["--compile"] if args.compile else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self.receive()

    def receive(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"the {self.name} worker exited ({self.proc.wait()}) before answering; see its stderr")

    def turn(self, phase: str, steps: int, start: bool, warmup: int) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": phase, "steps": steps, "start": start, "warmup": warmup}) + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def flops(self) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": "flops"}) + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def run(args: argparse.Namespace) -> dict:
    """Start the sides, alternate their turns, return the figures."""
    pythons = {"ours": sys.executable, "mmaction2": args.mm_python}
    sides = [Side(name, pythons[name], args) for name in SIDES if pythons[name]]
    try:
        result = {"params": {s.name: s.info["params"] for s in sides}, "torch": {s.name: s.info["torch"] for s in sides},
                  "threads": sides[0].info["threads"], "phases": {}}
        if len(sides) == 2:
            result["same_graph"] = same_graph(sides[0].info["graph"], sides[1].info["graph"])
        for phase in ("infer", "train"):
            turns: dict[str, list[dict]] = {s.name: [] for s in sides}
            for pair in range(args.pairs):
                order = sides if pair % 2 == 0 else sides[::-1]  # A B, B A, A B ...
                for side in order:
                    turns[side.name].append(side.turn(phase, args.steps, start=pair == 0, warmup=args.warmup))
            result["phases"][phase] = summarize(turns, args.batch)
        result["flops"] = {s.name: s.flops() for s in sides}
        size, repeats, rounds = (256, 2, 2) if args.quick else (8192, 5, 4) if args.device != "cpu" else (2048, 5, 4)
        result["gemm_size"] = size
        result["device"] = args.device
        result["gemm_peak_gflops"] = gemm_peak(args.threads, size, repeats, rounds, args.device)
        for phase in result["phases"]:
            add_efficiency(result, phase, args.batch)
            print(describe_phase(phase, result["phases"][phase]), flush=True)
        return result
    finally:
        for side in sides:
            side.close()


def same_graph(a: list, b: list) -> bool:
    flat_a, flat_b = json.dumps(a), json.dumps(b)
    if flat_a == flat_b:
        return True
    import numpy as np  # both sides' graphs, rounded the same way

    return bool(np.array(a).shape == np.array(b).shape and np.allclose(np.array(a), np.array(b), atol=1e-6))


def summarize(turns: dict[str, list[dict]], batch: int) -> dict:
    out: dict = {}
    for name, items in turns.items():
        rates = [batch / statistics.median(t["times"]) for t in items]
        out[name] = {"clips_per_s": statistics.median(rates), "turns": [round(r, 3) for r in rates],
                     "peak_mib": max(t["peak_mib"] for t in items), "load1": [round(t["load1"], 2) for t in items]}
    if len(turns) == 2:
        ours, theirs = out["ours"]["turns"], out["mmaction2"]["turns"]
        pair_ratios = [a / b for a, b in zip(ours, theirs)]
        out["ratio"] = out["ours"]["clips_per_s"] / out["mmaction2"]["clips_per_s"]
        out["pair_ratios"] = [round(r, 3) for r in pair_ratios]
        out["memory_ratio"] = out["ours"]["peak_mib"] / out["mmaction2"]["peak_mib"]
    return out


def add_efficiency(result: dict, phase: str, batch: int) -> None:
    """GFLOP/s of each side and its share of the machine's float32 matrix-product peak."""
    for name, side in result["phases"][phase].items():
        if name in SIDES:
            side["gflop_per_step"] = result["flops"][name][phase] / 1e9
            side["gflops"] = side["gflop_per_step"] * side["clips_per_s"] / batch
            side["of_gemm_peak"] = side["gflops"] / result["gemm_peak_gflops"]


def describe_phase(phase: str, p: dict) -> str:
    lines = [f"{phase}:"]
    for name in SIDES:
        if name in p:
            s = p[name]
            lines.append(f"  {name:9s} {s['clips_per_s']:7.2f} clips/s (turns {s['turns']}), peak {s['peak_mib']:.0f} MiB, "
                         f"load1 {min(s['load1']):.1f}-{max(s['load1']):.1f}; {s['gflop_per_step']:.0f} GFLOP a step, "
                         f"{s['gflops']:.0f} GFLOP/s = {100 * s['of_gemm_peak']:.0f}% of the float32 GEMM peak")
    if "ratio" in p:
        lines.append(f"  ours / MMAction2: {p['ratio']:.2f}x clips/s (pairs {min(p['pair_ratios']):.2f}-"
                     f"{max(p['pair_ratios']):.2f}), memory {p['memory_ratio']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mm-python", help="the Python of a virtual environment with mmaction2 1.2.0 (see above)")
    parser.add_argument("--pairs", type=int, default=5, help="pairs of turns per phase (default 5)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per turn (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps opening each phase (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on each side (default 2)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--classes", type=int, default=60)
    parser.add_argument("--amp", choices=("none", "bf16"), default="none", help="autocast on the device, both sides")
    parser.add_argument("--device", default="cpu", help="torch device of both sides: cpu (default), cuda, cuda:1")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes, one step a turn, a small GEMM: checks that the script runs")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)  # internal: one side's process
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.steps, args.warmup, args.batch, args.frames = 1, 1, 1, 2, 16
    if args.worker:
        return worker(args)
    from bench_models import describe, machine

    start = machine()
    print(describe(start, args.threads) + f"; batch {args.batch}, T={args.frames}, coco17, 1 person, "
          f"{args.classes} classes, amp {args.amp}{', compiled' if args.compile else ''}, device {args.device}", flush=True)
    if not args.mm_python:
        print("no --mm-python: measuring our side only (see the docstring to install MMAction2)")
    result = run(args)
    end = machine()
    where = f"{args.threads} threads" if args.device == "cpu" else args.device
    print(f"parameters: {result['params']}; same graph: {result.get('same_graph', 'not compared')}; float32 GEMM "
          f"peak ({result['gemm_size']}^3, {where}, measured here): {result['gemm_peak_gflops']:.0f} GFLOP/s")
    print(f"end: {describe(end, args.threads)}")
    if args.json is not None:
        sys.path.insert(0, str(REPO / "src"))
        from microgesture.utils.io import write_text

        report = {"script": "bench_vs_mmaction2", "argv": sys.argv[1:], "machine_start": start, "machine_end": end,
                  **result}
        write_text(args.json, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
