"""The LightningDataModule: annotations -> datasets -> loaders, apart from any model."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from microgesture.data.annotations import load_annotations, resolve_video_path, select
from microgesture.data.classes import IMIGUE_CLASSES
from microgesture.data.dataset import CachedTokenDataset, ClipDataset, EpochSampler
from microgesture.data.transforms import skeleton_pipeline
from microgesture.errors import DataError
from microgesture.train.config import DataConfig, ExperimentConfig, Stream, SynthConfig


def synthetic_annotations(cfg: SynthConfig, progress: bool = False) -> Path:
    """Generate (once) and import the synthetic dataset a config describes; return its annotation file.

    The folder name encodes every generator setting, so a changed setting never reuses stale data.
    Both steps write atomically, so an interrupted run is simply redone next time.
    """
    from microgesture.data.miga import import_miga_to_file
    from microgesture.data.synth import generate_dataset

    w, h = cfg.size
    key = f"seed{cfg.seed}_s{cfg.subjects}x{cfg.videos_per_subject}_{w}x{h}{'' if cfg.video else '_novideo'}"
    root = Path(cfg.root) / key
    ann = root / f"annotations_val{cfg.val_fraction:g}.pkl"
    if ann.is_file():
        return ann
    data_dir = root / "data"
    if not (data_dir / "videos.csv").is_file():
        generate_dataset(
            data_dir, subjects=cfg.subjects, videos_per_subject=cfg.videos_per_subject,
            seed=cfg.seed, size=(w, h), video=cfg.video, overwrite=data_dir.exists(), progress=progress,
        )
    import_miga_to_file(data_dir, ann, protocol="synthetic-xsub", val_fraction=cfg.val_fraction, seed=cfg.seed)
    return ann


class MGDataModule(L.LightningDataModule):
    @classmethod
    def for_experiment(cls, cfg: ExperimentConfig) -> "MGDataModule":
        """The data a config's model needs: skeleton clips, plus RGB or cached tokens."""
        cached = cfg.data.cache is not None
        return cls(cfg.data, stream=cfg.model.skeleton.stream, seed=cfg.trainer.seed,
                   rgb=cfg.model.uses_rgb and not cached, cached=cached)

    def __init__(self, cfg: DataConfig, *, stream: Stream = "joint", seed: int = 0, rgb: bool = False,
                 cached: bool = False):
        """`rgb`: also load RGB clips (needs cfg.rgb); `cached`: read encoder tokens from cfg.cache."""
        super().__init__()
        self.cfg, self.stream, self.seed = cfg, stream, seed
        self.with_rgb, self.cached = rgb, cached
        self._cache = None
        self.annotation_path: Path | None = None if cfg.annotations is None else Path(cfg.annotations)
        self.data: dict[str, Any] | None = None
        self.sampler: EpochSampler | None = None

    # -- data preparation -------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.cfg.synthetic is not None:
            self.annotation_path = synthetic_annotations(self.cfg.synthetic)

    def load(self) -> dict[str, Any]:
        if self.data is None:
            if self.annotation_path is None:
                self.prepare_data()
            self.data = load_annotations(self.annotation_path)
        return self.data

    def setup(self, stage: str | None = None) -> None:
        self.load()

    @property
    def class_names(self) -> list[str]:
        return list(self.load().get("meta", {}).get("classes") or IMIGUE_CLASSES)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def clips(self, split: str) -> list[dict[str, Any]]:
        data = self.load()
        if split not in data["split"]:
            raise DataError(self.annotation_path, f"split {split!r} not found (splits: {sorted(data['split'])})")
        return select(data, split)

    def train_labels(self) -> np.ndarray:
        return np.array([c["label"] for c in self.clips(self.cfg.train_split)], dtype=np.int64)

    # -- datasets and loaders ---------------------------------------------------------------
    def dataset(self, split: str, *, train: bool, num_clips: int = 1) -> ClipDataset | CachedTokenDataset:
        if self.cached:
            return CachedTokenDataset(self.clips(split), self.token_cache())
        aug = self.cfg.augment
        pipeline = skeleton_pipeline(
            layout=self.cfg.layout, num_frames=self.cfg.num_frames, stream=self.stream, train=train,
            num_clips=num_clips, rotate_deg=aug.rotate_deg, scale=aug.scale, shift=aug.shift, flip_p=aug.flip_p,
        )
        rgb = None
        if self.with_rgb:
            from microgesture.data.rgb import RGBClip

            r = self.cfg.rgb
            rgb = RGBClip(size=r.size, num_frames=r.num_frames, train=train, resize=r.resize)
        data = self.load()
        return ClipDataset(self.clips(split), pipeline, seed=self.seed, rgb=rgb,
                           video_path=partial(resolve_video_path, data))

    def token_cache(self):
        if self._cache is None:
            from microgesture.data.cache import TokenCache

            self._cache = TokenCache.open(self.cfg.cache, self.annotation_path)
        return self._cache

    def _loader(self, dataset: ClipDataset, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
            num_workers=self.cfg.num_workers, drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset(self.cfg.train_split, train=True)
        if len(dataset) == 0:
            raise DataError(self.annotation_path, f"split {self.cfg.train_split!r} is empty: nothing to train on")
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self.sampler = EpochSampler(len(dataset), seed=self.seed, shuffle=True, rank=rank, world_size=world)
        if trainer is not None:  # a resumed run starts mid-way: the first iterator exists before set_epoch
            self.sampler.set_epoch(trainer.current_epoch)
        return self._loader(dataset, self.cfg.batch_size, self.sampler)

    def has_split(self, split: str) -> bool:
        return len(self.load()["split"].get(split, [])) > 0

    def val_dataloader(self) -> DataLoader | list:
        if not self.has_split(self.cfg.val_split):
            return []
        return self._loader(self.dataset(self.cfg.val_split, train=False), self.cfg.eval_batch_size)

    def eval_dataloader(self, split: str, num_clips: int) -> DataLoader:
        return self._loader(self.dataset(split, train=False, num_clips=num_clips), self.cfg.eval_batch_size)
