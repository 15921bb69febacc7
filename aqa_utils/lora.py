"""LoRA adapters on AF2 through peft: validated targets, exact counts, peft's own save format, merging.

A target pattern must match at least one ``nn.Linear`` and only modules of its own component (a pattern meant
for the LM must not also catch a cross-attention or CLAP projection). Misconfiguration raises before any training.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from torch import nn

from aqa_utils.config import LoraSettings

# A module belongs to the first component whose test its name passes.
_COMPONENT_OF = [
    ("xattn", lambda n: ".gated_cross_attn_layer_sound." in n),
    ("clap", lambda n: n.startswith("clap.")),
    ("audio_transformer", lambda n: n.startswith("audio_transformer_clap.")),
    ("lm", lambda n: n.startswith("lang_encoder.")),
]

COMPONENTS = tuple(name for name, _ in _COMPONENT_OF)


class LoraTargetError(ValueError):
    """The LoRA configuration does not select exactly the intended modules."""


def component_of(module_name: str) -> str:
    for component, test in _COMPONENT_OF:
        if test(module_name):
            return component
    return "other"


def resolve_targets(model: nn.Module, settings: LoraSettings) -> dict[str, list[str]]:
    """Module names to adapt, per component; raises listing every problem."""
    problems, found = [], {}
    names = {name: module for name, module in model.named_modules()}
    for component in settings.components:
        if component not in settings.targets:
            problems.append(f"component {component!r} has no target pattern (known: {sorted(settings.targets)})")
            continue
        pattern = re.compile(settings.targets[component])
        matched = [n for n in names if pattern.fullmatch(n)]
        if not matched:
            problems.append(f"{component}: pattern {pattern.pattern!r} matches no module")
        strays = [n for n in matched if component_of(n) != component]
        if strays:
            problems.append(f"{component}: pattern {pattern.pattern!r} also matches modules of other components: "
                            f"{strays[:5]}{' ...' if len(strays) > 5 else ''}")
        not_linear = [n for n in matched if not isinstance(names[n], nn.Linear)]
        if not_linear:
            problems.append(f"{component}: pattern matches non-Linear modules {not_linear[:5]}")
        found[component] = matched
    if problems:
        raise LoraTargetError("invalid LoRA targets:\n  " + "\n  ".join(problems))
    return found


def peft_config(model: nn.Module, settings: LoraSettings) -> PeftLoraConfig:
    resolve_targets(model, settings)
    union = "|".join(f"(?:{settings.targets[c]})" for c in settings.components)
    return PeftLoraConfig(r=settings.rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.dropout,
                          target_modules=union, bias="none")


def apply_lora(model: nn.Module, settings: LoraSettings) -> PeftModel:
    """Wrap ``model`` with fresh adapters; every base parameter is frozen, only ``lora_`` tensors train.

    Batch-norm statistics of CLAP are frozen too (they would otherwise drift in train mode).
    """
    wanted = resolve_targets(model, settings)
    peft_model = get_peft_model(model, peft_config(model, settings))
    adapted = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    expected = {n for names in wanted.values() for n in names}
    if adapted != expected:  # peft's own matching must agree with ours, module for module
        raise LoraTargetError(f"peft adapted {sorted(adapted ^ expected)[:5]} differently from the resolved targets")
    _freeze_base(peft_model)
    return peft_model


def _freeze_base(peft_model: PeftModel) -> None:
    for name, param in peft_model.named_parameters():
        param.requires_grad = "lora_" in name
    base = peft_model.get_base_model()
    if hasattr(base, "clap"):
        base.clap.freeze_batchnorm = True
        # Re-apply the current mode: a model already in train mode must switch its batch norms to eval now,
        # not only at the next .train() call (else the running statistics drift on the first steps).
        base.clap.train(base.clap.training)


def lora_parameter_counts(peft_model: PeftModel) -> dict[str, int]:
    """Trainable LoRA parameters per component and in total."""
    counts: dict[str, int] = {}
    for name, param in peft_model.named_parameters():
        if "lora_" in name and param.requires_grad:
            component = component_of(name.removeprefix("base_model.model."))
            counts[component] = counts.get(component, 0) + param.numel()
    counts["total"] = sum(counts.values())
    return counts


DOWNLOAD_RECORD = ".aqa_download.json"
"""What ``download af2`` writes into the release folder (its ``RECORD_FILE``; a test keeps the two equal, not
imported so that this module does not depend on the download layer)."""


def base_model_name(checkpoint: str | Path | None, model_name: str) -> str:
    """What an adapter's ``base_model_name_or_path`` names: the hub repo a ``download af2`` folder came from
    (``nvidia/audio-flamingo-2``), else the local base's folder name (``af2-tiny``), else (a base initialised at
    random) the model preset. Never a path of this machine."""
    if checkpoint is None:
        return model_name
    record = Path(checkpoint) / DOWNLOAD_RECORD
    if record.is_file():
        try:
            return str(json.loads(record.read_text())["repo"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{record}: unreadable download record ({err!r}); delete it or run download af2 "
                             "again") from None
    return Path(checkpoint).resolve().name


def save_adapter(peft_model: PeftModel, folder: str | Path, base_model: str | None = None) -> Path:
    """peft's format: ``adapter_config.json`` (naming ``base_model``, see ``base_model_name``) +
    ``adapter_model.safetensors`` holding the LoRA tensors only. peft's template README is removed: it holds no
    information, and ``model_card`` writes the real one once the run's summary exists."""
    for config in peft_model.peft_config.values():
        config.base_model_name_or_path = base_model
    # save_embedding_layers=False: no embedding is ever adapted, and peft's "auto" would look the base name up on
    # the hub (a network call at the end of every run, and a warning offline).
    peft_model.save_pretrained(str(folder), save_embedding_layers=False)
    (Path(folder) / "README.md").unlink(missing_ok=True)
    return Path(folder)


def load_adapter(base_model: nn.Module, folder: str | Path, trainable: bool = False) -> PeftModel:
    """Attach a saved adapter to a base model (``PeftModel.from_pretrained`` semantics)."""
    peft_model = PeftModel.from_pretrained(base_model, str(folder), is_trainable=trainable)
    if trainable:
        _freeze_base(peft_model)
    return peft_model


def merge(peft_model: PeftModel) -> nn.Module:
    """Fold the adapters into the base weights (W + B A * alpha / r) and return the plain model."""
    with torch.no_grad():
        return peft_model.merge_and_unload()
