"""AF2 model: full-size shapes on the meta device, custom configs, cross-attention, padding/batching invariance,
generation vs option scoring, gradient checkpointing and bf16 casting (tiny model on CPU)."""

from __future__ import annotations

import contextlib
import copy
import json
import math

import pytest
import torch
import yaml

from aqa_utils.config import AF2_VOCAB_SIZE, ModelConfig
from aqa_utils.data.prompt import AF2Tokens, tokenizer_for
from aqa_utils.model import AF2Model, build_model
from aqa_utils.model.xattn import GatedCrossAttentionBlock
from aqa_utils.params import component_counts

WINDOW = 160_000
PAD = AF2Tokens.of(tokenizer_for(ModelConfig.preset("af2-tiny"))).pad  # af2-tiny's <|PAD_TOKEN|>


# --------------------------------------------------------------------------------------------------- helpers
def tiny_model(seed: int = 0, gate: float | None = 0.7, config: ModelConfig | str = "af2-tiny") -> AF2Model:
    """A seeded tiny AF2 in eval mode; ``gate`` sets every cross-attention gate (None keeps the init, 0)."""
    torch.manual_seed(seed)
    model = build_model(config).eval()
    if gate is not None:
        set_gates(model, gate)
    return model


def set_gates(model: AF2Model, value: float) -> None:
    with torch.no_grad():
        for layer in model.flamingo_layers:
            block = layer.gated_cross_attn_layer_sound
            if block is not None:
                block.attn_gate.fill_(value)
                block.ff_gate.fill_(value)


