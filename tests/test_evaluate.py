"""The evaluation engine on af2-tiny (seeded random weights) and a small generated benchmark."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import aqa_utils.evaluation.engine as engine
from aqa_utils import audio
from aqa_utils import metrics
from aqa_utils.config import ModelConfig
from aqa_utils.data.dcase import load_split
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.data.prompt import tokenizer_for
from aqa_utils.demo import predict_one
from aqa_utils.evaluation import EvalSettings, evaluate
from aqa_utils.evaluation.engine import EncodedClips
from aqa_utils.model import AudioMemory, build_model

N_DEV, N_EVAL, NEW_TOKENS = 16, 6, 6


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("af2-tiny").eval()
    with torch.no_grad():
        # With tied embeddings a random LM just repeats its last input token (<SEP>, which decodes to nothing).
        # A random final-norm gain makes it emit varied tokens, so the generation tests compare real text.
        model.lang_encoder.model.norm.weight.normal_(generator=torch.Generator().manual_seed(seed))
        # Fresh cross-attention gates are 0 (tanh(0) = 0: the LM ignores the audio). Open them, so a question
        # handed another clip's memory would change the outputs the batching tests compare.
        for name, param in model.named_parameters():
            if name.endswith(("attn_gate", "ff_gate")):
                param.fill_(1.0)
    return model


def test_the_test_model_listens(model, tokenizer, dev):
    """Two questions asked about each other's clips score differently: the audio reaches the outputs."""
    a, b = dev[0], next(q for q in dev if q.audio_path != dev[0].audio_path)
    swapped = dataclasses.replace(a, audio_path=b.audio_path)
    settings = EvalSettings(mode="score", batch_size=1)
    own = evaluate(model, tokenizer, [a], settings).predictions["logprobs"][0]
    other = evaluate(model, tokenizer, [swapped], settings).predictions["logprobs"][0]
    assert not np.allclose(own, other, atol=1e-3)


@pytest.fixture(scope="module")
def tokenizer():
    return tokenizer_for(ModelConfig.preset("af2-tiny"))


@pytest.fixture(scope="module")
def model():
    return _tiny_model()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    make_mini_benchmark(root, seed=0, n_train=0, n_dev=N_DEV, n_eval=N_EVAL, n_captions_train=0, n_captions_dev=0)
    return root


@pytest.fixture(scope="module")
def dev(bench):
    return load_split(bench, "dev").questions


@pytest.fixture(scope="module")
def both_run(model, tokenizer, dev, tmp_path_factory):
    """Generation and scoring at batch size 8, with the output files."""
    out = tmp_path_factory.mktemp("eval_both")
    settings = EvalSettings(mode="both", batch_size=8, max_new_tokens=NEW_TOKENS)
    return evaluate(model, tokenizer, dev, settings, out_dir=out), out


# --- end to end -----------------------------------------------------------------------------------------------

def test_both_modes_end_to_end_are_well_formed(both_run, dev):
    result, out = both_run
    df = result.predictions
    assert df["qid"].tolist() == [q.qid for q in dev]  # one row per question, input order
    for col in ("qid", "subset", "question_type", "n_choices", "answer", "pred", "pred_text", "correct",
                "pred_generate", "pred_score", "raw_output", "probs"):
        assert col in df.columns, col
    assert df["answer"].tolist() == [q.answer for q in dev]
    for mode in ("generate", "score"):
        preds = df[f"pred_{mode}"]
        ok = [pd.isna(p) or 0 <= int(p) < n for p, n in zip(preds, df["n_choices"])]
        assert all(ok), mode
        rep = result.metrics[mode]
        for key in ("per_subset", "domain_average", "micro", "unparsed_rate", "chance", "counts"):
            assert key in rep, (mode, key)
        assert rep["counts"]["rows"] == len(dev)
        assert result.timing[mode]["questions_per_s"] > 0
    assert df["pred_score"].notna().all()  # scoring always picks an option
    assert result.metrics["score"]["unparsed_rate"] == 0.0
    for probs, n, pred in zip(df["probs"], df["n_choices"], df["pred_score"]):
        assert len(probs) == n and math.isclose(sum(probs), 1.0, abs_tol=1e-6)
        assert int(np.argmax(probs)) == pred
    # "both": pred is the generation protocol's (AF2), correct follows pred
    assert df["pred"].equals(df["pred_generate"])
    expected = [(not pd.isna(p)) and int(p) == a for p, a in zip(df["pred"], df["answer"])]
    assert df["correct"].tolist() == expected

    # files: predictions.csv, metrics.json, submission.csv with the verbatim option strings
    assert len(pd.read_csv(out / "predictions.csv")) == len(dev)
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["metrics"]) == {"generate", "score"} and saved["n_questions"] == len(dev)
    sub = metrics.read_submission(out / "submission.csv")
    assert list(sub) == [q.qid for q in dev]
    n_unparsed = 0
    for q, p in zip(dev, df["pred"]):
        if pd.isna(p):
            n_unparsed += 1
            assert sub[q.qid] == q.raw_choices[0]  # unparsed -> first option
        else:
            assert sub[q.qid] == q.raw_choices[int(p)]
        assert sub[q.qid] in q.raw_choices
    assert result.submission["unparsed_as_first_option"] == n_unparsed


