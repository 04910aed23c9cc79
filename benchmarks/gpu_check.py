"""Ready for a GPU in one command: every model, the custom autograd function, resume, DDP, the demo
and the speed beside MMAction2, on a CUDA device. A compact PASS/FAIL report, a JSON of the figures,
exit status 1 when any check fails.

    make gpu-check                                   # python benchmarks/gpu_check.py --json gpu_check.json
    python benchmarks/gpu_check.py [--device cuda|cuda:1|cpu] [--quick] [--only CHECK ...] [--skip CHECK ...]
                                   [--mm-python PATH] [--json OUT] [--workdir DIR] [--keep] [--verbose]

Without a CUDA device (the default `--device cuda`) it prints one line saying so and exits 0.
`--device cpu --quick` runs the same code paths on the CPU at tiny sizes (a minute on 2 cores; the
smoke test in tests/test_benchmarks_smoke.py runs it). Estimated at 4-6 minutes on one H100/H200
with a 16-core host (the CPU reference steps, the demo's dataset and the subprocesses' start-up
dominate); never measured: no GPU was lent to the work that wrote it.

Checks (CHECK names for --only / --skip):
  models    each encoder and fusion as the project's configs build them (train/build.py: build_model
            on configs/imigue/*.yaml and configs/synthetic/*.yaml, weight files, trained-run checkpoints,
            token caches, dropout and freezing switched off: every parameter the loss reaches gets a gradient,
            nothing is random): light RGB, light face, PoseC3D, MViTv2-S, SwinFace, 2s-AGCN, CMTF,
            InterFusion (bags of clips, attention over a video's clips). One training step (forward,
            the task losses of train/tasks.py, backward) on the device in float32 and under bf16
            autocast: loss and gradients finite; float32 gradients against the same step on the CPU
            (same weights, same input; TF32 off for that comparison): relative L2 error of all
            gradients < 1e-3, of the loss < 1e-4; bf16 gradients' cosine with float32's > 0.5 (a
            wrong backward gives ~0); step time (float32 with TF32 off, as compared) and peak memory of each.
  autograd  the 2s-AGCN's custom autograd function (models/agcn.py: _MixProject, the mixed maps
            recomputed in backward) on the device: torch.autograd.gradcheck in float64 (with and
            without bias, with the graph fixed), and its gradients against plain autograd of the
            same ops at a real block's size in float32 (< 1e-5 relative) and under bf16 autocast
            (< 2e-2 relative).
  resume    the training entry point (train/run.py: fit) on a tiny synthetic dataset on the device:
            two uninterrupted runs and one interrupted mid-epoch (Ctrl-C) then resumed, in float32
            and bf16-mixed (float32 only with --quick); deterministic kernels asked for
            (Lightning's deterministic="warn"). The resumed weights must equal the uninterrupted ones
            bit for bit when the two uninterrupted runs agree bit for bit; otherwise (kernels that
            are not deterministic on this device) differ from them by no more than 10x what the two
            uninterrupted runs differ by.
  ddp       a fit with trainer.strategy=ddp, trainer.devices=1 (the config keys the CLI's --strategy
            and --devices set) in a fresh process: Lightning's DDPStrategy must be in use with a
            process group of world size 1 (nccl on CUDA, gloo on CPU), every step done, the weights
            finite; the largest difference from the plain float32 run is reported.
  demo      `microgesture demo`'s skeleton part (apps/demo.py: run_demo without emotion, RGB and
            analysis; the joint and bone 2s-AGCN streams, their evaluation and 1:1 fusion): the default
            synthetic dataset and 16 epochs (a tiny set and 1 epoch with --quick), precision "auto"
            (bf16 on bf16 GPUs). Both runs must have trained on the device (run_info.json), the
            fused top-1 must be finite and, at full size, at least 30% (about 60% on CPUs, chance 3%).
  speed     2s-AGCN and PoseC3D training and inference clips/s on the device, ours beside MMAction2's,
            through benchmarks/bench_vs_mmaction2.py (float32 and bf16 autocast; with the FLOPs a step
            and the share of the device's float32 GEMM peak) and benchmarks/bench_posec3d_vs_mmaction2.py
            (float32 and bf16), both with --device. MMAction2 is optional: give its virtual environment's
            Python with --mm-python or $MMACTION2_PYTHON (see bench_vs_mmaction2.py's docstring to make
            one); without it our side alone is measured and the report says MMAction2 was skipped.

Installing on the GPU machine (Python 3.12, torch with CUDA preinstalled, no internet). The project
needs, besides torch: torchvision (MViTv2-S, the light encoders), numpy, pyyaml, lightning (with
lightning-utilities and torchmetrics), tensorboard (Lightning's TensorBoardLogger; with its protobuf < 5),
matplotlib, av (PyAV), opencv-python-headless and tqdm (imported by the training path). Check what is
there with `python -c "import torchvision, numpy, yaml, lightning, tensorboard, matplotlib, av, cv2, tqdm"`;
bring the missing ones as wheels made on a connected machine of the same Python and platform
(`pip download -d wheels lightning "tensorboard<2.20" "protobuf>=4.25.3,<5" matplotlib av
"opencv-python-headless<5" tqdm pyyaml` there; `pip install --no-index --find-links wheels ...` here;
never let pip replace the machine's torch), then, from the repository root:

    pip install --no-deps -e .
    make gpu-check                     # or: python benchmarks/gpu_check.py --json gpu_check.json

`make gpu-check` uses .venv/bin/python when the repository has a .venv, else $(PYTHON) (python3);
`make gpu-check PYTHON=python3.12 GPU_CHECK_ARGS="--mm-python /opt/venv-mm/bin/python"` passes options.
This script checks the imports first and names what is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHECKS = ("models", "autograd", "resume", "ddp", "demo", "speed")
# module -> the distribution that provides it (the project's dependencies the checked paths import)
NEEDED = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "yaml": "pyyaml",
          "lightning": "lightning", "tensorboard": "tensorboard", "matplotlib": "matplotlib", "av": "av",
          "cv2": "opencv-python-headless", "tqdm": "tqdm"}
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

# The tiny synthetic dataset of tests/test_demo.py (3 subjects, one video each): resume, DDP, quick demo.
TINY_SYNTH = dict(subjects=3, videos_per_subject=1, val_fraction=0.5)
NUM_CLASSES = 32  # iMiGUE's micro-gesture classes


@dataclasses.dataclass
class Result:
    check: str
    name: str
    status: str
    summary: str = ""
    figures: dict = dataclasses.field(default_factory=dict)


class Context:
    """What every check needs: the device, the size mode, a work folder, a log for noisy output."""

    def __init__(self, args: argparse.Namespace, device, workdir: Path):
        self.args, self.device, self.quick, self.workdir = args, device, args.quick, workdir
        self.cuda = device.type == "cuda"
        self.log = workdir / "log.txt"
        self._tiny: Path | None = None
        self.straight_fp32: dict | None = None  # the resume check's plain float32 run: weights, steps
        self.straight_steps: int | None = None

    @contextlib.contextmanager
    def quiet(self):
        """Send the training code's prints, warnings and progress to workdir/log.txt (--verbose: show them)."""
        if self.args.verbose:
            yield
            return
        with open(self.log, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)

    def tiny_data(self) -> Path:
        """The tiny synthetic dataset's root (generated once)."""
        if self._tiny is None:
            from microgesture.apps.demo import demo_config
            from microgesture.train.datamodule import synthetic_annotations

            root = self.workdir / "tiny_data"
            with self.quiet():
                synthetic_annotations(demo_config("joint", root, 1, 0, **TINY_SYNTH).data.synthetic)
            self._tiny = root
        return self._tiny


