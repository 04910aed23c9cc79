"""How much the synthetic face track and the gestures each tell about the emotion (win/lose).

A quick linear probe on held-out subjects, to check the synthetic data's design: the face alone
and the gestures alone should each be clearly below the two together. Per labelled clip:

- face: the clip's face-track crops (every 3rd frame, frames the tracker lost left out), grey,
  shrunk to 64x64, as HOG descriptors (OpenCV: 16-pixel blocks, 8-pixel cells, 9 orientations)
  averaged over the clip, reduced by a PCA fitted on the training folds;
- gestures: statistics of the noisy skeleton the detector reported (the `<vid>_light_hand.csv`
  rows), normalised by the neck and the shoulder width: wrist places and spread, hand speed,
  hand-to-face distance and time near the face, head-to-neck height, shoulder height, length;
- both: the two concatenated.

A logistic regression (L2, features standardised on the training folds) is trained and tested
in 4 folds split by subject; balanced accuracy (about 72 % of the videos are won, so accuracy
would flatter) and AUC of clips, and of videos from the mean of a video's clip probabilities,
averaged over the folds. "+ true MG classes" adds each clip's labelled class (one-hot): the
gesture information an ideal MG recogniser would pass on. Numbers are printed as a markdown table (and --json).

    python benchmarks/face_probe.py                 # 24 subjects x 3 videos of 30 s (about 4 min on 2 cores)
    python benchmarks/face_probe.py --quick         # 8 subjects x 2 videos of 20 s
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from microgesture.data.synth import generate
from microgesture.data.synth.body import J
from microgesture.data.synth.face import COVERED, FaceRenderer, make_face_look
from microgesture.data.synth.schedule import plan_dataset
from microgesture.domain.classes import NUM_CLASSES
from microgesture.eval.metrics import binary_metrics

FACE_STEP = 3
FACE_RES = 64
TIPS = list(range(25, 35))


_HOG = cv2.HOGDescriptor((FACE_RES, FACE_RES), (16, 16), (8, 8), (8, 8), 9)


def face_features(renderer: FaceRenderer, start: int, end: int) -> np.ndarray:
    """Mean HOG descriptor (edges: mouth curve, brow slant, eyes) of the clip's face crops."""
    crops = []
    for t in range(start, end + 1, FACE_STEP):
        img, covered = renderer.frame(t)
        if covered <= COVERED:
            crops.append(img)
    if not crops:
        return np.zeros(_HOG.getDescriptorSize())
    lit = renderer.light(np.stack(crops))
    grey = [cv2.resize(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), (FACE_RES, FACE_RES), interpolation=cv2.INTER_AREA)
            for c in lit]
    return np.mean([_HOG.compute(g).reshape(-1) for g in grey], axis=0)


def gesture_features(sk: np.ndarray, fps: float) -> np.ndarray:
    """Statistics of one clip's detected joints sk [T, 35, 3] (missed joints are zero)."""
    seen = sk[..., 2] > 0
    xy = sk[..., :2]

    def track(j):
        ok = seen[:, j]
        return xy[ok, j] if ok.any() else np.full((1, 2), np.nan)

    neck = np.nanmedian(track(J["neck"]), axis=0)
    width = np.nanmedian(np.linalg.norm(xy[:, J["r_shoulder"]] - xy[:, J["l_shoulder"]], axis=-1)[
        seen[:, J["r_shoulder"]] & seen[:, J["l_shoulder"]]]) if (seen[:, J["r_shoulder"]] & seen[:, J["l_shoulder"]]).any() else np.nan
    width = width if np.isfinite(width) and width > 0 else 1.0
    norm = (xy - neck) / width
    nose = np.nanmedian(np.where(seen[:, J["nose"], None], norm[:, J["nose"]], np.nan), axis=0)
    feats = []
    for w in (J["r_wrist"], J["l_wrist"]):
        p = np.where(seen[:, w, None], norm[:, w], np.nan)
        speed = np.nanmean(np.linalg.norm(np.diff(p, axis=0), axis=-1)) * fps if len(p) > 1 else 0.0
        feats += [*np.nanmean(p, axis=0), *np.nanstd(p, axis=0), speed]
    hands = np.where(seen[:, [J["r_wrist"], J["l_wrist"], *TIPS], None], norm[:, [J["r_wrist"], J["l_wrist"], *TIPS]], np.nan)
    dist = np.linalg.norm(hands - nose, axis=-1) if np.isfinite(nose).all() else np.full(hands.shape[:2], np.nan)
    to_face = np.where(np.isfinite(dist).any(1), np.nanmin(np.where(np.isfinite(dist), dist, np.inf), axis=1), np.nan)
    feats += [np.nanmin(to_face) if np.isfinite(to_face).any() else np.nan, np.mean(to_face < 1.0)]
    head = np.where(seen[:, J["nose"], None], norm[:, J["nose"]], np.nan)
    shoulders = np.where(seen[:, [J["r_shoulder"], J["l_shoulder"]], None], norm[:, [J["r_shoulder"], J["l_shoulder"]]], np.nan)
    feats += [np.nanmean(head[:, 1]), np.nanstd(head[:, 1]), np.nanmean(shoulders[..., 1]), len(sk) / fps]
    return np.nan_to_num(np.asarray(feats, dtype=np.float64), nan=0.0)


