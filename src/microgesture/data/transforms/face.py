"""The `face` modality: face-track crops at the instants the skeleton stream sampled.

A clip's video has a face track (data/formats/facetrack.py): `<vid>_face.mp4`, 112x112, one crop
per source frame, and `<vid>_face.csv` saying which frames are missing. `FaceClip` decodes frames
``start_frame + rgb_frame_indices(frame_inds, num_frames)`` of the face track (the frames the RGB
stream would take), resizes them to `size` when that is not 112, mirrors them when the skeleton
was flipped, normalises with the encoder's mean/std and writes

    sample["face"]          float32 [3, T, size, size]   (K test clips: [K, 3, T, size, size])
    sample["face_missing"]  bool [T]                     ([K, T]): no face, or a bridged box
    sample["face_frame_inds"] int64 [T]                  ([K, T]), relative to the clip start

Missing frames are black in the video and come out as the normalised black value; a model
should mask them with `face_missing`. No random crop or scale: the crops are already aligned.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from microgesture.data.formats.facetrack import FACE_SIZE, face_csv_path, face_video_path, read_face_csv
from microgesture.data.transforms.rgb import rgb_frame_indices
from microgesture.data.video import read_frames, video_info
from microgesture.errors import ConfigError, DataError

_CACHE_SIZE = 256
_missing_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()


def face_missing_flags(face_video: Path) -> np.ndarray:
    """The `missing` column of a face track's CSV as bool [N] (cached per file and modification)."""
    csv_file = face_csv_path(face_video)
    try:
        st = os.stat(csv_file)
    except OSError:
        raise DataError(csv_file, f"face-track CSV not found (it goes with {face_video.name})") from None
    key = (os.path.realpath(csv_file), st.st_mtime_ns, st.st_size)
    if key not in _missing_cache:
        _missing_cache[key] = read_face_csv(csv_file).missing
        while len(_missing_cache) > _CACHE_SIZE:
            _missing_cache.popitem(last=False)
    _missing_cache.move_to_end(key)
    return _missing_cache[key]


def face_track_file(sample: dict[str, Any], root: str | None) -> Path:
    """The clip's face-track video, made absolute under `root`; DataError naming the clip when there is none."""
    clip = f"clip {sample.get('frame_dir', '?')}"
    path = sample.get("face_video_path")
    if path is None:
        video = sample.get("video_path")
        expected = "<vid>_face.mp4" if video is None else str(face_video_path(_under(video, root)))
        raise DataError(None, f"{clip} (video {sample.get('video_id', '?')}) has no face track: the face modality "
                              f"needs {expected} (run `microgesture extract-faces` on the videos, or generate the "
                              "synthetic data with video), then import the annotations again")
    path = _under(path, root)
    if not path.is_file():
        raise DataError(path, f"face-track video not found (needed by {clip})")
    return path


def _under(path: str | Path, root: str | None) -> Path:
    path = Path(path)
    return Path(root) / path if root is not None and not path.is_absolute() else path


def load_face_frames(path: Path, start_frame: int, inds: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 crops [n, 112, 112, 3] and missing flags [n] of frames ``start_frame + inds`` (any shape, flattened)."""
    frames = int(start_frame) + np.asarray(inds, dtype=np.int64).reshape(-1)
    missing = face_missing_flags(path)
    total = video_info(path).num_frames
    if len(missing) != total:
        raise DataError(face_csv_path(path), f"{len(missing)} rows, but {path.name} has {total} frames")
    if frames.size and (frames.min() < 0 or frames.max() >= total):
        raise DataError(path, f"clip {name} needs frames {frames.min()}..{frames.max()} but the face track has "
                              f"{total} frames: it is shorter than the source video's labels")
    return read_frames(path, frames.tolist()), missing[frames]


@dataclass(frozen=True)
class FaceClip:
    """Adds `face`, `face_missing` and `face_frame_inds` (see module doc) to a sampled clip.

    Uses `frame_inds` (UniformSample), `flipped` (RandomFlip), `start_frame`, `frame_dir` and
    `face_video_path` (relative ones are under `root`). `mean`/`std` are the face encoder's input
    normalisation on the [0, 1] scale (its InputSpec).
    """

    size: int
    num_frames: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    root: str | None = None

    def __post_init__(self) -> None:
        if int(self.size) < 1 or int(self.num_frames) < 1:
            raise ConfigError(f"FaceClip: need size >= 1 and num_frames >= 1; got {self}")
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        if mean.shape != (3,) or std.shape != (3,) or not (std > 0).all():
            raise ConfigError(f"FaceClip: mean and std need 3 values each (std > 0), got {self.mean} and {self.std}")

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any]:
        if "frame_inds" not in sample:
            raise ConfigError("FaceClip needs sample['frame_inds']: run UniformSample (the skeleton pipeline) first")
        inds = rgb_frame_indices(sample["frame_inds"], self.num_frames)
        path = face_track_file(sample, self.root)
        name = str(sample.get("frame_dir", "?"))
        crops, missing = load_face_frames(path, int(sample.get("start_frame", 0)), inds, name)
        out = self._normalise(crops, bool(sample.get("flipped", False)))  # [n, 3, S, S]
        out = out.reshape(*inds.shape, 3, self.size, self.size)
        sample["face"] = np.ascontiguousarray(np.moveaxis(out, -3, -4))  # [..., 3, T, S, S]
        sample["face_missing"] = missing.reshape(inds.shape)
        sample["face_frame_inds"] = inds
        return sample

    def _normalise(self, crops: np.ndarray, flipped: bool) -> np.ndarray:
        if self.size != FACE_SIZE:
            interp = cv2.INTER_AREA if self.size < FACE_SIZE else cv2.INTER_LINEAR
            crops = np.stack([cv2.resize(c, (self.size, self.size), interpolation=interp) for c in crops])
        if flipped:
            crops = crops[:, :, ::-1]
        scale = 1.0 / (255.0 * np.asarray(self.std, np.float32))
        offset = np.asarray(self.mean, np.float32) / np.asarray(self.std, np.float32)
        return (crops.astype(np.float32) * scale - offset).transpose(0, 3, 1, 2)

