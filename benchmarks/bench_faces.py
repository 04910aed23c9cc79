"""Face detection + tracking + cropping throughput on a 1280x720 video, and how close the boxes are.

The test video is synthetic (our generator at 1280x720: one seated subject, faces about 130
pixels high, with the generator's true face track to compare against); `--real VIDEO` adds a
real clip padded/resized to 1280x720 (e.g. ../shared/data/videos/talking_faces.mp4; no truth).

Rows: decoding alone; one detector call (MediaPipe full/short range, Haar) on a 1280x720 frame;
whole extractions (`extract_video`: decode thread, detection every `stride` frames, tracking,
crops, encoding of the 112x112 face track) at several strides, with and without template
tracking; and a drawn face moving fast across a 640x480 frame, to see what the tracker buys over
interpolating between detections. Each row gives frames/s of wall time and frames per CPU-second of this process
(all threads): on a machine shared with other work the second is the steadier figure, and
two free cores give at most twice it. Box error: distance between our crop centre and the
true one over the true crop side (median, 90th percentile; for the moving face: over the face's
width, after removing the median offset), and the share of frames with a box.

    python benchmarks/bench_faces.py                      # about a minute on 2 free cores
    python benchmarks/bench_faces.py --quick              # smoke run
    python benchmarks/bench_faces.py --real ../shared/data/videos/talking_faces.mp4 --json faces.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import busy_note, describe, machine  # noqa: E402

from microgesture.data.faces import FaceSettings, extract_video  # noqa: E402
from microgesture.data.faces.detect import make_detector, mediapipe_available  # noqa: E402
from microgesture.data.formats import miga  # noqa: E402
from microgesture.data.formats.facetrack import face_csv_path, face_video_path, read_face_csv  # noqa: E402
from microgesture.data.video import iter_frames, read_frames, video_info, write_video  # noqa: E402

SIZE = (1280, 720)


def synthetic_video(folder: Path, seconds: float) -> tuple[Path, Path]:
    """A 1280x720 synthetic video and its true face-track CSV."""
    from microgesture.data.synth import generate_dataset

    generate_dataset(folder / "synth", subjects=1, videos_per_subject=1, seed=0, size=SIZE, seconds=seconds)
    video = miga.rgb_path(folder / "synth", 1)
    return video, face_csv_path(face_video_path(video))


def padded_real(src: Path, folder: Path, frames: int) -> Path:
    """The first `frames` frames of a real clip scaled to fit 1280x720 and centred on grey."""
    info = video_info(src)
    k = min(SIZE[0] / info.width, SIZE[1] / info.height)
    w, h = int(info.width * k) // 2 * 2, int(info.height * k) // 2 * 2
    x, y = (SIZE[0] - w) // 2, (SIZE[1] - h) // 2

    def frames_out():
        for i, frame in enumerate(iter_frames(src)):
            if i >= frames:
                return
            canvas = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
            canvas[y:y + h, x:x + w] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
            yield canvas

    out = folder / f"{src.stem}_1280x720.mp4"
    write_video(out, frames_out(), info.fps)
    return out


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def box_error(csv_file: Path, truth_file: Path | None) -> dict[str, float]:
    track = read_face_csv(csv_file)
    out = {"with_box": float(track.has_box.mean())}
    if truth_file is None:
        return out
    truth = read_face_csv(truth_file)
    both = track.has_box & truth.has_box
    if not both.any():
        return out
    centre = (track.boxes[both, :2] + track.boxes[both, 2:]) / 2
    true_centre = (truth.boxes[both, :2] + truth.boxes[both, 2:]) / 2
    err = np.linalg.norm(centre - true_centre, axis=1) / (truth.boxes[both, 2] - truth.boxes[both, 0])
    out.update(err_median=float(np.median(err)), err_p90=float(np.quantile(err, 0.9)))
    return out


def detector_rows(video: Path, calls: int) -> list[dict]:
    frames = read_frames(video, list(range(0, min(calls * 3, video_info(video).num_frames), 3)))
    names = [("mediapipe", "full"), ("mediapipe", "short")] if mediapipe_available() else []
    rows = []
    for name, model in names + [("haar", "full")]:
        detector = make_detector(name, model=model)
        detector.detect(frames[0])  # warm-up (graph set-up)
        wall, cpu, found = timed(lambda: [len(detector.detect(f)) for f in frames])
        detector.close()
        label = f"{name} {model}" if name == "mediapipe" else name
        rows.append({"section": "detector", "name": f"{label}, one 1280x720 frame", "fps": len(frames) / wall,
                     "cpu_fps": len(frames) / cpu, "ms": 1000 * wall / len(frames),
                     "found": float(np.mean([k > 0 for k in found]))})
    return rows


def extraction_rows(video: Path, truth: Path | None, configs: list[tuple[str, FaceSettings]], out: Path,
                    tag: str) -> list[dict]:
    n = video_info(video).num_frames
    rows = []
    for name, settings in configs:
        target = out / f"{tag}_{len(rows)}_face.mp4"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wall, cpu, _ = timed(lambda: extract_video(video, target, settings, warn=False))
        rows.append({"section": f"extract {tag}", "name": name, "fps": n / wall, "cpu_fps": n / cpu,
                     **box_error(face_csv_path(target), truth)})
    return rows


def head_sprite(video: Path, truth: Path, size: int = 150) -> np.ndarray:
    """The drawn head of the video's first frame (1.5 true crop sides around it), size x size."""
    box = read_face_csv(truth).boxes[0]
    centre, half = (box[:2] + box[2:]) / 2, 0.75 * (box[2] - box[0])
    x0, y0 = np.maximum(np.round(centre - half).astype(int), 0)
    x1, y1 = np.round(centre + half).astype(int)
    region = read_frames(video, [0])[0][y0:y1, x0:x1]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def moving_face_rows(sprite: np.ndarray, folder: Path, speeds: tuple[float, ...], strides: tuple[int, ...]) -> list[dict]:
    """Tracking against interpolation on a face moving fast: a sprite on a 640x480 frame, moving
    along a Lissajous path whose top speed is `speed` pixels per frame; the error is the distance
    of our box centre from the sprite's centre, less its median (the detector's constant offset)."""
    rows = []
    h, w = sprite.shape[:2]
    t = np.arange(150)
    for speed in speeds:
        period = 2 * np.pi * 120 / speed
        xs = np.round(320 + 120 * np.sin(2 * np.pi * t / period) - w / 2).astype(int)
        ys = np.round(240 + 60 * np.sin(1.4 * np.pi * t / period + 1) - h / 2).astype(int)

        def frames():
            for x, y in zip(xs, ys):
                canvas = np.full((480, 640, 3), (60, 90, 120), np.uint8)
                canvas[y:y + h, x:x + w] = sprite
                yield canvas

        video = folder / f"moving{speed:g}.mp4"
        write_video(video, frames(), 25)
        truth = np.stack([xs + w / 2, ys + h / 2], 1)
        for stride in strides:
            for track in (True, False):
                out = folder / f"moving{speed:g}_{stride}_{track}_face.mp4"
                wall, cpu, _ = timed(lambda: extract_video(video, out, FaceSettings(stride=stride, track=track),
                                                           warn=False))
                boxes = read_face_csv(face_csv_path(out))
                d = ((boxes.boxes[:, :2] + boxes.boxes[:, 2:]) / 2 - truth)[boxes.has_box]
                err = np.linalg.norm(d - np.median(d, axis=0), axis=1) / w if len(d) else np.array([np.nan])
                rows.append({"section": "moving face 640x480", "fps": len(t) / wall, "cpu_fps": len(t) / cpu,
                             "name": f"top speed {speed:g} px/frame, stride {stride}, "
                                     f"{'tracking' if track else 'interpolation'}",
                             "with_box": float(boxes.has_box.mean()), "err_median": float(np.median(err)),
                             "err_p90": float(np.quantile(err, 0.9))})
    return rows


