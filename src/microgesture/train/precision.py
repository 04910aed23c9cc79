"""`trainer.precision: auto`: bf16 mixed precision where the hardware runs bf16 fast, else float32.

Fast bf16 means a CUDA GPU with bf16 support, or a CPU with AMX tiles (Intel Sapphire Rapids and
later), where oneDNN runs bf16 convolutions and matrix products 3-4x faster than float32
(docs/speed.md). Elsewhere (AVX2 laptops, older Xeons) bf16 autocast on the CPU is emulated and
slower than float32, so "auto" keeps float32 there. `resolve_device` is the same choice for the
device of runs outside the Lightning Trainer (evaluate, predict, extract).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from microgesture.errors import ConfigError

if TYPE_CHECKING:  # annotations only: reading a config must not load torch
    import torch

AUTO = "auto"
# Lightning's names and its short aliases; "auto" is ours.
PRECISIONS = (AUTO, "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "16", "bf16", "64")


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles (torch's own probe; False where torch lacks it, or where
    ONEDNN_MAX_CPU_ISA keeps oneDNN from using them)."""
    import torch  # here, so that reading a config does not load torch

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if "AMX" not in cap and cap not in ("ALL", "DEFAULT"):
        return False
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe() and torch.backends.mkldnn.is_available())


def cpu_isa() -> str:
    """The instruction set torch's CPU kernels use here: "AVX2", "AVX-512", "AVX-512 + AMX", ... with
    the ONEDNN_MAX_CPU_ISA cap, when set (it makes oneDNN use an older set's kernels)."""
    import torch

    names = {"AVX512": "AVX-512", "DEFAULT": "no AVX2", "ZVECTOR": "z/Arch vector", "SVE256": "SVE"}
    level = torch.backends.cpu.get_cpu_capability()
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    isa = names.get(level, level) + (" + AMX" if probe and probe() else "")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{isa}; oneDNN kernels capped at {cap} by ONEDNN_MAX_CPU_ISA" if cap else isa


def machine_description() -> str:
    """One line for a report: the CPU's name and instruction set, and the GPU when there is one.

    Float results are reproducible to the last digit on the same machine only: kernels differ per
    instruction set (docs/training.md)."""
    import torch

    text = f"CPU {cpu_name()} ({cpu_isa()})"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name(0)}"
    return text


def cpu_name() -> str:
    """The processor's name (Linux: /proc/cpuinfo's model name), without importing torch."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def check_precision(precision: str | int) -> None:
    if str(precision) not in PRECISIONS:
        raise ConfigError(f"trainer.precision (--precision): {precision!r} is not one of {', '.join(PRECISIONS)}")


def resolve_precision(precision: str | int, accelerator: str = AUTO) -> str:
    """Lightning's precision for `precision` on this machine ("auto" resolved, the rest unchanged)."""
    check_precision(precision)
    if precision != AUTO:
        return str(precision)
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available()):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if accelerator in (AUTO, "cpu") and cpu_has_fast_bf16() else "32-true"


def resolve_device(device: str | None) -> torch.device:
    """The device of runs outside the Lightning Trainer (evaluate, predict, extract): `--device` as a
    torch.device, by default CUDA when there is a GPU, else the CPU; a clear error for a bad name
    or a GPU that is not there."""
    import torch

    name = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: expected cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is available here (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return dev
