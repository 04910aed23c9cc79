"""`microgesture crops`: look at the skeleton-guided crops of a few clips before training on them.

Writes one PNG contact sheet per clip: a row per crop modality, the clip's frames from left to
right (test-time sampling, no augmentation), so a user can check on their own data that the hand
and face tiles show hands and faces. The `CropWarning`s a clip raises are printed as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from microgesture.data.formats.annotations import load_annotations
from microgesture.data.transforms.pipelines import VideoInput, build_pipeline
from microgesture.errors import DataError
from microgesture.utils.io import atomic_path


def preview_crops(annotations: str | Path, clip_ids: Sequence[str], out_dir: str | Path, *,
                  modalities: Sequence[str] = ("rgb_crops",), size: int = 96, frames: int = 8,
                  video_root: str | Path | None = None) -> list[Path]:
    """One PNG per clip under `out_dir` (`<clip id>.png`); returns their paths.

    `clip_ids` are `frame_dir` values of the annotation file (DataError naming the unknown ones).
    """
    import cv2

    data = load_annotations(annotations, video_root=video_root)
    by_id = {c["frame_dir"]: c for c in data["annotations"]}
    unknown = [c for c in clip_ids if c not in by_id]
    if unknown:
        raise DataError(annotations, f"no clip {unknown[0]!r} (clip ids are frame_dir values, e.g. "
                                     f"{next(iter(by_id), '?')!r})")
    video = {m: VideoInput(frames, size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) for m in modalities}
    pipe = build_pipeline(list(modalities), layout=data["meta"].get("layout") or "miga35", num_frames=max(frames, 8),
                          train=False, video=video, video_root=data["meta"].get("video_root"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for clip_id in clip_ids:
        sample = pipe(dict(by_id[clip_id]))
        rows = [np.concatenate(list(sample[m].transpose(1, 2, 3, 0)), axis=1) for m in modalities]  # [S, T*S, 3]
        sheet = np.clip(np.concatenate(rows, axis=0) * 255, 0, 255).astype(np.uint8)
        path = out_dir / f"{clip_id}.png"
        with atomic_path(path, suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
                raise DataError(path, "could not write the PNG")
        written.append(path)
    return written

