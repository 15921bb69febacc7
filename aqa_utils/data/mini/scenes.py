"""Scenes (what sounds when in one clip) and the questions asked about them, drawn from balanced cycles."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from aqa_utils.data.mini.vocabulary import (
    CALLS, CHOICE_COUNTS, CLIP_PREFIX, DURATION_WORDS, DURATIONS, EVENTS, GAP, NUMBERS, OFFSETS, ONSETS, PITCHES,
    QTYPES, SPECIES, SPECIES_BY_NAME, TEMPLATES, seconds,
)


@dataclass
class Sound:
    """One sound in a scene: an animal call (``call`` set) or an event."""

    name: str
    onset: float
    duration: float
    call: str = ""

    @property
    def offset(self) -> float:
        return self.onset + self.duration


@dataclass
class QA:
    """One question about a scene, before its options are drawn."""

    qtype: str
    question: str
    answer: str
    vocab: tuple[str, ...]
    """Answer classes of this question type: the distractors are drawn from them."""
    exclude: tuple[str, ...] = ()
    """Classes the question itself rules out (e.g. the event named in "after the bell"): never distractors."""


@dataclass
class Scene:
    """One clip: what sounds when, the questions asked about it, and its caption."""

    name: str
    subset: str
    duration: float
    sounds: list[Sound]
    qas: list[QA] = field(default_factory=list)
    caption: str = ""


class Cycle:
    """Balanced draws: every item once per round, rounds shuffled."""

    def __init__(self, items, rng: np.random.Generator):
        self.items, self.rng, self.queue = list(items), rng, []

    def next(self):
        if not self.queue:
            self.queue = [self.items[i] for i in self.rng.permutation(len(self.items))]
        return self.queue.pop()


def _layout(rng: np.random.Generator, durations: list[float], total: float, margin: float = 0.3) -> list[float] | None:
    """Onsets placing sounds in order with >= GAP between them inside [margin, total - margin]; None if too long."""
    slack = total - 2 * margin - sum(durations) - GAP * (len(durations) - 1)
    if slack < 0:
        return None
    shares = rng.dirichlet(np.ones(len(durations) + 1)) * slack
    onsets, t = [], margin
    for d, extra in zip(durations, shares):
        t += extra
        onsets.append(round(t, 3))
        t += d + GAP
    return onsets


def _call_duration(rng: np.random.Generator, call: str) -> float:
    return float(rng.uniform(1.0, 1.4) if call == "moan" else rng.uniform(0.5, 0.8))


def ask(rng: np.random.Generator, qtype: str, answer: str, vocab, exclude=(), **names) -> QA:
    template = TEMPLATES[qtype][int(rng.integers(len(TEMPLATES[qtype])))]
    return QA(qtype, template.format(**names), answer, tuple(vocab), tuple(exclude))


def _bqa(rng: np.random.Generator, name: str, cycles: dict, qtypes: list[str]) -> Scene:
    species = SPECIES_BY_NAME[cycles["species"].next()]
    count = cycles["count"].next()
    call = species.calls[int(rng.integers(2))]
    long = rng.random() < 0.1  # a few recordings span several 10 s windows
    while True:
        total = float(rng.uniform(15, 35) if long else rng.uniform(4, 10))
        durs = [_call_duration(rng, call) for _ in range(count)]
        onsets = _layout(rng, durs, total)
        if onsets is not None:
            break
    sounds = [Sound(species.name, t, d, call) for t, d in zip(onsets, durs)]
    answers = {"species": (species.name, [s.name for s in SPECIES]), "vocalization": (call, CALLS),
               "pitch": (species.pitch, PITCHES), "call_count": (NUMBERS[count - 1], NUMBERS)}
    scene = Scene(name, "BQA", round(total, 3), sounds)
    scene.qas = [ask(rng, q, *answers[q]) for q in qtypes]
    scene.caption = f"{_a(species.name)} makes {_calls(count)}: {species.pitch}-pitched {call} calls."
    return scene


def _timeline(rng: np.random.Generator, items: list[tuple[str, float]]) -> list[Sound] | None:
    onsets = _layout(rng, [d for _, d in items], 10.0)
    return None if onsets is None else [Sound(n, t, d) for (n, d), t in zip(items, onsets)]


def _tsqa_sounds(rng: np.random.Generator, qtype: str, target) -> tuple[list[Sound], dict] | None:
    """A soundscape satisfying the question's target class, and the names the question refers to (or None)."""
    kinds = [EVENTS[i] for i in rng.permutation(len(EVENTS))[: int(rng.integers(2, 5))]]
    durs = [float(rng.choice(DURATIONS)) for _ in kinds]
    if qtype == "event_count":  # the first kind repeats `target` times, short; the others once
        items = [(kinds[0], float(rng.uniform(0.5, 0.9))) for _ in range(target)] + list(zip(kinds[1:3], durs[1:3]))
        sounds = _timeline(rng, [items[i] for i in rng.permutation(len(items))])
        return (sounds, {"x": kinds[0]}) if sounds else None
    if qtype == "overlap":
        x, y = kinds[0], kinds[1]
        dx = float(rng.uniform(1.5, 3.0))
        if target == "yes":  # y starts inside x: one block in the timeline, laid out as a single sound
            lag, dy = float(rng.uniform(0.4, dx - 0.6)), float(rng.uniform(1.0, 2.0))
            items = [("block", max(dx, lag + dy))] + list(zip(kinds[2:], durs[2:]))
            order = rng.permutation(len(items))
            sounds = _timeline(rng, [items[i] for i in order])
            if sounds is None:
                return None
            block = next(s for s in sounds if s.name == "block")
            sounds = [s for s in sounds if s.name != "block"] + [Sound(x, block.onset, dx),
                                                                  Sound(y, round(block.onset + lag, 3), dy)]
        else:  # same duration statistics as the "yes" scenes, laid out apart
            items = [(x, dx), (y, float(rng.uniform(1.0, 2.0)))] + list(zip(kinds[2:], durs[2:]))
            sounds = _timeline(rng, [items[i] for i in rng.permutation(len(items))])
            if sounds is None:
                return None
        return sorted(sounds, key=lambda s: s.onset), {"x": x, "y": y}
    if qtype == "duration":
        durs[0] = float(DURATIONS[target] * rng.uniform(0.95, 1.05))
    order = rng.permutation(len(kinds))
    sounds = _timeline(rng, [(kinds[i], durs[i]) for i in order])
    if sounds is None:
        return None
    if qtype in ("onset", "offset"):
        when = (lambda s: s.onset) if qtype == "onset" else (lambda s: s.offset)
        near = [s for s in sounds if abs(when(s) - target) <= 0.4]
        return (sounds, {"x": near[0].name}) if near else None
    if qtype == "next_event":
        return sounds, {"x": sounds[int(rng.integers(len(sounds) - 1))].name}
    return sounds, {"x": kinds[0]}


