"""Emotion-track models: face encoders (SwinFace frozen / partly / fully trained, the light face
encoder) and InterFusion (with CMTF on the same tokens for comparison): train and inference
clips/s, peak memory, parameters.

    python benchmarks/bench_emotion.py [--quick] [--device cpu|cuda] [--amp none|bf16|fp16]
                                       [--models NAME ...] [--list] [--json OUT] [--threads N]
    python benchmarks/bench_emotion.py --compare interfusion-light cmtf-light [--rounds 20]

Each model is measured in a fresh child process by `bench_models.run_one` (same phases, timing and
memory gauges as benchmarks/bench_models.py: see its docstring). Inputs are random tensors of the
shapes the data pipeline and the encoders give: face clips [N, 3, T, 112, 112]; for the fusions,
face tokens [N, T, D_f] (a quarter of the frames marked without a face) and context tokens
[N, L, D_c] (MViTv2-S: 1 + 8*7*7 of 768; light RGB at 16x96x96: 4*6*6 of 128). Every model ends in
a linear head; "train" is forward + cross-entropy + backward + SGD step over what is trainable
(SwinFace frozen: only the head, so no backward through the backbone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models  # noqa: E402  (the shared harness, next to this file)
from bench_models import NUM_CLASSES, Spec  # noqa: E402

FACE = (3, 112, 112)


def specs(quick: bool) -> list[Spec]:
    out = [
        # SwinFace is a GPU model (about a second a frame on a CPU): 4-frame clips, one at a time here.
        Spec("swinface-frozen-T4", "swinface", {"freeze": "all"}, ((3, 4, 112, 112),), batch=1, warmup=1, iters=3),
        Spec("swinface-partial-T4", "swinface", {"freeze": "partial"}, ((3, 4, 112, 112),), batch=1, warmup=1,
             iters=3),
        Spec("swinface-full-T4", "swinface", {"freeze": "none"}, ((3, 4, 112, 112),), batch=1, warmup=1, iters=2),
        Spec("light_face-w16-T16-112", "light_face", {"width": 16}, ((3, 16, 112, 112),), batch=8),
        Spec("light_face-w16-T16-64", "light_face", {"width": 16}, ((3, 16, 64, 64),), batch=8),
        Spec("interfusion-swinface+mvit", "interfusion", {"face": 512, "rgb": 768, "width": 256},
             ((16, 512), (393, 768)), batch=8),
        Spec("cmtf-swinface+mvit", "cmtf", {"face": 512, "rgb": 768, "width": 256}, ((16, 512), (393, 768)), batch=8),
        Spec("interfusion-light", "interfusion", {"face": 64, "rgb": 128, "width": 64}, ((16, 64), (144, 128)),
             batch=16),
        Spec("cmtf-light", "cmtf", {"face": 64, "rgb": 128, "width": 64}, ((16, 64), (144, 128)), batch=16),
    ]
    if quick:
        keep = ("light_face-w16-T16-64", "interfusion-light")
        out = [replace(s, batch=min(s.batch, 4), warmup=1, iters=2) for s in out if s.name in keep]
    return out


def build(spec: Spec):
    """The model a spec names, called with the spec's inputs and ending in a NUM_CLASSES head."""
    import torch

    if spec.kind == "swinface":
        from microgesture.models.swinface import build_swinface

        return build_swinface(NUM_CLASSES, **spec.build)
    if spec.kind == "light_face":
        from microgesture.models.light_face import build_light_face

        return build_light_face(NUM_CLASSES, **spec.build)
    dims = {"face": spec.build["face"], "rgb": spec.build["rgb"]}
    if spec.kind == "interfusion":
        from microgesture.models.interfusion import InterFusion

        fusion = InterFusion(dims, width=spec.build["width"], depth=2, heads=4)
    else:
        from microgesture.models.cmtf import CrossModalTokenFusion

        fusion = CrossModalTokenFusion(dims, {"face": "sequence", "rgb": "sequence"}, width=spec.build["width"],
                                       depth=2, heads=4)

    class FusionHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fusion, self.fc = fusion, torch.nn.Linear(fusion.embed_dim, NUM_CLASSES)

        def forward(self, face, rgb):
            missing = torch.zeros(face.shape[:2], dtype=torch.bool, device=face.device)
            missing[:, ::4] = True  # a quarter of the frames without a face
            return self.fc(self.fusion({"face": face, "rgb": rgb}, {"face": missing}))

    return FusionHead()


def compare(names: list[str], rounds: int, batch: int | None) -> str:
    """Train steps of two models interleaved in one process (so both see the same load): the median
    time of each and their ratio."""
    import statistics

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    specs_ = [bench_models.find(n, False, batch, specs) for n in names]
    models = [build(s).train() for s in specs_]
    inputs = [[torch.randn(s.batch, *shape) for shape in s.inputs] for s in specs_]
    labels = [torch.randint(0, NUM_CLASSES, (s.batch,)) for s in specs_]
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.01) for m in models]
    times: list[list[float]] = [[], []]
    for r in range(rounds + 1):
        for i, model in enumerate(models):
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(*inputs[i]), labels[i])
            optimizers[i].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[i].step()
            if r:  # the first round warms up
                times[i].append(time.perf_counter() - t0)
    a, b = (statistics.median(t) for t in times)
    return (f"{names[0]}: {specs_[0].batch / a:.1f} clips/s, {names[1]}: {specs_[1].batch / b:.1f} clips/s "
            f"(train, interleaved, {rounds} rounds); time ratio {names[0]} / {names[1]} = {a / b:.2f}")


def run_child(spec: Spec, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--device", args.device, "--amp", args.amp, "--budget", str(args.budget),
           "--worker", spec.name, "--batch", str(spec.batch)] + (["--quick"] if args.quick else [])
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}", "wall_s": round(time.perf_counter() - t0, 1)}
    return {**json.loads(lines[-1][len("RESULT "):]), "wall_s": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: two small models, tiny batches")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    parser.add_argument("--models", nargs="+", metavar="NAME")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--budget", type=float, default=5.0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--compare", nargs=2, metavar="NAME",
                        help="time two models' train steps interleaved in this process and print their ratio")
    parser.add_argument("--rounds", type=int, default=20, help="with --compare: timed steps of each model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compare:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(compare(args.compare, args.rounds, args.batch))
        return 0
    if args.list:
        print("\n".join(f"{s.name:28s} input {s.input_text}, batch {s.batch}" for s in specs(False)))
        return 0
    if args.worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        spec = bench_models.find(args.worker, args.quick, args.batch, specs)
        print("RESULT " + json.dumps(bench_models.run_one(spec, args.device, args.amp, args.budget, build=build)))
        return 0
    chosen = specs(args.quick)
    if args.models:
        chosen = [bench_models.find(m, args.quick, catalogue=specs) for m in args.models]
    chosen = [replace(s, batch=args.batch or s.batch) for s in chosen]
    machine = bench_models.machine()
    print(bench_models.describe(machine, args.threads or "default") + bench_models.busy_note(machine), flush=True)
    rows = [bench_models.report_row(spec, run_child(spec, args)) for spec in chosen]
    text = bench_models.table(rows, args.device)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "device": args.device, "amp": args.amp, "rows": rows},
                                        indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
