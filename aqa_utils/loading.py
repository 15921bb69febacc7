"""A system ready to answer: a base in the release layout, with an optional LoRA adapter merged in."""

from __future__ import annotations

from pathlib import Path

import torch

from aqa_utils.lora import load_adapter, merge
from aqa_utils.model import checkpoint as release


def load_model(checkpoint: str | Path, adapter: str | Path | None = None, model: str | None = None,
               device: str | torch.device | None = None):
    """The base at ``checkpoint`` (``model``: preset when it has no af2_config.json) with ``adapter`` merged, in eval
    mode; bf16 on CUDA, fp32 elsewhere."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    base, _ = release.load(checkpoint, model, device=device, dtype=dtype)
    if adapter is None:
        return base.eval()
    return merge(load_adapter(base, adapter)).eval()
