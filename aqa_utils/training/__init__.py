"""Training: one loop (``Trainer``) for every stage, its objectives, checkpoints, data and schedule.

Modules: ``examples`` (what a step consumes), ``schedule`` (learning rate, data order), ``objectives`` (language
model loss, sound tags), ``checkpointer`` (atomic, exactly resumable checkpoints), ``trainer`` (the loop),
``listening`` (does a trained model use its audio?).
"""

from aqa_utils.training.listening import audio_reliance
from aqa_utils.training.trainer import NonFiniteLossError, Trainer, read_metrics

__all__ = ["NonFiniteLossError", "Trainer", "audio_reliance", "read_metrics"]
