"""The assembled Audio Flamingo 2.

windows (B, L, S) -> CLAP tokens (B, L*64, D) -> audio transformer -> memory that a gated cross-attention block
reads before every Qwen2 decoder layer. Module names follow the release's state dict:
``clap.nvclap.*``, ``audio_transformer_clap.*``, ``lang_encoder.model.layers.{i}.{gated_cross_attn_layer_sound,
decoder_layer}.*`` (see ``checkpoint.py`` for the duplicate key families the release also carries).

The audio is encoded once (``encode_audio``) and the resulting ``AudioMemory`` can be reused: for every step of
greedy generation (KV cache) and for every answer option when scoring options.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Qwen2Config, Qwen2ForCausalLM

from ..config import SPECIAL_TOKENS, LMConfig, ModelConfig
from .audio_transformer import AudioTransformer
from .clap import CLAPEncoder
from .xattn import GatedCrossAttentionBlock


@dataclass
class AudioMemory:
    """What the cross-attention reads: tokens (B, N, D) and their validity mask (B, N) bool."""

    tokens: torch.Tensor
    mask: torch.Tensor
    kv_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None
    """When a dict: each layer's cross-attention keys/values, computed on first use and reused (generation)."""

    def select(self, rows: torch.Tensor) -> "AudioMemory":
        """Memory for rows of another batch: rows (R,) indices into this batch -> (R, N, D)."""
        return AudioMemory(self.tokens.index_select(0, rows), self.mask.index_select(0, rows))

    def cached(self) -> "AudioMemory":
        """The same memory with a fresh key/value cache (inference only: cached tensors carry no gradient)."""
        return AudioMemory(self.tokens, self.mask, {})


@dataclass
class LossOutput:
    """Next-token cross-entropy over labelled tokens: mean, sum and how many tokens."""

    loss: torch.Tensor
    loss_sum: torch.Tensor
    n_tokens: int


