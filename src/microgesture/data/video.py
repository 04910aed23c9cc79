"""Video files: frame-exact reading of chosen frames, deterministic atomic writing (PyAV).

Frame ``i`` is the i-th frame the decoder shows, in presentation order, counting from 0.
A file's frame index (the presentation timestamp of every frame, and of every keyframe) comes
from one pass over its packets without decoding, and is cached per file. Reading a clip then
seeks to the keyframe before each group of wanted frames and decodes forward, recognising
frames by their timestamp, so B-frames, edit lists and a stream that starts at a non-zero
time do not shift the count. AVI timestamps are unreliable (packed B-frames), so AVI files,
and any stream whose timestamps are missing or repeated, are decoded from the start instead.
Why PyAV and not decord/torchcodec/OpenCV: see docs/video.md.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from microgesture.errors import DataError
from microgesture.utils.io import atomic_path

# libx264 gives small files fast; mpeg4 is in every FFmpeg build.
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
_CACHE_SIZE = 256  # file indexes kept per process: ~8 bytes a frame


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class _Index:
    info: VideoInfo
    pts: np.ndarray | None  # sorted timestamps of frames 0..N-1; None: count frames from the start
    key_pts: np.ndarray  # sorted timestamps of keyframes


_cache: OrderedDict[tuple, _Index] = OrderedDict()


# ----------------------------------------------------------------------------- reading


def video_info(path: str | Path) -> VideoInfo:
    """Frame count (counted from the packets, not the header), frame rate and size."""
    return _index(path).info


def read_frames(path: str | Path, indices: Sequence[int]) -> np.ndarray:
    """Frames `indices` (any order, repeats allowed) of `path` as uint8 RGB [N, H, W, 3]."""
    index = _index(path)
    info = index.info
    wanted = _check_indices(path, indices, info.num_frames)
    if not wanted:
        return np.empty((0, info.height, info.width, 3), dtype=np.uint8)
    targets = sorted(set(wanted))
    with _open(path) as container:
        stream = container.streams.video[0]
        if index.pts is None:
            got = _decode_counting(path, container, stream, targets, info)
        else:
            got = _decode_seeking(path, container, stream, targets, index)
    return np.stack([got[i] for i in wanted])


def iter_frames(
    path: str | Path, *, size: tuple[int, int] | None = None, keep: Callable[[int], bool] | None = None,
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Every frame of `path` in order, as `(index, uint8 RGB [H, W, 3])`, decoded once from the start.

    `size` (width, height) scales while converting (one step, cheaper than converting then
    resizing); `keep(index)` False skips the conversion of that frame (it is still decoded, as
    the codec needs it) and yields `(index, None)`. Indices count decoded frames as `read_frames`
    does. The decoder may use threads; the frames are the same.
    """
    info = video_info(path)
    width, height = size or (info.width, info.height)
    reformatter = VideoReformatter()
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for count, frame in enumerate(_frames(path, container, stream)):
            if keep is not None and not keep(count):
                yield count, None
                continue
            yield count, reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                              interpolation="AREA").to_ndarray()


def decode_all(path: str | Path) -> int:
    """Decode every frame (no conversion), returning the count; DataError at the first frame that
    cannot be decoded. `data validate --decode` uses it to find corrupt data behind a valid header."""
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        for count, _ in enumerate(_frames(path, container, stream), 1):
            pass
    return count


def _check_indices(path: str | Path, indices: Sequence[int], num_frames: int) -> list[int]:
    out = []
    for i in indices:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise DataError(path, f"frame index {i!r} is not an integer")
        if not 0 <= int(i) < num_frames:
            raise DataError(
                path, f"frame {int(i)} requested but the video has {num_frames} frames (0..{num_frames - 1})"
            )
        out.append(int(i))
    return out


