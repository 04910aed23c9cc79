"""Run frozen encoders once over every sample and keep their tokens in a `TokenCache`.

For each sample and encoder `name` the cache stores ``{name}_tokens`` (the encoder's
`forward_features` output for that sample: AGCN [T', V, C'], RGB encoders [L, D], face encoders
[T, D]) and ``{name}_embedding`` (its `pool` of them); with a ``{input}_missing`` mask in the
batch (frames without a face), the encoder and pooling get it and ``{name}_missing`` is stored.
Loaders must yield batches in sample order (no shuffle), so shards fill one after another; a
rerun after an interruption skips the complete shards and, for a plain sequential loader, does
not even load their samples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler, Subset
from tqdm.auto import tqdm

from microgesture.data.cache import TokenCache
from microgesture.errors import ConfigError, DataError
from microgesture.train.build import encoders_meta, stream_encoders
from microgesture.train.precision import resolve_device

SampleIds = Mapping[str, Sequence[Any]] | Callable[[str], Sequence[Any]]


def extract_tokens(
    cache_dir: str | Path,
    annotation_path: str | Path,
    loaders: Mapping[str, DataLoader],
    encoders: Mapping[str, tuple[nn.Module, str]],
    *,
    sample_ids_of: SampleIds,
    encoders_meta: Mapping[str, Any],
    shard_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Path:
    """Fill (or finish) the token cache in `cache_dir`; returns its path.

    `loaders`: {split: DataLoader} yielding dict batches with the encoders' input keys and,
    preferably, `index` (the sample's position in the split). `encoders`: {name: (module,
    input key)}; each module has `forward_features` and `pool` and is put in eval mode on
    `device` (default: CUDA when available, else CPU). `sample_ids_of`: {split: ids or clip
    dicts (their `frame_dir`)} or a function split -> the same. `encoders_meta`: {name:
    {config, checkpoint}} as for `TokenCache.create_or_resume` (see `cache.encoder_meta`).
    """
    if set(encoders) != set(encoders_meta):
        raise ConfigError(f"encoders {sorted(encoders)} and encoders_meta {sorted(encoders_meta)} "
                          "name different encoders")
    ids = {split: _ids(sample_ids_of, split) for split in loaders}
    for split, loader in loaders.items():
        size = _dataset_len(loader)
        if size is not None and size != len(ids[split]):
            raise DataError(annotation_path, f"split {split!r}: the loader has {size} samples, "
                                             f"sample_ids_of gives {len(ids[split])}")
    cache = TokenCache.create_or_resume(cache_dir, annotation_path, encoders_meta, ids, shard_size)
    todo = cache.pending_shards()
    if not todo:
        return Path(cache_dir)
    device = torch.device(device) if device is not None else resolve_device(None)
    for module, _ in encoders.values():
        module.eval().to(device)
    with tqdm(total=sum(len(cache.shard_ids(k)) for k in todo), disable=not progress, unit="clip",
              desc="extract tokens", dynamic_ncols=True) as bar:
        for split, loader in loaders.items():
            if cache.pending_shards(split):
                _extract_split(cache, split, loader, encoders, device, bar)
    return Path(cache_dir)


def _extract_split(cache: TokenCache, split: str, loader: DataLoader, encoders, device, bar) -> None:
    ids = cache.manifest["splits"][split]
    shard_of = np.full(len(ids), -1, dtype=np.int64)
    for k in cache.pending_shards(split):
        _, start, stop = cache.shard_range(k)
        shard_of[start:stop] = k
    needed = np.flatnonzero(shard_of >= 0)
    loader, order = _remaining(loader, needed)
    buffers: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    seen = 0
    for batch in loader:
        positions = _positions(batch, order, seen, split)
        seen += len(positions)
        bad = [p for p in positions if not 0 <= p < len(ids)]
        if bad:
            raise DataError(cache.dir, f"split {split!r}: batch index {bad[0]} is outside the split's "
                                       f"{len(ids)} samples")
        keep = [i for i, p in enumerate(positions) if shard_of[p] >= 0]
        if not keep:
            continue
        outputs = _run_encoders(batch, encoders, device, [ids[p] for p in positions])
        for i in keep:
            p = positions[i]
            k = int(shard_of[p])
            buffers.setdefault(k, {})[ids[p]] = {key: value[i] for key, value in outputs.items()}
            shard_of[p] = -1  # a repeated sample (padding samplers) is stored once
            bar.update(1)
            if len(buffers[k]) == len(cache.shard_ids(k)):
                cache.write_shard(k, buffers.pop(k))
    left = cache.pending_shards(split)
    if left:
        missing = [i for k in left for i in cache.shard_ids(k) if i not in buffers.get(k, {})]
        raise DataError(cache.dir, f"split {split!r}: the loader ended without samples {missing[:5]}"
                                   f"{' and more' if len(missing) > 5 else ''} (drop_last, or a shorter dataset?)")


@torch.no_grad()
def _run_encoders(batch: Mapping[str, Any], encoders, device: torch.device,
                  names: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for name, (module, key) in encoders.items():
        if key not in batch:
            raise ConfigError(f"encoder {name!r} reads batch key {key!r}; the batch has {sorted(batch)}")
        x = batch[key].to(device, non_blocking=True)
        missing = batch.get(f"{key}_missing")  # frames a modality lacks (faces): masked, and cached too
        mask = () if missing is None else (missing.to(device),)
        with _autocast(device):
            tokens = module.forward_features(x, *mask)
            embedding = module.pool(tokens, *mask)
        if missing is not None:
            out[f"{name}_missing"] = missing.to(torch.bool).cpu()
        for label, value in (("tokens", tokens), ("embedding", embedding)):
            value = value.detach().float().cpu()
            if value.shape[0] != len(x):
                raise ValueError(f"encoder {name!r} {label}: first axis {value.shape[0]}, batch has {len(x)} samples")
            bad = ~torch.isfinite(value.reshape(len(value), -1)).all(dim=1)
            if bad.any():
                rows = bad.nonzero().flatten().tolist()
                raise DataError(None, f"encoder {name!r} gave NaN/inf {label} for samples "
                                      f"{[names[r] for r in rows][:5]}")
            out[f"{name}_{label}"] = value
    return out


def _autocast(device: torch.device):
    """Mixed precision on CUDA only (bf16 where supported); CPU runs in float32."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _ids(sample_ids_of: SampleIds, split: str) -> list[str]:
    if callable(sample_ids_of) and not isinstance(sample_ids_of, Mapping):
        items = sample_ids_of(split)
    elif split in sample_ids_of:
        items = sample_ids_of[split]
    else:
        raise ConfigError(f"sample_ids_of has no split {split!r} (has {sorted(sample_ids_of)})")
    return [str(c["frame_dir"]) if isinstance(c, Mapping) else str(c) for c in items]