def test_eval_split_without_answers_still_writes_submission(model, tokenizer, bench, tmp_path):
    questions = load_split(bench, "eval").questions
    assert all(q.answer is None for q in questions)
    result = evaluate(model, tokenizer, questions, EvalSettings(mode="score", batch_size=8), out_dir=tmp_path)
    assert set(result.metrics["score"]) == {"counts"}
    assert result.metrics["score"]["counts"]["scored"] == 0
    assert result.predictions["correct"].isna().all()
    sub = metrics.read_submission(tmp_path / "submission.csv")
    assert sub == {q.qid: q.raw_choices[int(p)] for q, p in zip(questions, result.predictions["pred"])}
    json.loads((tmp_path / "metrics.json").read_text())


# --- batching changes nothing ---------------------------------------------------------------------------------

def test_batched_scoring_equals_unbatched(both_run, model, tokenizer, dev):
    batched = both_run[0].predictions
    single = evaluate(model, tokenizer, dev, EvalSettings(mode="score", batch_size=1)).predictions
    assert single["pred"].tolist() == batched["pred_score"].tolist()
    for a, b in zip(single["logprobs"], batched["logprobs"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_batched_generation_equals_batch_size_one(both_run, model, tokenizer, dev):
    """Left-padded batches of 8 (clip cache, shared encodes) vs NVIDIA's way: one question at a time, batch
    size 1, the clip read and encoded again for every question."""
    batched = both_run[0].predictions
    assert batched["raw_output"].str.len().gt(0).sum() >= len(dev) // 2  # the perturbed model does emit text
    n = 8  # a prefix keeps it fast; the batched run padded these among all the others
    single = evaluate(model, tokenizer, dev[:n], EvalSettings(mode="generate", batch_size=1, max_new_tokens=NEW_TOKENS,
                                                             clip_cache_size=0, encoded_cache_size=0, clip_order=False))
    assert single.settings.batch_size == 1
    assert single.predictions["qid"].tolist() == batched["qid"].tolist()[:n]
    assert single.predictions["raw_output"].tolist() == batched["raw_output"].tolist()[:n]
    assert single.predictions["pred"].tolist() == batched["pred_generate"].tolist()[:n]
    assert single.timing["audio"]["loads"] == n  # no cache: read for every question
    assert single.timing["generate"]["questions_per_s"] > 0


# --- shuffle robustness -----------------------------------------------------------------------------------------

class AlwaysA(nn.Module):
    """A stand-in model with AF2's interface that always answers "(a)": it scores only options labelled (a)
    highly and generates "(a)"."""

    def __init__(self, tokenizer):
        super().__init__()
        self.config = ModelConfig.preset("af2-tiny")
        self.tokenizer = tokenizer
        self.anchor = nn.Parameter(torch.zeros(1))
        self.encoded = 0

    def encode_audio(self, windows, window_mask):
        self.encoded += windows.shape[0]
        return AudioMemory(torch.zeros(windows.shape[0], 1, 4), torch.ones(windows.shape[0], 1, dtype=torch.bool))

    def option_logprobs(self, memory, input_ids, attention_mask, target_mask, row_to_audio):
        assert row_to_audio.max() < memory.tokens.shape[0]
        texts = [self.tokenizer.decode(ids[m.bool()]) for ids, m in zip(input_ids, target_mask)]
        return torch.tensor([0.0 if t.startswith("(a)") else -10.0 for t in texts])

    def generate(self, memory, input_ids, attention_mask, *, max_new_tokens, stop_ids, pad_id):
        assert memory.tokens.shape[0] == input_ids.shape[0]
        ids = self.tokenizer("(a)", add_special_tokens=False)["input_ids"]
        return [list(ids) for _ in range(input_ids.shape[0])]


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_position_biased_model_is_at_chance_under_shuffling(tokenizer, dev, mode):
    k = 6
    result = evaluate(AlwaysA(tokenizer), tokenizer, dev,
                      EvalSettings(mode=mode, permutations=k, batch_size=32))
    rob, per_perm = result.robustness[mode], result.per_perm[mode]
    assert rob["mode"] == mode and rob["k"] == k
    # each option visits position (A) once among the cyclic shifts: right exactly once per question there
    cyclic = per_perm[per_perm["perm"] < per_perm["n_choices"]]
    hits = cyclic.assign(ok=cyclic["pred"] == cyclic["answer"]).groupby("qid")["ok"].sum()
    assert (hits == 1).all()
    assert abs(rob["mean_accuracy"] - rob["chance_mean_accuracy"]) < 0.1
    assert rob["consistent_accuracy"] == 0.0
    positions = result.positions[mode]
    assert positions.loc["A", "predicted"] == len(per_perm)
    assert rob["position_tv"] == pytest.approx(1 - positions.loc["A", "true_share"])
    assert positions["predicted"].drop("A").sum() == 0
    # the identity ordering is a plain run: predictions there match the main table
    first = per_perm[per_perm["perm"] == 0].set_index("qid")["pred"]
    assert first.tolist() == [0] * len(dev)
    assert result.predictions["pred"].tolist() == [0] * len(dev)


def test_oracle_is_fully_robust(monkeypatch, tokenizer, dev, tmp_path):
    def oracle(core, tok, batch, memory, index):
        return [engine.Out(it.question.answer, it.order.index(it.question.answer), "") for it in batch]

    monkeypatch.setattr(engine, "score_batch", oracle)
    result = evaluate(AlwaysA(tokenizer), tokenizer, dev, EvalSettings(mode="score", permutations=4, seed=3),
                      out_dir=tmp_path)
    rob = result.robustness["score"]
    assert rob["mean_accuracy"] == 1.0 and rob["position_tv"] == 0.0 and rob["consistent_accuracy"] == 1.0 and rob["std_accuracy"] == 0.0
    assert result.metrics["score"]["micro"] == 1.0
    assert rob["n_questions"] == len(dev)
    # orderings are the deterministic ones of metrics.permutations_for
    for qid, rows in result.per_perm["score"].groupby("qid"):
        n = int(rows["n_choices"].iloc[0])
        assert [tuple(o) for o in rows.sort_values("perm")["order"]] == \
            metrics.permutations_for(n, min(4, math.factorial(n)), 3)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["robustness"]["score"]["consistent_accuracy"] == 1.0
    assert (tmp_path / "robustness_score.csv").exists()


# --- audio once per clip ------------------------------------------------------------------------------------------

def test_shared_clip_is_loaded_and_encoded_once(monkeypatch, tokenizer, dev):
    calls = Counter()
    real = audio.load_clip

    def counting(path, cfg):
        calls[str(path)] += 1
        return real(path, cfg)

    monkeypatch.setattr(audio, "load_clip", counting)
    per_clip = Counter(str(q.audio_path) for q in dev)
    assert max(per_clip.values()) > 1  # the benchmark does share clips
    fake = AlwaysA(tokenizer)
    result = evaluate(fake, tokenizer, dev, EvalSettings(mode="both", permutations=3, batch_size=64))
    assert calls == Counter({path: 1 for path in per_clip})  # across both modes, every ordering included
    # the encoded audio is kept too: every distinct clip is encoded once over the two passes
    assert fake.encoded == len(per_clip) == result.timing["audio"]["encoded"]
    assert result.timing["audio"]["encodings_reused"] == len(per_clip)
    assert set(result.robustness) == {"generate", "score"}
    # without the encoded cache, once per pass (generate, score)
    fake = AlwaysA(tokenizer)
    evaluate(fake, tokenizer, dev, EvalSettings(mode="both", permutations=3, batch_size=64, encoded_cache_size=0))
    assert fake.encoded == 2 * len(per_clip)


def test_a_cache_smaller_than_the_clips_encodes_them_all_again_in_the_second_pass(tokenizer, dev):
    """Why the encoded cache holds every clip of the call by default: passes run in clip order, so with fewer
    places than clips the second pass finds each clip evicted (the mini dev split, 345 clips against the 256 places
    of the old default, was encoded twice per system)."""
    clips = len({str(q.audio_path) for q in dev})
    assert clips > 4
    for cap, encodings in ((None, clips), (clips, clips), (clips - 2, 2 * clips)):
        fake = AlwaysA(tokenizer)
        evaluate(fake, tokenizer, dev, EvalSettings(mode="both", permutations=3, batch_size=4,
                                                    encoded_cache_size=cap))
        assert fake.encoded == encodings, cap


def test_kept_encodings_batch_like_fresh_ones(model):
    """Clips of 1 and 3 windows, some kept from an earlier batch and some new, padded together: the memory equals
    encoding the same clips in one batch (tokens where valid, the same mask)."""
    g = torch.Generator().manual_seed(5)
    waves = {f"clip{i}.wav": 0.1 * torch.randn(n, 160_000, generator=g) for i, n in enumerate((1, 3, 1, 3))}

    class Waveforms:
        load_seconds = 0.0

        def get(self, path):
            return waves[str(path)]

        def stats(self):
            return {}

    def items(names):
        return [SimpleNamespace(question=SimpleNamespace(audio_path=name)) for name in names]

    clips = EncodedClips(Waveforms(), keep=8)
    device = torch.device("cpu")
    with torch.inference_mode():
        clips.batch(model, items(["clip0.wav", "clip1.wav"]), device)  # kept: one 1-window, one 3-window clip
        mixed, index = clips.batch(model, items(["clip2.wav", "clip1.wav", "clip2.wav", "clip0.wav", "clip3.wav"]),
                                   device)
        fresh, _ = EncodedClips(Waveforms(), keep=0).batch(
            model, items(["clip2.wav", "clip1.wav", "clip0.wav", "clip3.wav"]), device)
    assert index.tolist() == [0, 1, 0, 2, 3] and clips.encoded == 4 and clips.reused == 2
    assert torch.equal(mixed.mask, fresh.mask)
    torch.testing.assert_close(mixed.tokens[mixed.mask], fresh.tokens[fresh.mask], rtol=0, atol=1e-5)


# --- peft and the demo --------------------------------------------------------------------------------------------

def test_peft_wrapped_model_evaluates_like_its_base(both_run, model, tokenizer, dev):
    from aqa_utils.config import LoraSettings
    from aqa_utils.lora import apply_lora

    n = 6
    before = both_run[0].predictions.head(n)
    wrapped = apply_lora(copy.deepcopy(model), LoraSettings(rank=2))  # fresh adapters: B = 0, the same function
    wrapped.train()
    after = evaluate(wrapped, tokenizer, dev, EvalSettings(mode="score", batch_size=8, limit=n)).predictions
    assert wrapped.training  # the train/eval state is restored
    assert after["pred"].tolist() == before["pred_score"].tolist()
    for a, b in zip(after["logprobs"], before["logprobs"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_predict_one(model, tokenizer, dev):
    q = dev[0]
    out = predict_one(model, tokenizer, q.audio_path, q.question, q.raw_choices, max_new_tokens=NEW_TOKENS)
    assert out["choices"] == q.choices  # "A. " labels stripped
    assert math.isclose(sum(out["probabilities"]), 1.0, abs_tol=1e-6)
    assert out["answer"] == int(np.argmax(out["probabilities"]))
    assert out["answer_text"] == q.choices[out["answer"]]
    assert isinstance(out["generated"], str)
    assert out["generated_answer"] is None or 0 <= out["generated_answer"] < len(q.choices)