def _decode_seeking(path, container, stream, targets: list[int], index: _Index) -> dict[int, np.ndarray]:
    """Decode each run of targets that shares a keyframe from that keyframe onwards."""
    frame_of_pts = {int(index.pts[t]): t for t in targets}
    got: dict[int, np.ndarray] = {}
    reformatter = VideoReformatter()
    for run in _runs(targets, index):
        key_pos = int(np.searchsorted(index.key_pts, index.pts[run[0]], side="right")) - 1
        # A seek may land after the wanted frame (some demuxers seek on decode time): step
        # back a keyframe, twice at most, then start from the beginning.
        for attempt in range(4):
            start = int(index.key_pts[key_pos]) if key_pos >= 0 else None
            first = _decode_run(path, container, stream, start, run, index, frame_of_pts, got, reformatter)
            if first is None or first <= index.pts[run[0]] or key_pos < 0:
                break
            key_pos = key_pos - 1 if attempt < 2 else -1
        missing = [t for t in run if t not in got]
        if missing:
            raise DataError(path, f"frame {missing[0]} could not be decoded", where=f"frame {missing[0]}")
    return got


def _runs(targets: list[int], index: _Index) -> list[list[int]]:
    """Group sorted targets: a new run starts where seeking to a keyframe beats decoding on."""
    if len(index.key_pts) == 0:
        return [targets]
    runs = [[targets[0]]]
    for t in targets[1:]:
        key = index.key_pts[max(int(np.searchsorted(index.key_pts, index.pts[t], side="right")) - 1, 0)]
        if key > index.pts[runs[-1][-1]]:
            runs.append([t])
        else:
            runs[-1].append(t)
    return runs


def _decode_run(path, container, stream, start, run, index, frame_of_pts, got, reformatter) -> int | None:
    """Seek to `start` (None: the beginning), decode to the run's last frame; first pts seen."""
    last = int(index.pts[run[-1]])
    container.seek(start if start is not None else int(index.pts[0]), stream=stream, backward=True)
    first = None
    for frame in _frames(path, container, stream):
        if frame.pts is None:
            raise DataError(path, "a decoded frame has no timestamp; cannot count frames exactly")
        if start is not None and frame.pts < start:
            continue  # leading frames of an open GOP may reference the previous one
        if first is None:
            first = frame.pts
        t = frame_of_pts.get(frame.pts)
        if t is not None and t not in got:
            got[t] = _to_rgb(frame, index.info, reformatter)
        if frame.pts >= last:
            break
    return first


def _decode_counting(path, container, stream, targets: list[int], info: VideoInfo) -> dict[int, np.ndarray]:
    wanted, got = set(targets), {}
    reformatter = VideoReformatter()
    count = 0
    for count, frame in enumerate(_frames(path, container, stream)):
        if count in wanted:
            got[count] = _to_rgb(frame, info, reformatter)
        if count >= targets[-1]:
            return got
    raise DataError(path, f"frame {targets[-1]} requested but only {count + 1} frames could be decoded")


def _frames(path, container, stream) -> Iterator[av.VideoFrame]:
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError as exc:
        raise DataError(path, f"cannot decode video: {exc}") from None


