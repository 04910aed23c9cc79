"""Token cache (manifest, shards, staleness, lazy reads) and token extraction (resume, real AGCN)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from microgesture.data.cache import MANIFEST, TokenCache, encoder_meta, sha256_file, shard_name
from microgesture.errors import DataError
from microgesture.train.extract import extract_tokens

META = {"skel": {"config": {"dim": 4}}, "rgb": {"config": {"kind": "mean"}}}


@pytest.fixture
def ann(tmp_path):
    path = tmp_path / "ann.pkl"
    path.write_bytes(b"annotations v1")
    return path


def sample_tensors(i: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    return {"a_tokens": torch.randn(3, 5, generator=g), "a_embedding": torch.randn(5, generator=g)}


# ----------------------------------------------------------------------------- cache


def test_cache_writes_shards_and_reads_float32(tmp_path, ann):
    ids = {"train": [f"t{i}" for i in range(5)], "test": ["x0", "x1"]}
    cache = TokenCache.create_or_resume(tmp_path / "c", ann, META, ids, shard_size=2)
    assert cache.pending_shards() == [0, 1, 2, 3]  # train 2+2+1, test 2: shards never span splits
    assert cache.shard_range(2) == ("train", 4, 5) and cache.shard_ids(3) == ["x0", "x1"]
    all_ids = [i for v in ids.values() for i in v]
    for k in range(4):
        cache.write_shard(k, {i: sample_tensors(all_ids.index(i)) for i in cache.shard_ids(k)})
    assert cache.is_complete
    manifest = json.loads((tmp_path / "c" / MANIFEST).read_text())
    assert manifest["format"] == "microgesture-token-cache" and manifest["complete"] == [0, 1, 2, 3]
    assert manifest["annotations"]["sha256"] == sha256_file(ann)
    assert manifest["splits"] == ids and manifest["shard_size"] == 2
    assert manifest["encoders"]["skel"] == {"name": "skel", "config": {"dim": 4}, "checkpoint": None,
                                            "checkpoint_sha256": None}
    stored = torch.load(tmp_path / "c" / shard_name(1), weights_only=True)
    assert stored["t2"]["a_tokens"].dtype == torch.float16
    reader = TokenCache.open(tmp_path / "c", ann, ids, lru_shards=1)
    for n, i in enumerate(all_ids):
        got = reader.get(i)
        assert got["a_tokens"].dtype == torch.float32 and got["a_tokens"].shape == (3, 5)
        torch.testing.assert_close(got["a_tokens"], sample_tensors(n)["a_tokens"].half().float())
        assert len(reader._lru) <= 1
    got = reader.get("t0")
    got["a_tokens"].zero_()  # a fresh copy: the cached shard is untouched
    assert reader.get("t0")["a_tokens"].abs().sum() > 0
    assert not list((tmp_path / "c").glob(".*"))  # no temporary files left


def test_cache_keeps_float32_where_float16_would_overflow(tmp_path, ann):
    cache = TokenCache.create_or_resume(tmp_path / "c", ann, META, ["a"], shard_size=4)
    cache.write_shard(0, {"a": {"big": torch.tensor([1e6, 1.5]), "idx": torch.tensor([3, 4])}})
    got = TokenCache.open(tmp_path / "c", ann).get("a")
    assert got["big"].tolist() == [1e6, 1.5] and got["idx"].dtype == torch.int64


def test_stale_annotations_or_encoders_are_refused(tmp_path, ann):
    ids = ["a", "b", "c"]
    TokenCache.create_or_resume(tmp_path / "c", ann, META, ids, shard_size=2)
    ann.write_bytes(b"annotations v2")
    for call in (lambda: TokenCache.create_or_resume(tmp_path / "c", ann, META, ids, shard_size=2),
                 lambda: TokenCache.open(tmp_path / "c", ann)):
        with pytest.raises(DataError, match="stale cache: made from .*ann.pkl \\(sha [0-9a-f]{12}\\), now") as err:
            call()
        assert "delete the folder or choose another --out" in str(err.value)
    ann.write_bytes(b"annotations v1")  # same content again: accepted, wherever the file is
    moved = tmp_path / "elsewhere.pkl"
    moved.write_bytes(b"annotations v1")
    TokenCache.create_or_resume(tmp_path / "c", moved, META, ids, shard_size=2)
    other = {"skel": {"config": {"dim": 8}}, "rgb": {"config": {"kind": "mean"}}}
    with pytest.raises(DataError, match="stale cache: made with encoders"):
        TokenCache.create_or_resume(tmp_path / "c", ann, other, ids, shard_size=2)
    with pytest.raises(DataError, match="stale cache: made with encoders"):
        TokenCache.open(tmp_path / "c", ann, encoders_meta=other)
    with pytest.raises(DataError, match="stale cache: made for samples"):
        TokenCache.create_or_resume(tmp_path / "c", ann, META, ids + ["d"], shard_size=2)


def test_checkpoint_content_not_path_identifies_an_encoder(tmp_path, ann):
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"weights 1")
    meta = {"skel": encoder_meta("skel", {"dim": (4, 4)}, ckpt)}
    assert meta["skel"]["checkpoint_sha256"] == sha256_file(ckpt) and meta["skel"]["config"] == {"dim": [4, 4]}
    TokenCache.create_or_resume(tmp_path / "c", ann, meta, ["a"], shard_size=1)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(b"weights 1")
    TokenCache.create_or_resume(tmp_path / "c", ann, {"skel": {"config": {"dim": [4, 4]}, "checkpoint": copy}},
                                ["a"], shard_size=1)
    ckpt.write_bytes(b"weights 2")
    with pytest.raises(DataError, match="stale cache: made with encoders"):
        TokenCache.create_or_resume(tmp_path / "c", ann, {"skel": encoder_meta("skel", {"dim": [4, 4]}, ckpt)},
                                    ["a"], shard_size=1)
    with pytest.raises(DataError, match="not found"):
        encoder_meta("skel", {}, tmp_path / "missing.pt")


def test_resume_skips_complete_shards_and_open_names_missing_ids(tmp_path, ann):
    ids = [f"s{i}" for i in range(5)]
    cache = TokenCache.create_or_resume(tmp_path / "c", ann, META, ids, shard_size=2)
    cache.write_shard(0, {"s0": sample_tensors(0), "s1": sample_tensors(1)})
    again = TokenCache.create_or_resume(tmp_path / "c", ann, META, ids, shard_size=2)
    assert again.pending_shards() == [1, 2]
    assert "s1" in again and "s2" not in again
    with pytest.raises(DataError, match="not extracted yet, e.g. 's2', 's3', 's4'"):
        TokenCache.open(tmp_path / "c", ann, ids)
    with pytest.raises(DataError, match="1 sample id\\(s\\) not in the cache, e.g. 'zz'"):
        TokenCache.open(tmp_path / "c", ann, ["s0", "zz"])
    assert TokenCache.open(tmp_path / "c", ann, ["s0", "s1"]).get("s1")["a_embedding"].shape == (5,)
    with pytest.raises(DataError, match="missing"):
        again.write_shard(1, {"s2": sample_tensors(2)})
    (tmp_path / "c" / shard_name(0)).unlink()  # a complete shard lost on disk is redone
    assert TokenCache.create_or_resume(tmp_path / "c", ann, META, ids, shard_size=2).pending_shards() == [0, 1, 2]


def test_bad_folders_and_ids(tmp_path, ann):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    with pytest.raises(DataError, match="not a token cache"):
        TokenCache.create_or_resume(tmp_path / "busy", ann, META, ["a"])
    with pytest.raises(DataError, match="appears twice"):
        TokenCache.create_or_resume(tmp_path / "c", ann, META, {"train": ["a"], "test": ["a"]})
    with pytest.raises(DataError, match="manifest.json missing"):
        TokenCache.open(tmp_path / "nothing", ann)


# ----------------------------------------------------------------------------- extraction


class FakeData(Dataset):
    """Deterministic tiny samples; `fail_at` raises when that item is loaded (an interruption)."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at, self.loaded = n, fail_at, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError("interrupted")
        self.loaded.append(i)
        g = torch.Generator().manual_seed(1000 + i)
        return {"skeleton": torch.randn(1, 6, 5, 3, generator=g), "rgb": torch.rand(3, 4, 8, 8, generator=g),
                "index": torch.tensor(i)}


