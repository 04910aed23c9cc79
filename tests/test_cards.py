"""Each encoder and fusion kind's card (train/cards.py) against the models it builds, as timm's
tests/test_models.py checks each model's pretrained_cfg: for every shipped config, the width,
input spec and token layout a card reads off the config are the built encoder's. And a new
encoder is one module plus one card: a toy one is added here and trained through build_model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import torch
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.base import Encoder, InputSpec
from microgesture.train import cards
from microgesture.train.build import build_model, input_specs, token_layouts, token_width
from microgesture.train.cards import ENCODER_CARDS, FUSION_CARDS, EncoderCard, encoder_card, fusion_card
from microgesture.train.config import ExperimentConfig, ModelConfig, check_experiment, load_config
from microgesture.train.kernel_check import build_for_check, offline_overrides

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*/*.yaml"))


def _load(path: Path) -> ExperimentConfig:
    """A shipped config with random weights: the weight files and runs it names are not read."""
    return load_config(path, offline_overrides(str(path)))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_cards_describe_the_models_of_every_shipped_config(path):
    cfg = _load(path)
    model = build_for_check(cfg)
    specs = input_specs(cfg.model)
    for name, enc in cfg.model.streams.items():
        card, encoder = encoder_card(enc.encoder), model.encoders[name]
        assert isinstance(encoder, Encoder), name
        assert token_width(enc) == card.width(enc) == encoder.embed_dim, name
        assert specs[name] == card.spec(enc) == encoder.input_spec, name
        assert token_layouts(cfg.model)[name] == card.token_layout == encoder.token_layout, name
        assert card.reads == encoder.input_spec.kind, name
        assert all(hasattr(enc, key) for key in card.architecture), name
    if cfg.model.fusion is not None:
        fusion = fusion_card(cfg.model.fusion.kind).build(cfg.model.fusion, model.dims, token_layouts(cfg.model))
        assert type(fusion) is type(model.fusion)  # noqa: E721 (the very class, not a subclass)


def test_every_kind_is_shipped_in_a_config():
    """So the test above checks every card against a real build."""
    shipped = [_load(path).model for path in CONFIGS]
    encoders = {enc.encoder for m in shipped for enc in m.streams.values()}
    fusions = {m.fusion.kind for m in shipped if m.fusion is not None}
    assert encoders == set(ENCODER_CARDS)
    assert fusions == set(FUSION_CARDS)


def test_every_config_class_has_its_card():
    union = {c.__name__ for c in cards.EncoderConfig.__args__}
    assert union == {card.config.__name__ for card in ENCODER_CARDS.values()}
    assert all(kind == card.config.encoder for kind, card in ENCODER_CARDS.items())


def test_an_unknown_kind_is_an_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match="'resnet': unknown; known: agcn, light, mvit, posec3d"):
        encoder_card("resnet")
    with pytest.raises(ConfigError, match="'sum': unknown; known: cmtf, interfusion, concat, late"):
        fusion_card("sum")


def test_reading_a_card_does_not_load_torch():
    import subprocess
    import sys

    code = ("import sys; from microgesture.train.cards import ENCODER_CARDS as C, AGCNConfig; "
            "assert C['agcn'].width(AGCNConfig(base_channels=16)) == 64 and C['swinface'].face; "
            "assert 'torch' not in sys.modules, 'torch was loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# A new encoder kind, the way docs/architecture.md says to add one: a module (here inline, in the
# toolkit a file in models/) and a config class with its card.


class ToyEncoder(nn.Module):
    """Skeleton joints -> one linear token per frame and joint ([N, T, V, D], "time_joint")."""

    token_layout = "time_joint"
    num_prefix_tokens = 0
    input_spec = InputSpec("skeleton", channels=3)

    def __init__(self, num_classes: int, width: int):
        super().__init__()
        self.embed_dim = width
        self.proj = nn.Linear(3, width)
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(x)).mean(1)  # [N, M, T, V, C] -> [N, T, V, D], persons averaged

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.mean((1, 2))

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        embedding = self.pool(tokens)
        return embedding if pre_logits else self.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes else nn.Identity()


@dataclass
class ToyConfig:
    encoder: Literal["toy"] = "toy"
    width: int = 8
    dropout: float = 0.0
    checkpoint: str | None = None


TOY_CARD = EncoderCard(config=ToyConfig, reads="skeleton", token_layout="time_joint",
                       build=lambda cfg, num_classes, layout: ToyEncoder(num_classes, cfg.width),
                       spec=lambda cfg: ToyEncoder.input_spec, width=lambda cfg: cfg.width, architecture=("width",))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(ENCODER_CARDS, "toy", TOY_CARD)
    return ToyConfig()


def test_a_toy_encoder_is_one_module_and_one_card(toy):
    check_experiment(ExperimentConfig(model=ModelConfig(streams={"joint": toy})))
    with pytest.raises(ConfigError, match="'toy' reads skeleton input, but 'rgb' is video input"):
        check_experiment(ExperimentConfig(model=ModelConfig(streams={"rgb": toy})))
    model = build_model(ModelConfig(streams={"joint": toy}), {"mg": 5}, "imigue22")
    assert isinstance(model.encoders["joint"], ToyEncoder) and token_width(toy) == model.encoders["joint"].embed_dim
    torch.manual_seed(0)
    labels = torch.arange(20) % 5
    batch = {"joint": torch.randn(20, 1, 6, 22, 3) + labels.view(-1, 1, 1, 1, 1)}  # the class shifts the joints
    optim = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(batch)["mg"], labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2  # it learns


def test_a_toy_encoder_fuses_with_the_others(toy):
    from microgesture.train.cards import AGCNConfig, FusionConfig

    cfg = ModelConfig(streams={"joint": toy, "bone": AGCNConfig(base_channels=4)},
                      fusion=FusionConfig(width=16, depth=1, heads=2))
    model = build_model(cfg, {"mg": 5}, "imigue22")
    x = torch.randn(2, 1, 8, 22, 3)
    assert model({"joint": x, "bone": x})["mg"].shape == (2, 5)
