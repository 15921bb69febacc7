"""The mini benchmark's vocabulary: invented species, call shapes, events, answer classes, question templates."""

from __future__ import annotations

from dataclasses import dataclass

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
# What the audio encoder learns to tag before the Flamingo stage (the "tags" corpus of ``training``): every sound class a caption
# can name.
SOUND_CLASSES = tuple(s.name for s in SPECIES) + EVENTS + CALLS
NUMBERS = ("one", "two", "three", "four")
ONSETS = (1, 3, 5, 7)
OFFSETS = (3, 5, 7, 9)
DURATIONS = (0.5, 1.0, 2.0, 3.0)
DURATION_WORDS = ("about half a second", "about 1 second", "about 2 seconds", "about 3 seconds")


def seconds(t: int) -> str:
    """The answer text of an onset or offset at ``t`` seconds: "about 3 seconds"."""
    return f"about {t} second{'s' if t != 1 else ''}"


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
