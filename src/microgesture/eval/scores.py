"""Per-sample score files: our CSV, and MMAction2's result pickles.

Our CSV has the header `sample_id,label,score_0,...,score_{K-1}`, one row per sample, `label` the
0-based class or -1 when unknown, scores as raw model outputs (logits or probabilities: the file
does not say which). Scores are written with 9 significant digits, which round-trips float32.
Sample ids are unique and contain no comma, quote or line break.

MMAction2 pickles (`tools/test.py --dump` or `--out`), read by `read_scores` as well:
- MMAction2 >= 1.0: a list of dicts with `pred_score` (tensor or ndarray, shape (K,)) and
  `gt_label` (tensor (1,) or int); ids from `frame_dir`, else `#<sample_idx>`, else `#<position>`.
  (The 1.0 release candidates' `pred_scores`/`gt_labels` dicts with an `item` tensor are read too.)
- MMAction2 0.x: a list of score arrays (K,) or one [N, K] array, without labels (labels -1).
The `#<index>` ids make two pickles of the same test list align position by position.

Security: pickles are read with a restricted unpickler that allows only numpy arrays, builtin
containers and torch tensors (their storages through `torch.load(weights_only=True)`), and torch
zip archives with `torch.load(weights_only=True)`: a crafted file is refused, never run.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.errors import DataError
from microgesture.utils.io import atomic_open
from microgesture.utils.safe_pickle import load_pickle

PICKLE_SUFFIXES = (".pkl", ".pickle", ".pth", ".pt")
_FORBIDDEN_ID_CHARS = (",", '"', "\n", "\r")


@dataclass
class ScoreTable:
    """Scores [N, K] (float32) of N samples with their ids and labels (int64, -1 unknown)."""

    sample_ids: list[str]
    labels: np.ndarray
    scores: np.ndarray
    source: Path | None = field(default=None)

    def __post_init__(self) -> None:
        self.sample_ids = [str(s) for s in self.sample_ids]
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        n = len(self.sample_ids)
        if self.scores.ndim != 2 or self.scores.shape[0] != n or self.labels.shape != (n,):
            raise ValueError(
                f"ScoreTable: {n} ids, labels {self.labels.shape}, scores {self.scores.shape} "
                "(expected [N], [N] and [N, K])"
            )

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def num_classes(self) -> int:
        return int(self.scores.shape[1])

    @property
    def has_labels(self) -> bool:
        """True when every sample has a known label."""
        return bool(len(self.labels)) and bool(np.all(self.labels >= 0))

    @property
    def name(self) -> str:
        return str(self.source) if self.source is not None else "<in memory>"


def write_scores(
    path: str | Path,
    table_or_ids: ScoreTable | Sequence[str],
    scores: Any = None,
    labels: Any = None,
) -> Path:
    """Write our score CSV atomically.

    Either `write_scores(path, table)` or `write_scores(path, sample_ids, scores, labels=None)`
    (labels None: all unknown, -1). Raises ValueError for ids that would break the CSV
    (empty, padded, with a comma, quote or line break, or repeated) and for non-finite scores.
    """
    if isinstance(table_or_ids, ScoreTable):
        if scores is not None or labels is not None:
            raise TypeError("write_scores(path, table) takes no separate scores or labels")
        return write_score_table(path, table_or_ids)
    if scores is None:
        raise TypeError("write_scores(path, sample_ids, scores, labels=None) needs scores")
    ids = list(table_or_ids)
    table = ScoreTable(ids, np.full(len(ids), -1) if labels is None else labels, scores)
    return write_score_table(path, table)


def write_score_table(path: str | Path, table: ScoreTable) -> Path:
    """Write a `ScoreTable` as our score CSV, atomically (see the module docstring)."""
    _check_ids(table.sample_ids, "sample ids")
    if not np.all(np.isfinite(table.scores)):
        raise ValueError("scores contain NaN or infinite values; they cannot be written")
    if np.any(table.labels < -1) or np.any(table.labels >= table.num_classes):
        raise ValueError(f"labels must be -1 or 0..{table.num_classes - 1}")
    header = ["sample_id", "label"] + [f"score_{j}" for j in range(table.num_classes)]
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(header) + "\n")
        for sid, label, row in zip(table.sample_ids, table.labels, table.scores):
            fh.write(f"{sid},{int(label)}," + ",".join(f"{float(v):.9g}" for v in row) + "\n")
    return Path(path)


def _check_ids(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for sid in ids:
        if not sid or any(c in sid for c in _FORBIDDEN_ID_CHARS) or sid != sid.strip():
            raise ValueError(f"{what}: {sid!r} is empty, padded or contains a comma/quote/newline")
        if sid in seen:
            raise ValueError(f"{what}: {sid!r} appears twice")
        seen.add(sid)


def read_scores(path: str | Path) -> ScoreTable:
    """Read our score CSV or an MMAction2 result pickle (chosen by suffix, then by content)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "score file not found")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if path.suffix.lower() in PICKLE_SUFFIXES or head[:1] == b"\x80" or head == b"PK":
        return _from_records(path, _load_pickle(path))
    return _read_csv(path)


