"""Read and write the official AF2 release layout, strictly.

::

    <dir>/clap_ckpt/epoch_16.pt          AF-CLAP pickle: {"state_dict": {"module.audio_branch.<htsat key>": ...}}
    <dir>/safe_ckpt/metadata.json        names the chunks
    <dir>/safe_ckpt/<chunk>.safetensors  full float32 state dict of the Flamingo model
    <dir>/af2_config.json                ours only: the ModelConfig (the release is af2-3b without it)

NVIDIA's loader merges everything and calls ``load_state_dict(strict=False)``, so a misspelled key silently leaves
random weights. Here every key is accounted for: the release's duplicate key families are folded into one copy,
``clap.afclap.`` (training-code name) is read as ``clap.nvclap.``, and anything else missing or unexpected is an
error naming the keys. The CLAP pickle is read with ``torch.load(weights_only=True)`` plus the few numpy globals
the release needs: a pickle that would run code is refused unless the caller says it trusts the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..config import ModelConfig
from .flamingo import AF2Model, build_model

CLAP_FILE = Path("clap_ckpt") / "epoch_16.pt"
SAFE_DIR = Path("safe_ckpt")
CONFIG_FILE = "af2_config.json"
CLAP_PREFIX_IN_PICKLE = "module.audio_branch."

# Released state dicts also carry the Flamingo mixin's original attributes: the same tensors under other names.
_DUPLICATES = [
    (re.compile(r"^lang_encoder\.old_decoder_blocks\.(\d+)\.(.*)$"), r"lang_encoder.model.layers.\1.decoder_layer.\2"),
    (re.compile(r"^lang_encoder\.gated_cross_attn_layers_sound\.(\d+)\.(.*)$"),
     r"lang_encoder.model.layers.\1.gated_cross_attn_layer_sound.\2"),
]

# numpy objects a CLAP training checkpoint pickles besides tensors (scalars, dtypes, small arrays); nothing that
# can call arbitrary code.
_NUMPY_SAFE = [np.core.multiarray.scalar, np.dtype, np.ndarray, np.core.multiarray._reconstruct] + [
    getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")
]


class CheckpointError(RuntimeError):
    """A checkpoint folder that does not match the model; the message names the file and the keys."""


@dataclass
class LoadReport:
    """What ``load_weights`` did with every key."""

    loaded: int = 0
    duplicates_folded: int = 0
    clap_from_pickle: int = 0
    clap_pickle_ignored: int = 0
    renamed_afclap: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.loaded} tensors loaded ({self.clap_from_pickle} CLAP tensors from the pickle, "
                f"{self.clap_pickle_ignored} non-audio CLAP tensors ignored, {self.duplicates_folded} duplicate "
                f"keys folded, {self.renamed_afclap} clap.afclap. keys renamed)")


def read_clap_pickle(path: Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The AF-CLAP checkpoint's ``state_dict``; restricted unpickling unless ``trust_pickle``."""
    try:
        if trust_pickle:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(_NUMPY_SAFE):
                blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError (or others) for refused globals
        raise CheckpointError(
            f"{path}: refused to unpickle ({type(err).__name__}: {str(err).splitlines()[0]}). Only tensors and "
            "plain numpy values are allowed; if you trust this file, pass trust_pickle=True."
        ) from err
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict' mapping")
    return blob["state_dict"]