# ============================================================================= 1. models


@dataclasses.dataclass(frozen=True)
class ModelCase:
    name: str
    config: str
    batch: int
    overrides: tuple[str, ...] = ()
    quick_config: str | None = None  # a smaller config of the same model kind for --quick
    quick_overrides: tuple[str, ...] = ()
    quick_batch: int = 2
    bags: int = 0  # >0: bags of this many clips per video (task.video_pool: attention)
    quick_bags: int = 2


MODEL_CASES = (
    ModelCase("light_rgb", "configs/synthetic/light_rgb.yaml", 8,
              quick_overrides=("model.streams.rgb.width=8", "model.streams.rgb.depth=2", "data.rgb.num_frames=4",
                               "data.rgb.size=32")),
    ModelCase("light_face", "configs/synthetic/emotion_face.yaml", 8,
              quick_overrides=("model.streams.face.width=4", "data.rgb.num_frames=4", "data.rgb.size=32")),
    ModelCase("posec3d", "configs/imigue/longtail_heatmap.yaml", 8,
              quick_config="configs/synthetic/posec3d_heatmap.yaml",
              quick_overrides=("model.streams.heatmap.base_channels=4", "model.streams.heatmap.stage_blocks=[1,1,1]",
                               "data.heatmap.size=16", "data.heatmap.num_frames=8")),
    ModelCase("mvit_v2_s", "configs/imigue/mvit.yaml", 4, quick_batch=1),  # 16 x 224 x 224 only, even with --quick
    # batch 2 x 4 frames at least: over fewer faces the batch norms leave gradients that are rounding noise
    ModelCase("swinface", "configs/imigue/emotion_swinface.yaml", 4, quick_overrides=("data.rgb.num_frames=4",)),
    ModelCase("agcn", "configs/imigue/agcn_joint.yaml", 16,
              quick_overrides=("model.streams.joint.base_channels=8", "data.num_frames=16")),
    ModelCase("cmtf", "configs/imigue/cmtf.yaml", 4, quick_config="configs/synthetic/cmtf.yaml",
              quick_overrides=("model.streams.rgb.width=8", "model.streams.rgb.depth=2", "data.rgb.num_frames=4",
                               "data.rgb.size=32", "model.streams.joint.base_channels=8", "data.num_frames=16",
                               "model.fusion.width=32", "model.fusion.heads=2")),
    ModelCase("interfusion", "configs/imigue/emotion_interfusion.yaml", 2, bags=2,
              quick_config="configs/synthetic/emotion_interfusion.yaml",
              quick_overrides=("model.streams.face.width=4", "model.streams.rgb.width=4", "data.rgb.num_frames=4",
                               "data.rgb.size=32", "model.fusion.width=32", "model.fusion.heads=2",
                               "task.video_pool=attention", "task.clips_per_video=2"), quick_batch=2),
)


# Models --quick leaves out unless named with --models: their input size is fixed.
QUICK_LEFT_OUT = {"mvit_v2_s": "left out by --quick (16 x 224 x 224 clips only: 15 s a step on 2 cores); "
                               "--models mvit_v2_s runs it",
                  "swinface": "left out by --quick (Swin-T on 112 x 112 faces only: 10 s on 2 cores); "
                              "--models swinface runs it"}


def check_config(case: ModelCase, quick: bool):
    """The case's config, with what a check must not depend on switched off: weight files, trained
    runs, token caches (the encoders read clips), dropout and freezing (every parameter trains)."""
    from microgesture.train.config import load_config

    path = REPO / (case.quick_config if quick and case.quick_config else case.config)
    sizes = list(case.quick_overrides if quick else case.overrides)
    cfg = load_config(path, sizes)
    off = ["data.cache=null"]
    for name, enc in cfg.model.streams.items():
        fields = {f.name for f in dataclasses.fields(enc)}
        off += [f"model.streams.{name}.{key}={value}" for key, value in
                (("weights", "null"), ("checkpoint", "null"), ("dropout", "0"), ("freeze", "none"), ("kinetics", "false"))
                if key in fields]
    if cfg.model.fusion is not None:
        off += ["model.fusion.dropout=0", "model.fusion.modality_dropout=0"]
    return load_config(path, sizes + off), path


