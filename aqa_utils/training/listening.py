"""Does a model listen? Its loss with each example's own clip against its loss with another example's clip."""

from __future__ import annotations

import random
from collections import Counter

import torch

from aqa_utils.audio import ClipCache, pad_to_longest
from aqa_utils.data.prompt import TrainCollator, tokenizer_for
from aqa_utils.training.examples import Example


@torch.no_grad()
def audio_reliance(model, examples: list[Example], batch_size: int = 8, seed: int = 0) -> dict[str, float]:
    """Does a model listen? Mean loss per answer token with each example's own clip ("matched") and with the clip
    of another example whose audio differs ("shuffled", a seeded derangement). Equal losses: the audio is ignored.

    ``model``: an AF2Model (eval mode is set here); ``examples``: at least two, not all with the same clip.
    """
    paths = [e.audio_path for e in examples]
    if max(Counter(paths).values()) > len(paths) / 2:
        raise ValueError("audio_reliance: no clip may be used by more than half of the examples (no derangement)")
    rng = random.Random(seed)
    while True:  # a derangement of the clips: no example keeps audio identical to its own
        others = paths[:]
        rng.shuffle(others)
        if all(a != b for a, b in zip(paths, others)):
            break
    model.eval()
    collate = TrainCollator(tokenizer_for(model))
    clips = ClipCache(model.config.audio)
    device = model.device
    totals = {}
    for name, audio in (("matched", paths), ("shuffled", others)):
        loss_sum, tokens = 0.0, 0
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            text = collate([(e.prompt, e.target) for e in chunk])
            windows, mask = pad_to_longest([clips.get(p) for p in audio[start:start + batch_size]])
            out = model(text["input_ids"].to(device), text["attention_mask"].to(device), windows=windows.to(device),
                        window_mask=mask.to(device), labels=text["labels"].to(device))
            loss_sum += float(out.loss_sum)
            tokens += out.n_tokens
        totals[name] = loss_sum / max(tokens, 1)
    return totals
