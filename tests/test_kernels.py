"""Gradients on the CPU kernels most users have: every shipped config's model, the demo's, and the light
face encoder at widths 4-16, one step with oneDNN's AVX2 (and AVX-512) kernels against torch's own.

oneDNN picks kernels by instruction set, so this machine (AMX) is told to use the AVX2 ones with
ONEDNN_MAX_CPU_ISA. Each check runs in a subprocess with a timeout: the broken kernel these tests
guard against (oneDNN issue 6035, strided 1x1 convolutions below 8 input channels) hangs or crashes
as often as it returns wrong gradients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

# oneDNN's gradients differ from torch's by float rounding (at most ~5e-3 measured, on a batch-norm
# bias); the broken kernel's are off by 0.5 to 13 times the gradient.
TOLERANCE = 0.05
ISAS = ("AVX2", "AVX512_CORE")
SMALL = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*/*.yaml") if p.parent.name != "imigue")
IMIGUE = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs" / "imigue").glob("*.yaml"))


def check(args: list[str], isa: str, timeout: float) -> list[dict]:
    """kernel_check's results for ARGS under oneDNN's ISA kernels; a hang or crash fails the test."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "microgesture.train.kernel_check", *args]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        done = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"{isa}: no result after {timeout:.0f} s (a hung kernel); finished before it:\n{done}")
    assert proc.returncode == 0, f"{isa}: exited {proc.returncode} (a crashed kernel?)\n{proc.stderr[-3000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def assert_close(results: list[dict], expected: int) -> None:
    assert len(results) == expected, results
    bad = [r for r in results if r["max_rel_diff"] > TOLERANCE]
    assert not bad, "weight gradients differ from torch's own kernels:\n" + "\n".join(map(json.dumps, bad))


@pytest.mark.parametrize("isa", ISAS)
def test_light_face_widths(isa):
    widths = list(range(4, 17))
    vary = "model.streams.face.width=" + ",".join(map(str, widths))
    assert_close(check(["configs/synthetic/emotion_face.yaml", "--vary", vary], isa, 300), len(widths))


@pytest.mark.parametrize("isa", ISAS)
def test_demo_emotion_model(isa, tmp_path: Path):
    from microgesture.apps.emotion_demo import emotion_demo_config
    from microgesture.typed_config import to_dict

    path = tmp_path / "demo_emotion.yaml"
    path.write_text(yaml.safe_dump(to_dict(emotion_demo_config(tmp_path / "data", 1, 0))))
    assert_close(check([str(path), "--batch", "16"], isa, 300), 1)


@pytest.mark.parametrize("isa", ISAS)
def test_small_configs(isa):
    """The synthetic and SMG configs: the small widths where the broken kernels live."""
    assert_close(check(SMALL, isa, 600), len(SMALL))


@pytest.mark.full_size
@pytest.mark.parametrize("isa", ISAS)
def test_imigue_configs(isa):
    """Full-size models (MViTv2-S, SwinFace, PoseC3D, CMTF over them): about 5 minutes of one core
    each, so `make test` leaves them to `make test-kernels`."""
    assert_close(check(IMIGUE, isa, 1500), len(IMIGUE))
