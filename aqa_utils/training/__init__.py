"""Training: one loop (``Trainer``) for every stage, its objectives, checkpoints, data and schedule.

Modules: ``examples`` (what a step consumes), ``schedule`` (learning rate, data order), ``objectives`` (language
model loss, sound tags), ``checkpointer`` (atomic, exactly resumable checkpoints), ``trainer`` (the loop),
``listening`` (does a trained model use its audio?).

The names below are imported when first used: the loop pulls in accelerate and peft (about ten seconds), which a
look at a corpus alone (``examples.corpus_fingerprint``, asked by the workbook before it reuses any run) never needs.
"""

import importlib

_HOMES = {"NonFiniteLossError": "trainer", "Trainer": "trainer", "read_metrics": "trainer",
          "audio_reliance": "listening"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # imported once
    return value
