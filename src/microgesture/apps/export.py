"""`microgesture export`: a trained skeleton model as TorchScript or ONNX, for deployment.

Contract: `export_model(cfg, checkpoint, out, fmt)` writes one file atomically and returns an
`ExportReport`. The exported network takes one float32 tensor per skeleton stream, in the order
of `report.inputs` (e.g. joint, bone), each [N, M, T, V, C] as the data pipeline makes it (the
stream's features, such as bones, are computed by the pipeline, not by the exported graph), and
returns one logits tensor [N, outputs] per task, in the order of `report.outputs`. N and T may
differ from the example the export was traced with. Evaluation mode: batch norms use their
running statistics (folded into the convolutions), dropout is off.

Every export is checked before it is kept: the written file is loaded back and run on a fresh
random input of another batch size and length, and its outputs compared with the eager model's
(`report.max_abs_diff`, an error above `tolerance`). ONNX files are run with onnxruntime when it
is installed, else checked structurally with `onnx.checker` (install the `export` extra).
ONNX uses PyTorch's TorchScript-based exporter (`dynamo=False`): seconds instead of minutes
for this model, and dynamic batch and frame axes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from microgesture.domain.layouts import get_layout
from microgesture.domain.modalities import MODALITIES
from microgesture.errors import ConfigError, DataError
from microgesture.train.config import ExperimentConfig
from microgesture.utils.io import atomic_path

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17


@dataclass
class ExportReport:
    path: Path
    format: str
    inputs: list[str]  # stream names, in argument order
    input_shape: list[int | str]  # [N, M, T, V, C] with N and T variable
    outputs: list[str]  # task names, in output order
    checked_with: str  # torch.jit.load | onnxruntime | onnx.checker (structure only)
    max_abs_diff: float | None  # exported vs eager on a fresh input; None when not run
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        diff = "not run" if self.max_abs_diff is None else f"max |exported - eager| = {self.max_abs_diff:.2e}"
        return (f"wrote {self.path} ({self.format}): inputs {', '.join(self.inputs)} each "
                f"[{', '.join(map(str, self.input_shape))}] float32; outputs {', '.join(self.outputs)} (logits); "
                f"checked with {self.checked_with}: {diff}" + "".join(f"\nnote: {n}" for n in self.notes))


class StreamsToLogits(nn.Module):
    """A Recognizer called with positional stream tensors, returning a tuple of logits per task."""

    def __init__(self, recognizer: nn.Module, inputs: list[str], outputs: list[str]):
        super().__init__()
        self.recognizer, self.inputs, self.outputs = recognizer, list(inputs), list(outputs)

    def forward(self, *streams: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.recognizer(dict(zip(self.inputs, streams)))
        return tuple(out[name] for name in self.outputs)


def skeleton_shape(cfg: ExperimentConfig) -> tuple[int, int, int, int]:
    """[M, T, V, C] of one clip of the config's skeleton streams; ConfigError for other streams."""
    for name, enc in cfg.model.streams.items():
        if MODALITIES.get(name) != "skeleton":
            raise ConfigError(f"model.streams.{name}: only skeleton streams can be exported "
                              f"({name!r} is {MODALITIES.get(name, 'unknown')} input)")
    persons = {enc.num_person for enc in cfg.model.streams.values()}
    if len(persons) != 1:
        raise ConfigError(f"model.streams: the streams read different person counts {sorted(persons)}")
    return persons.pop(), cfg.data.num_frames, get_layout(cfg.data.layout).num_joints, 3


def export_model(cfg: ExperimentConfig, checkpoint: str | Path, out: str | Path, fmt: str, *,
                 batch: int = 2, tolerance: float = 1e-3) -> ExportReport:
    """Export the trained model of `checkpoint` (its network must be the config's) to `out`."""
    from microgesture.train.run import load_module

    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    persons, frames, joints, channels = skeleton_shape(cfg)
    module = load_module(checkpoint, cfg)
    if module.model.encoders is None:  # a fusion trained on cached tokens: its encoders from their runs
        from microgesture.train.build import attach_encoders

        attach_encoders(module, cfg)
    inputs, outputs = list(module.model.input_keys), [t.name for t in module.tasks]
    wrapper = StreamsToLogits(module.model, inputs, outputs).eval()
    example = random_streams(len(inputs), batch, persons, frames, joints, channels, seed=0)
    out = Path(out)
    with atomic_path(out, suffix=out.suffix) as tmp:
        if fmt == "torchscript":
            write_torchscript(wrapper, example, tmp)
        else:
            write_onnx(wrapper, example, tmp, inputs, outputs)
        # Another batch size and length than the trace: the axes really are dynamic.
        fresh = random_streams(len(inputs), batch + 1, persons, frames + 4, joints, channels, seed=1)
        checked_with, diff = compare(tmp, fmt, wrapper, fresh, inputs)
        if diff is not None and diff > tolerance:
            raise DataError(out, f"the exported model's outputs differ from the eager model's by {diff:.2e} "
                                 f"(tolerance {tolerance:g}); nothing was written")
    notes = [] if checked_with != "onnx.checker" else ["onnxruntime is not installed: outputs were not compared"]
    return ExportReport(out, fmt, inputs, ["N", persons, "T", joints, channels], outputs, checked_with, diff, notes)


def random_streams(count: int, batch: int, persons: int, frames: int, joints: int, channels: int,
                   seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, persons, frames, joints, channels, generator=gen) for _ in range(count))


@contextmanager
def quiet_tracing() -> Iterator[None]:
    """No grad, and without the tracer's warning about the model's input-shape check (a Python
    condition that holds for the example; the fresh input of another shape checks the axes)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\..* is deprecated.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        yield


def write_torchscript(wrapper: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    with quiet_tracing():
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    traced.save(str(path))


def write_onnx(wrapper: nn.Module, example: tuple[torch.Tensor, ...], path: Path, inputs: list[str],
               outputs: list[str]) -> None:
    try:
        import onnx  # noqa: F401  (the exporter serialises through it)
    except ImportError:
        raise ConfigError("--format onnx needs the onnx package: pip install 'microgesture[export]'") from None
    axes = {name: {0: "batch", 2: "frames"} for name in inputs}
    axes.update({name: {0: "batch"} for name in outputs})
    with quiet_tracing():
        torch.onnx.export(wrapper, example, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=ONNX_OPSET)


def compare(path: Path, fmt: str, wrapper: nn.Module, streams: tuple[torch.Tensor, ...],
            inputs: list[str]) -> tuple[str, float | None]:
    """Run the written file on `streams`; (what ran it, max abs difference to the eager model)."""
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(*streams)]
    if fmt == "torchscript":
        with quiet_tracing():
            loaded = torch.jit.load(str(path))
            got = [t.numpy() for t in loaded(*streams)]
        return "torch.jit.load", _max_diff(got, expected)
    try:
        import onnxruntime
    except ImportError:
        import onnx

        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        names = [i.name for i in model.graph.input]
        if names[: len(inputs)] != inputs:
            raise DataError(path, f"the ONNX graph's inputs are {names}, expected {inputs}")
        return "onnx.checker", None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in zip(inputs, streams)})
    return "onnxruntime", _max_diff(got, expected)


def _max_diff(got, expected) -> float:
    import numpy as np

    return max(float(np.abs(np.asarray(g) - e).max()) for g, e in zip(got, expected))
