"""`microgesture adapt CONFIG --target SPLIT`: cross-modal pseudo-labelling (CMPL, arXiv 2606.13030).

CONFIG names two or more streams, each with the `checkpoint` of its trained single-stream run
(configs/*/longtail_cmpl.yaml), and an `adapt` section (train/config.py `AdaptConfig`). Before
anything else, the target split's labels are removed: `hidden.pkl` is the annotation file with
every target clip's label and emotion (and its videos' emotion) set to -1, and every later step
reads that file only, so nothing in adaptation can see a target label. Then, round by round:

1. each stream's current model predicts the target clips (its own modality only);
2. pseudo-labels where the streams agree and are confident, per-class thresholds, a cap per class
   (train/cmpl.py), written to `round_<r>/pseudo_labels.csv` with their provenance;
3. `round_<r>/annotations.pkl`: hidden.pkl with the pseudo-labels filled in and a split
   `adapt_train` = source training clips + pseudo-labelled clips;
4. each stream fine-tuned from its current weights on `adapt_train` (`adapt.epochs` at `adapt.lr`,
   best epoch chosen on the source validation split), in `round_<r>/<stream>/`.

`manifest.json` records the inputs (annotation file, stream checkpoints, with SHA-256) and each
finished step; every file is written atomically, so an interrupted run resumes where it stopped
and a folder made from other inputs is refused. How good the pseudo-labels were is measured
afterwards, from the true labels, by a separate step (eval/pseudo.py), never here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from microgesture.data.cache import sha256_file
from microgesture.data.formats.annotations import load_annotations, save_annotations
from microgesture.eval.pseudo import MANIFEST
from microgesture.errors import ConfigError, DataError
from microgesture.train.checkpoint import read_run_checkpoint
from microgesture.train.cmpl import PseudoLabels, select_pseudo_labels
from microgesture.train.config import AdaptConfig, ExperimentConfig, ModelConfig
from microgesture.train.datamodule import synthetic_annotations
from microgesture.typed_config import to_dict
from microgesture.utils.io import write_text
from microgesture.utils.runlock import RunLock

FORMAT_NAME = "microgesture-cmpl"
HIDDEN = "hidden.pkl"
ADAPT_SPLIT = "adapt_train"


@dataclass
class AdaptResult:
    out: Path
    checkpoints: dict[str, Path]  # each stream's model after the last round
    rounds: list[dict[str, Any]]


def adapt(cfg: ExperimentConfig, out: str | Path, *, target: str, device: str | None = None) -> AdaptResult:
    """Run CMPL (module doc) into `out`; resumes an interrupted run of the same inputs."""
    out = Path(out)
    settings = cfg.adapt or AdaptConfig()
    checkpoints = _stream_checkpoints(cfg)
    source = _annotation_path(cfg)
    data = load_annotations(source, video_root=cfg.data.video_root)
    _check_target(source, data, cfg, target)  # every check before anything is written
    inputs = {"source": {"path": str(source), "sha256": sha256_file(source)}, "target": target,
              "adapt": to_dict(settings),
              "streams": {m: {"checkpoint": str(p), "sha256": sha256_file(p)} for m, p in checkpoints.items()}}
    with RunLock(out):
        manifest = _open_manifest(out, inputs)
        hidden = out / HIDDEN
        if not manifest.get("hidden_sha256") or not hidden.is_file():
            _save(hidden, hide_labels(data, target))
            manifest["hidden_sha256"] = sha256_file(hidden)
            _write_manifest(out, manifest)
        del data  # from here on only the file without target labels is read
        video_root = cfg.data.video_root or str(Path(source).parent)
        current = dict(checkpoints)
        for r in range(1, settings.rounds + 1):
            current = _round(cfg, settings, out, r, target, current, manifest, video_root, device)
    return AdaptResult(out, current, manifest["rounds"])


def hide_labels(data: dict[str, Any], target: str) -> dict[str, Any]:
    """A copy of an annotation object whose target clips (and their videos) carry no label (-1)."""
    names = set(data["split"][target])
    clips = []
    for clip in data["annotations"]:
        clip = dict(clip)
        if clip["frame_dir"] in names:
            clip["label"], clip["emotion"] = -1, -1
        clips.append(clip)
    target_videos = {c["video_id"] for c in clips if c["frame_dir"] in names}
    videos = [dict(v, emotion=-1) if v["video_id"] in target_videos else dict(v) for v in data.get("videos", [])]
    return {"annotations": clips, "split": copy.deepcopy(data["split"]), "videos": videos,
            "meta": {k: v for k, v in data["meta"].items() if k not in ("path", "video_root")}}


def _save(path: Path, data: dict[str, Any]) -> None:
    save_annotations(path, data["annotations"], data["split"], data["meta"], data["videos"])


def _stream_checkpoints(cfg: ExperimentConfig) -> dict[str, Path]:
    streams = cfg.model.streams
    if len(streams) < 2:
        raise ConfigError(f"model.streams: CMPL needs two streams or more to agree, got {list(streams)}")
    out = {}
    for name, enc in streams.items():
        if enc.checkpoint is None:
            raise ConfigError(f"model.streams.{name}.checkpoint: CMPL starts from each stream's trained run; "
                              "name its checkpoint")
        if not Path(enc.checkpoint).is_file():
            raise DataError(enc.checkpoint, f"checkpoint of stream {name!r} not found")
        out[name] = Path(enc.checkpoint)
    return out


def _annotation_path(cfg: ExperimentConfig) -> Path:
    if cfg.data.annotations is not None:
        return Path(cfg.data.annotations)
    return synthetic_annotations(cfg.data.synthetic)


def _check_target(path: Path, data: dict[str, Any], cfg: ExperimentConfig, target: str) -> None:
    splits = data["split"]
    if target not in splits:
        raise DataError(path, f"--target {target!r}: no such split (splits: {sorted(splits)})")
    if not splits[target]:
        raise DataError(path, f"--target {target!r}: the split is empty: there is nothing to adapt to")
    for source in (cfg.data.train_split, cfg.data.val_split):
        if source == target or set(splits.get(source, ())) & set(splits[target]):
            raise DataError(path, f"--target {target!r}: shares clips with the labelled source split {source!r}; "
                                  "CMPL adapts to an unlabelled target split (e.g. the test subjects), not to "
                                  "the clips it learns from")
    if not splits.get(cfg.data.train_split):
        raise DataError(path, f"data.train_split {cfg.data.train_split!r}: no labelled source clips to keep "
                              "training on")


def _open_manifest(out: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    path = out / MANIFEST
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except ValueError as exc:
            raise DataError(path, f"unreadable CMPL manifest ({exc}); delete the folder or choose another --out") from None
        old = {k: manifest.get(k) for k in inputs}
        if old != inputs:
            changed = [k for k in inputs if old[k] != inputs[k]]
            raise DataError(path, f"made from other inputs ({', '.join(changed)} differ); delete the folder or "
                                  "choose another --out")
        return manifest
    if out.is_dir() and any(p.name != ".lock" for p in out.iterdir()):
        raise DataError(out, f"folder is not empty and has no {MANIFEST}: choose another --out")
    manifest = {"format": FORMAT_NAME, "version": 1, **inputs, "rounds": []}
    _write_manifest(out, manifest)
    return manifest


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def stream_config(cfg: ExperimentConfig, stream: str, annotations: Path, video_root: str, *,
                  train_split: str | None = None) -> ExperimentConfig:
    """One stream of a CMPL config alone, reading `annotations` (hidden or pseudo-labelled)."""
    enc = replace(cfg.model.streams[stream], checkpoint=None)
    settings = cfg.adapt or AdaptConfig()
    data = replace(cfg.data, annotations=str(annotations), synthetic=None, video_root=video_root,
                   train_split=train_split or cfg.data.train_split, cache=None)
    optim = replace(cfg.optim, lr=settings.lr, warmup_epochs=0)
    trainer = replace(cfg.trainer, max_epochs=settings.epochs)
    return replace(cfg, name=f"{cfg.name}_{stream}", data=data, model=ModelConfig(streams={stream: enc}),
                   optim=optim, trainer=trainer)


def _round(cfg, settings, out, r, target, current, manifest, video_root, device) -> dict[str, Path]:
    folder = out / f"round_{r}"
    record = next((x for x in manifest["rounds"] if x["round"] == r), None)
    if record and record.get("complete"):
        return {m: Path(p) for m, p in record["checkpoints"].items()}
    if record is None:
        hidden = out / HIDDEN
        probs = {m: _predict(stream_config(cfg, m, hidden, video_root), ckpt, target, device)
                 for m, ckpt in current.items()}
        ids = next(iter(probs.values()))[0]
        chosen = select_pseudo_labels({m: p for m, (_, p) in probs.items()}, threshold=settings.threshold,
                                      min_threshold=settings.min_threshold, cap=settings.cap)
        write_pseudo_labels(folder / "pseudo_labels.csv", ids, chosen, r)
        _save(folder / "annotations.pkl", with_pseudo_labels(load_annotations(hidden), ids, chosen, cfg.data.train_split))
        record = {"round": r, "pseudo_labels": str(folder / "pseudo_labels.csv"),
                  "pseudo_labels_sha256": sha256_file(folder / "pseudo_labels.csv"),
                  "annotations_sha256": sha256_file(folder / "annotations.pkl"),
                  "num_pseudo_labels": int(len(chosen.index)), "candidates": chosen.candidates,
                  "target_clips": len(ids), "thresholds": chosen.thresholds.round(4).tolist(),
                  "started_from": {m: str(p) for m, p in current.items()}, "complete": False}
        manifest["rounds"].append(record)
        _write_manifest(out, manifest)
    print(f"CMPL round {r}: {record['num_pseudo_labels']} pseudo-labels of {record['target_clips']} target clips "
          f"({record['candidates']} agreed)")
    new = {}
    for m, ckpt in current.items():
        scfg = stream_config(cfg, m, folder / "annotations.pkl", video_root, train_split=ADAPT_SPLIT)
        new[m] = _finetune(scfg, folder / m, ckpt)
    record["checkpoints"] = {m: str(p) for m, p in new.items()}
    record["complete"] = True
    _write_manifest(out, manifest)
    return new


def _predict(scfg: ExperimentConfig, checkpoint: Path, target: str, device: str | None):
    from microgesture.train.run import data_module, load_module, predict_scores, resolve_device

    module = load_module(checkpoint, scfg)
    table = predict_scores(module, data_module(scfg, progress=False), target, scfg.data.test_clips,
                           resolve_device(device))["mg"]
    logits = torch.from_numpy(table.scores).double()
    return table.sample_ids, torch.softmax(logits, dim=1).numpy()


def write_pseudo_labels(path: Path, ids: list[str], chosen: PseudoLabels, r: int) -> None:
    """CSV: sample_id, pseudo_label, round, modalities, confidence, conf_<stream>..., threshold."""
    streams = list(chosen.stream_confidence)
    lines = ["sample_id,pseudo_label,round,modalities,confidence," + ",".join(f"conf_{m}" for m in streams)
             + ",threshold"]
    for j, i in enumerate(chosen.index):
        c = int(chosen.label[j])
        confs = ",".join(f"{chosen.stream_confidence[m][j]:.6f}" for m in streams)
        lines.append(f"{ids[i]},{c},{r},{'+'.join(streams)},{chosen.confidence[j]:.6f},{confs},"
                     f"{chosen.thresholds[c]:.6f}")
    write_text(path, "\n".join(lines) + "\n")


def with_pseudo_labels(hidden: dict[str, Any], ids: list[str], chosen: PseudoLabels, train_split: str) -> dict:
    """hidden's annotations with the pseudo-labels set and the `adapt_train` split added."""
    data = dict(hidden)
    labels = {ids[i]: int(c) for i, c in zip(chosen.index, chosen.label)}
    data["annotations"] = [dict(c, label=labels[c["frame_dir"]]) if c["frame_dir"] in labels else c
                           for c in data["annotations"]]
    data["split"] = dict(data["split"])
    data["split"][ADAPT_SPLIT] = list(data["split"][train_split]) + [ids[i] for i in chosen.index]
    data["meta"] = {k: v for k, v in data["meta"].items() if k not in ("path", "video_root")}
    return data


class InitFrom(L.Callback):
    """Start a fine-tuning run from a trained run's weights (a resumed run then restores its own)."""

    def __init__(self, checkpoint: Path):
        self.checkpoint = checkpoint

    def setup(self, trainer, pl_module, stage: str) -> None:
        state = read_run_checkpoint(self.checkpoint)["state_dict"]
        own = pl_module.state_dict()
        missing = [k for k in own if k not in state and not k.startswith("ose.")]
        if missing:
            raise DataError(self.checkpoint, f"does not fit the stream's model: missing {missing[:3]}")
        pl_module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def _finetune(scfg: ExperimentConfig, run_dir: Path, start: Path) -> Path:
    from microgesture.train.run import LAST, fit

    best = run_dir / "checkpoints" / "best.ckpt"
    if (run_dir / "run_info.json").is_file() and best.is_file():
        return best
    resume = (run_dir / "checkpoints" / LAST).is_file()
    return fit(scfg, run_dir, resume=resume, callbacks=[InitFrom(start)]).best_checkpoint
