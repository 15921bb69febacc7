"""What a training step consumes: examples of the question corpus, the caption corpus, or the caption tags.

``QuestionExamples`` and ``CaptionExamples`` give ``Example`` (clip, prompt, target) for the language-model
objective; ``CaptionTags`` gives (clip, multi-hot target) for the tagging objective of the tiny base's stage 0.
Examples are rendered on demand from (seed, epoch, index), so a resumed run sees the same augmentation.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aqa_utils.config import TrainConfig
from aqa_utils.data.augment import augmented_example, training_example
from aqa_utils.data.dcase import Question, load_split
from aqa_utils.data.formats import eval_example, render_answer, render_question
from aqa_utils.data.mini import SOUND_CLASSES, read_captions
from aqa_utils.data.mini.generic import call_shape_question, copy_question, fact_question, presence_question
from aqa_utils.data.mini.vocabulary import CALLS

if TYPE_CHECKING:
    import torch

CAPTION_PROMPT = "describe the sound."
CAPTION_CORPORA = ("captions", "captions+copy", "captions+copy+facts")
"""The tiny base's corpora over the caption clips (``CaptionExamples``), one per stage after stage 0."""


@dataclass
class Example:
    audio_path: Path
    prompt: str
    target: str


class QuestionExamples:
    """Multiple-choice questions -> examples; ``train=True`` applies the report's augmentation."""

    def __init__(self, questions: list[Question], seed: int, train: bool):
        self.questions, self.seed, self.train = questions, seed, train

    def __len__(self) -> int:
        return len(self.questions)

    def get(self, index: int, epoch: int) -> Example:
        q = self.questions[index]
        if self.train:
            mc = training_example(q, np.random.default_rng([self.seed, epoch, index]))
        else:
            mc = eval_example(q)
        return Example(q.audio_path, mc.prompt, mc.target)


class CaptionExamples:
    """The tiny base's corpora, ``KINDS`` items per caption clip: its caption (under a fixed prompt) and a generic
    presence question about it (on a one-animal clip, half the time about its call shape); with ``copy=True`` also
    two text-only copy questions per clip, with ``facts=True`` also two text-only species facts, as multiple choice
    (``data.mini.generic``: why these, and why no benchmark question type).
    Questions are drawn anew each epoch from (seed, epoch, index) and rendered with the report's augmentation
    (shuffled options, one of six label formats) when ``train`` is True, else in the fixed eval format. A text-only
    line's clip is another caption clip: its audio is irrelevant to the answer."""

    def __init__(self, root: Path, split: str, seed: int = 0, train: bool = True, copy: bool = False,
                 facts: bool = False):
        self.seed, self.train = seed, train
        self.KINDS = ("caption", "presence") + ("copy", "copy") * copy + ("fact", "fact") * facts
        self.clips: list[tuple[Path, str, list[str]]] = read_captions(
            root, split, lambda row: (root / row["audio"], row["text"], list(row["sounds"])))
        # The call shape of a one-animal clip, as its caption names it ("... high-pitched trill calls."), else None.
        self.shapes = [next((c for c in CALLS if f" {c} calls" in text), None) for _, text, _ in self.clips]

    def __len__(self) -> int:
        return len(self.clips) * len(self.KINDS)

    def get(self, index: int, epoch: int) -> Example:
        clip, kind = divmod(index, len(self.KINDS))
        audio, caption, sounds = self.clips[clip]
        if self.KINDS[kind] == "caption":
            return Example(audio, CAPTION_PROMPT, caption)
        if self.KINDS[kind] == "fact":
            rng = np.random.default_rng([self.seed, epoch, index, 7])  # a stream of its own (the one measured)
            audio = self.clips[int(rng.integers(len(self.clips)))][0]
            question, choices, answer = fact_question(rng)
        elif self.KINDS[kind] == "presence" and self.shapes[clip] and \
                (rng := np.random.default_rng([self.seed, epoch, index, 13])).random() >= 0.5:
            # Half of a one-animal clip's presence questions ask its call shape, on a stream of their own.
            question, choices, answer = call_shape_question(rng, self.shapes[clip])
        else:
            rng = np.random.default_rng([self.seed, epoch, index])
            if self.KINDS[kind] == "presence":
                question, choices, answer = presence_question(rng, sounds)
            else:
                question, choices, answer = copy_question(rng)
                audio = self.clips[int(rng.integers(len(self.clips)))][0]
        if self.train:
            mc = augmented_example(question, choices, answer, rng)
            return Example(audio, mc.prompt, mc.target)
        return Example(audio, render_question(question, choices), render_answer(choices, answer))


