"""The LightningDataModule: annotations -> datasets -> loaders, apart from any model.

It is told which modalities to make and how video modalities are loaded (`VideoInput`, from the
encoders' input specs: train/run.py connects the two); it never reads the model config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from microgesture.data.datasets import CachedTokenDataset, ClipDataset
from microgesture.data.formats.annotations import load_annotations, select
from microgesture.data.samplers import ClassBalancedSampler, EpochSampler
from microgesture.data.video_bags import VideoBagDataset, collate_bags, group_by_video
from microgesture.data.transforms.pipelines import Augment, VideoInput, build_pipeline
from microgesture.domain.classes import IMIGUE_CLASSES
from microgesture.errors import DataError
from microgesture.train.config import DataConfig, SynthConfig
from microgesture.utils.runlock import waiting_lock


def synthetic_annotations(cfg: SynthConfig, progress: bool = False) -> Path:
    """Generate (once) and import the synthetic dataset a config describes; return its annotation file.

    The folder name encodes every generator setting and the generator's version, so a changed
    setting or generator never reuses stale data.
    Both steps write atomically, so an interrupted run is simply redone next time.
    """
    from microgesture.data.formats.miga import import_miga_to_file
    from microgesture.data.synth import generate_dataset

    from microgesture.data.synth.generate import VERSION

    w, h = cfg.size
    key = f"seed{cfg.seed}_s{cfg.subjects}x{cfg.videos_per_subject}_{w}x{h}{'' if cfg.video else '_novideo'}"
    key += f"_v{VERSION}"  # a newer generator writes other data
    root = Path(cfg.root) / key
    ann = root / f"annotations_val{cfg.val_fraction:g}.pkl"
    if ann.is_file():
        return ann
    # Two runs started together on a fresh root: the second waits instead of writing into the same folder.
    with waiting_lock(Path(cfg.root) / f".{key}.lock", "generating the synthetic dataset"):
        if ann.is_file():  # made while this process waited
            return ann
        data_dir = root / "data"
        if not (data_dir / "videos.csv").is_file():
            generate_dataset(
                data_dir, subjects=cfg.subjects, videos_per_subject=cfg.videos_per_subject,
                seed=cfg.seed, size=(w, h), video=cfg.video, overwrite=data_dir.exists(), progress=progress,
            )
        import_miga_to_file(data_dir, ann, protocol="synthetic-xsub", val_fraction=cfg.val_fraction,
                            seed=cfg.seed)
    return ann


def class_names_of(data: Mapping[str, Any]) -> list[str]:
    """An annotation file's class names (iMiGUE's when it names none)."""
    return list(data.get("meta", {}).get("classes") or IMIGUE_CLASSES)


def loader_workers(setting: int | str, cached: bool = False) -> int:
    """`data.num_workers`: a number as given; "auto" one fewer than the usable CPUs (the main process
    trains), at most 8: the skeleton pipeline is cheap, the video decoders are not. With cached
    tokens "auto" is 0: they are in memory already, and each forked worker would end up with its own
    copy of them (1.5-3 GB each for the CMTF caches of docs/fusion.md)."""
    if setting != "auto":
        return int(setting)
    if cached:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cpus - 1))


def epoch_to_start(trainer: L.Trainer) -> int:
    """The epoch the fit loop is about to run, the number Lightning gives `set_epoch`. It makes the
    first training iterator before that call, and worker processes draw batches at once; after a
    resume from an epoch-end checkpoint `trainer.current_epoch` is still one behind at that point."""
    progress = getattr(getattr(trainer, "fit_loop", None), "epoch_progress", None)
    return int(progress.current.processed) if progress is not None else trainer.current_epoch


class MGDataModule(L.LightningDataModule):
    def __init__(self, cfg: DataConfig, modalities: Sequence[str], *, video: Mapping[str, VideoInput] | None = None,
                 seed: int = 0, cached: bool = False, cache_encoders: Mapping[str, Any] | None = None,
                 progress: bool = True, bags: int | None = None):
        """`modalities`: the batch keys to make; `video`: how each video modality is loaded;
        `cached`: read encoder outputs from `cfg.cache` instead, refused unless they come from
        `cache_encoders` (the cache manifest's encoder descriptions) when given; `bags`: serve bags
        of this many clips per video in training (every clip of a video at evaluation) instead of
        single clips (data/video_bags.py)."""
        super().__init__()
        self.bags = bags
        self.cfg, self.seed = cfg, seed
        self.modalities, self.video = tuple(modalities), dict(video or {})
        self.cached, self.progress = cached, progress
        self.cache_encoders = cache_encoders
        self._cache = None
        self.annotation_path: Path | None = None if cfg.annotations is None else Path(cfg.annotations)
        self.data: dict[str, Any] | None = None
        self.sampler: EpochSampler | None = None

    # -- data preparation -------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.cfg.synthetic is not None and self.annotation_path is None:
            self.annotation_path = synthetic_annotations(self.cfg.synthetic, progress=self.progress)

    def load(self) -> dict[str, Any]:
        if self.data is None:
            if self.annotation_path is None:
                self.prepare_data()
            self.data = load_annotations(self.annotation_path, video_root=self.cfg.video_root)
        return self.data

    def setup(self, stage: str | None = None) -> None:
        self.load()

    @property
    def class_names(self) -> list[str]:
        return class_names_of(self.load())

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def clips(self, split: str) -> list[dict[str, Any]]:
        data = self.load()
        if split == "all":
            return list(data["annotations"])
        if split not in data["split"]:
            raise DataError(self.annotation_path, f"split {split!r} not found (splits: {sorted(data['split'])}, "
                                                  "or 'all' for every clip)")
        return select(data, split)

    def train_labels(self) -> np.ndarray:
        return np.array([c["label"] for c in self.clips(self.cfg.train_split)], dtype=np.int64)

    # -- datasets and loaders ---------------------------------------------------------------
    def dataset(self, split: str, *, train: bool, num_clips: int = 1,
                hide_labels: bool = False) -> ClipDataset | CachedTokenDataset | VideoBagDataset:
        clips = self.clips(split)
        inner = self._clip_dataset(clips, train=train, num_clips=num_clips, hide_labels=hide_labels)
        if self.bags is None:
            return inner
        repeats = max(1, round(len(clips) / max(1, len(group_by_video(clips)[0])) / self.bags))
        return VideoBagDataset(inner, clips, clips_per_video=self.bags, train=train, seed=self.seed, repeats=repeats)

    def _clip_dataset(self, clips: list[dict[str, Any]], *, train: bool, num_clips: int,
                      hide_labels: bool) -> ClipDataset | CachedTokenDataset:
        if self.cached:
            return CachedTokenDataset(clips, self.token_cache(), hide_labels=hide_labels)
        a = self.cfg.augment
        pipeline = build_pipeline(
            self.modalities, layout=self.cfg.layout, num_frames=self.cfg.num_frames, train=train, num_clips=num_clips,
            augment=Augment(a.flip_p, a.rotate_deg, tuple(a.scale), a.shift), video=self.video,
            video_root=self.load()["meta"].get("video_root"), heatmap=self.cfg.heatmap,
        )
        return ClipDataset(clips, pipeline, self.modalities, seed=self.seed, hide_labels=hide_labels)

    def token_cache(self):
        if self._cache is None:
            from microgesture.data.cache import TokenCache

            self.load()
            self._cache = TokenCache.open(self.cfg.cache, self.annotation_path, encoders_meta=self.cache_encoders)
        return self._cache

    def _loader(self, dataset, batch_size: int, sampler=None, persistent: bool = False) -> DataLoader:
        """`persistent`: keep the worker processes between epochs (training and validation loaders)."""
        workers = loader_workers(self.cfg.num_workers, cached=self.cached)
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
            num_workers=workers, drop_last=False, persistent_workers=persistent and workers > 0,
            collate_fn=collate_bags if isinstance(dataset, VideoBagDataset) else None,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset(self.cfg.train_split, train=True)
        if len(dataset) == 0:
            raise DataError(self.annotation_path, f"split {self.cfg.train_split!r} is empty: nothing to train on")
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self.sampler = self._train_sampler(rank, world)
        if trainer is not None:  # a resumed run starts mid-way: the first iterator exists before set_epoch
            self.sampler.set_epoch(epoch_to_start(trainer))
        return self._loader(dataset, self.cfg.batch_size, self.sampler, persistent=True)

    def _train_sampler(self, rank: int, world: int) -> EpochSampler:
        """`data.sampler`: a shuffle, or class-balanced / square-root draws (data/samplers.py)."""
        if self.cfg.sampler == "shuffle":
            return EpochSampler(len(self.clips(self.cfg.train_split)), seed=self.seed, rank=rank, world_size=world)
        power = 0.0 if self.cfg.sampler == "class_balanced" else 0.5
        return ClassBalancedSampler(self.train_labels(), power=power, seed=self.seed, rank=rank, world_size=world)

    def has_split(self, split: str) -> bool:
        return len(self.load()["split"].get(split, [])) > 0

    def val_dataloader(self) -> DataLoader | list:
        if not self.has_split(self.cfg.val_split):
            return []
        return self._loader(self.dataset(self.cfg.val_split, train=False), self.cfg.eval_batch_size, persistent=True)

    def eval_dataloader(self, split: str, num_clips: int, hide_labels: bool = False) -> DataLoader:
        dataset = self.dataset(split, train=False, num_clips=num_clips, hide_labels=hide_labels)
        return self._loader(dataset, self.cfg.eval_batch_size)
