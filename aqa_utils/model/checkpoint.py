"""Read and write the official AF2 release layout, strictly.

::

    <dir>/clap_ckpt/epoch_16.pt          AF-CLAP pickle: {"state_dict": {"module.audio_branch.<htsat key>": ...}}
    <dir>/safe_ckpt/metadata.json        names the chunks
    <dir>/safe_ckpt/<chunk>.safetensors  full float32 state dict of the Flamingo model
    <dir>/af2_config.json                ours only: the ModelConfig (the release is af2-3b without it)

NVIDIA's loader (``inference_HF_pretrained``) builds CLAP and loads the pickle's audio keys into it, merges the
chunks with ``dict.update`` and calls ``load_state_dict(strict=False)``, so a misspelled key silently leaves random
weights. Here every key is accounted for, and where the official load would end with one of several copies of a
tensor this loader ends with the same one, and says so:

- The release's duplicate key families (``lang_encoder.old_decoder_blocks.{i}.*``,
  ``lang_encoder.gated_cross_attn_layers_sound.{i}.*``) name the same modules as
  ``lang_encoder.model.layers.{i}.{decoder_layer,gated_cross_attn_layer_sound}.*``. The official Flamingo mixin
  registers those two lists AFTER ``model`` and ``lm_head``, and ``load_state_dict`` copies every key it meets in
  registration order, so the duplicate-family copy is written last and wins.
- A key stored in two chunks: ``dict.update`` keeps the later chunk's copy.
- Tied embeddings: ``lm_head.weight`` is loaded after ``model.embed_tokens.weight`` into the same tensor and wins.
- CLAP: the pickle is loaded first; ``clap.nvclap.*`` keys in the safetensors overwrite it. ``clap.afclap.*`` keys
  (the training code's name) match no module of the official inference model and are ignored: the pickle's
  weights stay. ``use_afclap=True`` loads them instead (our earlier behaviour), off by default.

Copies that disagree are listed in the ``LoadReport`` with the key kept and the keys dropped, and a
``CheckpointWarning`` is raised; so is every ignored ``clap.afclap.*`` key. The CLAP pickle is read with
``torch.load(weights_only=True)`` plus the few numpy globals the release needs: a pickle that would run code is
refused unless the caller says it trusts the file.
"""

from __future__ import annotations

import json
import re
import warnings
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


class CheckpointWarning(UserWarning):
    """A checkpoint tensor was ignored, or copies of one tensor disagreed (see ``LoadReport.warnings``)."""


AFCLAP_PREFIX, NVCLAP_PREFIX = "clap.afclap.", "clap.nvclap."


@dataclass
class Disagreement:
    """Several copies of one model tensor with different values: ``kept`` is the copy loaded (the official load's
    last write), ``dropped`` the others; each as "key (file)". ``max_abs_diff``: largest difference to ``kept``."""

    key: str
    kept: str
    dropped: list[str]
    max_abs_diff: float

    def describe(self) -> str:
        return (f"{self.key}: kept {self.kept}, dropped {', '.join(self.dropped)} "
                f"(max |difference| {self.max_abs_diff:.3g})")


