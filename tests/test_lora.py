"""LoRA through peft: the paper's exact counts on af2-3b (meta), target validation, a training step that touches
only the adapters, peft's save/load format and merging (af2-tiny on CPU)."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from aqa_utils.config import LoraSettings, ModelConfig
from aqa_utils.lora import (DOWNLOAD_RECORD, LoraTargetError, apply_lora, base_model_name, load_adapter,
                            lora_parameter_counts, merge, resolve_targets, save_adapter)
from aqa_utils.model import AF2Model, build_model

WINDOW = 160_000
# Adapted projections of af2-tiny: 4 CLAP stages x 1 qkv, 3 audio-transformer projections, q/k/v per LM layer.
TINY_LM_LAYERS = ModelConfig.preset("af2-tiny").lm.num_hidden_layers


def tiny_model(seed: int = 0, gate: float = 0.6) -> AF2Model:
    torch.manual_seed(seed)
    model = build_model("af2-tiny").eval()
    with torch.no_grad():  # open the gates: otherwise no gradient reaches CLAP or the audio transformer
        for layer in model.flamingo_layers:
            layer.gated_cross_attn_layer_sound.attn_gate.fill_(gate)
            layer.gated_cross_attn_layer_sound.ff_gate.fill_(gate)
    return model


def audio(batch: int, windows: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(WINDOW) / 16_000
    freqs = 200 + 1800 * torch.rand(batch, windows, 1, generator=g)
    return 0.2 * torch.randn(batch, windows, WINDOW, generator=g) + 0.5 * torch.sin(2 * math.pi * freqs * t)


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 500, (2, 9), generator=g)  # ordinary tokens of af2-tiny's vocabulary
    labels = ids.clone()
    labels[:, :4] = -100
    return dict(input_ids=ids, attention_mask=torch.ones_like(ids), windows=audio(2, 1, seed + 1),
                window_mask=torch.ones(2, 1, dtype=torch.bool), labels=labels)


def randomise_lora_b(peft_model, seed: int = 0) -> None:
    """Fresh adapters are the identity (B = 0); give them weight so that save/load/merge are really tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


# --------------------------------------------------------------------------------------------------- af2-3b counts
@pytest.fixture(scope="module")
def af2_3b():
    return build_model("af2-3b", device="meta")


PAPER = {8: 3_375_104, 16: 6_750_208, 32: 13_500_416}


def test_lora_counts_match_the_paper_at_every_rank(af2_3b):
    targets = resolve_targets(af2_3b, LoraSettings())
    assert {k: len(v) for k, v in targets.items()} == {"clap": 18, "audio_transformer": 9, "lm": 108}
    assert not any("gated_cross_attn" in n for names in targets.values() for n in names)
    model = af2_3b
    for rank, total in PAPER.items():
        peft_model = apply_lora(model, LoraSettings(rank=rank))
        counts = lora_parameter_counts(peft_model)
        assert counts == {"clap": 71_680 * rank, "audio_transformer": 36_864 * rank, "lm": 313_344 * rank,
                          "total": total}, rank
        if rank == 8:
            assert (counts["clap"], counts["audio_transformer"], counts["lm"]) == (573_440, 294_912, 2_506_752)
        # Only the adapters train; nothing was allocated off the meta device.
        trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
        assert trainable and all("lora_" in n for n in trainable)
        assert sum(p.numel() for p in peft_model.parameters() if p.requires_grad) == total
        assert {p.device.type for p in peft_model.parameters()} == {"meta"}
        model = peft_model.unload()  # back to the plain base for the next rank
        assert not any("lora_" in n for n, _ in model.named_parameters())


# --------------------------------------------------------------------------------------------------- validation
@pytest.fixture(scope="module")
def tiny() -> AF2Model:
    """Shared af2-tiny for the validation tests (which must leave it unchanged)."""
    return tiny_model()


def test_pattern_matching_nothing_is_rejected(tiny):
    model = tiny
    settings = LoraSettings(targets=dict(LoraSettings().targets, lm=r"lang_encoder\..*\.query_proj"))
    with pytest.raises(LoraTargetError, match="lm: pattern .* matches no module"):
        resolve_targets(model, settings)
    with pytest.raises(LoraTargetError):
        apply_lora(model, settings)
    assert not any("lora_" in n for n, _ in model.named_parameters())


def test_lm_pattern_catching_cross_attention_names_the_strays(tiny):
    model = tiny
    settings = LoraSettings(components=("lm",), targets={"lm": r"lang_encoder\..*(to_q|q_proj)"})
    with pytest.raises(LoraTargetError) as err:
        resolve_targets(model, settings)
    message = str(err.value)
    assert "other components" in message
    for i in (0, 1):
        assert f"lang_encoder.model.layers.{i}.gated_cross_attn_layer_sound.attn.to_q" in message
    assert "decoder_layer.self_attn.q_proj'" not in message  # the legitimate matches are not called strays


def test_unknown_component_and_non_linear_targets_are_rejected(tiny):
    model = tiny
    with pytest.raises(LoraTargetError, match="'vision'"):
        resolve_targets(model, LoraSettings(components=("lm", "vision")))
    settings = LoraSettings(components=("clap",), targets={"clap": r"clap\.nvclap\.layers\.\d+\.blocks\.\d+\.attn"})
    with pytest.raises(LoraTargetError, match="non-Linear"):
        resolve_targets(model, settings)


