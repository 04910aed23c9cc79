"""The `microgesture` command line: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import contextlib
import os
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


def _shard(text: str):
    from microgesture.errors import ConfigError
    from microgesture.utils.parallel import parse_shard

    try:
        return parse_shard(text)
    except ConfigError as exc:  # argparse names the option itself
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--shard ")) from None


def _scale_options(parser: argparse.ArgumentParser) -> None:
    """--jobs and --shard of the extraction commands (defaults: the library's)."""
    parser.add_argument("--jobs", type=_positive_int, default=argparse.SUPPRESS,
                        help="worker processes, one video each at a time (default 1)")
    parser.add_argument("--shard", type=_shard, default=argparse.SUPPRESS, metavar="I/N",
                        help="only every N-th video of the sorted folder, from the I-th (0-based: 0/4 ... 3/4), "
                             "e.g. --shard $SLURM_ARRAY_TASK_ID/4")


def _scale_kwargs(a: argparse.Namespace) -> dict:
    return {k: getattr(a, k) for k in ("jobs", "shard") if hasattr(a, k)}


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
        videos_csv=a.videos, labels_table=a.labels, img_shape=a.img_shape, layout=a.layout or "miga35",
    )
    print(format_summary(data))
    print(f"wrote {a.out}")


def cmd_import_openpose(a: argparse.Namespace) -> None:
    from microgesture.data.formats.openpose import import_openpose_to_file
    from microgesture.data.formats.summary import format_summary

    check_output_file(a.out)
    data = import_openpose_to_file(
        a.json_dir, a.labels, a.out, video_id=a.video_id, protocol=a.protocol,
        val_fraction=a.val_fraction, seed=a.seed, layout=a.layout or "miga35", img_shape=a.img_shape,
    )
    print(format_summary(data))
    print(f"wrote {a.out}")


