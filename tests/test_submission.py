"""MiGA submission files: classification zips (2025 and 2023 styles), validation, online recognition."""

from __future__ import annotations

import csv
import pickle
import zipfile
from collections import defaultdict

import numpy as np
import pytest

from microgesture.domain.ids import parse_sample_name, sample_name
from microgesture.errors import DataError
from microgesture.eval.submission import (
    read_online_predictions,
    read_submission,
    write_online_predictions,
    write_online_submission,
    write_submission,
)

IDS = ["0001_0", "0001_1", "0002_0"]
CLASSES = np.array([3, 31, 0])


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_2025_style_zip(tmp_path):
    path = write_submission(tmp_path / "sub.zip", IDS, CLASSES)
    assert _members(path) == {"submission.csv": b"Id,Target\n0001_0,3\n0001_1,31\n0002_0,0\n"}
    back = read_submission(path)
    assert back.sample_ids == IDS and back.classes.tolist() == [3, 31, 0]
    assert back.style == "2025" and back.csv_name == "submission.csv"
    assert [p.name for p in tmp_path.iterdir()] == ["sub.zip"]  # atomic: no temp file left


def test_2023_style_and_custom_name(tmp_path):
    path = write_submission(tmp_path / "s.zip", IDS, CLASSES, style="2023")
    assert _members(path) == {"Submission.csv": b"0001_0,3\n0001_1,31\n0002_0,0\n"}
    assert read_submission(path).style == "2023"
    named = write_submission(tmp_path / "p.zip", IDS, CLASSES, csv_name="prediction.csv")
    assert list(_members(named)) == ["prediction.csv"]


def test_same_predictions_give_the_same_bytes(tmp_path):
    a = write_submission(tmp_path / "a.zip", IDS, CLASSES).read_bytes()
    b = write_submission(tmp_path / "b.zip", IDS, CLASSES).read_bytes()
    assert a == b


@pytest.mark.parametrize(
    "ids, classes, kwargs, match",
    [
        (IDS, [3, 32, 0], {}, "0..31"),
        (IDS, [3, -1, 0], {}, "0..31"),
        (IDS, [3, 1], {}, "3 sample ids"),
        (IDS, [0.5, 1, 2], {}, "integers"),
        (["0001_0", "0001_0", "x"], [1, 2, 3], {}, "twice"),
        (["a,b", "c", "d"], [1, 2, 3], {}, "comma"),
        (IDS, CLASSES, {"style": "2024"}, "style"),
        (IDS, CLASSES, {"csv_name": "sub/x.csv"}, "plain file name"),
    ],
)
def test_write_submission_rejects_bad_predictions(tmp_path, ids, classes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_submission(tmp_path / "s.zip", ids, np.asarray(classes), **kwargs)
    assert not (tmp_path / "s.zip").exists()


@pytest.mark.parametrize(
    "text, where, match",
    [
        ("Id,Target\n0001_0,3\n0001_0,4\n", "line 3", "already given on line 2"),
        ("0001_0,3\n0001_1,32\n", "line 2", "class 32 is outside 0..31"),
        ("0001_0,3\n0001_1\n", "line 2", "1 columns, expected 2"),
        ("0001_0,three\n", "line 1", "not an integer"),
        ("Id,Target\n", None, "no predictions"),
    ],
)
def test_read_submission_validates_rows(tmp_path, text, where, match):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("submission.csv", text)
    with pytest.raises(DataError, match=match) as info:
        read_submission(path)
    assert str(path) in str(info.value)
    if where:
        assert info.value.where == f"submission.csv {where}"


def test_read_submission_checks_zip_contents_and_expected_ids(tmp_path):
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", "0001_0,1\n")
        zf.writestr("b.csv", "0001_0,1\n")
    with pytest.raises(DataError, match="exactly one .csv"):
        read_submission(two)
    path = write_submission(tmp_path / "s.zip", IDS, CLASSES)
    assert read_submission(path, expected_ids=reversed(IDS)).sample_ids == IDS
    with pytest.raises(DataError, match=r"1 expected samples missing \(e.g. \['0009_0'\]\), 1 unexpected"):
        read_submission(path, expected_ids=["0001_0", "0001_1", "0009_0"])


def test_2023_output_equals_the_official_sample_byte_for_byte(shared_data, tmp_path):
    sample = shared_data / "miga2023" / "submission_sample.csv"
    raw = sample.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")  # LF endings: compare bytes directly
    with open(sample, newline="") as fh:
        rows = list(csv.reader(fh))
    ids, classes = [r[0] for r in rows], np.array([int(r[1]) for r in rows])
    path = write_submission(tmp_path / "Submission.zip", ids, classes, style="2023")
    assert _members(path) == {"Submission.csv": raw}
    parsed = read_submission(sample)  # the bare CSV validates too
    assert parsed.style == "2023" and parsed.sample_ids == ids and len(ids) == 777


def test_sample_naming_matches_the_official_label_file(shared_data):
    with open(shared_data / "miga2023" / "train_label.pkl", "rb") as fh:
        names, labels = pickle.load(fh)
    assert len(names) == len(set(names)) == len(labels) == 13670
    assert min(labels) == 0 and max(labels) == 31
    rows = defaultdict(list)
    for name in names:
        video, row = parse_sample_name(name)
        assert sample_name(video, row) == name  # the naming round-trips for every official name
        rows[video].append(row)
    # Row numbers are the 0-based rows of each video's label file: 0..n-1 without gaps.
    assert all(sorted(r) == list(range(len(r))) for r in rows.values())
    assert names[0] == sample_name(187, 0) == "0187_0"


@pytest.mark.parametrize("bad", ["187_0", "0187_01", "0187-0", "0187_", "x0187_0"])
def test_parse_sample_name_rejects_other_spellings(bad):
    with pytest.raises(ValueError):
        parse_sample_name(bad)


def test_online_predictions_use_the_label_file_codes(shared_data, tmp_path):
    # The one gesture of video 298's first 300 frames, predicted exactly: class index 3
    # ("touching or scratching head") is raw code 4, as in the official label file.
    out = write_online_predictions(tmp_path, 298, [(3, 168, 257)])
    assert out.name == "0298_prediction.csv"
    assert out.read_bytes() == (shared_data / "imigue" / "miga_layout" / "0298" / "0298_label.csv").read_bytes()


def test_online_predictions_round_trip_and_validation(tmp_path):
    segs = [(3, 168, 257), (31, 300, 320)]
    raw = write_online_predictions(tmp_path, 5, segs)
    assert raw.read_text() == "4,168,257\n99,300,320\n"  # illustrative = raw code 99
    assert read_online_predictions(raw) == segs
    idx = write_online_predictions(tmp_path / "idx", 5, segs, class_codes="index")
    assert idx.read_text() == "3,168,257\n31,300,320\n"
    assert read_online_predictions(idx, class_codes="index") == segs
    with pytest.raises(ValueError, match="segment 0"):
        write_online_predictions(tmp_path, 6, [(3, 20, 10)])
    bad = tmp_path / "0007_prediction.csv"
    bad.write_text("4,1,2\n50,3,4\n")
    with pytest.raises(DataError, match="line 2"):
        read_online_predictions(bad)
    zipped = write_online_submission(tmp_path / "online.zip", {12: [(0, 1, 5)], 3: []})
    assert _members(zipped) == {"0003_prediction.csv": b"", "0012_prediction.csv": b"1,1,5\n"}
