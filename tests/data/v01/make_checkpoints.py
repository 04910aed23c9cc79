"""Write the microgesture 0.1 checkpoints these tests read (run once, with 0.1's code).

    git worktree add /tmp/v01 914b871
    PYTHONPATH=/tmp/v01/src python tests/data/v01/make_checkpoints.py tests/data/v01

Each checkpoint is a tiny model built and saved by 0.1's own LightningModule (no training: the
weights are the seeded initialisation), with the logits 0.1 computed on a fixed input, so the
test can check that 0.2 reads the same network and gives the same outputs.
"""

import sys
from pathlib import Path

import torch

from microgesture.config import to_dict
from microgesture.train.config import load_config
from microgesture.train.module import MGClassifier


def save(out: Path, name: str, overrides: list[str], inputs: dict[str, torch.Tensor]) -> None:
    cfg = load_config(None, ["data.annotations=unused.pkl", "data.layout=imigue22", *overrides])
    torch.manual_seed(0)
    module = MGClassifier(to_dict(cfg), num_classes=5, class_names=[f"c{k}" for k in range(5)], layout="imigue22")
    module.eval()
    with torch.no_grad():
        logits = module(inputs)
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "epoch": 0,
            "global_step": 0, "pytorch-lightning_version": "2.6.6"}
    torch.save(ckpt, out / f"{name}.ckpt")
    torch.save({"inputs": inputs, "logits": logits}, out / f"{name}_io.pt")


def main(out: Path) -> None:
    g = torch.Generator().manual_seed(0)
    skeleton = torch.randn(2, 1, 8, 22, 3, generator=g)
    rgb = torch.randn(2, 3, 4, 32, 32, generator=g)
    small_rgb = ["model.rgb.width=4", "model.rgb.depth=2", "data.rgb.num_frames=4", "data.rgb.size=32"]
    save(out, "skeleton_bone", ["model.arch=skeleton", "model.skeleton.stream=bone", "model.skeleton.base_channels=4"],
         {"skeleton": skeleton})
    save(out, "rgb", ["model.arch=rgb", *small_rgb], {"rgb": rgb})
    fusion = [*small_rgb, "model.skeleton.base_channels=4", "model.fusion.width=16", "model.fusion.depth=1",
              "model.fusion.heads=2", "model.fusion.hidden=16"]
    save(out, "cmtf_e2e", ["model.arch=cmtf", *fusion], {"rgb": rgb, "skeleton": skeleton})
    tokens = {"rgb_tokens": torch.randn(2, 4, 8, generator=g), "skeleton_tokens": torch.randn(2, 2, 22, 16, generator=g)}
    save(out, "cmtf_cached", ["model.arch=cmtf", *fusion, "data.cache=unused"], tokens)
    embeddings = {"rgb_embedding": torch.randn(2, 8, generator=g), "skeleton_embedding": torch.randn(2, 16, generator=g)}
    save(out, "concat_cached", ["model.arch=concat", *fusion, "data.cache=unused"], embeddings)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
