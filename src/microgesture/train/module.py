"""The LightningModule: a Recognizer trained for the config's task(s).

Devices, precision, DDP and checkpoints belong to the Trainer (see run.py); this file holds the
losses, the optimisation recipe and the metrics. Random-number states are saved in checkpoints
so a resumed run continues exactly as an uninterrupted one would (single process).
"""

from __future__ import annotations

import math
import random
from typing import Any

import lightning as L
import numpy as np
import torch

from microgesture.train.build import build_model
from microgesture.train.config import ExperimentConfig
from microgesture.train.ose import OSELoss
from microgesture.train.tasks import Task, logged_metrics, task_loss, task_metrics, tasks_for
from microgesture.typed_config import from_dict, to_dict


def class_weights(labels: np.ndarray, num_classes: int, mode: str, beta: float = 0.999) -> np.ndarray | None:
    """Loss weights from training label counts n_c.

    'sqrt': w_c ~ 1/sqrt(n_c) (square-root smoothed, arXiv 2606.13030); 'inverse': 1/n_c;
    'class_balanced': (1 - beta) / (1 - beta^n_c), the inverse effective number of samples (Cui et
    al. 2019, "Class-Balanced Loss Based on Effective Number of Samples"; beta -> 1 tends to
    'inverse', beta = 0 gives equal weights). Weights are normalised to mean 1 over the classes
    present; absent classes get weight 1.
    """
    if mode == "none":
        return None
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(np.float64)
    present = counts > 0
    n = counts[present]
    if mode == "class_balanced":
        raw = (1.0 - beta) / (1.0 - np.power(beta, n))
    else:
        raw = n ** -(0.5 if mode == "sqrt" else 1.0)
    weights = np.ones(num_classes)
    weights[present] = raw / raw.mean()
    return weights.astype(np.float32)


def _rows(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [..., C] and targets [...] as rows [M, C] and [M] (a bag's clips become rows; padded
    clip slots carry target -1 and count for nothing)."""
    return logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)


class Classifier(L.LightningModule):
    """A Recognizer (models/recognizer.py) with its tasks' losses and validation metrics.

    `forward(batch)` returns {task: logits}; a batch of K test clips per sample (`num_clips` > 1,
    every modality with a leading [N, K] axis) is averaged over its clips.
    """

    def __init__(
        self,
        config: dict[str, Any],
        num_classes: int,
        class_names: list[str],
        layout: str,
        class_weight: list[float] | None = None,
        encoders: dict[str, Any] | None = None,
        init_encoders: bool = True,
    ):
        """`encoders`: the token cache's description of the encoders a cache-trained fusion read."""
        super().__init__()
        self.save_hyperparameters(ignore=["init_encoders"])
        self.cfg: ExperimentConfig = from_dict(ExperimentConfig, config)
        self.tasks: list[Task] = tasks_for(self.cfg.task, num_classes)
        self.model = build_model(self.cfg.model, {t.name: t.num_outputs for t in self.tasks}, layout,
                                 cached=self.cfg.data.cache is not None, init_encoders=init_encoders,
                                 task=self.cfg.task)
        self.num_classes = num_classes
        self.class_names = list(class_names)
        weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
        self.register_buffer("class_weight", weight, persistent=False)
        ose = self.cfg.optim.ose
        has_mg = any(t.name == "mg" for t in self.tasks)
        self.ose = None if ose is None or not has_mg else OSELoss(
            self.model.embed_dims, num_classes, margin=ose.margin, orthogonality=ose.orthogonality,
            seed=self.cfg.trainer.seed)
        self._val_outputs: list[dict[str, torch.Tensor]] = []

    def configure_model(self) -> None:
        """Called by the Trainer before fitting: `trainer.compile` compiles the network in place."""
        if self.cfg.trainer.compile and not getattr(self.model, "_compiled_call_impl", None):
            self.model.compile()

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, **kwargs: Any) -> "Classifier":
        return cls(to_dict(cfg), **kwargs)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{task: logits [N, outputs]}; multi-clip batches are averaged over their clips. A batch of
        bags of clips per video (`clip_pad` [B, K], data/video_bags.py) gives video tasks [B, outputs]
        and clip tasks [B, K, outputs]."""
        keys = self.model.input_keys
        inputs = {k: batch[k] for k in (*keys, *self.model.mask_keys) if k in batch}
        if "clip_pad" in batch:
            return self.model(inputs, clip_pad=batch["clip_pad"])
        clips = int(batch["num_clips"].max()) if "num_clips" in batch else 1
        if clips == 1:
            return self.model(inputs)
        n = batch[keys[0]].shape[0]
        out = self.model({k: v.flatten(0, 1) for k, v in inputs.items()})
        return {task: logits.reshape(n, clips, -1).mean(dim=1) for task, logits in out.items()}

    def _loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        losses = []
        for task in self.tasks:
            logits, targets = _rows(outputs[task.name], batch[task.target])
            losses.append(task.weight * task_loss(task, logits, targets, class_weight=self.class_weight,
                                                  label_smoothing=self.cfg.optim.label_smoothing))
        return torch.stack(losses).sum()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        n = len(batch["index"])
        if self.ose is None:
            outputs = self(batch)
            loss = self._loss(outputs, batch)
        else:  # the OSE loss reads the embeddings the heads saw (train/ose.py)
            outputs, embeddings = self.model.forward_and_embed({k: batch[k] for k in self.model.input_keys})
            ose = self.ose(embeddings, batch["label"])
            self.log("train_ose", ose, on_step=False, on_epoch=True, batch_size=n)
            loss = self._loss(outputs, batch) + self.cfg.optim.ose.weight * ose
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        first = self.tasks[0]
        logits, labels = _rows(outputs[first.name], batch[first.target])
        acc = (logits.argmax(1) == labels).float()[labels >= 0].mean() if (labels >= 0).any() else None
        if acc is not None:
            self.log("train_top1" if first.name == "mg" else "train_emotion_accuracy", acc, on_step=False,
                     on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        outputs = self(batch)
        self.log("val_loss", self._loss(outputs, batch), on_epoch=True, batch_size=len(batch["index"]))
        kept = {}
        for t in self.tasks:
            logits, targets = _rows(outputs[t.name], batch[t.target])
            videos = batch["video_id"]
            if targets.shape[0] != videos.shape[0]:  # clips of bags: each carries its bag's video
                videos = videos[:, None].expand(batch[t.target].shape).reshape(-1)
            kept.update({f"scores_{t.name}": logits.detach().float().cpu(), f"target_{t.name}": targets.cpu(),
                         f"video_{t.name}": videos.cpu()})  # padded bag slots have target -1: not scored
        self._val_outputs.append(kept)

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        gathered = {k: torch.cat([o[k] for o in self._val_outputs]).numpy() for k in self._val_outputs[0]}
        self._val_outputs.clear()
        for task in self.tasks:
            metrics = task_metrics(task, gathered[f"scores_{task.name}"], gathered[f"target_{task.name}"],
                                   gathered[f"video_{task.name}"])
            for name, value in logged_metrics(task, metrics).items():
                self.log(name, float(value), prog_bar=name in ("val_top1", "val_emotion_accuracy"))

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
