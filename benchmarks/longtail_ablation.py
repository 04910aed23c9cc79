"""The long-tail recipe of arXiv 2606.13030 on the synthetic benchmark, one ingredient added at a time.

Rows (each adds one ingredient to the row above; joint + bone 2s-AGCN streams throughout):
  1. the demo's joint+bone fusion (1:1 raw scores, no long-tail ingredient)
  2. + square-root smoothed class weights (both streams retrained)
  3. + OSE loss (both streams retrained): configs/synthetic/longtail_{joint,bone}.yaml
  4. + calibrated soft voting (per-stream temperatures and weights fit on the validation subjects)
  5. + CMPL (pseudo-labels on the unlabelled test subjects, streams fine-tuned), calibrated voting
With --heatmap also the heatmap stream (configs/synthetic/longtail_heatmap.yaml, bf16): alone, and
with the OSE joint and bone streams by summed logits and by calibrated voting (no CMPL).
For each training seed: top-1 and macro F1 on the held-out test subjects, and on the tail classes
(eval/longtail.py), plus CMPL's pseudo-label precision and coverage per round, computed afterwards
from the true labels by a separate step (eval/pseudo.py). Model selection and calibration use the
validation subjects only. Finished runs are reused, so an interrupted benchmark continues.

    nice -n 10 python benchmarks/longtail_ablation.py --seeds 0 1 2 --out runs/longtail_ablation
    python benchmarks/longtail_ablation.py --quick    # tiny data, one epoch: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from microgesture.errors import DataError
from microgesture.eval.longtail import long_tail_metrics
from microgesture.eval.metrics import classification_metrics
from microgesture.eval.scores import ScoreTable, read_scores
from microgesture.train.config import load_config
from microgesture.train.run import LAST, data_module, evaluate, fit, training_counts

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synthetic"
STREAMS = ("joint", "bone")
VARIANTS = {  # run name -> overrides of configs/synthetic/longtail_<stream>.yaml, in training order
    "base": ["optim.class_weighting=none", "optim.ose=null"],
    "ose": [],
    "sqrt": ["optim.ose=null"],
}
CMPL_SETS: list[str] = []  # --cmpl overrides of configs/synthetic/longtail_cmpl.yaml
ROWS = ("demo: joint+bone 1:1", "+ sqrt class weights", "+ OSE loss", "+ calibrated voting", "+ CMPL")
HEATMAP_ROWS = ("heatmap stream alone", "OSE joint+bone+heatmap, summed logits", "OSE joint+bone+heatmap, calibrated voting")
METRICS = ("top1", "macro_f1", "tail_top1", "tail_macro_f1")


def trained(cfg, run_dir: Path):
    """Train, or reuse a finished run (resuming an interrupted one); waits while another process
    of this benchmark (`--variants`) trains the same run."""
    best = run_dir / "checkpoints" / "best.ckpt"
    while True:
        if (run_dir / "run_info.json").is_file() and best.is_file():
            return best
        try:
            return fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file()).best_checkpoint
        except DataError as exc:
            if "in use by a run still going" not in str(exc):
                raise
            time.sleep(30)


def scores_of(cfg, checkpoint: Path, out: Path, split: str) -> Path:
    path = out / "scores.csv"
    if not path.is_file():
        evaluate(cfg, checkpoint, out, split=split)
    return path


def train_streams(seed: int, out: Path, common: list[str], variants=tuple(VARIANTS),
                  streams=STREAMS) -> dict[str, dict[str, dict]]:
    """{variant: {stream: {"config", "checkpoint", "val", "test"}}}."""
    runs: dict[str, dict[str, dict]] = {}
    for variant in variants:
        sets = VARIANTS[variant]
        for stream in streams:
            cfg = load_config(CONFIGS / f"longtail_{stream}.yaml", common + sets + [f"trainer.seed={seed}"])
            run_dir = out / f"seed{seed}" / f"{variant}_{stream}"
            best = trained(cfg, run_dir)
            runs.setdefault(variant, {})[stream] = {
                "config": cfg, "checkpoint": best,
                "val": scores_of(cfg, best, run_dir / "eval_val", cfg.data.val_split),
                "test": scores_of(cfg, best, run_dir / "eval", cfg.data.test_split)}
    return runs


def headline(table: ScoreTable, counts: np.ndarray) -> dict[str, float]:
    m = classification_metrics(table.scores, table.labels)
    tail = long_tail_metrics(table.scores, table.labels, counts)["groups"]["tail"]
    return {"top1": m["top1"], "macro_f1": m["macro_f1"], "tail_top1": tail["top1"], "tail_macro_f1": tail["macro_f1"]}


def run_seed(seed: int, out: Path, common: list[str], stage: str, variants=tuple(VARIANTS),
             streams=STREAMS, heatmap: bool = False) -> dict | None:
    from microgesture.eval.fuse import fuse

    if stage == "cmpl":  # CMPL from the OSE runs alone, e.g. while another process trains the others
        adapt_streams(seed, out, common, train_streams(seed, out, common, ("ose",))["ose"])
        return None
    if stage == "train":
        train_streams(seed, out, common, variants, streams)
        return None
    runs = train_streams(seed, out, common)
    counts = training_counts(data_module(runs["base"]["joint"]["config"]))
    results = {}
    for row, variant in zip(ROWS[:3], ("base", "sqrt", "ose")):
        fused = fuse([read_scores(runs[variant][s]["test"]) for s in STREAMS], weights=[1.0, 1.0])
        results[row] = headline(fused, counts)
    results[ROWS[3]] = headline(calibrated(runs["ose"], out / f"seed{seed}" / "voting"), counts)
    adapted, quality = adapt_streams(seed, out, common, runs["ose"])
    results[ROWS[4]] = headline(calibrated(adapted, out / f"seed{seed}" / "voting_cmpl"), counts)
    if heatmap:
        results.update(heatmap_rows(seed, out, common, runs["ose"], counts))
    return {"rows": results, "pseudo_labels": quality}


def heatmap_rows(seed: int, out: Path, common: list[str], ose: dict[str, dict], counts: np.ndarray) -> dict:
    """The heatmap stream (trained in bf16, as docs/heatmaps.md measures it) alone and as a third voter."""
    from microgesture.eval.fuse import fuse
    from microgesture.eval.voting import calibrated_voting

    cfg = load_config(CONFIGS / "longtail_heatmap.yaml", common + [f"trainer.seed={seed}", "trainer.precision=bf16-mixed"])
    run_dir = out / f"seed{seed}" / "ose_heatmap"
    best = trained(cfg, run_dir)
    val = [ose[s]["val"] for s in STREAMS] + [scores_of(cfg, best, run_dir / "eval_val", cfg.data.val_split)]
    test = [ose[s]["test"] for s in STREAMS] + [scores_of(cfg, best, run_dir / "eval", cfg.data.test_split)]
    voted = calibrated_voting([str(p) for p in val], [str(p) for p in test], out=out / f"seed{seed}" / "voting_heatmap")
    return {HEATMAP_ROWS[0]: headline(read_scores(test[-1]), counts),
            HEATMAP_ROWS[1]: headline(fuse([read_scores(p) for p in test], weights=[1.0] * len(test)), counts),
            HEATMAP_ROWS[2]: headline(voted.fused, counts)}


def calibrated(streams: dict[str, dict], out: Path) -> ScoreTable:
    from microgesture.eval.voting import calibrated_voting

    result = calibrated_voting([streams[s]["val"] for s in STREAMS], [streams[s]["test"] for s in STREAMS], out=out)
    return result.fused


def adapt_streams(seed: int, out: Path, common: list[str], ose: dict[str, dict]):
    """CMPL from the OSE streams; then the adapted streams' val/test scores and the pseudo-label quality."""
    from microgesture.eval.pseudo import pseudo_label_quality
    from microgesture.train.adapt import adapt

    sets = common + [f"trainer.seed={seed}"] + [f"model.streams.{s}.checkpoint={ose[s]['checkpoint']}" for s in STREAMS]
    cfg = load_config(CONFIGS / "longtail_cmpl.yaml", sets + CMPL_SETS)
    folder = out / f"seed{seed}" / "cmpl"
    result = adapt(cfg, folder, target=cfg.data.test_split)
    adapted = {}
    for stream in STREAMS:
        scfg = ose[stream]["config"]
        ckpt = result.checkpoints[stream]
        adapted[stream] = {"val": scores_of(scfg, ckpt, folder / f"eval_val_{stream}", scfg.data.val_split),
                           "test": scores_of(scfg, ckpt, folder / f"eval_{stream}", scfg.data.test_split)}
    dm = data_module(cfg)
    quality = pseudo_label_quality(folder, dm.load(), cfg.data.test_split)  # afterwards, from the true labels
    return adapted, quality


