"""AF2's audio transformer (``audio_transformer_clap``): a post-LayerNorm encoder over the CLAP tokens of all windows.

Parameter names follow the released state dict (``layer_stack.{i}.slf_attn.w_qs`` ...), so the weights load as is.
Rotary position embedding covers the first ``max(head_dim // 2, 32)`` dims of each head (rotate-half form), over
token positions across all windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AudioTransformerConfig


def rotary_dim(head_dim: int) -> int:
    """AF2 rotates max(head_dim // 2, 32) dims of each head (128 of 256 in the 3B release)."""
    return max(head_dim // 2, 32)


class RotaryEmbedding(nn.Module):
    """Rotary angles for positions ``0..T-1``; ``inv_freq`` is a persistent buffer, as in the release."""

    def __init__(self, dim: int, base: float):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, seq_len: int) -> torch.Tensor:
        """Returns angles (T, dim) in float32."""
        t = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.float())
        return torch.cat((freqs, freqs), dim=-1)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``angles.shape[-1]`` dims of ``x`` (B, H, T, Dh) by ``angles`` (T, R); rest unchanged.

    Computed in float32 whatever the input dtype (as the release does) and cast back.
    """
    rot = angles.shape[-1]
    if rot > x.shape[-1]:
        raise ValueError(f"rotary dim {rot} exceeds head dim {x.shape[-1]}: use a head dim of at least 32")
    x_rot, x_pass = x[..., :rot].float(), x[..., rot:]
    first, second = x_rot.chunk(2, dim=-1)
    rotated_half = torch.cat((-second, first), dim=-1)
    out = x_rot * angles.cos() + rotated_half * angles.sin()
    return torch.cat((out.to(x.dtype), x_pass), dim=-1)


class MultiHeadAttention(nn.Module):
    """Self-attention with bias-free projections, residual and post-LayerNorm (eps 1e-6)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.w_qs = nn.Linear(d_model, d_model, bias=False)
        self.w_ks = nn.Linear(d_model, d_model, bias=False)
        self.w_vs = nn.Linear(d_model, d_model, bias=False)
        self.fc = nn.Linear(d_model, d_model, bias=False)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, angles: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), key_mask (B, T) bool (True = real token) -> (B, T, D)."""
        B, T, D = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

        q = apply_rotary(heads(self.w_qs(x)), angles)
        k = apply_rotary(heads(self.w_ks(x)), angles)
        v = heads(self.w_vs(x))
        bias = None
        if key_mask is not None:
            # The release fills masked scores with -1e9 (not -inf): a fully padded row then stays finite.
            bias = torch.zeros(B, 1, 1, T, dtype=q.dtype, device=q.device)
            bias = bias.masked_fill(~key_mask[:, None, None, :], -1e9)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = self.fc(out.transpose(1, 2).reshape(B, T, D))
        return self.layer_norm(out + x)


class PositionwiseFeedForward(nn.Module):
    """Linear -> ReLU -> Linear with bias, residual and post-LayerNorm."""

    def __init__(self, d_model: int, d_inner: int):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_inner)
        self.w_2 = nn.Linear(d_inner, d_model)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.w_2(F.relu(self.w_1(x))) + x)


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_inner: int):
        super().__init__()
        self.slf_attn = MultiHeadAttention(d_model, n_heads)
        self.pos_ffn = PositionwiseFeedForward(d_model, d_inner)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, angles: torch.Tensor) -> torch.Tensor:
        return self.pos_ffn(self.slf_attn(x, key_mask, angles))


class AudioTransformer(nn.Module):
    """Encoder over concatenated window tokens.

    Input tokens (B, N, D) with N = windows * tokens_per_window and a key mask (B, N); output (B, N, D).
    The input is scaled by sqrt(D) and layer-normalised before the first layer, as in the release.
    """

    def __init__(self, d_model: int, cfg: AudioTransformerConfig):
        super().__init__()
        if d_model % cfg.n_heads:
            raise ValueError(f"audio transformer width {d_model} is not divisible by {cfg.n_heads} heads")
        self.d_model = d_model
        self.position_enc = RotaryEmbedding(rotary_dim(d_model // cfg.n_heads), cfg.rotary_base)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)
        self.layer_stack = nn.ModuleList(EncoderLayer(d_model, cfg.n_heads, cfg.d_inner) for _ in range(cfg.n_layers))
        self.gradient_checkpointing = False

    def forward(self, tokens: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        angles = self.position_enc(tokens.shape[1])
        x = self.layer_norm(tokens * self.d_model**0.5)
        for layer in self.layer_stack:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, key_mask, angles, use_reentrant=False)
            else:
                x = layer(x, key_mask, angles)
        return x
