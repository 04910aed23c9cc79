"""Diagnostic for the fusion ablation: CMTF trained on cached skeleton tokens alone (RGB absent).

Run after `fusion_ablation.py`: it reads that run's annotation file and the joint + RGB crops
token cache of one seed, trains the same CMTF (width 128, depth 2, 4 heads, AdamW 5e-4, 15
epochs, batch 32) on the joint tokens alone, selects the epoch on the validation subjects and
reports the test subjects. Comparing with the ablation's CMTF rows separates "a token fusion
head on cached skeleton tokens" from "what the RGB tokens add".

    python benchmarks/cmtf_skeleton_only.py --ablation runs/ablation --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.nn import functional as F

from microgesture.data.formats.annotations import load_annotations, select
from microgesture.data.cache import TokenCache
from microgesture.models.cmtf import CrossModalTokenFusion


def tensors(data, cache, split):
    clips = select(data, split)
    items = [cache.get(c["frame_dir"]) for c in clips]
    return torch.stack([i["joint_tokens"] for i in items]), torch.tensor([c["label"] for c in clips])


def logits(model, tokens):
    return model["head"](model["fusion"]({"joint": tokens}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ablation", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    ann = next((args.ablation / "data").glob("*/annotations*.pkl"))
    data = load_annotations(ann)
    cache = TokenCache.open(args.ablation / f"seed{args.seed}" / "cache_joint_crops", ann)
    train, val, test = (tensors(data, cache, s) for s in ("train", "val", "test"))
    torch.manual_seed(args.seed)
    fusion = CrossModalTokenFusion({"joint": train[0].shape[-1]}, {"joint": "time_joint"}, width=128, depth=2,
                                   heads=4, dropout=0.1)
    model = torch.nn.ModuleDict({"fusion": fusion, "head": torch.nn.Linear(128, 32)})
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    best = (-1.0, 0.0)
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(train[1]))
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            loss = F.cross_entropy(logits(model, train[0][b]), train[1][b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            v, t = ((logits(model, x).argmax(1) == y).float().mean().item() for x, y in (val, test))
        if v > best[0]:  # selected on validation only; ties keep the earlier epoch
            best = (v, t)
    print(f"CMTF on skeleton tokens only, seed {args.seed}: best val top-1 {best[0]:.3f} -> test top-1 {best[1]:.3f}")


if __name__ == "__main__":
    main()
