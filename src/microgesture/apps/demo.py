"""`microgesture demo`: the toolkit end to end on the embedded synthetic dataset, in minutes on a CPU.

Stages, all into one folder `out` (re-running with the same `out` reuses what is finished):

1. the default synthetic dataset (subject-disjoint split), generated once;
2. the joint and the bone 2s-AGCN streams, trained side by side in two worker processes of one
   thread each when the machine has two or more CPU cores and no GPU (on one core, or on a GPU,
   one after the other), evaluated on the held-out test subjects and fused 1:1; top-1, macro-F1
   and the head / medium / tail split (eval/longtail.py);
3. the small face + context emotion model (apps/emotion_demo.py), video-level accuracy and AUC;
4. the skeleton-guided RGB crops and CMTF (apps/crops_demo.py) only when asked (`rgb=True`,
   `--rgb`): they do not fit the 5-minute budget, and on the synthetic benchmark RGB adds nothing
   to CMTF of the skeleton streams (docs/fusion.md); the demo says so in one line otherwise;
5. one held-out synthetic untrimmed video analysed (apps/analyze.py), its HTML report's path printed.

`out/results.md` and `out/results.json` hold the printed results with each stage's wall-clock and
CPU seconds (the CPU seconds include the worker processes).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from microgesture.apps.demo_config import DEMO_EPOCHS, DEMO_PRECISION, demo_config
from microgesture.data.formats.annotations import load_annotations
from microgesture.data.formats.summary import format_summary
from microgesture.eval.metrics import confusion_matrix
from microgesture.eval.plots import plot_confusion_matrix
from microgesture.eval.report import format_metrics, fusion_metrics
from microgesture.eval.scores import read_scores
from microgesture.train.datamodule import synthetic_annotations
from microgesture.train.logs import EpochLine
from microgesture.train.precision import machine_description, resolve_precision
from microgesture.train.run import LAST, evaluate, fit
from microgesture.utils.io import write_text

STREAMS = ("joint", "bone")
FUSED = "2s-AGCN joint+bone (1:1)"
RGB_SKIPPED = ("RGB crops + CMTF: not run. It would push the demo past 5 minutes on 2 CPU cores, and on the "
               "synthetic benchmark RGB adds nothing: CMTF of joint and bone without RGB does as well as with the "
               "crops (docs/fusion.md); `microgesture demo --rgb` runs it here.")


def train_stream(stream: str, out: Path, epochs: int, seed: int, synthetic: dict, lines: bool = False,
                 precision: str = DEMO_PRECISION) -> dict:
    """Train (or finish, or reuse) one stream in `out/stream` and evaluate it on the test subjects.

    `lines`: one line per epoch even at a terminal (two workers' progress bars would garble it)."""
    cfg = demo_config(stream, out / "data", epochs, seed, precision, **synthetic)
    run_dir = out / stream
    print(f"== training the {stream} stream ({epochs} epochs) -> {run_dir}", flush=True)
    quiet = {"callbacks": [EpochLine(f"{cfg.name}: ")], "enable_progress_bar": False} \
        if lines and sys.stderr.isatty() else {}
    trained = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file(), **quiet)
    return evaluate(cfg, trained.best_checkpoint, run_dir / "eval")


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # two workers on two cores: more threads would only fight over them


def side_by_side() -> bool:
    """Train the streams in parallel processes: with two or more cores and no GPU to share."""
    import torch

    return (os.cpu_count() or 1) >= 2 and not torch.cuda.is_available()


