from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real sample files beside the project; tests using them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (it lives beside the project, not in it)")
    return SHARED_DATA


def make_tiny_annotations(path: Path, *, clips_per_class: int = 12, classes: int = 4, frames: int = 24, seed: int = 0) -> Path:
    """A small learnable skeleton set: each class moves the right wrist at its own frequency.

    Subjects 0-3 train, 4 validation, 5 test, so the split is subject-disjoint.
    """
    import numpy as np

    from microgesture.data.annotations import make_clip, save_annotations

    rng = np.random.default_rng(seed)
    clips, split = [], {"train": [], "val": [], "test": []}
    t = np.arange(frames)[:, None]
    for i in range(clips_per_class * classes):
        label, subject = i % classes, (i // classes) % 6
        kp = np.tile(rng.normal(0, 3, (1, 35, 2)) + [100, 80], (frames, 1, 1))
        kp[:, 1] = [100, 60]  # neck
        kp[:, 2], kp[:, 5] = [80, 62], [120, 62]  # shoulders
        phase = rng.uniform(0, 6.28)
        kp[:, 4] += np.hstack([np.sin(t * (label + 1) * 0.4 + phase), np.cos(t * (label + 1) * 0.4 + phase)]) * 15
        kp += rng.normal(0, 0.5, kp.shape)
        clip = make_clip(frame_dir=f"{i:04d}_0", label=label, keypoint=kp, keypoint_score=np.full((frames, 35), 0.9),
                         img_shape=(160, 200), layout="miga35", video_id=i, subject_id=subject)
        clips.append(clip)
        split["train" if subject < 4 else ("val" if subject == 4 else "test")].append(clip["frame_dir"])
    save_annotations(path, clips, split, {"classes": [f"class {k}" for k in range(classes)]})
    return path


@pytest.fixture(scope="session")
def tiny_annotations(tmp_path_factory) -> Path:
    return make_tiny_annotations(tmp_path_factory.mktemp("tiny") / "ann.pkl")


def tiny_overrides(annotations: Path, epochs: int = 3) -> list[str]:
    return [
        f"data.annotations={annotations}", "data.num_frames=16", "data.batch_size=8",
        "model.base_channels=8", f"trainer.max_epochs={epochs}", "trainer.progress_bar=false",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "optim.lr=0.05",
    ]
