"""The LightningModule: a classifier over whatever inputs its model declares.

Devices, precision, DDP and checkpoints belong to the Trainer (see run.py); this file holds the
loss, the optimisation recipe and the metrics. Random-number states are saved in checkpoints so a
resumed run continues exactly as an uninterrupted one would (single process).
"""

from __future__ import annotations

import math
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from microgesture.config import from_dict, to_dict
from microgesture.eval.metrics import classification_metrics
from microgesture.train.build import build_model
from microgesture.train.config import ExperimentConfig


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> np.ndarray | None:
    """Loss weights from training label counts: 'sqrt' is w_c ~ 1/sqrt(n_c), 'inverse' 1/n_c.

    Weights are normalised to mean 1 over the classes present; absent classes get weight 1.
    """
    if mode == "none":
        return None
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(np.float64)
    present = counts > 0
    power = 0.5 if mode == "sqrt" else 1.0
    weights = np.ones(num_classes)
    weights[present] = counts[present] ** -power
    weights[present] /= weights[present].mean()
    return weights.astype(np.float32)


class MGClassifier(L.LightningModule):
    def __init__(
        self,
        config: dict[str, Any],
        num_classes: int,
        class_names: list[str],
        layout: str,
        class_weight: list[float] | None = None,
        init_encoders: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["init_encoders"])
        self.cfg: ExperimentConfig = from_dict(ExperimentConfig, config)
        self.model = build_model(self.cfg.model, num_classes, layout, cached=self.cfg.data.cache is not None,
                                 init_encoders=init_encoders)
        self.num_classes = num_classes
        self.class_names = list(class_names)
        weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
        self.register_buffer("class_weight", weight, persistent=False)
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, **kwargs: Any) -> "MGClassifier":
        return cls(to_dict(cfg), **kwargs)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits [N, K]; a multi-clip batch ([N, clips, ...]) is averaged over its clips."""
        inputs = [batch[key] for key in self.model.inputs]
        ref = inputs[0]
        if ref.dim() == 6:  # both skeleton [N, M, T, V, C] and RGB [N, C, T, H, W] have 5 dims
            n, clips = ref.shape[:2]
            flat = [x.reshape(n * clips, *x.shape[2:]) for x in inputs]
            return self.model(*flat).reshape(n, clips, -1).mean(dim=1)
        return self.model(*inputs)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), labels, weight=self.class_weight,
            label_smoothing=self.cfg.optim.label_smoothing, ignore_index=-1,
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        loss = self._loss(logits, batch["label"])
        acc = (logits.argmax(1) == batch["label"]).float().mean()
        n = len(batch["label"])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train_top1", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        self.log("val_loss", self._loss(logits, batch["label"]), on_epoch=True, batch_size=len(logits))
        self._val_outputs.append((logits.detach().float().cpu(), batch["label"].cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        scores = torch.cat([s for s, _ in self._val_outputs]).numpy()
        labels = torch.cat([y for _, y in self._val_outputs]).numpy()
        self._val_outputs.clear()
        metrics = classification_metrics(scores, labels)
        self.log("val_top1", float(metrics["top1"]), prog_bar=True)
        self.log("val_macro_f1", float(metrics["macro_f1"]))
        self.log("val_mean_class_accuracy", float(metrics["mean_class_accuracy"]))

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"scores": self(batch).float(), "label": batch["label"], "index": batch["index"]}

    def configure_optimizers(self):
        opt = self.cfg.optim
        params = [p for p in self.parameters() if p.requires_grad]
        if opt.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum,
                                        nesterov=opt.nesterov and opt.momentum > 0, weight_decay=opt.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)
        if opt.scheduler == "none":
            return optimizer
        epochs = self.cfg.trainer.max_epochs
        warmup = min(opt.warmup_epochs, epochs - 1)

        def factor(epoch: int) -> float:
            if epoch < warmup:
                return (epoch + 1) / (warmup + 1)
            progress = (epoch - warmup) / max(1, epochs - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * progress))  # a float: numpy scalars break weights_only loading

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint["rng_states"] = {  # tensors and plain values only: loadable with weights_only=True
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        kind, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(states["python"])
        if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
