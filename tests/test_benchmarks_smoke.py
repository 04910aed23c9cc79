"""Smoke runs of the benchmark scripts (--quick): they finish, and their tables have the right rows.

Timings are never asserted; only that each figure is a positive finite number.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import run_script


def table_rows(stdout: str) -> list[list[str]]:
    """Cells of the markdown table rows, header and separator left out."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:] if "---" not in line]


def positive(text: str) -> bool:
    value = float(text.replace(",", ""))
    return math.isfinite(value) and value > 0


def test_bench_data_quick(tmp_path: Path) -> None:
    out = run_script("bench_data.py", "--quick", "--data", str(tmp_path / "data"), "--json", str(tmp_path / "d.json"))
    assert "machine: " in out and "load average" in out
    rows = {(r[0], r[1]): r for r in table_rows(out)}
    expected = [
        ("pipeline", "train joint miga35 T=32"), ("pipeline", "train bone miga35 T=32"),
        ("pipeline", "test joint miga35 T=32"), ("pipeline", "test bone miga35 T=32"),
        ("loader", "DataLoader workers=0 batch=16 train joint"),
        ("loader", "DataLoader workers=2 batch=16 train joint"),
        ("rgb", "read_frames 16f 192x144 cold"), ("rgb", "read_frames 16f 192x144 warm"),
    ]
    for key in expected:
        assert key in rows, f"missing row {key}; rows: {sorted(rows)}"
        assert positive(rows[key][2]), rows[key]
    assert any(section == "annotations" and positive(r[2]) for (section, _), r in rows.items())
    report = json.loads((tmp_path / "d.json").read_text())
    assert {r["section"] for r in report["rows"]} == {"annotations", "pipeline", "loader", "rgb"}
    assert report["machine_start"]["cores"] >= 1 and len(report["machine_start"]["loadavg"]) == 3


def test_bench_models_quick(tmp_path: Path) -> None:
    out = run_script("bench_models.py", "--quick", "--json", str(tmp_path / "m.json"))
    rows = {r[0]: r for r in table_rows(out)}
    assert set(rows) == {"agcn-c16-miga35-T32", "light_rgb-w32", "cmtf-light+agcn32"}
    for name, r in rows.items():
        params, train, infer = r[3], r[4], r[5]
        assert positive(params) and positive(train) and positive(infer), r
    from microgesture.models.agcn import build_agcn

    expected = sum(p.numel() for p in build_agcn(32, "miga35", base_channels=16).parameters())
    assert int(rows["agcn-c16-miga35-T32"][3].replace(",", "")) == expected
    report = json.loads((tmp_path / "m.json").read_text())
    assert [r["model"] for r in report["rows"]] == list(rows)
    assert all(r["threads"] == 1 for r in report["rows"])
    # --quick measures every model in one process: memory only for the first
    assert [r["train_peak_mib"] is not None for r in report["rows"]] == [True, False, False]
    assert report["rows"][0]["train_peak_mib"] > 0


def test_bench_models_lists_every_model() -> None:
    names = {line.split()[0] for line in run_script("bench_models.py", "--list").splitlines()}
    agcn = {f"agcn-c{w}-{lay}-T{t}" for w in (64, 32, 16) for lay in ("miga35", "imigue22") for t in (32, 64)}
    assert agcn | {"light_rgb-w32", "mvit_v2_s", "cmtf-mvit+agcn64", "cmtf-light+agcn32"} == names