def no_randomness(model) -> None:
    """Dropout, stochastic depth and modality dropout off (CPU and CUDA draw different numbers)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0
        if type(module).__name__ == "StochasticDepth":  # torchvision.ops (MViTv2-S)
            module.p = 0.0
        if isinstance(getattr(module, "modality_dropout", None), float):
            module.modality_dropout = 0.0


def make_batch(cfg, model, batch: int, bags: int, seed: int = 0) -> tuple[dict, dict, object]:
    """Random inputs of the shapes the data side gives this config, targets per task, and the bags'
    padding mask (None without bags): {modality: tensor}, {task: targets}, clip_pad."""
    import torch

    from microgesture.train.build import clip_shapes
    from microgesture.train.cards import encoder_card

    gen = torch.Generator().manual_seed(seed)
    lead = (batch, bags) if bags else (batch,)
    inputs = {}
    for name, shape in clip_shapes(cfg).items():
        card = encoder_card(cfg.model.streams[name].encoder)
        draw = torch.rand if card.reads == "heatmap" else torch.randn  # heatmap volumes are non-negative
        inputs[name] = draw(*lead, *shape, generator=gen)
        if card.face:  # a face track with a frame lacking its face
            frames = shape[1]
            missing = torch.zeros(*lead, frames, dtype=torch.bool)
            missing.view(-1, frames)[0, -1] = True
            inputs[f"{name}_missing"] = missing
    clip_pad = None
    if bags:
        clip_pad = torch.zeros(batch, bags, dtype=torch.bool)
        clip_pad[0, -1] = True  # the first video has one clip fewer
    targets = {}
    for task, outputs in model.tasks.items():
        shape = (batch,) if (not bags or task in model.video_tasks) else (batch, bags)
        t = torch.randint(0, outputs, shape, generator=gen)
        if clip_pad is not None and t.dim() == 2:
            t[clip_pad] = -1
        targets[task] = t
    return inputs, targets, clip_pad


def train_step(model, tasks, inputs, targets, clip_pad, dtype):
    """Forward, the tasks' losses (train/tasks.py), backward under autocast `dtype` (None: float32): the loss."""
    import torch

    from microgesture.train.tasks import task_loss

    device = next(model.parameters()).device
    model.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = model(inputs, clip_pad=clip_pad) if clip_pad is not None else model(inputs)
        loss = sum(task.weight * task_loss(task, out[task.name].reshape(-1, task.num_outputs),
                                           targets[task.name].reshape(-1)) for task in tasks)
    loss.backward()
    return loss.detach().float()


def gradients(model) -> dict:
    return {k: p.grad.detach().double().cpu() for k, p in model.named_parameters() if p.grad is not None}


def flat(grads: dict, keys) -> object:
    import torch

    return torch.cat([grads[k].flatten() for k in keys])


@contextlib.contextmanager
def ieee_float32():
    """TF32 off for CUDA matrix products and convolutions (float32 compared with the CPU's float32).

    The legacy flags, set and restored as a pair: torch >= 2.9 also has per-backend `fp32_precision`
    settings, but setting some of them makes a later read of the legacy flags (by any library) an error."""
    import torch

    b = torch.backends
    saved = b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved


def timed_step(ctx: Context, step: Callable[[], object]) -> tuple[object, float, float | None]:
    """Run `step` twice (the first warms kernels up; once with --quick); (its result, ms and peak MiB of the last)."""
    import torch

    if not ctx.quick:
        step()
        ctx.sync()
    if ctx.cuda:
        torch.cuda.reset_peak_memory_stats(ctx.device)
        base = torch.cuda.memory_allocated(ctx.device)
    t0 = time.perf_counter()
    out = step()
    ctx.sync()
    ms = 1000 * (time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated(ctx.device) - base) / 2**20 if ctx.cuda else None
    return out, ms, peak


