"""PYSKL annotation pickles in (`import_pyskl`) and out (`export_pyskl`), so data moves both ways.

PYSKL and MMAction2 keep a whole skeleton dataset in one pickle::

    {'split': {name: [frame_dir, ...]}, 'annotations': [clip, ...]}    (or a bare list of clips)

each clip with `frame_dir` (unique name), `label` (0-based), `img_shape` / `original_shape` (h, w),
`total_frames`, `keypoint` float [M, T, V, C] and, for 2-D keypoints (C = 2), `keypoint_score`
[M, T, V]. Their files name no joints: the joint count V must equal the `layout`'s (coco17 and
ntu25 are PYSKL's 'coco' and 'nturgb+d' in PYSKL's joint order). 3-D keypoints (C = 3, PYSKL's
NTU files, no scores) are refused unless `project="xy"`: an orthographic view from the camera
keeping (x, -y) (y then points down, as in images), a joint scoring 1 where its 3-D position is
not all zero. Every clip gets the same person count M (`persons`, default the largest in the
file): fewer are padded with undetected persons, more are cut (PYSKL's own FormatGCNInput does
the same). The split is kept as it is (e.g. `xsub_train` / `xsub_val`: train with
`--set data.train_split=xsub_train`). Each clip is a video of its own in the videos table; an
NTU name (`S001C001P003R001A001`) gives the subject (P003 -> 3).

The export writes PYSKL's keys only, so PYSKL and MMAction2 read the file as one of theirs.
Pickles are read with the restricted unpickler: a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.formats.annotations import load_annotations, make_clip, make_video
from microgesture.data.formats.importing import save_import
from microgesture.domain.layouts import convert, get_layout
from microgesture.errors import ConfigError, DataError
from microgesture.utils.io import atomic_open
from microgesture.utils.safe_pickle import load_pickle

PYSKL_KEYS = ("frame_dir", "label", "img_shape", "original_shape", "total_frames", "keypoint", "keypoint_score")
PYSKL_GRAPHS = {"coco17": "coco", "ntu25": "nturgb+d"}  # our layout -> PYSKL's Graph(layout=...)
PROJECTIONS = ("xy",)
DEFAULT_3D_SHAPE = (1080, 1920)  # NTU RGB+D's colour frames; projected keypoints are in metres anyway
_NTU_SUBJECT = re.compile(r"^S\d{3}C\d{3}P(\d{3})R\d{3}A\d{3}$")


def read_pyskl(path: str | Path, split_name: str = "train") -> tuple[list[dict], dict[str, list[str]]]:
    """`(clips, split)` of a PYSKL pickle; a bare list of clips becomes one split `split_name`."""
    path = Path(path)
    data = load_pickle(path, what="PYSKL annotation pickle")
    if isinstance(data, list):
        data = {"split": {split_name: [c.get("frame_dir") for c in data if isinstance(c, dict)]}, "annotations": data}
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataError(path, "expected a dict with 'annotations' (a list of clips) and 'split', or a list of clips")
    split = data.get("split") or {split_name: [c.get("frame_dir") for c in data["annotations"] if isinstance(c, dict)]}
    if not isinstance(split, dict) or not all(isinstance(v, (list, tuple)) for v in split.values()):
        raise DataError(path, "expected a dict of name -> list of frame_dir", "split")
    return data["annotations"], {str(k): [str(n) for n in v] for k, v in split.items()}


def _field(path: Path, index: int, clip: Any, key: str, kinds) -> Any:
    where = f"annotations[{index}]" + (f" ({clip.get('frame_dir')})" if isinstance(clip, dict) else "")
    if not isinstance(clip, dict):
        raise DataError(path, f"is a {type(clip).__name__}, expected a dict", where)
    if key not in clip:
        raise DataError(path, "missing", f"{where}, {key}")
    if not isinstance(clip[key], kinds):
        expected = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        raise DataError(path, f"is a {type(clip[key]).__name__}, expected {expected}", f"{where}, {key}")
    return clip[key]


def _points(path: Path, index: int, clip: dict, layout, project: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(keypoint [M, T, V, 2], score [M, T, V]) of one clip, checked against the layout."""
    kp = np.asarray(_field(path, index, clip, "keypoint", np.ndarray), dtype=np.float32)
    where = f"annotations[{index}] ({clip['frame_dir']}), keypoint"
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
        raise DataError(path, f"shape {kp.shape}, expected [M, T, V, C] with C = 2 (or 3 for 3-D)", where)
    if kp.shape[2] != layout.num_joints:
        raise DataError(path, f"has {kp.shape[2]} joints, layout {layout.name} has {layout.num_joints} "
                              f"({', '.join(layout.joint_names[:5])}, ...): pass the file's layout", where)
    if kp.shape[-1] == 3:
        return _projected(path, where, kp, clip, project)
    score = np.asarray(_field(path, index, clip, "keypoint_score", np.ndarray), dtype=np.float32)
    if score.shape != kp.shape[:3]:
        raise DataError(path, f"shape {score.shape}, expected {kp.shape[:3]} to match keypoint",
                        where.replace("keypoint", "keypoint_score"))
    return kp, score


