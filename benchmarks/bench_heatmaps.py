"""Heatmap volume generation speed (data/transforms/heatmap.py): frames/s, vectorised vs loops.

    nice -n 10 python benchmarks/bench_heatmaps.py [--quick] [--threads 1] [--json OUT]

For each layout and channel set (COCO-17 joints, as PoseC3D's checkpoints read; iMiGUE-22 and
MiGA-35 joints + limbs) at T x 56 x 56: `HeatmapVolume` (vectorised over frames, joints and
pixels) against a loop baseline that draws each joint and limb of each frame in a window of
+-3 sigma around it, the way the reference implementations do (our own code, for the ratio).
Both run interleaved on the same clips (A B A B ...); the table gives median frames/s and the
ratio, which is what to trust on a busy machine. Then the whole test pipeline (sampling,
Normalize, box, volume) in clips/s. Clips: a seated person (MiGA-35 template, lower body
undetected as in iMiGUE) moving at random, 200 x 160 px.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import busy_note, describe, machine  # noqa: E402

from microgesture.data.formats.annotations import make_clip  # noqa: E402
from microgesture.data.transforms.heatmap import HeatmapVolume, PersonBox, limb_pairs, pixel_keypoints  # noqa: E402
from microgesture.data.transforms.pipelines import HeatmapInput, build_pipeline  # noqa: E402
from microgesture.data.transforms.geometry import SelectLayout  # noqa: E402
from microgesture.domain.layouts import get_layout  # noqa: E402
from microgesture.utils.io import write_text  # noqa: E402

SIZE = 56
CASES = (("coco17", True, False), ("imigue22", True, True), ("miga35", True, True))


def random_clip(rng: np.random.Generator, frames: int, index: int) -> dict:
    """A seated person (MiGA-35) whose arms and head wander; the lower body undetected."""
    template = np.zeros((35, 2))
    template[:8] = [[100, 40], [100, 60], [80, 62], [72, 85], [78, 105], [120, 62], [128, 85], [122, 105]]
    template[15:19] = [[95, 36], [105, 36], [90, 38], [110, 38]]
    template[25:30] = [[70 + 3 * k, 112] for k in range(5)]
    template[30:35] = [[118 + 3 * k, 112] for k in range(5)]
    walk = np.cumsum(rng.normal(0, 1.5, (frames, 35, 2)), axis=0)
    kp = template + walk + rng.normal(0, 0.5, (frames, 35, 2))
    score = rng.uniform(0.4, 1.0, (frames, 35))
    lower = [8, 9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23, 24]
    kp[:, lower], score[:, lower] = 0, 0
    return make_clip(frame_dir=f"bench_{index}", label=0, keypoint=kp, keypoint_score=score, img_shape=(160, 200),
                     layout="miga35")


def loop_volume(sample: dict, size: int, sigma: float, joints: bool, limbs: bool) -> np.ndarray:
    """The loop baseline: one window of +-3 sigma per joint and per limb of every frame."""
    kp, score = pixel_keypoints(sample)
    x0, y0, side = sample["heatmap_box"]
    uv = (kp - [x0, y0]) * (size / side) - 0.5
    pairs = limb_pairs(get_layout(sample["layout"])) if limbs else ()
    num_joints = kp.shape[-2] if joints else 0
    out = np.zeros((num_joints + len(pairs), kp.shape[1], size, size), np.float32)
    reach = 3 * sigma
    for m in range(kp.shape[0]):
        for t in range(kp.shape[1]):
            for v in range(num_joints):
                if score[m, t, v] > 0:
                    _window(out[v, t], [uv[m, t, v]], [uv[m, t, v]], score[m, t, v], reach, sigma)
            for k, (a, b) in enumerate(pairs):
                w = min(score[m, t, a], score[m, t, b])
                if w > 0:
                    _window(out[num_joints + k, t], [uv[m, t, a]], [uv[m, t, b]], w, reach, sigma)
    return out


def _window(plane: np.ndarray, start, end, weight: float, reach: float, sigma: float) -> None:
    a, b = np.asarray(start[0], np.float32), np.asarray(end[0], np.float32)
    lo = np.maximum(np.floor(np.minimum(a, b) - reach), 0).astype(int)
    hi = np.minimum(np.ceil(np.maximum(a, b) + reach) + 1, plane.shape[::-1]).astype(int)
    if (hi <= lo).any():
        return
    xs = np.arange(lo[0], hi[0], dtype=np.float32)[None, :]
    ys = np.arange(lo[1], hi[1], dtype=np.float32)[:, None]
    e = b - a
    t = np.clip(((xs - a[0]) * e[0] + (ys - a[1]) * e[1]) / max(float(e @ e), 1e-6), 0, 1)
    d2 = (xs - a[0] - t * e[0]) ** 2 + (ys - a[1] - t * e[1]) ** 2
    patch = plane[lo[1]:hi[1], lo[0]:hi[0]]
    np.maximum(patch, weight * np.exp(-d2 / (2 * sigma**2)), out=patch)


def interleaved(fns: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each function, called in turn (A B A B ...) after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_volumes(clips: list[dict], frames: int, rounds: int) -> list[dict]:
    rows = []
    for layout, joints, limbs in CASES:
        boxed = [PersonBox()(SelectLayout(layout)(dict(c))) for c in clips]
        volume = HeatmapVolume(size=SIZE, joints=joints, limbs=limbs)
        check = volume(dict(boxed[0]))["heatmap"]
        np.testing.assert_allclose(loop_volume(boxed[0], SIZE, 0.6, joints, limbs), check, atol=1.2e-2)  # same maps
        secs = interleaved({
            "vectorised": lambda: [volume(dict(b)) for b in boxed],
            "loops": lambda: [loop_volume(b, SIZE, 0.6, joints, limbs) for b in boxed],
        }, rounds)
        n = len(boxed) * frames
        rows.append({"layout": layout, "channels": check.shape[0], "what": "joints" + (" + limbs" if limbs else ""),
                     "vectorised_fps": n / secs["vectorised"], "loops_fps": n / secs["loops"],
                     "speedup": secs["loops"] / secs["vectorised"]})
    return rows


def bench_pipeline(clips: list[dict], frames: int, rounds: int) -> list[dict]:
    rows = []
    for layout, joints, limbs in CASES:
        pipeline = build_pipeline(["heatmap"], layout=layout, num_frames=frames, train=False,
                                  heatmap=HeatmapInput(size=SIZE, joints=joints, limbs=limbs))
        secs = interleaved({"pipeline": lambda: [pipeline(dict(c)) for c in clips]}, rounds)["pipeline"]
        rows.append({"layout": layout, "what": "joints" + (" + limbs" if limbs else ""), "clips_per_s": len(clips) / secs})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 clips of 16 frames, 3 rounds (a smoke run)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (numpy here uses one core)")
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args()
    frames, count, rounds = (16, 4, 3) if a.quick else (a.frames, a.clips, a.rounds)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    clips = [random_clip(rng, frames, i) for i in range(count)]
    m = machine()
    print(describe(m) + busy_note(m))
    volumes = bench_volumes(clips, frames, rounds)
    print(f"\nHeatmap volumes, {frames} x {SIZE} x {SIZE}, {count} clips, median of {rounds} interleaved rounds")
    print("| layout | channels | drawn | vectorised frames/s | loop frames/s | speed-up |\n|---|---|---|---|---|---|")
    for r in volumes:
        print(f"| {r['layout']} | {r['channels']} | {r['what']} | {r['vectorised_fps']:,.0f} | {r['loops_fps']:,.0f} "
              f"| {r['speedup']:.1f}x |")
    pipeline = bench_pipeline(clips, frames, rounds)
    print(f"\nWhole test pipeline (sample {frames} frames, SelectLayout, Normalize, PersonBox, HeatmapVolume)")
    print("| layout | drawn | clips/s |\n|---|---|---|")
    for r in pipeline:
        print(f"| {r['layout']} | {r['what']} | {r['clips_per_s']:,.1f} |")
    if a.json:
        write_text(a.json, json.dumps({"machine": m, "volumes": volumes, "pipeline": pipeline}, indent=2))


if __name__ == "__main__":
    main()
