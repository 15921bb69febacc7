"""One rank of the DDP equivalence test in test_train.py (launched by ``torchrun --nproc_per_node 2``).

Not a test module (no ``test_`` prefix): pytest never collects it. It trains LoRA on the mini benchmark with the
settings that ``ddp_config`` returns and ``deterministic_clap`` applied, so that the single-process reference in
the test (which imports both from here) runs exactly the same recipe on the same global batch.

Usage: python tests/ddp_worker.py DATA_ROOT BASE_CHECKPOINT OUT_DIR BATCH_SIZE STEPS
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from aqa_utils.config import LoraSettings, TrainConfig


def ddp_config(data_root: str | Path, checkpoint: str | Path, out_dir: str | Path, batch_size: int,
               steps: int) -> TrainConfig:
    """LoRA without dropout (the only train-mode randomness left in af2-tiny besides CLAP's, see below)."""
    return TrainConfig(model="af2-tiny", checkpoint=str(checkpoint), data_root=str(data_root), batch_size=batch_size,
                       grad_accum=1, max_steps=steps, lora=LoraSettings(dropout=0.0), val_split=None, progress=False,
                       seed=0, out_dir=str(out_dir), precision="fp32")


def deterministic_clap(trainer) -> None:
    """Remove the train-mode randomness of laion-clap's HTSAT, the same way in every process.

    In train mode HTSAT (1) applies SpecAugment (random time/frequency stripes) and (2) when no window is flagged
    "longer", marks ONE random window of the batch it receives as longer, which sends that window alone through
    the AFF fusion branch. Both draw from the process's torch RNG and depend on how many windows the process holds,
    so 2 processes x 2 examples cannot reproduce 1 process x 4 examples. Here SpecAugment becomes the identity and
    every window is flagged "longer" in train mode (all windows take the fusion branch: no random choice is made).
    af2-tiny has no other random train-mode op once LoRA dropout is 0 (drop_path_rate=0, attention dropout 0,
    CLAP batch norms frozen in eval mode by LoRA).
    """
    nvclap = trainer.unwrapped.get_base_model().clap.nvclap
    nvclap.spec_augmenter = torch.nn.Identity()
    original = nvclap.forward

    def forward(x, *args, **kwargs):
        if nvclap.training:
            x = dict(x, longer=torch.ones_like(x["longer"]))
        return original(x, *args, **kwargs)

    nvclap.forward = forward


def main(argv: list[str]) -> None:
    from aqa_utils.training import Trainer

    data_root, checkpoint, out_dir, batch_size, steps = argv
    trainer = Trainer(ddp_config(data_root, checkpoint, out_dir, int(batch_size), int(steps)))
    if trainer.world < 2:
        raise SystemExit(f"expected several processes, got world size {trainer.world}")
    deterministic_clap(trainer)
    trainer.fit()
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        print(f"ddp_worker: world={trainer.world} backend={trainer.accelerator.state.backend} done")


if __name__ == "__main__":
    main(sys.argv[1:])
