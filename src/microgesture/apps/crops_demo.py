"""The demo's RGB part: skeleton-guided crops, and their fusion with the skeleton streams.

`run_crops_demo(out)` runs after `apps/demo.run_demo(out)`, in the same folder: it reuses the
demo's synthetic dataset and its trained joint and bone runs (`out/joint`, `out/bone`), trains a
small RGB stream on the crops (`out/rgb_crops`), extracts the three encoders' tokens once
(`out/cache_crops`), trains CMTF on them (`out/cmtf`) and reports joint, bone, RGB crops, late
fusion of joint and bone, and CMTF side by side (`out/results_crops.md`). Sizes are the demo's:
2s-AGCN width 16, a light RGB encoder of width 16 on 8 frames of 2x2 48-pixel tiles, a CMTF of
width 64; see docs/fusion.md for its run time and for the full-size ablation.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from microgesture.apps.demo_config import DEMO_WIDTH, demo_config
from microgesture.eval.report import format_metrics, fusion_metrics
from microgesture.train.config import ExperimentConfig
from microgesture.train.extract import extract_for_experiment
from microgesture.train.run import LAST, evaluate, fit
from microgesture.typed_config import from_dict, to_dict
from microgesture.utils.io import write_text

RGB_EPOCHS = 6
FUSION_EPOCHS = 15
RGB_DATA = {"num_frames": 8, "size": 96, "appearance": {"box_jitter": 0.1}}  # as configs/synthetic/rgb_crops.yaml


def _data(out: Path, seed: int, synthetic: dict) -> dict:
    """The demo's data section (same dataset, same split) with the crop clips' settings."""
    data = to_dict(demo_config("joint", out / "data", 1, seed, **synthetic).data)
    data["rgb"] = RGB_DATA
    return data


def crops_config(out: Path, epochs: int, seed: int, synthetic: dict) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "name": "demo_rgb_crops",
        "data": _data(out, seed, synthetic),
        "model": {"streams": {"rgb_crops": {"encoder": "light", "width": 16, "depth": 3, "dropout": 0.3}}},
        "optim": {"optimizer": "adamw", "lr": 0.003, "weight_decay": 0.05, "warmup_epochs": 1},
        "trainer": {"max_epochs": epochs, "seed": seed, "devices": 1},
    })


def fusion_config(out: Path, epochs: int, seed: int, synthetic: dict, checkpoints: dict[str, Path]) -> ExperimentConfig:
    agcn = {"encoder": "agcn", "base_channels": DEMO_WIDTH, "dropout": 0.1}
    streams = {"joint": {**agcn, "checkpoint": str(checkpoints["joint"])},
               "bone": {**agcn, "checkpoint": str(checkpoints["bone"])},
               "rgb_crops": {"encoder": "light", "width": 16, "depth": 3, "checkpoint": str(checkpoints["rgb_crops"])}}
    return from_dict(ExperimentConfig, {
        "name": "demo_cmtf",
        "data": {**_data(out, seed, synthetic), "batch_size": 32, "cache": str(out / "cache_crops")},
        "model": {"streams": streams, "fusion": {"kind": "cmtf", "width": 64, "depth": 2, "heads": 4,
                                                 "dropout": 0.1, "modality_dropout": 0.3}},
        "optim": {"optimizer": "adamw", "lr": 0.001, "weight_decay": 0.05, "warmup_epochs": 1},
        "trainer": {"max_epochs": epochs, "seed": seed, "devices": 1},
    })


def _best(run_dir: Path) -> Path:
    info = json.loads((run_dir / "run_info.json").read_text())
    return Path(info["best_checkpoint"])


def _fit_eval(cfg: ExperimentConfig, run_dir: Path) -> tuple[dict, Path]:
    run = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
    return evaluate(cfg, run.best_checkpoint, run_dir / "eval"), run.best_checkpoint


def run_crops_demo(out: str | Path, *, rgb_epochs: int = RGB_EPOCHS, fusion_epochs: int = FUSION_EPOCHS,
                   seed: int = 0, **synthetic: int) -> dict:
    """Add the RGB crops and CMTF to a finished demo folder `out`; returns {row: metrics}.

    `seed` and `synthetic` must be the ones `run_demo` was given (they name its dataset).
    """
    out = Path(out)
    start = time.perf_counter()
    results: dict[str, dict] = {}
    checkpoints = {}
    for stream in ("joint", "bone"):
        results[f"2s-AGCN {stream}"] = json.loads((out / stream / "eval" / "metrics.json").read_text())
        checkpoints[stream] = _best(out / stream)
    print(f"\n== training the RGB stream on skeleton-guided crops ({rgb_epochs} epochs) -> {out / 'rgb_crops'}")
    results["RGB crops (light)"], checkpoints["rgb_crops"] = _fit_eval(
        crops_config(out, rgb_epochs, seed, synthetic), out / "rgb_crops")
    results["late fusion joint+bone (1:1)"] = fusion_metrics(
        [out / s / "eval" / "scores.csv" for s in ("joint", "bone")], weights=[1.0, 1.0])
    cfg = fusion_config(out, fusion_epochs, seed, synthetic, checkpoints)
    print(f"\n== CMTF of joint, bone and RGB crops on cached tokens ({fusion_epochs} epochs) -> {out / 'cmtf'}")
    extract_for_experiment(cfg, out / "cache_crops", progress=False)
    results["CMTF joint+bone+RGB crops"], _ = _fit_eval(cfg, out / "cmtf")
    table = format_metrics(results)
    summary = (f"Held-out test subjects of the synthetic dataset (chance = 1/32 = 3.1%).\n\n{table}\n\n"
               f"RGB crops and CMTF finished in {(time.perf_counter() - start) / 60:.1f} min. Report: {out}/ "
               "(rgb_crops/, cmtf/ with training_curves.png and eval/)")
    write_text(out / "results_crops.md", "```\n" + summary + "\n```\n")
    print("\n" + summary)
    return results