@dataclass
class LoadReport:
    """What ``load_weights`` did with every key."""

    loaded: int = 0
    duplicates_folded: int = 0
    clap_from_pickle: int = 0
    clap_pickle_ignored: int = 0
    renamed_afclap: int = 0
    afclap_ignored: list[str] = field(default_factory=list)
    """``clap.afclap.*`` keys of the safetensors left unused (the default, as the official inference)."""
    afclap_differing_from_pickle: int = 0
    """How many of those differ from the pickle's copy of the same CLAP tensor (or have none)."""
    clap_from_safetensors: int = 0
    """``clap.nvclap.*`` tensors taken from the safetensors over the pickle's copy (as the official load)."""
    disagreements: list[Disagreement] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """Everything a user must know about: ignored tensors and disagreeing copies, each naming its keys."""
        out = []
        if self.afclap_ignored:
            shown = ", ".join(self.afclap_ignored[:5]) + (" ..." if len(self.afclap_ignored) > 5 else "")
            out.append(
                f"IGNORED {len(self.afclap_ignored)} clap.afclap.* tensors of the safetensors "
                f"({self.afclap_differing_from_pickle} of them differ from clap_ckpt/epoch_16.pt): NVIDIA's "
                "inference names its CLAP module nvclap, so load_state_dict(strict=False) drops these keys and "
                "CLAP keeps the pickle's weights; we do the same. Pass use_afclap=True to load them instead. "
                f"Keys: {shown}")
        for d in self.disagreements:
            out.append(f"DISAGREEING COPIES of one tensor: {d.describe()}")
        return out

    def summary(self) -> str:
        text = (f"{self.loaded} tensors loaded ({self.clap_from_pickle} CLAP tensors from the pickle, "
                f"{self.clap_pickle_ignored} non-audio CLAP tensors ignored, {self.duplicates_folded} duplicate "
                f"keys folded, {self.renamed_afclap} clap.afclap. keys renamed)")
        return "\n".join([text] + [f"WARNING: {w}" for w in self.warnings()])


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


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def _resolve(key: str, copies: list[tuple[str, torch.Tensor]], report: LoadReport) -> torch.Tensor:
    """The last of ``copies`` (official load order); a disagreement is recorded when any other differs."""
    kept_name, kept = copies[-1]
    dropped = [(name, _max_abs_diff(value, kept)) for name, value in copies[:-1]]
    if any(diff != 0.0 for _, diff in dropped):
        report.disagreements.append(Disagreement(key, kept_name, [name for name, _ in dropped],
                                                 max(diff for _, diff in dropped)))
    return kept


