"""Compare video decoders for clip sampling: frame-exactness of random access, and clips/s.

    python benchmarks/bench_video_decode.py [--data ../shared/data] [--seconds 0.6] [--extra more.mp4 ...]

Backends: PyAV (microgesture.data.video), decord (decord2 wheel), OpenCV (seeking with
CAP_PROP_POS_FRAMES) and torchcodec; a backend that is not installed or cannot load is
skipped. A clip is 16 indices spread uniformly over a random 3 s window.

Exactness: each backend's random-access frames are compared with the same backend's own full
sequential decode (`own`, pixels must be equal) and, to catch a sequential decode that is itself
shifted, matched to the nearest frame of a plain PyAV sequential decode (`ref`: the frame must
be at least as close to reference frame i as to any other within 64 frames; backends convert
colours slightly differently, so equality is not expected there). `frames reported` is the
count each library gives before decoding; `frames decoded` is PyAV's sequential count.
Timing: `cold` opens the file for every clip (a dataset that opens per sample; PyAV's index
cache is cleared), `warm` reuses the open reader. Results: docs/video.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from microgesture.data import video

CLIP_LEN = 16
WINDOW_S = 3.0
Reader = Callable[[list[int]], np.ndarray]  # indices -> uint8 RGB [N, H, W, 3]


# ----------------------------------------------------------------------------- backends


def pyav_open(path: Path) -> Reader:
    return lambda idx: video.read_frames(path, idx)


def pyav_cold(path: Path) -> Reader:
    video._cache.clear()
    return pyav_open(path)


def decord_open(path: Path) -> Reader:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    return lambda idx: reader.get_batch(idx).asnumpy()


def torchcodec_open(path: Path, mode: str = "exact") -> Reader:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), seek_mode=mode, dimension_order="NHWC")
    return lambda idx: decoder.get_frames_at(idx).data.numpy()


def opencv_open(path: Path) -> Reader:
    import cv2

    cap = cv2.VideoCapture(str(path))
    state = {"pos": 0}

    def read(idx: list[int]) -> np.ndarray:
        got = {}
        for i in sorted(set(idx)):
            if not 0 <= i - state["pos"] <= 8:  # far ahead or behind: seek; near: grab forward
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                state["pos"] = i
            while state["pos"] < i:
                cap.grab()
                state["pos"] += 1
            ok, bgr = cap.read()
            state["pos"] += 1
            if not ok:
                raise RuntimeError(f"OpenCV could not read frame {i}")
            got[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return np.stack([got[i] for i in idx])

    return read


def backends() -> dict[str, tuple[Callable[[Path], Reader], Callable[[Path], Reader]]]:
    """name -> (cold opener, warm opener), for the backends that load here."""
    found = {"pyav": (pyav_cold, pyav_open)}
    for name, opener, module in [
        ("decord", decord_open, "decord"),
        ("opencv", opencv_open, "cv2"),
        ("torchcodec", torchcodec_open, "torchcodec.decoders"),
        ("torchcodec-approx", lambda p: torchcodec_open(p, "approximate"), "torchcodec.decoders"),
    ]:
        try:
            __import__(module)
            found[name] = (opener, opener)
        except Exception as exc:  # ImportError, or torchcodec's OSError without system FFmpeg
            print(f"skipping {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
    return found


def sequential(backend: str, path: Path) -> Iterator[np.ndarray]:
    """Every frame from the start, in order, the way each library reads a file straight through."""
    if backend == "pyav":
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    elif backend == "decord":
        import decord

        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        while True:
            try:
                yield reader.next().asnumpy()
            except StopIteration:
                return
    elif backend == "opencv":
        import cv2

        cap = cv2.VideoCapture(str(path))
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    else:
        from torchcodec.decoders import VideoDecoder

        mode = "approximate" if backend.endswith("approx") else "exact"
        for frame in VideoDecoder(str(path), seek_mode=mode, dimension_order="NHWC"):
            yield frame.numpy()


def reported_count(backend: str, path: Path) -> int:
    """The frame count each library reports without decoding."""
    if backend == "pyav":
        return video.video_info(path).num_frames
    if backend == "decord":
        import decord

        return len(decord.VideoReader(str(path), ctx=decord.cpu(0)))
    if backend == "opencv":
        import cv2

        return int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    from torchcodec.decoders import VideoDecoder

    mode = "approximate" if backend.endswith("approx") else "exact"
    return VideoDecoder(str(path), seek_mode=mode).metadata.num_frames


# ----------------------------------------------------------------------------- measurements


def small(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame[::4, ::4])


def nearest_is(ref_small: np.ndarray, frame: np.ndarray, i: int) -> bool:
    """Is reference frame i (one of) the closest to `frame` among frames i-64..i+64?"""
    lo = max(0, i - 64)
    near = ref_small[lo : i + 65].astype(np.int16)
    dist = np.abs(near - small(frame).astype(np.int16)).mean(axis=(1, 2, 3))
    return bool(dist[i - lo] <= dist.min() + 1e-3)


def sample_clip(rng: np.random.Generator, num_frames: int, fps: float) -> list[int]:
    window = min(num_frames, max(CLIP_LEN, round(WINDOW_S * fps)))
    start = int(rng.integers(0, num_frames - window + 1))
    return [int(i) for i in np.linspace(start, start + window - 1, CLIP_LEN).round()]


def exactness(backend: str, open_reader, path: Path, ref_small: np.ndarray, clips: list[list[int]]) -> str:
    """'own/ref mismatches of checked' (or the error) for one backend."""
    keep = {i for idx in clips for i in idx}
    try:
        own_seq, seen = {}, 0
        for seen, frame in enumerate(sequential(backend, path), start=1):
            if seen - 1 in keep:
                own_seq[seen - 1] = frame
            if seen > max(keep):
                break
    except Exception as exc:
        return f"sequential read fails: {type(exc).__name__}: {str(exc)[:60]}"
    own = bad_ref = checked = 0
    for idx in clips:
        try:
            frames = open_reader(path)(idx)  # fresh reader: the first read is a true random access
        except Exception as exc:
            return f"random access fails: {type(exc).__name__}: {str(exc)[:60]}"
        for i, frame in zip(idx, frames):
            checked += 1
            own += i not in own_seq or not np.array_equal(frame, own_seq[i])
            bad_ref += not nearest_is(ref_small, frame, i)
    return f"{own}/{bad_ref} of {checked}"


def timings(found, path: Path, clips: list[list[int]], seconds: float) -> dict[str, tuple[float, float]]:
    """name -> (cold, warm) clips/s. Backends take turns clip by clip, so a burst of load from
    other processes on a shared machine hits them all alike rather than one of them."""
    warm = {name: openers[1](path) for name, openers in found.items()}
    spent = {name: [0.0, 0.0] for name in found}
    for name in found:
        warm[name](clips[0])  # first read builds indexes; not part of the warm rate
    rounds, start = 0, time.perf_counter()
    while rounds < 3 or time.perf_counter() - start < seconds * len(found):
        clip = clips[rounds % len(clips)]
        for name, (cold, _) in found.items():
            t0 = time.perf_counter()
            cold(path)(clip)
            t1 = time.perf_counter()
            warm[name](clip)
            spent[name][0] += t1 - t0
            spent[name][1] += time.perf_counter() - t1
        rounds += 1
    return {name: (rounds / c, rounds / w) for name, (c, w) in spent.items()}


def synthetic(folder: Path, name: str, n: int, h: int, w: int, fps: float) -> Path:
    """Moving gradients and a moving bar: every frame differs, and compresses like video."""
    y, x = np.mgrid[0:h, 0:w]
    bar = max(8, w // 12)

    def frames():
        for i in range(n):
            a = np.empty((h, w, 3), np.uint8)
            a[..., 0], a[..., 1], a[..., 2] = (x + 3 * i) % 256, (y + 2 * i) % 256, ((x + y) // 4 + i) % 256
            left = (5 * i) % (w - bar)
            a[h // 4 : h // 2, left : left + bar] = 255
            yield a

    path = folder / name
    video.write_video(path, frames(), fps)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--seconds", type=float, default=0.6, help="timing budget per video and backend")
    parser.add_argument("--clips", type=int, default=3, help="random clips checked for exactness per video")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more videos to include")
    args = parser.parse_args()

    found = backends()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"PyAV {av.__version__}, codec for writing: {video.CODEC}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = sorted((args.data / "videos").glob("*")) + sorted((args.data / "smg").glob("*.mp4"))
        paths += [synthetic(Path(tmp), "synthetic_192x144.mp4", 750, 144, 192, 25.0)]
        print(f"synthetic 192x144, 750 frames written in {time.perf_counter() - t:.2f} s")
        paths += [synthetic(Path(tmp), "synthetic_1280x720.mp4", 100, 720, 1280, 25.0)] + args.extra
        rows = []
        for path in paths:
            info = video.video_info(path)
            ref_small = np.stack([small(f) for f in sequential("pyav", path)])
            rng = np.random.default_rng(0)
            clips = [sample_clip(rng, info.num_frames, info.fps) for _ in range(max(args.clips, 8))]
            exact, counts = {}, {}
            for name, (cold, _) in found.items():
                try:
                    counts[name] = str(reported_count(name, path))
                except Exception as exc:
                    counts[name] = type(exc).__name__
                exact[name] = exactness(name, cold, path, ref_small, clips[: args.clips])
            try:
                rates = timings(found, path, clips, args.seconds)
            except Exception as exc:
                print(f"  timing failed on {path.name}: {type(exc).__name__}: {exc}")
                rates = {name: (float("nan"), float("nan")) for name in found}
            for name in found:
                c, w = rates[name]
                size = f"{info.width}x{info.height}"
                rows.append((path.name, size, len(ref_small), name, counts[name], exact[name], c, w))
                print(f"  {path.name:28s} {name:18s} {counts[name]:6s} {exact[name]:16s} cold {c:7.1f}  warm {w:7.1f}",
                      flush=True)
    print_table(rows)


def print_table(rows) -> None:
    print("\n| video | size | frames decoded | backend | frames reported | mismatches own/ref of checked "
          "| clips/s cold | clips/s warm |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, size, n, backend, count, exact, cold, warm in rows:
        print(f"| {name} | {size} | {n} | {backend} | {count} | {exact} | {cold:.1f} | {warm:.1f} |")


if __name__ == "__main__":
    main()
