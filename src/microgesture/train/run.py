"""Training and evaluation runs: the Trainer owns devices, precision, DDP, checkpoints and logs."""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from microgesture.errors import ConfigError, DataError
from microgesture.eval.plots import plot_training_curves
from microgesture.eval.scores import ScoreTable
from microgesture.train.build import attach_encoders, encoders_meta, video_inputs
from microgesture.train.cards import FUSION_ARCHITECTURE, encoder_card
from microgesture.train.checkpoint import AtomicCheckpointIO, read_run_checkpoint
from microgesture.train.config import ExperimentConfig, OptimConfig, monitors
from microgesture.train.datamodule import MGDataModule
from microgesture.train.logs import AppendingCSVLogger, EpochLine
from microgesture.train.module import Classifier, class_weights
from microgesture.train.precision import resolve_device, resolve_precision
from microgesture.train.tasks import check_emotion_labels
from microgesture.eval.report import write_evaluation
from microgesture.typed_config import from_dict, to_dict
from microgesture.utils.io import write_text
from microgesture.utils.runlock import RunLock

LAST = "last.ckpt"


@dataclass
class FitResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_score: float | None
    monitor: str


def data_module(cfg: ExperimentConfig, *, cached: bool | None = None, progress: bool = True,
                clips_only: bool = False) -> MGDataModule:
    """The data a config's model reads: its streams' modalities, or its cached tokens (which must
    come from the encoders the config names); bags of clips per video for a video-level model
    (task.video_pool: attention) unless `clips_only`."""
    cached = cfg.data.cache is not None if cached is None else cached
    encoders = encoders_meta(cfg) if cached else None
    bags = cfg.task.clips_per_video if cfg.task.video_pool == "attention" and not clips_only else None
    return MGDataModule(cfg.data, list(cfg.model.streams), video=video_inputs(cfg), seed=cfg.trainer.seed,
                        cached=cached, cache_encoders=encoders, progress=progress, bags=bags)


