"""Online recognition on the synthetic untrimmed videos: segment F1 on the held-out test subjects.

1. the synthetic dataset (subject-disjoint train / val / test) and its labelled windows
   (data/windows.py: "no gesture" as an extra class);
2. a 2s-AGCN joint stream trained on the windows (configs/synthetic/online_agcn.yaml), best
   epoch by window accuracy on the validation subjects;
3. the decoding threshold tuned on the validation subjects' whole videos, then segment F1 on the
   test subjects' videos with the MiGA start-kit rule and the one-to-one rule (eval/segments.py);
4. optionally (`--baseline`) the demo's recipe, a joint stream trained on trimmed clips (no
   background class), slid the same way;
5. optionally (`--mediapipe N`) the same online model on N test videos whose skeletons come from
   MediaPipe run on the rendered frames instead of the synthetic detector's CSV;
6. a figure: F1 against the threshold (validation and test), and one test video's timeline with
   the ground truth outlined; `results.json` and a markdown table.

    python benchmarks/online_synthetic.py --out runs/online_bench --baseline   # docs/analyze.md
    python benchmarks/online_synthetic.py --out runs/online_bench --baseline --mediapipe 4
    python benchmarks/online_synthetic.py --quick --out /tmp/online_quick   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from microgesture.apps.online import (
    THRESHOLDS,
    load_online_model,
    score_split,
    split_frame_probs,
    split_videos,
)
from microgesture.data.formats.annotations import load_annotations, resolve_video_path
from microgesture.data.formats.sequences import Sequence
from microgesture.data.windows import write_window_annotations
from microgesture.eval.plots import save_figure
from microgesture.eval.segments import Segment, frame_probabilities, segment_f1
from microgesture.eval.timeline import plot_timeline
from microgesture.train.config import SynthConfig, load_config
from microgesture.train.datamodule import synthetic_annotations
from microgesture.train.run import LAST, fit

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synthetic"


def train(config: str, run_dir: Path, sets: list[str]) -> Path:
    """Train, resume an interrupted run, or reuse a finished one (all its epochs done; a finished
    run folder is trusted to match the settings: give another --out for other settings)."""
    cfg = load_config(CONFIGS / config, sets)
    info, best = run_dir / "run_info.json", run_dir / "checkpoints" / "best.ckpt"
    if info.is_file() and best.is_file() and json.loads(info.read_text())["epochs"] >= cfg.trainer.max_epochs:
        print(f"reusing the finished run in {run_dir}")
        return best
    result = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
    return result.best_checkpoint


def curves(model, data, probs_val, probs_test) -> tuple[list, list]:
    val = [score_split(model, data, probs_val, float(t))[0]["f1"] for t in THRESHOLDS]
    test = [score_split(model, data, probs_test, float(t))[0]["f1"] for t in THRESHOLDS]
    return val, test


def scores_at(model, data, probs, threshold) -> dict:
    kit, preds = score_split(model, data, probs, threshold)
    strict, _ = score_split(model, data, probs, threshold, rule="one_to_one")
    return {"kit": kit, "one_to_one": strict, "agnostic": class_agnostic(data, preds), "preds": preds}


def class_agnostic(data, preds: dict) -> dict:
    """The kit rule with every class made one: gestures localised, whatever class was given."""
    truths = {vid: [Segment(0, int(c["start_frame"]), int(c["end_frame"])) for c in data["annotations"]
                    if int(c["video_id"]) == vid] for vid in preds}
    flat = {vid: [Segment(0, s.start, s.end) for s in segs] for vid, segs in preds.items()}
    return segment_f1(flat, truths).as_dict()


def mediapipe_probs(model, data, videos: list[dict], stride: int) -> dict:
    """Frame probabilities from skeletons MediaPipe extracts from the rendered test videos."""
    from microgesture.apps.online import window_scores
    from microgesture.data.pose.extract import ExtractOptions, extract_video

    out = {}
    for video in videos:
        ex = extract_video(resolve_video_path(data, video), ExtractOptions(stride=2, max_side=640))
        seq = Sequence(int(video["video_id"]), ex.frames, ex.joints(model.layout), model.layout, ex.fps)
        starts, length, probs = window_scores(model, seq, stride=stride)
        out[int(video["video_id"])] = (frame_probabilities(probs, starts, length, seq.num_frames), ex.fps)
    return out


def figure(path: Path, val: list, test: list, threshold: float) -> None:
    fig = Figure(figsize=(5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(THRESHOLDS, val, marker="o", ms=3, label="validation subjects")
    ax.plot(THRESHOLDS, test, marker="s", ms=3, label="test subjects")
    ax.axvline(threshold, color="0.4", ls="--", lw=0.8, label=f"chosen on validation ({threshold:.2f})")
    ax.set_xlabel("decoding threshold (1 - p(no gesture))")
    ax.set_ylabel("segment F1 (MiGA start-kit rule)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/online_bench"))
    p.add_argument("--data-root", type=Path, default=Path("runs/data/synthetic"))
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-stride", type=int, default=8, help="frames between training windows")
    p.add_argument("--core", type=float, default=0.5)
    p.add_argument("--stride", type=int, default=4, help="frames between windows when recognising")
    p.add_argument("--baseline", action="store_true", help="also slide a trimmed-clip classifier (the demo's)")
    p.add_argument("--mediapipe", type=int, default=0, help="test videos to re-run on MediaPipe skeletons")
    p.add_argument("--quick", action="store_true", help="3 subjects, 1 epoch: a smoke run")
    a = p.parse_args()
    started, load_start = time.perf_counter(), os.getloadavg()
    synth = SynthConfig(root=str(a.data_root), subjects=3, videos_per_subject=1, video=a.mediapipe > 0) if a.quick \
        else SynthConfig(root=str(a.data_root), video=a.mediapipe > 0)
    epochs = 1 if a.quick else a.epochs
    ann = synthetic_annotations(synth, progress=True)
    windows = a.out / "windows.pkl"
    counts = write_window_annotations(ann, windows, length=32, stride=a.train_stride, core=a.core)
    print(f"windows: {counts['windows']} ({counts['background']} background), {counts['ambiguous']} ambiguous left out")
    sets = [f"data.annotations={windows}", f"trainer.max_epochs={epochs}", "trainer.progress_bar=false"]
    checkpoint = train("online_agcn.yaml", a.out / "online", sets)
    data = load_annotations(ann)
    model = load_online_model(checkpoint, device="cpu")
    probs_val = split_frame_probs(model, data, "val", stride=a.stride)
    probs_test = split_frame_probs(model, data, "test", stride=a.stride)
    val, test = curves(model, data, probs_val, probs_test)
    threshold = float(THRESHOLDS[int(np.argmax(val))])
    rows = {"online 2s-AGCN joint, synthetic detector skeletons": scores_at(model, data, probs_test, threshold)}
    if a.mediapipe:
        videos = split_videos(data, "test")[: a.mediapipe]
        mp_probs = mediapipe_probs(model, data, videos, a.stride)
        same = {v: probs_test[v] for v in mp_probs}
        rows[f"same model, same {len(mp_probs)} videos, synthetic detector skeletons"] = \
            scores_at(model, data, same, threshold)
        rows[f"same model, same {len(mp_probs)} videos, MediaPipe skeletons from the frames"] = \
            scores_at(model, data, mp_probs, threshold)
    if a.baseline:
        base_ckpt = train("agcn_joint.yaml", a.out / "trimmed",  # the demo's recipe: its config's 16 epochs
                          [f"data.synthetic.root={a.data_root}", "trainer.progress_bar=false",
                           f"data.synthetic.video={str(a.mediapipe > 0).lower()}"]
                          + (["trainer.max_epochs=1"] if a.quick else [])
                          + (["data.synthetic.subjects=3", "data.synthetic.videos_per_subject=1"] if a.quick else []))
        base = load_online_model(base_ckpt, device="cpu")
        bval = split_frame_probs(base, data, "val", stride=a.stride)
        btest = split_frame_probs(base, data, "test", stride=a.stride)
        bcurve = [score_split(base, data, bval, float(t))[0]["f1"] for t in THRESHOLDS]
        bthr = float(THRESHOLDS[int(np.argmax(bcurve))])
        rows[f"trimmed-clip 2s-AGCN joint (no background class), threshold {bthr:.2f}"] = \
            scores_at(base, data, btest, bthr)
    vid = sorted(probs_test)[0]
    truths = [Segment(int(c["label"]), int(c["start_frame"]), int(c["end_frame"]))
              for c in data["annotations"] if int(c["video_id"]) == vid]
    frames, fps = probs_test[vid]
    plot_timeline(a.out / "timeline_test_video.png", rows[next(iter(rows))]["preds"][vid], model.class_names,
                  fps=fps or 25, num_frames=len(frames), strength=1 - frames[:, model.background],
                  threshold=threshold, truths=truths, title=f"test video {vid}: predicted (filled) and labelled (outlined)")
    figure(a.out / "online_f1.png", val, test, threshold)
    print("| model | F1 (kit rule) | precision | recall | F1 (one-to-one) | F1 (class-agnostic) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        k, s = r["kit"], r["one_to_one"]
        print(f"| {name} | {k['f1']:.3f} | {k['precision']:.3f} | {k['recall']:.3f} | {s['f1']:.3f} | {r['agnostic']['f1']:.3f} |")
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
              "cores": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
              "threshold": threshold, "thresholds": list(map(float, THRESHOLDS)), "val_curve": val, "test_curve": test,
              "windows": {k: v for k, v in counts.items() if k != "classes"}, "epochs": epochs,
              "rows": {n: {k: r[k] for k in ("kit", "one_to_one", "agnostic")} for n, r in rows.items()},
              "minutes": round((time.perf_counter() - started) / 60, 1)}
    (a.out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"threshold {threshold:.2f} (tuned on validation); {report['minutes']} min; figures in {a.out}")


if __name__ == "__main__":
    main()
