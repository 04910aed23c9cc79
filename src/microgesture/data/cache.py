"""A folder of frozen-encoder outputs (tokens and embeddings) per sample, written in shards.

Layout of a cache folder::

    manifest.json     format, version, the annotation file (path, SHA-256), the encoders
                      (name, config, checkpoint path and SHA-256), the splits with their sample
                      ids, the shard size, the shards and which of them are complete
    shard_00000.pt    torch.save({sample_id: {key: tensor}}), floats stored as float16

Samples are cut into shards split by split, in split order: shard k holds a contiguous range of
one split's samples, so an extractor walking a split in order finishes shards one after another.
Each shard is written atomically and only then listed as complete (the manifest is rewritten
atomically too): an interrupted extraction resumes at the first incomplete shard and ends with
the same cache as an uninterrupted one. A cache made from another annotation file (by content)
or with other encoders is refused, never silently reused.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from microgesture.errors import DataError
from microgesture.utils.io import atomic_path, write_text

FORMAT_NAME = "microgesture-token-cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_FIX = "delete the folder or choose another --out"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shard_name(k: int) -> str:
    return f"shard_{k:05d}.pt"


def encoder_meta(name: str, config: Mapping[str, Any] | None = None,
                 checkpoint: str | Path | None = None) -> dict[str, Any]:
    """One encoder's description for the manifest; hashes the checkpoint file when there is one."""
    sha = None
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise DataError(checkpoint, f"checkpoint of encoder {name!r} not found")
        sha = sha256_file(checkpoint)
    return {"name": name, "config": _jsonable(dict(config or {}), f"encoder {name!r} config"),
            "checkpoint": None if checkpoint is None else str(checkpoint), "checkpoint_sha256": sha}


def _jsonable(value: Any, what: str) -> Any:
    """A JSON round trip, so that tuples and lists compare equal after a reload."""
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise DataError(None, f"{what} must be JSON-serialisable (numbers, strings, lists, dicts): {exc}") from None


