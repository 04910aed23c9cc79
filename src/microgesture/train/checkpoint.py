"""Our training checkpoints: written atomically, read without running code, 0.1 ones migrated.

A crash or Ctrl-C mid-save leaves the previous file intact. Reading uses
`torch.load(weights_only=True)`: tensors, numbers, strings and containers only, so a planted or
downloaded checkpoint cannot run code (and everything we write can be read back that way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from microgesture.errors import DataError
from microgesture.train.compat import is_old_model, migrate_config, migrate_state_dict
from microgesture.utils.io import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_run_checkpoint(path, migrate=False)


def read_run_checkpoint(path: str | Path, *, migrate: bool = True) -> dict[str, Any]:
    """Load one of our Lightning checkpoints on the CPU, with a clear error for anything else.

    A checkpoint of microgesture 0.1 comes back in 0.2's form (config and weight names).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on foreign, truncated or unsafe files
        reason = str(exc).split("\n")[0]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            reason = ("it holds objects that would run code when loaded, which no microgesture checkpoint "
                      f"does; refused without running them ({reason})")
        raise DataError(path, f"not a readable checkpoint: {reason}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise DataError(path, "not a microgesture training checkpoint (no 'state_dict'/'hyper_parameters')")
    return migrate_checkpoint(ckpt) if migrate else ckpt


def migrate_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """0.1 -> 0.2: the stored config's model section and the weight names (values unchanged)."""
    hp = ckpt["hyper_parameters"]
    old_model = hp.get("config", {}).get("model") if isinstance(hp.get("config"), dict) else None
    if not is_old_model(old_model):
        return ckpt
    ckpt = dict(ckpt)
    ckpt["hyper_parameters"] = {**hp, "config": migrate_config(hp["config"])}
    ckpt["state_dict"] = migrate_state_dict(ckpt["state_dict"], old_model)
    ckpt.pop("optimizer_states", None)  # parameter order changed with the names: not resumable
    ckpt["migrated_from"] = "0.1"
    return ckpt
