"""Smoke runs of the crop benchmark and the fusion ablation (--quick): they finish and print their rows.

Timings and accuracies are never asserted; only that each figure is a finite number in range.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def rows(stdout: str) -> dict[str, list[str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {" ".join(c[:2]) if c[0] in ("extract", "train") else c[0]: c for c in cells}


@pytest.mark.slow
def test_bench_crops_quick(tmp_path):
    out = rows(run("bench_crops.py", "--quick", "--data", str(tmp_path / "data"), "--threads", "1"))
    for key in ("extract whole frame 8x96x96", "extract crops 8x96x96 (tiles 48)",
                "extract crops 16x224x224 (tiles 112)", "train crops 8x96x96, light w16",
                "train whole frame 8x96x96, light w16"):
        assert key in out, sorted(out)
        rate = float(out[key][2].split()[0])
        assert math.isfinite(rate) and rate > 0


@pytest.mark.slow
def test_fusion_ablation_quick(tmp_path):
    out = rows(run("fusion_ablation.py", "--quick", "--out", str(tmp_path / "ablation")))
    for title in ("RGB full frame (light w16, 8x96x96)", "RGB crops (light w16, 8x2x2x48)", "2s-AGCN joint",
                  "2s-AGCN bone", "late fusion joint+bone (1:1)", "CMTF joint+crops (cached)",
                  "CMTF joint+bone+crops (cached)", "CMTF joint+bone, no RGB (cached; control)"):
        assert title in out, sorted(out)
        top1 = float(out[title][1].split(" ± ")[0])
        assert 0.0 <= top1 <= 100.0
    assert (tmp_path / "ablation" / "ablation.md").is_file()
    assert (tmp_path / "ablation" / "seed0" / "results.json").is_file()


def test_fusion_ablation_rows_train_only_what_they_read():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fusion_ablation", REPO / "benchmarks" / "fusion_ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    assert ablation._needed(["cmtf_skeleton"]) == {"cmtf_skeleton", "joint", "bone"}
    assert ablation._needed(["cmtf"]) == {"cmtf", "joint", "rgb_crops"}
    assert ablation._needed(["late_all"]) == {"late_all", "joint", "bone", "rgb_crops"}
    assert ablation._needed(["rgb"]) == {"rgb"}
    assert ablation._needed(None) == set(ablation.ROWS)
