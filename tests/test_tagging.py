"""Stage 0 of the tiny base (the tagging objective of aqa_utils/training): caption tags, average precision, and a
short run of the training loop whose checkpoint loads through the release loader with only CLAP changed."""

from __future__ import annotations

import json
import math

import pytest
import torch

from aqa_utils.config import TrainConfig
from aqa_utils.training import Trainer
from aqa_utils.training.examples import CaptionTags
from aqa_utils.training.objectives import TagHead, average_precision
from aqa_utils.data.mini import SOUND_CLASSES, make_mini_benchmark
from aqa_utils.model import build_model
from aqa_utils.model import checkpoint as release


def test_average_precision_matches_hand_computed_values():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.3, 0.2], [0.1, 0.9]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    ap = average_precision(scores, targets)
    # Class 0: positives ranked 1st and 3rd -> (1/1 + 2/3) / 2. Class 1 has no positive.
    assert ap[0].item() == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(ap[1].item())
    perfect = average_precision(torch.tensor([[2.0], [1.0], [0.0]]), torch.tensor([[1.0], [1.0], [0.0]]))
    assert perfect.item() == pytest.approx(1.0)


def test_tag_head_scores_a_clip_by_its_best_valid_token():
    head = TagHead(2, 1)
    with torch.no_grad():
        head.proj.weight.copy_(torch.tensor([[1.0, 0.0]]))
        head.proj.bias.zero_()
    tokens = torch.tensor([[[0.5, 0.0], [3.0, 0.0], [9.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])  # the padded token must not count
    assert head(tokens, mask).item() == pytest.approx(3.0)


def test_caption_tags(tmp_path):
    (tmp_path / "captions").mkdir()
    lines = [{"audio": "a.wav", "text": "a knock first, a bell last: a knock at 1.0 s, then a bell at 3.0 s."},
             {"audio": "b.wav", "text": "A Glass Shrimp makes two calls: high-pitched trill calls."}]
    (tmp_path / "captions" / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    tags = CaptionTags(tmp_path, "train")
    named = [{c for c, v in zip(SOUND_CLASSES, t) if v} for _, t in tags.items]
    assert named == [{"knock", "bell"}, {"glass shrimp", "trill"}]
    (tmp_path / "captions" / "dev.jsonl").write_text('{"audio": "a.wav"}\nnot json\n')
    with pytest.raises(ValueError, match=r"2 malformed caption line\(s\)[\s\S]*dev.jsonl:1:[\s\S]*dev.jsonl:2:"):
        CaptionTags(tmp_path, "dev")


def test_short_run_changes_only_clap_and_loads_through_the_release_loader(tmp_path):
    data = make_mini_benchmark(tmp_path / "mini", seed=0, n_train=0, n_dev=0, n_eval=0, n_captions_train=16,
                               n_captions_dev=6)
    cfg = TrainConfig(mode="full", corpus="tags", frozen=("audio_transformer", "xattn", "lm"), spec_augment=False,
                      epochs=1, batch_size=8, lr=3e-4, data_root=str(data), out_dir=str(tmp_path / "run"),
                      val_split="dev", eval_per_epoch=True, max_val_examples=100, progress=False, seed=3)
    summary = Trainer(cfg).fit()
    assert summary["steps"] == 2 and 0.0 < summary["val_map"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "val_map" in rows[-1]

    trained, report = release.load(tmp_path / "run" / "final")
    torch.manual_seed(3)
    fresh = build_model("af2-tiny").state_dict()
    changed = {k for k, v in trained.state_dict().items() if not torch.equal(v, fresh[k])}
    assert changed and all(k.startswith("clap.") for k in changed)
    assert any(".layers.0.blocks.0.attn.qkv.weight" in k for k in changed)