def _to_rgb(frame: av.VideoFrame, info: VideoInfo, reformatter: VideoReformatter) -> np.ndarray:
    # One reformatter per read keeps one scaler (frame.to_ndarray builds one per frame: 3x
    # slower on small frames). Size from the index, so a mid-stream size change cannot break
    # np.stack.
    return reformatter.reformat(frame, width=info.width, height=info.height, format="rgb24").to_ndarray()


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[av.container.InputContainer]:
    if not Path(path).is_file():
        raise DataError(path, "video file not found")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise DataError(path, f"cannot open as a video: {exc}") from None
    try:
        if not container.streams.video:
            raise DataError(path, "file has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg knows no decoder for this codec
            raise DataError(path, "its video codec is not supported by this FFmpeg build (no decoder for it)")
        yield container
    finally:
        container.close()


def _index(path: str | Path) -> _Index:
    try:
        st = os.stat(path)
    except OSError:
        raise DataError(path, "video file not found") from None
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    index = _build_index(path)
    _cache[key] = index
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return index


def _build_index(path: str | Path) -> _Index:
    with _open(path) as container:
        stream = container.streams.video[0]
        pts, keys, trusted = [], [], container.format.name != "avi"
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue  # end-of-stream marker / edit-list priming: never shown
                if packet.pts is None:
                    trusted = False
                    pts.append(len(pts))
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.error.FFmpegError as exc:
            raise DataError(path, f"cannot read video packets: {exc}") from None
        if not pts:
            raise DataError(path, "video stream has no frames")
        sorted_pts = np.sort(np.asarray(pts, dtype=np.int64))
        if len(np.unique(sorted_pts)) != len(sorted_pts):
            trusted = False
        ctx = stream.codec_context
        info = VideoInfo(len(pts), _fps(stream, sorted_pts if trusted else None), ctx.width, ctx.height)
        if not trusted:
            return _Index(info, None, np.zeros(0, dtype=np.int64))
        return _Index(info, sorted_pts, np.asarray(sorted(keys), dtype=np.int64))


def _fps(stream, sorted_pts: np.ndarray | None) -> float:
    """Median frame interval (robust to one odd frame); the header's rate when there is none."""
    if sorted_pts is not None and len(sorted_pts) > 1 and stream.time_base:
        step = float(np.median(np.diff(sorted_pts)))
        return 1.0 / (step * float(stream.time_base))
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


# ----------------------------------------------------------------------------- writing


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, *, crf: int = 20) -> int:
    """Write uint8 RGB frames [H, W, 3] to an MP4 file atomically; returns the number written.

    Byte-deterministic on one PyAV build (single-threaded encoder without the macroblock tree,
    bitexact muxer: no creation time; x264 still records its own version). H.264 4:2:0 needs even width and height: odd sizes raise DataError. `crf` is the
    x264 quality (lower = better and bigger; 20 keeps flat colours within a few levels).
    """
    if not fps > 0:
        raise DataError(path, f"fps must be positive, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path, suffix=".mp4") as tmp:
        container = av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"})
        try:
            count = _encode_all(path, container, frames, rate, crf)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the first error, not a failed close
                container.close()
            raise
        container.close()
    return count


def _encode_all(path, container, frames: Iterable[np.ndarray], rate: Fraction, crf: int) -> int:
    stream = None
    shape = None
    count = 0
    for count, array in enumerate(frames, start=1):
        array = np.asarray(array)
        if shape is None:
            shape = _check_first_frame(path, array)
            stream = _add_stream(container, rate, shape, crf)
        elif array.shape != shape or array.dtype != np.uint8:
            raise DataError(
                path, f"frame is {array.dtype} {array.shape}, expected uint8 {shape} like frame 0",
                where=f"frame {count - 1}",
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        frame.pts = count - 1
        container.mux(stream.encode(frame))
    if stream is None:
        raise DataError(path, "no frames to write")
    container.mux(stream.encode(None))
    return count


def _check_first_frame(path, array: np.ndarray) -> tuple[int, ...]:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise DataError(path, f"frame is {array.dtype} {array.shape}, expected uint8 [H, W, 3] RGB", where="frame 0")
    h, w = array.shape[:2]
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise DataError(path, f"frame size {w}x{h} must have even width and height (pad or crop)", where="frame 0")
    return array.shape


def _add_stream(container, rate: Fraction, shape: tuple[int, ...], crf: int):
    if CODEC == "libx264":
        # No macroblock tree: with it, x264 (in PyAV's build) writes bytes that vary from run to
        # run in one process for most frame sizes (112x112, 192x144; 128 wide was stable).
        options = {"preset": "veryfast", "crf": str(crf), "x264-params": "no-mbtree=1"}
    else:  # constant quality q=3 (FFmpeg's lambda units: 118 per q step)
        options = {"flags": "+qscale", "global_quality": str(3 * 118)}
    stream = container.add_stream(CODEC, rate=rate, options=options)
    stream.height, stream.width = shape[0], shape[1]
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, 1) / rate
    stream.codec_context.time_base = stream.time_base
    stream.codec_context.gop_size = max(1, round(2 * float(rate)))  # a keyframe every ~2 s
    stream.codec_context.thread_count = 1  # multi-threaded encoders are not byte-deterministic
    return stream