def table(per_seed: list[dict]) -> str:
    lines = ["| recipe | test top-1 | test macro F1 | tail top-1 | tail macro F1 |", "| --- |" + " --- |" * 4]
    for row in per_seed[0]["rows"]:
        cells = []
        for m in METRICS:
            values = 100 * np.array([r["rows"][row][m] for r in per_seed])
            cells.append(f"{values.mean():.1f} ± {values.std():.1f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quality_table(per_seed: list[dict]) -> str:
    lines = ["| round | pseudo-labels | precision | coverage | tail precision |", "| --- | --- | --- | --- | --- |"]
    rounds = sorted({int(r) for s in per_seed for r in s["pseudo_labels"]})
    for r in rounds:
        q = [s["pseudo_labels"][str(r)] for s in per_seed if str(r) in s["pseudo_labels"]]
        def cell(key: str) -> str:
            values = [x[key] for x in q if x[key] is not None]
            return f"{100 * np.mean(values):.1f}" if values else "-"

        lines.append(f"| {r} | {np.mean([x['num_pseudo'] for x in q]):.0f} | {cell('precision')} | "
                     f"{cell('coverage')} | {cell('tail_precision')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/longtail_ablation"))
    parser.add_argument("--stage", choices=["train", "cmpl", "all"], default="all",
                        help="train: the stream runs only; cmpl: the OSE runs and CMPL only; all: everything and the table")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="with --stage train: which runs this process trains (run several processes in parallel)")
    parser.add_argument("--streams", nargs="+", choices=list(STREAMS), default=list(STREAMS),
                        help="with --stage train: which streams this process trains")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs of every stream run (default: the configs' 16, the demo's)")
    parser.add_argument("--cmpl", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of the CMPL settings, e.g. adapt.rounds=2 adapt.epochs=1")
    parser.add_argument("--heatmap", action="store_true",
                        help="also the heatmap stream, alone and as a third voter (3D CNN: slower)")
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch: checks the script runs")
    args = parser.parse_args()
    common = ["trainer.progress_bar=false", f"data.synthetic.root={args.out / 'data'}"]
    if args.epochs is not None:
        common.append(f"trainer.max_epochs={args.epochs}")
    global CMPL_SETS
    CMPL_SETS = list(args.cmpl)
    if args.quick:
        common += ["data.synthetic.subjects=6", "data.synthetic.videos_per_subject=1", "data.synthetic.video=false",
                   "data.synthetic.val_fraction=0.25", "trainer.max_epochs=1", "data.num_frames=16"]
        args.seeds = args.seeds[:1]
    start = time.perf_counter()
    per_seed = [run_seed(seed, args.out, common, args.stage, tuple(args.variants), tuple(args.streams), args.heatmap)
                for seed in args.seeds]
    if args.stage != "all":
        return
    text = (f"Synthetic benchmark, held-out test subjects, training seeds {args.seeds} (mean ± std over seeds, %).\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"{(time.perf_counter() - start) / 60:.1f} min.\n\n{table(per_seed)}\n\n"
            f"CMPL pseudo-labels on the test subjects (measured afterwards against the true labels):\n\n"
            f"{quality_table(per_seed)}\n")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.md").write_text(text)
    (args.out / "ablation.json").write_text(json.dumps({"seeds": args.seeds, "results": per_seed}, indent=2))


if __name__ == "__main__":
    main()
