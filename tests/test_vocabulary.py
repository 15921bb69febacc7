"""af2-tiny's trimmed vocabulary: the mini benchmark's text tokenizes exactly as under AF2's tokenizer, any other text
still round-trips, the special tokens close the vocabulary as in AF2's, and a model whose embedding does not fit
its vocabulary is refused."""

import re

import pytest

from aqa_utils.config import AF2_VOCAB_SIZE, SPECIAL_TOKENS, ModelConfig
from aqa_utils.data import prompt as P
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.training.examples import corpus_texts
from aqa_utils.model.flamingo import qwen2_config


@pytest.fixture(scope="module")
def mini():
    return P.tokenizer_for(ModelConfig.preset("af2-tiny"))


@pytest.fixture(scope="module")
def to_mini():
    """AF2 tokenizer id -> the trimmed one: kept BPE ids in Qwen's order, then the same specials."""
    kept = sorted(P.read_vocabulary("mini"))
    index = {q: i for i, q in enumerate(kept)}
    first_special = AF2_VOCAB_SIZE - SPECIAL_TOKENS
    return lambda i: index[i] if i < first_special else len(kept) + i - first_special


def test_specials_close_the_vocabulary_as_in_af2(mini):
    tiny = ModelConfig.preset("af2-tiny").lm
    assert len(mini) == tiny.vocab_size == len(P.read_vocabulary("mini")) + SPECIAL_TOKENS
    assert SPECIAL_TOKENS == len(P.QWEN_SPECIAL_TOKENS) + 4
    specials = list(P.QWEN_SPECIAL_TOKENS) + [P.AUDIO, P.EOC, P.PAD, P.SEP]
    first = tiny.vocab_size - SPECIAL_TOKENS
    assert mini.convert_tokens_to_ids(specials) == list(range(first, tiny.vocab_size))
    ids = P.AF2Tokens.of(mini)
    assert ids.eos == first and qwen2_config(tiny).eos_token_id == first
    assert qwen2_config(ModelConfig.preset("af2-3b").lm).eos_token_id == 151_643  # AF2's <|endoftext|>
    assert {byte for byte in range(256)} <= P.read_vocabulary("mini")  # any text stays encodable


def test_a_fresh_mini_benchmark_tokenizes_exactly_as_under_af2(tmp_path, mini, to_mini):
    # A generator seed the shipped list was not built from: its texts draw the same words in new combinations.
    root = make_mini_benchmark(tmp_path, seed=7, n_train=48, n_dev=24, n_eval=6, n_captions_train=16,
                               n_captions_dev=8, audio=False, progress=False)
    texts = list(corpus_texts(root, seed=7, epochs=2))
    assert len(texts) > 500
    full = P.build_tokenizer()
    for prompt, target in zip(texts[::2], texts[1::2]):
        text = P.train_text(prompt, target)
        expected = [to_mini(i) for i in full(text, add_special_tokens=False)["input_ids"]]
        assert mini(text, add_special_tokens=False)["input_ids"] == expected, text


@pytest.mark.parametrize("text", ["What is the Boreal whale DOING? (a) x.", "数字 1234567 émojis 🎉",
                                  "  spaces   and\n\nnewlines\ttabs ", "<audio>a new word: xylophone<SEP>(b) yes"])
def test_other_text_round_trips_byte_by_byte_at_worst(mini, text):
    ids = mini(text, add_special_tokens=False)["input_ids"]
    assert max(ids) < len(mini) and mini.decode(ids) == text


def test_merge_path_keeps_the_intermediate_tokens():
    texts = ["the boreal whale calls three times.", "knock, then a siren; 4.5 s"]
    keep = P.merge_path_ids(texts)
    trimmed = P._qwen_bpe(keep)
    full = P.build_tokenizer()
    order = {q: i for i, q in enumerate(sorted(keep))}
    for text in texts:
        assert trimmed.encode(text).ids == [order[i] for i in full(text, add_special_tokens=False)["input_ids"]]
    # Only the final tokens would not do: BPE reaches " boreal" through tokens that are not in the output.
    finals = frozenset(i for t in texts for i in full(t, add_special_tokens=False)["input_ids"]) | frozenset(range(256))
    assert finals < keep


def test_a_model_that_does_not_fit_its_vocabulary_is_refused():
    config = ModelConfig.preset("af2-tiny")
    config.lm.vocab_size = 1000
    with pytest.raises(ValueError, match="1000 embedding rows but its vocabulary mini has 626 tokens"):
        P.tokenizer_for(config)


def test_a_broken_vocabulary_file_names_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "tokens.txt"
    bad.write_text("# header\n12\nnot-an-id\n")
    monkeypatch.setattr(P, "vocabulary_file", lambda name: bad)
    with pytest.raises(ValueError, match=re.escape(f"{bad}: every line must be a Qwen2.5 token id")):
        P.read_vocabulary("mini")
    bad.write_text("12\n151643\n")  # <|endoftext|>: a special token, not a BPE one
    with pytest.raises(ValueError, match=re.escape(f"{bad}: [151643] are not Qwen2.5 BPE ids")):
        P.read_vocabulary("mini")


def test_an_unknown_vocabulary_is_refused():
    with pytest.raises(ValueError, match="unknown vocabulary 'nope'"):
        P.build_tokenizer(vocabulary="nope")
