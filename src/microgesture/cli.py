"""The `microgesture` command line: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from microgesture.errors import MicrogestureError
from microgesture.utils.paths import check_output_dir, check_output_file


def _pair(text: str) -> tuple[int, int]:
    """'192x144' -> (192, 144); the help text of each option says which number comes first."""
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected two integers like 192x144") from None
    if a <= 0 or b <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return a, b


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


# -- data -------------------------------------------------------------------------------------
def cmd_synth(a: argparse.Namespace) -> None:
    from microgesture.data.synth import generate_dataset

    check_output_dir(a.out_dir, "OUT_DIR", create=False)
    summary = generate_dataset(
        a.out_dir, subjects=a.subjects, videos_per_subject=a.videos_per_subject, seed=a.seed,
        size=a.size, video=not a.no_video, overwrite=a.overwrite, progress=True,
    )
    print(summary.describe())


def cmd_import_miga(a: argparse.Namespace) -> None:
    from microgesture.data.formats.miga import import_miga_to_file
    from microgesture.data.formats.summary import format_summary

    check_output_file(a.out)
    data = import_miga_to_file(
        a.src_dir, a.out, protocol=a.protocol, val_fraction=a.val_fraction, seed=a.seed,
        videos_csv=a.videos, labels_table=a.labels, img_shape=a.img_shape, layout=a.layout,
    )
    print(format_summary(data))
    print(f"wrote {a.out}")


def cmd_import_openpose(a: argparse.Namespace) -> None:
    from microgesture.data.formats.openpose import import_openpose_to_file
    from microgesture.data.formats.summary import format_summary

    check_output_file(a.out)
    data = import_openpose_to_file(
        a.json_dir, a.labels, a.out, video_id=a.video_id, protocol=a.protocol,
        val_fraction=a.val_fraction, seed=a.seed, layout=a.layout, img_shape=a.img_shape,
    )
    print(format_summary(data))
    print(f"wrote {a.out}")


def cmd_import_smg(a: argparse.Namespace) -> None:
    from microgesture.data.formats.smg import import_smg_to_file
    from microgesture.data.formats.summary import format_summary

    check_output_file(a.out)
    data = import_smg_to_file(
        a.src_dir, a.out, protocol=a.protocol or "smg-xsub", val_fraction=a.val_fraction, seed=a.seed,
        coords=a.coords, layout=a.layout, img_shape=a.img_shape, skip_unusable=a.skip_unusable,
    )
    print(format_summary(data))
    print(f"wrote {a.out}")


def cmd_import_pyskl(a: argparse.Namespace) -> None:
    from microgesture.data.formats.pyskl import import_pyskl_to_file
    from microgesture.data.formats.summary import format_summary

    check_output_file(a.out)
    data = import_pyskl_to_file(a.file, a.out, layout=a.layout, persons=a.persons, classes=a.classes,
                                num_classes=a.num_classes, project=a.project, split_name=a.split_name)
    print(format_summary(data))
    print(f"wrote {a.out}")


def cmd_export_pyskl(a: argparse.Namespace) -> None:
    from microgesture.data.formats.pyskl import export_pyskl

    check_output_file(a.out)
    print(export_pyskl(a.annotations, a.out, layout=a.layout))


def cmd_validate(a: argparse.Namespace) -> int:
    from microgesture.data.formats.validate import validate_path

    problems = validate_path(a.path, video_root=a.video_root, decode=a.decode)
    for p in problems:
        print(p)
    errors = [p for p in problems if not p.warning]
    warned = f" ({len(problems) - len(errors)} warning(s))" if len(problems) > len(errors) else ""
    print(f"{a.path}: {'clean' if not errors else f'{len(errors)} problem(s)'}{warned}")
    return 0 if not errors else 1


def cmd_summary(a: argparse.Namespace) -> None:
    from microgesture.data.formats.annotations import load_annotations
    from microgesture.data.formats.summary import format_summary

    print(format_summary(load_annotations(a.annotations)))


# -- training and evaluation ----------------------------------------------------------------
def _trainer_sets(a: argparse.Namespace) -> list[str]:
    sets = list(a.set or [])
    for flag in ("devices", "strategy", "accelerator", "precision", "num_nodes"):
        value = getattr(a, flag, None)
        if value is not None:
            sets.append(f"trainer.{flag}={value}")
    return sets


def _data_sets(a: argparse.Namespace) -> list[str]:
    sets = list(a.set or [])
    if getattr(a, "video_root", None) is not None:
        sets.append(f"data.video_root={a.video_root}")
    return sets


def cmd_train(a: argparse.Namespace) -> None:
    from microgesture.train.config import load_config

    cfg = load_config(a.config, _trainer_sets(a))  # config mistakes are reported before torch loads
    out = check_output_dir(a.out or Path("runs") / cfg.name, "--out", create=False)
    from microgesture.train.run import fit

    result = fit(cfg, out, resume=a.resume)
    print(f"best checkpoint: {result.best_checkpoint} ({result.monitor}={result.best_score})")


def cmd_evaluate(a: argparse.Namespace) -> None:
    from microgesture.train.config import load_config

    cfg = load_config(a.config, _data_sets(a))
    # best and last (or any two checkpoints of a run) get folders of their own
    out = a.out or Path(a.checkpoint).resolve().parent.parent / "eval" / Path(a.checkpoint).stem
    check_output_dir(out, "--out", create=False)
    from microgesture.eval.report import format_metrics
    from microgesture.train.run import evaluate

    metrics = evaluate(cfg, a.checkpoint, out, split=a.split, num_clips=a.clips, device=a.device)
    if "top1" in metrics:
        print(format_metrics({Path(a.checkpoint).name: metrics}))
    if metrics.get("emotion"):
        e = metrics["emotion"]
        auc = "-" if e["auc"] is None else f"{e['auc']:.3f}"
        print(f"emotion ({e['num_samples']} videos): accuracy {100 * e['accuracy']:.2f}%, "
              f"F1 {100 * e['f1']:.2f}%, AUC {auc}")
    print(f"wrote {out}/metrics.json and the per-sample scores")


def cmd_fuse(a: argparse.Namespace) -> None:
    for path, option in ((a.out, "--out"), (a.scores_out, "--scores-out")):
        if path is not None:
            check_output_file(path, option)
    from microgesture.eval.report import fuse_files

    print(fuse_files(a.scores, weights=a.weights, mode=a.mode, temperature=a.temperature,
                     out=a.out, scores_out=a.scores_out))


def cmd_extract(a: argparse.Namespace) -> None:
    from microgesture.train.config import load_config

    cfg = load_config(a.config, _data_sets(a))
    check_output_dir(a.out, "--out", create=False)
    from microgesture.train.extract import extract_for_experiment

    print(f"wrote the token cache {extract_for_experiment(cfg, a.out, device=a.device)}")


def cmd_predict(a: argparse.Namespace) -> None:
    from microgesture.train.config import load_config

    cfg = load_config(a.config, _data_sets(a))
    check_output_dir(a.out, "--out", create=False)
    from microgesture.apps.predict import predict

    written = predict(cfg, a.checkpoint, a.data, a.out, split=a.split, style=a.style, num_clips=a.clips,
                      device=a.device)
    print(f"wrote the predictions to {a.out} ({written.name})")


def cmd_demo(a: argparse.Namespace) -> None:
    check_output_dir(a.out, "--out", create=False)
    from microgesture.apps.demo import run_demo

    run_demo(a.out, epochs=a.epochs, seed=a.seed)


# -- faces ------------------------------------------------------------------------------------
def cmd_extract_faces(a: argparse.Namespace) -> None:
    from microgesture.data.faces import FaceSettings, extract_faces

    settings = FaceSettings(detector=a.detector, model=a.model, stride=a.stride, min_score=a.min_score,
                            min_face=a.min_face, margin=a.margin, max_gap_s=a.max_gap, smooth=a.smooth,
                            track=not a.no_track, boxes=a.boxes)
    results = extract_faces(a.path, a.out, settings, overwrite=a.overwrite, progress=True,
                            echo=lambda line: print(line, flush=True))
    done = sum(not r.skipped for r in results)
    print(f"face tracks: {done} written, {len(results) - done} already done")


def _face_commands(sub) -> None:
    f = sub.add_parser("extract-faces", help="detect, track and crop the subject's face: <name>_face.mp4 + .csv per video")
    f.add_argument("path", type=Path, help="a video, or a folder searched for videos (a MiGA folder: in place)")
    f.add_argument("--out", type=Path, default=None,
                   help="output folder (same sub-folders as the input; default: beside each video)")
    f.add_argument("--detector", choices=["auto", "mediapipe", "haar"], default="auto",
                   help="auto: MediaPipe when installed, else OpenCV's Haar cascade")
    f.add_argument("--model", choices=["full", "short"], default="full",
                   help="MediaPipe model: full (faces up to ~5 m away) or short (within ~2 m, faster)")
    f.add_argument("--stride", type=_positive_int, default=5, help="detect on every STRIDE-th frame, track in between")
    f.add_argument("--min-score", type=float, default=0.5, help="detector confidence threshold")
    f.add_argument("--min-face", type=float, default=20.0, help="ignore faces smaller than this (pixels)")
    f.add_argument("--margin", type=float, default=1.3, help="crop side / face box side")
    f.add_argument("--max-gap", type=float, default=0.5, help="bridge gaps up to this many seconds (longer: missing)")
    f.add_argument("--smooth", type=int, default=2, help="average boxes over +-SMOOTH frames")
    f.add_argument("--no-track", action="store_true", help="interpolate between detections instead of tracking")
    f.add_argument("--boxes", choices=["detector", "skeleton"], default="detector",
                   help="skeleton: face boxes from the face joints of <name>_light_hand.csv (no detector)")
    f.add_argument("--overwrite", action="store_true", help="redo every video (also after changing settings)")
    f.set_defaults(func=cmd_extract_faces)


# -- parser -----------------------------------------------------------------------------------
def _data_commands(sub) -> None:
    data = sub.add_parser("data", help="create, import, check and summarise datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)

    s = dsub.add_parser("synth", help="write the embedded synthetic iMiGUE-like dataset (MiGA layout)")
    s.add_argument("out_dir", type=Path)
    s.add_argument("--subjects", type=int, default=12)
    s.add_argument("--videos-per-subject", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=_pair, default=(192, 144), help="frame size WxH (default 192x144)")
    s.add_argument("--no-video", action="store_true", help="skeletons and labels only (seconds, not a minute)")
    s.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    s.set_defaults(func=cmd_synth)

    imp = dsub.add_parser("import", help="import a dataset into the canonical annotation file")
    isub = imp.add_subparsers(dest="import_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, required=True, help="annotation pickle to write")
    common.add_argument("--protocol", default=None,
                        help="imigue-xsub, imigue-emotion, synthetic-xsub or none (default: synthetic-xsub for "
                             "our synthetic data, else imigue-xsub)")
    common.add_argument("--val-fraction", type=float, default=0.2, help="share of training subjects kept for validation")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--layout", default="miga35",
                        help="joint layout of the clips: miga35, imigue22, coco17, ntu25 (openpose: also openpose67)")
    common.add_argument("--img-shape", type=_pair, default=None, help="frame size HEIGHTxWIDTH when no video says it")
    m = isub.add_parser("miga", parents=[common], help="MiGA per-video folders (<vid>/<vid>_label.csv, _light_hand.csv)")
    m.add_argument("src_dir", type=Path)
    m.add_argument("--videos", type=Path, default=None, help="videos.csv (video_id,subject_id,emotion); default SRC_DIR/videos.csv")
    m.add_argument("--labels", type=Path, default=None, help="iMiGUE master label table for subject ids and win/lose")
    m.set_defaults(func=cmd_import_miga)
    o = isub.add_parser("openpose", parents=[common], help="OpenPose per-frame JSON folder + iMiGUE label table")
    o.add_argument("json_dir", type=Path)
    o.add_argument("--labels", type=Path, required=True, help="iMiGUE master label table (labels_*.csv)")
    o.add_argument("--video-id", type=int, default=None, help="default: from the file names")
    o.set_defaults(func=cmd_import_openpose)
    _format_commands(dsub, isub, common)

    v = dsub.add_parser("validate", help="check a dataset folder or an annotation file; exit 1 on any problem")
    v.add_argument("path", type=Path)
    v.add_argument("--video-root", type=Path, default=None,
                   help="for an annotation file: where its relative video paths start (default: its own folder)")
    v.add_argument("--decode", action="store_true",
                   help="decode every frame of every video (slow): finds corrupt data behind a valid header")
    v.set_defaults(func=cmd_validate)

    sm = dsub.add_parser("summary", help="clips per class and split, subjects, videos, frames")
    sm.add_argument("annotations", type=Path)
    sm.set_defaults(func=cmd_summary)


def _format_commands(dsub, isub, common) -> None:
    """SMG and PYSKL: `data import smg`, `data import pyskl`, `data export pyskl`."""
    g = isub.add_parser("smg", parents=[common], help="SMG folders (SampleNNNN/ with _skeleton.csv, _finelabels.csv); "
                                                      "--layout ntu25, --protocol default smg-xsub")
    g.add_argument("src_dir", type=Path)
    g.add_argument("--coords", choices=["pixel", "world"], default="pixel",
                   help="pixel: the colour-image coordinates (assumed 1920x1080); world: Kinect (x, -y) in metres")
    g.add_argument("--skip-unusable", action="store_true", help="skip label rows outside the skeleton (with a warning)")
    g.set_defaults(func=cmd_import_smg, layout="ntu25")
    p = isub.add_parser("pyskl", help="a PYSKL / MMAction2 skeleton annotation pickle (keeps its split)")
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True, help="annotation pickle to write")
    p.add_argument("--layout", required=True, help="the file's joint layout: coco17, ntu25, or one of ours")
    p.add_argument("--persons", type=_positive_int, default=None,
                   help="persons per clip (default: the most in any clip)")
    p.add_argument("--classes", type=Path, default=None, help="text file with one class name per line")
    p.add_argument("--num-classes", type=_positive_int, default=None, help="class count when no --classes")
    p.add_argument("--project", choices=["xy"], default=None,
                   help="3-D keypoints: keep (x, -y), an orthographic view from the camera (else refused)")
    p.add_argument("--split-name", default="train", help="split of a file that is a bare list of clips")
    p.set_defaults(func=cmd_import_pyskl)
    exp = dsub.add_parser("export", help="write an annotation file in another toolkit's format")
    esub = exp.add_subparsers(dest="export_command", required=True)
    e = esub.add_parser("pyskl", help="a PYSKL annotation pickle (its keys only) for PYSKL / MMAction2")
    e.add_argument("annotations", type=Path)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--layout", default=None, help="convert to coco17 or ntu25 first (PYSKL has graphs for those)")
    e.set_defaults(func=cmd_export_pyskl)


def _model_commands(sub) -> None:
    sets = argparse.ArgumentParser(add_help=False)
    sets.add_argument("config", type=Path)
    sets.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=0.05")
    scoring = argparse.ArgumentParser(add_help=False)
    scoring.add_argument("--checkpoint", type=Path, required=True)
    scoring.add_argument("--split", default=None, help="default: the config's test split")
    scoring.add_argument("--clips", type=_positive_int, default=None, help="test-time clips averaged per sample")
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    device.add_argument("--video-root", type=Path, default=None,
                        help="folder the annotation file's relative video paths start from (default: its own folder)")

    t = sub.add_parser("train", parents=[sets], help="train a model from a YAML config")
    t.add_argument("--out", type=Path, default=None, help="run folder (default runs/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    t.add_argument("--devices", default=None, help="Lightning devices, e.g. 1, 2, auto")
    t.add_argument("--strategy", default=None, help="Lightning strategy, e.g. ddp")
    t.add_argument("--accelerator", default=None, help="cpu, gpu or auto")
    t.add_argument("--precision", default=None, help="32-true, bf16-mixed, 16-mixed")
    t.add_argument("--num-nodes", dest="num_nodes", default=None, help="nodes for multi-node DDP")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", parents=[sets, scoring, device],
                       help="metrics, per-sample scores and a confusion matrix for a checkpoint")
    e.add_argument("--out", type=Path, default=None, help="default: <run>/eval/<checkpoint name>")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("extract", parents=[sets, device], help="run a fusion config's frozen encoders once and cache their tokens")
    x.add_argument("--out", type=Path, required=True, help="cache folder (resumed if interrupted)")
    x.set_defaults(func=cmd_extract)

    pr = sub.add_parser("predict", parents=[sets, device],
                        help="predict classes for an annotation file; write a MiGA submission zip")
    pr.add_argument("--checkpoint", type=Path, required=True)
    pr.add_argument("--data", type=Path, required=True, help="annotation file (labels are ignored)")
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--split", default=None, help="default: every clip in the file")
    pr.add_argument("--style", choices=["2025", "2023"], default="2025",
                    help="2025: Id,Target CSV; 2023: headerless <sample>,<class> rows")
    pr.add_argument("--clips", type=_positive_int, default=None)
    pr.set_defaults(func=cmd_predict)


def _result_commands(sub) -> None:
    f = sub.add_parser("fuse", help="fuse per-sample score files (ours or MMAction2 pickles) and report metrics")
    f.add_argument("scores", nargs="+", type=Path)
    f.add_argument("--weights", type=float, nargs="+", default=None)
    f.add_argument("--mode", choices=["score", "softmax"], default="score",
                   help="sum raw scores (MMAction2) or temperature-scaled softmax probabilities (soft voting)")
    f.add_argument("--temperature", type=float, default=1.0)
    f.add_argument("--out", type=Path, default=None, help="write the metrics here (JSON)")
    f.add_argument("--scores-out", type=Path, default=None, help="write the fused scores here (CSV)")
    f.set_defaults(func=cmd_fuse)

    d = sub.add_parser("demo", help="synthetic data -> joint and bone 2s-AGCN -> fusion -> report")
    d.add_argument("--out", type=Path, default=Path("demo_out"))
    d.add_argument("--epochs", type=_positive_int, default=None, help="training epochs per stream (default: the demo's own)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="microgesture",
        description="Micro-gesture recognition and behaviour-based emotion prediction from video and skeletons.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    _data_commands(sub)
    _model_commands(sub)
    _result_commands(sub)
    _face_commands(sub)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one readable line (no source file or code line echoed)."""
    print(f"warning: {message}", file=file or sys.stderr)


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command; errors propagate (`main` turns them into one line and exit 2)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    try:
        return run(argv)
    except MicrogestureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