def check_model(ctx: Context, case: ModelCase) -> Result:
    import torch

    from microgesture.train.build import build_model
    from microgesture.train.tasks import tasks_for

    cfg, path = check_config(case, ctx.quick)
    batch, bags = (case.quick_batch, case.bags and case.quick_bags) if ctx.quick else (case.batch, case.bags)
    tasks = tasks_for(cfg.task, NUM_CLASSES)
    torch.manual_seed(0)
    reference = build_model(cfg.model, {t.name: t.num_outputs for t in tasks}, cfg.data.layout, task=cfg.task)
    no_randomness(reference)
    reference.train()
    model = copy.deepcopy(reference).to(ctx.device)
    inputs, targets, pad = make_batch(cfg, reference, batch, bags)
    on = {k: v.to(ctx.device) for k, v in inputs.items()}
    on_targets = {k: v.to(ctx.device) for k, v in targets.items()}
    on_pad = None if pad is None else pad.to(ctx.device)
    figures: dict = {"config": str(path.relative_to(REPO)), "batch": batch, "bags": bags or None,
                     "input": {k: list(v.shape) for k, v in inputs.items()},
                     "params": sum(p.numel() for p in model.parameters())}
    with ieee_float32():
        loss32, figures["fp32_ms"], figures["fp32_peak_mib"] = timed_step(
            ctx, lambda: train_step(model, tasks, on, on_targets, on_pad, None))
        g32 = gradients(model)
        cpu_loss = train_step(reference, tasks, inputs, targets, pad, None)
        gcpu = gradients(reference)
    loss16, figures["bf16_ms"], figures["bf16_peak_mib"] = timed_step(
        ctx, lambda: train_step(model, tasks, on, on_targets, on_pad, torch.bfloat16))
    g16 = gradients(model)
    keys = sorted(gcpu)
    problems = []
    if sorted(g32) != keys or sorted(g16) != keys:
        problems.append("not the same parameters have gradients on the device and on the CPU")
        keys = sorted(set(keys) & set(g32) & set(g16))
    a, b, h = flat(g32, keys), flat(gcpu, keys), flat(g16, keys)
    figures.update(
        params_with_grad=sum(gcpu[k].numel() for k in keys), loss_fp32=float(loss32), loss_cpu=float(cpu_loss),
        loss_bf16=float(loss16), loss_rel_err=abs(float(loss32) - float(cpu_loss)) / max(abs(float(cpu_loss)), 1e-12),
        grad_rel_err=float((a - b).norm() / b.norm().clamp_min(1e-30)),
        bf16_grad_cosine=float(torch.nn.functional.cosine_similarity(h, a, dim=0)),
        grads_finite=bool(torch.isfinite(a).all() and torch.isfinite(h).all()))
    worst = max(keys, key=lambda k: float((g32[k] - gcpu[k]).norm() / gcpu[k].norm().clamp_min(1e-30))
                if gcpu[k].norm() > 1e-6 * b.norm() else 0.0)
    figures["worst_tensor"] = worst
    figures["worst_tensor_rel_err"] = float((g32[worst] - gcpu[worst]).norm() / gcpu[worst].norm().clamp_min(1e-30))
    if not (figures["grads_finite"] and all(map(math.isfinite, (figures["loss_fp32"], figures["loss_bf16"])))):
        problems.append("a loss or gradient is not finite")
    if not figures["grad_rel_err"] < 1e-3:
        problems.append(f"float32 gradients differ from the CPU's by {figures['grad_rel_err']:.1e} (relative L2, > 1e-3)")
    if not figures["loss_rel_err"] < 1e-4:
        problems.append(f"float32 loss differs from the CPU's by {figures['loss_rel_err']:.1e} (relative, > 1e-4)")
    if not figures["bf16_grad_cosine"] > 0.5:
        problems.append(f"bf16 gradients' cosine with float32's is {figures['bf16_grad_cosine']:.3f} (<= 0.5)")
    mem = (f", peak {figures['fp32_peak_mib']:.0f}/{figures['bf16_peak_mib']:.0f} MiB"
           if figures["fp32_peak_mib"] is not None else "")
    summary = (f"step fp32 (TF32 off) {figures['fp32_ms']:.0f} ms, bf16 {figures['bf16_ms']:.0f} ms{mem}; grad vs CPU "
               f"{figures['grad_rel_err']:.1e}, bf16 cos {figures['bf16_grad_cosine']:.3f}; batch {batch}"
               + (f"x{bags}" if bags else ""))
    return Result("models", case.name, FAIL if problems else PASS, "; ".join(problems) or summary, figures)


def check_models(ctx: Context) -> list[Result]:
    out = []
    for case in MODEL_CASES:
        if ctx.args.models and case.name not in ctx.args.models:
            continue
        if ctx.quick and case.name in QUICK_LEFT_OUT and not ctx.args.models:
            out.append(Result("models", case.name, SKIP, QUICK_LEFT_OUT[case.name]))
            report_line(out[-1])
            continue
        out.append(guarded("models", case.name, lambda: check_model(ctx, case)))
        report_line(out[-1])
        free_memory(ctx)
    return out


# ============================================================================= 2. the custom autograd function


