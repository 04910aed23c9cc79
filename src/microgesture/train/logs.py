"""Training logs: a CSV logger that keeps what a run logged before it was interrupted, and a
one-line-per-epoch progress report.

Lightning's CSV writer deletes `metrics.csv` when a logger starts in an existing folder, so a
resumed run would lose its first epochs' curves. Ours appends instead (rows of the epoch that
was redone after an interruption appear twice; the curves plot averages them).
"""

from __future__ import annotations

import csv
import os
import sys
import time

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as fh:
                header = next(csv.reader(fh), [])
            self.metrics_keys = sorted(header)


class AppendingCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class EpochLine(Callback):
    """One line per epoch (loss and the headline metrics), for logs and terminals without a bar."""

    KEYS = ("train_loss", "train_top1", "val_loss", "val_top1", "val_macro_f1", "val_emotion_accuracy",
            "val_emotion_auc")

    def __init__(self, prefix: str = "", stream=None):
        self.prefix = prefix
        self.stream = stream
        self._started = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0 or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        parts = [f"{k} {float(metrics[k]):.3f}" for k in self.KEYS if k in metrics]
        seconds = time.perf_counter() - self._started
        line = f"{self.prefix}epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {', '.join(parts)} ({seconds:.0f} s)"
        print(line, file=self.stream or sys.stdout, flush=True)
