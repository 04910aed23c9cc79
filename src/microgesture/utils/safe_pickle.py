"""Unpickling files a user may be handed (annotation and score pickles) without running their code.

A pickle can name any importable function and have it called while loading (`__reduce__`), so
`pickle.load` on a downloaded file runs whatever its author chose. `load_pickle` allows only the
globals that data pickles need: numpy arrays, dtypes and scalars, builtin containers, and (for
MMAction2 result files) torch tensors, whose storages are read with `torch.load(weights_only=True)`.
Anything else is refused with an error naming the file and the global; nothing runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from microgesture.errors import DataError

_NUMPY = {
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
}
# `_codecs.encode` is how protocol-2 pickles spell bytes (as torch's weights_only loader allows too).
_BUILTINS = {"builtins": {"set", "frozenset", "complex", "slice", "bytearray"}, "collections": {"OrderedDict"},
             "_codecs": {"encode"}}
_TORCH = {
    "torch._utils": {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter"},
    "torch": {"Size", "device", "float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool",
              "FloatStorage", "DoubleStorage", "HalfStorage", "LongStorage", "IntStorage", "ByteStorage",
              "BoolStorage", "BFloat16Storage"},
}


def _allowed(module: str, name: str, torch_ok: bool) -> bool:
    if name in _NUMPY.get(module, ()) or name in _BUILTINS.get(module, ()):
        return True
    if module == "numpy.dtypes" and name.endswith("DType"):  # numpy 2's dtype classes
        return True
    return torch_ok and name in _TORCH.get(module, ())


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, fh, torch_ok: bool):
        super().__init__(fh)
        self.torch_ok = torch_ok

    def find_class(self, module: str, name: str) -> Any:
        if self.torch_ok and module == "torch.storage" and name == "_load_from_bytes":
            return _storage_from_bytes
        if _allowed(module, name, self.torch_ok):
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


class _Refused(pickle.UnpicklingError):
    pass


def _storage_from_bytes(data: bytes) -> Any:
    """A pickled tensor's storage: torch.save bytes, read without running code, on the CPU."""
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def load_pickle(path: str | Path, *, what: str = "pickle", torch_tensors: bool = False) -> Any:
    """Unpickle `path` allowing only data globals (see module doc); DataError otherwise.

    `what` names the kind of file in errors ("annotation pickle", "score file").
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _SafeUnpickler(fh, torch_tensors).load()
    except _Refused as exc:
        raise DataError(path, f"refused: the file asks to import {exc}, which a {what} never needs "
                              "(it may try to run code); nothing from it was executed") from None
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as exc:  # noqa: BLE001 - pickle raises many types on foreign or truncated files
        raise DataError(path, f"not a readable {what} ({type(exc).__name__}: {exc})") from None
