"""The evaluation engine: AF2's generation protocol, option scoring, shuffle robustness, submission files.

Two ways to turn a model into an answer:

- ``generate`` (AF2's protocol, what the published numbers use): the fixed eval prompt ``question (A) x. (B) y.``
  through ``prompt_text``, greedy decoding until ``<|endoftext|>``, the text parsed back to an option
  (``augment.parse_answer``); text that names no option is "unparsed" and counts as wrong.
- ``score``: every option's training-format target (``render_answer`` -> ``(b) yyy``, lower-cased) is scored by
  its summed log-probability given the audio and the prompt, all options of a batch of questions in ONE forward
  pass; the argmax is the prediction (never unparsed), the softmax over the options gives probabilities.

Both share the audio path: questions are processed in clip order (several questions share a clip), each clip is
read once into a small cache (``load_clip`` + ``split_windows`` with the model's ``AudioConfig``), and a batch
encodes each of its distinct clips once (``encode_audio``), handing the memory to its questions with
``AudioMemory.select``. The encoded audio is kept for the call's later passes (the other mode, the shuffle check),
so each clip is encoded once per ``evaluate`` (``EvalSettings.encoded_cache_size``).

``evaluate`` returns an :class:`EvalResult` (one prediction row per question in the input order, accuracy reports
per mode, shuffle robustness, timing) and can write ``predictions.csv``, ``metrics.json`` and the challenge's
``submission.csv``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from aqa_utils import metrics
from aqa_utils.audio import ClipCache, pad_window_batch
from aqa_utils.config import AudioConfig
from aqa_utils.data import augment
from aqa_utils.data.augment import EVAL_FORMAT, eval_example, parse_answer, render_answer
from aqa_utils.data.dcase import Question, subset_of
from aqa_utils.data.prompt import EOC, AF2Tokens, encode_prompts, encode_scoring
from aqa_utils.model import AudioMemory

MODES = ("generate", "score", "both")


@dataclass
class EvalSettings:
    """How ``evaluate`` runs."""

    mode: str = "generate"
    """"generate" (AF2's protocol), "score" (option log-likelihood) or "both"."""
    batch_size: int = 16
    """Questions per batch (with robustness: (question, ordering) items per batch)."""
    max_new_tokens: int = 256
    """Generation budget per answer (AF2 uses 256)."""
    permutations: int = 0
    """K orderings per question for the shuffle-robustness check; 0 = off."""
    seed: int = 0
    """Seed of the orderings (``metrics.permutations_for``)."""
    limit: int | None = None
    """Evaluate only the first ``limit`` questions; None = all."""
    progress: bool = False
    """Show tqdm progress bars."""
    robustness_mode: str = "score"
    """Mode the robustness check runs in ("score" is fastest; "generate" is AF2's protocol)."""
    primary: str | None = None
    """Mode whose predictions fill ``pred``/``pred_text`` and the submission in "both"; None = "generate"."""
    clip_cache_size: int = 256
    """Clips kept in the audio cache (a 10 s clip is ~0.6 MB); questions run in clip order, so a small cache
    already reads every clip once per pass."""
    encoded_cache_size: int = 256
    """Clips whose encoded audio is kept on the model's device between passes (each mode, the shuffle check), so a
    clip is encoded once per call; 0 = encode in every pass. af2-3b: 256 KB per 10 s window in bf16."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.robustness_mode not in ("generate", "score"):
            raise ValueError(f"robustness_mode must be 'generate' or 'score', got {self.robustness_mode!r}")
        if self.primary not in (None, "generate", "score"):
            raise ValueError(f"primary must be None, 'generate' or 'score', got {self.primary!r}")
        if self.primary is not None and self.mode != "both" and self.primary != self.mode:
            raise ValueError(f"primary={self.primary!r} is not run in mode {self.mode!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.permutations < 0 or self.clip_cache_size < 1 \
                or self.encoded_cache_size < 0:
            raise ValueError("batch_size, max_new_tokens and clip_cache_size must be >= 1, permutations and "
                             "encoded_cache_size >= 0")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be None or >= 0, got {self.limit}")

    @property
    def modes(self) -> tuple[str, ...]:
        return ("generate", "score") if self.mode == "both" else (self.mode,)

    @property
    def primary_mode(self) -> str:
        if self.primary is not None:
            return self.primary
        return "generate" if "generate" in self.modes else "score"


@dataclass
class EvalResult:
    """What ``evaluate`` measured.

    ``predictions``: one row per question, in the input order (see ``evaluate``).
    ``metrics``: {mode: ``metrics.accuracy_report``} (or only counts when no answer is known).
    ``robustness``: ``metrics.shuffle_robustness`` plus run details, None when off; ``per_perm`` its rows and
    ``positions`` the ``metrics.position_distribution`` table.
    ``timing``: per mode, seconds, questions/s and the audio-loading share; ``audio`` cache statistics.
    """

    predictions: pd.DataFrame
    metrics: dict[str, Any]
    robustness: dict[str, Any] | None
    timing: dict[str, Any]
    settings: EvalSettings
    per_perm: pd.DataFrame | None = None
    positions: pd.DataFrame | None = None
    submission: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        lines = []
        for mode, rep in self.metrics.items():
            if "micro" in rep:
                per = ", ".join(f"{k} {100 * v:.1f}" for k, v in rep["per_subset"].items())
                lines.append(f"{mode}: micro {100 * rep['micro']:.1f}%, domain avg {100 * rep['domain_average']:.1f}%"
                             f" ({per}); unparsed {100 * rep['unparsed_rate']:.1f}%")
            else:
                lines.append(f"{mode}: {rep['counts']['rows']} questions, no answers to score")
            t = self.timing.get(mode)
            if t:
                lines[-1] += f"; {t['questions_per_s']:.2f} q/s"
        if self.robustness:
            r = self.robustness
            lines.append(f"shuffle robustness ({r['mode']}, K={r['k']}): mean {100 * r['mean_accuracy']:.1f}% "
                         f"+- {100 * r['std_accuracy']:.1f}, consistent {100 * r['consistent_accuracy']:.1f}%")
        return "\n".join(lines)


# --- plumbing ---------------------------------------------------------------------------------------------------

def _core(model: Any) -> Any:
    """The AF2 model itself: a peft ``PeftModel`` hands out its base (adapters are injected in place, so active)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _device(model: Any) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def _audio_config(model: Any) -> AudioConfig:
    config = getattr(model, "config", None)
    return getattr(config, "audio", None) or AudioConfig()


@dataclass
class _Item:
    """One question shown in one ordering: ``order[p]`` is the original index of the option at position p."""

    index: int
    """Position of the question in the evaluated list."""
    question: Question
    order: tuple[int, ...]
    perm_id: int = 0

    @property
    def example(self) -> augment.MCExample:
        return eval_example(self.question, order=list(self.order))


@dataclass
class _Out:
    """A prediction for one item, in ORIGINAL option indices (pred None = unparsed)."""

    pred: int | None
    position: int | None
    """The predicted position as shown."""
    text: str
    """Generated text (generate) or the chosen option's text (score)."""
    probs: list[float] | None = None
    """score: per original option, softmax over the options' summed log-probs."""
    logprobs: list[float] | None = None


def _batches(items: list[_Item], size: int) -> list[list[_Item]]:
    # Clip order groups the questions of a clip into one batch (one encode) and lets a small cache suffice.
    ordered = sorted(items, key=lambda it: (str(it.question.audio_path), it.index, it.perm_id))
    return [ordered[i: i + size] for i in range(0, len(ordered), size)]


class _EncodedClips:
    """Clips as the model hears them: waveforms from a ``ClipCache`` and, for up to ``keep`` clips, their encoded
    audio, so that one ``evaluate`` call encodes a clip once over all its passes (each mode, the shuffle check).
    ``keep=0`` encodes each batch's clips afresh, as NVIDIA's per-question scripts do."""

    def __init__(self, waveforms: ClipCache, keep: int):
        self.waveforms, self.keep = waveforms, keep
        # path -> the clip's memory tokens (N_clip, D), valid ones only (so no mask needs keeping)
        self._kept: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = self.reused = 0

    def batch(self, core: Any, batch: list[_Item], device: torch.device) -> tuple[AudioMemory, torch.Tensor]:
        """Memory over the batch's distinct clips (C, N, D) and each item's clip index (len(batch),)."""
        position = {p: i for i, p in enumerate(dict.fromkeys(str(it.question.audio_path) for it in batch))}
        paths = list(position)
        index = torch.tensor([position[str(it.question.audio_path)] for it in batch], dtype=torch.long,
                             device=device)
        missing = [p for p in paths if p not in self._kept]
        self.reused += len(paths) - len(missing)
        memory = None
        if missing:
            windows, mask = pad_window_batch([self.waveforms.get(p) for p in missing])
            memory = core.encode_audio(windows.to(device), mask.to(device))
            self.encoded += len(missing)
            if self.keep == 0:
                return memory, index
            for i, p in enumerate(missing):
                n = int(memory.mask[i].sum())  # a clip's valid windows, hence tokens, come first
                self._kept[p] = memory.tokens[i, :n]
        if len(missing) < len(paths):  # some clips come from the cache: pad them all to one width
            tokens, valid = pad_window_batch([self._kept[p] for p in paths])
            memory = AudioMemory(tokens, valid.to(tokens.device))
        for p in paths:
            self._kept.move_to_end(p)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return memory, index

    def stats(self) -> dict:
        return {**self.waveforms.stats(), "encoded": self.encoded, "encodings_reused": self.reused}


def _decode(tokenizer: Any, ids: list[int]) -> str:
    text = tokenizer.decode(ids, skip_special_tokens=True)
    return text.replace(EOC, "").strip()


def _generate_batch(core, tokenizer, batch: list[_Item], memory, index, max_new_tokens: int) -> list[_Out]:
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
        outs.append(_Out(None if position is None else it.order[position], position, text))
    return outs


def option_targets(choices: Sequence[str]) -> list[str]:
    """The strings scored for each option: the training target in the eval format, ``(b) yyy`` (lower-cased later
    by ``encode_scoring``, as AF2 lower-cases targets)."""
    return [render_answer(list(choices), i, EVAL_FORMAT) for i in range(len(choices))]


def _score_batch(core, tokenizer, batch: list[_Item], memory, index) -> list[_Out]:
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
        outs.append(_Out(it.order[position], position, ex.choices[position], probs, logprobs))
    return outs


def _run(model, tokenizer, items: list[_Item], mode: str, settings: EvalSettings, clips: _EncodedClips,
         desc: str = "") -> tuple[list[_Out], dict[str, Any]]:
    """Predictions for ``items`` (in their order) and the pass's timing."""
    core = _core(model)
    device = _device(core)
    outs: list[_Out | None] = [None] * len(items)
    pos = {id(it): i for i, it in enumerate(items)}
    batches = _batches(items, settings.batch_size)
    load_before, t0 = clips.waveforms.load_seconds, time.perf_counter()
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.inference_mode():
            for batch in tqdm(batches, desc=desc or mode, disable=not settings.progress, leave=False):
                memory, index = clips.batch(core, batch, device)
                if mode == "generate":
                    got = _generate_batch(core, tokenizer, batch, memory, index, settings.max_new_tokens)
                else:
                    got = _score_batch(core, tokenizer, batch, memory, index)
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


# --- the table, the reports, the files ----------------------------------------------------------------------------

def _base_table(questions: list[Question]) -> pd.DataFrame:
    return pd.DataFrame({
        "qid": [q.qid for q in questions],
        "subset": [q.subset for q in questions],
        "question_type": [q.question_type for q in questions],
        "n_choices": [len(q.choices) for q in questions],
        "answer": pd.array([q.answer for q in questions], dtype="Int64"),
    })


def _preds(outs: list[_Out]) -> pd.api.extensions.ExtensionArray:
    return pd.array([o.pred for o in outs], dtype="Int64")


def _report(table: pd.DataFrame) -> dict[str, Any]:
    """accuracy_report, or counts only when no answer is known (the eval split)."""
    if table["answer"].notna().any():
        return metrics.accuracy_report(table)
    return {"counts": {"rows": len(table), "scored": 0, "unscored": len(table),
                       "unparsed": int(table["pred"].isna().sum())}}


def _correct(answer: pd.Series, pred: pd.Series) -> pd.Series:
    """True/False where the answer is known (unparsed = False), NA where it is not."""
    out = (answer == pred).fillna(False).astype("boolean")
    out[answer.isna()] = pd.NA
    return out


def _robustness(model, tokenizer, questions: list[Question], settings: EvalSettings, clips: _EncodedClips):
    mode = settings.robustness_mode
    items = []
    for i, q in enumerate(questions):
        if q.answer is None:
            continue
        n = len(q.choices)
        k = min(settings.permutations, math.factorial(n))  # 2 options have only 2 orderings
        for p, order in enumerate(metrics.permutations_for(n, k, settings.seed)):
            items.append(_Item(i, q, tuple(order), p))
    if not items:
        return None, None, None, None
    outs, timing = _run(model, tokenizer, items, mode, settings, clips, desc=f"robustness ({mode})")
    per_perm = pd.DataFrame({
        "qid": [it.question.qid for it in items],
        "perm": [it.perm_id for it in items],
        "order": [list(it.order) for it in items],
        "n_choices": [len(it.order) for it in items],
        "answer": [it.question.answer for it in items],
        "pred": pd.array([o.pred for o in outs], dtype="Int64"),
        "answer_position": [it.order.index(it.question.answer) for it in items],
        "pred_position": pd.array([o.position for o in outs], dtype="Int64"),
        "subset": [it.question.subset for it in items],
    })
    summary = metrics.shuffle_robustness(per_perm)
    summary = {"mode": mode, "k": settings.permutations, "seed": settings.seed, **summary}
    positions = metrics.position_distribution(per_perm)
    return summary, per_perm, positions, timing


def _jsonable(obj: Any, digits: int = 6) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, digits) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return _jsonable(obj.reset_index().to_dict(orient="records"), digits)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return None if not math.isfinite(x) else round(x, digits)
    if obj is None or obj is pd.NA:
        return None
    return obj if isinstance(obj, str) else str(obj)


