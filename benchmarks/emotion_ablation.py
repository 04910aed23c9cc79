"""Emotion (win/lose per video) on the synthetic benchmark: face only, context only, late fusion,
concatenation, InterFusion, multi-task, the MG distribution as a feature, attention over clips.

For each training seed, on one synthetic dataset whose test subjects are held out (protocol
synthetic-xsub; validation subjects carved from the training side):
1. train the face stream (light face encoder on the face track) and the context stream (light RGB
   encoder on whole frames) for emotion, end to end from raw clips; evaluate each;
2. late fusion: the two streams' clip probabilities averaged, then per video;
3. run both trained encoders once, frozen, over every clip (the token cache), and train on the
   cached tokens: concatenation, InterFusion, InterFusion + an MG head (mg+emotion), the same with
   the video's MG distribution as an emotion feature, and InterFusion with attention over a video's
   clips (bags of clips per video, MIL);
4. evaluate every model on the test subjects at video level (clip probabilities averaged per video;
   one output per video for the attention model), plus a diagnostic: the within-subject AUC (the
   mean over test subjects of the AUC among one subject's own videos; nothing is selected by it).
No model selection on validation: every row uses its last epoch (validation has few videos, so its
metrics would pick noise). Prints and writes a mean +- std table over the seeds. Finished runs
are reused, so an interrupted ablation continues where it stopped.

    python benchmarks/emotion_ablation.py --seeds 0 1 2 --out runs/emotion_ablation
    python benchmarks/emotion_ablation.py --seeds 1 ...  # seeds in parallel processes, then:
    python benchmarks/emotion_ablation.py --seeds 0 1 2 --report
    python benchmarks/emotion_ablation.py --quick      # a smoke run: tiny data, one epoch
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from microgesture.eval.metrics import roc_auc
from microgesture.eval.report import emotion_metrics
from microgesture.eval.scores import ScoreTable, read_scores
from microgesture.train.config import load_config
from microgesture.train.extract import extract_for_experiment
from microgesture.train.run import LAST, evaluate, fit

ROWS = {
    "majority": "majority class (always win)",
    "face": "face only (light face encoder)",
    "context": "context only (light RGB, whole frames)",
    "late": "late fusion (1:1 clip probabilities)",
    "concat": "concatenation",
    "interfusion": "InterFusion",
    "multitask": "InterFusion + MG head (multi-task)",
    "mg_feature": "InterFusion + MG head + MG distribution feature",
    "attention": "InterFusion + attention over clips (MIL)",
}
FUSION_ROWS = ("concat", "interfusion", "multitask", "mg_feature", "attention")
METRICS = ("accuracy", "f1", "auc", "balanced_accuracy", "within_subject_auc")


def base_sets(args: argparse.Namespace, seed: int) -> list[str]:
    s = args.size
    return [
        f"data.synthetic.root={args.out / 'data'}", f"data.synthetic.subjects={args.subjects}",
        f"data.synthetic.videos_per_subject={args.videos_per_subject}", f"data.synthetic.seed={args.data_seed}",
        "data.synthetic.video=true", f"data.synthetic.val_fraction={args.val_fraction}",
        "data.num_frames=16", f"data.rgb.num_frames={args.frames}", f"data.rgb.size={s}", "data.batch_size=16",
        "task.kind=emotion", "task.monitor=val_loss", f"trainer.seed={seed}", "trainer.progress_bar=false",
        "trainer.accelerator=cpu", "trainer.devices=1", "optim.optimizer=adamw", "optim.weight_decay=0.05",
        "optim.warmup_epochs=1",
    ]


FACE = "face: {{encoder: light_face, width: {w}, depth: 3, dropout: 0.3{extra}}}"
CONTEXT = "rgb: {{encoder: light, width: {w}, depth: 3, dropout: 0.3{extra}}}"


def stream_sets(args, seed: int, name: str) -> list[str]:
    stream = (FACE if name == "face" else CONTEXT).format(w=args.width, extra="")
    return base_sets(args, seed) + ["model.streams={" + stream + "}", f"optim.lr={args.lr}",
                                    f"trainer.max_epochs={args.epochs}", f"name=emotion_{name}"]


def fusion_sets(args, seed: int, checkpoints: dict[str, Path], cache: Path, kind: str) -> list[str]:
    face = FACE.format(w=args.width, extra=f", checkpoint: {checkpoints['face']}")
    context = CONTEXT.format(w=args.width, extra=f", checkpoint: {checkpoints['context']}")
    fusion = "concat" if kind == "concat" else "interfusion"
    sets = base_sets(args, seed) + [
        "model.streams={" + face + ", " + context + "}",
        f"model.fusion={{kind: {fusion}, width: {args.fusion_width}, depth: 2, heads: 4, queries: 4, "
        f"hidden: {args.fusion_width}, dropout: 0.1, modality_dropout: 0.2}}",
        f"data.cache={cache}", f"optim.lr={args.fusion_lr}", f"trainer.max_epochs={args.fusion_epochs}",
        f"name=emotion_{kind}",
    ]
    if kind in ("multitask", "mg_feature"):
        sets.append("task.kind=mg+emotion")
    if kind == "mg_feature":
        sets.append("task.mg_feature=true")
    if kind == "attention":
        sets += ["task.video_pool=attention", f"task.clips_per_video={args.clips_per_video}"]
    return sets


def train_and_test(sets: list[str], run_dir: Path) -> dict:
    cfg = load_config(None, sets)
    run = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
    return evaluate(cfg, run.last_checkpoint, run_dir / "eval")


def late_fusion(dirs: list[Path]) -> dict:
    """Average the streams' clip win probabilities (as log-probabilities, so the report's softmax
    gives them back), then per video."""
    tables = [read_scores(d / "eval" / "emotion_scores.csv") for d in dirs]
    ids = tables[0].sample_ids
    if any(t.sample_ids != ids for t in tables):
        raise ValueError("the streams scored different clips")
    probs = np.mean([np.exp(t.scores - t.scores.max(1, keepdims=True))
                     / np.exp(t.scores - t.scores.max(1, keepdims=True)).sum(1, keepdims=True) for t in tables], 0)
    fused = ScoreTable(ids, tables[0].labels, np.log(np.clip(probs, 1e-12, None)).astype(np.float32), None)
    videos = json.loads((dirs[0] / "eval" / "video_of.json").read_text())
    return emotion_metrics(fused, videos)


def save_video_of(run_dir: Path, cfg_sets: list[str]) -> None:
    """Which video each test clip belongs to (for late fusion of the score files), and each test
    video's subject (for the within-subject AUC)."""
    from microgesture.train.run import data_module

    dm = data_module(load_config(None, cfg_sets), progress=False)
    dm.prepare_data()
    clips = dm.clips(dm.cfg.test_split)
    (run_dir / "eval" / "video_of.json").write_text(json.dumps({c["frame_dir"]: int(c["video_id"]) for c in clips}))
    subjects = {int(c["video_id"]): int(c["subject_id"]) for c in clips}
    (run_dir / "eval" / "subject_of.json").write_text(json.dumps(subjects))


