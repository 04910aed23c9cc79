from pathlib import Path

import pytest

from microgesture.errors import ConfigError
from microgesture.train.config import ExperimentConfig, load_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_shipped_configs_load():
    paths = sorted((REPO / "configs").glob("*/*.yaml"))
    assert len(paths) >= 4
    for path in paths:
        cfg = load_config(path)
        assert isinstance(cfg, ExperimentConfig)
        assert cfg.name


def test_overrides_are_typed():
    cfg = load_config(None, ["optim.lr=0.05", "model.skeleton.stream=bone", "trainer.devices=2", "data.synthetic.size=[64, 48]"])
    assert cfg.optim.lr == 0.05
    assert cfg.model.skeleton.stream == "bone"
    assert cfg.trainer.devices == 2
    assert cfg.data.synthetic.size == (64, 48)


@pytest.mark.parametrize(
    "text, key",
    [
        ("optim:\n  lrr: 0.1\n", "optim.lrr"),
        ("optim:\n  lr: fast\n", "optim.lr"),
        ("model:\n  skeleton:\n    stream: elbow\n", "model.skeleton.stream"),
        ("model:\n  arch: rgb\n", "data.rgb"),
        ("model:\n  arch: rgb\n  rgb:\n    encoder: mvit\ndata:\n  annotations: a.pkl\n  rgb:\n    size: 96\n", "data.rgb"),
        ("model:\n  fusion:\n    width: 100\n    heads: 3\n", "model.fusion.heads"),
        ("trainer:\n  max_epochs: 0\n", "trainer.max_epochs"),
        ("data:\n  annotations: a.pkl\n  num_frames: 2.5\n", "data.num_frames"),
        ("data:\n  annotations: a.pkl\n  augment:\n    scale: [1, 2, 3]\n", "data.augment.scale"),
        ("bogus: 1\n", "bogus"),
        ("data:\n  batch_size: 4\n", "data.annotations"),
    ],
)
def test_bad_keys_are_named(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert key in str(exc.value)
    assert str(path) in str(exc.value)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.lr"])


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2\n"))
