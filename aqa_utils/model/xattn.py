"""Flamingo's gated cross-attention block (XATTN-Dense) as AF2 uses it.

Text hidden states attend to every valid audio token (padding masked; AF2 does not restrict text to the
"immediate" media). Both the attention and the feed-forward branch are scaled by ``tanh(gate)`` with gates that
start at 0 (``attn_gate_init`` can open the attention gate), so a fresh block is the identity. Names match the release:
``attn.{norm,to_q,to_kv,to_out}``, ``attn_gate``, ``ff.{0,1,3}``, ``ff_gate``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedCrossAttention(nn.Module):
    def __init__(self, dim: int, dim_audio: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_audio, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def keys_values(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, N, dim_audio) -> keys and values (B, N, inner): fixed for a clip, so generation caches them."""
        k, v = self.to_kv(audio).chunk(2, dim=-1)
        return k, v

    def forward(self, x: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x (B, T, dim), audio (B, N, dim_audio), audio_mask (B, N) bool -> (B, T, dim).

        ``kv``: this block's precomputed ``keys_values(audio)``, reused across decoding steps.
        """
        B, T, _ = x.shape
        q = self.to_q(self.norm(x))
        k, v = kv if kv is not None else self.keys_values(audio)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, t.shape[1], self.heads, -1).transpose(1, 2)

        # A boolean SDPA mask is "True = may attend": padded audio tokens are never attended.
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=audio_mask[:, None, None, :])
        return self.to_out(out.transpose(1, 2).reshape(B, T, -1))


class GatedCrossAttentionBlock(nn.Module):
    """x + tanh(attn_gate) * xattn(x, audio); then x + tanh(ff_gate) * ff(x)."""

    def __init__(self, dim: int, dim_audio: int, heads: int, dim_head: int, ff_mult: int,
                 attn_gate_init: float = 0.0, init_std: float | None = None):
        """``init_std``: draw the projections from N(0, init_std) (the LM's own initializer range) rather than
        PyTorch's default, whose outputs would be far larger than a freshly initialised LM's embeddings."""
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_audio, heads, dim_head)
        self.attn_gate = nn.Parameter(torch.full((1,), float(attn_gate_init)))
        self.ff = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, dim * ff_mult, bias=False),
            nn.GELU(),
            nn.Linear(dim * ff_mult, dim, bias=False),
        )
        self.ff_gate = nn.Parameter(torch.zeros(1))
        if init_std is not None:
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, std=init_std)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x (B, T, dim), audio (B, N, dim_audio), audio_mask (B, N) bool -> (B, T, dim)."""
        x = x + self.attn(x, audio, audio_mask, kv) * self.attn_gate.tanh()
        return x + self.ff(x) * self.ff_gate.tanh()