def test_bench_scale_quick(tmp_path: Path) -> None:
    """Two tiny sizes through every stage (import, load, capped training, evaluation, online)."""
    out = run_script("bench_scale.py", "--quick", "--out", str(tmp_path / "s"), "--json", str(tmp_path / "s.json"),
                     "--md", str(tmp_path / "s.md"), "--plot", str(tmp_path / "s.png"), timeout=900)
    assert "machine: " in out
    rows = {r[0]: r for r in table_rows(out) if r[0] in ("q1", "q2")}
    assert set(rows) == {"q1", "q2"}
    report = json.loads((tmp_path / "s.json").read_text())
    assert [r["size"] for r in report["rows"]] == ["q1", "q2"]
    for r in report["rows"]:
        assert r["load"]["clips"] == r["generate"]["clips_written"] == r["clips"]  # every label row became a clip
        assert sum(r["load"]["splits"].values()) == r["clips"]
        for stage in ("import", "load", "evaluate", "windows", "online"):
            assert r[stage]["seconds"] > 0 and r[stage]["peak_mib"] > 0, (stage, r[stage])
        t = r["train"]
        assert t["steps"] == 1 and t["train_clips"] == r["load"]["splits"]["train"]
        assert t["batches_per_epoch"] == math.ceil(t["train_clips"] / 16)
        assert t["data_epoch_s"] > 0 and t["model_over_data"] > 0 and 0 <= t["wait_share"] <= 1
        assert r["evaluate"]["clips"] == r["load"]["splits"]["test"]
        assert r["online"]["frames"] == r["online_frames"] and r["online"]["windows"] > 0
    assert report["rows"][1]["online"]["frames"] == 2 * report["rows"][0]["online"]["frames"]
    for stage, e in report["exponents"].items():
        assert math.isfinite(e["seconds"]), stage
    assert {g["goal"] for g in report["goals"]} >= {"import: time exponent <= 1.1",
                                                    "q2: data path >= 3x faster than the model"}
    assert (tmp_path / "s.md").read_text().startswith("| size |")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_emotion_quick(tmp_path: Path) -> None:
    out = run_script("bench_emotion.py", "--quick", "--threads", "1", "--json", str(tmp_path / "e.json"))
    rows = {r[0]: r for r in table_rows(out)}
    assert set(rows) == {"light_face-w16-T16-64", "interfusion-light"}
    for r in rows.values():
        assert positive(r[3]) and positive(r[4]) and positive(r[5]) and positive(r[6]), r
    from microgesture.models.light_face import build_light_face

    expected = sum(p.numel() for p in build_light_face(32, width=16).parameters())
    assert int(rows["light_face-w16-T16-64"][3].replace(",", "")) == expected
    report = json.loads((tmp_path / "e.json").read_text())
    assert all(r["train_peak_mib"] > 0 for r in report["rows"])  # one process per model: memory for each


