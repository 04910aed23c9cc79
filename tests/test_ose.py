"""The orthogonal semantic embedding loss (train/ose.py) on toy cases whose outcome is known."""

import pytest
import torch

from conftest import tiny_overrides
from microgesture.errors import ConfigError
from microgesture.train.config import load_config
from microgesture.train.module import Classifier
from microgesture.train.ose import OSELoss, ose_terms, orthogonal_prototypes


def test_zero_exactly_at_its_known_minimum():
    basis = torch.eye(4)[:3] * 5.0  # orthogonal prototypes; any positive scale
    labels = torch.tensor([0, 1, 2, 2])
    t = ose_terms(basis[labels] * 2.0, labels, basis, margin=0.2)
    assert all(float(v) == pytest.approx(0.0, abs=1e-7) for v in t.values())
    # a feature halfway between two class directions is penalised by pull and push alike
    mixed = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    t = ose_terms(mixed, torch.tensor([0]), basis, margin=0.2)
    assert float(t["pull"]) == pytest.approx(1 - 2 ** -0.5)
    assert float(t["push"]) == pytest.approx((2 ** -0.5 - 0.2) / 2)  # one of the two other classes
    # a cosine below the margin is not pushed
    low = torch.tensor([[1.0, 0.3, 0.0, 0.0]])
    cos = 0.3 / (1.09 ** 0.5)
    assert cos < 0.3 and float(ose_terms(low, torch.tensor([0]), basis, 0.3)["push"]) == 0.0


def test_optimising_it_clusters_classes_and_orthogonalises_prototypes():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    features = torch.nn.Parameter(torch.rand(8, 6))  # non-negative, like pooled ReLU features
    loss_fn = OSELoss({"fused": 6}, 4, margin=0.1, orthogonality=1.0)
    with torch.no_grad():  # start from correlated prototypes, far from orthogonal
        loss_fn.prototypes["fused"].copy_(torch.rand(4, 6) + 1.0)
    f0 = torch.nn.functional.normalize(features.detach(), dim=1)
    before_between = (f0[0::2] @ f0[1::2].T).triu(1).max()
    opt = torch.optim.Adam([features, *loss_fn.parameters()], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        loss = loss_fn({"fused": features}, labels)
        loss.backward()
        opt.step()
    f = torch.nn.functional.normalize(features.detach(), dim=1)
    same = (f[0::2] * f[1::2]).sum(1)
    assert same.min() > 0.98  # the two clips of each class point the same way
    cos = f @ f.T
    other = cos[labels[:, None] != labels[None, :]]
    assert other.max() < 0.25 < before_between  # other classes are pushed (near) apart
    p = torch.nn.functional.normalize(loss_fn.prototypes["fused"].detach(), dim=1)
    assert (p @ p.T - torch.eye(4)).abs().max() < 0.1  # prototypes (near) orthonormal
    assert float(loss.detach()) < 0.05


def test_prototypes_start_orthonormal_and_unlabelled_clips_add_nothing():
    p = orthogonal_prototypes(5, 8, torch.Generator().manual_seed(1))
    torch.testing.assert_close(p @ p.T, torch.eye(5), atol=1e-5, rtol=0)
    loss = OSELoss({"joint": 8, "bone": 8}, 5)
    feats = {"joint": torch.rand(3, 8, requires_grad=True), "bone": torch.rand(3, 8)}
    value = loss(feats, torch.tensor([-1, -1, -1]))
    value.backward()
    grad = feats["joint"].grad
    assert float(value.detach()) == 0.0 and (grad is None or float(grad.abs().sum()) == 0.0)
    assert float(loss(feats, torch.tensor([0, -1, 2])).detach()) > 0


def test_config_and_module(tiny_annotations):
    with pytest.raises(ConfigError, match="optim.ose.margin"):
        load_config(None, ["optim.ose={margin: 1.5}"])
    cfg = load_config(None, tiny_overrides(tiny_annotations) + ["optim.ose={weight: 0.5, margin: 0.1}"])
    module = Classifier.from_config(cfg, num_classes=4, class_names=list("abcd"), layout="miga35")
    assert set(module.ose.prototypes) == {"joint"} and module.ose.margin == 0.1
    batch = {"joint": torch.randn(2, 1, 16, 35, 3), "label": torch.tensor([0, 3]), "emotion": torch.tensor([-1, -1]),
             "index": torch.arange(2), "video_id": torch.zeros(2, dtype=torch.long)}
    module.log = lambda *a, **k: None
    loss = module.training_step(batch, 0).detach()
    logits, emb = module.model.forward_and_embed({"joint": batch["joint"]})
    plain = module._loss(logits, batch).detach()
    expected = plain + 0.5 * module.ose(emb, batch["label"]).detach()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5) and float(loss) > float(plain)