def cmd_import_smg(a: argparse.Namespace) -> None:
    from microgesture.data.formats.smg import import_smg_to_file
    from microgesture.data.formats.summary import format_summary

    check_output_file(a.out)
    data = import_smg_to_file(
        a.src_dir, a.out, protocol=a.protocol or "smg-xsub", val_fraction=a.val_fraction, seed=a.seed,
        coords=a.coords, layout=a.layout or "ntu25", img_shape=a.img_shape, skip_unusable=a.skip_unusable,
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
    from microgesture.eval.report import format_emotion, format_metrics
    from microgesture.train.run import evaluate

    metrics = evaluate(cfg, a.checkpoint, out, split=a.split, num_clips=a.clips, device=a.device)
    if "top1" in metrics:
        print(format_metrics({Path(a.checkpoint).name: metrics}))
    if metrics.get("emotion"):
        print(format_emotion(metrics["emotion"]))
    if "long_tail" in metrics:
        from microgesture.eval.longtail import format_long_tail

        print(format_long_tail({Path(a.checkpoint).name: metrics}))
    print(f"wrote {out}/metrics.json" + (", scores.csv, confusion_matrix.png" if "top1" in metrics else "")
          + (", emotion_videos.csv, emotion_reliability.png" if "emotion" in metrics else ""))


def cmd_fuse(a: argparse.Namespace) -> None:
    for path, option in ((a.out, "--out"), (a.scores_out, "--scores-out")):
        if path is not None:
            check_output_file(path, option)
    if a.calibrate:
        return cmd_fuse_calibrated(a)
    from microgesture.eval.report import fuse_files

    print(fuse_files(a.scores, weights=a.weights, mode=a.mode, temperature=a.temperature,
                     out=a.out, scores_out=a.scores_out))


def cmd_fuse_calibrated(a: argparse.Namespace) -> None:
    """`fuse TEST... --calibrate VAL...`: temperatures and weights fit on validation (eval/voting.py)."""
    from microgesture.errors import ConfigError
    from microgesture.eval.voting import calibrated_voting, format_voting

    if a.weights is not None or a.temperature != 1.0 or a.mode != "score":
        raise ConfigError("--calibrate fits the weights and temperatures itself: drop --weights, --temperature, --mode")
    if a.report is not None:
        check_output_dir(a.report, "--report", create=False)
    result = calibrated_voting(a.calibrate, a.scores, objective=a.objective, out=a.report)
    if a.scores_out is not None:
        from microgesture.eval.scores import write_scores

        write_scores(a.scores_out, result.fused)
    if a.out is not None:
        import json

        from microgesture.utils.io import write_text

        write_text(a.out, json.dumps(result.report, indent=2))
    print(format_voting(result))


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
    kinds = cfg.task.kind.split("+")
    files = (["predictions.csv", "scores.csv", written.name] if "mg" in kinds else []) + (
        ["emotion_predictions.csv (video_id,label)", "emotion_videos.csv"] if "emotion" in kinds else [])
    print(f"wrote {', '.join(files)} in {a.out}")


def cmd_export(a: argparse.Namespace) -> None:
    from microgesture.train.config import load_config

    cfg = load_config(a.config, a.set)
    from microgesture.apps.export import export_model

    print(export_model(cfg, a.checkpoint, a.out, a.format).describe())


def cmd_demo(a: argparse.Namespace) -> None:
    check_output_dir(a.out, "--out", create=False)
    from microgesture.apps.demo import run_demo

    run_demo(a.out, epochs=a.epochs, seed=a.seed, rgb=a.rgb, emotion=not a.skeleton_only, analyze=not a.skeleton_only,
             parallel=False if a.sequential else None, precision=a.precision)


# -- domain adaptation -------------------------------------------------------------------------
def cmd_adapt(a: argparse.Namespace) -> None:
    from microgesture.train.config import load_config

    cfg = load_config(a.config, a.set)
    from microgesture.train.adapt import adapt

    out = a.out or Path("runs") / f"{cfg.name}_cmpl"
    result = adapt(cfg, out, target=a.target, device=a.device)
    for stream, ckpt in result.checkpoints.items():
        print(f"adapted {stream}: {ckpt}")
    print(f"pseudo-labels and provenance: {out}/round_*/pseudo_labels.csv, {out}/manifest.json")


def cmd_adapt_quality(a: argparse.Namespace) -> None:
    import json

    from microgesture.data.formats.annotations import load_annotations
    from microgesture.eval.pseudo import pseudo_label_quality

    quality = pseudo_label_quality(a.adapt_dir, load_annotations(a.annotations), a.target, a.train_split)
    for r, q in quality.items():
        precision = "-" if q["precision"] is None else f"{100 * q['precision']:.1f}%"
        print(f"round {r}: {q['num_pseudo']} pseudo-labels, coverage {100 * q['coverage']:.1f}%, precision {precision}")
    if a.out is not None:
        from microgesture.utils.io import write_text

        write_text(a.out, json.dumps(quality, indent=2))


def _adapt_commands(sub) -> None:
    ad = sub.add_parser("adapt", help="cross-modal pseudo-labelling (CMPL) on an unlabelled target split")
    ad.add_argument("config", type=Path, help="a config whose streams name their trained checkpoints")
    ad.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    ad.add_argument("--target", required=True, help="the unlabelled target split (its labels are removed first)")
    ad.add_argument("--out", type=Path, default=None, help="adaptation folder (default runs/<name>_cmpl; resumed)")
    ad.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    ad.set_defaults(func=cmd_adapt)
    q = sub.add_parser("adapt-quality", help="after adaptation: pseudo-label precision and coverage from true labels")
    q.add_argument("adapt_dir", type=Path)
    q.add_argument("--annotations", type=Path, required=True, help="the labelled annotation file")
    q.add_argument("--target", required=True)
    q.add_argument("--train-split", default="train", help="defines the head/medium/tail groups")
    q.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    q.set_defaults(func=cmd_adapt_quality)


# -- faces ------------------------------------------------------------------------------------
def cmd_extract_faces(a: argparse.Namespace) -> None:
    from microgesture.data.faces import FaceSettings, extract_faces

    settings = FaceSettings(detector=a.detector, model=a.model, stride=a.stride, min_score=a.min_score,
                            min_face=a.min_face, margin=a.margin, max_gap_s=a.max_gap, smooth=a.smooth,
                            track=not a.no_track, boxes=a.boxes)
    results = extract_faces(a.path, a.out, settings, overwrite=a.overwrite, progress=True,
                            echo=lambda line: print(line, flush=True), **_scale_kwargs(a))
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
    _scale_options(f)
    f.set_defaults(func=cmd_extract_faces)


def cmd_crops(a: argparse.Namespace) -> None:
    from microgesture.apps.crops_preview import preview_crops

    for path in preview_crops(a.annotations, a.clips, a.out, modalities=a.modality, size=a.size, frames=a.frames,
                              video_root=a.video_root):
        print(f"wrote {path}")


# -- your own video ---------------------------------------------------------------------------
def _extract_options(a: argparse.Namespace):
    from microgesture.data.pose.extract import ExtractOptions

    return ExtractOptions(stride=a.stride, max_side=a.max_side, hands=a.hands, hands_every=a.hands_every,
                          faces=not a.no_faces, mirrored=a.mirrored, lower_body=a.lower_body)


def cmd_extract_pose(a: argparse.Namespace) -> int:
    from microgesture.apps.pose import extract_pose

    report = extract_pose(a.source, a.out, _extract_options(a), video_id=a.video_id, progress=not a.quiet,
                          **_scale_kwargs(a))
    print(report.describe())
    print(f"wrote {a.out}")
    return 1 if report.failed else 0


def cmd_analyze(a: argparse.Namespace) -> None:
    from microgesture.apps.analyze import AnalyzeOptions, analyze_video

    options = AnalyzeOptions(extract=_extract_options(a), threshold=a.threshold, stride=a.window_stride,
                             window=a.window, device=a.device)
    analysis = analyze_video(a.video, a.checkpoint, a.out, emotion_checkpoint=a.emotion_checkpoint,
                             options=options, progress=not a.quiet)
    print(analysis.describe())


def cmd_online_windows(a: argparse.Namespace) -> None:
    from microgesture.data.windows import write_window_annotations

    counts = write_window_annotations(a.annotations, a.out, length=a.length, stride=a.stride, core=a.core,
                                      layout=a.layout)
    print(f"{counts['windows']} windows ({counts['background']} background), left out: {counts['ambiguous']} "
          f"ambiguous, {counts['no_person']} without a person")
    print(f"wrote {a.out}")


def cmd_online_evaluate(a: argparse.Namespace) -> None:
    from microgesture.apps.online import evaluate_online

    result = evaluate_online(a.checkpoint, a.data, a.out, split=a.split, threshold=a.threshold,
                             tune_split=a.tune_split, stride=a.stride, device=a.device)
    kit, strict = result["kit_rule"], result["one_to_one"]
    print(f"{result['videos']} videos of split {result['split']!r}, threshold {result['threshold']:.2f}"
          + (f" (tuned on {result['tuned_on']!r})" if result["tuned_on"] else ""))
    print(f"segment F1 {kit['f1']:.4f} (precision {kit['precision']:.4f}, recall {kit['recall']:.4f}; "
          f"{kit['found']} of {kit['truths']} found, {kit['predicted']} predicted); one-to-one F1 {strict['f1']:.4f}")
    print(f"wrote {a.out}/metrics.json and <vid>_prediction.csv files")


def _online_commands(sub) -> None:
    o = sub.add_parser("online", help="online recognition: sliding windows over whole videos, segments, F1")
    osub = o.add_subparsers(dest="online_command", required=True)
    w = osub.add_parser("windows", help="cut an annotation file's videos into labelled windows (for training)")
    w.add_argument("annotations", type=Path)
    w.add_argument("--out", type=Path, required=True, help="window annotation file to write")
    w.add_argument("--length", type=_positive_int, default=32, help="window length in frames (default 32)")
    w.add_argument("--stride", type=_positive_int, default=8, help="frames between windows (default 8)")
    w.add_argument("--core", type=float, default=0.5, help="central share of a window that decides its label")
    w.add_argument("--layout", default="miga35")
    w.set_defaults(func=cmd_online_windows)
    e = osub.add_parser("evaluate", help="segments and the MiGA segment F1 on every video of a split")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True, help="annotation file whose videos are scored")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--split", default="test")
    e.add_argument("--threshold", type=float, default=None, help="decoding threshold (default: tuned on --tune-split)")
    e.add_argument("--tune-split", default="val")
    e.add_argument("--stride", type=_positive_int, default=4, help="frames between windows (default 4)")
    e.add_argument("--device", default=None)
    e.set_defaults(func=cmd_online_evaluate)


