"""The caption corpus the tiny base is pretrained on: one clip per line, its caption and one question."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aqa_utils.data.mini.scenes import QA, SPLIT_KEYS, Scene, ask, draw_choices, plan_scenes, seeded
from aqa_utils.data.mini.synth import write_audio
from aqa_utils.data.mini.vocabulary import CALLS, EVENTS, PITCHES, SPECIES, SPECIES_BY_NAME


# Question types the caption corpus asks, per domain: what is heard and in which order. The benchmark also asks
# about counts, times, durations and overlaps; the captions describe those, but only fine-tuning on the benchmark's
# train split shows the model such questions, as DCASE's question types were new to the released AF2.
CAPTION_QTYPES = {"BQA": ("species", "vocalization", "pitch"), "TSQA": ("first_event", "last_event"),
                  "CQA": ("species_before", "species_after", "event_between")}


def _caption_qa(rng: np.random.Generator, scene: Scene) -> QA:
    """A question of one of ``CAPTION_QTYPES[scene.subset]``, answered from the scene's sounds."""
    qtypes = CAPTION_QTYPES[scene.subset]
    qtype = qtypes[int(rng.integers(len(qtypes)))]
    first, last = scene.sounds[0], scene.sounds[-1]
    event = next((s.name for s in scene.sounds if not s.call), None)
    species = [s.name for s in SPECIES]
    answer, vocab = {
        "species": (first.name, species), "vocalization": (first.call, CALLS),
        "pitch": (SPECIES_BY_NAME[first.name].pitch if first.call else None, PITCHES),
        "first_event": (first.name, EVENTS), "last_event": (last.name, EVENTS),
        "species_before": (first.name, species), "species_after": (last.name, species),
        "event_between": (event, EVENTS),
    }[qtype]
    return ask(rng, qtype, answer, vocab, x=event)


def write_captions(root: Path, split: str, n: int, seed: int, audio: bool) -> int:
    """Caption corpus: n distinct clips from the same generators (every kind of scene the benchmark has), one line
    each, as 16 kHz mono WAV (pretraining needs no file-format quirks): the clip's caption and one multiple-choice
    question (``CAPTION_QTYPES``; option texts without labels, the answer's text)."""
    rng = seeded(seed, 100 + SPLIT_KEYS[split])
    scenes = plan_scenes(rng, n, prefix="cap", per_clip=1)
    lines, positions = [], {}
    for index, scene in enumerate(scenes):
        rel = f"captions/audio/{split}/{scene.name}.wav"
        if audio:
            write_audio(root / rel, scene, seeded(seed, 100 + SPLIT_KEYS[split], 10, index), plain=True)
        qa = _caption_qa(rng, scene)
        choices, slot = draw_choices(rng, qa, positions)
        lines.append(json.dumps({"audio": rel, "text": scene.caption, "subset": scene.subset,
                                 "question": qa.question, "question_type": qa.qtype,
                                 "choices": [c.split(". ", 1)[1] for c in choices], "answer": qa.answer}))
    (root / "captions").mkdir(parents=True, exist_ok=True)
    (root / "captions" / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    return len(lines)


def read_captions(root: str | Path, split: str, parse) -> list:
    """``parse(row)`` of every line of ``<root>/captions/<split>.jsonl``, in order (``row``: the line's JSON).

    A line that is not JSON, or that ``parse`` rejects (KeyError, TypeError, ValueError, AttributeError), is a
    problem; all problems are raised together, each naming the file and line.
    """
    path = Path(root) / "captions" / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no caption corpus (generate the mini benchmark first)")
    items, problems = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            items.append(parse(json.loads(line)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # json.JSONDecodeError is a ValueError
            problems.append(f"{path}:{n}: malformed caption line ({type(err).__name__}: {err})")
    if problems:
        raise ValueError(f"{len(problems)} malformed caption line(s):\n  " + "\n  ".join(problems))
    return items