def check_autograd(ctx: Context) -> list[Result]:
    import torch
    import torch.nn.functional as F

    from microgesture.models.agcn import _MixProject

    def plain(x, mixing, weight, bias):
        n, t, v, _ = x.shape
        return F.linear(torch.matmul(mixing, x).view(n, t, v, -1), weight, bias)

    d = ctx.device
    results = []

    def gradcheck() -> Result:
        gen = torch.Generator().manual_seed(0)
        n, t, v, c, k, o = 2, 3, 5, 4, 3, 6

        def make(requires: tuple[bool, bool, bool, bool], bias: bool):
            x, m, w, b = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in
                          ((n, t, v, c), (n, 1, v * k, v), (o, k * c), (o,)))
            tensors = [x, m, w, b if bias else None]
            return tuple(None if t is None else t.to(d).requires_grad_(r) for t, r in zip(tensors, requires))

        variants = {"all inputs": ((True, True, True, True), True), "no bias": ((True, True, True, False), False),
                    "fixed graph": ((True, False, True, True), True)}
        passed = {name: bool(torch.autograd.gradcheck(_MixProject.apply, make(req, bias), eps=1e-6, atol=1e-6,
                                                      rtol=1e-4, raise_exception=False))
                  for name, (req, bias) in variants.items()}
        bad = [name for name, ok in passed.items() if not ok]
        return Result("autograd", "gradcheck_fp64", FAIL if bad else PASS,
                      f"gradcheck failed: {', '.join(bad)}" if bad else
                      f"gradcheck float64 on {d.type}: {', '.join(passed)}", {"variants": passed})

    def versus_plain() -> Result:
        gen = torch.Generator().manual_seed(1)
        n, t, v, c, k, o = (2, 8, 17, 16, 3, 16) if ctx.quick else (16, 64, 22, 64, 3, 64)
        base = [torch.randn(*s, generator=gen) for s in ((n, t, v, c), (n, 1, v * k, v), (o, k * c), (o,))]
        figures = {"shape": {"x": [n, t, v, c], "mixing": [n, 1, v * k, v], "weight": [o, k * c]}}

        def grads(custom: bool, dtype):
            ts = [b.detach().clone().to(d).requires_grad_() for b in base]  # fresh leaves each time
            with torch.autocast(d.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                out = (_MixProject.apply if custom else plain)(*ts)
            (out.float() ** 2).sum().backward()
            return out.detach().float(), torch.cat([x.grad.double().flatten() for x in ts])

        problems = []
        for label, dtype, limit in (("fp32", None, 1e-5), ("bf16", torch.bfloat16, 2e-2)):
            with ieee_float32():
                (o1, g1), (o2, g2) = grads(True, dtype), grads(False, dtype)
            err = float((g1 - g2).norm() / g2.norm())
            figures[f"{label}_grad_rel_err"] = err
            figures[f"{label}_out_equal"] = bool(torch.equal(o1, o2))
            if not (torch.isfinite(g1).all() and err < limit):
                problems.append(f"{label} gradients differ from plain autograd by {err:.1e} (> {limit:.0e})")
        return Result("autograd", "vs_plain_autograd", FAIL if problems else PASS, "; ".join(problems) or
                      f"relative L2 error fp32 {figures['fp32_grad_rel_err']:.1e}, bf16 "
                      f"{figures['bf16_grad_rel_err']:.1e}", figures)

    for name, fn in (("gradcheck_fp64", gradcheck), ("vs_plain_autograd", versus_plain)):
        results.append(guarded("autograd", name, fn))
        report_line(results[-1])
    return results


# ============================================================================= 3. resume, 4. DDP


def tiny_config(ctx: Context, precision: str, epochs: int = 2, strategy: str = "auto"):
    """The demo's joint-stream config on the tiny synthetic dataset, on ctx's device."""
    from microgesture.apps.demo import demo_config
    from microgesture.train.config import ExperimentConfig
    from microgesture.typed_config import from_dict, to_dict

    d = to_dict(demo_config("joint", ctx.tiny_data(), epochs, 0, precision, **TINY_SYNTH))
    d["name"] = "gpu_check"
    d["data"].update(num_frames=16 if ctx.quick else 32, batch_size=4, num_workers=0)  # 5 steps an epoch
    d["model"]["streams"]["joint"].update(base_channels=8 if ctx.quick else 64, dropout=0.0)
    d["trainer"].update(accelerator="gpu" if ctx.cuda else "cpu", devices=device_list(ctx.device), strategy=strategy,
                        progress_bar=False, log_every_n_steps=1)
    return from_dict(ExperimentConfig, d)


def device_list(device) -> int | list[int]:
    return [device.index or 0] if device.type == "cuda" else 1


def interrupt_at(step: int):
    """A Lightning callback that simulates Ctrl-C before training step `step` (as tests/conftest.py)."""
    import lightning as L

    class InterruptAt(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == step:
                raise KeyboardInterrupt

    return InterruptAt()


def last_weights(run_dir: Path) -> tuple[dict, int]:
    from microgesture.train.checkpoint import read_run_checkpoint

    ckpt = read_run_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    return ckpt["state_dict"], ckpt["global_step"]


def max_diff(a: dict, b: dict) -> float:
    return max((float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0) for k in a)


def check_resume(ctx: Context) -> list[Result]:
    precisions = ("32-true",) if ctx.quick else ("32-true", "bf16-mixed")
    results = []
    for precision in precisions:
        results.append(guarded("resume", precision, lambda: resume_one(ctx, precision)))
        report_line(results[-1])
    return results


def resume_one(ctx: Context, precision: str) -> Result:
    import torch

    from microgesture.train.run import fit

    cfg = tiny_config(ctx, precision)
    base = ctx.workdir / f"resume_{precision}"
    det = {"deterministic": "warn"}  # deterministic kernels where the device has them; a warning where not
    try:
        with ctx.quiet():
            t0 = time.perf_counter()
            fit(cfg, base / "straight", **det)
            seconds = time.perf_counter() - t0
            a, steps = last_weights(base / "straight")
            if not ctx.quick:  # the run-to-run noise of this device's kernels (--quick: none allowed)
                fit(cfg, base / "again", **det)
            b = last_weights(base / "again")[0] if not ctx.quick else a
            per_epoch = steps // cfg.trainer.max_epochs
            stop = per_epoch + max(1, per_epoch // 2)  # in the middle of the second epoch
            interrupted = False
            try:
                fit(cfg, base / "broken", callbacks=[interrupt_at(stop)], **det)
            except (SystemExit, KeyboardInterrupt):
                interrupted = True
            _, at = last_weights(base / "broken")
            fit(cfg, base / "broken", resume=True, **det)
            c, resumed_steps = last_weights(base / "broken")
    finally:
        torch.use_deterministic_algorithms(False)
    if precision == "32-true":  # the DDP check compares its weights with these
        ctx.straight_fp32, ctx.straight_steps = a, steps
    noise, error = max_diff(a, b), max_diff(a, c)
    exact = all(torch.equal(a[k], c[k]) for k in a)
    figures = {"steps": steps, "steps_per_epoch": per_epoch, "interrupted_at_step": stop,
               "checkpoint_step_at_interrupt": at, "resumed_steps": resumed_steps, "bit_exact": exact,
               "max_abs_diff_resumed": error, "max_abs_diff_two_straight_runs": None if ctx.quick else noise,
               "straight_run_s": round(seconds, 1), "precision": precision}
    problems = []
    if per_epoch < 2:
        problems.append(f"{per_epoch} step(s) an epoch: no mid-epoch interruption possible")
    if not interrupted:
        problems.append("the interrupted run was not interrupted")
    if resumed_steps != steps:
        problems.append(f"the resumed run ended at step {resumed_steps}, the straight one at {steps}")
    if not all(torch.isfinite(v).all() for v in c.values() if v.is_floating_point()):
        problems.append("non-finite weights")
    if noise == 0 and not exact:
        problems.append(f"resumed weights differ from the uninterrupted run's by {error:.1e} although two "
                        "uninterrupted runs agree bit for bit")
    if noise > 0 and error > 10 * noise:
        problems.append(f"resumed weights differ by {error:.1e}, more than 10x the run-to-run noise {noise:.1e}")
    how = "bit-exact" if exact else f"max |diff| {error:.1e} (two straight runs differ by {noise:.1e})"
    if not ctx.quick:
        how += ", two straight runs " + ("bit-identical" if noise == 0 else f"differ by {noise:.1e}")
    summary = f"{steps} steps, interrupted at {stop}, resumed from step {at}: {how}; a straight run {seconds:.1f} s"
    return Result("resume", precision, FAIL if problems else PASS, "; ".join(problems) or summary, figures)


def check_ddp(ctx: Context) -> list[Result]:
    result = guarded("ddp", "ddp_devices_1", lambda: ddp_one(ctx))
    report_line(result)
    return [result]


def ddp_one(ctx: Context) -> Result:
    import torch

    import yaml

    from microgesture.typed_config import to_dict

    cfg = tiny_config(ctx, "32-true", strategy="ddp")
    path = ctx.workdir / "ddp.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    out = ctx.workdir / "ddp_run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    # As many threads as this process: the same float32 sums as the plain fit. OMP_NUM_THREADS too, or
    # Lightning's DDP sets torch's threads to the cores per process itself.
    threads = ["--threads", str(torch.get_num_threads())]
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--ddp-worker", str(path), str(out), *threads],
                          capture_output=True, text=True, env=env, timeout=300)  # a hung NCCL start fails here
    seconds = time.perf_counter() - t0
    with open(ctx.log, "a") as log:
        log.write(proc.stdout + proc.stderr)
    probe = next((json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("PROBE ")), None)
    if proc.returncode != 0 or probe is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Result("ddp", "ddp_devices_1", FAIL, f"the DDP fit exited {proc.returncode}: {tail}", {})
    weights, steps = last_weights(out)
    info = json.loads((out / "run_info.json").read_text())
    plain = ctx.straight_fp32
    figures = {**probe, "global_step": steps, "world_size": info["world_size"], "device": info["device"],
               "seconds": round(seconds, 1),
               "max_abs_diff_vs_plain_fit": None if plain is None else max_diff(plain, weights)}
    expected_backend = "nccl" if ctx.cuda else "gloo"
    problems = []
    if probe["strategy"] != "DDPStrategy":
        problems.append(f"Lightning used {probe['strategy']}, not DDPStrategy")
    if not probe["distributed"] or probe["world_size"] != 1 or expected_backend not in str(probe["backend"]):
        problems.append(f"process group {probe['backend']} of world size {probe['world_size']} "
                        f"(expected {expected_backend}, 1)")
    if not info["device"].startswith(ctx.device.type):
        problems.append(f"trained on {info['device']}, not {ctx.device}")
    if plain is not None and steps != ctx.straight_steps:
        problems.append(f"{steps} steps, the plain fit {ctx.straight_steps}")
    if not all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()):
        problems.append("non-finite weights")
    vs = "" if plain is None else f", max |diff| vs the plain fit {figures['max_abs_diff_vs_plain_fit']:.1e}"
    summary = (f"{probe['strategy']}, {probe['backend']} world size 1 on {info['device']}, {steps} steps in "
               f"{seconds:.0f} s (fresh process){vs}")
    return Result("ddp", "ddp_devices_1", FAIL if problems else PASS, "; ".join(problems) or summary, figures)


def ddp_worker(config: str, out: str) -> int:
    """In a fresh process: load the config (as the CLI does) and fit it, reporting the strategy in use."""
    import lightning as L
    import torch

    from microgesture.train.config import load_config
    from microgesture.train.run import fit

    probe: dict = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, module):
            dist = torch.distributed
            on = dist.is_available() and dist.is_initialized()
            probe.update(strategy=type(trainer.strategy).__name__, distributed=on,
                         backend=dist.get_backend() if on else None, world_size=dist.get_world_size() if on else None)

    fit(load_config(config), out, callbacks=[Probe()])
    print("PROBE " + json.dumps(probe), flush=True)
    return 0


