"""The batching engine: questions in clip order, each clip encoded once, answered by generation or option scoring.

Questions are processed in clip order (several questions share a clip), each clip is read once into a small cache
(``load_clip`` + ``split_windows`` with the model's ``AudioConfig``), and a batch encodes each of its distinct clips
once (``encode_audio``), handing the memory to its questions with ``AudioMemory.select``. The encoded audio is kept
for the call's later passes (the other mode, the shuffle check), so each clip is encoded once per ``evaluate``
(``EvalSettings.encoded_cache_size``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from aqa_utils.audio import ClipCache, pad_to_longest
from aqa_utils.config import AudioConfig
from aqa_utils.data.answers import parse_answer
from aqa_utils.data.dcase import Question
from aqa_utils.data.formats import EVAL_FORMAT, MCExample, eval_example, render_answer
from aqa_utils.data.prompt import EOC, AF2Tokens, encode_prompts, encode_scoring
from aqa_utils.evaluation.settings import EvalSettings
from aqa_utils.model import AudioMemory
from aqa_utils.progress import tqdm


def core_of(model: Any) -> Any:
    """The AF2 model itself: a peft ``PeftModel`` hands out its base (adapters are injected in place, so active)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def device_of(model: Any) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def audio_config_of(model: Any) -> AudioConfig:
    config = getattr(model, "config", None)
    return getattr(config, "audio", None) or AudioConfig()


@dataclass
class Item:
    """One question shown in one ordering: ``order[p]`` is the original index of the option at position p."""

    index: int
    """Position of the question in the evaluated list."""
    question: Question
    order: tuple[int, ...]
    perm_id: int = 0

    @property
    def example(self) -> MCExample:
        return eval_example(self.question, order=list(self.order))


@dataclass
class Out:
    """A prediction for one item, in ORIGINAL option indices (pred None = unparsed)."""

    pred: int | None
    position: int | None
    """The predicted position as shown."""
    text: str
    """Generated text (generate) or the chosen option's text (score)."""
    probs: list[float] | None = None
    """score: per original option, softmax over the options' summed log-probs."""
    logprobs: list[float] | None = None


def clip_batches(items: list[Item], size: int, clip_order: bool = True) -> list[list[Item]]:
    """Batches of ``size`` items; in clip order, a clip's questions share a batch (one encode) and a small cache
    suffices."""
    if clip_order:
        items = sorted(items, key=lambda it: (str(it.question.audio_path), it.index, it.perm_id))
    return [items[i: i + size] for i in range(0, len(items), size)]


class EncodedClips:
    """Clips as the model hears them: waveforms from a ``ClipCache`` and, for up to ``keep`` clips (None: all), their
    encoded audio, so that one ``evaluate`` call encodes a clip once over all its passes (each mode, the shuffle
    check). ``keep=0`` encodes each batch's clips afresh, as NVIDIA's per-question scripts do."""

    def __init__(self, waveforms: ClipCache, keep: int | None):
        self.waveforms, self.keep = waveforms, keep
        # path -> the clip's memory tokens (N_clip, D), valid ones only (so no mask needs keeping)
        self._kept: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = self.reused = 0

    def batch(self, core: Any, batch: list[Item], device: torch.device) -> tuple[AudioMemory, torch.Tensor]:
        """Memory over the batch's distinct clips (C, N, D) and each item's clip index (len(batch),)."""
        position = {p: i for i, p in enumerate(dict.fromkeys(str(it.question.audio_path) for it in batch))}
        paths = list(position)
        index = torch.tensor([position[str(it.question.audio_path)] for it in batch], dtype=torch.long,
                             device=device)
        missing = [p for p in paths if p not in self._kept]
        self.reused += len(paths) - len(missing)
        memory = None
        if missing:
            windows, mask = pad_to_longest([self.waveforms.get(p) for p in missing])
            memory = core.encode_audio(windows.to(device), mask.to(device))
            self.encoded += len(missing)
            if self.keep == 0:
                return memory, index
            for i, p in enumerate(missing):
                n = int(memory.mask[i].sum())  # a clip's valid windows, hence tokens, come first
                self._kept[p] = memory.tokens[i, :n]
        if len(missing) < len(paths):  # some clips come from the cache: pad them all to one width
            tokens, valid = pad_to_longest([self._kept[p] for p in paths])
            memory = AudioMemory(tokens, valid.to(tokens.device))
        for p in paths:
            self._kept.move_to_end(p)
        while self.keep is not None and len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return memory, index

    def stats(self) -> dict:
        return {**self.waveforms.stats(), "encoded": self.encoded, "encodings_reused": self.reused}