def train_streams(out: Path, epochs: int, seed: int, synthetic: dict, parallel: bool,
                  precision: str = DEMO_PRECISION) -> dict[str, dict]:
    """{stream: test metrics} for the joint and bone streams."""
    if not parallel:
        return {s: train_stream(s, out, epochs, seed, synthetic, precision=precision) for s in STREAMS}
    with ProcessPoolExecutor(len(STREAMS), mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        jobs = {s: pool.submit(train_stream, s, out, epochs, seed, synthetic, True, precision) for s in STREAMS}
        return {s: job.result() for s, job in jobs.items()}


class Stopwatch:
    """Wall-clock and CPU seconds per stage; CPU counts this process and its finished children."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self._since = self._now()

    @staticmethod
    def _now() -> tuple[float, float]:
        cpu = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            cpu += usage.ru_utime + usage.ru_stime
        return time.perf_counter(), cpu

    def lap(self, stage: str) -> None:
        now = self._now()
        self.stages[stage] = {"wall_s": round(now[0] - self._since[0], 1), "cpu_s": round(now[1] - self._since[1], 1)}
        self._since = now

    def describe(self) -> str:
        total_wall = sum(s["wall_s"] for s in self.stages.values())
        total_cpu = sum(s["cpu_s"] for s in self.stages.values())
        parts = ", ".join(f"{name} {s['wall_s']:.0f}/{s['cpu_s']:.0f}" for name, s in self.stages.items())
        return (f"Time (wall/CPU seconds): {parts}; total {total_wall / 60:.1f} min wall, {total_cpu / 60:.1f} min CPU "
                f"(on a busy machine wall time says little; CPU time is the work done).")


def run_demo(out: str | Path, *, epochs: int | None = None, seed: int = 0, emotion: bool = True,
             rgb: bool = False, analyze: bool = True, parallel: bool | None = None,
             emotion_epochs: int | None = None, precision: str = DEMO_PRECISION, **synthetic: int) -> dict:
    """Run the demo into `out`; returns the fused skeleton metrics (module doc for the stages).

    `synthetic`: e.g. subjects=3 for a quick run; `parallel`: train the two streams side by side
    (default: `side_by_side()`); `precision`: the streams' trainer.precision (default "auto": bf16
    mixed precision on CPUs with AMX and on GPUs with bf16, else float32);
    `emotion`, `rgb`, `analyze`: run those stages. The side-by-side
    workers are started with "spawn", so a script calling this must do so under
    `if __name__ == "__main__":` (as the command line does).
    """
    out = Path(out)
    epochs = epochs or DEMO_EPOCHS
    resolved = resolve_precision(precision)  # a bad value stops here, before the data is made
    machine = machine_description()
    print(f"== on {machine}: float results repeat to the last digit on this machine only (docs/training.md)")
    clock = Stopwatch()
    print(f"== the synthetic dataset -> {out / 'data'}")
    ann = synthetic_annotations(demo_config("joint", out / "data", epochs, seed, **synthetic).data.synthetic,
                                progress=True)
    print(format_summary(load_annotations(ann)))
    clock.lap("data")
    parallel = side_by_side() if parallel is None else parallel
    how = "side by side, one process and thread each" if parallel else "one after the other"
    print(f"\n== the joint and bone 2s-AGCN streams ({epochs} epochs, {how}, precision "
          f"{resolved})", flush=True)
    trained = train_streams(out, epochs, seed, synthetic, parallel, precision)
    results = {f"2s-AGCN {s}": m for s, m in trained.items()}
    fused = fusion_metrics([out / s / "eval" / "scores.csv" for s in STREAMS], weights=[1.0, 1.0],
                           scores_out=out / "scores_fused.csv")
    results[FUSED] = fused
    write_text(out / "metrics.json", json.dumps(fused, indent=2))
    _plot_fused_confusion(out)
    skeleton = skeleton_report(out, results, ann)
    print("\n" + skeleton, flush=True)
    clock.lap("skeleton")
    summary: dict[str, Any] = {"machine": machine, "precision": resolved,
                               "skeleton": {name: _headline(m) for name, m in results.items()}}
    sections = [f"Machine: {machine}; precision {resolved}", skeleton]
    if emotion:
        summary["emotion"], text = _emotion(out, seed, emotion_epochs, synthetic)
        sections.append(text)
        clock.lap("emotion")
    summary["rgb"], text = _rgb(out, seed, synthetic) if rgb else (None, RGB_SKIPPED)
    print("\n" + text, flush=True)
    sections.append(text)
    if rgb:
        clock.lap("rgb")
    if analyze:
        summary["analysis"], text = _analysis(out)
        sections.append(text)
        clock.lap("analysis")
    _write_summary(out, summary, sections, clock)
    return fused


def skeleton_report(out: Path, results: dict[str, dict], annotations: Path) -> str:
    """The streams' and the fusion's headline metrics, then their head / medium / tail split."""
    from microgesture.eval.longtail import long_tail_table

    files = {f"2s-AGCN {s}": out / s / "eval" / "scores.csv" for s in STREAMS}
    files[FUSED] = out / "scores_fused.csv"
    return (f"Held-out test subjects of the synthetic dataset (chance = 1/32 = 3.1%).\n\n{format_metrics(results)}\n\n"
            f"By class frequency in training (per-class F1 and top-1, averaged per group):\n"
            f"{long_tail_table(files, annotations)}")


def _headline(metrics: dict) -> dict:
    return {key: metrics[key] for key in ("top1", "top5", "macro_f1", "mean_class_accuracy") if key in metrics}


def _emotion(out: Path, seed: int, epochs: int | None, synthetic: dict) -> tuple[dict, str]:
    from microgesture.apps.emotion_demo import run_emotion_demo

    m = run_emotion_demo(out, data_root=out / "data", epochs=epochs, seed=seed, **synthetic)
    auc = "n/a (one class only)" if m["auc"] is None else f"{m['auc']:.2f}"
    text = (f"Emotion (win/lose per video, face track + whole frame, InterFusion), {m['num_samples']} held-out "
            f"test videos: video-level accuracy {100 * m['accuracy']:.1f}%, ROC-AUC {auc}.")
    keys = ("accuracy", "auc", "f1", "num_samples", "num_clips")
    return {k: m[k] for k in keys if k in m}, text


def _rgb(out: Path, seed: int, synthetic: dict) -> tuple[dict, str]:
    """Run the crops stage and say, from this run's own figures, whether CMTF beats the skeleton."""
    from microgesture.apps.crops_demo import run_crops_demo

    rows = run_crops_demo(out, seed=seed, **synthetic)
    cmtf, late = rows["CMTF joint+bone+RGB crops"]["top1"], rows["late fusion joint+bone (1:1)"]["top1"]
    verdict = "beats" if cmtf > late else "does not beat"
    text = (f"RGB crops + CMTF: CMTF of joint, bone and RGB crops {verdict} the late fusion of the skeleton streams "
            f"({100 * cmtf:.2f}% against {100 * late:.2f}% top-1; out/results_crops.md). On the 3-seed benchmark the "
            "same CMTF without RGB does as well, so a gain here is CMTF's, not RGB's (docs/fusion.md).")
    return {name: _headline(m) for name, m in rows.items()}, text


