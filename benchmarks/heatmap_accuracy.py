"""Accuracy of the heatmap stream on the synthetic dataset's held-out test subjects, over seeds:
our PoseC3D beside MMAction2's (same volumes, same training loop) and our 2s-AGCN joint stream.

    nice -n 10 python benchmarks/heatmap_accuracy.py [--mm-python /path/to/mmaction2-venv/bin/python] \
        [--seeds 0 1 2] [--epochs 15] [--out runs/heatmap_accuracy] [--quick]

1. The synthetic dataset of configs/synthetic (12 subjects x 3 videos, seed 0; skeletons only),
   split by subject (train / val / test subjects disjoint).
2. Heatmap volumes of every train and test clip, made once by the toolkit's test pipeline
   (layout imigue22, 32 sampled frames of which 16 drawn, 32 x 32, joints + limbs: 43
   channels; no augmentation) and stored as uint8 (values are in [0, 1]).
3. PoseC3D's SlowOnly at half width (base 16, blocks 4-6-3), trained from scratch by one plain
   loop, the same for both implementations: AdamW (lr 1e-3, weight decay 0.05), cosine
   schedule, batch 16, `--epochs` epochs, gradient clipping at 40, shuffled by the seed;
   the test subjects are scored once, after the last epoch (nothing is selected on them).
   `ours`: models/posec3d.py under bf16 autocast; `mmaction2`: their Recognizer3D in float32,
   through its own `loss` and `predict` paths, in the MMAction2 virtualenv (--mm-python).
4. The 2s-AGCN joint stream as the demo trains it (width 16, `--agcn-epochs`, its augmentation), by
   `microgesture`'s own fit / evaluate on the same split (best checkpoint by validation top-1).
Every finished run is written to OUT/results/ and skipped when the script is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAMES, HEATMAP_FRAMES, SIZE, LAYOUT = 32, 16, 32, "imigue22"
BASE, BLOCKS = 16, (4, 6, 3)


# ----------------------------------------------------------------------------- the plain loop (either venv)


def _model(kind: str, channels: int, classes: int):
    if kind == "ours":
        sys.path.insert(0, str(REPO / "src"))
        from microgesture.models.posec3d import build_posec3d

        model = build_posec3d(classes, channels, base_channels=BASE, stage_blocks=BLOCKS)
        return model, lambda x, y: _ce(model(x), y), lambda x: model(x)
    from mmaction.registry import MODELS
    from mmaction.structures import ActionDataSample
    from mmaction.utils import register_all_modules

    register_all_modules()
    model = MODELS.build(dict(
        type="Recognizer3D",
        backbone=dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, in_channels=channels, base_channels=BASE,
                      num_stages=3, out_indices=(2,), stage_blocks=BLOCKS, conv1_stride_s=1, pool1_stride_s=1,
                      inflate=(0, 1, 1), spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 2), dilations=(1, 1, 1)),
        cls_head=dict(type="I3DHead", in_channels=BASE * 16, num_classes=classes, dropout_ratio=0.5,
                      average_clips="prob")))
    model.init_weights()

    def loss(x, y):
        samples = [ActionDataSample().set_gt_label(int(v)) for v in y]
        return sum(v for k, v in model(x[:, None], samples, mode="loss").items() if "loss" in k)

    def scores(x):
        out = model(x[:, None], [ActionDataSample() for _ in x], mode="predict")
        return __import__("torch").stack([s.pred_score for s in out])

    return model, loss, scores


def _ce(logits, y):
    import torch.nn.functional as F

    return F.cross_entropy(logits, y)


def worker(a) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data = np.load(a.data)
    train_x, train_y, test_x = data["train_x"], data["train_y"], data["test_x"]
    classes = int(data["num_classes"])
    model, loss_fn, score_fn = _model(a.kind, train_x.shape[1], classes)
    bf16 = a.kind == "ours"
    steps_per_epoch = -(-len(train_x) // a.batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, a.epochs * steps_per_epoch)
    order_rng = np.random.default_rng(a.seed)
    start = time.perf_counter()
    for _ in range(a.epochs):
        model.train()
        order = order_rng.permutation(len(train_x))
        for i in range(0, len(order), a.batch):
            idx = np.sort(order[i:i + a.batch])
            x = torch.from_numpy(train_x[idx].astype(np.float32) / 255)
            y = torch.from_numpy(train_y[idx].astype(np.int64))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 40.0)
            optimizer.step()
            schedule.step()
    train_s = time.perf_counter() - start
    model.eval()
    scores = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(test_x), a.batch):
            x = torch.from_numpy(test_x[i:i + a.batch].astype(np.float32) / 255)
            scores.append(score_fn(x).float())
    print(json.dumps({"scores": torch.cat(scores).tolist(), "train_s": train_s, "torch": torch.__version__}))


# ----------------------------------------------------------------------------- driver (project venv)


def dataset(out: Path) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from microgesture.train.config import SynthConfig
    from microgesture.train.datamodule import synthetic_annotations

    return synthetic_annotations(SynthConfig(root=str(out / "data"), video=False), progress=True)


def export_volumes(ann: Path, path: Path) -> None:
    """Train and test heatmap volumes as uint8 arrays (test pipeline: no augmentation)."""
    import numpy as np

    from microgesture.data.transforms.heatmap import HeatmapInput
    from microgesture.train.config import DataConfig
    from microgesture.train.datamodule import MGDataModule
    from microgesture.utils.io import atomic_path

    cfg = DataConfig(annotations=str(ann), layout=LAYOUT, num_frames=FRAMES,
                     heatmap=HeatmapInput(size=SIZE, num_frames=HEATMAP_FRAMES))
    dm = MGDataModule(cfg, ["heatmap"])
    arrays = {"num_classes": np.array(dm.num_classes)}
    for split in ("train", "test"):
        ds = dm.dataset(split, train=False)
        items = [ds[i] for i in range(len(ds))]
        arrays[f"{split}_x"] = np.stack([np.round(it["heatmap"].numpy() * 255).astype(np.uint8) for it in items])
        arrays[f"{split}_y"] = np.array([int(it["label"]) for it in items])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def run_loop(kind: str, seed: int, data: Path, a) -> dict:
    python = a.mm_python if kind == "mmaction2" else sys.executable
    cmd = [str(python), __file__, "--worker", "--kind", kind, "--seed", str(seed), "--data", str(data),
           "--epochs", str(a.epochs), "--threads", str(a.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
    if proc.returncode != 0:
        raise SystemExit(f"{kind} seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_agcn(ann: Path, seed: int, out: Path, epochs: int) -> dict:
    from microgesture.train.config import load_config
    from microgesture.train.run import LAST, evaluate, fit

    cfg = load_config(None, [f"data.annotations={ann}", "data.synthetic=null", f"data.layout={LAYOUT}",
                             f"data.num_frames={FRAMES}", "model.streams={joint: {encoder: agcn, base_channels: 16, "
                             "dropout: 0.1}}", "optim.lr=0.05", "optim.warmup_epochs=1", f"trainer.max_epochs={epochs}",
                             f"trainer.seed={seed}", "trainer.accelerator=cpu", "trainer.progress_bar=false"])
    run_dir = out / f"agcn_joint_seed{seed}_e{epochs}"
    start = time.perf_counter()
    result = fit(cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).is_file())
    metrics = evaluate(cfg, result.best_checkpoint, run_dir / "eval")
    return {"top1": metrics["top1"], "macro_f1": metrics["macro_f1"], "train_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--mm-python", type=Path, default=None, help="Python of a virtualenv with MMAction2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15, help="PoseC3D epochs")
    parser.add_argument("--agcn-epochs", type=int, default=16, help="2s-AGCN epochs (16 as the demo)")
    parser.add_argument("--runs", default="ours,mmaction2,agcn", help="which of ours, mmaction2, agcn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "heatmap_accuracy")
    a = parser.parse_args()
    if a.worker:
        return worker(a)
    import numpy as np

    sys.path.insert(0, str(REPO / "src"))
    from microgesture.eval.metrics import classification_metrics
    from microgesture.utils.io import write_text

    runs = [r.strip() for r in a.runs.split(",") if r.strip()]
    if "mmaction2" in runs and a.mm_python is None:
        raise SystemExit("--mm-python: the mmaction2 runs need the Python of a virtualenv with MMAction2")
    ann = dataset(a.out)
    # named for the dataset folder too (it encodes the generator's settings and version): volumes of
    # another generator are never reused
    data = a.out / f"volumes_{ann.parent.name}_{LAYOUT}_{FRAMES}f{HEATMAP_FRAMES}_{SIZE}px.npz"
    if not data.is_file():
        export_volumes(ann, data)
    test_y = np.load(data)["test_y"]
    (a.out / "results").mkdir(parents=True, exist_ok=True)
    table: dict[str, list[dict]] = {}
    for seed in a.seeds:
        for kind in runs:
            epochs = a.agcn_epochs if kind == "agcn" else a.epochs
            path = a.out / "results" / f"{kind}_seed{seed}_e{epochs}.json"
            if not path.is_file():
                if kind == "agcn":
                    result = run_agcn(ann, seed, a.out, a.agcn_epochs)
                else:
                    raw = run_loop(kind, seed, data, a)
                    metrics = classification_metrics(np.array(raw["scores"]), test_y)
                    result = {"top1": metrics["top1"], "macro_f1": metrics["macro_f1"], "train_s": raw["train_s"]}
                write_text(path, json.dumps(result, indent=2))
            table.setdefault(kind, []).append(json.loads(path.read_text()))
            print(f"{kind} seed {seed}: {table[kind][-1]}", flush=True)
    print(f"\nheld-out test subjects ({len(test_y)} clips), seeds {a.seeds}: mean +- std")
    print("| model | top-1 | macro-F1 | training minutes per run |\n|---|---|---|---|")
    for kind, rows in table.items():
        top1, f1 = np.array([r["top1"] for r in rows]), np.array([r["macro_f1"] for r in rows])
        minutes = np.mean([r["train_s"] for r in rows]) / 60
        print(f"| {kind} | {100 * top1.mean():.1f} +- {100 * top1.std():.1f} | {100 * f1.mean():.1f} +- "
              f"{100 * f1.std():.1f} | {minutes:.1f} |")


if __name__ == "__main__":
    main()