def within_subject_auc(prob_win: dict[int, float], labels: dict[int, int], subject_of: dict[int, int]) -> float | None:
    """Mean over the test subjects with won and lost videos of the AUC among that subject's videos:
    whether a model ranks a subject's won videos above the same subject's lost ones, whatever the
    subject's resting face or manner (a diagnostic; nothing is selected with it)."""
    aucs = []
    for subject in sorted(set(subject_of.values())):
        vids = [v for v, s in subject_of.items() if s == subject and v in prob_win]
        auc = roc_auc([prob_win[v] for v in vids], [labels[v] for v in vids])
        if auc is not None:
            aucs.append(auc)
    return float(np.mean(aucs)) if aucs else None


def read_videos(path: Path) -> tuple[dict[int, float], dict[int, int]]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
    return {int(r[0]): float(r[1]) for r in rows}, {int(r[0]): int(r[2]) for r in rows}


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, dict]:
    """Train and evaluate every row of one seed (finished runs are reused), then collect its results."""
    out = args.out / f"seed{seed}"
    checkpoints = {}
    for name in ("face", "context"):
        train_and_test(stream_sets(args, seed, name), out / name)
        checkpoints[name] = out / name / "checkpoints" / LAST
    save_video_of(out / "face", stream_sets(args, seed, "face"))
    cache = out / "cache"
    extract_for_experiment(load_config(None, fusion_sets(args, seed, checkpoints, cache, "interfusion")), cache,
                           progress=False)
    for kind in args.fusion_rows:
        train_and_test(fusion_sets(args, seed, checkpoints, cache, kind), out / kind)
    return collect_seed(out)