def configs(quick: bool) -> list[tuple[str, FaceSettings]]:
    if not mediapipe_available():
        return [("haar stride 5", FaceSettings(detector="haar", stride=5))]
    out = [("mediapipe full, stride 5, tracking", FaceSettings(stride=5))]
    if quick:
        return out
    return out + [
        ("mediapipe full, stride 1", FaceSettings(stride=1)),
        ("mediapipe full, stride 5, interpolation", FaceSettings(stride=5, track=False)),
        ("mediapipe full, stride 10, tracking", FaceSettings(stride=10)),
        ("mediapipe full, stride 10, interpolation", FaceSettings(stride=10, track=False)),
        ("mediapipe short, stride 5, tracking", FaceSettings(stride=5, model="short")),
        ("haar, stride 5, tracking", FaceSettings(detector="haar", stride=5)),
    ]


def table(rows: list[dict]) -> str:
    lines = ["| section | name | frames/s (wall) | frames per CPU-s | box: share | error median | error p90 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        share = r.get("with_box", r.get("found"))
        cells = [f"{r['fps']:.1f}", f"{r['cpu_fps']:.1f}", "" if share is None else f"{share:.2f}",
                 f"{r['err_median']:.3f}" if "err_median" in r else "", f"{r['err_p90']:.3f}" if "err_p90" in r else ""]
        lines.append(f"| {r['section']} | {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=12.0, help="length of the synthetic test video")
    p.add_argument("--real", type=Path, default=None, help="also a real clip, padded to 1280x720")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.quick:
        a.seconds = 3.0
    start = machine()
    print(describe(start) + busy_note(start))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video, truth = synthetic_video(tmp, a.seconds)
        n = video_info(video).num_frames
        wall, cpu, _ = timed(lambda: sum(1 for _ in iter_frames(video)))
        rows = [{"section": "decode", "name": f"PyAV, {n} frames 1280x720 to RGB", "fps": n / wall, "cpu_fps": n / cpu}]
        rows += detector_rows(video, 10 if a.quick else 40)
        rows += extraction_rows(video, truth, configs(a.quick), tmp, "synthetic")
        if mediapipe_available() and not a.quick:
            rows += moving_face_rows(head_sprite(video, truth), tmp, (6.0, 24.0), (5, 10))
        if a.real is not None:
            real = padded_real(a.real, tmp, 60 if a.quick else 300)
            rows += extraction_rows(real, None, configs(a.quick)[:1] + ([] if a.quick else configs(False)[1:2]), tmp,
                                    a.real.stem)
    end = machine()
    print(table(rows))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in end['loadavg'])}")
    if a.json is not None:
        a.json.write_text(json.dumps({"machine_start": start, "machine_end": end, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