def _projected(path: Path, where: str, kp: np.ndarray, clip: dict, project: str | None):
    if "keypoint_score" in clip:
        raise DataError(path, "has 3 values per joint and a keypoint_score: expected (x, y) with scores, or "
                              "3-D (x, y, z) without", where)
    if project is None:
        raise DataError(path, "3-D keypoints (x, y, z): our pipeline is 2-D; import with project='xy' "
                              "(--project xy) for the orthographic view (x, -y)", where)
    detected = (kp != 0).any(axis=-1)
    xy = np.stack([kp[..., 0], -kp[..., 1]], axis=-1)
    return np.where(detected[..., None], xy, 0).astype(np.float32), detected.astype(np.float32)


def _persons(kp: np.ndarray, score: np.ndarray, persons: int) -> tuple[np.ndarray, np.ndarray]:
    if len(kp) >= persons:
        return kp[:persons], score[:persons]
    pad = persons - len(kp)
    return (np.concatenate([kp, np.zeros((pad,) + kp.shape[1:], kp.dtype)]),
            np.concatenate([score, np.zeros((pad,) + score.shape[1:], score.dtype)]))


def _class_names(labels: list[int], classes: str | Path | None, num_classes: int | None) -> tuple[list[str], str]:
    if classes is not None:
        names = [ln.strip() for ln in Path(classes).read_text(encoding="utf-8").splitlines() if ln.strip()]
        where = f"{classes} ({len(names)} names)"
    else:
        count = num_classes if num_classes is not None else max(labels, default=-1) + 1
        names, where = [f"class {k}" for k in range(count)], "num_classes" if num_classes else "largest label + 1"
    bad = [lb for lb in labels if lb >= len(names)]
    if bad:
        raise ConfigError(f"labels go up to {max(bad)}, but there are {len(names)} classes (from {where})")
    return names, where