def collect_seed(out: Path) -> dict[str, dict]:
    """One seed's video-level emotion metrics per row, read back from its run folders."""
    results = {key: json.loads((out / key / "eval" / "metrics.json").read_text())["emotion"]
               for key in ROWS if key not in ("majority", "late") and (out / key / "eval" / "metrics.json").is_file()}
    results["late"], late_videos = late_fusion([out / "face", out / "context"])
    subjects_file = out / "face" / "eval" / "subject_of.json"
    if subjects_file.is_file():
        subject_of = {int(k): v for k, v in json.loads(subjects_file.read_text()).items()}
        for key in results:
            if key == "late":
                probs = dict(zip(late_videos["video_id"], late_videos["prob_win"]))
                labels = dict(zip(late_videos["video_id"], late_videos["label"]))
            else:
                probs, labels = read_videos(out / key / "eval" / "emotion_videos.csv")
            results[key]["within_subject_auc"] = within_subject_auc(probs, labels, subject_of)
    wins, total = results["face"]["num_positive"], results["face"]["num_samples"]
    # Always "win" (the majority in training): precision wins / total, recall 1.
    results["majority"] = {"accuracy": wins / total, "f1": 2 * wins / (wins + total), "auc": 0.5,
                           "balanced_accuracy": 0.5, "within_subject_auc": 0.5}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return {key: results[key] for key in ROWS if key in results}


def table(per_seed: list[dict[str, dict]]) -> str:
    lines = ["| model | " + " | ".join(METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
    for key, title in ROWS.items():
        if any(key not in r for r in per_seed):
            lines.append(f"| {title} | " + " | ".join(["not run"] * len(METRICS)) + " |")
            continue
        cells = []
        for m in METRICS:
            values = np.array([np.nan if r[key].get(m) is None else 100 * r[key][m] for r in per_seed])
            cells.append(f"{np.nanmean(values):.1f} ± {np.nanstd(values):.1f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/emotion_ablation"))
    parser.add_argument("--subjects", type=int, default=15)
    parser.add_argument("--videos-per-subject", type=int, default=4)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip for both video streams")
    parser.add_argument("--size", type=int, default=64, help="face crop and context frame size")
    parser.add_argument("--width", type=int, default=8, help="light encoders' width")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--fusion-width", type=int, default=64)
    parser.add_argument("--fusion-epochs", type=int, default=20)
    parser.add_argument("--fusion-lr", type=float, default=0.001)
    parser.add_argument("--clips-per-video", type=int, default=6)
    parser.add_argument("--fusion-rows", nargs="+", choices=FUSION_ROWS, default=list(FUSION_ROWS),
                        help="the rows trained on the cached tokens, in this order (the others are reported as not run)")
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch: checks the script runs")
    parser.add_argument("--report", action="store_true",
                        help="only collect the finished seeds' results (e.g. after running seeds in parallel)")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.videos_per_subject, args.val_fraction = 3, 2, 0.5
        args.epochs = args.fusion_epochs = 1
        args.seeds = args.seeds[:1]
    start = time.perf_counter()
    if args.report:  # runs made before the subject map was saved
        for seed in args.seeds:
            if not (args.out / f"seed{seed}" / "face" / "eval" / "subject_of.json").is_file():
                save_video_of(args.out / f"seed{seed}" / "face", stream_sets(args, seed, "face"))
    per_seed = [collect_seed(args.out / f"seed{seed}") if args.report else run_seed(seed, args) for seed in args.seeds]
    took = "" if args.report else f"; {(time.perf_counter() - start) / 60:.1f} min"
    text = (f"Synthetic benchmark, video-level emotion on held-out test subjects, seeds {args.seeds} "
            f"(mean ± std over seeds, %).\nData: {args.subjects} subjects x {args.videos_per_subject} videos "
            f"(data seed {args.data_seed}); clips of {args.frames} frames at {args.size}x{args.size}.\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores{took}.\n\n"
            f"{table(per_seed)}\n")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "emotion_ablation" if len(args.seeds) > 1 or args.report else f"emotion_ablation_seed{args.seeds[0]}"
    (args.out / f"{name}.md").write_text(text)
    (args.out / f"{name}.json").write_text(json.dumps({"seeds": args.seeds, "args": {
        k: str(v) for k, v in vars(args).items()}, "results": per_seed}, indent=2, default=str))


if __name__ == "__main__":
    main()