def audio(batch: int, windows: int, seed: int) -> torch.Tensor:
    """Seeded noise plus a sine per clip: (batch, windows, 160000)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(WINDOW) / 16_000
    noise = 0.2 * torch.randn(batch, windows, WINDOW, generator=g)
    freqs = 200 + 1800 * torch.rand(batch, windows, 1, generator=g)
    return noise + 0.5 * torch.sin(2 * math.pi * freqs * t)


def token_ids(length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 500, (length,), generator=g)  # ordinary tokens of af2-tiny's vocabulary


def all_true(batch: int, windows: int) -> torch.Tensor:
    return torch.ones(batch, windows, dtype=torch.bool)


def qwen2_lm_params(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv_heads: int) -> int:
    """Qwen2 decoder parameter count from its shapes (tied embeddings: counted once)."""
    head = hidden // heads
    kv = kv_heads * head
    attn = (hidden * hidden + hidden) + 2 * (hidden * kv + kv) + hidden * hidden
    mlp = 3 * hidden * inter
    return vocab * hidden + layers * (attn + mlp + 2 * hidden) + hidden


@pytest.fixture(scope="module")
def tiny() -> AF2Model:
    """Shared seeded af2-tiny, eval mode, every gate 0.7. Tests that change it restore it or work on a copy."""
    return tiny_model(seed=0, gate=0.7)


# --------------------------------------------------------------------------------------------------- full size, meta
@pytest.fixture(scope="module")
def af2_3b() -> AF2Model:
    return build_model("af2-3b", device="meta")


def test_af2_3b_component_counts(af2_3b):
    counts = component_counts(af2_3b)
    assert counts["lm"] == 3_085_391_872
    assert counts["xattn"] == 1_359_249_480 == 36 * 37_756_930
    assert counts["audio_transformer"] == 75_538_432
    assert counts["clap"] == 278_770_007
    assert counts["total"] == 3_085_391_872 + 1_359_249_480 + 75_538_432 + 278_770_007
    # Every decoder layer has its own cross-attention block of 37,756,930 parameters.
    layers = af2_3b.flamingo_layers
    assert len(layers) == 36
    for layer in layers:
        assert sum(p.numel() for p in layer.gated_cross_attn_layer_sound.parameters()) == 37_756_930
    # The LM count is Qwen2.5-3B's shape with AF2's 151,669-token vocabulary, embeddings tied.
    lm = af2_3b.lang_encoder
    assert lm.model.embed_tokens.weight.shape == (AF2_VOCAB_SIZE, 2048)
    assert lm.lm_head.weight is lm.model.embed_tokens.weight
    assert counts["lm"] == qwen2_lm_params(AF2_VOCAB_SIZE, 2048, 11008, 36, 16, 2)


def test_af2_3b_shapes_match_the_release(af2_3b):
    sd = {k: tuple(v.shape) for k, v in af2_3b.state_dict().items()}
    x = "lang_encoder.model.layers.0.gated_cross_attn_layer_sound."
    assert sd[x + "attn.to_q.weight"] == (512, 2048)
    assert sd[x + "attn.to_kv.weight"] == (1024, 2048)
    assert sd[x + "attn.to_out.weight"] == (2048, 512)
    assert sd[x + "ff.1.weight"] == (8192, 2048) and sd[x + "ff.3.weight"] == (2048, 8192)
    assert sd[x + "attn_gate"] == (1,) and sd[x + "ff_gate"] == (1,)
    d = "lang_encoder.model.layers.35.decoder_layer.self_attn."
    assert sd[d + "q_proj.bias"] == (2048,) and sd[d + "k_proj.weight"] == (256, 2048)
    a = "audio_transformer_clap.layer_stack.2."
    assert sd[a + "slf_attn.w_qs.weight"] == (2048, 2048) and sd[a + "pos_ffn.w_1.weight"] == (2048, 2048)
    assert "audio_transformer_clap.layer_stack.3.slf_attn.w_qs.weight" not in sd
    assert sd["clap.nvclap.layers.2.blocks.11.attn.qkv.weight"] == (3072, 1024)
    assert sd["clap.nvclap.layers.3.blocks.1.attn.qkv.weight"] == (6144, 2048)
    assert af2_3b.config.tokens_per_window == 64 and af2_3b.config.audio_dim == 2048


def test_af2_3b_allocates_nothing_off_meta(af2_3b):
    assert {p.device.type for p in af2_3b.parameters()} == {"meta"}
    assert {b.device.type for b in af2_3b.buffers()} == {"meta"}
    assert af2_3b.device.type == "meta"


@pytest.mark.parametrize("name, hidden, inter, layers, heads", [
    ("af2-1.5b", 1536, 8960, 28, 12),
    ("af2-0.5b", 896, 4864, 24, 14),
])
def test_smaller_releases_have_qwen25_shapes(af2_3b, name, hidden, inter, layers, heads):
    model = build_model(name, device="meta")
    # Same CLAP configuration as the 3B model, but its own modules (nothing shared between builds).
    assert model.clap.nvclap is not af2_3b.clap.nvclap
    assert model.clap.nvclap.layers[0].blocks[0].attn.qkv.weight is not af2_3b.clap.nvclap.layers[0].blocks[0].attn.qkv.weight
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {b.device.type for b in model.buffers()} == {"meta"}
    cfg = model.lang_encoder.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        hidden, layers, heads, 2)
    assert cfg.intermediate_size == inter and cfg.vocab_size == AF2_VOCAB_SIZE
    assert len(model.flamingo_layers) == layers
    assert all(layer.gated_cross_attn_layer_sound is not None for layer in model.flamingo_layers)
    counts = component_counts(model)
    assert counts["lm"] == qwen2_lm_params(AF2_VOCAB_SIZE, hidden, inter, layers, heads, 2)
    # Published Qwen2.5 sizes (vocabulary 151,936) minus the 267 rows AF2's vocabulary is smaller.
    published = {"af2-1.5b": 1_543_714_304, "af2-0.5b": 494_032_768}[name]
    assert counts["lm"] == published - (151_936 - AF2_VOCAB_SIZE) * hidden
    # CLAP and the audio transformer are shared with the 3B release.
    assert counts["clap"] == 278_770_007 and counts["audio_transformer"] == 75_538_432
    # The cross-attention reads 2048-wide audio and writes the LM's width.
    block = model.flamingo_layers[0].gated_cross_attn_layer_sound
    assert tuple(block.attn.to_kv.weight.shape) == (1024, 2048)
    assert tuple(block.attn.to_q.weight.shape) == (512, hidden)


# --------------------------------------------------------------------------------------------------- custom config
CUSTOM = {
    "name": "custom-small",
    "clap": {"embed_dim": 16, "depths": [1, 1, 2], "num_heads": [1, 2, 2], "num_classes": 4, "drop_path_rate": 0.0},
    "audio_transformer": {"n_layers": 2, "n_heads": 2, "d_inner": 96},
    "xattn": {"heads": 1, "dim_head": 16, "ff_mult": 1, "every_n_layers": 2},
    "lm": {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
           "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 256},
}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_custom_config_file_builds_and_runs(tmp_path, suffix):
    path = tmp_path / f"custom{suffix}"
    path.write_text(json.dumps(CUSTOM) if suffix == ".json" else yaml.safe_dump(CUSTOM))
    config = ModelConfig.from_file(path)
    assert ModelConfig.resolve(path) == config
    assert config.clap.depths == (1, 1, 2) and config.clap.num_heads == (1, 2, 2)
    assert config.audio_dim == 64 and config.tokens_per_window == 16 * 16
    model = tiny_model(seed=3, gate=None, config=config)
    blocks = [l.gated_cross_attn_layer_sound for l in model.flamingo_layers if l.gated_cross_attn_layer_sound is not None]
    assert blocks and all(b.attn_gate.item() == 0 and b.ff_gate.item() == 0 for b in blocks)  # built closed
    set_gates(model, 0.5)
    sd = model.state_dict()
    assert "clap.nvclap.layers.2.blocks.1.attn.qkv.weight" in sd and "clap.nvclap.layers.3.blocks.0.attn.qkv.weight" not in sd
    assert tuple(sd["clap.nvclap.layers.2.blocks.0.attn.qkv.weight"].shape) == (3 * 64, 64)
    assert len(model.audio_transformer_clap.layer_stack) == 2
    assert tuple(sd["audio_transformer_clap.layer_stack.1.pos_ffn.w_1.weight"].shape) == (96, 64)
    # every_n_layers=2: a block before layer 1 only (of 0, 1, 2).
    assert [layer.gated_cross_attn_layer_sound is not None for layer in model.flamingo_layers] == [False, True, False]
    block = model.flamingo_layers[1].gated_cross_attn_layer_sound
    assert tuple(block.attn.to_q.weight.shape) == (16, 32) and tuple(block.attn.to_kv.weight.shape) == (32, 64)
    assert tuple(block.ff[1].weight.shape) == (32, 32)
    ids = torch.stack([token_ids(7, 1), token_ids(7, 2)])
    with torch.no_grad():
        memory = model.encode_audio(audio(2, 2, seed=4), torch.tensor([[True, False], [True, False]]))
        out = model(ids, torch.ones_like(ids), memory=memory)
    assert memory.tokens.shape == (2, 2 * 256, 64) and memory.mask.sum(1).tolist() == [256, 256]
    assert out.logits.shape == (2, 7, 1000) and torch.isfinite(out.logits).all()
    assert not torch.allclose(out.logits[0], out.logits[1])


def test_custom_config_unknown_field_is_named(tmp_path):
    bad = json.loads(json.dumps(CUSTOM))
    bad["clap"]["embed_dims"] = 8
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="embed_dims"):
        ModelConfig.from_file(path)
    top = dict(CUSTOM, lm_layers=4)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(top))
    with pytest.raises(ValueError, match="lm_layers"):
        ModelConfig.from_file(path)


# --------------------------------------------------------------------------------------------------- cross-attention
def make_block(seed: int = 0) -> GatedCrossAttentionBlock:
    torch.manual_seed(seed)
    return GatedCrossAttentionBlock(dim=24, dim_audio=40, heads=3, dim_head=8, ff_mult=2).eval()


def test_xattn_block_shapes_and_zero_gate_identity():
    block = make_block()
    torch.manual_seed(1)
    x, a = torch.randn(2, 5, 24), torch.randn(2, 7, 40)
    mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    assert block.attn_gate.item() == 0.0 and block.ff_gate.item() == 0.0  # initialised closed
    out = block(x, a, mask)
    assert out.shape == x.shape
    assert torch.equal(out, x)
    with torch.no_grad():
        block.attn_gate.fill_(0.5)
    opened = block(x, a, mask)
    assert opened.shape == (2, 5, 24) and not torch.allclose(opened, x)
    with torch.no_grad():
        block.attn_gate.zero_()
        block.ff_gate.fill_(0.5)
    assert not torch.allclose(block(x, a, mask), x)


def test_xattn_block_ignores_masked_audio_tokens():
    block = make_block()
    with torch.no_grad():
        block.attn_gate.fill_(1.0)
        block.ff_gate.fill_(1.0)
    torch.manual_seed(2)
    x, a = torch.randn(1, 4, 24), torch.randn(1, 6, 40)
    mask = torch.tensor([[True, True, True, False, False, False]])
    changed = a.clone()
    changed[:, 3:] = 100 * torch.randn(1, 3, 40)
    torch.testing.assert_close(block(x, changed, mask), block(x, a, mask), rtol=0, atol=1e-6)
    # ... while the valid tokens do matter.
    changed = a.clone()
    changed[:, 0] += 1.0
    assert not torch.allclose(block(x, changed, mask), block(x, a, mask))


def test_closed_gates_make_logits_independent_of_audio(tiny):
    ids = token_ids(10, 5)[None]
    try:
        set_gates(tiny, 0.0)  # the initial state of every block
        with torch.no_grad():
            one = tiny.encode_audio(audio(1, 1, seed=1), all_true(1, 1))
            two = tiny.encode_audio(audio(1, 1, seed=2), all_true(1, 1))
            assert not torch.allclose(one.tokens, two.tokens, atol=1e-3)
            first, second = tiny(ids, memory=one).logits, tiny(ids, memory=two).logits
            set_gates(tiny, 0.5)
            third, fourth = tiny(ids, memory=one).logits, tiny(ids, memory=two).logits
    finally:
        set_gates(tiny, 0.7)
    assert torch.equal(first, second)
    assert not torch.allclose(third, fourth, atol=1e-4)
    assert not torch.allclose(first, third, atol=1e-4)


def test_decoder_layers_refuse_to_run_without_audio(tiny):
    with pytest.raises(RuntimeError, match="without audio"):
        tiny.lang_encoder(input_ids=token_ids(4, 0)[None])


# --------------------------------------------------------------------------------------------------- invariances
def test_padded_windows_do_not_change_the_output(tiny):
    clip = audio(1, 1, seed=7)
    padded = torch.cat([clip, audio(1, 2, seed=8)], dim=1)  # junk in the padded windows: must be ignored
    ids = token_ids(10, 3)[None]
    with torch.no_grad():
        alone_mem = tiny.encode_audio(clip, all_true(1, 1))
        padded_mem = tiny.encode_audio(padded, torch.tensor([[True, False, False]]))
        alone = tiny(ids, memory=alone_mem).logits
        pad = tiny(ids, memory=padded_mem).logits
    assert padded_mem.tokens.shape == (1, 3 * 64, 64) and padded_mem.mask.sum() == 64
    torch.testing.assert_close(padded_mem.tokens[:, :64], alone_mem.tokens, rtol=0, atol=1e-5)
    torch.testing.assert_close(pad, alone, rtol=0, atol=1e-6)


def test_encode_audio_rejects_a_clip_without_windows(tiny):
    with pytest.raises(ValueError, match="at least one valid window"):
        tiny.encode_audio(audio(2, 1, seed=0), torch.tensor([[True], [False]]))


def test_forward_batch_equals_items_right_padded(tiny):
    lengths, n_windows = [10, 6], [1, 2]
    clips = [audio(1, n, seed=20 + i) for i, n in enumerate(n_windows)]
    texts = [token_ids(n, 30 + i) for i, n in enumerate(lengths)]
    T, L = max(lengths), max(n_windows)
    ids = torch.full((2, T), PAD)
    attn = torch.zeros(2, T, dtype=torch.long)
    windows = torch.zeros(2, L, WINDOW)
    wmask = torch.zeros(2, L, dtype=torch.bool)
    for i in range(2):
        ids[i, : lengths[i]] = texts[i]
        attn[i, : lengths[i]] = 1
        windows[i, : n_windows[i]] = clips[i][0]
        wmask[i, : n_windows[i]] = True
    with torch.no_grad():
        batch = tiny(ids, attn, windows=windows, window_mask=wmask).logits
        for i in range(2):
            alone = tiny(texts[i][None], windows=clips[i], window_mask=all_true(1, n_windows[i])).logits
            torch.testing.assert_close(batch[i, : lengths[i]], alone[0], rtol=0, atol=1e-5)


def left_pad(rows: list[torch.Tensor], pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, T - len(r):] = r
        mask[i, T - len(r):] = 1
    return ids, mask


def test_greedy_generation_batch_equals_items_left_padded(tiny):
    prompts = [token_ids(4, 40), token_ids(11, 41), token_ids(7, 42)]
    clips = audio(3, 1, seed=43)
    ids, mask = left_pad(prompts)
    with torch.no_grad():
        memory = tiny.encode_audio(clips, all_true(3, 1))
        batch = tiny.generate(memory, ids, mask, max_new_tokens=6, stop_ids=(), pad_id=PAD)
        assert [len(row) for row in batch] == [6, 6, 6]
        for i, prompt in enumerate(prompts):
            one = memory.select(torch.tensor([i]))
            alone = tiny.generate(one, prompt[None], torch.ones(1, len(prompt), dtype=torch.long),
                                  max_new_tokens=6, stop_ids=(), pad_id=PAD)
            assert batch[i] == alone[0]
        # The KV-cached greedy loop equals arg-max over a full forward pass, step by step.
        seq, one = prompts[0].clone(), memory.select(torch.tensor([0]))
        for _ in range(6):
            nxt = tiny(seq[None], memory=one).logits[0, -1].argmax()
            seq = torch.cat([seq, nxt[None]])
        assert seq[len(prompts[0]):].tolist() == batch[0]
        # Left-padded batch logits at the last position equal the items' (within 1e-5).
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        last = tiny(ids, mask, memory=memory, position_ids=pos).logits[:, -1]
        for i, prompt in enumerate(prompts):
            alone = tiny(prompt[None], memory=memory.select(torch.tensor([i]))).logits[0, -1]
            torch.testing.assert_close(last[i], alone, rtol=0, atol=1e-5)


def test_generation_stops_at_stop_token(tiny):
    prompt = token_ids(5, 50)
    with torch.no_grad():
        memory = tiny.encode_audio(audio(1, 1, seed=51), all_true(1, 1))
        free = tiny.generate(memory, prompt[None], torch.ones(1, 5, dtype=torch.long), max_new_tokens=4, stop_ids=(),
                             pad_id=PAD)
        stop_at = free[0][1]
        stopped = tiny.generate(memory, prompt[None], torch.ones(1, 5, dtype=torch.long), max_new_tokens=4,
                                stop_ids=(stop_at,), pad_id=PAD)
    assert stopped[0] == free[0][: free[0].index(stop_at)]


def test_cross_attention_keys_values_computed_once_per_generate(tiny, monkeypatch):
    """The audio is fixed while decoding: each block projects it to keys/values once per generate call, not once
    per step, and the cached keys/values give the same tokens as recomputing them."""
    from aqa_utils.model.xattn import MaskedCrossAttention

    original, calls = MaskedCrossAttention.keys_values, []

    def counted(module, audio_tokens):
        calls.append(id(module))
        return original(module, audio_tokens)

    prompts = [token_ids(4, 53), token_ids(7, 54)]
    ids, mask = left_pad(prompts)
    layers = [layer.gated_cross_attn_layer_sound.attn for layer in tiny.flamingo_layers]
    with torch.no_grad():
        memory = tiny.encode_audio(audio(2, 2, seed=55), all_true(2, 2))
        monkeypatch.setattr(MaskedCrossAttention, "keys_values", counted)
        out = tiny.generate(memory, ids, mask, max_new_tokens=7, stop_ids=(), pad_id=PAD)
        assert [len(row) for row in out] == [7, 7]
        assert sorted(calls) == sorted(id(a) for a in layers)  # once per block, not 7 times
        calls.clear()
        tiny.generate(memory, ids, mask, max_new_tokens=3, stop_ids=(), pad_id=PAD)
        assert len(calls) == len(layers)  # a new generate call computes them afresh (new cache)
        # Reference: every step recomputes them (no cache) -> the same tokens.
        seq = [p.clone() for p in prompts]
        for _ in range(7):
            for i in range(2):
                nxt = tiny(seq[i][None], memory=memory.select(torch.tensor([i]))).logits[0, -1].argmax()
                seq[i] = torch.cat([seq[i], nxt[None]])
        assert [s[len(p):].tolist() for s, p in zip(seq, prompts)] == out


def test_generation_and_option_scoring_agree(tiny):
    prompts = [token_ids(6, 60), token_ids(9, 61)]
    clips = audio(2, 1, seed=62)
    ids, mask = left_pad(prompts)
    with torch.no_grad():
        memory = tiny.encode_audio(clips, all_true(2, 1))
        greedy = [row[0] for row in tiny.generate(memory, ids, mask, max_new_tokens=1, stop_ids=(), pad_id=PAD)]
        rows, row_to_audio, options = [], [], []
        g = torch.Generator().manual_seed(63)
        for i, (prompt, first) in enumerate(zip(prompts, greedy)):
            others = [t for t in torch.randperm(1000, generator=g).tolist() if t != first][:3]
            opts = [first, *others]
            # Shuffle so the right answer is not always option 0.
            order = torch.randperm(4, generator=g).tolist()
            opts = [opts[j] for j in order]
            options.append(opts)
            for t in opts:
                rows.append(torch.cat([prompt, torch.tensor([t])]))
                row_to_audio.append(i)
        T = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), T), PAD)
        attn = torch.zeros(len(rows), T, dtype=torch.long)
        target = torch.zeros(len(rows), T, dtype=torch.bool)
        for r, row in enumerate(rows):  # right padding: "prompt + option", option marked
            input_ids[r, : len(row)] = row
            attn[r, : len(row)] = 1
            target[r, len(row) - 1] = True
        scores = tiny.option_logprobs(memory, input_ids, attn, target, torch.tensor(row_to_audio))
    assert scores.shape == (8,) and (scores < 0).all()
    for i in range(2):
        best = scores[4 * i: 4 * i + 4].argmax().item()
        assert options[i][best] == greedy[i]
    # The score is exactly the next-token log-probability of a plain forward pass.
    with torch.no_grad():
        logits = tiny(prompts[1][None], memory=memory.select(torch.tensor([1]))).logits[0, -1]
    expected = torch.log_softmax(logits.float(), -1)[torch.tensor(options[1])]
    torch.testing.assert_close(scores[4:], expected, rtol=0, atol=1e-5)


def test_option_scoring_sums_multi_token_options(tiny):
    prompt, option = token_ids(5, 70), token_ids(3, 71)
    row = torch.cat([prompt, option])
    target = torch.zeros(1, 8, dtype=torch.bool)
    target[0, 5:] = True
    with torch.no_grad():
        memory = tiny.encode_audio(audio(1, 1, seed=72), all_true(1, 1))
        score = tiny.option_logprobs(memory, row[None], torch.ones(1, 8, dtype=torch.long), target, torch.tensor([0]))
        logp = torch.log_softmax(tiny(row[None], memory=memory).logits[0].float(), -1)
    expected = sum(logp[t - 1, row[t]] for t in range(5, 8))
    torch.testing.assert_close(score[0], expected, rtol=0, atol=1e-5)


def test_scored_positions_are_grouped_by_audio_and_preceding_tokens():
    from aqa_utils.model.flamingo import distinct_prefixes

    pad = PAD
    input_ids = torch.tensor([[5, 6, 7, 8, pad], [5, 6, 7, 9, 4], [5, 6, 7, 8, pad]])
    target = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0]], dtype=torch.bool)
    rows, cols = target[:, 1:].nonzero(as_tuple=True)  # positions 1 and 2 of rows 0 and 2, 1..3 of row 1
    # Rows 0 and 1 are one question (audio 0): both predict from (5, 6) and from (5, 6, 7), then differ; row 2 is
    # row 0's text on another clip, so nothing of it is shared.
    first, inverse = distinct_prefixes(input_ids, torch.tensor([0, 0, 1]), rows, cols)
    assert first.tolist() == [0, 1, 4, 5, 6]
    assert inverse.tolist() == [0, 1, 0, 1, 2, 3, 4]


def test_option_scoring_with_shared_prefixes_equals_scoring_each_row_alone(tiny):
    """Options sharing their first tokens (and a question's rows sharing its prompt) are scored from shared head
    rows: every score must equal that row's own forward pass."""
    prompt = token_ids(6, 73)
    options = [torch.tensor([11, 12]), torch.tensor([11, 13, 14]), torch.tensor([15])]
    rows = [torch.cat([prompt, o]) for o in options]
    T = max(len(r) for r in rows)
    input_ids = torch.full((3, T), PAD)
    attn = torch.zeros(3, T, dtype=torch.long)
    target = torch.zeros(3, T, dtype=torch.bool)
    for r, row in enumerate(rows):
        input_ids[r, : len(row)], attn[r, : len(row)], target[r, 6: len(row)] = row, 1, True
    with torch.no_grad():
        memory = tiny.encode_audio(audio(1, 1, seed=74), all_true(1, 1))
        scores = tiny.option_logprobs(memory, input_ids, attn, target, torch.tensor([0, 0, 0]))
        for r, row in enumerate(rows):
            logp = torch.log_softmax(tiny(row[None], memory=memory).logits[0].float(), -1)
            expected = sum(logp[t - 1, row[t]] for t in range(6, len(row)))
            torch.testing.assert_close(scores[r], expected, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------------- training
def loss_and_grads(model: AF2Model, checkpointing: bool):
    model.set_gradient_checkpointing(checkpointing)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(123)  # the same SpecAugment / fusion draws in both runs
    ids = token_ids(10, 80)[None]
    labels = ids.clone()
    labels[:, :3] = -100
    out = model(ids, torch.ones_like(ids), windows=audio(1, 1, seed=82), window_mask=all_true(1, 1), labels=labels)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.loss.detach(), grads


def test_gradient_checkpointing_same_loss_and_gradients(tiny):
    model = copy.deepcopy(tiny).train()
    calls = {"clap": 0, "audio_transformer": 0, "lm": 0}

    def counter(part):
        def hook(*_):
            calls[part] += 1
        return hook

    model.clap.nvclap.layers[1].register_forward_pre_hook(counter("clap"))
    model.audio_transformer_clap.layer_stack[0].register_forward_pre_hook(counter("audio_transformer"))
    model.flamingo_layers[1].decoder_layer.register_forward_pre_hook(counter("lm"))
    plain_loss, plain = loss_and_grads(model, False)
    assert calls == {"clap": 1, "audio_transformer": 1, "lm": 1}
    ckpt_loss, ckpt = loss_and_grads(model, True)
    # With checkpointing each part runs again in backward (recomputation): the switch reaches all three.
    # (Pre-hooks: recomputation stops early, before a module returns, once it has what backward needs.)
    assert calls == {"clap": 3, "audio_transformer": 3, "lm": 3}
    model.set_gradient_checkpointing(False)
    torch.testing.assert_close(ckpt_loss, plain_loss, rtol=0, atol=1e-6)
    assert plain.keys() == ckpt.keys()
    # Gradients reach every part: CLAP, audio transformer, cross-attention and LM.
    for part in ("clap.nvclap.layers.0.blocks.0.attn.qkv.weight", "audio_transformer_clap.layer_stack.0.slf_attn.w_qs.weight",
                 "lang_encoder.model.layers.1.gated_cross_attn_layer_sound.attn.to_kv.weight",
                 "lang_encoder.model.layers.0.decoder_layer.self_attn.q_proj.weight"):
        assert plain[part].abs().sum() > 0, part
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_loss_is_next_token_cross_entropy_over_labelled_tokens(tiny):
    ids = torch.stack([token_ids(9, 85), token_ids(9, 86)])
    labels = ids.clone()
    labels[0, :4] = -100
    labels[1, :6] = -100
    with torch.no_grad():
        memory = tiny.encode_audio(audio(2, 1, seed=87), all_true(2, 1))
        out = tiny(ids, memory=memory, labels=labels)
        logits = tiny(ids, memory=memory).logits
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                                 labels[:, 1:].reshape(-1), ignore_index=-100)
    assert out.n_tokens == (9 - 4) + (9 - 6)
    torch.testing.assert_close(out.loss, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.loss_sum, expected * out.n_tokens, rtol=1e-6, atol=1e-4)


def test_cast_bf16_keeps_rotary_tables_float32_and_runs(tiny):
    model = copy.deepcopy(tiny)
    before = {n: b.clone() for n, b in model.named_buffers() if n.endswith("inv_freq")}
    assert any(n.startswith("audio_transformer_clap") for n in before) and any(n.startswith("lang_encoder") for n in before)
    assert model.cast(torch.bfloat16) is model
    for name, buf in model.named_buffers():
        if name.endswith("inv_freq"):
            assert buf.dtype == torch.float32, name
            assert torch.equal(buf, before[name]), name
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    ids = token_ids(6, 90)[None]
    with torch.no_grad():
        memory = model.encode_audio(audio(1, 1, seed=91), all_true(1, 1))
        logits = model(ids, memory=memory).logits
        tokens = model.generate(memory, ids, torch.ones_like(ids), max_new_tokens=2, stop_ids=(), pad_id=PAD)
    assert memory.tokens.dtype == torch.bfloat16 and logits.dtype == torch.bfloat16
    assert torch.isfinite(logits.float()).all() and len(tokens[0]) == 2


@pytest.mark.parametrize("how", ["cast", "autocast"])
def test_bf16_training_through_laion_clap_fusion(tiny, how):
    """In train mode laion-clap sends random clips through its AFF fusion, which pads with float32 zeros; a bf16
    model (cast, or under bf16 autocast) must still run that path and produce finite gradients."""
    model = copy.deepcopy(tiny).train()
    if how == "cast":
        model.cast(torch.bfloat16)
    fused = []
    model.clap.nvclap.patch_embed.fusion_model.register_forward_hook(lambda m, a, out: fused.append(out.dtype))
    ids = token_ids(8, 92)[None].repeat(3, 1)
    windows = audio(3, 1, seed=93).to(next(model.parameters()).dtype)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if how == "autocast" else contextlib.nullcontext()
    torch.manual_seed(0)  # laion-clap draws which clips take the fusion path
    for _ in range(3):
        with context:
            out = model(ids, torch.ones_like(ids), labels=ids, windows=windows, window_mask=all_true(3, 1))
        out.loss_sum.float().backward()
    assert fused and set(fused) == {torch.bfloat16}  # the fusion path ran, in bf16
    grads = [p.grad for p in model.clap.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g.float()).all() for g in grads)


def test_a_saved_config_reads_back_equal_from_yaml_too(tmp_path):
    """save() writes JSON; under a .yaml name PyYAML alone would read rms_norm_eps 1e-06 back as text."""
    config = ModelConfig.from_dict(CUSTOM)
    for name in ("saved.yaml", "saved.json"):
        config.save(tmp_path / name)
        again = ModelConfig.from_file(tmp_path / name)
        assert again == config and isinstance(again.lm.rms_norm_eps, float)
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump(dict(CUSTOM, lm=dict(CUSTOM["lm"], hidden_size="wide"))))
    with pytest.raises(ValueError, match=r"text\.yaml: .*lm\.hidden_size: expected a number, got the text 'wide'"):
        ModelConfig.from_file(path)