# ============================================================================= 5. the demo's skeleton streams


def check_demo(ctx: Context) -> list[Result]:
    result = guarded("demo", "skeleton_streams", lambda: demo_one(ctx))
    report_line(result)
    return [result]


def demo_one(ctx: Context) -> Result:
    import numpy as np

    from microgesture.apps.demo import DEMO_EPOCHS, FUSED, STREAMS, run_demo

    out = ctx.workdir / "demo"
    out.mkdir(exist_ok=True)
    kwargs: dict = {}
    if ctx.quick:  # the tiny dataset, one epoch, the streams one after the other in this process
        (out / "data").symlink_to(ctx.tiny_data(), target_is_directory=True)
        kwargs = dict(epochs=1, parallel=False, **TINY_SYNTH)
    t0 = time.perf_counter()
    with ctx.quiet():
        fused = run_demo(out, emotion=False, analyze=False, rgb=False, **kwargs)
    seconds = time.perf_counter() - t0
    summary = json.loads((out / "results.json").read_text())
    runs = {s: json.loads((out / s / "run_info.json").read_text()) for s in STREAMS}
    top1 = {name: m["top1"] for name, m in summary["skeleton"].items()}
    figures = {"epochs": kwargs.get("epochs", DEMO_EPOCHS), "seconds": round(seconds, 1),
               "time": summary.get("time"), "top1": top1, "macro_f1": fused["macro_f1"],
               "devices": {s: r["device"] for s, r in runs.items()}, "precision": runs["joint"]["precision"]}
    problems = [f"the {s} stream trained on {r['device']}, not {ctx.device.type}" for s, r in runs.items()
                if not r["device"].startswith(ctx.device.type)]
    if not np.isfinite(fused["top1"]):
        problems.append("the fused top-1 is not finite")
    if not ctx.quick and fused["top1"] < 0.30:
        problems.append(f"fused top-1 {100 * fused['top1']:.1f}% (< 30%; about 60% on CPUs)")
    stages = summary.get("time", {})
    summary_text = (f"{FUSED} top-1 {100 * fused['top1']:.1f}% (joint {100 * top1['2s-AGCN joint']:.1f}, bone "
                    f"{100 * top1['2s-AGCN bone']:.1f}), {runs['joint']['precision']} on {runs['joint']['device']}; "
                    f"data {stages.get('data', {}).get('wall_s', '?')} s, skeleton "
                    f"{stages.get('skeleton', {}).get('wall_s', '?')} s")
    return Result("demo", "skeleton_streams", FAIL if problems else PASS, "; ".join(problems) or summary_text, figures)