def submission_rows(questions: list[Question], preds: Iterable[int | None]) -> tuple[list[tuple[str, str]], int]:
    """(question id, verbatim option string) per question; an unparsed prediction becomes the first option.

    Returns the rows and how many were unparsed.
    """
    rows, unparsed = [], 0
    for q, p in zip(questions, preds):
        if p is None or pd.isna(p):
            unparsed += 1
            p = 0
        raw = q.raw_choices or [f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(q.choices)]
        rows.append((q.qid, raw[int(p)]))
    return rows, unparsed


def _write(result: EvalResult, questions: list[Question], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = result.predictions.copy()
    for col in ("probs", "logprobs"):
        if col in table.columns:
            table[col] = [None if v is None else json.dumps([round(x, 6) for x in v]) for v in table[col]]
    files = {"predictions": out_dir / "predictions.csv", "metrics": out_dir / "metrics.json",
             "submission": out_dir / "submission.csv"}
    table.to_csv(files["predictions"], index=False)
    rows, unparsed = submission_rows(questions, result.predictions["pred"])
    written = metrics.write_submission(files["submission"], rows)
    result.submission = {"rows": written, "unparsed_as_first_option": unparsed, "mode": result.settings.primary_mode}
    if result.per_perm is not None:
        files["robustness"] = out_dir / "robustness.csv"
        result.per_perm.to_csv(files["robustness"], index=False)
    payload = {
        "settings": asdict(result.settings),
        "n_questions": len(questions),
        "metrics": result.metrics,
        "robustness": result.robustness,
        "position_distribution": result.positions,
        "timing": result.timing,
        "submission": result.submission,
    }
    files["metrics"].write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    result.files = files


# --- public entry points ------------------------------------------------------------------------------------------

def evaluate(model: Any, tokenizer: Any, questions: Sequence[Question], settings: EvalSettings | None = None,
             out_dir: str | Path | None = None) -> EvalResult:
    """Evaluate ``model`` on ``questions``.

    ``predictions`` columns, one row per question in the given order:
      qid, subset, question_type, n_choices, answer (Int64, NA = unknown), pred (Int64 original option index,
      NA = unparsed), pred_text (generated text, or the chosen option's text in score mode), correct (boolean,
      NA when the answer is unknown); per mode run: ``pred_generate`` / ``pred_score``; ``raw_output`` (generated
      text) when generating; ``probs`` and ``logprobs`` (per original option) when scoring.
    With ``out_dir``: ``predictions.csv``, ``metrics.json``, ``submission.csv`` (and ``robustness.csv``).
    """
    settings = settings or EvalSettings()
    questions = list(questions)[: settings.limit] if settings.limit is not None else list(questions)
    if not questions:
        raise ValueError("evaluate: no questions")
    dup = pd.Series([q.qid for q in questions]).duplicated()
    if dup.any():
        raise ValueError(f"evaluate: duplicate question id(s) {[q.qid for q, d in zip(questions, dup) if d][:5]}")
    clips = _EncodedClips(ClipCache(_audio_config(_core(model)), settings.clip_cache_size), settings.encoded_cache_size)
    items = [_Item(i, q, tuple(range(len(q.choices)))) for i, q in enumerate(questions)]

    table = _base_table(questions)
    results: dict[str, list[_Out]] = {}
    timing: dict[str, Any] = {}
    for mode in settings.modes:
        results[mode], timing[mode] = _run(model, tokenizer, items, mode, settings, clips)
        table[f"pred_{mode}"] = _preds(results[mode])
        if mode == "generate":
            table["raw_output"] = [o.text for o in results[mode]]
        else:
            table["probs"] = [o.probs for o in results[mode]]
            table["logprobs"] = [o.logprobs for o in results[mode]]
    primary = settings.primary_mode
    table.insert(5, "pred", table[f"pred_{primary}"])
    table.insert(6, "pred_text", [o.text for o in results[primary]])
    table.insert(7, "correct", _correct(table["answer"], table["pred"]))
    for mode in settings.modes:
        if mode != primary:
            table[f"correct_{mode}"] = _correct(table["answer"], table[f"pred_{mode}"])

    reports = {mode: _report(table.assign(pred=table[f"pred_{mode}"])) for mode in settings.modes}
    robustness = per_perm = positions = None
    if settings.permutations > 0:
        robustness, per_perm, positions, rob_timing = _robustness(model, tokenizer, questions, settings, clips)
        if rob_timing is not None:
            timing["robustness"] = rob_timing
    timing["audio"] = clips.stats()

    result = EvalResult(table, reports, robustness, timing, settings, per_perm, positions)
    if out_dir is not None:
        _write(result, questions, Path(out_dir))
    return result


def evaluate_sequential_generate(model: Any, tokenizer: Any, questions: Sequence[Question],
                                 max_new_tokens: int = 256) -> EvalResult:
    """NVIDIA's way: one question at a time, batch size 1, the clip read and encoded again for every question.

    The reference point for the batched, cached ``evaluate``'s throughput; same predictions table and timing.
    """
    settings = EvalSettings(mode="generate", batch_size=1, max_new_tokens=max_new_tokens)
    questions = list(questions)
    clips = _EncodedClips(ClipCache(_audio_config(_core(model)), max_clips=0), keep=0)
    items = [_Item(i, q, tuple(range(len(q.choices)))) for i, q in enumerate(questions)]
    core = _core(model)
    device = _device(core)
    outs: list[_Out] = []
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            for it in items:  # input order, no grouping by clip
                memory, index = clips.batch(core, [it], device)
                outs += _generate_batch(core, tokenizer, [it], memory, index, max_new_tokens)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    seconds = time.perf_counter() - t0
    n = len(items)
    load_s = clips.waveforms.load_seconds
    timing = {"generate": {"items": n, "batches": n, "seconds": seconds, "audio_load_s": load_s,
                           "questions_per_s": n / seconds if seconds > 0 else math.inf,
                           "model_questions_per_s": n / max(seconds - load_s, 1e-12)},
              "audio": clips.stats()}
    table = _base_table(questions)
    table["pred"] = _preds(outs)
    table["pred_text"] = [o.text for o in outs]
    table["correct"] = _correct(table["answer"], table["pred"])
    table["pred_generate"] = table["pred"]
    table["raw_output"] = table["pred_text"]
    return EvalResult(table, {"generate": _report(table)}, None, timing, settings)


_LABELLED = re.compile(r"^\s*([A-Z])[.)]\s*(.*?)\s*$", re.S)


def _strip_labels(choices: Sequence[str]) -> list[str]:
    """Drop "A. " style labels when every option carries its own, in order (as DCASE files write them)."""
    matches = [_LABELLED.match(c) for c in choices]
    if all(m and m.group(1) == chr(ord("A") + i) and m.group(2) for i, m in enumerate(matches)):
        return [m.group(2).rstrip(", ") for m in matches]  # type: ignore[union-attr]
    return [c.strip() for c in choices]


def predict_one(model: Any, tokenizer: Any, audio_path: str | Path, question: str, choices: Sequence[str],
                max_new_tokens: int = 256, generate: bool = True) -> dict[str, Any]:
    """Answer one question about one clip (the demo): option probabilities (score) and the generated answer.

    ``choices``: option texts, with or without "A. " labels. Returns ``answer`` (index of the most likely
    option), ``answer_text``, ``probabilities`` (per option, softmax over the options' summed log-probs),
    ``logprobs``, ``generated`` (AF2's free answer; None with ``generate=False``) and ``generated_answer``
    (its parsed option index, None if unparsed), and ``seconds``.
    """
    texts = _strip_labels(choices)
    if not 2 <= len(texts) <= 6:
        raise ValueError(f"predict_one: need 2 to 6 choices, got {len(texts)}")
    path = Path(audio_path)
    q = Question(qid="demo", split="demo", question=question, choices=texts, answer=None, clip_id=path.stem,
                 audio_path=path, subset=subset_of(path.name), question_type="",
                 json_path=path, raw_choices=[f"{chr(ord('A') + i)}. {t}" for i, t in enumerate(texts)])
    settings = EvalSettings(mode="both" if generate else "score", batch_size=1, max_new_tokens=max_new_tokens)
    t0 = time.perf_counter()
    clips = _EncodedClips(ClipCache(_audio_config(_core(model)), 1), keep=1)
    item = _Item(0, q, tuple(range(len(texts))))
    (scored,), _ = _run(model, tokenizer, [item], "score", settings, clips)
    generated = None
    if generate:
        (generated,), _ = _run(model, tokenizer, [item], "generate", settings, clips)
    return {
        "answer": scored.pred,
        "answer_text": texts[scored.pred],
        "choices": texts,
        "probabilities": scored.probs,
        "logprobs": scored.logprobs,
        "generated": None if generated is None else generated.text,
        "generated_answer": None if generated is None else generated.pred,
        "seconds": time.perf_counter() - t0,
    }