def _video_commands(sub) -> None:
    _online_commands(sub)
    pose = argparse.ArgumentParser(add_help=False)
    pose.add_argument("--stride", type=_positive_int, default=2,
                      help="run the models on every N-th frame, interpolate between (default 2)")
    pose.add_argument("--max-side", type=_positive_int, default=640,
                      help="detection resolution: longer image side in pixels (default 640)")
    pose.add_argument("--hands", choices=["auto", "always", "off"], default="auto",
                      help="hand landmarks when a wrist is visible (auto), whenever a person is found, or never")
    pose.add_argument("--hands-every", type=_positive_int, default=2,
                      help="hands on every N-th processed frame, interpolated between (default 2)")
    pose.add_argument("--no-faces", action="store_true", help="no face detection (no choice among several people)")
    pose.add_argument("--mirrored", action="store_true", help="the video is mirrored (a selfie recording)")
    pose.add_argument("--lower-body", action="store_true", help="keep hips, knees and feet (iMiGUE has none)")
    pose.add_argument("--quiet", action="store_true", help="no progress bar")

    x = sub.add_parser("extract-pose", parents=[pose],
                       help="body, hand and face landmarks (MediaPipe) of a video or a folder of videos, "
                            "written in the MiGA per-video layout")
    x.add_argument("source", type=Path, help="a video file or a folder of videos")
    x.add_argument("--out", type=Path, required=True, help="output folder (<vid:04d>/ per video; resumed)")
    x.add_argument("--video-id", type=int, default=None, help="id of a single video (default: the next free one)")
    _scale_options(x)
    x.set_defaults(func=cmd_extract_pose)

    an = sub.add_parser("analyze", parents=[pose],
                        help="your own video: pose, micro-gesture segments over time, emotion estimate, HTML report")
    an.add_argument("video", type=Path)
    an.add_argument("--checkpoint", type=Path, required=True, help="a trained MG model (ideally an online one)")
    an.add_argument("--emotion-checkpoint", type=Path, default=None, help="a trained model whose task is emotion")
    an.add_argument("--out", type=Path, required=True, help="folder for analysis.json, segments.csv, timeline.png, "
                                                           "report.html")
    an.add_argument("--threshold", type=float, default=0.5, help="decoding threshold (default 0.5)")
    an.add_argument("--window", type=_positive_int, default=None,
                    help="window length in frames at 25 frames/s (default: the model's data.num_frames)")
    an.add_argument("--window-stride", type=_positive_int, default=8,
                    help="frames between windows at 25 frames/s (default 8)")
    an.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    an.set_defaults(func=cmd_analyze)


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
    common.add_argument("--layout", default=None,  # per command: miga35 (miga, openpose), ntu25 (smg)
                        help="joint layout of the clips: miga35 (default), imigue22, coco17, ntu25 (default for smg); "
                             "openpose: also openpose67")
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
    g.set_defaults(func=cmd_import_smg)
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
    t.add_argument("--precision", default=None,
                   help="32-true, bf16-mixed, 16-mixed, or auto (bf16-mixed on CPUs with AMX and on bf16 GPUs)")
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
    f.add_argument("--calibrate", type=Path, nargs="+", default=None, metavar="VAL_SCORES",
                   help="validation score files, one per stream in the same order: fit temperatures and weights "
                        "on them, then fuse the test files (calibrated soft voting)")
    f.add_argument("--objective", choices=["nll", "macro_f1", "top1"], default="nll",
                   help="with --calibrate: what the weight search maximises on validation (default: likelihood)")
    f.add_argument("--report", type=Path, default=None,
                   help="with --calibrate: a folder for calibration.json, scores_fused.csv, reliability diagrams")
    f.set_defaults(func=cmd_fuse)

    d = sub.add_parser("demo", help="synthetic data -> joint and bone 2s-AGCN -> fusion, emotion, a video analysed")
    d.add_argument("--out", type=Path, default=Path("demo_out"))
    d.add_argument("--epochs", type=_positive_int, default=None, help="training epochs per stream (default: the demo's own)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--rgb", action="store_true", help="also train the RGB crops stream and CMTF (beyond the 5 minutes)")
    d.add_argument("--skeleton-only", action="store_true", help="only the joint and bone streams and their fusion")
    d.add_argument("--sequential", action="store_true",
                   help="train the two streams one after the other in this process (the old way; for comparisons)")
    d.add_argument("--precision", default="auto",
                   help="the streams' training precision: auto (bf16-mixed on CPUs with AMX and on bf16 GPUs, "
                        "else 32-true; the default), 32-true, bf16-mixed")
    d.set_defaults(func=cmd_demo)


