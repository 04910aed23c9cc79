"""`microgesture predict`: class predictions for an annotation file, and a MiGA submission zip.

Labels in the file are never read (the clips are served with their labels hidden): this is for
unlabelled challenge data and a user's own clips. A fusion trained on cached tokens predicts
on any file: it reads raw clips through the encoders its config names.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from microgesture.eval.scores import write_scores
from microgesture.eval.submission import write_submission
from microgesture.train.config import ExperimentConfig
from microgesture.train.run import load_module, predict_scores, resolve_device, scoring_data
from microgesture.utils.io import write_text
from microgesture.utils.paths import check_output_dir


def predict(
    cfg: ExperimentConfig,
    checkpoint: str | Path,
    annotations: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = None,
    style: str = "2025",
    num_clips: int | None = None,
    device: str | None = None,
) -> Path:
    """Write predictions.csv, scores.csv and submission.zip for `split` (default: every clip) to out_dir.

    Returns the submission zip's path.
    """
    out_dir = check_output_dir(out_dir, "--out")
    dev = resolve_device(device)
    module = load_module(checkpoint, cfg)
    dm = scoring_data(cfg, module, annotations)
    tables = predict_scores(module, dm, split or "all", num_clips or cfg.data.test_clips, dev)
    for table in tables.values():
        table.labels[:] = -1  # predictions never carry the file's labels
    if "emotion" in tables:
        videos = {c["frame_dir"]: int(c.get("video_id", -1)) for c in dm.clips(split or "all")}
        write_emotion_predictions(out_dir, tables["emotion"], videos)
    if "mg" not in tables:
        return out_dir / "emotion_predictions.csv"
    return write_mg_predictions(out_dir, tables["mg"], module.class_names, style)


def write_mg_predictions(out_dir: Path, table, names: list[str], style: str) -> Path:
    """predictions.csv (class, name, confidence per clip), scores.csv and the submission zip."""
    probs = torch.softmax(torch.from_numpy(table.scores), dim=1).numpy()
    pred = probs.argmax(1)
    write_scores(out_dir / "scores.csv", table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample_id", "predicted_class", "class_name", "confidence"])
    for sid, k, p in zip(table.sample_ids, pred, probs):
        writer.writerow([sid, int(k), names[int(k)], f"{float(p[k]):.4f}"])
    write_text(out_dir / "predictions.csv", buf.getvalue())
    return write_submission(out_dir / "submission.zip", table.sample_ids, pred.astype(np.int64), style=style,
                            num_classes=len(names))


def write_emotion_predictions(out_dir: Path, table, video_of: dict[str, int]) -> Path:
    """The MiGA emotion track's file, emotion_predictions.csv: header `video_id,label`, one row per
    video, label 1 (win) or 0 (lose) from the video's win probability (the clips' probabilities
    averaged per video; a video-level model gives one per video) above 0.5. Beside it:
    emotion_videos.csv (`video_id,prob_win,num_clips`) and emotion_scores.csv (clip logits)."""
    from microgesture.eval.report import emotion_metrics

    write_scores(out_dir / "emotion_scores.csv", table)
    _, per_video = emotion_metrics(table, video_of)
    videos = list(zip(per_video["video_id"], per_video["prob_win"], per_video["num_clips"]))
    write_text(out_dir / "emotion_videos.csv",
               "\n".join(["video_id,prob_win,num_clips"] + [f"{v},{p:.6f},{n}" for v, p, n in videos]) + "\n")
    path = out_dir / "emotion_predictions.csv"
    write_text(path, "\n".join(["video_id,label"] + [f"{v},{int(p > 0.5)}" for v, p, _ in videos]) + "\n")
    return path