def _dataset_len(loader: DataLoader) -> int | None:
    try:
        return len(loader.dataset)
    except TypeError:  # an iterable dataset without a length
        return None


def _remaining(loader: DataLoader, needed: np.ndarray) -> tuple[DataLoader, list[int] | None]:
    """A loader over only the `needed` positions when the original is plain sequential.

    Returns (loader, the positions it yields in order, or None when batches must say `index`
    themselves and unneeded samples are skipped after loading).
    """
    size = _dataset_len(loader)
    sequential = isinstance(loader.sampler, SequentialSampler) and loader.batch_size is not None
    if not sequential or size is None:
        return loader, None
    if len(needed) == size:
        return loader, list(range(size))
    kwargs = dict(batch_size=loader.batch_size, shuffle=False, num_workers=loader.num_workers,
                  collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                  timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                  multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                  persistent_workers=loader.persistent_workers)
    if loader.num_workers > 0:
        kwargs["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(Subset(loader.dataset, needed.tolist()), **kwargs), needed.tolist()


def _positions(batch: Mapping[str, Any], order: list[int] | None, seen: int, split: str) -> list[int]:
    """Positions in the split of the batch's samples: its `index`, else counted along `order`."""
    if "index" in batch:
        return [int(i) for i in torch.as_tensor(batch["index"]).reshape(-1).tolist()]
    if order is None:
        raise ConfigError(f"split {split!r}: batches carry no 'index' and the loader is not a plain "
                          "sequential one, so samples cannot be matched to their ids")
    first = next((v for v in batch.values() if isinstance(v, torch.Tensor)), None)
    if first is None:
        raise ConfigError(f"split {split!r}: batch has no tensors to count samples by")
    return order[seen:seen + len(first)]


def extract_for_experiment(cfg: Any, cache_dir: str | Path, *, device: str | None = None,
                           progress: bool = True) -> Path:
    """`microgesture extract`: run a fusion config's encoders, frozen, over every split once.

    The encoders come from `model.streams.*` (a trained run's `checkpoint`, or pretrained
    `weights`); clips are sampled as at test time, video from the skeleton's frames. Train the
    fusion afterwards with `data.cache: CACHE_DIR` in the same config.
    """
    from microgesture.train.run import data_module  # here: it loads Lightning, which extracting alone does not need

    if cfg.model.fusion is None:
        raise ConfigError("model.fusion: extract runs the encoders of a fusion model; this config has none")
    dev = resolve_device(device)
    dm = data_module(replace(cfg, data=replace(cfg.data, cache=None)), cached=False, clips_only=True)
    dm.prepare_data()
    encoders = stream_encoders(cfg, dm.num_classes)
    splits = [s for s in dm.load()["split"] if dm.has_split(s)]
    loaders = {s: dm.eval_dataloader(s, num_clips=1) for s in splits}
    return extract_tokens(
        cache_dir, dm.annotation_path, loaders, {name: (enc, name) for name, enc in encoders.items()},
        sample_ids_of={s: dm.clips(s) for s in splits}, encoders_meta=encoders_meta(cfg), device=dev,
        progress=progress,
    )