def read_release_state_dict(folder: str | Path, trust_pickle: bool = False, use_afclap: bool = False,
                            ) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Merge the CLAP pickle and the safetensors chunks into one state dict named like ``AF2Model``.

    Every tensor that has several copies resolves to the copy NVIDIA's load ends with (see the module docstring);
    ``use_afclap``: load ``clap.afclap.*`` safetensors keys as CLAP (the official inference ignores them).
    """
    folder = Path(folder)
    report = LoadReport()
    meta_path = folder / SAFE_DIR / "metadata.json"
    for needed in (folder / CLAP_FILE, meta_path):
        if not needed.exists():
            raise CheckpointError(f"{needed}: missing; expected the AF2 release layout under {folder}")
    # Copies of each model key in the order the official load writes them: the pickle (at CLAP's construction),
    # then the safetensors' own keys (dict.update over the chunks: a later chunk replaces an earlier one), then the
    # duplicate families (registered after model and lm_head, so load_state_dict reaches them last).
    pickle_copy: dict[str, tuple[str, torch.Tensor]] = {}
    for key, value in read_clap_pickle(folder / CLAP_FILE, trust_pickle).items():
        if key.startswith(CLAP_PREFIX_IN_PICKLE):
            pickle_copy[NVCLAP_PREFIX + key[len(CLAP_PREFIX_IN_PICKLE):]] = (f"{key} ({CLAP_FILE.as_posix()})", value)
            report.clap_from_pickle += 1
        else:  # text branch and projection heads of CLAP: AF2 does not use them
            report.clap_pickle_ignored += 1
    try:
        chunks = list(json.loads(meta_path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{meta_path}: not a JSON list or mapping of chunk names ({err})") from err
    primary: dict[str, list[tuple[str, torch.Tensor]]] = {}
    family: dict[str, list[tuple[str, torch.Tensor]]] = {}
    afclap: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for name in chunks:
        path = folder / SAFE_DIR / f"{name}.safetensors"
        if not path.exists():
            raise CheckpointError(f"{path}: named in {meta_path} but missing")
        where = (SAFE_DIR / path.name).as_posix()
        for key, value in load_file(path).items():
            source = f"{key} ({where})"
            if key.startswith(AFCLAP_PREFIX):
                afclap.setdefault(NVCLAP_PREFIX + key[len(AFCLAP_PREFIX):], []).append((source, value))
                continue
            for pattern, target in _DUPLICATES:
                if pattern.match(key):
                    family.setdefault(pattern.sub(target, key), []).append((source, value))
                    break
            else:
                primary.setdefault(key, []).append((source, value))
    if use_afclap:
        # Opt-in: the renamed training-code keys are written after everything else of CLAP.
        for key, copies in afclap.items():
            report.renamed_afclap += len(copies)
            primary.setdefault(key, []).extend(copies)
    else:
        for key, copies in afclap.items():
            report.afclap_ignored.extend(source.split(" (")[0] for source, _ in copies)
            if key not in pickle_copy or any(_max_abs_diff(v, pickle_copy[key][1]) != 0.0 for _, v in copies):
                report.afclap_differing_from_pickle += len(copies)
    state: dict[str, torch.Tensor] = {}
    for key in {**pickle_copy, **primary, **family}:
        copies = ([pickle_copy[key]] if key in pickle_copy else []) + primary.get(key, []) + family.get(key, [])
        if key in pickle_copy and len(copies) > 1:
            report.clap_from_safetensors += 1
        report.duplicates_folded += len(family.get(key, []))
        state[key] = _resolve(key, copies, report)
    return state, report


def _resolve_tied(model: AF2Model, state: dict[str, torch.Tensor], report: LoadReport) -> None:
    """Keys of one shared tensor (tied embeddings) get the value ``load_state_dict`` writes last; disagreeing
    values are reported."""
    groups: dict[tuple, list[str]] = {}
    for key, value in model.state_dict().items():
        if value.device.type != "meta" and value.numel():
            groups.setdefault((value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape)),
                              []).append(key)
    for keys in groups.values():
        present = [k for k in keys if k in state]
        if len(present) > 1:
            kept = _resolve(present[-1], [(f"{k} (checkpoint)", state[k]) for k in present], report)
            for k in present:
                state[k] = kept


def load_weights(model: AF2Model, folder: str | Path, trust_pickle: bool = False, use_afclap: bool = False,
                 ) -> LoadReport:
    """Load a release-layout folder into ``model``; fails unless every model key is filled and none is left over.

    Ignored tensors and disagreeing copies are in the report (``report.warnings()``) and raised as
    ``CheckpointWarning``s.
    """
    state, report = read_release_state_dict(folder, trust_pickle, use_afclap)
    _resolve_tied(model, state, report)
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
    messages = report.warnings()
    if report.afclap_ignored:
        warnings.warn(f"{folder}: {messages[0]}", CheckpointWarning, stacklevel=2)
    if report.disagreements:
        shown = "\n  ".join(d.describe() for d in report.disagreements[:10])
        more = len(report.disagreements) - 10
        warnings.warn(
            f"{folder}: DISAGREEING COPIES of {len(report.disagreements)} tensors; kept the copy NVIDIA's load ends "
            f"with{' (clap.afclap.* over the pickle: use_afclap=True)' if use_afclap else ''}:\n  {shown}"
            + (f"\n  ... and {more} more (LoadReport.disagreements)" if more > 0 else ""),
            CheckpointWarning, stacklevel=2)
    return report


def folder_config(folder: str | Path, config: ModelConfig | str | None = None) -> ModelConfig:
    """The architecture of the release at ``folder``: ``config`` if given, else its ``af2_config.json``, else af2-3b."""
    if isinstance(config, ModelConfig):
        return config
    if config is None:
        path = Path(folder) / CONFIG_FILE
        return ModelConfig.from_file(path) if path.exists() else ModelConfig.preset("af2-3b")
    return ModelConfig.resolve(config)


def load(folder: str | Path, config: ModelConfig | str | None = None, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32, trust_pickle: bool = False, use_afclap: bool = False,
         ) -> tuple[AF2Model, LoadReport]:
    """Build the model (from ``config``, else the folder's ``af2_config.json``, else af2-3b) and load the release.

    ``use_afclap``: take CLAP from ``clap.afclap.*`` safetensors keys instead of ignoring them (see the module
    docstring; off by default, as NVIDIA's inference).
    """
    folder = Path(folder)
    model = build_model(folder_config(folder, config), device=device)
    report = load_weights(model, folder, trust_pickle, use_afclap)
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