def test_bench_analyze_quick(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("mediapipe")
    out = run_script("bench_analyze.py", "--quick", "--json", str(tmp_path / "a.json"))
    rows = {r[0]: r for r in table_rows(out) if r[0].startswith("stride")}
    assert set(rows) == {"stride 2, 640 px, hands every 2nd (default)", "stride 2, 640 px, no hands"}
    for r in rows.values():
        assert positive(r[1]) and positive(r[2])
    report = json.loads((tmp_path / "a.json").read_text())
    assert set(report["end_to_end"]["wall"]) == {"decode", "pose", "hands/face", "recognition", "report"}
    assert report["rows"][0]["upper_body_px"] < 40  # the drawn person's joints are found where they are


def test_bench_vs_mmaction2_our_side_alone(tmp_path: Path) -> None:
    """Without --mm-python the side-by-side benchmark measures our side; FLOPs and GEMM share included."""
    out = run_script("bench_vs_mmaction2.py", "--quick", "--threads", "1", "--json", str(tmp_path / "v.json"))
    assert "measuring our side only" in out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["gemm_peak_gflops"] > 0 and "mmaction2" not in report["flops"]
    flops = report["flops"]["ours"]
    assert flops["train"] > 2 * flops["infer"] > 0  # backward costs about twice the forward
    for phase in ("infer", "train"):
        ours = report["phases"][phase]["ours"]
        assert ours["clips_per_s"] > 0 and ours["gflops"] > 0 and ours["of_gemm_peak"] > 0
    assert out.count("GFLOP a step") == 2 and "of the float32 GEMM peak" in out


GPU_CHECK_SKIPPED = {("models", "mvit_v2_s"), ("models", "swinface")}  # fixed input sizes: left out by --quick


def test_gpu_check_quick_on_cpu(tmp_path: Path) -> None:
    """`make gpu-check`'s checks at tiny sizes on the CPU: the same code paths as on a GPU."""
    out = run_script("gpu_check.py", "--device", "cpu", "--quick", "--workdir", str(tmp_path / "work"),
                     "--json", str(tmp_path / "g.json"))
    report = json.loads((tmp_path / "g.json").read_text())
    results = {(r["check"], r["name"]): r for r in report["results"]}
    assert report["passed"] and report["checks"] == ["models", "autograd", "resume", "ddp", "demo", "speed"]
    assert {k for k, r in results.items() if r["status"] == "SKIP"} == GPU_CHECK_SKIPPED
    assert all(r["status"] == "PASS" for k, r in results.items() if k not in GPU_CHECK_SKIPPED), results
    models = {name for check, name in results if check == "models"}
    assert models == {"light_rgb", "light_face", "posec3d", "mvit_v2_s", "swinface", "agcn", "cmtf", "interfusion"}
    for name in models - {n for _, n in GPU_CHECK_SKIPPED}:
        f = results["models", name]["figures"]
        assert f["grads_finite"] and f["params_with_grad"] == f["params"], name  # nothing frozen, every gradient
        assert f["grad_rel_err"] < 1e-6 and f["bf16_grad_cosine"] > 0.5, (name, f)  # CPU against CPU here
        assert f["fp32_ms"] > 0 and f["bf16_ms"] > 0
    assert results["models", "interfusion"]["figures"]["bags"] == 2  # bags of clips, attention over them
    assert all(results["autograd", "gradcheck_fp64"]["figures"]["variants"].values())
    resume = results["resume", "32-true"]["figures"]
    assert resume["bit_exact"] and resume["resumed_steps"] == resume["steps"]
    assert resume["checkpoint_step_at_interrupt"] < resume["interrupted_at_step"] < resume["steps"]
    ddp = results["ddp", "ddp_devices_1"]["figures"]
    assert (ddp["strategy"], ddp["backend"], ddp["world_size"]) == ("DDPStrategy", "gloo", 1)
    assert ddp["global_step"] == resume["steps"] and ddp["max_abs_diff_vs_plain_fit"] == 0  # one process: no change
    demo = results["demo", "skeleton_streams"]["figures"]
    assert set(demo["devices"].values()) == {"cpu"} and 0 <= demo["top1"]["2s-AGCN joint+bone (1:1)"] <= 1
    for name in ("agcn_none", "posec3d"):
        assert results["speed", name]["figures"]["mmaction2"].startswith("skipped")
    assert results["speed", "agcn_none"]["figures"]["train"]["ours"]["clips_per_s"] > 0
    assert results["speed", "posec3d"]["figures"]["variants"]["ours-fp32"]["infer_clips_per_s"] > 0
    assert "gpu-check: 13 passed, 2 skipped, 0 failed" in out and "MMAction2 skipped" in out


def test_gpu_check_without_a_gpu_says_so_in_one_line_and_succeeds() -> None:
    import os
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "no CUDA device found" in proc.stdout


def test_gpu_check_exits_non_zero_when_a_check_fails(tmp_path: Path, monkeypatch) -> None:
    import importlib.util
    import sys

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", gpu_check)  # its dataclasses look their module up
    spec.loader.exec_module(gpu_check)
    broken = [gpu_check.Result("autograd", "gradcheck_fp64", gpu_check.FAIL, "gradcheck failed: no bias")]
    monkeypatch.setattr(gpu_check, "check_autograd", lambda ctx: broken)
    assert gpu_check.main(["--device", "cpu", "--only", "autograd", "--workdir", str(tmp_path / "w"),
                           "--json", str(tmp_path / "g.json")]) == 1
    report = json.loads((tmp_path / "g.json").read_text())
    assert not report["passed"] and report["results"][0]["status"] == "FAIL"
