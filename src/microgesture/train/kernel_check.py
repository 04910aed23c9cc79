"""Does this machine's oneDNN compute a config's gradients right? One step with it, one without.

oneDNN picks its kernels by the CPU's instruction set (AMX, AVX-512, AVX2), and some of them have
had bugs: the AVX2 1x1 strided convolution's weight gradient on channels_last input with fewer than
8 input channels hangs or returns wrong values (oneDNN issue 6035). This module runs one
forward + backward of a config's model on random inputs shaped as its data would be, once with
oneDNN and once with torch's own kernels (`torch.backends.mkldnn.flags(enabled=False)`), and
reports each weight's relative gradient difference. `ONEDNN_MAX_CPU_ISA=AVX2` in the environment
makes an AMX or AVX-512 machine use the AVX2 kernels most users' CPUs run.

    python -m microgesture.train.kernel_check configs/synthetic/emotion_face.yaml [...] [--vary KEY=V1,V2]

prints one JSON line per config; tests/test_kernels.py runs it in a subprocess with a timeout,
since a broken kernel may hang or crash the process rather than raise.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn

from microgesture.domain.classes import NUM_CLASSES
from microgesture.errors import MicrogestureError
from microgesture.train.build import build_model, clip_shapes
from microgesture.train.config import ExperimentConfig, load_config
from microgesture.train.tasks import tasks_for
from microgesture.typed_config import to_dict

# Gradients below this share of the largest weight gradient are compared against it (see
# relative_differences): a bias just before a normalisation gets ~1e-9 of it, all rounding.
FLOOR = 1e-3


def offline_overrides(path: str) -> list[str]:
    """--set values that keep a config from reading weight files: it is checked with random weights."""
    raw = load_config(path)
    out = []
    for name, enc in raw.model.streams.items():
        if getattr(enc, "weights", None) is not None:
            out.append(f"model.streams.{name}.weights=null")
        if enc.checkpoint is not None:
            out.append(f"model.streams.{name}.checkpoint=null")
    return out


def example_inputs(shapes: dict[str, tuple[int, ...]], batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of `batch` clips per stream, of the clip shapes `train/build.py: clip_shapes` gives."""
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.randn((batch, *shape), generator=gen) for name, shape in shapes.items()}


def build_for_check(cfg: ExperimentConfig) -> nn.Module:
    tasks = {t.name: t.num_outputs for t in tasks_for(cfg.task, NUM_CLASSES)}
    return build_model(cfg.model, tasks, cfg.data.layout, init_encoders=False, task=cfg.task)


def weight_gradients(model: nn.Module, inputs: dict[str, torch.Tensor], *, onednn: bool, seed: int = 0
                     ) -> dict[str, torch.Tensor]:
    """Every weight's gradient after one forward + backward (training mode, dropout drawn from `seed`)."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with torch.backends.mkldnn.flags(enabled=onednn):
        out = model(inputs)
        loss = sum((logits.float() ** 2).mean() for logits in out.values())
        loss.backward()
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def relative_differences(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """{weight name: |g_onednn - g_native| / |g_native|} for one step from the same state.

    A gradient that is zero up to rounding (a bias just before a normalisation) has no relative
    error worth the name: norms below `FLOOR` times the largest weight gradient's are measured
    against that floor instead. Batch-norm statistics move during each step, so they are put back
    before the second one.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with_onednn = weight_gradients(model, inputs, onednn=True)
    model.load_state_dict(state)
    native = weight_gradients(model, inputs, onednn=False)
    floor = FLOOR * max(float(g.norm()) for g in native.values())
    return {k: float((with_onednn[k] - g).norm()) / max(float(g.norm()), floor) for k, g in native.items()}


def model_key(cfg: ExperimentConfig, shapes: dict[str, tuple[int, ...]]) -> str:
    """Configs with the same model and clip shapes (e.g. joint and bone) need one check between them."""
    return json.dumps([to_dict(cfg.model), to_dict(cfg.task), cfg.data.layout, shapes], sort_keys=True, default=str)


def check_experiment(cfg: ExperimentConfig, shapes: dict[str, tuple[int, ...]], batch: int = 2) -> dict:
    """One config's worst relative gradient difference and the weight it is in."""
    torch.manual_seed(0)
    model = build_for_check(cfg)
    diffs = relative_differences(model, example_inputs(shapes, batch))
    worst = max(diffs, key=diffs.get)
    return {"weights": len(diffs), "worst": worst, "max_rel_diff": diffs[worst]}


def load_offline(path: str, overrides: list[str] | None = None) -> ExperimentConfig:
    return load_config(path, offline_overrides(path) + list(overrides or []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", help="YAML configs; one whose model and input shapes an earlier one "
                                                   "had is reported as that one's")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--vary", metavar="KEY=V1,V2,...", help="check each config once per value of KEY "
                                                                "(e.g. model.streams.face.width=4,5,6)")
    args = parser.parse_args(argv)
    try:
        check_all(args)
    except MicrogestureError as exc:  # a bad config or key: one line naming it, no traceback
        print(f"kernel_check: {exc}", file=sys.stderr)
        return 2
    return 0


def check_all(args: argparse.Namespace) -> None:
    seen: dict[str, dict] = {}
    for path, extra in _runs(args.configs, args.vary):
        cfg = load_offline(path, args.overrides + extra)
        shapes = clip_shapes(cfg)
        key = model_key(cfg, shapes)
        result = seen.get(key)
        if result is None:
            result = seen[key] = check_experiment(cfg, shapes, args.batch)
        print(json.dumps({"config": path, "set": extra, **result}), flush=True)


def _runs(configs: list[str], vary: str | None) -> list[tuple[str, list[str]]]:
    if vary is None:
        return [(path, []) for path in configs]
    key, _, values = vary.partition("=")
    return [(path, [f"{key}={v}"]) for path in configs for v in values.split(",")]


if __name__ == "__main__":
    sys.exit(main())
