"""Parameter counts of any AF2 size, per component, built on the meta device (no weights, no memory)."""

from __future__ import annotations

from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.model import build_model


def component_counts(model) -> dict[str, int]:
    """Parameters of CLAP, audio transformer, cross-attention and LM (embeddings counted once when tied)."""
    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    xattn = sum(count(layer.gated_cross_attn_layer_sound) for layer in model.flamingo_layers
                if layer.gated_cross_attn_layer_sound is not None)
    counts = {
        "clap": count(model.clap),
        "audio_transformer": count(model.audio_transformer_clap),
        "xattn": xattn,
        "lm": count(model.lang_encoder) - xattn,
    }
    counts["total"] = sum(counts.values())
    return counts


def parameter_table(model_name: str, lora_rank: int | None = None) -> dict:
    """{"model": name, "parameters": per component, "lora": per component (when a rank is given)}."""
    from aqa_utils.lora import apply_lora, lora_parameter_counts

    config = ModelConfig.resolve(model_name)
    model = build_model(config, device="meta")
    table: dict = {"model": config.name, "parameters": component_counts(model)}
    if lora_rank is not None:
        settings = LoraSettings(rank=lora_rank)
        table["lora_rank"] = lora_rank
        table["lora"] = lora_parameter_counts(apply_lora(model, settings))
    return table
