"""Export of trained skeleton models (TorchScript, ONNX): the exported file computes what the eager model does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from microgesture.apps.export import export_model, random_streams
from microgesture.cli import main
from microgesture.errors import ConfigError
from microgesture.train.config import load_config
from microgesture.train.run import fit, load_module

pytestmark = pytest.mark.slow  # trains a two-stream model first


@pytest.fixture(scope="module")
def two_stream_run(tiny_annotations, tmp_path_factory):
    """A trained joint + bone model (late fusion), one epoch: two inputs, one output."""
    overrides = [o for o in tiny_overrides(tiny_annotations, epochs=1) if not o.startswith("model.")] + [
        f"model.streams.{s}.{key}" for s in ("joint", "bone") for key in ("encoder=agcn", "base_channels=8")
    ] + ["model.fusion.kind=late"]
    cfg = load_config(None, overrides)
    run = fit(cfg, tmp_path_factory.mktemp("export") / "run", limit_train_batches=2, limit_val_batches=1)
    return cfg, run.last_checkpoint


def eager_logits(cfg, checkpoint, streams):
    model = load_module(checkpoint, cfg).model
    with torch.no_grad():
        return model(dict(zip(model.input_keys, streams)))["mg"].numpy()


def test_torchscript_export_matches_the_eager_model(two_stream_run, tmp_path):
    cfg, ckpt = two_stream_run
    report = export_model(cfg, ckpt, tmp_path / "model.pt", "torchscript")
    assert report.inputs == ["joint", "bone"] and report.outputs == ["mg"]
    assert report.checked_with == "torch.jit.load" and report.max_abs_diff < 1e-4
    streams = random_streams(2, 1, 1, 24, 35, 3, seed=7)  # batch 1 and 24 frames: not the traced shapes
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        (got,) = loaded(*streams)
    assert got.shape == (1, 4)  # the tiny data set's classes
    np.testing.assert_allclose(got.numpy(), eager_logits(cfg, ckpt, streams), atol=1e-4)


def test_onnx_export_matches_the_eager_model(two_stream_run, tmp_path):
    pytest.importorskip("onnx")
    cfg, ckpt = two_stream_run
    report = export_model(cfg, ckpt, tmp_path / "model.onnx", "onnx")
    import onnx

    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["joint", "bone"] and [o.name for o in graph.output] == ["mg"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[2].dim_param == "frames" and dims[3].dim_value == 35
    ort = pytest.importorskip("onnxruntime")
    assert report.checked_with == "onnxruntime" and report.max_abs_diff < 1e-4
    streams = random_streams(2, 3, 1, 20, 35, 3, seed=8)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"joint": streams[0].numpy(), "bone": streams[1].numpy()})
    np.testing.assert_allclose(got, eager_logits(cfg, ckpt, streams), atol=1e-4)


def test_export_command_and_its_refusals(two_stream_run, tmp_path, capsys):
    cfg, ckpt = two_stream_run
    cfg_path = ckpt.parent.parent / "config.yaml"  # as the run wrote it
    assert main(["export", str(cfg_path), "--checkpoint", str(ckpt), "--format", "torchscript",
                 "--out", str(tmp_path / "m.pt")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "m.pt").is_file()
    rgb = load_config(None, ["data.annotations=x.pkl", "model.streams.rgb.encoder=light", "model.fusion.kind=late"])
    with pytest.raises(ConfigError, match=r"model.streams.rgb: only skeleton streams can be exported"):
        export_model(rgb, ckpt, tmp_path / "x.pt", "torchscript")
    with pytest.raises(ConfigError, match="--format"):
        export_model(cfg, ckpt, tmp_path / "x.bin", "tflite")
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.bin").exists()
