"""The skeleton demo's settings and config, shared by `microgesture demo` (apps/demo.py) and the
RGB crops stage it may run (apps/crops_demo.py), which trains its skeleton streams the same way.

Kept apart from apps/demo.py so that the crops stage reads them without importing the demo that
calls it (no import circle).
"""

from __future__ import annotations

from pathlib import Path

from microgesture.train.config import ExperimentConfig
from microgesture.typed_config import from_dict

# As configs/synthetic/agcn_*.yaml: a quarter of the published width. 16 epochs: with 12 (same lr
# schedule, one thread, 2026-11-30) the bone stream fell from 49.3% to 41.3% top-1 and the fusion
# from 60.7% to 51.2%, so the time is saved by training the streams side by side, not by training less.
DEMO_EPOCHS = 16
DEMO_WIDTH = 16
# bf16 mixed precision where it is fast (AMX CPUs, bf16 GPUs), else float32: see docs/speed.md for
# the demo's speed and accuracy in both.
DEMO_PRECISION = "auto"


def demo_config(stream: str, data_root: Path, epochs: int, seed: int, precision: str = DEMO_PRECISION,
                **synthetic: int) -> ExperimentConfig:
    """The demo's config; `synthetic` overrides the dataset size (tests use a tiny one)."""
    return from_dict(ExperimentConfig, {
        "name": f"demo_agcn_{stream}",
        "data": {
            "synthetic": {"root": str(data_root), "seed": seed, "video": True, **synthetic},
            # loading in the training process: the two streams already fill two cores side by side
            "num_frames": 32, "batch_size": 16, "num_workers": 0,
        },
        "model": {"streams": {stream: {"encoder": "agcn", "base_channels": DEMO_WIDTH, "dropout": 0.1}}},
        "optim": {"lr": 0.05, "warmup_epochs": 1},
        "trainer": {"max_epochs": epochs, "seed": seed, "accelerator": "auto", "devices": 1, "precision": precision},
    })
