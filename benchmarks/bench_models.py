"""Model throughput and memory: 2s-AGCN, the light RGB encoder, MViTv2-S, CMTF fusion.

    python benchmarks/bench_models.py [--quick] [--device cpu|cuda] [--amp none|bf16|fp16]
                                      [--models NAME ...] [--list] [--json OUT]

For each model, in a fresh subprocess (so its peak memory is its own; --one-process and
--quick run them all in one, and then measure memory for the first only):
  train   forward + cross-entropy + backward + SGD step, clips/s (model.train())
  infer   forward under torch.inference_mode, clips/s (model.eval())
  memory  CPU: peak resident set size above the process's size before the model was built
          (VmHWM, reset between phases through /proc/self/clear_refs, less the library code
          paged in meanwhile; ru_maxrss where there is no /proc);
          CUDA: torch.cuda.max_memory_allocated above the allocation before the model
  params  parameter count
Warm-up iterations are not timed; a figure is batch / median time of the timed iterations.
Inputs are random tensors of the shapes the data pipeline gives: skeleton [N, 1, T, V, 3],
RGB [N, 3, T, H, W], and for CMTF the token tensors the encoders produce. MViTv2-S is timed
forward only, at batch 1 (about 6 s a clip on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

NUM_CLASSES = 32  # iMiGUE's 32 micro-gesture classes
JOINTS = {"miga35": 35, "imigue22": 22}
MIB = 2**20


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: how to build it and the shape of one input clip (batch first)."""

    name: str
    kind: str  # agcn | light_rgb | mvit | cmtf
    build: dict = field(default_factory=dict)
    inputs: tuple[tuple[int, ...], ...] = ()  # per input, without the batch dimension
    batch: int = 16
    train: bool = True
    warmup: int = 2
    iters: int = 5

    @property
    def input_text(self) -> str:
        return " + ".join("x".join(str(s) for s in shape) for shape in self.inputs)


def specs(quick: bool) -> list[Spec]:
    out = []
    for layout in ("miga35", "imigue22"):
        for width in (64, 32, 16):
            for t in (32, 64):
                out.append(Spec(f"agcn-c{width}-{layout}-T{t}", "agcn",
                                {"layout": layout, "base_channels": width}, ((1, t, JOINTS[layout], 3),)))
    out.append(Spec("light_rgb-w32", "light_rgb", {"width": 32}, ((3, 16, 96, 96),), batch=8))
    out.append(Spec("mvit_v2_s", "mvit", {}, ((3, 16, 224, 224),), batch=1, train=False, warmup=1, iters=3))
    # CMTF on the tokens of MViTv2-S (1 + 8*7*7 of 768) and AGCN c64 at T=32 (8 x 35 of 256) ...
    out.append(Spec("cmtf-mvit+agcn64", "cmtf", {"rgb": 768, "joint": 256}, ((393, 768), (8, 35, 256)),
                    batch=8))
    # ... and of the light RGB encoder at 16x96x96 (4*6*6 of 128) and AGCN c32 at T=32 (8 x 35 of 128).
    out.append(Spec("cmtf-light+agcn32", "cmtf", {"rgb": 128, "joint": 128}, ((144, 128), (8, 35, 128)),
                    batch=8))
    if quick:
        keep = ("agcn-c16-miga35-T32", "light_rgb-w32", "cmtf-light+agcn32")
        out = [replace(s, batch=min(s.batch, 4), warmup=1, iters=2) for s in out if s.name in keep]
    return out


def find(name: str, quick: bool, batch: int | None = None,
         catalogue: Callable[[bool], list[Spec]] | None = None) -> Spec:
    """The spec called `name` in `catalogue` (default: `specs`): its --quick variant when there is
    one and quick is set."""
    catalogue = catalogue or specs
    for spec in catalogue(quick) + catalogue(False):
        if spec.name == name:
            return replace(spec, batch=batch or spec.batch)
    raise KeyError(name)


# ----------------------------------------------------------------------------- one model (child process)