class FlamingoLayer(nn.Module):
    """A gated cross-attention block (or None) run before one wrapped Qwen2 decoder layer."""

    def __init__(self, gated_cross_attn_layer_sound: GatedCrossAttentionBlock | None, decoder_layer: nn.Module):
        super().__init__()
        self.gated_cross_attn_layer_sound = gated_cross_attn_layer_sound
        self.decoder_layer = decoder_layer
        self.memory: AudioMemory | None = None
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.memory is None:
            raise RuntimeError("AF2 decoder layer called without audio: call AF2Model, not its lang_encoder")

        xattn, cache = self.gated_cross_attn_layer_sound, self.memory.kv_cache
        kv = None
        if xattn is not None and cache is not None:
            # The audio is the same at every decoding step: project it to keys/values once per layer (looked up
            # first: ``setdefault(key, keys_values(...))`` would compute them again at every step).
            kv = cache.get(id(self))
            if kv is None:
                kv = cache[id(self)] = xattn.attn.keys_values(self.memory.tokens)

        def run(h: torch.Tensor, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            if xattn is not None:
                h = xattn(h, audio, mask, kv)
            return self.decoder_layer(h, *args, **kwargs)

        audio, mask = self.memory.tokens, self.memory.mask
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            # Non-reentrant checkpointing: gradients reach LoRA weights even when no input requires grad.
            return torch.utils.checkpoint.checkpoint(run, hidden_states, audio, mask, use_reentrant=False)
        return run(hidden_states, audio, mask)


def qwen2_config(lm: LMConfig) -> Qwen2Config:
    eos = lm.vocab_size - SPECIAL_TOKENS  # <|endoftext|>, the first of the special tokens that close any vocabulary
    cfg = Qwen2Config(
        vocab_size=lm.vocab_size, hidden_size=lm.hidden_size, intermediate_size=lm.intermediate_size,
        num_hidden_layers=lm.num_hidden_layers, num_attention_heads=lm.num_attention_heads,
        num_key_value_heads=lm.num_key_value_heads, max_position_embeddings=lm.max_position_embeddings,
        rope_theta=lm.rope_theta, rms_norm_eps=lm.rms_norm_eps, tie_word_embeddings=lm.tie_word_embeddings,
        use_sliding_window=False, attention_dropout=0.0, bos_token_id=eos, eos_token_id=eos,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


class AF2Model(nn.Module):
    """Audio Flamingo 2 built from a ``ModelConfig`` (any size; weights random until loaded)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.clap = CLAPEncoder(config.clap, config.audio)
        self.audio_transformer_clap = AudioTransformer(config.audio_dim, config.audio_transformer)
        self.lang_encoder = Qwen2ForCausalLM(qwen2_config(config.lm))
        x = config.xattn
        every = x.every_n_layers
        self.lang_encoder.model.layers = nn.ModuleList(
            FlamingoLayer(
                GatedCrossAttentionBlock(config.lm.hidden_size, config.audio_dim, x.heads, x.dim_head, x.ff_mult,
                                         x.attn_gate_init, init_std=self.lang_encoder.config.initializer_range)
                if (i + 1) % every == 0 else None,
                layer,
            )
            for i, layer in enumerate(self.lang_encoder.model.layers)
        )
        params = inspect.signature(self.lang_encoder.forward).parameters
        # transformers renamed past_key_values -> cache in 5.x; support both spellings.
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # ----------------------------------------------------------------------------------------------- set-up
    @property
    def flamingo_layers(self) -> list[FlamingoLayer]:
        return list(self.lang_encoder.model.layers)

    def gate_values(self) -> list[dict[str, float]]:
        """Per decoder layer, how open its cross-attention block is: tanh of the attention and feed-forward gates."""
        return [{"attn": round(float(layer.gated_cross_attn_layer_sound.attn_gate.detach().tanh()), 4),
                 "ff": round(float(layer.gated_cross_attn_layer_sound.ff_gate.detach().tanh()), 4)}
                for layer in self.flamingo_layers]

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute activations in backward (CLAP stages, audio-transformer layers, LM layers)."""
        self.clap.nvclap.gradient_checkpointing = enabled
        self.audio_transformer_clap.gradient_checkpointing = enabled
        for layer in self.flamingo_layers:
            layer.gradient_checkpointing = enabled

    def cast(self, dtype: torch.dtype) -> "AF2Model":
        """Cast weights to ``dtype`` while rotary frequency tables stay float32 (bf16 would blur positions)."""
        keep = {n: b.detach().clone() for n, b in self.named_buffers() if n.endswith("inv_freq")}
        self.to(dtype)
        for name, value in keep.items():
            owner, attr = self.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2]
            setattr(owner, attr, value.to(getattr(owner, attr).device))
        return self

    @property
    def device(self) -> torch.device:
        return self.lang_encoder.model.embed_tokens.weight.device

    # ----------------------------------------------------------------------------------------------- audio
    def clap_tokens(self, windows: torch.Tensor, window_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """windows (B, L, S), or their log-mel (B, L, frames, n_mels) from ``clap.front_end``, and window_mask
        (B, L) bool -> CLAP tokens (B, L*H, D) and their mask (B, L*H).

        Padded windows are not run through CLAP (their tokens are zeros and masked everywhere), so a clip's
        result does not depend on how much padding its batch needed. When CLAP is frozen these tokens can be
        computed once per clip and reused (``memory_from_clap_tokens``).
        """
        B, L = windows.shape[:2]
        window_mask = window_mask.bool()
        if not window_mask.any(dim=1).all():
            raise ValueError("every clip needs at least one valid window")
        flat_mask = window_mask.reshape(-1)
        valid = self.clap(windows.flatten(0, 1)[flat_mask])  # (n_valid, H, D)
        H, D = valid.shape[1:]
        tokens = valid.new_zeros(B * L, H, D).index_put((flat_mask.nonzero().squeeze(1),), valid)
        return tokens.reshape(B, L * H, D), window_mask.repeat_interleave(H, dim=1)

    def memory_from_clap_tokens(self, tokens: torch.Tensor, mask: torch.Tensor) -> AudioMemory:
        """CLAP tokens (B, N, D) and mask (B, N) -> the audio transformer's output as cross-attention memory."""
        return AudioMemory(self.audio_transformer_clap(tokens, mask), mask)

    def encode_audio(self, windows: torch.Tensor, window_mask: torch.Tensor) -> AudioMemory:
        """windows (B, L, S) float, window_mask (B, L) bool -> AudioMemory of (B, L*tokens_per_window, D)."""
        return self.memory_from_clap_tokens(*self.clap_tokens(windows, window_mask))

    @contextlib.contextmanager
    def conditioned_on(self, memory: AudioMemory):
        """Within this block every decoder layer cross-attends to ``memory``."""
        for layer in self.flamingo_layers:
            layer.memory = memory
        try:
            yield
        finally:
            for layer in self.flamingo_layers:
                layer.memory = None

    # ----------------------------------------------------------------------------------------------- text
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        windows: torch.Tensor | None = None,
        window_mask: torch.Tensor | None = None,
        memory: AudioMemory | None = None,
        clap_tokens: tuple[torch.Tensor, torch.Tensor] | None = None,
        labels: torch.Tensor | None = None,
        **lm_kwargs,
    ):
        """Token ids (B, T) with audio: windows + mask, precomputed CLAP tokens ((B, N, D), (B, N)) of a frozen
        CLAP (the audio transformer still runs), or a precomputed memory.

        Without labels: the HF CausalLMOutput (logits (B, T, V)). With ``labels`` (B, T) (-100 = ignored): a
        ``LossOutput`` of the next-token cross-entropy, where only labelled positions go through the LM head
        (the 151,669-wide head on every prompt token would dominate a small model's cost).
        """
        if memory is None and clap_tokens is not None:
            memory = self.memory_from_clap_tokens(*clap_tokens)
        if memory is None:
            if windows is None or window_mask is None:
                raise ValueError("pass windows and window_mask, clap_tokens, or a precomputed memory")
            memory = self.encode_audio(windows, window_mask)
        if labels is None:
            with self.conditioned_on(memory):
                return self.lang_encoder(input_ids=input_ids, attention_mask=attention_mask, **lm_kwargs)
        hidden, _ = self._hidden_states(input_ids, attention_mask, memory)
        # Position t predicts the token at t+1 (HF's shift).
        targets = labels[:, 1:]
        rows, cols = (targets != -100).nonzero(as_tuple=True)
        logits = self.lang_encoder.lm_head(hidden[rows, cols]).float()
        loss_sum = F.cross_entropy(logits, targets[rows, cols], reduction="sum")
        n_tokens = rows.numel()
        return LossOutput(loss=loss_sum / max(n_tokens, 1), loss_sum=loss_sum, n_tokens=n_tokens)

    def _hidden_states(self, input_ids, attention_mask, memory, position_ids=None, cache=None, use_cache=False):
        with self.conditioned_on(memory):
            out = self.lang_encoder.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                use_cache=use_cache, **{self._cache_kw: cache},
            )
        return out.last_hidden_state, getattr(out, self._cache_kw, None)

    @torch.no_grad()
    def generate(
        self,
        memory: AudioMemory,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        max_new_tokens: int = 256,
        stop_ids: tuple[int, ...],
        pad_id: int,
    ) -> list[list[int]]:
        """Greedy decoding with a KV cache for a LEFT-padded prompt batch (B, T); returns new ids per row.

        Decoding of a row stops at any ``stop_ids`` token (AF2: ``<|endoftext|>``), which is not returned; a finished
        row is filled with ``pad_id`` (the ids come from the model's tokenizer, ``data.prompt.AF2Tokens``).
        """
        B = input_ids.shape[0]
        memory = memory.cached()
        mask = attention_mask.long()
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        stop = torch.tensor(stop_ids, device=input_ids.device)
        finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
        new_tokens: list[torch.Tensor] = []
        cache, step_ids = None, input_ids
        for _ in range(max_new_tokens):
            hidden, cache = self._hidden_states(step_ids, mask, memory, position_ids, cache, use_cache=True)
            next_ids = self.lang_encoder.lm_head(hidden[:, -1]).argmax(-1)
            next_ids = torch.where(finished, torch.full_like(next_ids, pad_id), next_ids)
            finished |= torch.isin(next_ids, stop)
            new_tokens.append(next_ids)
            if finished.all():
                break
            step_ids = next_ids[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position_ids = position_ids[:, -1:] + 1
        if not new_tokens:
            return [[] for _ in range(B)]
        out = torch.stack(new_tokens, dim=1).tolist()
        return [[t for t in row if t != pad_id and t not in stop_ids] for row in out]

    def option_logprobs(
        self,
        memory: AudioMemory,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        target_mask: torch.Tensor,
        row_to_audio: torch.Tensor,
    ) -> torch.Tensor:
        """Summed log-probability of the marked tokens of each row, in one pass.

        input_ids, attention_mask, target_mask: (R, T), right-padded rows "prompt + option";
        target_mask marks the option tokens to score; row_to_audio (R,) selects each row's audio in ``memory``.
        Returns (R,). Only the scored positions go through the LM head (the vocabulary is 151,669 wide), each
        distinct one once: the options of a question share its prompt, and often their first words, so a scored
        position whose audio and preceding tokens equal an earlier row's has the same hidden state (causal LM);
        the head and its normaliser (most of a small model's scoring time) run on the first such row only.
        """
        hidden, _ = self._hidden_states(input_ids, attention_mask, memory.select(row_to_audio))
        # The token at position t is predicted from the hidden state at t-1.
        predict = target_mask[:, 1:].bool()
        rows, cols = predict.nonzero(as_tuple=True)
        first, inverse = distinct_prefixes(input_ids, row_to_audio, rows, cols)
        logits = self.lang_encoder.lm_head(hidden[rows[first], cols[first]]).float()
        # log p = logit - logsumexp: reads the (n, 151,669) logits once instead of writing a log-softmax copy.
        token_lp = logits[inverse, input_ids[rows, cols + 1]] - logits.logsumexp(dim=-1)[inverse]
        return torch.zeros(input_ids.shape[0], device=logits.device).index_add(0, rows, token_lp)


def distinct_prefixes(input_ids: torch.Tensor, row_to_audio: torch.Tensor, rows: torch.Tensor,
                      cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (rows[i], cols[i]) of right-padded ``input_ids`` (R, T) grouped by what the LM state there depends
    on: the row's audio and its tokens 0..cols[i]. Returns ``first`` (U,), the index of each group's first position,
    and ``inverse`` (n,), each position's group."""
    ids, audio = input_ids.tolist(), row_to_audio.tolist()
    group: dict[tuple, int] = {}
    first, inverse = [], []
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        key = (audio[r], *ids[r][: c + 1])
        if key not in group:
            group[key] = len(first)
            first.append(i)
        inverse.append(group[key])
    device = input_ids.device
    return torch.tensor(first, dtype=torch.long, device=device), torch.tensor(inverse, dtype=torch.long, device=device)


def build_model(config: ModelConfig | str, device: str | torch.device | None = None) -> AF2Model:
    """Build an AF2 of any preset/config with random weights.

    ``device="meta"`` allocates no weight memory: for counting and inspecting the full-size models anywhere.
    """
    if isinstance(config, str):
        config = ModelConfig.resolve(config)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return AF2Model(config)
