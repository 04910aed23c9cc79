"""The heatmap stream (PoseC3D's SlowOnly on heatmap volumes, arXiv 2104.13586) on the demo's
synthetic dataset, as one call: for the demo, beside its joint and bone 2s-AGCN streams.

`run_heatmap_stream(out, data_root=...)` trains the stream on the synthetic dataset the demo
uses (the same generator settings give the same annotation file), evaluates it on the held-out
test subjects and returns the metrics; `out/eval/scores.csv` can be fused with the other
streams' score files. Small settings, so it runs on a CPU: 16 of 32 sampled frames at 32 x 32,
joints and limbs of the upper body (imigue22: 43 channels), SlowOnly at a quarter width (base 8,
blocks 2-2-2), bf16 autocast where the hardware does bf16 fast (AMX CPUs, bf16 GPUs).
Re-running with the same `out` resumes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from microgesture.train.config import ExperimentConfig, check_experiment
from microgesture.train.run import LAST, evaluate, fit
from microgesture.typed_config import from_dict

DEMO_EPOCHS = 12


def fast_precision() -> str:
    """bf16 autocast where it is fast (a CUDA GPU with bf16, a CPU with AMX tiles), else float32."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return "bf16-mixed" if amx() else "32-true"


def heatmap_stream_config(data_root: str | Path, epochs: int = DEMO_EPOCHS, seed: int = 0,
                          **synthetic: int) -> ExperimentConfig:
    """The stream's config; `synthetic` overrides the dataset size, as in the demo (tests use a tiny one)."""
    cfg = from_dict(ExperimentConfig, {
        "name": "demo_posec3d_heatmap",
        "data": {
            "synthetic": {"root": str(data_root), "seed": seed, "video": True, **synthetic},
            "layout": "imigue22", "num_frames": 32, "batch_size": 16,
            "heatmap": {"size": 32, "num_frames": 16, "crop_area": [0.8, 1.0]},
        },
        "model": {"streams": {"heatmap": {"encoder": "posec3d", "base_channels": 8, "stage_blocks": [2, 2, 2],
                                          "dropout": 0.3}}},
        "optim": {"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.05, "warmup_epochs": 1},
        "trainer": {"max_epochs": epochs, "seed": seed, "precision": fast_precision(), "accelerator": "auto",
                    "devices": 1},
    })
    check_experiment(cfg)  # fills in the heatmap channels
    return cfg


def run_heatmap_stream(out: str | Path, *, data_root: str | Path, epochs: int = DEMO_EPOCHS, seed: int = 0,
                       **synthetic: int) -> dict:
    """Train (or resume) and evaluate the heatmap stream into `out`; returns the test metrics."""
    out = Path(out)
    cfg = heatmap_stream_config(data_root, epochs, seed, **synthetic)
    trained = fit(cfg, out, resume=(out / "checkpoints" / LAST).is_file())
    return evaluate(cfg, trained.best_checkpoint, out / "eval")
