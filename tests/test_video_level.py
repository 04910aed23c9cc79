"""Video-level emotion: bags of clips per video, attention over clips (MIL), the MG distribution as an
emotion feature, clip aggregation baselines, and the prediction file of the MiGA emotion track."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from microgesture.data.video_bags import VideoBagDataset, collate_bags, group_by_video
from microgesture.eval.report import emotion_metrics, video_probabilities
from microgesture.eval.scores import ScoreTable
from microgesture.models.recognizer import Recognizer
from microgesture.models.video_pool import AttentionMIL, VideoPool


class _Clips(torch.utils.data.Dataset):
    """Clip i: a one-number modality equal to i, its label and its video's emotion."""

    def __init__(self, clips):
        self.clips = clips

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, key):
        i, _ = key
        c = self.clips[i]
        return {"x": torch.tensor([float(i)]), "label": torch.tensor(c["label"]), "emotion": torch.tensor(c["emotion"]),
                "video_id": torch.tensor(c["video_id"]), "index": torch.tensor(i)}


CLIPS = [{"video_id": v, "label": k, "emotion": v % 2} for v, n in ((3, 5), (1, 2), (8, 3)) for k in range(n)]


def test_bags_draw_clips_of_one_video_reproducibly():
    videos, members = group_by_video(CLIPS)
    assert videos == [3, 1, 8] and members == [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
    train = VideoBagDataset(_Clips(CLIPS), CLIPS, clips_per_video=3, train=True, seed=0, repeats=2)
    assert len(train) == 6
    bag = train[(0, 4)]
    picked = bag["index"].tolist()
    assert len(picked) == 3 and len(set(picked)) == 3 and set(picked) <= {0, 1, 2, 3, 4} and picked == sorted(picked)
    assert train[(0, 4)]["index"].tolist() == picked  # the same (epoch, item) draws the same clips
    assert [train[(0, e)]["index"].tolist() for e in range(6)] != [picked] * 6  # other epochs draw others
    assert train[(1, 0)]["index"].tolist() == [5, 6]  # a short video gives all its clips
    assert int(bag["emotion"]) == 1 and int(bag["video_id"]) == 3 and bag["x"].shape == (3, 1)
    evaluation = VideoBagDataset(_Clips(CLIPS), CLIPS, clips_per_video=3, train=False, repeats=5)
    assert len(evaluation) == 3 and evaluation[0]["index"].tolist() == [0, 1, 2, 3, 4]


def test_collate_pads_bags_and_marks_the_padding():
    evaluation = VideoBagDataset(_Clips(CLIPS), CLIPS, clips_per_video=2, train=False)
    batch = collate_bags([evaluation[0], evaluation[1]])
    assert batch["x"].shape == (2, 5, 1) and batch["clip_pad"].tolist()[1] == [False, False, True, True, True]
    assert batch["label"][1].tolist() == [0, 1, -1, -1, -1] and batch["index"][1, 2:].tolist() == [-1, -1, -1]
    assert batch["emotion"].tolist() == [1, 1] and batch["video_id"].tolist() == [3, 1]


def test_attention_pooling_ignores_padding():
    torch.manual_seed(0)
    pool = AttentionMIL(4, hidden=8)
    clips = torch.randn(2, 3, 4)
    pad = torch.tensor([[False, False, True], [False, False, False]])
    pooled, weights = pool(clips, pad)
    assert torch.allclose(weights.sum(1), torch.ones(2)) and weights[0, 2] == 0
    changed = clips.clone()
    changed[0, 2] = float("nan")
    torch.testing.assert_close(pool(changed, pad)[0], pooled)
    torch.testing.assert_close(pooled, (weights[..., None] * clips.masked_fill(pad[..., None], 0)).sum(1))
    mean = VideoPool({"fused": 4}, "mean")({"fused": clips}, pad)["fused"]
    torch.testing.assert_close(mean[0], clips[0, :2].mean(0))
    with pytest.raises(ValueError, match="no valid clip"):
        VideoPool({"fused": 4}, "mean")({"fused": clips}, torch.ones(2, 3, dtype=torch.bool))


class _Encoder(torch.nn.Module):
    """A tiny encoder over [N, 3] inputs that records the masks it is given."""

    num_prefix_tokens, token_layout = 0, "sequence"

    def __init__(self, dim: int = 6):
        super().__init__()
        self.proj = torch.nn.Linear(3, dim)
        self.embed_dim, self.num_classes = dim, 0
        self.head = torch.nn.Identity()
        self.masks = []

    def reset_classifier(self, n):
        self.num_classes = n

    def forward_features(self, x, missing=None):
        self.masks.append(missing)
        return self.proj(x)[:, None]

    def pool(self, tokens, mask=None):
        return tokens.mean(1)

    def forward_head(self, tokens, pre_logits=False, mask=None):
        return self.pool(tokens)


def _recognizer(**kwargs) -> Recognizer:
    torch.manual_seed(0)
    return Recognizer({"mg": 4, "emotion": 2}, encoders={"face": _Encoder(), "rgb": _Encoder()}, fusion="late",
                      **kwargs)


def test_video_mode_pools_clips_per_video():
    model = _recognizer(video_pool="attention", video_tasks=("emotion",), task_features={"emotion": "mg"})
    x = {"face": torch.randn(2, 3, 3), "rgb": torch.randn(2, 3, 3),
         "face_missing": torch.zeros(2, 3, 1, dtype=torch.bool)}
    pad = torch.tensor([[False, False, True], [False, False, False]])
    out = model(x, clip_pad=pad)
    assert out["mg"].shape == (2, 3, 4) and out["emotion"].shape == (2, 2)
    assert not out["mg"][0, 2].any()  # the padded slot has no clip
    assert model.encoders["face"].masks[-1].shape == (5, 1)  # masks reach the face encoder, real clips only
    x["rgb"][0, 2] = 100.0  # what a padded slot holds changes nothing
    torch.testing.assert_close(model(x, clip_pad=pad)["emotion"], out["emotion"])
    weights = model.clip_weights(x, pad)
    assert set(weights) == {"face", "rgb"} and torch.allclose(weights["face"].sum(1), torch.ones(2))


def test_mg_distribution_feeds_the_emotion_head_without_training_the_mg_head():
    model = _recognizer(task_features={"emotion": "mg"})
    assert model.heads["emotion"].fc["mg_probs"].in_features == 4
    out = model({"face": torch.randn(5, 3), "rgb": torch.randn(5, 3)})
    F.cross_entropy(out["emotion"], torch.randint(0, 2, (5,))).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.heads["mg"].parameters())
    assert model.heads["emotion"].fc["mg_probs"].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="task_features"):
        _recognizer(task_features={"emotion": "age"})


