"""Score files (our CSV, MMAction2 pickles) and late fusion, including MMAction2's real demo files."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from microgesture.errors import ConfigError, DataError
from microgesture.eval.fuse import fuse, fusion_report, looks_like_probabilities, softmax
from microgesture.eval.metrics import classification_metrics
from microgesture.eval.scores import ScoreTable, read_scores, write_score_table, write_scores

HEADER = "sample_id,label,score_0,score_1,score_2\n"


def _table(ids, labels, scores, source=None):
    return ScoreTable(list(ids), np.asarray(labels), np.asarray(scores, dtype=np.float32), source)


# -- our CSV ----------------------------------------------------------------------------------
def test_csv_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((5, 3)) * 10.0 ** rng.integers(-8, 8, (5, 3))).astype(np.float32)
    ids = ["0001_0", "0001_1", "0002_0", "0002_1", "0003_0"]
    path = write_scores(tmp_path / "s.csv", ids, scores, [0, 2, -1, 1, 0])
    back = read_scores(path)
    assert back.sample_ids == ids
    assert back.labels.tolist() == [0, 2, -1, 1, 0] and back.labels.dtype == np.int64
    assert back.scores.dtype == np.float32 and np.array_equal(back.scores, scores)  # bit-exact
    assert back.source == path and not back.has_labels
    assert path.read_text().splitlines()[0] == HEADER.strip()
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]  # written atomically, no leftovers


def test_write_scores_accepts_a_table_and_unknown_labels(tmp_path):
    table = _table(["a", "b"], [1, 0], [[0.1, 0.9], [0.8, 0.2]])
    assert read_scores(write_scores(tmp_path / "t.csv", table)).labels.tolist() == [1, 0]
    assert read_scores(write_score_table(tmp_path / "u.csv", table)).sample_ids == ["a", "b"]
    assert read_scores(write_scores(tmp_path / "v.csv", ["x"], [[1.0, 2.0]])).labels.tolist() == [-1]


@pytest.mark.parametrize("ids", [["a,b"], ["a", "a"], [" a"], [""]])
def test_write_rejects_ids_that_break_the_csv(tmp_path, ids):
    with pytest.raises(ValueError):
        write_scores(tmp_path / "s.csv", ids, np.zeros((len(ids), 2)))
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize(
    "body, where, what",
    [
        ("a,0,1,2\n", "line 2", "4 columns, expected 5"),
        ("a,0,1,2,3\nb,0,1,x,3\n", "line 3", "column 'score_1': 'x' is not a number"),
        ("a,0,1,2,nan\n", "line 2", "column 'score_2'"),
        ("a,0,1e39,2,3\n", "line 2", "column 'score_0': '1e39' is not a finite float32"),
        ("a,3,1,2,3\n", "line 2", "column 'label': 3 is outside -1..2"),
        ("a,zero,1,2,3\n", "line 2", "column 'label'"),
        ("a,0,1,2,3\na,1,1,2,3\n", "line 3", "already used at line 2"),
        ("", None, "no samples"),
    ],
)
def test_malformed_csv_names_file_line_and_column(tmp_path, body, where, what):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(DataError) as info:
        read_scores(path)
    msg = str(info.value)
    assert str(path) in msg and what in msg
    if where:
        assert info.value.where == where


def test_bad_header_and_missing_file(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("id,label,score_0\na,0,1\n")
    with pytest.raises(DataError, match="line 1: expected header"):
        read_scores(path)
    with pytest.raises(DataError, match="not found"):
        read_scores(tmp_path / "nope.csv")


# -- MMAction2 pickles ------------------------------------------------------------------------
def test_mmaction2_v1_pickle_with_tensors_and_ids(tmp_path):
    records = [
        {"pred_score": torch.tensor([0.1, 0.7, 0.2]), "gt_label": torch.tensor([1]), "frame_dir": "0004_0"},
        {"pred_score": np.array([0.5, 0.25, 0.25]), "gt_label": 2, "frame_dir": "0004_1"},
    ]
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps(records))  # mmengine.dump writes plain pickles
    t = read_scores(path)
    assert t.sample_ids == ["0004_0", "0004_1"] and t.labels.tolist() == [1, 2]
    assert np.allclose(t.scores, [[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])


def test_mmaction2_ids_fall_back_to_sample_idx_then_position(tmp_path):
    records = [{"pred_score": torch.ones(2), "gt_label": torch.tensor([0]), "sample_idx": 7},
               {"pred_score": torch.ones(2)}]
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps(records))
    t = read_scores(path)
    assert t.sample_ids == ["#7", "#1"] and t.labels.tolist() == [0, -1]


def test_mmaction2_old_format_and_torch_save(tmp_path):
    arrays = [np.array([0.2, 0.8]), np.array([0.9, 0.1])]
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(arrays))
    old = read_scores(tmp_path / "old.pkl")
    assert old.sample_ids == ["#0", "#1"] and old.labels.tolist() == [-1, -1]
    assert np.allclose(old.scores, arrays)
    (tmp_path / "stacked.pkl").write_bytes(pickle.dumps(np.stack(arrays)))
    assert np.allclose(read_scores(tmp_path / "stacked.pkl").scores, arrays)
    torch.save([{"pred_score": torch.tensor([1.0, 2.0]), "gt_label": torch.tensor([1])}], tmp_path / "z.pth")
    assert read_scores(tmp_path / "z.pth").labels.tolist() == [1]


@pytest.mark.parametrize(
    "records, match",
    [
        ([{"pred_score": torch.ones(3)}, {"pred_score": torch.ones(4)}], "record 1: 4 scores, record 0 has 3"),
        ([{"pred_score": torch.ones(3), "gt_label": torch.tensor([0, 2])}], "record 0: gt_label has 2 values"),
        ([{"pred_score": torch.tensor([1.0, math.nan])}], "record 0: scores contain NaN"),
        ([{"gt_label": 1}], "record 0: no 'pred_score'"),
        ([{"pred_score": torch.ones(2), "frame_dir": "x"}] * 2, "record 1: sample id 'x' already used"),
        ({"not": "a list"}, "expected a non-empty list"),
    ],
)
def test_bad_mmaction2_pickles(tmp_path, records, match):
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps(records))
    with pytest.raises(DataError, match=match):
        read_scores(path)


def test_corrupt_pickle_is_a_data_error(tmp_path):
    path = tmp_path / "r.pkl"
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="not a readable score file"):
        read_scores(path)


# -- fusion -----------------------------------------------------------------------------------
A = _table(["s1", "s2"], [0, 1], [[2.0, 0.0], [1.0, 0.0]], "a.csv")
B = _table(["s2", "s1"], [1, 0], [[0.0, 4.0], [0.0, 1.0]], "b.csv")  # same samples, other order


def test_score_fusion_aligns_by_id_and_normalises_weights():
    f = fuse([A, B], weights=[3, 1])
    # weights -> 3/4, 1/4; s1 = 0.75*[2,0] + 0.25*[0,1]; s2 = 0.75*[1,0] + 0.25*[0,4].
    assert f.sample_ids == ["s1", "s2"] and f.labels.tolist() == [0, 1]
    assert np.allclose(f.scores, [[1.5, 0.25], [0.75, 1.0]])
    assert np.allclose(fuse([A, B], weights=[6, 2]).scores, f.scores)  # scale-free


def test_softmax_fusion_hand_computed():
    logits = _table(["x"], [1], [[0.0, math.log(3.0)]])
    # softmax([0, ln 3]) = [1/4, 3/4]; at T = 2: softmax([0, ln 3 / 2]) = [1, sqrt 3] / (1 + sqrt 3).
    assert np.allclose(fuse([logits], mode="softmax").scores, [[0.25, 0.75]])
    r3 = math.sqrt(3.0)
    assert np.allclose(fuse([logits], mode="softmax", temperature=2.0).scores, [[1 / (1 + r3), r3 / (1 + r3)]])
    # Probabilities are recognised and not squashed again: T = 1 gives them back.
    probs = _table(["x"], [1], [[0.25, 0.75]])
    assert looks_like_probabilities(probs.scores) and not looks_like_probabilities(logits.scores)
    assert np.allclose(fuse([probs], mode="softmax").scores, [[0.25, 0.75]])
    assert np.allclose(fuse([probs], mode="softmax", probabilities=False).scores, softmax([[0.25, 0.75]]))
    # Per-stream temperatures: stream 1 at T = 1, stream 2 at T = 2, equal weights.
    both = fuse([logits, logits], mode="softmax", temperature=[1.0, 2.0]).scores
    assert np.allclose(both, [[(0.25 + 1 / (1 + r3)) / 2, (0.75 + r3 / (1 + r3)) / 2]])


def test_fusion_errors_name_the_files():
    other = _table(["s1", "s3"], [0, 1], [[0.0, 1.0], [1.0, 0.0]], "c.csv")
    with pytest.raises(DataError, match=r"c\.csv.*different samples from a\.csv.*'s3'.*'s2'"):
        fuse([A, other])
    clash = _table(["s1", "s2"], [1, 1], [[0.0, 1.0], [1.0, 0.0]], "d.csv")
    with pytest.raises(DataError, match=r"d\.csv.*'s1' has label 1, but 0 in a\.csv"):
        fuse([A, clash])
    wide = _table(["s1", "s2"], [0, 1], np.zeros((2, 3)), "e.csv")
    with pytest.raises(DataError, match=r"e\.csv.*3 classes, but a\.csv has 2"):
        fuse([A, wide])


def test_unknown_labels_are_filled_from_another_file():
    unknown = _table(["s1", "s2"], [-1, -1], [[0.0, 1.0], [1.0, 0.0]], "u.csv")
    assert fuse([unknown, B]).labels.tolist() == [0, 1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weights": [1.0]}, "1 weights for 2"),
        ({"weights": [1.0, -1.0]}, ">= 0"),
        ({"weights": [0.0, 0.0]}, "positive sum"),
        ({"mode": "mean"}, "not one of"),
        ({"temperature": 2.0}, "mode 'softmax' only"),
        ({"mode": "softmax", "temperature": 0.0}, "> 0"),
    ],
)
def test_bad_fusion_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fuse([A, B], **kwargs)


def test_fusion_report_flags_a_fusion_below_its_best_stream():
    # Stream "big" has logits 100x larger: the raw sum follows it even where it is wrong.
    good = _table(["p", "q"], [0, 1], [[1.0, 0.0], [0.0, 1.0]], "good.csv")
    big = _table(["p", "q"], [0, 1], [[0.0, 100.0], [0.0, 100.0]], "big.csv")
    report = fusion_report([good, big], fuse([good, big]))
    assert report["streams"]["good.csv"]["top1"] == 1.0 and report["fused"]["top1"] == 0.5
    assert report["gain_over_best_top1"] == -0.5
    # Soft voting at a high temperature for the overconfident stream repairs it.
    fixed = fuse([good, big], mode="softmax", temperature=[1.0, 1000.0])
    assert fusion_report([good, big], fixed)["fused"]["top1"] == 1.0


# -- MMAction2's real demo score files --------------------------------------------------------
def test_real_mmaction2_demo_files(shared_data):
    folder = shared_data / "mmaction2_scores"
    joint = read_scores(folder / "demo_fuse_joint.pkl")
    bone = read_scores(folder / "demo_fuse_bone.pkl")
    assert joint.scores.shape == bone.scores.shape == (60, 120) and joint.has_labels
    assert joint.sample_ids[:2] == ["#0", "#1"]  # no ids in these files: positions
    top1 = {n: classification_metrics(t.scores, t.labels)["top1"] for n, t in (("joint", joint), ("bone", bone))}
    assert round(top1["joint"], 3) == 0.917 and round(top1["bone"], 3) == 0.933  # MMAction2's figures
    fused = fuse([joint, bone], weights=[1, 1])
    report = fusion_report([joint, bone], fused)
    assert round(report["fused"]["top1"], 3) == 0.933 and report["gain_over_best_top1"] >= 0
    # These files hold probabilities: soft voting at T = 1 equals the score average.
    soft = fuse([joint, bone], mode="softmax")
    assert np.allclose(soft.scores, fused.scores, atol=1e-5)