def _analysis(out: Path) -> tuple[dict, str]:
    from microgesture.apps.analyze import analyze_demo_video

    print("\n== analysing one held-out synthetic untrimmed video with the joint model", flush=True)
    report = analyze_demo_video(out)
    analysis = json.loads((report.parent / "analysis.json").read_text())
    text = (f"One untrimmed test video analysed ({analysis['video']['frames']} frames, "
            f"{len(analysis['segments'])} segment(s) found): open {report}")
    print(text, flush=True)
    return {"report": str(report), "segments": len(analysis["segments"])}, text


def _write_summary(out: Path, summary: dict, sections: list[str], clock: Stopwatch) -> None:
    summary["time"] = clock.stages
    timing = clock.describe()
    write_text(out / "results.json", json.dumps(summary, indent=2))
    write_text(out / "results.md", "```\n" + "\n\n".join([*sections, timing]) + "\n```\n")
    print(f"\n{timing}\nSummary: {out / 'results.md'} and results.json; report folder: {out}/")


def _plot_fused_confusion(out: Path) -> None:
    from microgesture.domain.classes import IMIGUE_CLASSES

    table = read_scores(out / "scores_fused.csv")
    cm = confusion_matrix(table.labels, table.scores.argmax(1), len(IMIGUE_CLASSES))
    plot_confusion_matrix(cm, list(IMIGUE_CLASSES), out / "confusion_matrix.png")
