"""RGB-only vs skeleton-only vs late fusion vs concatenation vs CMTF on the synthetic benchmark.

For each training seed: train the light RGB stream and the 2s-AGCN joint stream, evaluate both
on the held-out test subjects, fuse their scores (late fusion, 1:1), extract both encoders'
tokens once, train CMTF and concatenation on the cached tokens, and evaluate. Model selection
uses the validation subjects only. Prints and writes a mean +- std table.

    python benchmarks/fusion_ablation.py --seeds 0 1 2 --out runs/ablation
    python benchmarks/fusion_ablation.py --quick        # a smoke run in about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from microgesture.eval.report import fusion_metrics
from microgesture.train.config import load_config
from microgesture.train.extract import extract_for_experiment
from microgesture.train.run import LAST, evaluate, fit

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synthetic"
ROWS = ("RGB only (light)", "skeleton only (2s-AGCN joint)", "late fusion (1:1 scores)", "concatenation", "CMTF")
METRICS = ("top1", "macro_f1", "mean_class_accuracy")


def run_seed(seed: int, out: Path, common: list[str]) -> dict[str, dict]:
    sets = common + [f"trainer.seed={seed}"]
    results, runs = {}, {}
    for name, config in (("rgb", "light_rgb.yaml"), ("joint", "agcn_joint.yaml")):
        cfg = load_config(CONFIGS / config, sets)
        run_dir = out / f"seed{seed}" / name
        runs[name] = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
        results[name] = evaluate(cfg, runs[name].best_checkpoint, run_dir / "eval")
    score_files = [out / f"seed{seed}" / n / "eval" / "scores.csv" for n in ("rgb", "joint")]
    results["late"] = fusion_metrics(score_files, weights=[1.0, 1.0])
    fusion_sets = sets + [f"model.rgb.checkpoint={runs['rgb'].best_checkpoint}",
                          f"model.skeleton.checkpoint={runs['joint'].best_checkpoint}"]
    cache = out / f"seed{seed}" / "cache"
    extract_for_experiment(load_config(CONFIGS / "cmtf.yaml", fusion_sets + [f"data.cache={cache}"]), cache,
                           progress=False)
    for name in ("concat", "cmtf"):
        cfg = load_config(CONFIGS / f"{name}.yaml", fusion_sets + [f"data.cache={cache}"])
        run_dir = out / f"seed{seed}" / name
        run = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
        results[name] = evaluate(cfg, run.best_checkpoint, run_dir / "eval")
    return {row: results[key] for row, key in zip(ROWS, ("rgb", "joint", "late", "concat", "cmtf"))}


def table(per_seed: list[dict[str, dict]]) -> str:
    lines = ["| model | " + " | ".join(METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
    for row in ROWS:
        cells = []
        for m in METRICS:
            values = 100 * np.array([r[row][m] for r in per_seed])
            cells.append(f"{values.mean():.1f} ± {values.std():.1f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch: checks the script runs")
    args = parser.parse_args()
    common = ["trainer.progress_bar=false", f"data.synthetic.root={args.out / 'data'}"]
    if args.quick:
        common += ["data.synthetic.subjects=3", "data.synthetic.videos_per_subject=1", "data.synthetic.val_fraction=0.5",
                   "trainer.max_epochs=1", "model.skeleton.base_channels=8", "model.rgb.width=8"]
        args.seeds = args.seeds[:1]
    start = time.perf_counter()
    per_seed = [run_seed(seed, args.out, common) for seed in args.seeds]
    text = (f"Synthetic benchmark, held-out test subjects, seeds {args.seeds} (mean ± std over seeds, %).\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"{(time.perf_counter() - start) / 60:.1f} min.\n\n{table(per_seed)}\n")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.md").write_text(text)
    (args.out / "ablation.json").write_text(json.dumps({"seeds": args.seeds, "results": per_seed}, indent=2, default=str))


if __name__ == "__main__":
    main()
