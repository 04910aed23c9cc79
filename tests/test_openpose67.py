"""The 67-joint OpenPose layout (BODY_25 + both full hands) end to end: JSON import, joint + bone streams, CMTF."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microgesture.data.formats.annotations import load_annotations
from microgesture.data.formats.openpose import import_openpose_to_file
from microgesture.domain.layouts import OPENPOSE67
from test_openpose import person, write_frame, write_table

SUBJECTS = {1: 2, 2: 4, 3: 5, 4: 1}  # video -> subject: 2, 4, 5 are iMiGUE training subjects, 1 is test


@pytest.fixture(scope="module")
def openpose67_annotations(tmp_path_factory):
    root = tmp_path_factory.mktemp("op67")
    rows = []
    for vid, subject in SUBJECTS.items():
        for frame in range(24):
            moving = person(100.0 + 5 * np.sin(frame * 0.5 + vid), conf=0.9)
            write_frame(root / "json" / f"{vid:04d}", f"{vid:04d}", frame, [moving])
        rows += [(vid, 1, 0, 0, 0, 11, 4, subject, "M", "X", "Win"),
                 (vid, 2, 0, 12, 0, 23, 99, subject, "M", "X", "Win")]
    table = write_table(root / "labels.csv", rows)
    out = root / "op67.pkl"
    import_openpose_to_file(root / "json", table, out, layout="openpose67", val_fraction=0.34, seed=0)
    return out


def test_import_keeps_both_hands(openpose67_annotations):
    data = load_annotations(openpose67_annotations)
    clip = data["annotations"][0]
    assert clip["layout"] == "openpose67" and clip["keypoint"].shape == (1, 12, 67, 2)
    assert clip["keypoint_score"][0, :, 25:].min() == pytest.approx(0.9)  # 21 + 21 hand points, all detected
    assert data["videos"][0]["skeleton_format"] == "openpose_json"
    assert set(data["split"]) == {"train", "val", "test"}
    # every hand point hangs from its own wrist: the bone stream uses the full hands
    assert OPENPOSE67.parents[OPENPOSE67.index("r_wrist_hand")] == OPENPOSE67.index("r_wrist")
    assert OPENPOSE67.parents[OPENPOSE67.index("l_index_4")] == OPENPOSE67.index("l_index_3")


@pytest.mark.parametrize("fusion", ["cmtf", "late"])
def test_joint_and_bone_streams_train_on_67_joints(tmp_path, openpose67_annotations, fusion):
    from microgesture.train.build import build_model
    from microgesture.train.config import load_config
    from microgesture.train.run import fit, load_module

    cfg = load_config(None, [
        f"data.annotations={openpose67_annotations}", "data.layout=openpose67", "data.num_frames=8",
        "data.batch_size=4", "trainer.max_epochs=1", "trainer.progress_bar=false", "trainer.accelerator=cpu",
        "model.streams={joint: {encoder: agcn, base_channels: 4}, bone: {encoder: agcn, base_channels: 4}}",
        f"model.fusion={{kind: {fusion}, width: 16, depth: 1, heads: 2, hidden: 16}}",
    ])
    model = build_model(cfg.model, {"mg": 32}, cfg.data.layout)
    assert {enc.num_joints for enc in model.encoders.values()} == {67}
    run = fit(cfg, tmp_path / "run")
    module = load_module(run.last_checkpoint, cfg)
    x = {name: torch.randn(2, 1, 8, 67, 3) for name in ("joint", "bone")}
    with torch.no_grad():
        assert module.model(x)["mg"].shape == (2, 32)
