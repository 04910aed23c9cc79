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
    cfg = load_config(None, ["optim.lr=0.05", "model.streams={bone: {encoder: agcn, base_channels: 16}}",
                             "trainer.devices=2", "data.synthetic.size=[64, 48]"])
    assert cfg.optim.lr == 0.05
    assert list(cfg.model.streams) == ["bone"] and cfg.model.streams["bone"].base_channels == 16
    assert cfg.trainer.devices == 2
    assert cfg.data.synthetic.size == (64, 48)


def test_version_01_configs_are_migrated():
    """A 0.1 model section (arch + skeleton/rgb) becomes named streams with the same settings."""
    cfg = load_config(None, ["model.arch=cmtf", "model.skeleton.stream=bone", "model.skeleton.base_channels=16",
                             "model.rgb.width=8", "model.fusion.width=64", "data.annotations=a.pkl"])
    assert list(cfg.model.streams) == ["rgb", "bone"]
    assert cfg.model.streams["bone"].encoder == "agcn" and cfg.model.streams["bone"].base_channels == 16
    assert cfg.model.streams["rgb"].encoder == "light" and cfg.model.streams["rgb"].width == 8
    assert cfg.model.fusion.kind == "cmtf" and cfg.model.fusion.width == 64
    assert list(load_config(None, ["model.skeleton.stream=bone"]).model.streams) == ["bone"]


@pytest.mark.parametrize(
    "text, key",
    [
        ("optim:\n  lrr: 0.1\n", "optim.lrr"),
        ("optim:\n  lr: fast\n", "optim.lr"),
        ("model:\n  skeleton:\n    stream: elbow\n", "model.streams.elbow"),
        ("model:\n  streams:\n    rgb: {encoder: agcn}\n", "model.streams.rgb.encoder"),
        ("model:\n  streams:\n    joint: {encoder: resnet}\n", "model.streams.joint.encoder"),
        ("model:\n  streams:\n    joint: {encoder: light, base_channels: 8}\n", "model.streams.joint.base_channels"),
        ("model:\n  streams:\n    joint: {encoder: agcn}\n    rgb: {encoder: light}\n", "model.fusion"),
        ("task:\n  kind: emotion\n  monitor: val_top1\n", "task.monitor"),
        ("data:\n  annotations: a.pkl\n  layout: elbow22\n", "data.layout"),
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