def _tsqa(rng: np.random.Generator, name: str, cycles: dict, qtype: str) -> Scene:
    cycle = {"event_count": "count", "overlap": "yesno", "duration": "duration", "onset": "onset", "offset": "offset"}
    target = cycles[cycle[qtype]].next() if qtype in cycle else None
    for _ in range(1000):  # rejection sampling: cheap, nothing is synthesised yet
        found = _tsqa_sounds(rng, qtype, target)
        if found:
            break
    else:
        raise RuntimeError(f"could not lay out a {qtype} scene for {target!r}")
    sounds, names = found
    x = names["x"]
    order = [s.name for s in sounds]
    after = {a.name: b.name for a, b in zip(sounds, sounds[1:])}
    answers = {  # qtype -> (answer, vocabulary, excluded classes)
        "first_event": (order[0], EVENTS, ()),
        "last_event": (order[-1], EVENTS, ()),
        "next_event": (after.get(x), EVENTS, (x,)),
        "event_count": (NUMBERS[target - 1] if qtype == "event_count" else None, NUMBERS, ()),
        "onset": (seconds(target) if qtype == "onset" else None, [seconds(t) for t in ONSETS], ()),
        "offset": (seconds(target) if qtype == "offset" else None, [seconds(t) for t in OFFSETS], ()),
        "duration": (DURATION_WORDS[target] if qtype == "duration" else None, DURATION_WORDS, ()),
        "overlap": (target, ("yes", "no"), ()),
    }

    def about(q: str) -> QA:
        return ask(rng, q, *answers[q], x=x, y=names.get("y"))

    scene = Scene(name, "TSQA", 10.0, sounds, [about(qtype)])
    # First/last/next answers are uniform over the events by symmetry, so they can share any plain timeline.
    if qtype not in ("overlap", "event_count") and rng.random() < 0.5:
        extra = [q for q in ("first_event", "last_event") if q != qtype]
        scene.qas.append(about(extra[int(rng.integers(len(extra)))]))
    scene.caption = _tsqa_caption(sounds)
    return scene


def _tsqa_caption(sounds: list[Sound]) -> str:
    """Order, times, durations, repeats and overlaps, in the words the questions use."""
    parts = [f"{_a(s.name)} at {s.onset:.1f} s for {_duration_word(s.duration)}" for s in sounds]
    text = f"{sounds[0].name} first, {sounds[-1].name} last: " + ", then ".join(parts) + "."
    for name, n in Counter(s.name for s in sounds).items():
        if n > 1:
            text += f" the {name} is heard {NUMBERS[n - 1]} times."
    for a, b in zip(sounds, sounds[1:]):
        if b.onset < a.offset:
            text += f" the {a.name} and the {b.name} overlap."
    return text


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _calls(n: int) -> str:
    return f"{NUMBERS[n - 1]} call{'s' if n > 1 else ''}"


