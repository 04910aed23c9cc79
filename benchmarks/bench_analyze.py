"""Speed of `microgesture analyze` on a 1280x720 video: stages (decode, pose, hands/face,
recognition, report), end-to-end frames/s, and what the extraction settings cost and give.

The video is a drawn person from the synthetic generator rendered at 1280x720 (its true joints
are known, so each setting's accuracy is measured too), or `--video PATH`. Extraction settings
are run interleaved, `--repeats` times each, and the median is reported; wall-clock seconds on a
shared machine are noisy (compare rows of one run, and read the load average printed with it).
CPU seconds (all threads of the process) are printed beside them: on a machine shared with other
jobs they say what the work costs, and frames / CPU seconds is the rate one free core would reach. Recognition uses a
2s-AGCN of the online config's size with untrained weights: its speed does not depend on them.

    python benchmarks/bench_analyze.py --seconds 20 --repeats 2 --json runs/bench_analyze.json
    python benchmarks/bench_analyze.py --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from microgesture.apps.analyze import AnalyzeOptions, analyze_video
from microgesture.apps.online import untrained_online_model
from microgesture.data.pose.extract import ExtractOptions, extract_video
from microgesture.data.synth.generate import synth_video
from microgesture.data.synth.schedule import plan_dataset
from microgesture.data.video import write_video
from microgesture.domain.classes import IMIGUE_CLASSES
from microgesture.domain.layouts import MIGA35
from microgesture.data.windows import BACKGROUND

SETTINGS = {
    "every frame, 1280 px, hands every frame": ExtractOptions(stride=1, max_side=1280, hands="always", hands_every=1),
    "every frame, 640 px, hands every 2nd": ExtractOptions(stride=1, max_side=640),
    "stride 2, 640 px, hands every processed frame": ExtractOptions(stride=2, max_side=640, hands_every=1),
    "stride 2, 640 px, hands every 2nd (default)": ExtractOptions(stride=2, max_side=640),
    "stride 2, 960 px, hands every 2nd": ExtractOptions(stride=2, max_side=960),
    "stride 3, 640 px, hands every 2nd": ExtractOptions(stride=3, max_side=640),
    "stride 2, 640 px, no hands": ExtractOptions(stride=2, max_side=640, hands="off"),
}
UPPER = [MIGA35.index(n) for n in ("nose", "neck", "r_shoulder", "l_shoulder", "r_elbow", "l_elbow", "r_wrist",
                                   "l_wrist", "r_eye", "l_eye")]
TIPS = list(range(25, 35))


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.date.today().isoformat(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "loadavg": [round(v, 2) for v in os.getloadavg()]}


def make_video(path: Path, seconds: float) -> np.ndarray:
    """Render a drawn person at 1280x720, 25 frames/s; returns the true joints [T, 35, 2]."""
    plan = plan_dataset(0, 1, 1, max(seconds, 4.0))[0]
    sv = synth_video(plan, 0, (1280, 720))
    n = int(seconds * sv.fps)
    write_video(path, (f for _, f in zip(range(n), sv.frames())), sv.fps)
    return sv.geometry.joints[:n]


def accuracy(joints: np.ndarray, truth: np.ndarray | None) -> dict:
    if truth is None:
        return {}
    n = min(len(joints), len(truth))
    j, t = joints[:n], truth[:n]
    seen = j[:, UPPER, 2] > 0
    err = np.linalg.norm(j[:, UPPER, :2] - t[:, UPPER], axis=-1)[seen]
    tips_seen = j[:, TIPS, 2] > 0
    tip_err = np.linalg.norm(j[:, TIPS, :2] - t[:, TIPS], axis=-1)[tips_seen]
    return {"upper_body_px": float(np.median(err)) if err.size else None, "upper_body_found": float(seen.mean()),
            "fingertips_px": float(np.median(tip_err)) if tip_err.size else None,
            "fingertips_found": float(tips_seen.mean())}


def run_setting(video: Path, options: ExtractOptions) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    ex = extract_video(video, options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames": ex.num_frames, "wall": wall, "cpu": cpu, **ex.timings, "joints": ex.joints("miga35")}


def untrained_model():
    config = Path(__file__).resolve().parents[1] / "configs" / "synthetic" / "online_agcn.yaml"
    return untrained_online_model(config, list(IMIGUE_CLASSES) + [BACKGROUND])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=None, help="a video of your own (default: a drawn person, 1280x720)")
    p.add_argument("--seconds", type=float, default=12.0, help="length of the drawn video")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--settings", nargs="*", default=None, help="names of SETTINGS rows to run (default: all)")
    p.add_argument("--quick", action="store_true", help="3 s of video, 2 settings, 1 repeat")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    start = machine()
    names = a.settings or list(SETTINGS)
    if a.quick:
        a.seconds, a.repeats = 3.0, 1
        names = ["stride 2, 640 px, hands every 2nd (default)", "stride 2, 640 px, no hands"]
    with tempfile.TemporaryDirectory() as tmp:
        video, truth = a.video, None
        if video is None:
            video = Path(tmp) / "drawn_1280x720.mp4"
            truth = make_video(video, a.seconds)
        runs: dict[str, list[dict]] = {n: [] for n in names}
        for _ in range(a.repeats):  # interleaved, so a load change hits every setting alike
            for name in names:
                runs[name].append(run_setting(video, SETTINGS[name]))
        rows = []
        print(f"machine: {start['cpu']}, {start['cores']} cores, load average {start['loadavg']}, {start['date']}")
        print("\n| setting | frames/s (wall) | CPU ms/frame | decode | pose | hands | faces | upper-body error px"
              " | fingertips found |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in names:
            med = {k: float(np.median([r[k] for r in runs[name]])) for k in ("wall", "cpu", "decode", "pose", "hands",
                                                                           "faces")}
            frames = runs[name][0]["frames"]
            acc = accuracy(runs[name][0]["joints"], truth)
            row = {"setting": name, "frames": frames, "fps": frames / med["wall"], "cpu_ms_per_frame":
                   1000 * med["cpu"] / frames, **{k: med[k] for k in ("decode", "pose", "hands", "faces")}, **acc}
            rows.append(row)
            upper = f"{acc['upper_body_px']:.1f}" if acc.get("upper_body_px") is not None else "-"
            tips = f"{acc['fingertips_found']:.2f}" if acc else "-"
            print(f"| {name} | {row['fps']:.1f} | {row['cpu_ms_per_frame']:.1f} | {med['decode']:.2f} | "
                  f"{med['pose']:.2f} | {med['hands']:.2f} | {med['faces']:.2f} | {upper} | {tips} |")
        model = untrained_model()
        analysis = analyze_video(video, model, Path(tmp) / "analysis", options=AnalyzeOptions(), progress=False)
        stages, cpu = analysis.timings, analysis.cpu_timings
        keys = ("decode", "pose", "hands/face", "recognition", "report")
        print(f"\nend to end (analyze, default settings, {analysis.num_frames} frames):")
        print("| | " + " | ".join(keys) + " | total | frames/s |")
        print("| --- |" + " --- |" * (len(keys) + 2))
        for label, table in (("wall-clock s", stages), ("CPU s", cpu)):
            total = sum(table[k] for k in keys)
            print(f"| {label} | " + " | ".join(f"{table[k]:.2f}" for k in keys)
                  + f" | {total:.2f} | {analysis.num_frames / total:.1f} |")
    end = machine()
    print(f"\nload average at the end {end['loadavg']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"machine_start": start, "machine_end": end, "rows": rows,
                                      "end_to_end": {"wall": stages, "cpu": cpu, "frames": analysis.num_frames}},
                                     indent=2))


if __name__ == "__main__":
    main()
