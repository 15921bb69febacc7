"""AF2 model: AF-CLAP encoder, audio transformer, gated cross-attention and Qwen2 language model."""

from .flamingo import AF2Model, AudioMemory, build_model

__all__ = ["AF2Model", "AudioMemory", "build_model"]
