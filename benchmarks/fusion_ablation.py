"""Single streams vs fusions on held-out subjects of the synthetic benchmark (docs/fusion.md).

For each training seed: train four streams (RGB full frame and skeleton-guided RGB crops with the
light (2+1)D encoder, 2s-AGCN joint and bone), evaluate each on the test subjects, fuse score
files (late fusion, equal weights), extract the frozen encoders' tokens once per set of streams,
train concatenation and CMTF on the cached tokens and evaluate them. Model selection uses the
validation subjects only; the test subjects are never seen before the final evaluation.
Prints and writes (ablation.md, ablation.json under --out) a mean +- std table over the seeds.
Runs resume: a finished run folder is reused, an interrupted one continues, a finished seed's
results are read back (so seeds can run as separate processes, e.g. one per core, once the
dataset exists: run --seeds 0 first, or generate it with --data-only).

    nice -n 10 python benchmarks/fusion_ablation.py --seeds 0 1 2 --out runs/ablation
    python benchmarks/fusion_ablation.py --quick     # tiny data, one epoch: checks the script runs
    python benchmarks/fusion_ablation.py --set model.fusion.modality_dropout=0.5   # --set: every config

Rows can run as parallel processes, e.g. `--seeds 1 --rows rgb` beside `--seeds 1 --rows cmtf3` (each
trains the streams its rows read, reusing finished ones); a final run without --rows gathers them.
`--rgb-epochs N` shortens both RGB streams (the table's header records it); `--annotations FILE`
reads an existing annotation file instead of generating the dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from microgesture.domain.classes import IMIGUE_CLASSES
from microgesture.eval.report import fusion_metrics
from microgesture.train.config import load_config
from microgesture.train.extract import extract_for_experiment
from microgesture.train.run import LAST, evaluate, fit
from microgesture.utils.io import write_text

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synthetic"
# The whole frame is trained with the crops' own recipe (configs/synthetic/rgb_crops.yaml: encoder,
# frames, size, optimiser, epochs, appearance augmentation), less the torso recolouring (crops only).
FULL_FRAME = ["name=synth_rgb_full", "model.streams={rgb: {encoder: light, width: 16, depth: 3, dropout: 0.3}}",
              "data.rgb.appearance.erase_clothing=0.0"]
STREAMS = {  # run name -> (config, extra overrides)
    "joint": ("agcn_joint.yaml", []),
    "bone": ("agcn_bone.yaml", []),
    "rgb_crops": ("rgb_crops.yaml", []),
    "rgb": ("rgb_crops.yaml", FULL_FRAME),
}
RGB_STREAMS = ("rgb_crops", "rgb")
LATE = {"late_skeleton": ("joint", "bone"), "late_all": ("joint", "bone", "rgb_crops")}
FUSIONS = {  # run name -> (config, cache it reads)
    "concat": ("concat_crops.yaml", "cache_joint_crops"),
    "cmtf": ("cmtf_crops.yaml", "cache_joint_crops"),
    "cmtf3": ("cmtf_crops_bone.yaml", "cache_joint_bone_crops"),
    "cmtf_skeleton": ("cmtf_skeleton.yaml", "cache_joint_bone"),
}
ROWS = {
    "rgb": "RGB full frame (light w16, 8x96x96)",
    "rgb_crops": "RGB crops (light w16, 8x2x2x48)",
    "joint": "2s-AGCN joint",
    "bone": "2s-AGCN bone",
    "late_skeleton": "late fusion joint+bone (1:1)",
    "late_all": "late fusion joint+bone+crops (1:1:1)",
    "concat": "concatenation joint+crops (cached)",
    "cmtf": "CMTF joint+crops (cached)",
    "cmtf3": "CMTF joint+bone+crops (cached)",
    "cmtf_skeleton": "CMTF joint+bone, no RGB (cached; control)",
}
METRICS = ("top1", "macro_f1", "mean_class_accuracy")
# Classes whose synthetic cue is drawn but carried by no joint (mouth, cheeks, eyes, a held object,
# an extended finger): where RGB has a job (docs/fusion.md).
APPEARANCE_CLASSES = ("pressing lips", "bulging face / deep breath", "rubbing eyes", "covering face",
                      "playing or manipulating objects", "touching or scratching facial parts", "biting nails")
PER_CLASS_ROWS = ("joint", "bone", "rgb_crops", "late_skeleton", "cmtf_skeleton", "cmtf3")


def _train_eval(config: str, sets: list[str], run_dir: Path) -> tuple[dict, Path]:
    """Train (or resume, or reuse) one run and score the test subjects once; the scores of a finished
    run are read back (`eval/row.json`) as long as its best checkpoint has not changed since."""
    cfg = load_config(CONFIGS / config, sets)
    row = run_dir / "eval" / "row.json"
    if row.is_file():
        saved = json.loads(row.read_text())
        best = Path(saved["checkpoint"])
        if best.is_file() and best.stat().st_mtime <= row.stat().st_mtime and saved["sets"] == sets:
            return saved["metrics"], best
    best = _finished(run_dir, cfg.trainer.max_epochs)
    if best is None:
        best = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file()).best_checkpoint
    metrics = evaluate(cfg, best, run_dir / "eval")
    write_text(row, json.dumps({"checkpoint": str(best), "sets": sets, "metrics": metrics}, indent=2, default=str))
    return metrics, best


def _finished(run_dir: Path, epochs: int) -> Path | None:
    """The best checkpoint of a run that trained all its epochs (`run_info.json`), else None. Such a
    run is scored as it is, not resumed: resuming checks the optimiser settings, which gain new
    defaulted fields as the package grows."""
    info = run_dir / "run_info.json"
    if not info.is_file():
        return None
    data = json.loads(info.read_text())
    best = Path(data.get("best_checkpoint", ""))
    return best if data.get("epochs") == epochs and best.is_file() else None


def run_seed(seed: int, out: Path, common: list[str], rows: list[str] | None = None,
             rgb_sets: tuple[str, ...] = ()) -> dict[str, dict]:
    """Every row for one training seed (or only `rows` and the streams they need); a finished seed's
    `results.json` is read instead of rerun."""
    base = out / f"seed{seed}"
    done = base / "results.json"
    if done.is_file() and rows is None:
        return json.loads(done.read_text())
    results = _run_seed(seed, base, common, rows, rgb_sets)
    if rows is None:
        write_text(done, json.dumps(results, indent=2, default=str))
    return results


def _needed(rows: list[str] | None) -> set[str]:
    """The rows to run: `rows` plus the streams their fusions read (every row when None)."""
    if rows is None:
        return set(ROWS)
    needed = set(rows)
    needed.update(*(LATE[r] for r in rows if r in LATE))
    for r in rows:
        if r in FUSIONS:
            needed.update(load_config(CONFIGS / FUSIONS[r][0]).model.streams)
    return needed


def _run_seed(seed: int, base: Path, common: list[str], rows: list[str] | None = None,
              rgb_sets: tuple[str, ...] = ()) -> dict[str, dict]:
    sets = common + [f"trainer.seed={seed}"]
    results, best = {}, {}
    needed = _needed(rows)
    for name, (config, extra) in STREAMS.items():
        if name in needed:
            extra = extra + list(rgb_sets) if name in RGB_STREAMS else extra
            results[name], best[name] = _train_eval(config, sets + extra, base / name)
    for name, streams in LATE.items():
        if name not in needed:
            continue
        files = [base / s / "eval" / "scores.csv" for s in streams]
        results[name] = fusion_metrics(files, weights=[1.0] * len(streams), class_names=list(IMIGUE_CLASSES))
    encoders = [f"model.streams.{s}.checkpoint={best[s]}" for s in ("joint", "bone", "rgb_crops") if s in best]
    for name, (config, cache) in FUSIONS.items():
        if name not in needed:
            continue
        cfg_sets = sets + [f"data.cache={base / cache}"]
        cfg_sets += [e for e in encoders if e.split(".")[2] in load_config(CONFIGS / config).model.streams]
        extract_for_experiment(load_config(CONFIGS / config, cfg_sets), base / cache, progress=False)
        results[name], _ = _train_eval(config, cfg_sets, base / name)
    return results


def table(per_seed: list[dict[str, dict]]) -> str:
    lines = ["| model | " + " | ".join(METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
    for key, title in ROWS.items():
        if not all(key in r for r in per_seed):  # a row left out with --rows
            continue
        cells = []
        for m in METRICS:
            values = 100 * np.array([r[key][m] for r in per_seed])
            cells.append(f"{values.mean():.1f} ± {values.std():.1f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(per_seed: list[dict[str, dict]]) -> str:
    """Test accuracy (recall) of the appearance classes, mean over seeds, with their test clip count."""
    keys = [k for k in PER_CLASS_ROWS if all(k in r for r in per_seed)]
    lines = ["| class (test clips) | " + " | ".join(ROWS[k] for k in keys) + " |", "| --- |" + " --- |" * len(keys)]
    for name in APPEARANCE_CLASSES:
        count = per_seed[0][keys[0]].get("per_class_count", {}).get(name)
        if count is None:
            continue
        cells = [f"{100 * np.mean([r[k]['per_class_accuracy'][name] for r in per_seed]):.0f}" for k in keys]
        lines.append(f"| {name} ({count}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every config (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch: checks the script runs")
    parser.add_argument("--data-only", action="store_true", help="generate the dataset and stop")
    parser.add_argument("--rgb-epochs", type=int, default=None,
                        help="train the two RGB streams for this many epochs instead of their config's (CPU budget)")
    parser.add_argument("--annotations", type=Path, default=None,
                        help="an existing annotation file instead of generating the synthetic dataset")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=None,
                        help="run only these rows (and the streams they read) for --seeds, e.g. in parallel "
                             "processes; a later run without --rows reuses them and writes the table")
    args = parser.parse_args()
    common = ["trainer.progress_bar=false", f"data.synthetic.root={args.out / 'data'}", *args.sets]
    if args.annotations is not None:
        common += ["data.synthetic=null", f"data.annotations={args.annotations.resolve()}"]
    rgb_sets = () if args.rgb_epochs is None else (f"trainer.max_epochs={args.rgb_epochs}",)
    if args.quick:
        common += ["data.synthetic.subjects=3", "data.synthetic.videos_per_subject=1",
                   "data.synthetic.val_fraction=0.5", "trainer.max_epochs=1", "data.rgb.num_frames=4"]
        args.seeds = args.seeds[:1]
    if args.data_only:
        from microgesture.train.datamodule import synthetic_annotations

        print(synthetic_annotations(load_config(CONFIGS / "rgb_crops.yaml", common).data.synthetic, progress=True))
        return
    start = time.perf_counter()
    per_seed = [run_seed(seed, args.out, common, args.rows, rgb_sets) for seed in args.seeds]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"Synthetic benchmark, held-out test subjects, seeds {args.seeds} (mean ± std over seeds, %).\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average at the "
            f"end {load}; {(time.perf_counter() - start) / 60:.1f} min. Rows: {args.rows or 'all'}. "
            f"Overrides: {args.sets or 'none'}; "
            f"RGB streams: {args.rgb_epochs or 'config'} epochs; data: {args.annotations or 'generated'}.\n\n"
            f"{table(per_seed)}\n\nTest accuracy (%) of the classes whose cue no joint carries:\n\n"
            f"{per_class_table(per_seed)}\n")
    print(text)
    if args.rows is not None:  # a part of the table: not the files a full run writes
        write_text(args.out / "ablation_rows.md", text)
        return
    write_text(args.out / "ablation.md", text)
    write_text(args.out / "ablation.json", json.dumps({"seeds": args.seeds, "sets": args.sets, "results": per_seed},
                                                       indent=2, default=str))


if __name__ == "__main__":
    main()
