"""Training and evaluation runs: the Trainer owns devices, precision, DDP, checkpoints and logs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from microgesture.config import to_dict
from microgesture.errors import ConfigError, DataError
from microgesture.eval.metrics import classification_metrics, confusion_matrix
from microgesture.eval.plots import plot_confusion_matrix, plot_training_curves
from microgesture.eval.scores import ScoreTable, write_scores
from microgesture.train.checkpoint import AtomicCheckpointIO, read_checkpoint
from microgesture.train.config import ExperimentConfig
from microgesture.train.datamodule import MGDataModule
from microgesture.train.logs import AppendingCSVLogger
from microgesture.train.module import MGClassifier, class_weights
from microgesture.utils.io import write_text

LAST = "last.ckpt"


@dataclass
class FitResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_val_top1: float | None


def make_trainer(cfg: ExperimentConfig, run_dir: Path, callbacks: list | None = None, **overrides: Any) -> L.Trainer:
    t = cfg.trainer
    ckpt_dir = run_dir / "checkpoints"
    # Two callbacks: Lightning's save_last only refreshes last.ckpt when a top-k file is saved,
    # but resuming needs the latest epoch every time.
    best = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor="val_top1", mode="max", save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False,
    )
    last = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    kwargs: dict[str, Any] = dict(
        default_root_dir=run_dir,
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        logger=[AppendingCSVLogger(run_dir, name="", version="logs"), TensorBoardLogger(run_dir, name="", version="tb")],
        callbacks=[best, last, *(callbacks or [])],
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress_bar,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        use_distributed_sampler=False,  # EpochSampler splits the data across ranks itself
        deterministic=False,
        num_sanity_val_steps=0,
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def fit(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: list | None = None,
    **trainer_overrides: Any,
) -> FitResult:
    """Train; with `resume`, continue from `run_dir/checkpoints/last.ckpt` exactly where it stopped."""
    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / LAST
    if resume and not last.is_file():
        raise DataError(last, "nothing to resume: no last checkpoint in this run folder")
    if not resume and last.is_file():
        raise DataError(run_dir, "run folder already holds a checkpoint; pass --resume or choose another --out")
    if resume:
        _check_same_model(last, cfg)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = MGDataModule.for_experiment(cfg)
    dm.prepare_data()
    weights = class_weights(dm.train_labels(), dm.num_classes, cfg.optim.class_weighting)
    module = MGClassifier.from_config(
        cfg, num_classes=dm.num_classes, class_names=dm.class_names, layout=dm.cfg.layout,
        class_weight=None if weights is None else weights.tolist(),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    has_val = dm.has_split(cfg.data.val_split)
    if not has_val:
        trainer_overrides.setdefault("limit_val_batches", 0)
    trainer = make_trainer(cfg, run_dir, callbacks, **trainer_overrides)
    if not has_val:  # no validation split: keep the last epoch as "best"
        trainer.checkpoint_callback.monitor = None
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume else None)
    best = trainer.checkpoint_callback.best_model_path
    score = trainer.checkpoint_callback.best_model_score
    result = FitResult(run_dir, Path(best) if best else last, last, None if score is None else float(score))
    if trainer.global_rank == 0:
        plot_training_curves(run_dir / "logs" / "metrics.csv", run_dir / "training_curves.png")
        info = {
            "world_size": trainer.world_size, "device": str(module.device), "precision": str(trainer.precision),
            "epochs": trainer.current_epoch, "global_step": trainer.global_step,
            "seconds_this_session": round(time.perf_counter() - started, 1), "resumed": resume,
            "best_checkpoint": str(result.best_checkpoint), "best_val_top1": result.best_val_top1,
        }
        write_text(run_dir / "run_info.json", json.dumps(info, indent=2))
    return result


def _check_same_model(checkpoint: Path, cfg: ExperimentConfig) -> None:
    trained = read_checkpoint(checkpoint)["hyper_parameters"].get("config", {}).get("model")
    if trained != to_dict(cfg.model):
        raise ConfigError(f"{checkpoint}: the checkpoint was trained with model {trained}, "
                          f"but the config asks for {to_dict(cfg.model)}")


def load_module(checkpoint: str | Path, cfg: ExperimentConfig | None = None) -> MGClassifier:
    """Load a trained classifier; if `cfg` is given its model section must match the checkpoint's."""
    ckpt = read_checkpoint(checkpoint)
    hp = ckpt["hyper_parameters"]
    if cfg is not None:
        _check_same_model(Path(checkpoint), cfg)
    module = MGClassifier(**hp, init_encoders=False)  # the checkpoint holds every weight
    missing, unexpected = module.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise DataError(checkpoint, f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return module.eval()


@torch.no_grad()
def predict_scores(module: MGClassifier, dm: MGDataModule, split: str, num_clips: int, device: torch.device) -> ScoreTable:
    module.to(device)
    clips = dm.clips(split)
    scores, labels = [], []
    for batch in dm.eval_dataloader(split, num_clips):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        scores.append(module(batch).float().cpu())
        labels.append(batch["label"].cpu())
    return ScoreTable(
        sample_ids=[c["frame_dir"] for c in clips],
        labels=torch.cat(labels).numpy().astype(np.int64),
        scores=torch.cat(scores).numpy().astype(np.float32),
        source=None,
    )


def evaluate(
    cfg: ExperimentConfig,
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = None,
    num_clips: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Score a split: metrics.json, scores.csv (for `fuse`) and confusion_matrix.png in out_dir."""
    out_dir = Path(out_dir)
    module = load_module(checkpoint, cfg)
    dm = MGDataModule.for_experiment(cfg)
    dm.prepare_data()
    split = split or cfg.data.test_split
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    table = predict_scores(module, dm, split, num_clips or cfg.data.test_clips, dev)
    return write_evaluation(table, out_dir, dm.class_names, extra={"split": split, "checkpoint": str(checkpoint)})


def write_evaluation(table: ScoreTable, out_dir: Path, class_names: list[str], extra: dict | None = None) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_scores(out_dir / "scores.csv", table)
    labelled = table.labels >= 0
    if not labelled.any():
        raise DataError(out_dir, "no labelled samples in this split: nothing to evaluate (use `predict`)")
    metrics = classification_metrics(table.scores[labelled], table.labels[labelled], class_names=class_names)
    metrics.update(extra or {})
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    cm = confusion_matrix(table.labels[labelled], table.scores[labelled].argmax(1), len(class_names))
    plot_confusion_matrix(cm, class_names, out_dir / "confusion_matrix.png")
    return metrics
