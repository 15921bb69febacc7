"""A validation split carved out of a labelled split, by clip: ``train.val`` and ``train.fit``.

Hyperparameters are chosen on data that is neither trained on nor reported. DCASE ships train, dev and eval only,
so the workbook carves one: every ``EVERY``-th clip of ``<split>`` (clips sorted by file name) with all its
questions is ``<split>.val``, the rest ``<split>.fit``. By clip, because a clip's questions share its audio: a
question of a trained-on clip would measure memory. The names work wherever a split name does (``load_split``,
``TrainConfig.train_split`` / ``val_split``, evaluation folders).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aqa_utils.data.dcase import Question

EVERY = 5
PARTS = ("fit", "val")


def parse_split(split: str) -> tuple[str, str | None]:
    """("train", "val") for "train.val", ("dev", None) for "dev"; an unknown part is an error naming it."""
    base, dot, part = split.partition(".")
    if not dot:
        return split, None
    if part not in PARTS:
        raise ValueError(f"split {split!r}: the part after the dot must be one of {PARTS}")
    return base, part


def carve(questions: list[Question], part: str) -> list[Question]:
    """The questions of ``part`` ("fit" or "val"), in their input order."""
    clips = sorted({q.audio_path.name for q in questions})
    held = set(clips[::EVERY])
    return [q for q in questions if (q.audio_path.name in held) == (part == "val")]