def _decode(tokenizer: Any, ids: list[int]) -> str:
    text = tokenizer.decode(ids, skip_special_tokens=True)
    return text.replace(EOC, "").strip()


def generate_batch(core, tokenizer, batch: list[Item], memory, index, max_new_tokens: int) -> list[Out]:
    ids = AF2Tokens.of(tokenizer)
    examples = [it.example for it in batch]
    prompts = encode_prompts([ex.prompt for ex in examples], tokenizer)
    device = index.device
    new = core.generate(memory.select(index), prompts.input_ids.to(device), prompts.attention_mask.to(device),
                        max_new_tokens=max_new_tokens, stop_ids=(ids.eos,), pad_id=ids.pad)
    outs = []
    for it, ex, tokens in zip(batch, examples, new):
        text = _decode(tokenizer, tokens)
        position = parse_answer(text, ex.choices, EVAL_FORMAT)
        outs.append(Out(None if position is None else it.order[position], position, text))
    return outs


def option_targets(choices: Sequence[str]) -> list[str]:
    """The strings scored for each option: the training target, the option's text (lower-cased later by
    ``encode_scoring``, as AF2 lower-cases targets)."""
    return [render_answer(list(choices), i) for i in range(len(choices))]


def score_batch(core, tokenizer, batch: list[Item], memory, index) -> list[Out]:
    examples = [it.example for it in batch]
    enc = encode_scoring([ex.prompt for ex in examples], [option_targets(ex.choices) for ex in examples], tokenizer)
    device = index.device
    owner = enc["row_to_question"].to(device)
    lp = core.option_logprobs(memory, enc["input_ids"].to(device), enc["attention_mask"].to(device),
                              enc["target_mask"].to(device), index[owner]).float().cpu()
    owner = owner.cpu()
    outs = []
    for q, (it, ex) in enumerate(zip(batch, examples)):
        shown = lp[owner == q]  # options in the order shown
        position = int(torch.argmax(shown))
        probs_shown = torch.softmax(shown.double(), dim=0)
        probs, logprobs = [0.0] * len(shown), [0.0] * len(shown)
        for p, original in enumerate(it.order):
            probs[original], logprobs[original] = float(probs_shown[p]), float(shown[p])
        outs.append(Out(it.order[position], position, ex.choices[position], probs, logprobs))
    return outs


def run_items(model, tokenizer, items: list[Item], mode: str, settings: EvalSettings, clips: EncodedClips,
         desc: str = "") -> tuple[list[Out], dict[str, Any]]:
    """Predictions for ``items`` (in their order) and the pass's timing."""
    core = core_of(model)
    device = device_of(core)
    outs: list[Out | None] = [None] * len(items)
    pos = {id(it): i for i, it in enumerate(items)}
    batches = clip_batches(items, settings.batch_size, settings.clip_order)
    load_before, t0 = clips.waveforms.load_seconds, time.perf_counter()
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.inference_mode():
            for batch in tqdm(batches, desc=desc or mode, disable=not settings.progress, leave=False):
                memory, index = clips.batch(core, batch, device)
                if mode == "generate":
                    got = generate_batch(core, tokenizer, batch, memory, index, settings.max_new_tokens)
                else:
                    got = score_batch(core, tokenizer, batch, memory, index)
                for it, out in zip(batch, got):
                    outs[pos[id(it)]] = out
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    seconds = time.perf_counter() - t0
    audio_s = clips.waveforms.load_seconds - load_before
    n = len(items)
    timing = {
        "items": n, "batches": len(batches), "seconds": seconds, "audio_load_s": audio_s,
        "questions_per_s": n / seconds if seconds > 0 else math.inf,
        "model_questions_per_s": n / (seconds - audio_s) if seconds - audio_s > 0 else math.inf,
    }
    return outs, timing  # type: ignore[return-value]