def build_model(spec: Spec):
    if spec.kind == "agcn":
        from microgesture.models.agcn import build_agcn

        return build_agcn(NUM_CLASSES, **spec.build)
    if spec.kind == "light_rgb":
        from microgesture.models.light_rgb import build_light_rgb

        return build_light_rgb(NUM_CLASSES, **spec.build)
    if spec.kind == "mvit":
        from microgesture.models.mvit import build_mvit_v2_s

        return build_mvit_v2_s(NUM_CLASSES, **spec.build)
    if spec.kind == "cmtf":
        return fusion_classifier(spec.build, NUM_CLASSES)
    raise ValueError(f"unknown model kind {spec.kind!r}")


def fusion_classifier(dims: dict[str, int], classes: int):
    """CMTF over RGB and joint tokens with a linear head, called like an encoder: model(rgb, joint)."""
    import torch

    from microgesture.models.cmtf import CrossModalTokenFusion

    class FusionClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fusion = CrossModalTokenFusion(dims, {"rgb": "sequence", "joint": "time_joint"})
            self.fc = torch.nn.Linear(self.fusion.embed_dim, classes)

        def forward(self, rgb, joint):
            return self.fc(self.fusion({"rgb": rgb, "joint": joint}))

    return FusionClassifier()


class Memory:
    """Peak memory of a phase above a baseline, in MiB: CUDA allocator, else the process's RSS.

    CPU: VmHWM (reset per phase through /proc/self/clear_refs) above VmRSS at the baseline, less
    the growth of RssFile: shared-library code that torch pages in on first use is not memory the
    model needs. Without /proc (not Linux): ru_maxrss, which never resets.
    """

    def __init__(self, device):
        import torch

        self.torch, self.device, self.cuda = torch, device, device.type == "cuda"
        self.proc = not self.cuda and self._clear_peak()
        self.gauge = ("cuda max_memory_allocated" if self.cuda
                      else "VmHWM - RssFile growth" if self.proc else "ru_maxrss")
        if self.cuda:
            self.base, self.base_file = torch.cuda.memory_allocated(device), 0
        elif self.proc:
            self.base, self.base_file = self._status("VmRSS"), self._status("RssFile")
        else:
            self.base, self.base_file = self._maxrss(), 0

    def start_phase(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats(self.device)
        elif self.proc:
            self._clear_peak()

    def peak(self) -> float:
        if self.cuda:
            return (self.torch.cuda.max_memory_allocated(self.device) - self.base) / MIB
        if self.proc:
            code = self._status("RssFile") - self.base_file
            return (self._status("VmHWM") - self.base - code) / MIB
        return (self._maxrss() - self.base) / MIB

    @staticmethod
    def _maxrss() -> int:
        # ru_maxrss never decreases: phases must run smallest first (inference before training).
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    @staticmethod
    def _clear_peak() -> bool:
        try:  # Linux >= 4.0: writing 5 resets the peak RSS (VmHWM) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
            return bool(Memory._status("VmHWM"))
        except (OSError, ValueError):
            return False

    @staticmethod
    def _status(key: str) -> int:
        match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        if match is None:
            raise ValueError(f"{key} not in /proc/self/status")
        return int(match.group(1)) * 1024


def prime_runtime(device) -> None:
    """One tiny train and inference step, so that torch's one-off runtime state (autograd engine,
    optimizer code, thread pools) is in the baseline rather than charged to the first model."""
    import torch

    layer = torch.nn.Linear(4, 2).to(device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(torch.randn(3, 4, device=device)).sum().backward()
    optimizer.step()
    with torch.inference_mode():
        layer(torch.randn(3, 4, device=device))


def timed(step: Callable[[], None], warmup: int, iters: int, budget: float,
          sync: Callable[[], None]) -> tuple[float, int]:
    """Median seconds per step after `warmup` untimed steps; stops after `budget` s (>= 2 timed steps)."""
    for _ in range(warmup):
        step()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters and (len(times) < 2 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def run_one(spec: Spec, device_name: str, amp: str, budget: float, measure_memory: bool = True,
            build: Callable[[Spec], object] | None = None) -> dict:
    """Time one model; memory only when `measure_memory` (the process's first model: later ones
    reuse memory the allocator kept from earlier ones, so their peaks would mean little).
    `build` makes the model from the spec (default: `build_model`; other scripts pass theirs)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    device = torch.device(device_name)
    cuda = device.type == "cuda"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def sync() -> None:  # CUDA runs asynchronously: wait for the step before reading the clock
        if cuda:
            torch.cuda.synchronize(device)

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    prime_runtime(device)
    memory = Memory(device)
    peak = memory.peak if measure_memory else (lambda: None)

    model = (build or build_model)(spec).to(device)
    params = sum(p.numel() for p in model.parameters())
    inputs = [torch.randn(spec.batch, *shape, device=device) for shape in spec.inputs]
    labels = torch.randint(0, NUM_CLASSES, (spec.batch,), device=device)
    result = {"params": params, "train_clips_per_s": None, "train_iters": 0, "train_peak_mib": None}

    model.eval()  # inference first: with ru_maxrss as the only gauge its peak must come first
    memory.start_phase()

    def infer() -> None:
        with torch.inference_mode(), autocast():
            model(*inputs)

    sec, n = timed(infer, spec.warmup, spec.iters, budget, sync)
    result.update(infer_clips_per_s=spec.batch / sec, infer_iters=n, infer_peak_mib=peak())

    if spec.train:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16" and cuda)
        memory.start_phase()

        def train() -> None:
            with autocast():
                loss = F.cross_entropy(model(*inputs).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        sec, n = timed(train, spec.warmup, spec.iters, budget, sync)
        result.update(train_clips_per_s=spec.batch / sec, train_iters=n, train_peak_mib=peak())
    result.update(threads=torch.get_num_threads(), torch=torch.__version__, load1=round(os.getloadavg()[0], 2),
                  memory_gauge=memory.gauge if measure_memory else "not measured (not the process's first model)")
    if cuda:
        result["gpu"] = torch.cuda.get_device_name(device)
    return result


# ----------------------------------------------------------------------------- the parent process


def machine() -> dict:
    """CPU, cores and load, read without importing torch (the children report torch and threads)."""
    from importlib.metadata import version

    from microgesture.train.precision import cpu_name

    cpu = cpu_name()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": version("torch"),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def busy_note(m: dict) -> str:
    """A warning when other processes already use the cores: every figure will be pessimistic."""
    if m["loadavg"][0] < 0.75 * (m["cores"] or 1):
        return ""
    return ("\nWARNING: the machine is busy (1-min load >= 3/4 of the cores): figures are pessimistic and noisy; "
            "with more than one torch thread they can collapse 10x (try --threads 1)")


def describe(m: dict, threads: object = "?") -> str:
    load = " ".join(f"{x:.2f}" for x in m["loadavg"])
    return (f"machine: {m['cpu']}, {m['cores']} cores; python {m['python']}, torch {m['torch']}, "
            f"{threads} torch threads; load average {load} (1/5/15 min); {m['date']}")


def run_children(group: list[Spec], args: argparse.Namespace) -> list[dict]:
    """Measure `group` in one fresh child process; one result per spec, {'error': ...} on failure."""
    cmd = [sys.executable, __file__, "--device", args.device, "--amp", args.amp, "--budget", str(args.budget),
           "--worker", *[s.name for s in group]] + (["--quick"] if args.quick else [])
    for option in ("threads", "batch"):
        if getattr(args, option):
            cmd += [f"--{option}", str(getattr(args, option))]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    results = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or len(results) != len(group):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        results += [{"error": f"exit {proc.returncode}: {tail}"}] * (len(group) - len(results))
    for result in results:
        result["wall_s"] = round((time.perf_counter() - t0) / len(group), 1)
    return results


def fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict], device: str) -> str:
    mem = "GPU MiB" if device.startswith("cuda") else "RSS MiB"
    lines = [f"| model | input (per clip) | batch | params | train clips/s | infer clips/s | train peak {mem} "
             f"| infer peak {mem} | load1 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['input']} | {r['batch']} | failed: {r['error']} | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['input']} | {r['batch']} | {r['params']:,} | {fmt(r['train_clips_per_s'])} "
                     f"| {fmt(r['infer_clips_per_s'])} | {fmt(r['train_peak_mib'], '.0f')} "
                     f"| {fmt(r['infer_peak_mib'], '.0f')} | {r['load1']:.2f} |")
    return "\n".join(lines)


def report_row(spec: Spec, result: dict) -> dict:
    row = {"model": spec.name, "input": spec.input_text, "batch": spec.batch, **result}
    if "error" in result:
        print(f"  {spec.name:22s} FAILED {result['error']}", flush=True)
    else:
        print(f"  {spec.name:22s} train {fmt(result['train_clips_per_s']):>7s} clips/s  infer "
              f"{fmt(result['infer_clips_per_s']):>7s} clips/s  peak {fmt(result['train_peak_mib'], '.0f')}/"
              f"{fmt(result['infer_peak_mib'], '.0f')} MiB  params {result['params']:,}  "
              f"(load {result['load1']:.2f}, {result['wall_s']} s)", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: three small models, tiny batches, 1 thread, --one-process")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ...")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="autocast dtype")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="only these models (see --list)")
    parser.add_argument("--list", action="store_true", help="print the model names and exit")
    parser.add_argument("--budget", type=float, default=5.0,
                        help="stop timing a phase after this many seconds (at least 2 timed steps)")
    parser.add_argument("--threads", type=int,
                        help="torch.set_num_threads in each child (default: torch's choice; 1 with --quick)")
    parser.add_argument("--batch", type=int, help="batch size for every model (default: per model, see --list)")
    parser.add_argument("--json", type=Path, help="also write the rows and the machine to this JSON file")
    parser.add_argument("--one-process", action="store_true",
                        help="measure every model in one child: faster, but memory only for the first")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)  # internal: measure, print RESULT json
    args = parser.parse_args(argv)
    if args.quick:  # a smoke run: one child, one thread (on a busy machine 2 threads can be 10x slower)
        args.one_process = True
        args.threads = args.threads or 1

    chosen = specs(args.quick)
    if args.list:
        print("\n".join(f"{s.name:22s} input {s.input_text}, batch {s.batch}" for s in specs(False)))
        return 0
    if args.worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        for i, name in enumerate(args.worker):
            spec = find(name, args.quick, args.batch)
            result = run_one(spec, args.device, args.amp, args.budget, measure_memory=i == 0)
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    if args.models:
        unknown = [m for m in args.models if m not in {s.name for s in specs(False)}]
        if unknown:
            parser.error(f"unknown model(s) {unknown}; see --list")
        chosen = [find(m, args.quick) for m in args.models]
    chosen = [replace(s, batch=args.batch or s.batch) for s in chosen]

    start = machine()
    print(describe(start, args.threads or "default") + f"; device {args.device}, amp {args.amp}" + busy_note(start),
          flush=True)
    rows = []
    groups = [chosen] if args.one_process else [[spec] for spec in chosen]
    for group in groups:
        for spec, result in zip(group, run_children(group, args)):
            rows.append(report_row(spec, result))
    end = machine()
    threads = next((r["threads"] for r in rows if "threads" in r), "?")
    gauge = next((r["memory_gauge"] for r in rows if r.get("train_peak_mib") is not None), "none")
    print(f"\nstart: {describe(start, threads)}\nend:   {describe(end, threads)}{busy_note(end)}")
    gpu = next((r["gpu"] for r in rows if "gpu" in r), None)
    print(f"device {args.device}{f' ({gpu})' if gpu else ''}, amp {args.amp}, memory gauge {gauge}\n")
    print(table(rows, args.device))
    if args.json is not None:
        from microgesture.utils.io import write_text

        report = {"script": "bench_models", "argv": sys.argv[1:], "device": args.device, "gpu": gpu, "amp": args.amp,
                  "machine_start": start, "machine_end": end, "threads": threads, "memory_gauge": gauge,
                  "specs": [asdict(s) for s in chosen], "rows": rows}
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
