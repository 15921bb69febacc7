"""The generated mini benchmark: DCASE Task 5's on-disk layout and quirks, synthetic audio, learnable by a tiny model.

Three domains mirror the real ones:

- BQA-like (``watkins_0012``): one invented species calling 1-4 times. Species differ by frequency band
  (250 Hz .. 4.5 kHz, spread over the mel range); each uses two of four call shapes (whistle = up-sweep,
  moan = long harmonic tone, click train, trill = rapid down-chirps). Asks species, vocalization, pitch, count.
- TSQA-like (``fold1_0003``): 10 s soundscapes of timed events (knock, horn, siren, bell, beep). Asks first/last,
  next, count, onset, offset, duration, overlap.
- CQA-like (``audio_0042``): animal A calls, an event sounds, animal B calls. Asks which animal calls
  before/after the event, which event separates them, how many calls come before/after it.

Sounds last >= 0.5 s with >= 0.5 s gaps so a 64-token-per-window encoder can resolve them. Every answer class is
drawn from a balanced cycle and every answer position from another, with distractors drawn uniformly from the same
class vocabulary, so the question text and options alone give no clue (see ``text_only_baselines``).
The files exercise the real quirks: 16 / 22.05 / 44.1 / 48 kHz, some stereo, some MP3 data behind a ``.wav`` name,
2-6 choices (mostly 4), a few 15-35 s BQA clips, several questions per clip. Eval JSONs carry no answer; the key is
written to ``eval_answers.csv`` (submission format) so the mini eval split can still be scored.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from aqa_utils.data.dcase import AUDIO_DIR, QUESTION_DIR, Question

VERSION = 2
RATES = (16_000, 22_050, 44_100, 48_000)
RATE_WEIGHTS = (0.4, 0.2, 0.2, 0.2)  # mostly 16 kHz keeps the benchmark small; the others exercise resampling
GAP = 0.5  # minimum silence between sounds (s)


@dataclass(frozen=True)
class Species:
    """An invented animal: a frequency band, two call shapes, and the pitch word its band answers to."""

    name: str
    band: float
    """Centre frequency of its calls (Hz)."""
    calls: tuple[str, str]
    pitch: str


CALLS = ("whistle", "moan", "click train", "trill")
SPECIES = (  # each call shape is used by exactly three species, so vocalization answers stay balanced
    Species("boreal whale", 250, ("moan", "click train"), "low"),
    Species("ridge seal", 500, ("whistle", "moan"), "low"),
    Species("kelp porpoise", 1000, ("trill", "click train"), "medium"),
    Species("ember dolphin", 1700, ("whistle", "moan"), "medium"),
    Species("glass shrimp", 3000, ("click train", "trill"), "high"),
    Species("needle dolphin", 4500, ("whistle", "trill"), "high"),
)
SPECIES_BY_NAME = {s.name: s for s in SPECIES}
PITCHES = ("low", "medium", "high")
EVENTS = ("knock", "horn", "siren", "bell", "beep")
# What the audio encoder learns to tag before the Flamingo stage (``audio_pretrain``): every sound class a caption
# can name.
SOUND_CLASSES = tuple(s.name for s in SPECIES) + EVENTS + CALLS
NUMBERS = ("one", "two", "three", "four")
ONSETS = (1, 3, 5, 7)
OFFSETS = (3, 5, 7, 9)
DURATIONS = (0.5, 1.0, 2.0, 3.0)
DURATION_WORDS = ("about half a second", "about 1 second", "about 2 seconds", "about 3 seconds")
CHOICE_COUNTS = (2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6)  # drawn uniformly: mostly 4

TEMPLATES = {
    "species": ("which species is vocalizing in this recording?", "what animal is making these calls?"),
    "vocalization": ("what type of vocalization is heard?", "which kind of call does the animal make?"),
    "pitch": ("how high is the pitch of the calls?", "is the animal calling at a low, medium or high pitch?"),
    "call_count": ("how many times does the animal call?", "how many calls does the animal make?"),
    "first_event": ("which sound is heard first?", "what is the first sound event?"),
    "last_event": ("which sound is heard last?", "what is the final sound event?"),
    "next_event": ("which sound comes right after the {x}?", "what is heard immediately after the {x}?"),
    "event_count": ("how many times is the {x} heard?", "how many {x} events occur?"),
    "onset": ("when does the {x} start?", "at what time does the {x} begin?"),
    "offset": ("when does the {x} end?", "at what time does the {x} stop?"),
    "duration": ("how long does the {x} last?", "what is the duration of the {x}?"),
    "overlap": ("do the {x} and the {y} overlap in time?", "are the {x} and the {y} heard at the same time?"),
    "species_before": ("which animal calls before the {x}?", "which animal is heard before the {x} sounds?"),
    "species_after": ("which animal calls after the {x}?", "which animal is heard after the {x} sounds?"),
    "event_between": ("which sound is heard between the calls of the two animals?",
                      "what sound separates the two animals' calls?"),
    "count_before": ("how many times does an animal call before the {x}?", "how many calls come before the {x}?"),
    "count_after": ("how many times does an animal call after the {x}?", "how many calls follow the {x}?"),
}
QTYPES = {
    "BQA": ("species", "vocalization", "pitch", "call_count"),
    "TSQA": ("first_event", "last_event", "next_event", "event_count", "onset", "offset", "duration", "overlap"),
    "CQA": ("species_before", "species_after", "event_between", "count_before", "count_after"),
}
CLIP_PREFIX = {"BQA": "watkins_", "TSQA": "fold", "CQA": "audio_"}


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


class _Cycle:
    """Balanced draws: every item once per round, rounds shuffled."""

    def __init__(self, items, rng: np.random.Generator):
        self.items, self.rng, self.queue = list(items), rng, []

    def next(self):
        if not self.queue:
            self.queue = [self.items[i] for i in self.rng.permutation(len(self.items))]
        return self.queue.pop()


# --- scenes and questions ---------------------------------------------------------------------------------------

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


def _ask(rng: np.random.Generator, qtype: str, answer: str, vocab, exclude=(), **names) -> QA:
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
    scene.qas = [_ask(rng, q, *answers[q]) for q in qtypes]
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
        "onset": (_seconds(target) if qtype == "onset" else None, [_seconds(t) for t in ONSETS], ()),
        "offset": (_seconds(target) if qtype == "offset" else None, [_seconds(t) for t in OFFSETS], ()),
        "duration": (DURATION_WORDS[target] if qtype == "duration" else None, DURATION_WORDS, ()),
        "overlap": (target, ("yes", "no"), ()),
    }

    def ask(q: str) -> QA:
        return _ask(rng, q, *answers[q], x=x, y=names.get("y"))

    scene = Scene(name, "TSQA", 10.0, sounds, [ask(qtype)])
    # First/last/next answers are uniform over the events by symmetry, so they can share any plain timeline.
    if qtype not in ("overlap", "event_count") and rng.random() < 0.5:
        extra = [q for q in ("first_event", "last_event") if q != qtype]
        scene.qas.append(ask(extra[int(rng.integers(len(extra)))]))
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


def _seconds(t: int) -> str:
    return f"about {t} second{'s' if t != 1 else ''}"


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
    scene.qas = [_ask(rng, q, *answers[q], x=event) for q in qtypes]
    scene.caption = (f"{_a(first.name)} makes {_calls(n_before)}, then {_a(event)} sounds, "
                     f"then {_a(second.name)} makes {_calls(n_after)}.")
    return scene


def _plan(rng: np.random.Generator, n_questions: int, prefix: str = "", per_clip: int = 3) -> list[Scene]:
    """Scenes with their questions (1 to ``per_clip`` each) for one split, a third of the questions per domain."""
    cycles = {"species": _Cycle([s.name for s in SPECIES], rng), "count": _Cycle([1, 2, 3, 4], rng),
              "count3": _Cycle([1, 2, 3], rng), "event": _Cycle(EVENTS, rng), "yesno": _Cycle(["yes", "no"], rng),
              "duration": _Cycle(range(4), rng), "onset": _Cycle(ONSETS, rng), "offset": _Cycle(OFFSETS, rng),
              **{sub: _Cycle(q, rng) for sub, q in QTYPES.items()}}
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


# --- synthesis ----------------------------------------------------------------------------------------------------

def _fade(x: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(x) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        x[:n] *= ramp
        x[len(x) - n:] *= ramp[::-1]
    return x


def _sweep(freq: np.ndarray, sr: int) -> np.ndarray:
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _pulses(n: int, sr: int, period: float, pulse: np.ndarray) -> np.ndarray:
    """A train of ``pulse`` every ``period`` seconds over n samples."""
    out = np.zeros(n)
    for start in range(int(0.02 * sr), n - len(pulse), max(1, int(period * sr))):
        out[start: start + len(pulse)] += pulse
    return out


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, gain) -> np.ndarray:
    """White noise shaped by ``gain(frequencies)`` in the FFT domain, unit peak. The FFT runs on a power-of-two
    length (arbitrary lengths can have large prime factors and be 100x slower), then is cropped."""
    size = 1 << max(1, (n - 1).bit_length())
    spec = np.fft.rfft(rng.standard_normal(size)) * gain(np.fft.rfftfreq(size, 1 / sr))
    x = np.fft.irfft(spec, size)[:n]
    return x / (np.abs(x).max() + 1e-9)


def _harmonics(f0: np.ndarray | float, t: np.ndarray, sr: int, amps) -> np.ndarray:
    """Sum of harmonics of f0 (a constant or a per-sample track), dropping those above 7 kHz or Nyquist."""
    track = np.broadcast_to(f0, t.shape)
    top = min(7000.0, 0.45 * sr)
    return sum(a * _sweep(h * track, sr) for h, a in enumerate(amps, 1) if h * float(np.max(track)) < top)


def _synth(rng: np.random.Generator, s: Sound, sr: int) -> np.ndarray:
    n = max(1, int(s.duration * sr))
    t = np.arange(n) / sr
    if s.call:
        band = SPECIES_BY_NAME[s.name].band * rng.uniform(0.95, 1.05)
        if s.call == "whistle":
            x = _sweep(band * (0.8 + 0.45 * t / s.duration), sr)
        elif s.call == "moan":
            x = _harmonics(band * (1 + 0.03 * np.sin(2 * np.pi * 3 * t)), t, sr, (1.0, 0.5, 0.25))
        elif s.call == "click train":
            m = max(int(3 * sr / band), int(0.0015 * sr))
            x = 2.0 * _pulses(n, sr, 1 / 15, np.hanning(m) * np.sin(2 * np.pi * band * np.arange(m) / sr))
        else:  # trill: 60 ms down-chirps, ten per second
            m = int(0.06 * sr)
            chirp = np.hanning(m) * _sweep(band * np.linspace(1.3, 1.0, m), sr)
            x = _pulses(n, sr, 0.1, chirp)
    elif s.name == "knock":
        decay = np.exp(-np.arange(int(0.05 * sr)) / (0.012 * sr))
        x = 2.0 * _shaped_noise(rng, n, sr, lambda f: (f > 150) & (f < 600)) * _pulses(n, sr, 0.2, decay)
    elif s.name == "horn":
        x = 0.5 * _harmonics(400.0, t, sr, [h ** -0.5 for h in range(1, 11)])
    elif s.name == "siren":
        tri = 2 * np.abs((t / 0.6) % 1 - 0.5)
        x = _sweep(900 + 600 * tri, sr)
    elif s.name == "bell":
        strike = np.exp(-np.arange(int(0.3 * sr)) / (0.08 * sr))
        ring = sum(np.sin(2 * np.pi * f * np.arange(len(strike)) / sr) for f in (2200, 3100, 4300)) / 2
        x = _pulses(n, sr, 0.3, strike * ring)
    else:  # beep: steady 6 kHz (kept below the ~7 kHz low-pass of 16 kHz MP3)
        x = _sweep(np.full(n, 6000.0), sr)
    return _fade(np.asarray(x, dtype=np.float64), int(0.02 * sr)) * rng.uniform(0.3, 0.5)


def _render(scene: Scene, rng: np.random.Generator, plain: bool) -> tuple[np.ndarray, int, str]:
    """(samples x channels float array, rate, soundfile format); ``plain``: 16 kHz mono WAV, no quirks."""
    sr = RATES[0] if plain else int(rng.choice(RATES, p=RATE_WEIGHTS))
    n = int(scene.duration * sr)
    noise = _shaped_noise(rng, n, sr, lambda f: 1 / np.sqrt(1 + f / 300))  # moderate pink-ish background
    x = noise / (noise.std() + 1e-9) * rng.uniform(0.01, 0.03)
    for s in scene.sounds:
        seg = _synth(rng, s, sr)
        start = int(s.onset * sr)
        seg = seg[: n - start]
        x[start: start + len(seg)] += seg
    x *= rng.uniform(0.5, 0.9) / np.abs(x).max()
    if not plain and rng.random() < 0.2:  # stereo: the second channel is a weaker, delayed, differently noisy copy
        other = 0.6 * np.roll(x, int(rng.integers(5, 40))) + 0.01 * rng.standard_normal(n)
        x = np.stack([x, np.clip(other, -1, 1)], axis=1)
    else:
        x = x[:, None]
    return x, sr, "MP3" if not plain and rng.random() < 0.15 else "WAV"


def _write_audio(path: Path, scene: Scene, rng: np.random.Generator, plain: bool = False) -> None:
    data, sr, fmt = _render(scene, rng, plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt, subtype="MPEG_LAYER_III" if fmt == "MP3" else "PCM_16")


# --- on disk ------------------------------------------------------------------------------------------------------

def _choices(rng: np.random.Generator, qa: QA, positions: dict) -> tuple[list[str], int]:
    """Options: the answer plus uniformly drawn distractors of the same vocabulary, the answer at a balanced slot."""
    pool = [v for v in qa.vocab if v != qa.answer and v not in qa.exclude]
    k = min(int(rng.choice(CHOICE_COUNTS)), len(pool) + 1)
    picked = [pool[i] for i in rng.permutation(len(pool))[: k - 1]]
    slot = positions.setdefault(k, _Cycle(range(k), rng)).next()
    picked.insert(slot, qa.answer)
    return [f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(picked)], slot


def _seed(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


_SPLIT_KEYS = {"train": 1, "dev": 2, "eval": 3}


def _write_split(root: Path, split: str, n: int, seed: int, audio: bool) -> dict:
    rng = _seed(seed, _SPLIT_KEYS[split])
    scenes = _plan(rng, n)
    items = [(scene, qa) for scene in scenes for qa in scene.qas]
    order = rng.permutation(len(items))  # ids in random order, so the id says nothing about the domain
    positions: dict = {}
    qdir, key = root / QUESTION_DIR / split, []
    qdir.mkdir(parents=True, exist_ok=True)
    for number, i in enumerate(order):
        scene, qa = items[i]
        choices, slot = _choices(rng, qa, positions)
        record = {"question": qa.question, "choice": choices}
        if split != "eval":
            record["answer"] = choices[slot]
        record.update(id=scene.name, audio_url=f"../../{AUDIO_DIR}/{split}/{scene.name}.wav",
                      question_type=qa.qtype)
        qid = f"{split}_aqa_{number:04d}"
        (qdir / f"{qid}.json").write_text(json.dumps(record, indent=2) + "\n")
        key.append((qid, choices[slot]))
    for index, scene in enumerate(scenes if audio else []):
        _write_audio(root / AUDIO_DIR / split / f"{scene.name}.wav", scene, _seed(seed, _SPLIT_KEYS[split], 10, index))
    if split == "eval":
        with open(root / "eval_answers.csv", "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([("question", "answer"), *sorted(key)])
    return {"questions": len(items), "clips": len(scenes),
            "subsets": dict(Counter(scene.subset for scene, _ in items))}


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
    return _ask(rng, qtype, answer, vocab, x=event)


def _write_captions(root: Path, split: str, n: int, seed: int, audio: bool) -> int:
    """Caption corpus: n distinct clips from the same generators (every kind of scene the benchmark has), one line
    each, as 16 kHz mono WAV (pretraining needs no file-format quirks): the clip's caption and one multiple-choice
    question (``CAPTION_QTYPES``; option texts without labels, the answer's text)."""
    rng = _seed(seed, 100 + _SPLIT_KEYS[split])
    scenes = _plan(rng, n, prefix="cap", per_clip=1)
    lines, positions = [], {}
    for index, scene in enumerate(scenes):
        rel = f"captions/audio/{split}/{scene.name}.wav"
        if audio:
            _write_audio(root / rel, scene, _seed(seed, 100 + _SPLIT_KEYS[split], 10, index), plain=True)
        qa = _caption_qa(rng, scene)
        choices, slot = _choices(rng, qa, positions)
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


def make_mini_benchmark(root: str | Path, seed: int = 0, n_train: int = 480, n_dev: int = 240, n_eval: int = 60,
                        n_captions_train: int = 600, n_captions_dev: int = 100, overwrite: bool = False,
                        audio: bool = True) -> Path:
    """Write the mini benchmark under ``root`` (DCASE layout + ``captions/`` + ``manifest.json``).

    Sizes count questions (a clip carries 1-3 of them) and caption lines (one clip each). Same seed and sizes ->
    byte-identical files. ``audio=False`` writes only the text (questions, captions, manifest): a quick way to
    inspect the questions or run text-only analyses; the audio then does not exist.
    If ``root`` already holds a benchmark with the same manifest it is reused as is; a different one raises
    ``FileExistsError`` unless ``overwrite`` (which deletes only what this function writes).
    """
    root = Path(root)
    sizes = {"train": n_train, "dev": n_dev, "eval": n_eval, "captions_train": n_captions_train,
             "captions_dev": n_captions_dev, "audio": audio}
    manifest_path = root / "manifest.json"
    if manifest_path.exists() and not overwrite:
        old = json.loads(manifest_path.read_text())
        if (old.get("version"), old.get("seed"), old.get("sizes")) == (VERSION, seed, sizes):
            return root
        raise FileExistsError(f"{root} holds a different mini benchmark ({manifest_path}); pass overwrite=True")
    owned = (QUESTION_DIR, AUDIO_DIR, "captions", "manifest.json", "eval_answers.csv")
    if not overwrite and any((root / p).exists() for p in owned):
        raise FileExistsError(f"{root} already has DCASE-style data; pass overwrite=True to replace it")
    for p in owned:
        if (root / p).is_dir():
            shutil.rmtree(root / p)
        elif (root / p).exists():
            (root / p).unlink()

    splits = {split: _write_split(root, split, n, seed, audio) for split, n in
              (("train", n_train), ("dev", n_dev), ("eval", n_eval))}
    captions = {split: _write_captions(root, split, n, seed, audio) for split, n in
                (("train", n_captions_train), ("dev", n_captions_dev))}
    manifest = {"name": "aqa-mini", "version": VERSION, "seed": seed, "sizes": sizes, "splits": splits,
                "captions": captions, "species": [s.name for s in SPECIES], "calls": list(CALLS),
                "events": list(EVENTS), "eval_answers": "eval_answers.csv"}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")  # written last: marks a complete benchmark
    return root


# --- is the audio needed? -----------------------------------------------------------------------------------------

def text_only_baselines(questions: list[Question], fit_on: list[Question] | None = None) -> dict[str, float]:
    """Accuracy of answer rules that never look at the audio, next to chance (mean of 1 / number of choices).

    ``answer_prior`` picks the option text most often right, ``question_prior`` the option most often the answer
    to this exact question text; both are fitted on ``fit_on`` (e.g. the train split), or leave-one-out on
    ``questions`` when it is None (leave-one-out reads slightly below chance: it removes each question's own answer).
    Ties go to the earlier option.
    """
    qs = [q for q in questions if q.answer is not None]
    if not qs:
        raise ValueError("no answered questions")
    loo = fit_on is None
    right, shown = Counter(), Counter()
    per_question: dict[str, Counter] = defaultdict(Counter)
    for q in qs if loo else [q for q in fit_on if q.answer is not None]:
        right[q.choices[q.answer]] += 1
        shown.update(q.choices)
        per_question[q.question.casefold()][q.choices[q.answer]] += 1

    def own(q: Question, i: int) -> int:
        return int(loo and i == q.answer)

    def prior(q: Question, i: int) -> float:
        seen = shown[q.choices[i]] - int(loo)
        return (right[q.choices[i]] - own(q, i)) / seen if seen > 0 else 0.0

    def by_question(q: Question, i: int) -> float:
        return per_question[q.question.casefold()][q.choices[i]] - own(q, i)

    def best(q: Question, score) -> int:
        return max(range(len(q.choices)), key=lambda i: (score(q, i), -i))

    rules = {
        "always_first": lambda q: 0,
        "always_last": lambda q: len(q.choices) - 1,
        "longest_option": lambda q: best(q, lambda q, i: len(q.choices[i])),
        "shortest_option": lambda q: best(q, lambda q, i: -len(q.choices[i])),
        "answer_prior": lambda q: best(q, prior),
        "question_prior": lambda q: best(q, by_question),
    }
    result = {"chance": float(np.mean([1 / len(q.choices) for q in qs]))}
    for name, rule in rules.items():
        result[name] = float(np.mean([rule(q) == q.answer for q in qs]))
    return result