def test_clip_aggregations():
    logits = np.array([[0.0, 2.0], [0.0, -1.0], [0.0, -1.0], [3.0, 0.0], [0.0, 0.5]])
    videos = [1, 1, 1, 2, 2]
    mean_prob = video_probabilities(logits, videos)
    sig = 1 / (1 + np.exp(-np.array([2.0, -1.0, -1.0])))
    assert np.isclose(mean_prob[:3].mean(), sig.mean())
    mean_logit = video_probabilities(logits, videos, "mean_logit")
    assert np.allclose(mean_logit[:3], 1 / (1 + np.exp(-0.0)))  # the mean logit difference of video 1 is 0
    vote = video_probabilities(logits, videos, "vote")
    assert vote.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    table = ScoreTable([f"c{i}" for i in range(5)], np.array([1, 1, 1, 0, 0]), logits.astype(np.float32), None)
    metrics, per_video = emotion_metrics(table, {f"c{i}": v for i, v in enumerate(videos)})
    assert per_video["video_id"] == [1, 2] and metrics["num_samples"] == 2
    # Video 1 (win): mean probability 0.47, mean logit 0.5, 1 of 3 votes; video 2 (lose): 0.33, 0.22, 1 of 2.
    assert np.allclose(per_video["prob_win"], [sig.mean(), (0.5 / (1 + np.exp(3.0)) + 0.5 / (1 + np.exp(-0.5)))])
    assert metrics["accuracy"] == 0.5 and metrics["auc"] == 1.0
    assert metrics["aggregations"]["mean_logit"]["auc"] == 1.0 and metrics["aggregations"]["vote"]["auc"] == 0.0
    assert metrics["aggregations"]["vote"]["accuracy"] == 0.5 and 0.0 <= metrics["ece"] <= 1.0


def test_within_subject_auc_ranks_each_subjects_own_videos():
    """The ablation's diagnostic: a subject offset that ruins the pooled AUC leaves it at 1."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "emotion_ablation.py"
    spec = importlib.util.spec_from_file_location("emotion_ablation", path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    subject_of = {1: 0, 2: 0, 3: 1, 4: 1, 5: 2}
    labels = {1: 1, 2: 0, 3: 1, 4: 0, 5: 1}  # subject 2 has one class only: left out
    offset = {1: 0.9, 2: 0.8, 3: 0.2, 4: 0.1, 5: 0.5}  # subject 0 always high, subject 1 always low
    assert ablation.within_subject_auc(offset, labels, subject_of) == 1.0
    flipped = {1: 0.8, 2: 0.9, 3: 0.2, 4: 0.1, 5: 0.5}
    assert ablation.within_subject_auc(flipped, labels, subject_of) == 0.5
    assert ablation.within_subject_auc(offset, {1: 1, 2: 1, 3: 0, 4: 0, 5: 1}, subject_of) is None