def _normalise_encoders(encoders_meta: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    items = encoders_meta.items() if isinstance(encoders_meta, Mapping) else [(m["name"], m) for m in encoders_meta]
    out = {}
    for name, meta in items:
        meta = dict(meta)
        if meta.get("checkpoint") is not None and "checkpoint_sha256" not in meta:
            meta = encoder_meta(name, meta.get("config"), meta["checkpoint"])
        out[str(name)] = {
            "name": str(name), "config": _jsonable(meta.get("config") or {}, f"encoder {name!r} config"),
            "checkpoint": meta.get("checkpoint"), "checkpoint_sha256": meta.get("checkpoint_sha256"),
        }
    return dict(sorted(out.items()))


def _identity(encoders: dict[str, dict]) -> dict[str, Any]:
    """What makes two encoder sets equal: names, configs, checkpoint contents (not their paths)."""
    return {n: (m["config"], m["checkpoint_sha256"]) for n, m in encoders.items()}


def _normalise_ids(sample_ids: Mapping[str, Sequence[str]] | Sequence[str]) -> dict[str, list[str]]:
    splits = dict(sample_ids) if isinstance(sample_ids, Mapping) else {"all": sample_ids}
    out = {str(s): [str(i) for i in ids] for s, ids in splits.items()}
    seen: set[str] = set()
    for split, ids in out.items():
        for i in ids:
            if i in seen:
                raise DataError(None, f"sample id {i!r} appears twice (split {split!r}); ids must be unique")
            seen.add(i)
    return out


def _plan_shards(splits: dict[str, list[str]], shard_size: int) -> list[dict[str, Any]]:
    shards = []
    for split, ids in splits.items():
        for start in range(0, len(ids), shard_size):
            shards.append({"split": split, "start": start, "stop": min(start + shard_size, len(ids))})
    return shards


class TokenCache:
    """A cache folder (see module doc). Build with `create_or_resume`, read with `open`."""

    def __init__(self, cache_dir: str | Path, manifest: dict[str, Any], lru_shards: int = 4):
        self.dir = Path(cache_dir)
        self.manifest = manifest
        self._shard_of: dict[str, int] = {}
        for k, shard in enumerate(manifest["shards"]):
            for i in manifest["splits"][shard["split"]][shard["start"]:shard["stop"]]:
                self._shard_of[i] = k
        self._complete = set(manifest["complete"])
        self._lru: OrderedDict[int, dict[str, dict[str, torch.Tensor]]] = OrderedDict()
        self._lru_size = max(1, int(lru_shards))

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def create_or_resume(
        cls,
        cache_dir: str | Path,
        annotation_path: str | Path,
        encoders_meta: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        sample_ids: Mapping[str, Sequence[str]] | Sequence[str],
        shard_size: int = 256,
    ) -> TokenCache:
        """A new cache, or the partial one already in `cache_dir` if it was made from the same inputs.

        `sample_ids`: {split: [id, ...]} (or one list, stored as split 'all'). Raises DataError for
        a folder made from another annotation file, other encoders, samples or shard size.
        """
        if int(shard_size) < 1:
            raise DataError(None, f"shard_size must be >= 1, got {shard_size}")
        cache_dir = Path(cache_dir)
        manifest = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION,
            "annotations": {"path": str(Path(annotation_path).resolve()), "sha256": _annotation_sha(annotation_path)},
            "encoders": _normalise_encoders(encoders_meta),
            "splits": _normalise_ids(sample_ids),
            "shard_size": int(shard_size),
        }
        manifest["shards"] = _plan_shards(manifest["splits"], manifest["shard_size"])
        manifest["complete"] = []
        path = cache_dir / MANIFEST
        if path.is_file():
            old = _read_manifest(path)
            _check_same(path, old, manifest)
            # A shard listed complete whose file has gone, or whose bytes changed (truncated,
            # corrupted), is made again.
            manifest["shard_sha256"] = dict(old.get("shard_sha256", {}))
            intact = _intact_shards(cache_dir, old)
            manifest["complete"] = sorted(intact)
            manifest["shard_sha256"] = {k: v for k, v in manifest["shard_sha256"].items() if int(k) in intact}
        elif cache_dir.is_dir() and any(cache_dir.iterdir()):
            raise DataError(cache_dir, f"folder is not empty and has no {MANIFEST}: not a token cache; {_FIX}")
        cache = cls(cache_dir, manifest)
        cache._write_manifest()
        return cache

    def pending_shards(self, split: str | None = None) -> list[int]:
        done = self._complete
        return [k for k, s in enumerate(self.manifest["shards"])
                if k not in done and (split is None or s["split"] == split)]

    def shard_ids(self, k: int) -> list[str]:
        shard = self.manifest["shards"][k]
        return self.manifest["splits"][shard["split"]][shard["start"]:shard["stop"]]

    def shard_range(self, k: int) -> tuple[str, int, int]:
        """(split, first position, one past the last position) of shard k."""
        shard = self.manifest["shards"][k]
        return shard["split"], shard["start"], shard["stop"]

    def write_shard(self, k: int, samples: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Store shard k (exactly its sample ids), floats as float16, then mark it complete."""
        expected = self.shard_ids(k)
        if set(samples) != set(expected):
            missing = sorted(set(expected) - set(samples))[:5]
            extra = sorted(set(samples) - set(expected))[:5]
            raise DataError(self.dir / shard_name(k), f"shard {k} needs samples {expected[0]}..{expected[-1]}; "
                                                      f"missing {missing}, unexpected {extra}")
        data = {i: {key: _compact(t) for key, t in samples[i].items()} for i in expected}
        with atomic_path(self.dir / shard_name(k)) as tmp:
            torch.save(data, tmp)
            sha = sha256_file(tmp)
        self._complete.add(k)
        self.manifest["complete"] = sorted(self._complete)
        self.manifest.setdefault("shard_sha256", {})[str(k)] = sha
        self._write_manifest()

    @property
    def is_complete(self) -> bool:
        return not self.pending_shards()

    def _write_manifest(self) -> None:
        write_text(self.dir / MANIFEST, json.dumps(self.manifest, indent=1) + "\n")

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        cache_dir: str | Path,
        annotation_path: str | Path,
        sample_ids: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
        *,
        encoders_meta: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        lru_shards: int = 4,
    ) -> TokenCache:
        """Open a cache for reading: same annotation file (and encoders, when given), and every
        requested sample id (a list, or {split: ids}) stored in a complete shard."""
        path = Path(cache_dir) / MANIFEST
        if not path.is_file():
            raise DataError(path, "no token cache here (manifest.json missing); run `microgesture extract` first")
        manifest = _read_manifest(path)
        _check_annotations(path, manifest, str(Path(annotation_path).resolve()), _annotation_sha(annotation_path))
        if encoders_meta is not None:
            _check_encoders(path, manifest, _normalise_encoders(encoders_meta))
        damaged = sorted(set(manifest["complete"]) - _intact_shards(Path(cache_dir), manifest))
        if damaged:
            raise DataError(Path(cache_dir) / shard_name(damaged[0]),
                            f"{len(damaged)} shard(s) are missing or corrupted (their bytes differ from when they "
                            "were written); run `microgesture extract` again to rebuild them")
        cache = cls(cache_dir, manifest, lru_shards)
        if sample_ids is not None:
            wanted = sample_ids.values() if isinstance(sample_ids, Mapping) else [sample_ids]
            cache.require([str(i) for ids in wanted for i in ids])
        return cache

    def require(self, sample_ids: Sequence[str]) -> None:
        """Raise DataError naming the ids that are not in the cache or not extracted yet."""
        done = self._complete
        absent = [i for i in sample_ids if i not in self._shard_of]
        unfinished = [i for i in sample_ids if i in self._shard_of and self._shard_of[i] not in done]
        problems = []
        if absent:
            problems.append(f"{len(absent)} sample id(s) not in the cache, e.g. {_some(absent)}")
        if unfinished:
            problems.append(f"{len(unfinished)} sample id(s) in shards not extracted yet, e.g. {_some(unfinished)} "
                            "(rerun the extraction to finish it)")
        if problems:
            raise DataError(self.dir / MANIFEST, "; ".join(problems))

    @property
    def sample_ids(self) -> list[str]:
        return [i for ids in self.manifest["splits"].values() for i in ids]

    @property
    def encoders(self) -> dict[str, dict[str, Any]]:
        return self.manifest["encoders"]

    def __contains__(self, sample_id: str) -> bool:
        k = self._shard_of.get(sample_id)
        return k is not None and k in self._complete

    def __len__(self) -> int:
        return len(self._shard_of)

    def get(self, sample_id: str) -> dict[str, torch.Tensor]:
        """The stored tensors of one sample, as float32 (fresh tensors: safe to modify)."""
        k = self._shard_of.get(sample_id)
        if k is None:
            raise DataError(self.dir / MANIFEST, f"sample id {sample_id!r} is not in the cache")
        if k not in self._complete:
            raise DataError(self.dir / shard_name(k), f"sample {sample_id!r} is in shard {k}, not extracted yet")
        stored = self._shard(k)[sample_id]
        return {key: t.to(torch.float32, copy=True) if t.is_floating_point() else t.clone()
                for key, t in stored.items()}

    def _shard(self, k: int) -> dict[str, dict[str, torch.Tensor]]:
        if k in self._lru:
            self._lru.move_to_end(k)
            return self._lru[k]
        path = self.dir / shard_name(k)
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError(path, "shard file missing though the manifest lists it complete; "
                                  "rerun the extraction") from None
        except Exception as exc:  # torch raises many types on truncated or foreign files
            raise DataError(path, f"cannot read shard ({type(exc).__name__}: {exc})") from None
        self._lru[k] = data
        while len(self._lru) > self._lru_size:
            self._lru.popitem(last=False)
        return data


def _intact_shards(cache_dir: Path, manifest: dict[str, Any]) -> set[int]:
    """The complete shards whose files exist with the recorded SHA-256 (files of caches written
    before hashes were recorded count when they exist)."""
    hashes = manifest.get("shard_sha256", {})
    intact = set()
    for k in manifest["complete"]:
        path = cache_dir / shard_name(k)
        if path.is_file() and (str(k) not in hashes or sha256_file(path) == hashes[str(k)]):
            intact.add(k)
    return intact


def _compact(t: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy; floats as float16 unless that would overflow (then float32)."""
    t = t.detach().to("cpu")
    if not t.is_floating_point():
        return t.clone()
    half = t.to(torch.float16)
    if bool(torch.isfinite(half).all()) or not bool(torch.isfinite(t).all()):
        return half.clone()
    return t.to(torch.float32).clone()


def _annotation_sha(path: str | Path) -> str:
    if not Path(path).is_file():
        raise DataError(path, "annotation file not found")
    return sha256_file(path)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"unreadable cache manifest ({exc}); {_FIX}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DataError(path, f"not a {FORMAT_NAME} manifest; {_FIX}")
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(path, f"cache format version {manifest.get('version')}, "
                              f"this toolkit reads {FORMAT_VERSION}; {_FIX}")
    return manifest


def _check_annotations(path: Path, old: dict, new_path: str, new_sha: str) -> None:
    made = old["annotations"]
    if made["sha256"] != new_sha:
        raise DataError(path, f"stale cache: made from {made['path']} (sha {made['sha256'][:12]}), "
                              f"now {new_path} (sha {new_sha[:12]}); {_FIX}")


def _check_encoders(path: Path, old: dict, new: dict[str, dict]) -> None:
    if _identity(old["encoders"]) != _identity(new):
        raise DataError(path, f"stale cache: made with encoders {_describe(old['encoders'])}, "
                              f"now {_describe(new)}; {_FIX}")


def _check_same(path: Path, old: dict, new: dict) -> None:
    _check_annotations(path, old, new["annotations"]["path"], new["annotations"]["sha256"])
    _check_encoders(path, old, new["encoders"])
    if old["splits"] != new["splits"] or old["shard_size"] != new["shard_size"]:
        was = {s: len(v) for s, v in old["splits"].items()}
        now = {s: len(v) for s, v in new["splits"].items()}
        raise DataError(path, f"stale cache: made for samples {was} in shards of {old['shard_size']}, "
                              f"now {now} in shards of {new['shard_size']}; {_FIX}")


def _describe(encoders: dict[str, dict]) -> str:
    parts = []
    for name, m in encoders.items():
        sha = m["checkpoint_sha256"][:12] if m["checkpoint_sha256"] else "no checkpoint"
        parts.append(f"{name} ({json.dumps(m['config'], sort_keys=True)}, {sha})")
    return "[" + "; ".join(parts) + "]"


def _some(ids: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")
