"""Loading foreign checkpoints: read safely, unwrap, rename with a model's filter, load and report.

A filter function `filter_fn(state_dict, model) -> dict` renames a foreign state dict onto the
model's names. It may return a `FilteredState` (a dict with `.notes`) to explain adaptations,
and raises `IncompatibleCheckpoint` when the file is for another architecture or layout; the
loader turns that into a `DataError` naming the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microgesture.errors import DataError

log = logging.getLogger(__name__)

FilterFn = Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]

# Keys under which training frameworks nest the weights (MMCV/MMEngine/Lightning, timm/DeiT, EMA).
_WRAPPER_KEYS = ("state_dict", "model", "model_state", "module")


class IncompatibleCheckpoint(ValueError):
    """Raised by a filter: the checkpoint is for another architecture, layout or variant."""


class FilteredState(dict):
    """A renamed state dict that also carries human-readable notes about what was adapted."""

    def __init__(self, *args: Any, notes: list[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.notes: list[str] = list(notes or [])


@dataclass
class LoadReport:
    """What happened when a checkpoint was loaded into a model (non-strictly)."""

    path: Path
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every model entry came from the checkpoint and nothing in it was left over."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        lines = [
            f"{self.path}: loaded {len(self.loaded)} entries, {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.mismatched)} with another shape"
        ]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  missing: {k}" for k in self.missing]
        lines += [f"  unexpected: {k}" for k in self.unexpected]
        lines += [f"  shape: {k} checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class _Opaque:
    """Inert stand-in for a non-tensor object in a checkpoint (optimizer hooks, loggers, configs).

    It is never executed: it only records its arguments, so loading stays as safe as
    `weights_only=True` while files written by MMEngine or Lightning remain readable.
    """

    def __new__(cls, *args: Any, **kwargs: Any):
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _stand_ins(path: Path) -> list[tuple[type, str]]:
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    return [(type(name.rsplit(".", 1)[-1], (_Opaque,), {}), name) for name in names]


def read_checkpoint(path: str | Path) -> Any:
    """Unpickle `path` on the CPU without running any code stored in it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # noqa: BLE001 - any failure becomes a DataError below
        first_error = first
    # Objects we do not know (numpy scalars, MMEngine message hubs ...): replace them by inert stand-ins.
    try:
        with torch.serialization.safe_globals(_stand_ins(path)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated, not a torch file, or unsafe to read
        raise DataError(
            path, f"cannot read it as a PyTorch checkpoint ({err}); first attempt: {first_error}"
        ) from err


def extract_state_dict(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside an MMCV/MMEngine `{'meta','state_dict','optimizer'}` wrapper or bare."""
    for _ in range(3):  # wrappers nest at most a couple of levels
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None or _tensor_share(obj) > _tensor_share(inner):
            break
        obj = inner
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = _flatten_parts(obj) or obj
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        top = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise DataError(path, f"no state dict (name -> tensor) found; top level holds {top}")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def own_keys(state: Mapping[str, torch.Tensor], mark: str) -> dict[str, torch.Tensor] | None:
    """A state dict in our own names, possibly under a prefix (e.g. Lightning's "model."), with the
    prefix stripped; `mark` is a key only our model has. None when no key ends with `mark`."""
    prefix = next((k[: -len(mark)] for k in state if k.endswith(mark)), None)
    if prefix is None:
        return None
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
def _flatten_parts(obj: Mapping) -> dict[str, torch.Tensor] | None:
    """A checkpoint split into several named state dicts (SwinFace's `state_dict_backbone`,
    `state_dict_fam` ...) as one dict named `part.key`; None when it is not one."""
    parts = {str(k): v for k, v in obj.items()
             if isinstance(v, Mapping) and v and all(isinstance(t, torch.Tensor) for t in v.values())}
    if len(parts) < 2:
        return None
    return {f"{part}.{key}": value for part, state in parts.items() for key, value in state.items()}


def _tensor_share(obj: Mapping) -> float:
    return sum(isinstance(v, torch.Tensor) for v in obj.values()) / max(len(obj), 1)


def load_weights(
    model: nn.Module,
    path: str | Path,
    filter_fn: FilterFn | None = None,
    *,
    head: str | None = None,
) -> LoadReport:
    """Load the checkpoint at `path` into `model` non-strictly and report what happened.

    Entries whose shape differs from the model's are skipped (reported, never forced);
    `head` is the classifier's name prefix (e.g. "head."), for a clearer note when a foreign
    classifier has another number of classes. Raises `DataError` naming the file when it is
    unreadable or nothing in it belongs to this model.
    """
    path = Path(path)
    state = extract_state_dict(read_checkpoint(path), path)
    notes: list[str] = []
    if filter_fn is not None:
        try:
            state = filter_fn(state, model)
        except IncompatibleCheckpoint as err:
            raise DataError(path, str(err)) from err
        notes += list(getattr(state, "notes", []))
    own = model.state_dict()
    matching = [k for k in state if k in own]
    if not matching:
        raise DataError(
            path,
            f"no entry matches {type(model).__name__}: this checkpoint is for another architecture "
            f"(its first keys: {', '.join(list(state)[:5])})",
        )
    report = LoadReport(path=path, notes=notes)
    usable = {}
    for key in matching:
        if state[key].shape == own[key].shape:
            usable[key] = state[key]
        else:
            report.mismatched.append((key, tuple(state[key].shape), tuple(own[key].shape)))
    report.notes += _head_notes(report.mismatched, head)
    result = model.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    shape_mismatched = {k for k, _, _ in report.mismatched}
    report.missing = sorted(k for k in result.missing_keys if k not in shape_mismatched)
    report.unexpected = sorted(k for k in state if k not in own)
    log.info("%s", report.summary())
    return report


def _head_notes(mismatched, head: str | None) -> list[str]:
    if not head:
        return []
    shapes = {k: (a, b) for k, a, b in mismatched if k.startswith(head) and k.endswith("weight")}
    return [
        f"classifier {key} is for {a[0]} classes, the model has {b[0]}: not loaded, it keeps its "
        f"fresh initialisation (fine-tune it)"
        for key, (a, b) in shapes.items()
    ]
