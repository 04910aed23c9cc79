"""InterFusion: shapes, masks, missing streams, and that it learns what needs both streams at once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from microgesture.errors import ConfigError
from microgesture.models.interfusion import InterFusion


def fusion(**kwargs) -> InterFusion:
    torch.manual_seed(0)
    options = dict(width=32, depth=2, heads=4, queries=2, dropout=0.0)
    options.update(kwargs)
    return InterFusion({"face": 12, "rgb": 20}, **options)


def test_shapes_and_missing_streams():
    model = fusion().eval()
    face, rgb = torch.randn(3, 6, 12), torch.randn(3, 10, 20)
    missing = torch.zeros(3, 6, dtype=torch.bool)
    missing[1] = True  # a clip without any face
    with torch.no_grad():
        out = model({"face": face, "rgb": rgb}, {"face": missing})
        no_face = model({"face": None, "rgb": rgb})
        only_face = model({"face": face})
        streams, pads, queries = model.forward_features({"face": face, "rgb": rgb}, {"face": missing})
    assert out.shape == no_face.shape == only_face.shape == (3, 32)
    assert torch.isfinite(out).all() and torch.isfinite(no_face).all()
    assert queries.shape == (3, 2, 32) and streams["face"].shape == (3, 7, 32)  # the null token comes first
    assert pads["face"][1, 1:].all() and not pads["face"][:, 0].any()
    # A clip whose faces are all missing is the clip without a face stream.
    torch.testing.assert_close(out[1], no_face[1], atol=1e-5, rtol=1e-5)


def test_masked_frames_cannot_leak():
    model = fusion().eval()
    face, rgb = torch.randn(2, 5, 12), torch.randn(2, 4, 20)
    missing = torch.tensor([[False, True, False, True, False]] * 2)
    changed = face.clone()
    changed[missing] = float("nan")
    with torch.no_grad():
        a = model({"face": face, "rgb": rgb}, {"face": missing})
        b = model({"face": changed, "rgb": rgb}, {"face": missing})
    torch.testing.assert_close(a, b)


def test_both_streams_reach_the_embedding():
    model = fusion().eval()
    face = torch.randn(2, 5, 12, requires_grad=True)
    rgb = torch.randn(2, 4, 20, requires_grad=True)
    # (a plain sum of a LayerNorm output is constant: weigh the features)
    (model({"face": face, "rgb": rgb}) * torch.randn(2, 32)).sum().backward()
    assert face.grad.abs().sum() > 0 and rgb.grad.abs().sum() > 0


def test_skeleton_grids_are_flattened():
    model = InterFusion({"face": 12, "joint": 8}, width=16, depth=1, heads=2).eval()
    with torch.no_grad():
        out = model({"face": torch.randn(2, 5, 12), "joint": torch.randn(2, 3, 4, 8)},
                    {"joint": torch.tensor([[False, False, True]] * 2)})
    assert out.shape == (2, 16)


def test_bad_inputs_and_settings():
    model = fusion()
    with pytest.raises(ValueError, match="rgb tokens must be"):
        model({"rgb": torch.randn(2, 4, 7)})
    with pytest.raises(ValueError, match="built for streams"):
        model({"depth": torch.randn(2, 4, 7)})
    with pytest.raises(ValueError, match="face mask must have shape"):
        model({"face": torch.randn(2, 5, 12)}, {"face": torch.zeros(2, 4, dtype=torch.bool)})
    with pytest.raises(ConfigError, match="two or more"):
        InterFusion({"face": 4}, width=32, heads=4)
    with pytest.raises(ConfigError, match="divisible"):
        InterFusion({"face": 4, "rgb": 4}, width=30, heads=4)
    with pytest.raises(ConfigError, match="queries"):
        InterFusion({"face": 4, "rgb": 4}, width=32, queries=0)


def _xor_batch(n: int, generator: torch.Generator):
    """The label is the XOR of a sign hidden in the face frames and one hidden in the context tokens:
    neither stream alone says anything about it."""
    a = torch.randint(0, 2, (n,), generator=generator)
    b = torch.randint(0, 2, (n,), generator=generator)
    face = torch.randn(n, 6, 12, generator=generator) * 0.5
    rgb = torch.randn(n, 8, 20, generator=generator) * 0.5
    face[:, :, 0] += (2 * a - 1)[:, None].float()
    rgb[:, :, 0] += (2 * b - 1)[:, None].float()
    return face, rgb, a ^ b


def test_learns_a_label_that_needs_both_streams():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and far faster on a busy machine
    try:
        torch.manual_seed(0)
        model = fusion(modality_dropout=0.0, depth=1)
        head = torch.nn.Linear(32, 2)
        optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=3e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(60):
            face, rgb, y = _xor_batch(32, g)
            loss = F.cross_entropy(head(model({"face": face, "rgb": rgb})), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    face, rgb, y = _xor_batch(256, torch.Generator().manual_seed(1))
    with torch.no_grad():
        accuracy = (head(model({"face": face, "rgb": rgb})).argmax(1) == y).float().mean()
    assert accuracy > 0.9  # a single stream is at chance (0.5) on this label