class CaptionTags:
    """(clip path, multi-hot target over ``classes``) per line of ``captions/<split>.jsonl``: a class is present
    when the caption names it."""

    def __init__(self, root: str | Path, split: str, classes: tuple[str, ...] = SOUND_CLASSES):
        self.classes = classes

        def tags(row: dict) -> tuple[Path, tuple[float, ...]]:
            text = row["text"].lower()
            return Path(root) / row["audio"], tuple(float(c in text) for c in classes)

        # Tuples, made tensors in ``get``: a look at the tags alone (``corpus_fingerprint``) needs no torch.
        self.items: list[tuple[Path, tuple[float, ...]]] = read_captions(root, split, tags)
        if not self.items:
            raise ValueError(f"{Path(root) / 'captions' / f'{split}.jsonl'}: no captions")

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int, epoch: int) -> tuple[Path, torch.Tensor]:
        import torch

        path, tags = self.items[index]
        return path, torch.tensor(tags)


def load_examples(cfg: TrainConfig, split: str, train: bool, quick_look: bool = False):
    """The examples of ``split`` for ``cfg.corpus``: "questions", one of ``CAPTION_CORPORA`` or "tags".
    ``quick_look``: no audio header read and no progress bar (a look at the texts alone)."""
    root = Path(cfg.data_root)
    if cfg.corpus in CAPTION_CORPORA:
        return CaptionExamples(root, split, cfg.seed, train, copy="+copy" in cfg.corpus, facts="+facts" in cfg.corpus)
    if cfg.corpus == "tags":
        return CaptionTags(root, split)
    if cfg.corpus != "questions":
        raise ValueError(f"corpus must be 'questions', {', '.join(map(repr, CAPTION_CORPORA))} or 'tags', "
                         f"not {cfg.corpus!r}")
    loaded = load_split(root, split, skip_problems=cfg.skip_bad_data, check_audio=not quick_look,
                        progress=not quick_look)
    if loaded.skipped:
        print(f"{split}: skipped {loaded.skipped} questions with data problems: {loaded.summary()}")
    return QuestionExamples(loaded.questions, cfg.seed, train)


def corpus_fingerprint(cfg: TrainConfig, n: int = 256) -> str:
    """A digest of the first ``n`` training examples of epoch 0 of ``cfg``'s corpus: each one's clip name with its
    texts (or its tags). The workbook reuses a finished run only while this is unchanged, because a change to the
    corpus code (a new kind of line, another augmentation) changes what a run learns without changing any of its
    settings. ``n`` examples suffice: a caption clip's kinds are consecutive, so every kind is among them.
    Computed once per process for each corpus, data folder, split and seed (the workbook asks it for every run)."""
    return _fingerprint(cfg.corpus, cfg.data_root, cfg.train_split, cfg.seed, cfg.skip_bad_data, n)


@functools.lru_cache(maxsize=64)
def _fingerprint(corpus: str, data_root: str, split: str, seed: int, skip_bad_data: bool, n: int) -> str:
    cfg = TrainConfig(corpus=corpus, data_root=data_root, train_split=split, seed=seed, skip_bad_data=skip_bad_data)
    data = load_examples(cfg, split, train=True, quick_look=True)
    digest = hashlib.sha256()
    for i in range(min(n, len(data))):
        if isinstance(data, CaptionTags):  # (clip, multi-hot target)
            clip, tags = data.items[i]
            parts = (clip.name, " ".join(f"{v:g}" for v in tags))
        else:
            item = data.get(i, 0)
            parts = (item.audio_path.name, item.prompt, item.target)
        digest.update("\x1f".join(parts).encode() + b"\x1e")
    return digest.hexdigest()[:16]


def corpus_texts(root: str | Path, seed: int = 0, epochs: int = 3) -> Iterator[str]:
    """Every text af2-tiny reads or writes on the mini benchmark at ``root`` (its text alone suffices): each question
    split in the eval rendering and, for ``epochs`` epochs, the report's augmentation (six label formats, shuffled
    options); each caption split's corpus with copy and fact lines, in training and evaluation form. af2-tiny's
    trimmed vocabulary keeps what these need (``tools/build_mini_vocabulary.py``, ``tests/test_vocabulary.py``)."""
    root = Path(root)
    for split in ("train", "dev", "eval"):
        questions = load_split(root, split, check_audio=False).questions
        for q in questions:
            mc = eval_example(q)
            yield mc.prompt
            yield from q.choices  # an option alone, as a generated answer may be
            if mc.target is not None:
                yield mc.target
        if all(q.answer is not None for q in questions):
            examples = QuestionExamples(questions, seed, train=True)
            for epoch in range(epochs):
                for i in range(len(examples)):
                    e = examples.get(i, epoch)
                    yield from (e.prompt, e.target)
    for split in ("train", "dev"):
        for train in (True, False):
            examples = CaptionExamples(root, split, seed, train=train, copy=True, facts=True)
            for epoch in range(epochs if train else 1):
                for i in range(len(examples)):
                    e = examples.get(i, epoch)
                    yield from (e.prompt, e.target)