def _read_csv(path: Path) -> ScoreTable:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DataError(path, "empty file; expected header sample_id,label,score_0,...")
        k = len(header) - 2
        expected = ["sample_id", "label"] + [f"score_{j}" for j in range(k)]
        if k < 1 or [h.strip() for h in header] != expected:
            got = ",".join(header)[:200]
            raise DataError(path, f"expected header sample_id,label,score_0,...,score_<K-1>; got {got!r}", "line 1")
        ids, labels, rows, lines = [], [], [], []
        for row in reader:
            where = f"line {reader.line_num}"
            if not row or row == [""]:
                continue  # a blank line, e.g. at the end
            if len(row) != len(header):
                raise DataError(path, f"{len(row)} columns, expected {len(header)} as in the header", where)
            ids.append(row[0].strip())
            labels.append(_parse_label(path, where, row[1], k))
            rows.append(row[2:])
            lines.append(reader.line_num)
    if not ids:
        raise DataError(path, "no samples after the header")
    _check_unique(path, ids, [f"line {n}" for n in lines])
    return ScoreTable(ids, np.asarray(labels), _parse_scores(path, rows, lines), path)


def _parse_label(path: Path, where: str, text: str, k: int) -> int:
    try:
        label = int(text)
    except ValueError:
        raise DataError(path, f"column 'label': {text!r} is not an integer", where) from None
    if not -1 <= label < k:
        raise DataError(path, f"column 'label': {label} is outside -1..{k - 1}", where)
    return label


def _parse_scores(path: Path, rows: list[list[str]], lines: list[int]) -> np.ndarray:
    try:
        values = np.asarray(rows, dtype=np.float64)
    except ValueError:
        values = None
    if values is None:  # find the offending cell for the message
        for row, line in zip(rows, lines):
            for j, text in enumerate(row):
                try:
                    float(text)
                except ValueError:
                    raise DataError(path, f"column 'score_{j}': {text!r} is not a number", f"line {line}") from None
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, reported below
        scores = values.astype(np.float32)
    bad = np.argwhere(~np.isfinite(scores))
    if len(bad):
        i, j = bad[0]
        raise DataError(path, f"column 'score_{j}': {rows[i][j]!r} is not a finite float32", f"line {lines[i]}")
    return scores


def _check_unique(path: Path, ids: list[str], places: list[str]) -> None:
    first: dict[str, str] = {}
    for sid, where in zip(ids, places):
        if not sid:
            raise DataError(path, "empty sample id", where)
        if sid in first:
            raise DataError(path, f"sample id {sid!r} already used at {first[sid]}", where)
        first[sid] = where


def _load_pickle(path: Path) -> Any:
    """An MMAction2 result file, read without running any code in it (see module doc)."""
    with open(path, "rb") as fh:
        zipped = fh.read(2) == b"PK"
    if not zipped:
        return load_pickle(path, what="score file", torch_tensors=True)
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, foreign, or objects that would run code
        raise DataError(path, f"not a readable score file: refused by a safe load ({str(exc).splitlines()[0]})") from None


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().float().numpy()
    return np.asarray(value)


def _from_records(path: Path, data: Any) -> ScoreTable:
    if isinstance(data, np.ndarray) and data.ndim == 2:
        data = list(data)
    if not isinstance(data, (list, tuple)) or not data:
        raise DataError(path, f"expected a non-empty list of MMAction2 results, got {type(data).__name__}")
    ids, labels, rows = [], [], []
    for i, rec in enumerate(data):
        where = f"record {i}"
        if isinstance(rec, dict):
            score, label, sid = _parse_record(path, where, rec, i)
        else:  # MMAction2 0.x: bare score arrays, no labels
            score, label, sid = _to_numpy(rec), -1, f"#{i}"
        if score.ndim != 1 or score.size == 0:
            raise DataError(path, f"scores of shape {score.shape}, expected (K,)", where)
        if rows and score.size != rows[0].size:
            raise DataError(path, f"{score.size} scores, record 0 has {rows[0].size}", where)
        if not np.all(np.isfinite(score)):
            raise DataError(path, "scores contain NaN or infinite values", where)
        if not -1 <= label < score.size:
            raise DataError(path, f"label {label} is outside -1..{score.size - 1}", where)
        ids.append(sid)
        labels.append(label)
        rows.append(score.astype(np.float32))
    _check_unique(path, ids, [f"record {i}" for i in range(len(ids))])
    return ScoreTable(ids, np.asarray(labels), np.stack(rows), path)


def _parse_record(path: Path, where: str, rec: dict, i: int) -> tuple[np.ndarray, int, str]:
    score = rec.get("pred_score")
    if score is None and isinstance(rec.get("pred_scores"), dict):
        score = rec["pred_scores"].get("item")
    if score is None:
        raise DataError(path, f"no 'pred_score' (keys: {sorted(rec)})", where)
    label = rec.get("gt_label")
    if label is None and isinstance(rec.get("gt_labels"), dict):
        label = rec["gt_labels"].get("item")
    if label is None:
        label_int = -1
    else:
        arr = _to_numpy(label).reshape(-1)
        if arr.size != 1:
            raise DataError(path, f"gt_label has {arr.size} values; multi-label results are not supported", where)
        label_int = int(arr[0])
    if rec.get("frame_dir") is not None:
        sid = str(rec["frame_dir"])
    elif rec.get("sample_idx") is not None:
        sid = f"#{int(rec['sample_idx'])}"
    else:
        sid = f"#{i}"
    return _to_numpy(score), label_int, sid