def collect(seed: int, subjects: int, videos: int, seconds: float, size=(192, 144)) -> dict[str, np.ndarray]:
    rows: dict[str, list] = {"face": [], "gesture": [], "mg": [], "emotion": [], "subject": [], "video": []}
    for plan in plan_dataset(seed, subjects, videos, seconds):
        sv = generate.synth_video(plan, seed, size)
        renderer = FaceRenderer(sv, make_face_look(seed, plan.subject_id))
        detections = sv.detections()
        for c, start, end in sv.segments:
            rows["mg"].append(np.eye(NUM_CLASSES)[c])
            rows["face"].append(face_features(renderer, start, end))
            rows["gesture"].append(gesture_features(detections[start:end + 1], sv.fps))
            rows["emotion"].append(plan.emotion)
            rows["subject"].append(plan.subject_id)
            rows["video"].append(plan.video_id)
    return {k: np.asarray(v, dtype=np.float64 if k in ("face", "gesture", "mg") else np.int64) for k, v in rows.items()}


def logistic(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, l2: float) -> np.ndarray:
    """P(win) for x_test from an L2-regularised logistic regression (standardised features, LBFGS)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mean) / std, dtype=torch.float64)
    yt = torch.tensor(y_train, dtype=torch.float64)
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return torch.sigmoid(torch.tensor((x_test - mean) / std, dtype=torch.float64) @ w + b).numpy()


def pca(train: np.ndarray, test: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sets projected on the training set's first `dims` principal components."""
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:dims].T
    return (train - mean) @ basis, (test - mean) @ basis


def features(data: dict[str, np.ndarray], kind: str, train: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) features of a kind ('face+gesture+mg'...); face features go through a PCA fitted on `train`."""
    parts = []
    if "face" in kind:
        parts.append(pca(data["face"][train], data["face"][~train], dims))
    for name in ("gesture", "mg"):
        if name in kind.split("+"):
            parts.append((data[name][train], data[name][~train]))
    return np.concatenate([p[0] for p in parts], 1), np.concatenate([p[1] for p in parts], 1)


def _video_level(prob: np.ndarray, y: np.ndarray, video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vids = np.unique(video)
    return np.array([prob[video == v].mean() for v in vids]), np.array([y[video == v][0] for v in vids])


def cross_subject(kind: str, data: dict[str, np.ndarray], folds: int, l2: float, dims: int) -> dict[str, float]:
    """Metrics per test fold (subjects held out), averaged over the folds.

    Per fold, not pooled: each fold's model has its own bias (its training share of won
    videos), which would make pooled AUCs fall below 0.5 for a model that knows nothing.
    """
    subjects = np.unique(data["subject"])
    y = data["emotion"]
    scores: dict[str, list[float]] = {k: [] for k in ("clip_balanced", "clip_auc", "video_balanced", "video_auc")}
    for k in range(folds):
        test = np.isin(data["subject"], subjects[k::folds])
        x_train, x_test = features(data, kind, ~test, dims)
        prob = logistic(x_train, y[~test], x_test, l2)
        # The threshold is the training share of won clips: balanced accuracy needs both classes called.
        threshold = float(np.quantile(logistic(x_train, y[~test], x_train, l2), 1 - y[~test].mean()))
        for level, (p, t) in (("clip", (prob, y[test])), ("video", _video_level(prob, y[test], data["video"][test]))):
            m = binary_metrics(p, t, threshold=threshold)
            scores[f"{level}_balanced"].append(m["balanced_accuracy"])
            scores[f"{level}_auc"].append(m["auc"])
    out = {k: float(np.mean(v)) for k, v in scores.items()}
    out.update(videos=len(np.unique(data["video"])), clips=len(y))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subjects", type=int, default=24)
    p.add_argument("--videos-per-subject", type=int, default=3)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--l2", type=float, default=0.01)
    p.add_argument("--pca", type=int, default=64, help="face features: principal components kept")
    p.add_argument("--save", type=Path, default=None, help="keep the clip features here (.npz)")
    p.add_argument("--load", type=Path, default=None, help="clip features saved by --save (the data settings must match)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.quick:
        a.subjects, a.videos_per_subject, a.seconds, a.folds = 8, 2, 20.0, 2
    t0 = time.perf_counter()
    if a.load is not None:
        data = {k: np.asarray(v, dtype=np.float64 if k in ("face", "gesture", "mg") else np.int64)
                for k, v in np.load(a.load).items()}
    else:
        data = collect(a.seed, a.subjects, a.videos_per_subject, a.seconds)
    if a.save is not None:
        np.savez(a.save, **data)
    results = {}
    for name, kind in (("face", "face"), ("gestures (skeleton statistics)", "gesture"),
                       ("gestures (+ true MG classes)", "gesture+mg"), ("face + gestures (skeleton)", "face+gesture"),
                       ("face + gestures (+ MG classes)", "face+gesture+mg")):
        results[name] = cross_subject(kind, data, a.folds, a.l2, a.pca)
    print(f"synthetic data seed {a.seed}: {a.subjects} subjects x {a.videos_per_subject} videos of {a.seconds:g} s, "
          f"{len(data['emotion'])} clips, {int(data['emotion'].mean() * 100)} % of clips from won videos; "
          f"{a.folds} folds by subject, metrics averaged over folds; {time.perf_counter() - t0:.0f} s")
    keys = ("clip_balanced", "clip_auc", "video_balanced", "video_auc")
    print("| features | clip balanced acc. | clip AUC | video balanced acc. | video AUC |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    if a.json is not None:
        a.json.write_text(json.dumps({"settings": vars(a), "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
