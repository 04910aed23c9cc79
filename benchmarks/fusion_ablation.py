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
    cfg = load_config(CONFIGS / config, sets)
    run = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
    return evaluate(cfg, run.best_checkpoint, run_dir / "eval"), run.best_checkpoint


def run_seed(seed: int, out: Path, common: list[str]) -> dict[str, dict]:
    """Every row for one training seed; a finished seed's `results.json` is read instead of rerun."""
    base = out / f"seed{seed}"
    done = base / "results.json"
    if done.is_file():
        return json.loads(done.read_text())
    results = _run_seed(seed, base, common)
    write_text(done, json.dumps(results, indent=2, default=str))
    return results


def _run_seed(seed: int, base: Path, common: list[str]) -> dict[str, dict]:
    sets = common + [f"trainer.seed={seed}"]
    results, best = {}, {}
    for name, (config, extra) in STREAMS.items():
        results[name], best[name] = _train_eval(config, sets + extra, base / name)
    for name, streams in LATE.items():
        files = [base / s / "eval" / "scores.csv" for s in streams]
        results[name] = fusion_metrics(files, weights=[1.0] * len(streams), class_names=list(IMIGUE_CLASSES))
    encoders = [f"model.streams.{s}.checkpoint={best[s]}" for s in ("joint", "bone", "rgb_crops")]
    for name, (config, cache) in FUSIONS.items():
        cfg_sets = sets + [f"data.cache={base / cache}"]
        cfg_sets += [e for e in encoders if e.split(".")[2] in load_config(CONFIGS / config).model.streams]
        extract_for_experiment(load_config(CONFIGS / config, cfg_sets), base / cache, progress=False)
        results[name], _ = _train_eval(config, cfg_sets, base / name)
    return results


def table(per_seed: list[dict[str, dict]]) -> str:
    lines = ["| model | " + " | ".join(METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
    for key, title in ROWS.items():
        cells = []
        for m in METRICS:
            values = 100 * np.array([r[key][m] for r in per_seed])
            cells.append(f"{values.mean():.1f} ± {values.std():.1f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(per_seed: list[dict[str, dict]]) -> str:
    """Test accuracy (recall) of the appearance classes, mean over seeds, with their test clip count."""
    keys = [k for k in PER_CLASS_ROWS if k in per_seed[0]]
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
    args = parser.parse_args()
    common = ["trainer.progress_bar=false", f"data.synthetic.root={args.out / 'data'}", *args.sets]
    if args.quick:
        common += ["data.synthetic.subjects=3", "data.synthetic.videos_per_subject=1",
                   "data.synthetic.val_fraction=0.5", "trainer.max_epochs=1", "data.rgb.num_frames=4"]
        args.seeds = args.seeds[:1]
    if args.data_only:
        from microgesture.train.datamodule import synthetic_annotations

        print(synthetic_annotations(load_config(CONFIGS / "rgb_crops.yaml", common).data.synthetic, progress=True))
        return
    start = time.perf_counter()
    per_seed = [run_seed(seed, args.out, common) for seed in args.seeds]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"Synthetic benchmark, held-out test subjects, seeds {args.seeds} (mean ± std over seeds, %).\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average at the "
            f"end {load}; {(time.perf_counter() - start) / 60:.1f} min. Overrides: {args.sets or 'none'}.\n\n"
            f"{table(per_seed)}\n\nTest accuracy (%) of the classes whose cue no joint carries:\n\n"
            f"{per_class_table(per_seed)}\n")
    print(text)
    write_text(args.out / "ablation.md", text)
    write_text(args.out / "ablation.json", json.dumps({"seeds": args.seeds, "sets": args.sets, "results": per_seed},
                                                       indent=2, default=str))


if __name__ == "__main__":
    main()
