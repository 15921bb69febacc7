"""Resumable training checkpoints of a run folder, written atomically.

A checkpoint (``checkpoints/step_<N>/``) holds what a run needs to continue bit-identically: the trainable weights,
the persistent buffers (batch-norm statistics move in full training), optimizer, scheduler, every RNG state and
the step. It is written to a temporary folder and renamed, and ``checkpoints/latest`` names the newest one, so a
kill during a save never leaves a half checkpoint behind. Only the newest is kept (removed once ``latest`` names its
successor): a full-training checkpoint of the tiny base is a few hundred MB with its optimizer state, and periodic
saves would otherwise fill the disk. Saving is the main process's job; the others wait.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Checkpointer:
    """Save and restore the training state of ``module`` (the unwrapped model being trained) under ``run_dir``."""

    def __init__(self, run_dir: str | Path, is_main: bool = True, barrier=lambda: None):
        self.dir = Path(run_dir) / "checkpoints"
        self.is_main, self.barrier = is_main, barrier

    @staticmethod
    def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}

    @staticmethod
    def buffer_state(module: nn.Module) -> dict[str, torch.Tensor]:
        """Persistent buffers only (non-persistent ones are rebuilt by the module itself)."""
        persistent = set(module.state_dict())
        return {n: b.detach().cpu().clone() for n, b in module.named_buffers() if n in persistent}

    def save(self, step: int, total_steps: int, module: nn.Module, optimizer, scheduler) -> Path:
        """Write ``checkpoints/step_<step>/`` and point ``checkpoints/latest`` at it."""
        final = self.dir / f"step_{step:06d}"
        if not self.is_main:
            self.barrier()
            return final
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save(self.trainable_state(module), tmp / "trainable.pt")
        torch.save(self.buffer_state(module), tmp / "buffers.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "total_steps": total_steps}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = self.dir / "latest.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, self.dir / "latest")
        for old in self.dir.glob("step_*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        self.barrier()
        return final

    def latest(self) -> Path | None:
        pointer = self.dir / "latest"
        return pointer.parent / pointer.read_text().strip() if pointer.exists() else None

    def restore(self, module: nn.Module, optimizer, scheduler) -> int | None:
        """Load the latest checkpoint into ``module``, optimizer, scheduler and the RNGs; its step, or None."""
        folder = self.latest()
        if folder is None:
            return None
        state = torch.load(folder / "trainable.pt", map_location="cpu")
        named = dict(module.named_parameters())
        mismatch = set(state) ^ {n for n, p in named.items() if p.requires_grad}
        if mismatch:
            raise RuntimeError(f"{folder}: checkpoint does not match this run's trainable parameters: "
                               f"{sorted(mismatch)[:5]}")
        with torch.no_grad():
            for name, value in state.items():
                named[name].copy_(value)
        buffers = torch.load(folder / "buffers.pt", map_location="cpu")
        own = dict(module.named_buffers())
        unknown = set(buffers) - set(own)
        if unknown:
            raise RuntimeError(f"{folder}: checkpoint buffers unknown to this model: {sorted(unknown)[:5]}")
        with torch.no_grad():
            for name, value in buffers.items():
                own[name].copy_(value)
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu"))
        scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu"))
        rng = torch.load(folder / "rng.pt", map_location="cpu", weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return json.loads((folder / "state.json").read_text())["step"]