def test_tiny_targets_resolve_per_component(tiny):
    model = tiny
    found = resolve_targets(model, LoraSettings())
    assert found["clap"] == [f"clap.nvclap.layers.{i}.blocks.0.attn.qkv" for i in range(4)]
    assert found["audio_transformer"] == [f"audio_transformer_clap.layer_stack.0.slf_attn.{p}"
                                          for p in ("w_qs", "w_ks", "w_vs")]
    assert found["lm"] == [f"lang_encoder.model.layers.{i}.decoder_layer.self_attn.{p}_proj"
                           for i in range(TINY_LM_LAYERS) for p in "qkv"]


# --------------------------------------------------------------------------------------------------- training
def test_one_step_trains_only_the_adapters_with_checkpointing():
    model = tiny_model(seed=1)
    model.train()  # already in train mode when the adapters are added: batch norm must still freeze
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    base_buffers = {k: v.clone() for k, v in model.named_buffers()}
    assert any("running_mean" in k for k in base_buffers)
    peft_model = apply_lora(model, LoraSettings(rank=4))
    peft_model.get_base_model().set_gradient_checkpointing(True)
    assert all(layer.gradient_checkpointing for layer in model.flamingo_layers)
    trainable = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n, _ in trainable)
    assert all(not p.requires_grad for n, p in peft_model.named_parameters() if "lora_" not in n)
    opt = torch.optim.AdamW([p for _, p in trainable], lr=1e-2)
    torch.manual_seed(5)
    loss = peft_model(**batch(0)).loss
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    lora_b = {n: p for n, p in peft_model.named_parameters() if "lora_B" in n}
    assert len(lora_b) == 4 + 3 + 3 * TINY_LM_LAYERS
    for name, p in lora_b.items():
        assert p.norm() > 0, f"{name} did not move"
    # Every base parameter and buffer (batch-norm running statistics and counters included) is untouched.
    base = peft_model.get_base_model()
    after = {k.replace(".base_layer", ""): v for k, v in base.state_dict().items() if "lora_" not in k}
    assert after.keys() == base_state.keys()
    for key, value in base_state.items():
        assert torch.equal(after[key], value), key
    for key, value in base.named_buffers():
        key = key.replace(".base_layer", "")
        if key in base_buffers:
            assert torch.equal(value, base_buffers[key]), key


# --------------------------------------------------------------------------------------------------- save / merge
def logits(model, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 500, (1, 8), generator=g)
    with torch.no_grad():
        return model(input_ids=ids, windows=audio(1, 1, seed + 1), window_mask=torch.ones(1, 1, dtype=torch.bool)).logits


def test_adapter_save_load_round_trip_and_merge(tmp_path):
    base = tiny_model(seed=2)
    fresh = copy.deepcopy(base)
    base_keys = set(base.state_dict())
    peft_model = apply_lora(base, LoraSettings(rank=4, alpha=8))
    randomise_lora_b(peft_model)
    peft_model.eval()
    adapted = logits(peft_model)
    assert not torch.allclose(adapted, logits(fresh), atol=1e-4)  # the adapters do something

    folder = save_adapter(peft_model, tmp_path / "adapter", base_model="af2-tiny")
    assert (folder / "adapter_config.json").exists()
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8 and config["base_model_name_or_path"] == "af2-tiny"
    assert not (folder / "README.md").exists()  # peft's empty template; model_card writes the real one
    tensors = load_file(folder / "adapter_model.safetensors")
    assert tensors and all("lora_A" in k or "lora_B" in k for k in tensors)
    assert len(tensors) == 2 * (4 + 3 + 3 * TINY_LM_LAYERS)

    loaded = load_adapter(fresh, folder).eval()
    assert all(not p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(logits(loaded), adapted, rtol=0, atol=0)

    merged = merge(peft_model).eval()
    assert isinstance(merged, AF2Model)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert set(merged.state_dict()) == base_keys
    torch.testing.assert_close(logits(merged), adapted, rtol=0, atol=1e-5)


def test_load_adapter_trainable_freezes_the_base(tmp_path):
    peft_model = apply_lora(tiny_model(seed=4), LoraSettings(rank=2))
    folder = save_adapter(peft_model, tmp_path / "a")
    loaded = load_adapter(tiny_model(seed=4), folder, trainable=True)
    trainable = {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert lora_parameter_counts(loaded) == lora_parameter_counts(peft_model)
    assert loaded.get_base_model().clap.freeze_batchnorm


def test_the_adapter_names_its_base_without_a_path_of_this_machine(tmp_path):
    release = tmp_path / "downloads" / "audio-flamingo-2"
    release.mkdir(parents=True)
    assert base_model_name(release, "af2-3b") == "audio-flamingo-2"  # no download record: the folder's name
    (release / DOWNLOAD_RECORD).write_text(json.dumps({"repo": "nvidia/audio-flamingo-2", "revision": "main"}))
    assert base_model_name(release, "af2-3b") == "nvidia/audio-flamingo-2"
    assert base_model_name(tmp_path / "work" / "base" / "af2-tiny", "af2-tiny") == "af2-tiny"
    assert base_model_name(None, "af2-tiny") == "af2-tiny"  # random initialisation: the preset
    (release / DOWNLOAD_RECORD).write_text("{not json")
    with pytest.raises(ValueError, match=r"\.aqa_download\.json: unreadable download record"):
        base_model_name(release, "af2-3b")


def test_the_download_record_name_is_the_one_download_af2_writes():
    from aqa_utils.download.af2 import RECORD_FILE

    assert DOWNLOAD_RECORD == RECORD_FILE