def _duration_word(d: float) -> str:
    return DURATION_WORDS[int(np.argmin(np.abs(np.log(DURATIONS) - np.log(d))))]


def _cqa(rng: np.random.Generator, name: str, cycles: dict, qtypes: list[str]) -> Scene:
    first = SPECIES_BY_NAME[cycles["species"].next()]
    others = [s for s in SPECIES if s is not first]
    second = others[int(rng.integers(len(others)))]
    event = cycles["event"].next()
    n_before, n_after = cycles["count3"].next(), cycles["count3"].next()
    while True:
        call_a, call_b = first.calls[int(rng.integers(2))], second.calls[int(rng.integers(2))]
        calls = [(first, call_a)] * n_before + [(second, call_b)] * n_after
        durs = [_call_duration(rng, c) for _, c in calls]
        items = durs[:n_before] + [float(rng.uniform(0.5, 1.5))] + durs[n_before:]
        onsets = _layout(rng, items, 10.0)
        if onsets is not None:
            break
    sounds = [Sound(sp.name, onsets[i + (i >= n_before)], durs[i], c) for i, (sp, c) in enumerate(calls)]
    sounds.insert(n_before, Sound(event, onsets[n_before], items[n_before]))
    species_names = [s.name for s in SPECIES]
    answers = {"species_before": (first.name, species_names), "species_after": (second.name, species_names),
               "event_between": (event, EVENTS), "count_before": (NUMBERS[n_before - 1], NUMBERS[:3]),
               "count_after": (NUMBERS[n_after - 1], NUMBERS[:3])}
    scene = Scene(name, "CQA", 10.0, sounds)
    scene.qas = [ask(rng, q, *answers[q], x=event) for q in qtypes]
    scene.caption = (f"{_a(first.name)} makes {_calls(n_before)}, then {_a(event)} sounds, "
                     f"then {_a(second.name)} makes {_calls(n_after)}.")
    return scene


def plan_scenes(rng: np.random.Generator, n_questions: int, prefix: str = "", per_clip: int = 3) -> list[Scene]:
    """Scenes with their questions (1 to ``per_clip`` each) for one split, a third of the questions per domain."""
    cycles = {"species": Cycle([s.name for s in SPECIES], rng), "count": Cycle([1, 2, 3, 4], rng),
              "count3": Cycle([1, 2, 3], rng), "event": Cycle(EVENTS, rng), "yesno": Cycle(["yes", "no"], rng),
              "duration": Cycle(range(4), rng), "onset": Cycle(ONSETS, rng), "offset": Cycle(OFFSETS, rng),
              **{sub: Cycle(q, rng) for sub, q in QTYPES.items()}}
    quota = {sub: n_questions // 3 + (i < n_questions % 3) for i, sub in enumerate(QTYPES)}
    scenes, counter = [], Counter()
    for sub in QTYPES:
        while quota[sub] > 0:
            counter[sub] += 1
            name = f"{CLIP_PREFIX[sub]}{prefix}{counter[sub]:04d}"
            if sub == "TSQA":
                name = f"fold{1 + counter[sub] % 5}_{prefix}{counter[sub]:04d}"
                scene = _tsqa(rng, name, cycles, cycles[sub].next())
                scene.qas = scene.qas[: min(quota[sub], per_clip)]
            else:
                first = cycles[sub].next()
                others = [q for q in QTYPES[sub] if q != first]
                k = min(int(rng.integers(0, 3)), quota[sub] - 1, per_clip - 1)
                qtypes = [first] + [others[i] for i in rng.permutation(len(others))[:k]]
                scene = (_bqa if sub == "BQA" else _cqa)(rng, name, cycles, qtypes)
            quota[sub] -= len(scene.qas)
            scenes.append(scene)
    return scenes


def draw_choices(rng: np.random.Generator, qa: QA, positions: dict) -> tuple[list[str], int]:
    """Options: the answer plus uniformly drawn distractors of the same vocabulary, the answer at a balanced slot."""
    pool = [v for v in qa.vocab if v != qa.answer and v not in qa.exclude]
    k = min(int(rng.choice(CHOICE_COUNTS)), len(pool) + 1)
    picked = [pool[i] for i in rng.permutation(len(pool))[: k - 1]]
    slot = positions.setdefault(k, Cycle(range(k), rng)).next()
    picked.insert(slot, qa.answer)
    return [f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(picked)], slot


def seeded(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one part of the benchmark: its seed and the keys naming that part."""
    return np.random.default_rng([seed, *keys])


SPLIT_KEYS = {"train": 1, "dev": 2, "eval": 3}