def import_pyskl(
    path: str | Path,
    *,
    layout: str,
    persons: int | None = None,
    classes: str | Path | None = None,
    num_classes: int | None = None,
    project: str | None = None,
    split_name: str = "train",
) -> tuple[list[dict], dict[str, list[str]], dict, list[dict]]:
    """A PYSKL pickle -> `(clips, split, meta, videos)` in our format (see module doc).

    Class names come from `classes` (a text file, one name per line), else "class k" for
    `num_classes` (default: the largest label + 1). Raises DataError naming the file, the clip
    and the field for anything malformed.
    """
    path = Path(path)
    try:
        lay = get_layout(layout)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if project is not None and project not in PROJECTIONS:
        raise ConfigError(f"project must be one of {', '.join(PROJECTIONS)} or None, got {project!r}")
    raw, split = read_pyskl(path, split_name)
    read, seen = [], set()
    for i, clip in enumerate(raw):
        name = str(_field(path, i, clip, "frame_dir", str))
        if name in seen:
            raise DataError(path, "duplicate name", f"annotations[{i}] ({name}), frame_dir")
        seen.add(name)
        label = int(_field(path, i, clip, "label", (int, np.integer)))
        read.append((name, label, *_points(path, i, clip, lay, project)))
    persons = persons or max((len(kp) for _, _, kp, _ in read), default=1)
    clips, videos = [], []
    for i, (clip, (name, label, kp, score)) in enumerate(zip(raw, read)):
        shape = tuple(int(v) for v in (clip.get("img_shape") or DEFAULT_3D_SHAPE))
        subject = _NTU_SUBJECT.match(name)
        kp, score = _persons(kp, score, persons)
        clips.append(make_clip(frame_dir=name, label=label, keypoint=kp, keypoint_score=score, img_shape=shape,
                               layout=lay.name, video_id=i, subject_id=int(subject.group(1)) if subject else -1))
        videos.append(make_video(video_id=i, subject_id=clips[-1]["subject_id"], num_frames=kp.shape[1],
                                 img_shape=shape, layout=lay.name, labelled_segments=1))
    for key, members in split.items():
        missing = [m for m in members if m not in seen]
        if missing:
            raise DataError(path, f"{len(missing)} name(s) not among the clips, e.g. {missing[0]!r}", f"split[{key!r}]")
    names, named_by = _class_names([c["label"] for c in clips], classes, num_classes)
    meta = {"source": str(path), "importer": "pyskl", "layout": lay.name, "classes": names, "persons": persons,
            "projection": project, "notes": [f"class names from {named_by}"]}
    return clips, split, meta, videos


def import_pyskl_to_file(path: str | Path, out_path: str | Path, **kwargs) -> dict:
    """`import_pyskl`, then save atomically; returns the data as `load_annotations` would."""
    return save_import(out_path, *import_pyskl(path, **kwargs))


def export_pyskl(annotations: str | Path, out_path: str | Path, *, layout: str | None = None) -> str:
    """Write our annotation file as a PYSKL pickle (PYSKL's keys only); returns a one-line summary.

    With `layout`, clips are converted first by a declared conversion (e.g. miga35 -> coco17).
    """
    try:
        target = get_layout(layout) if layout is not None else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    data = load_annotations(annotations)
    out = []
    for clip in data["annotations"]:
        kp, score = clip["keypoint"], clip["keypoint_score"]
        if target is not None:
            try:
                kp, score = convert(kp, get_layout(clip["layout"]), target, score)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"clip {clip['frame_dir']}: {exc}") from None
        out.append({"frame_dir": clip["frame_dir"], "label": int(clip["label"]),
                    "img_shape": tuple(clip["img_shape"]), "original_shape": tuple(clip["original_shape"]),
                    "total_frames": int(clip["total_frames"]), "keypoint": np.ascontiguousarray(kp, np.float32),
                    "keypoint_score": np.ascontiguousarray(score, np.float32)})
    with atomic_open(out_path, "wb") as fh:  # protocol 4: readable by the Python versions PYSKL supports
        pickle.dump({"split": {k: list(v) for k, v in data["split"].items()}, "annotations": out}, fh, protocol=4)
    layouts = {target.name} if target is not None else {c["layout"] for c in data["annotations"]}
    name = layouts.pop() if len(layouts) == 1 else "mixed"
    graph = PYSKL_GRAPHS.get(name)
    hint = f"PYSKL graph layout '{graph}'" if graph else f"PYSKL has no graph for layout {name}: pass --layout coco17"
    return f"wrote {out_path}: {len(out)} clips, splits {', '.join(data['split'])}; {hint}"
