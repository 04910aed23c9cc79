from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test` runs `-n 2`), one torch thread per worker: two workers with
    two threads each on two cores oversubscribe them, and torch's parallel regions then wait for
    descheduled threads (docs/benchmarks.md, "Threads on a busy machine")."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ.setdefault("OMP_NUM_THREADS", "1")  # the processes a test starts, too
        torch.set_num_threads(1)


SHARED_DATA = REPO.parent / "shared" / "data"


def run_script(name: str, *args: str, timeout: float = 300) -> str:
    """Run benchmarks/NAME with ARGS from the repository root; its stdout, or a failure with its output."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def interrupt_at(step: int):
    """A Lightning callback that simulates Ctrl-C before training step `step` (mid-epoch resume tests)."""
    import lightning as L

    class InterruptAt(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == step:
                raise KeyboardInterrupt

    return InterruptAt()


@pytest.fixture
def shared_data() -> Path:
    """The real sample files beside the project; tests using them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (it lives beside the project, not in it)")
    return SHARED_DATA


def _template():
    import numpy as np

    t = np.zeros((35, 2))
    t[:8] = [[100, 40], [100, 60], [80, 62], [72, 85], [78, 105], [120, 62], [128, 85], [122, 105]]
    t[15:19] = [[95, 36], [105, 36], [90, 38], [110, 38]]
    t[25:30] = [[70 + 3 * k, 112] for k in range(5)]
    t[30:35] = [[118 + 3 * k, 112] for k in range(5)]
    return t


LOWER = [8, 9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23, 24]
TEMPLATE = _template()


def make_tiny_annotations(path: Path, *, clips_per_class: int = 12, classes: int = 4, frames: int = 24, seed: int = 0) -> Path:
    """A small learnable skeleton set: each class moves one forearm and hand along one axis (4 classes).

    Subjects 0-3 train, 4 validation, 5 test, so the split is subject-disjoint.
    """
    import numpy as np

    from microgesture.data.formats.annotations import make_clip, save_annotations

    rng = np.random.default_rng(seed)
    clips, split = [], {"train": [], "val": [], "test": []}
    t = np.arange(frames)[:, None]
    for i in range(clips_per_class * classes):
        label, subject = i % classes, (i // classes) % 6
        kp = np.tile(TEMPLATE + rng.normal(0, 2, (35, 2)), (frames, 1, 1))
        # which forearm and hand move (elbow, wrist, fingertips), and along which axis
        arm = [3, 4, 25, 26, 27, 28, 29] if label // 2 % 2 == 0 else [6, 7, 30, 31, 32, 33, 34]
        axis = label % 2
        kp[:, arm, axis] += (np.sin(t[:, 0] * 0.3 + rng.uniform(0, 6.28)) * 20)[:, None]
        kp += rng.normal(0, 0.2, kp.shape)
        score = np.full((frames, 35), 0.9)
        score[:, LOWER] = 0
        kp[:, LOWER] = 0
        clip = make_clip(frame_dir=f"{i:04d}_0", label=label, keypoint=kp, keypoint_score=score,
                         img_shape=(160, 200), layout="miga35", video_id=i, subject_id=subject)
        clips.append(clip)
        split["train" if subject < 4 else ("val" if subject == 4 else "test")].append(clip["frame_dir"])
    save_annotations(path, clips, split, {"classes": [f"class {k}" for k in range(classes)]})
    return path


@pytest.fixture(autouse=True)
def _inline_loading(monkeypatch, request):
    """`data.num_workers: auto` (the default) starts loader worker processes in every test that
    trains, which made the suite 50% slower on 2 cores; here "auto" loads in the test's own process.
    Worker processes are tested where it matters (tests/test_train.py: the same batches and an
    exact resume with workers), and tests marked `auto_workers` keep the real behaviour."""
    if request.node.get_closest_marker("auto_workers") is not None:
        return
    from microgesture.train import datamodule

    real = datamodule.loader_workers

    def inline_when_auto(setting, cached=False):
        return 0 if setting == "auto" else real(setting, cached)

    monkeypatch.setattr(datamodule, "loader_workers", inline_when_auto)


@pytest.fixture(scope="session")
def tiny_annotations(tmp_path_factory) -> Path:
    return make_tiny_annotations(tmp_path_factory.mktemp("tiny") / "ann.pkl")


def tiny_overrides(annotations: Path, epochs: int = 3) -> list[str]:
    return [
        f"data.annotations={annotations}", "data.num_frames=16", "data.batch_size=8",
        "model.skeleton.base_channels=8", f"trainer.max_epochs={epochs}", "trainer.progress_bar=false",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "optim.lr=0.05",
        "data.num_workers=0",  # worker processes are tested on their own (test_train.py); here they would only add start-up time
    ]
