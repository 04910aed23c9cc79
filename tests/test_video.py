from __future__ import annotations

import contextlib

import av
import cv2
import numpy as np
import pytest

from microgesture.data import video
from microgesture.data.video import VideoInfo, read_frames, video_info, write_video
from microgesture.errors import DataError

H, W, N = 64, 96, 60


def _colour(i: int) -> tuple[int, int, int]:
    """A colour that differs clearly from frame to frame, so a wrong frame is caught."""
    return (40 + (i * 37) % 176, 40 + (i * 91) % 176, 215 - (i * 53) % 176)


def _frames(n: int = N, h: int = H, w: int = W):
    for i in range(n):
        a = np.full((h, w, 3), (200, 60, 100), dtype=np.uint8)
        a[:, : w // 2] = _colour(i)  # frame marker: left half
        yield a


def _marker(frames: np.ndarray) -> np.ndarray:
    """Mean colour inside the left half, away from the edges where chroma blurs."""
    return frames[:, 8:-8, 8 : W // 2 - 8].reshape(len(frames), -1, 3).mean(axis=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    assert write_video(path, _frames(), fps=25) == N
    return path


def _decode_all(path) -> np.ndarray:
    """Independent reference: every frame, decoded in order with plain PyAV."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def sequential(clip):
    return _decode_all(clip)


def test_round_trip_count_and_pixels(clip, sequential):
    assert video_info(clip) == VideoInfo(num_frames=N, fps=25.0, width=W, height=H)
    assert np.array_equal(read_frames(clip, range(N)), sequential)
    assert sequential.shape == (N, H, W, 3) and sequential.dtype == np.uint8
    expected = np.array([_colour(i) for i in range(N)], dtype=float)
    assert np.abs(_marker(sequential) - expected).max() < 6
    assert np.abs(sequential[:, 8:-8, W // 2 + 8 : -8].astype(int) - (200, 60, 100)).max() < 6


def test_random_access_matches_sequential(clip, sequential):
    for i in [0, N - 1, 37, 1, 50, 49, 25]:
        assert np.array_equal(read_frames(clip, [i])[0], sequential[i]), i
    idx = [44, 3, 3, 59, 0, 44, 17]  # unsorted, repeated, across keyframes
    assert np.array_equal(read_frames(clip, idx), sequential[idx])
    assert read_frames(clip, []).shape == (0, H, W, 3)


class _LateSeek:
    """A container whose first seek lands on a later keyframe, as some demuxers do."""

    def __init__(self, container, late_pts):
        self._container, self._late = container, late_pts

    def seek(self, offset, **kwargs):
        offset, self._late = (self._late if self._late is not None else offset), None
        return self._container.seek(offset, **kwargs)

    def __getattr__(self, name):
        return getattr(self._container, name)


def test_seek_landing_late_steps_back(clip, sequential, monkeypatch):
    key_pts = video._index(clip).key_pts
    assert len(key_pts) >= 2
    real_open = video._open

    @contextlib.contextmanager
    def late_open(path):
        with real_open(path) as container:
            yield _LateSeek(container, int(key_pts[-1]))

    monkeypatch.setattr(video, "_open", late_open)
    assert np.array_equal(read_frames(clip, [5, 6]), sequential[[5, 6]])


def test_write_is_deterministic(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_video(a, _frames(20), fps=25)
    write_video(b, _frames(20), fps=25)
    assert a.read_bytes() == b.read_bytes()


def _moving_disc(n: int, size: int):
    for i in range(n):
        a = np.full((size, size, 3), (30, 60, 120), dtype=np.uint8)
        cv2.circle(a, (20 + 3 * i, size // 2), size // 4, (230, 180, 140), -1, cv2.LINE_AA)
        yield a


def test_write_is_deterministic_after_other_writes(tmp_path):
    # x264's macroblock tree made the bytes depend on what the process encoded before.
    first = tmp_path / "first.mp4"
    write_video(first, _moving_disc(30, 112), fps=25)
    for k in range(4):
        write_video(tmp_path / "other.mp4", _frames(10, 72 + 16 * k, 96 + 32 * k), fps=25)
        again = tmp_path / f"again{k}.mp4"
        write_video(again, _moving_disc(30, 112), fps=25)
        assert again.read_bytes() == first.read_bytes(), k


def test_fractional_fps(tmp_path):
    path = tmp_path / "ntsc.mp4"
    write_video(path, _frames(10), fps=30000 / 1001)
    assert video_info(path).fps == pytest.approx(29.97, abs=0.01)
    assert video_info(path).num_frames == 10


def test_mpeg4_fallback_codec(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "CODEC", "mpeg4")
    path = tmp_path / "m.mp4"
    write_video(path, _frames(30), fps=25)
    frames = read_frames(path, range(30))
    assert np.abs(_marker(frames) - [_colour(i) for i in range(30)]).max() < 6
    assert np.array_equal(read_frames(path, [29, 2]), frames[[29, 2]])


def test_failed_write_leaves_previous_file(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _frames(5), fps=25)
    before = path.read_bytes()

    def broken():
        yield from _frames(3)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_video(path, broken(), fps=25)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    with pytest.raises(RuntimeError):
        write_video(tmp_path / "new.mp4", broken(), fps=25)
    assert not (tmp_path / "new.mp4").exists()


def test_write_rejects_bad_frames(tmp_path):
    with pytest.raises(DataError, match="even"):
        write_video(tmp_path / "odd.mp4", _frames(2, h=63), fps=25)
    with pytest.raises(DataError, match="frame 0"):
        write_video(tmp_path / "f.mp4", [np.zeros((8, 8, 3), np.float32)], fps=25)
    mixed = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)]
    with pytest.raises(DataError, match="frame 1"):
        write_video(tmp_path / "m.mp4", mixed, fps=25)
    with pytest.raises(DataError, match="no frames"):
        write_video(tmp_path / "e.mp4", [], fps=25)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_files(tmp_path, clip):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(DataError, match="nope.mp4.*not found"):
        video_info(missing)
    with pytest.raises(DataError, match="not found"):
        read_frames(missing, [0])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DataError, match="junk.mp4"):
        read_frames(junk, [0])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:2000])  # truncated: header only partly there
    with pytest.raises(DataError, match="cut.mp4"):
        read_frames(cut, [0])


def test_index_out_of_range(clip):
    with pytest.raises(DataError, match=rf"frame {N}.*has {N} frames"):
        read_frames(clip, [0, N])
    with pytest.raises(DataError, match="frame -1"):
        read_frames(clip, [-1])
    with pytest.raises(DataError, match="not an integer"):
        read_frames(clip, [1.5])


def test_real_video_random_access(shared_data):
    path = shared_data / "videos" / "tai_chi.mp4"
    info = video_info(path)
    assert (info.num_frames, info.width, info.height) == (300, 340, 256)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    reference = _decode_all(path)
    assert len(reference) == 300
    idx = [299, 250, 0, 249, 251, 1, 120, 250]  # around the keyframe at 250, unsorted, repeated
    assert np.array_equal(read_frames(path, idx), reference[idx])
    for i in [2, 3, 248]:  # B-frames
        assert np.array_equal(read_frames(path, [i])[0], reference[i])
    assert not np.array_equal(reference[249], reference[250])  # neighbours differ: not vacuous
