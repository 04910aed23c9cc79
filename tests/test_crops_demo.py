"""The demo's RGB part on a tiny dataset: crops stream, cached tokens, CMTF, side-by-side report."""

import json

import pytest

from microgesture.apps.crops_demo import run_crops_demo
from microgesture.apps.demo import run_demo

TINY = dict(subjects=3, videos_per_subject=1, val_fraction=0.5)


@pytest.mark.slow
def test_crops_demo_adds_rgb_and_cmtf_to_the_demo_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    run_demo(out, epochs=1, emotion=False, analyze=False, **TINY)  # the skeleton stage is all it needs
    results = run_crops_demo(out, rgb_epochs=1, fusion_epochs=1, **TINY)
    printed = capsys.readouterr().out
    rows = ["2s-AGCN joint", "2s-AGCN bone", "RGB crops (light)", "late fusion joint+bone (1:1)",
            "CMTF joint+bone+RGB crops"]
    assert list(results) == rows
    for row in rows:
        assert row in printed and 0.0 <= results[row]["top1"] <= 1.0
    assert results["2s-AGCN joint"]["top1"] == json.loads((out / "joint" / "eval" / "metrics.json").read_text())["top1"]
    for path in ("results_crops.md", "rgb_crops/checkpoints/best.ckpt", "cmtf/eval/scores.csv",
                 "cache_crops/manifest.json"):
        assert (out / path).is_file(), path
    again = run_crops_demo(out, rgb_epochs=1, fusion_epochs=1, **TINY)  # finished runs are reused
    assert again["CMTF joint+bone+RGB crops"]["top1"] == results["CMTF joint+bone+RGB crops"]["top1"]