def _deploy_commands(sub) -> None:
    x = sub.add_parser("export", help="a trained skeleton model as TorchScript or ONNX, checked against the eager model")
    x.add_argument("config", type=Path)
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    x.add_argument("--checkpoint", type=Path, required=True)
    x.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    x.add_argument("--out", type=Path, required=True, help="file to write (.onnx or .pt)")
    x.set_defaults(func=cmd_export)


def _crop_commands(sub) -> None:
    from microgesture.data.transforms.crops import CROP_GRIDS

    c = sub.add_parser("crops", help="write PNG sheets of the skeleton-guided RGB crops of some clips")
    c.add_argument("annotations", type=Path, help="an annotation file whose clips have videos")
    c.add_argument("clips", nargs="+", help="clip ids (frame_dir), e.g. 0001_3")
    c.add_argument("--out", type=Path, default=Path("crops_preview"))
    c.add_argument("--modality", nargs="+", choices=list(CROP_GRIDS), default=["rgb_crops"])
    c.add_argument("--size", type=_positive_int, default=96, help="clip size in pixels (tiles are half of it)")
    c.add_argument("--frames", type=_positive_int, default=8)
    c.add_argument("--video-root", type=Path, default=None, help="where relative video paths point")
    c.set_defaults(func=cmd_crops)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="microgesture",
        description="Micro-gesture recognition and behaviour-based emotion prediction from video and skeletons.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    _data_commands(sub)
    _model_commands(sub)
    _result_commands(sub)
    _adapt_commands(sub)
    _deploy_commands(sub)
    _face_commands(sub)
    _crop_commands(sub)
    _video_commands(sub)
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
    except BrokenPipeError:  # the reader of our output stopped early (`| head`): not an error
        with contextlib.suppress(OSError, ValueError):  # no second error when stdout is flushed at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