def read_release_state_dict(folder: str | Path, trust_pickle: bool = False) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Merge the CLAP pickle and the safetensors chunks into one state dict named like ``AF2Model``."""
    folder = Path(folder)
    report = LoadReport()
    meta_path = folder / SAFE_DIR / "metadata.json"
    for needed in (folder / CLAP_FILE, meta_path):
        if not needed.exists():
            raise CheckpointError(f"{needed}: missing; expected the AF2 release layout under {folder}")
    state: dict[str, torch.Tensor] = {}
    for key, value in read_clap_pickle(folder / CLAP_FILE, trust_pickle).items():
        if key.startswith(CLAP_PREFIX_IN_PICKLE):
            state["clap.nvclap." + key[len(CLAP_PREFIX_IN_PICKLE):]] = value
            report.clap_from_pickle += 1
        else:  # text branch and projection heads of CLAP: AF2 does not use them
            report.clap_pickle_ignored += 1
    try:
        chunks = list(json.loads(meta_path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{meta_path}: not a JSON list or mapping of chunk names ({err})") from err
    duplicates: dict[str, torch.Tensor] = {}
    for name in chunks:
        path = folder / SAFE_DIR / f"{name}.safetensors"
        if not path.exists():
            raise CheckpointError(f"{path}: named in {meta_path} but missing")
        for key, value in load_file(path).items():
            if key.startswith("clap.afclap."):
                key = "clap.nvclap." + key[len("clap.afclap."):]
                report.renamed_afclap += 1
            for pattern, primary in _DUPLICATES:
                if pattern.match(key):
                    duplicates[pattern.sub(primary, key)] = value
                    break
            else:
                state[key] = value  # the safetensors copy wins over the pickle, as in NVIDIA's loader
    for key, value in duplicates.items():
        report.duplicates_folded += 1
        state.setdefault(key, value)  # a duplicate only fills a primary key that is absent
    return state, report


def load_weights(model: AF2Model, folder: str | Path, trust_pickle: bool = False) -> LoadReport:
    """Load a release-layout folder into ``model``; fails unless every model key is filled and none is left over."""
    state, report = read_release_state_dict(folder, trust_pickle)
    expected = model.state_dict()
    report.missing = sorted(set(expected) - set(state))
    report.unexpected = sorted(set(state) - set(expected))
    shape_errors = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                    for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if report.missing or report.unexpected or shape_errors:
        def listing(title: str, keys: list[str]) -> str:
            shown = "\n    ".join(keys[:20]) + (f"\n    ... and {len(keys) - 20} more" if len(keys) > 20 else "")
            return f"\n  {title} ({len(keys)}):\n    {shown}" if keys else ""

        raise CheckpointError(
            f"{folder}: checkpoint does not match the {model.config.name} model"
            + listing("missing keys", report.missing)
            + listing("unexpected keys", report.unexpected)
            + listing("shape mismatches", shape_errors)
        )
    model.load_state_dict(state, strict=True)
    report.loaded = len(expected)
    return report


def load(folder: str | Path, config: ModelConfig | str | None = None, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32, trust_pickle: bool = False) -> tuple[AF2Model, LoadReport]:
    """Build the model (from ``config``, else the folder's ``af2_config.json``, else af2-3b) and load the release."""
    folder = Path(folder)
    if config is None:
        config = ModelConfig.from_file(folder / CONFIG_FILE) if (folder / CONFIG_FILE).exists() else "af2-3b"
    model = build_model(config, device=device)
    report = load_weights(model, folder, trust_pickle)
    if dtype != torch.float32:
        model.cast(dtype)
    return model.eval(), report


def save(model: AF2Model, folder: str | Path, max_chunk_bytes: int = 2 * 1024**3) -> Path:
    """Write ``model`` in the release layout (float32, chunked), plus ``af2_config.json``."""
    folder = Path(folder)
    (folder / CLAP_FILE).parent.mkdir(parents=True, exist_ok=True)
    (folder / SAFE_DIR).mkdir(parents=True, exist_ok=True)
    # clone(): tied tensors (embed_tokens / lm_head) must be separate buffers for safetensors.
    state = {k: v.detach().to("cpu", torch.float32).clone().contiguous() for k, v in model.state_dict().items()}
    clap = {CLAP_PREFIX_IN_PICKLE + k[len("clap.nvclap."):]: v for k, v in state.items() if k.startswith("clap.nvclap.")}
    torch.save({"state_dict": clap, "epoch": 16}, folder / CLAP_FILE)
    chunks: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if chunks[-1] and size + nbytes > max_chunk_bytes:
            chunks.append({})
            size = 0
        chunks[-1][key] = value
        size += nbytes
    names = [f"chunk_{i}" for i in range(len(chunks))]
    for name, chunk in zip(names, chunks):
        save_file(chunk, folder / SAFE_DIR / f"{name}.safetensors")
    (folder / SAFE_DIR / "metadata.json").write_text(json.dumps(names, indent=1) + "\n")
    model.config.save(folder / CONFIG_FILE)
    return folder
