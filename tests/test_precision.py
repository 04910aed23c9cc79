"""trainer.precision "auto" (train/precision.py) and bf16 mixed precision through the skeleton model."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import interrupt_at, tiny_overrides
from microgesture.errors import ConfigError
from microgesture.models.agcn import _MixProject, build_agcn
from microgesture.train import precision
from microgesture.train.checkpoint import read_run_checkpoint
from microgesture.train.config import load_config
from microgesture.train.run import fit


@pytest.mark.parametrize("cuda, cuda_bf16, amx, accelerator, expected", [
    (False, False, True, "auto", "bf16-mixed"),   # AMX CPU
    (False, False, False, "auto", "32-true"),     # CPU without AMX: bf16 would be emulated and slow
    (False, False, True, "cpu", "bf16-mixed"),
    (True, True, False, "auto", "bf16-mixed"),    # bf16 GPU
    (True, False, True, "auto", "32-true"),       # GPU without bf16: the GPU decides, not the CPU
    (True, True, True, "cpu", "bf16-mixed"),      # a GPU present but the CPU asked for
    (True, True, False, "cpu", "32-true"),
])
def test_auto_picks_bf16_only_where_it_is_fast(monkeypatch, cuda, cuda_bf16, amx, accelerator, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: amx)
    assert precision.resolve_precision("auto", accelerator) == expected
    assert precision.resolve_precision("32-true", accelerator) == "32-true"  # explicit values stay


@pytest.mark.parametrize("cap, amx_used", [(None, True), ("AVX2", False), ("avx512_core", False),
                                            ("AVX512_CORE_AMX", True), ("ALL", True)])
def test_oneDNN_capped_below_AMX_is_a_CPU_without_fast_bf16(monkeypatch, cap, amx_used):
    """ONEDNN_MAX_CPU_ISA=AVX2 makes an AMX machine run the kernels of AVX2 CPUs: "auto" must then
    choose what those CPUs get (float32), and the machine line must say the kernels are capped."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    if cap is not None:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert precision.cpu_has_fast_bf16() is (amx_used and torch.backends.mkldnn.is_available())
    line = precision.machine_description()
    assert line.startswith("CPU ") and "AMX" in line  # the hardware has it, capped or not
    assert (f"capped at {cap}" in line) is (cap is not None)


def test_a_bad_precision_names_the_key_when_the_config_is_read():
    with pytest.raises(ConfigError, match=r"trainer\.precision \(--precision\): 'fp8' is not one of auto, 32-true"):
        load_config(None, ["trainer.precision=fp8"])
    assert load_config(None, ["trainer.precision=auto"]).trainer.precision == "auto"


def test_the_custom_backward_under_bf16_equals_autograd_of_the_same_ops():
    """_MixProject recomputes its mixed maps in backward under the forward's autocast state, so its
    bf16 gradients are those autograd gives for the plain ops under the same autocast."""
    torch.manual_seed(1)
    x, mixing = torch.randn(2, 6, 17, 8, requires_grad=True), torch.randn(2, 1, 51, 17, requires_grad=True)
    weight, bias = torch.randn(5, 24, requires_grad=True), torch.randn(5, requires_grad=True)

    def grads(custom: bool) -> list[torch.Tensor]:
        for t in (x, mixing, weight, bias):
            t.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if custom:
                out = _MixProject.apply(x, mixing, weight, bias)
            else:
                out = F.linear(torch.matmul(mixing, x).view(2, 6, 17, -1), weight, bias)
        assert out.dtype == torch.bfloat16
        (out.float() ** 2).sum().backward()
        return [t.grad.clone() for t in (x, mixing, weight, bias)]

    for ours, plain in zip(grads(True), grads(False)):
        assert torch.allclose(ours, plain, rtol=1e-3, atol=1e-3 * plain.abs().max().item())


def test_bf16_gradients_of_the_skeleton_model_follow_float32():
    torch.manual_seed(0)
    model = build_agcn(5, "coco17", base_channels=16, similarity="tanh").train()
    for block in model.blocks:
        torch.nn.init.constant_(block.graph_conv.alpha, 0.5)  # so that every embedding gets a gradient
    x, y = torch.randn(4, 1, 16, 17, 3), torch.tensor([0, 1, 2, 3])

    def grads(bf16: bool) -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        # the biases of convolutions followed by a batch norm have a true gradient of 0 (rounding noise)
        return torch.cat([p.grad.flatten() for k, p in model.named_parameters()
                          if p.grad is not None and not k.endswith("conv.bias")])

    full, half = grads(False), grads(True)
    assert half.dtype == torch.float32 and len(full) > 10_000
    assert F.cosine_similarity(full, half, dim=0) > 0.95  # 0.978 measured; a wrong backward gives ~0


def test_bf16_training_resumes_exactly_and_records_its_precision(tiny_annotations, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_annotations, epochs=2) + ["trainer.precision=bf16-mixed"])
    straight = fit(cfg, tmp_path / "straight")
    with pytest.raises(SystemExit):
        fit(cfg, tmp_path / "broken", callbacks=[interrupt_at(6)])
    resumed = fit(cfg, tmp_path / "broken", resume=True)
    a = read_run_checkpoint(straight.last_checkpoint)["state_dict"]
    b = read_run_checkpoint(resumed.last_checkpoint)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
        assert a[key].dtype != torch.bfloat16, key  # mixed precision keeps float32 weights
    info = json.loads((tmp_path / "straight" / "run_info.json").read_text())
    assert info["precision"] == "bf16-mixed"
