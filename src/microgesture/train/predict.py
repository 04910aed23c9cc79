"""`microgesture predict`: class predictions for an annotation file, and a MiGA submission zip."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from microgesture.eval.scores import write_scores
from microgesture.eval.submission import write_submission
from microgesture.train.config import ExperimentConfig
from microgesture.train.datamodule import MGDataModule
from microgesture.train.run import load_module, predict_scores
from microgesture.utils.io import write_text


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

    Labels in the file are ignored: this is for unlabelled challenge data and for a user's own
    clips (give them label -1). Returns the submission zip's path.
    """
    out_dir = Path(out_dir)
    module = load_module(checkpoint, cfg)
    data_cfg = replace(cfg.data, annotations=str(annotations), synthetic=None)
    dm = MGDataModule.for_experiment(replace(cfg, data=data_cfg))
    split = split or _all_clips_split(dm)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    table = predict_scores(module, dm, split, num_clips or cfg.data.test_clips, dev)
    names = module.class_names
    probs = torch.softmax(torch.from_numpy(table.scores), dim=1).numpy()
    pred = probs.argmax(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_scores(out_dir / "scores.csv", table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample_id", "predicted_class", "class_name", "confidence"])
    for sid, k, p in zip(table.sample_ids, pred, probs):
        writer.writerow([sid, int(k), names[int(k)], f"{float(p[k]):.4f}"])
    write_text(out_dir / "predictions.csv", buf.getvalue())
    return write_submission(out_dir / "submission.zip", table.sample_ids, pred.astype(np.int64), style=style,
                            num_classes=len(names))


def _all_clips_split(dm: MGDataModule) -> str:
    """A split holding every clip of the file, for files without a `test` split."""
    data = dm.load()
    data["split"]["all"] = [c["frame_dir"] for c in data["annotations"]]
    return "all"
