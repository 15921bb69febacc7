"""Session-17 driver (#15, goal 3a), a lab-only base design: af2-tiny with a deeper LM (DEPTH decoder layers, each
with its gated cross-attention, default 6 against the preset's 3), everything else as the pipeline's base. The
stage-0 final (CLAP trained to tag sounds; its LM is still random) is rebuilt at the new depth: every tensor whose
name and shape the deeper model shares is copied, the new layers are drawn from seed 0. Stages 1-3 then train with
the pipeline's hyperparameters and corpora (session10_calls.train_stages). The control's LoRA runs from OUT/base
with session15_lora.py, which reads the depth from the base's af2_config.json.
Why: the unparsed generations name what the adapted LM believes it heard, listed or not; every LoRA-side design
that made it keep to the list also made it hear less (sixteenth session). Reading a list and answering from it is
an attention skill of the LM, and the audio path takes 79% of a LoRA step, so the LM is the cheap part to grow.
usage: THREADS=2 python session17_deep_lm.py STAGE0_FINAL OUT_DIR"""
import dataclasses, os, sys
from pathlib import Path
import torch
from aqa_utils.model.checkpoint import load, save
from aqa_utils.model.flamingo import build_model
from session10_calls import train_stages

DEPTH = int(os.environ.get("DEPTH", "6"))


def deepen(start: str, folder: Path) -> None:
    """The stage-0 final ``start`` with a DEPTH-layer LM, in the release layout at ``folder``."""
    if (folder / "safe_ckpt" / "metadata.json").exists():
        return
    small, _ = load(start)
    cfg = dataclasses.replace(small.config, lm=dataclasses.replace(small.config.lm, num_hidden_layers=DEPTH))
    torch.manual_seed(0)
    deep = build_model(cfg)
    state, source = deep.state_dict(), small.state_dict()
    shared = {k: v for k, v in source.items() if k in state and state[k].shape == v.shape}
    assert len(shared) == len(source), sorted(set(source) - set(shared))[:5]  # the smaller model is a prefix
    deep.load_state_dict({**state, **shared})
    save(deep, folder)
    print("deepened", len(shared), "of", len(state), "tensors copied", flush=True)


if __name__ == "__main__":
    out = Path(sys.argv[2])
    deepen(sys.argv[1], out / "stage0")
    train_stages(str(out / "stage0"), out, first=1)