def quiet_lightning() -> None:
    """Keep Lightning's advertisements, device banners and dependency deprecations out of the output;
    its warnings about the run itself still show."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*The number of training batches .* is smaller than the logging interval.*")


def make_trainer(cfg: ExperimentConfig, run_dir: Path, callbacks: list | None = None, **overrides: Any) -> L.Trainer:
    quiet_lightning()
    t = cfg.trainer
    ckpt_dir = run_dir / "checkpoints"
    monitor = cfg.task.best_metric
    # Two callbacks: Lightning's save_last only refreshes last.ckpt when a top-k file is saved,
    # but resuming needs the latest epoch every time.
    best = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor=monitor, mode=monitors(cfg.task.kind)[monitor], save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False,
    )
    last = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    # A bar where someone watches a terminal; else one line per epoch, no carriage-return spam in logs.
    bar = t.progress_bar and sys.stderr.isatty()
    progress = [] if bar or not t.progress_bar else [EpochLine(f"{cfg.name}: ")]
    kwargs: dict[str, Any] = dict(
        default_root_dir=run_dir,
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=resolve_precision(t.precision, t.accelerator),
        logger=[AppendingCSVLogger(run_dir, name="", version="logs"), TensorBoardLogger(run_dir, name="", version="tb")],
        callbacks=[best, last, *progress, *(callbacks or [])],
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=bar,
        enable_model_summary=False,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        use_distributed_sampler=False,  # EpochSampler splits the data across ranks itself
        deterministic=False,
        num_sanity_val_steps=0,
    )
    kwargs.update(overrides)
    check_devices(t)
    try:
        return L.Trainer(**kwargs)
    except (MisconfigurationException, ValueError, RuntimeError) as exc:
        raise ConfigError(f"trainer: {str(exc).splitlines()[0]} (trainer.accelerator={t.accelerator!r}, "
                          f"devices={t.devices!r}, strategy={t.strategy!r}, precision={t.precision!r})") from None


def check_devices(t) -> None:
    """Trainer settings that cannot work on this machine, as a sentence naming the option."""
    if isinstance(t.devices, int) and t.devices == 0 or t.devices in ("0", []):
        raise ConfigError("trainer.devices (--devices): 0 devices cannot train; use 1, a list, or auto")
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator (--accelerator): {t.accelerator!r} asked for, but no CUDA GPU "
                          "is available here; use cpu or auto")


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
    with RunLock(run_dir):
        if resume and not last.is_file():
            raise DataError(last, "nothing to resume: no last checkpoint in this run folder")
        if not resume and last.is_file():
            raise DataError(run_dir, "run folder already holds a checkpoint; pass --resume or choose another --out")
        if resume:
            check_same_model(last, cfg, resuming=True)
        return _fit(cfg, run_dir, last if resume else None, callbacks, trainer_overrides)


def _fit(cfg: ExperimentConfig, run_dir: Path, resume_from: Path | None, callbacks, trainer_overrides) -> FitResult:
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = data_module(cfg)
    dm.prepare_data()
    check_emotion_labels(cfg.task.kind, dm, (cfg.data.train_split, cfg.data.val_split))
    weights = class_weights(dm.train_labels(), dm.num_classes, cfg.optim.class_weighting, cfg.optim.class_balance_beta)
    module = Classifier.from_config(
        cfg, num_classes=dm.num_classes, class_names=dm.class_names, layout=dm.cfg.layout,
        class_weight=None if weights is None else weights.tolist(),
        encoders=dm.token_cache().encoders if dm.cached else None,
    )
    has_val = dm.has_split(cfg.data.val_split)
    if not has_val:
        trainer_overrides.setdefault("limit_val_batches", 0)
    trainer = make_trainer(cfg, run_dir, callbacks, **trainer_overrides)
    write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    if not has_val:  # no validation split: keep the last epoch as "best"
        trainer.checkpoint_callback.monitor = None
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)
    best = trainer.checkpoint_callback.best_model_path
    score = trainer.checkpoint_callback.best_model_score
    last = run_dir / "checkpoints" / LAST
    result = FitResult(run_dir, Path(best) if best else last, last, None if score is None else float(score),
                       cfg.task.best_metric)
    if trainer.global_rank == 0:
        plot_training_curves(run_dir / "logs" / "metrics.csv", run_dir / "training_curves.png")
        info = {
            "world_size": trainer.world_size, "device": str(module.device), "precision": str(trainer.precision),
            "epochs": trainer.current_epoch, "global_step": trainer.global_step,
            "seconds_this_session": round(time.perf_counter() - started, 1), "resumed": resume_from is not None,
            "best_checkpoint": str(result.best_checkpoint), "monitor": result.monitor, "best_score": result.best_score,
        }
        write_text(run_dir / "run_info.json", json.dumps(info, indent=2))
    return result


# The keys that change the network's shape or meaning are on the cards (train/cards.py); the rest
# (dropout, paths, freezing) may differ between a checkpoint and the config that evaluates it.
_TASK_ARCHITECTURE = {"video_pool": "mean", "mg_feature": False}  # with the values of configs that predate them


def _architecture(config: dict) -> dict[str, Any]:
    """The config values that must match between a checkpoint and the config evaluating it."""
    model, out = config.get("model", {}), {}
    out["task.kind"] = config.get("task", {}).get("kind", "mg")
    for key, default in _TASK_ARCHITECTURE.items():
        out[f"task.{key}"] = config.get("task", {}).get(key, default)
    out["data.layout"] = config.get("data", {}).get("layout")
    out["model.streams"] = list(model.get("streams", {}))
    for name, enc in model.get("streams", {}).items():
        out[f"model.streams.{name}.encoder"] = enc.get("encoder")
        card = encoder_card(enc.get("encoder"))
        for key in card.architecture:
            out[f"model.streams.{name}.{key}"] = enc.get(key, card.added.get(key))
    fusion = model.get("fusion") or {}
    out["model.fusion"] = fusion.get("kind")
    for key in FUSION_ARCHITECTURE if fusion else ():
        out[f"model.fusion.{key}"] = fusion.get(key)
    return out


def check_same_model(checkpoint: Path, cfg: ExperimentConfig, *, resuming: bool = False) -> dict[str, Any]:
    """The checkpoint, after checking it holds the network the config describes (ConfigError naming the key)."""
    ckpt = read_run_checkpoint(checkpoint)
    if resuming and ckpt.get("migrated_from"):
        raise DataError(checkpoint, f"written by microgesture {ckpt['migrated_from']}: it can be evaluated, "
                                    "used for predictions or as a starting point, but not resumed")
    trained = _architecture(ckpt["hyper_parameters"].get("config", {}))
    wanted = _architecture(to_dict(cfg))
    if resuming:
        # Optimiser keys added since the checkpoint was written take their defaults (the behaviour it had).
        trained["optim"] = {**to_dict(OptimConfig()), **(ckpt["hyper_parameters"]["config"].get("optim") or {})}
        wanted["optim"] = to_dict(cfg.optim)
    for key, value in wanted.items():
        if trained.get(key) != value:
            raise ConfigError(f"{key}: {checkpoint} was trained with {trained.get(key)!r}, the config says {value!r}")
    return ckpt


def load_module(checkpoint: str | Path, cfg: ExperimentConfig | None = None) -> Classifier:
    """Load a trained classifier; if `cfg` is given, its network must be the checkpoint's."""
    ckpt = check_same_model(Path(checkpoint), cfg) if cfg is not None else read_run_checkpoint(checkpoint)
    module = Classifier(**ckpt["hyper_parameters"], init_encoders=False)  # the checkpoint holds every weight
    missing, unexpected = module.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise DataError(checkpoint, f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return module.eval()


@torch.inference_mode()
def predict_scores(module: Classifier, dm: MGDataModule, split: str, num_clips: int,
                   device: torch.device) -> dict[str, ScoreTable]:
    """Scores of every clip of `split`, per task: {task name: ScoreTable} (labels from the file, -1 unknown)."""
    clips = dm.clips(split)
    if not clips:
        raise DataError(dm.annotation_path, f"split {split!r} has no clips: nothing to score")
    module.to(device)
    scores = {t.name: np.full((len(clips), t.num_outputs), np.nan, dtype=np.float32) for t in module.tasks}
    for batch in dm.eval_dataloader(split, num_clips):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        index = batch["index"].cpu()
        for task, logits in module(batch).items():
            _place(scores[task], logits.float().cpu(), index)
    unscored = np.flatnonzero(np.isnan(next(iter(scores.values()))).any(1))
    if len(unscored):
        raise DataError(dm.annotation_path, f"split {split!r}: {len(unscored)} clip(s) got no score, "
                                            f"e.g. {clips[int(unscored[0])]['frame_dir']!r}")
    ids = [c["frame_dir"] for c in clips]
    return {
        t.name: ScoreTable(ids, np.array([int(c.get(t.target, -1)) for c in clips], dtype=np.int64),
                           scores[t.name], None)
        for t in module.tasks
    }


def _place(table: np.ndarray, logits: torch.Tensor, index: torch.Tensor) -> None:
    """Write a batch's logits into the rows of its clips: clips [N, C] by `index` [N]; bags of clips
    ([B, K, C], or [B, C] for a video task, every clip of the video getting the video's) by `index`
    [B, K], -1 in padded slots."""
    if index.dim() == 1:
        table[index.numpy()] = logits.numpy()
        return
    valid = index >= 0
    per_clip = logits if logits.dim() == 3 else logits[:, None].expand(*index.shape, logits.shape[-1])
    table[index[valid].numpy()] = per_clip[valid].numpy()


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
    dev = resolve_device(device)
    module = load_module(checkpoint, cfg)
    dm = scoring_data(cfg, module)
    split = split or cfg.data.test_split
    tables = predict_scores(module, dm, split, num_clips or cfg.data.test_clips, dev)
    videos = {c["frame_dir"]: int(c.get("video_id", -1)) for c in dm.clips(split)}
    return write_evaluation(tables, out_dir, dm.class_names, videos,
                            extra={"split": split, "checkpoint": str(checkpoint)}, train_counts=training_counts(dm))


def training_counts(dm: MGDataModule) -> np.ndarray | None:
    """Training clips per class (what the head / medium / tail groups are defined by); None without a
    labelled training split in the file."""
    if not dm.has_split(dm.cfg.train_split):
        return None
    labels = dm.train_labels()
    labels = labels[labels >= 0]
    return np.bincount(labels, minlength=dm.num_classes) if len(labels) else None


def scoring_data(cfg: ExperimentConfig, module: Classifier, annotations: str | Path | None = None) -> MGDataModule:
    """The data a trained model scores: the cache it was trained on when that fits, else raw clips.

    A fusion trained on cached tokens scores any other annotation file (or the same one without
    `data.cache`) from raw clips: its encoders come from the runs its config names
    (`model.streams.*.checkpoint`), checked to be the ones the tokens came from.
    """
    data = cfg.data if annotations is None else replace(cfg.data, annotations=str(annotations), synthetic=None)
    cfg = replace(cfg, data=data)
    if module.model.encoders is not None:
        return data_module(replace(cfg, data=replace(cfg.data, cache=None)), cached=False)
    if cfg.data.cache is not None:
        dm = data_module(cfg, cached=True)
        dm.load()
        try:
            dm.token_cache()
            return dm
        except DataError:  # another file, or another cache: read raw clips instead
            pass
    attach_encoders(module, cfg)
    return data_module(replace(cfg, data=replace(cfg.data, cache=None)), cached=False)