# ============================================================================= 6. speed beside MMAction2


def mm_python(ctx: Context) -> str | None:
    python = ctx.args.mm_python or os.environ.get("MMACTION2_PYTHON")
    return python if python and Path(python).is_file() else None


def run_bench(ctx: Context, script: str, args: list[str], json_out: Path, timeout: float) -> tuple[dict | None, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, str(HERE / script), *args, "--json", str(json_out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, f"{script} ran past {timeout:.0f} s"
    with open(ctx.log, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0 or not json_out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{script} exited {proc.returncode}: {tail}"
    return json.loads(json_out.read_text()), ""


def check_speed(ctx: Context) -> list[Result]:
    results = []
    mm = mm_python(ctx)
    for amp in ("none",) if ctx.quick else ("none", "bf16"):
        results.append(guarded("speed", f"agcn_{amp}", lambda: speed_agcn(ctx, amp, mm)))
        report_line(results[-1])
    results.append(guarded("speed", "posec3d", lambda: speed_posec3d(ctx, mm)))
    report_line(results[-1])
    return results


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def speed_agcn(ctx: Context, amp: str, mm: str | None) -> Result:
    name = f"agcn_{amp}"
    if ctx.quick:
        args = ["--quick", "--threads", "1"]
    else:  # our side and MMAction2's alternated A B B A; batch 16, T=100, coco17, 60 classes
        args = ["--pairs", "3", "--steps", "10", "--warmup", "3", "--threads", str(min(8, os.cpu_count() or 1))]
    args += ["--device", str(ctx.device), "--amp", amp] + (["--mm-python", mm] if mm else [])
    report, error = run_bench(ctx, "bench_vs_mmaction2.py", args, ctx.workdir / f"speed_{name}.json", 300)
    if report is None:
        return Result("speed", name, FAIL, error, {})
    figures: dict = {"mmaction2": "measured" if mm else "skipped (no --mm-python / $MMACTION2_PYTHON)",
                     "gemm_peak_gflops_fp32": report["gemm_peak_gflops"], "same_graph": report.get("same_graph")}
    problems, parts = [], []
    for phase in ("train", "infer"):
        p = report["phases"][phase]
        figures[phase] = {side: {k: p[side][k] for k in ("clips_per_s", "peak_mib", "gflops", "of_gemm_peak")}
                          for side in ("ours", "mmaction2") if side in p}
        figures[phase]["ratio"] = p.get("ratio")
        if not p["ours"]["clips_per_s"] > 0:
            problems.append(f"{phase}: no figure")
        theirs = f" vs MMAction2 {p['mmaction2']['clips_per_s']:.0f} ({_ratio(p.get('ratio'))})" if "ratio" in p else ""
        parts.append(f"{phase} {p['ours']['clips_per_s']:.0f} clips/s{theirs}")
    if mm and report.get("same_graph") is False:
        problems.append("the two sides' graphs differ")
    summary = "; ".join(parts) + ("" if mm else "; MMAction2 skipped") + f" (batch {16 if not ctx.quick else 2})"
    return Result("speed", name, FAIL if problems else PASS, "; ".join(problems) or summary, figures)


def speed_posec3d(ctx: Context, mm: str | None) -> Result:
    variants = ["ours-fp32"] if ctx.quick else ["ours-fp32", "ours-bf16"]
    if mm:
        variants = (["mmaction2"] if ctx.quick else ["mmaction2", "mmaction2-bf16"]) + variants
    if ctx.quick:
        args = ["--batch", "2", "--frames", "8", "--size", "16", "--steps", "1", "--rounds", "1", "--threads", "1"]
    else:  # PoseC3D's SlowOnly-R50 at its iMiGUE size: 17 channels... as the CPU figures, 48 frames of 56x56
        args = ["--batch", "16", "--steps", "10", "--rounds", "2" if mm else "1",
                "--threads", str(min(8, os.cpu_count() or 1))]
    args += ["--device", str(ctx.device), "--variants", ",".join(variants)] + (["--mm-python", mm] if mm else [])
    report, error = run_bench(ctx, "bench_posec3d_vs_mmaction2.py", args, ctx.workdir / "speed_posec3d.json", 400)
    if report is None:
        return Result("speed", "posec3d", FAIL, error, {})
    table = report["summary"]
    missing = [v for v in variants if v not in table]
    figures = {"mmaction2": "measured" if mm else "skipped (no --mm-python / $MMACTION2_PYTHON)",
               "variants": {v: {k: row.get(k) for k in ("clips_per_s", "infer_clips_per_s", "peak_rss_gb",
                                                         "peak_cuda_gb", "wall_speed_vs_mmaction2",
                                                         "infer_speed_vs_mmaction2")} for v, row in table.items()}}
    parts = []
    for v, row in table.items():
        ratio = (f" ({_ratio(row.get('wall_speed_vs_mmaction2'))}/{_ratio(row.get('infer_speed_vs_mmaction2'))} "
                 "of MMAction2)" if mm and not v.startswith("mmaction2") else "")
        parts.append(f"{v} train {row['clips_per_s']:.1f} / infer {row['infer_clips_per_s']:.1f} clips/s{ratio}")
    problems = [f"no figure for {v}" for v in missing]
    problems += [f"{v}: no positive figure" for v, row in table.items()
                 if not (row["clips_per_s"] > 0 and row["infer_clips_per_s"] > 0)]
    summary = "; ".join(parts) + ("" if mm else "; MMAction2 skipped")
    return Result("speed", "posec3d", FAIL if problems else PASS, "; ".join(problems) or summary, figures)


# ============================================================================= the run


def guarded(check: str, name: str, fn: Callable[[], Result]) -> Result:
    """A check's result, or FAIL with the exception's last line (the traceback goes to the log)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        text = traceback.format_exc()
        LOG_TAIL.append(f"{check}/{name}:\n{text}")
        line = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return Result(check, name, FAIL, line[:300], {"traceback": text[-3000:]})


LOG_TAIL: list[str] = []


def report_line(r: Result) -> None:
    print(f"{r.status}  {r.check + '/' + r.name:28s} {r.summary}", flush=True)


def free_memory(ctx: Context) -> None:
    import gc

    import torch

    gc.collect()
    if ctx.cuda:
        torch.cuda.empty_cache()


def cpu_time() -> float:
    """CPU seconds of this process and its finished children."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def missing_modules() -> list[str]:
    import importlib.util

    return [f"{module} ({dist})" for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]


def nvidia_present() -> bool:
    """A GPU seen by the driver, asked without torch (for when torch itself is missing)."""
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def environment(ctx: Context) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cpu_count": os.cpu_count(), "device": str(ctx.device), "quick": ctx.quick,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", bf16_supported=torch.cuda.is_bf16_supported())
    try:
        from importlib.metadata import version

        info["lightning"] = version("lightning")
    except Exception:  # noqa: BLE001
        info["lightning"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device: cuda (default), cuda:1, cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (with --device cpu: the CPU smoke run)")
    parser.add_argument("--only", nargs="+", choices=CHECKS, metavar="CHECK", help=f"only these of {', '.join(CHECKS)}")
    parser.add_argument("--skip", nargs="+", choices=CHECKS, default=[], metavar="CHECK", help="leave these out")
    parser.add_argument("--models", nargs="+", choices=[c.name for c in MODEL_CASES], metavar="MODEL",
                        help="models check: only these")
    parser.add_argument("--mm-python", help="Python of a virtual environment with MMAction2 1.2.0 ($MMACTION2_PYTHON)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a temporary one, removed unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (runs, logs, benchmark JSONs)")
    parser.add_argument("--verbose", action="store_true", help="show the training code's output")
    parser.add_argument("--threads", type=int,
                        help="torch threads in this process (default: torch's choice; 1 with --quick, as on a busy "
                             "2-core machine more threads can be 10x slower)")
    parser.add_argument("--ddp-worker", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        return ddp_worker(*args.ddp_worker)
    try:
        import torch
    except ImportError:
        if not nvidia_present():
            print("gpu-check: no CUDA device found (and torch is not importable here); nothing checked")
            return 0
        print(f"gpu-check: FAIL: a GPU is present but {sys.executable} cannot import torch; see this script's "
              "docstring to install the project")
        return 1
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device found (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
              "nothing checked (--device cpu --quick runs the same checks on the CPU)")
        return 0
    missing = missing_modules()
    if missing:
        print(f"gpu-check: FAIL: {sys.executable} lacks {', '.join(missing)}; see this script's docstring")
        return 1
    if args.threads or args.quick:
        torch.set_num_threads(args.threads or 1)
    sys.path.insert(0, str(REPO / "src"))  # this checkout's code, whatever is installed
    chosen = [c for c in CHECKS if c in (args.only or CHECKS) and c not in args.skip]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(args, device, workdir)
    env = environment(ctx)
    print(f"gpu-check on {env.get('gpu', 'cpu')} ({device}); torch {env['torch']}, CUDA {env['cuda']}, Python "
          f"{env['python']}, Lightning {env['lightning']}{', quick sizes' if args.quick else ''}; work folder "
          f"{workdir}", flush=True)
    started = time.perf_counter()
    runners = {"models": check_models, "autograd": check_autograd, "resume": check_resume, "ddp": check_ddp,
               "demo": check_demo, "speed": check_speed}
    results: list[Result] = []
    seconds, cpu_seconds = {}, {}
    for check in chosen:
        t0, c0 = time.perf_counter(), cpu_time()
        results += runners[check](ctx)
        seconds[check], cpu_seconds[check] = round(time.perf_counter() - t0, 1), round(cpu_time() - c0, 1)
    wall = time.perf_counter() - started
    failed = [r for r in results if r.status == FAIL]
    counts = {status: sum(r.status == status for r in results) for status in (PASS, SKIP, FAIL)}
    print(f"\ngpu-check: {counts[PASS]} passed, {counts[SKIP]} skipped, {counts[FAIL]} failed in {wall:.0f} s "
          f"({', '.join(f'{c} {s:.0f} s' for c, s in seconds.items())}); {'FAIL' if failed else 'PASS'}")
    for text in LOG_TAIL:
        print("\n" + text.rstrip(), file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"script": "gpu_check", "argv": sys.argv[1:] if argv is None else argv, "environment": env,
                  "checks": chosen, "seconds": seconds, "cpu_seconds": cpu_seconds, "wall_s": round(wall, 1),
                  "passed": not failed,
                  "results": [dataclasses.asdict(r) for r in results]}
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if failed or args.keep or args.workdir:
        print(f"work folder kept: {workdir} (log.txt holds the training output)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