class FakeSkeletonEncoder(nn.Module):
    """[N, M, T, V, C] -> tokens [N, T, V, 4] like AGCN; mean-pooled embedding."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.dropout = nn.Dropout(0.9)  # must be off: the extractor puts encoders in eval mode

    def forward_features(self, x):
        return self.dropout(self.proj(x.mean(1)))

    def pool(self, tokens):
        return tokens.mean(dim=(1, 2))


class FakeRGBEncoder(nn.Module):
    """[N, 3, T, H, W] -> tokens [N, T, 3]; embedding: the mean token."""

    def forward_features(self, x):
        return x.mean(dim=(3, 4)).transpose(1, 2)

    def pool(self, tokens):
        return tokens.mean(dim=1)


def encoders():
    torch.manual_seed(0)
    return {"skel": (FakeSkeletonEncoder(), "skeleton"), "rgb": (FakeRGBEncoder(), "rgb")}


def run(cache_dir, ann, data: dict[str, FakeData], batch_size=2, shard_size=4, encs=None):
    loaders = {s: DataLoader(d, batch_size=batch_size, shuffle=False) for s, d in data.items()}
    ids = {s: [f"{s}_{i}" for i in range(len(d))] for s, d in data.items()}
    return extract_tokens(cache_dir, ann, loaders, encs or encoders(), sample_ids_of=ids, encoders_meta=META,
                          shard_size=shard_size, device="cpu", progress=False)


def test_extract_stores_tokens_and_embeddings_per_sample(tmp_path, ann):
    data = {"train": FakeData(7), "test": FakeData(3)}
    encs = encoders()
    out = run(tmp_path / "c", ann, data, encs=encs)
    cache = TokenCache.open(out, ann, {s: [f"{s}_{i}" for i in range(len(d))] for s, d in data.items()})
    assert len(cache) == 10 and cache.is_complete and len(cache.manifest["shards"]) == 2 + 1
    skel = encs["skel"][0]
    assert not skel.training
    for i in range(7):
        got = cache.get(f"train_{i}")
        item = data["train"][i]
        assert set(got) == {"skel_tokens", "skel_embedding", "rgb_tokens", "rgb_embedding"}
        assert got["skel_tokens"].shape == (6, 5, 4) and got["skel_embedding"].shape == (4,)
        assert got["rgb_tokens"].shape == (4, 3) and got["rgb_embedding"].shape == (3,)
        with torch.no_grad():
            want = skel.forward_features(item["skeleton"][None])[0]
        torch.testing.assert_close(got["skel_tokens"], want, atol=2e-3, rtol=2e-3)  # float16 storage
        torch.testing.assert_close(got["rgb_embedding"], item["rgb"].mean(dim=(1, 2, 3)), atol=2e-3, rtol=2e-3)
    assert not torch.equal(cache.get("test_0")["rgb_tokens"], cache.get("test_1")["rgb_tokens"])
    # A second run over a complete cache does nothing (loads no sample).
    again = {"train": FakeData(7), "test": FakeData(3)}
    run(tmp_path / "c", ann, again)
    assert again["train"].loaded == [] and again["test"].loaded == []


def test_interrupted_extraction_resumes_to_an_identical_cache(tmp_path, ann):
    run(tmp_path / "full", ann, {"train": FakeData(10), "test": FakeData(5)})
    # Shard size 4, batch size 2: item 5 is in the third batch, after shard 0 (items 0-3) is on disk.
    with pytest.raises(RuntimeError, match="interrupted"):
        run(tmp_path / "part", ann, {"train": FakeData(10, fail_at=5), "test": FakeData(5)})
    manifest = json.loads((tmp_path / "part" / MANIFEST).read_text())
    assert manifest["complete"] == [0]
    assert sorted(p.name for p in (tmp_path / "part").iterdir()) == [MANIFEST, shard_name(0)]
    rerun = {"train": FakeData(10), "test": FakeData(5)}
    run(tmp_path / "part", ann, rerun)
    assert rerun["train"].loaded == list(range(4, 10))  # complete shards are not even loaded again
    full, part = TokenCache.open(tmp_path / "full", ann), TokenCache.open(tmp_path / "part", ann)
    assert part.is_complete and part.sample_ids == full.sample_ids
    for i in full.sample_ids:
        a, b = full.get(i), part.get(i)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for k in range(len(full.manifest["shards"])):  # the shard files are the same too
        x = torch.load(tmp_path / "full" / shard_name(k), weights_only=True)
        y = torch.load(tmp_path / "part" / shard_name(k), weights_only=True)
        assert x.keys() == y.keys() and all(torch.equal(x[s][t], y[s][t]) for s in x for t in x[s])


def test_encoder_failure_mid_run_then_resume(tmp_path, ann):
    class Flaky(FakeRGBEncoder):
        calls = 0

        def forward_features(self, x):
            Flaky.calls += 1
            if Flaky.calls == 4:
                raise RuntimeError("encoder crashed")
            return super().forward_features(x)

    encs = {"skel": encoders()["skel"], "rgb": (Flaky(), "rgb")}
    with pytest.raises(RuntimeError, match="encoder crashed"):
        run(tmp_path / "c", ann, {"train": FakeData(9)}, encs=encs)
    assert TokenCache.create_or_resume(tmp_path / "c", ann, META, {"train": [f"train_{i}" for i in range(9)]},
                                       shard_size=4).pending_shards() == [1, 2]
    run(tmp_path / "c", ann, {"train": FakeData(9)}, encs=encs)
    assert TokenCache.open(tmp_path / "c", ann).is_complete


def test_extract_checks_ids_and_encoder_names(tmp_path, ann):
    loaders = {"train": DataLoader(FakeData(4), batch_size=2)}
    with pytest.raises(DataError, match="the loader has 4 samples, sample_ids_of gives 3"):
        extract_tokens(tmp_path / "c", ann, loaders, encoders(), sample_ids_of={"train": ["a", "b", "c"]},
                       encoders_meta=META, progress=False)
    from microgesture.errors import ConfigError

    with pytest.raises(ConfigError, match="name different encoders"):
        extract_tokens(tmp_path / "c", ann, loaders, encoders(), sample_ids_of={"train": list("abcd")},
                       encoders_meta={"skel": {}}, progress=False)
    run(tmp_path / "d", ann, {"train": FakeData(4)})
    with pytest.raises(DataError, match="stale cache"):  # encoders changed since this cache was made
        extract_tokens(tmp_path / "d", ann, {"train": DataLoader(FakeData(4), batch_size=2)}, encoders(),
                       sample_ids_of={"train": [f"train_{i}" for i in range(4)]},
                       encoders_meta={"skel": {"config": {"dim": 5}}, "rgb": {}}, progress=False)


def test_extract_with_a_real_tiny_agcn(tmp_path, tiny_annotations):
    from microgesture.data.formats.annotations import load_annotations, select
    from microgesture.data.datasets import ClipDataset
    from microgesture.data.transforms import skeleton_pipeline
    from microgesture.models.agcn import build_agcn

    data = load_annotations(tiny_annotations)
    pipeline = skeleton_pipeline(layout="miga35", num_frames=16, train=False)
    clips = {s: select(data, s)[:6] for s in ("val", "test")}
    datasets = {s: ClipDataset(c, pipeline, ["joint"]) for s, c in clips.items()}
    loaders = {s: DataLoader(d, batch_size=4, shuffle=False) for s, d in datasets.items()}
    torch.manual_seed(0)
    model = build_agcn(4, "miga35", base_channels=8)
    meta = {"agcn": {"config": {"layout": "miga35", "base_channels": 8}}}
    extract_tokens(tmp_path / "c", tiny_annotations, loaders, {"agcn": (model, "joint")}, sample_ids_of=clips,
                   encoders_meta=meta, shard_size=4, progress=False)
    ids = {s: [c["frame_dir"] for c in v] for s, v in clips.items()}
    cache = TokenCache.open(tmp_path / "c", tiny_annotations, ids)
    batch = next(iter(DataLoader(datasets["test"], batch_size=6)))
    with torch.no_grad():
        tokens = model.eval().forward_features(batch["joint"])
        embedding = model.pool(tokens)
    assert tokens.shape == (6, 4, 35, 32)  # T' = 16 / 4, V = 35, C' = 4 * base_channels
    for row, clip in enumerate(clips["test"]):
        got = cache.get(clip["frame_dir"])
        assert got["agcn_tokens"].shape == (4, 35, 32) and got["agcn_embedding"].shape == (32,)
        torch.testing.assert_close(got["agcn_tokens"], tokens[row], atol=1e-2, rtol=1e-2)
        torch.testing.assert_close(got["agcn_embedding"], embedding[row], atol=1e-2, rtol=1e-2)
