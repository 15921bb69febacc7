"""Release-layout checkpoint I/O: bit-exact round trip, strict key accounting, the release's duplicate and renamed
key families, and a CLAP pickle reader that refuses code but accepts numpy values."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from aqa_utils.model import build_model, checkpoint
from aqa_utils.model.checkpoint import CheckpointError

CHUNK_BYTES = 4 * 1024**2


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A seeded af2-tiny (non-zero gates, non-trivial batch-norm statistics) saved once in the release layout."""
    torch.manual_seed(0)
    model = build_model("af2-tiny").eval()
    with torch.no_grad():
        for i, (name, tensor) in enumerate(sorted(model.state_dict().items())):
            if "gate" in name or "running_" in name:
                tensor.copy_(torch.rand(tensor.shape) + 0.1 * i)
    folder = checkpoint.save(model, tmp_path_factory.mktemp("ckpt") / "af2", max_chunk_bytes=CHUNK_BYTES)
    return model, folder


def copy_of(saved, tmp_path):
    return shutil.copytree(saved[1], tmp_path / "copy")


def chunk_holding(folder, key: str):
    for name in json.loads((folder / "safe_ckpt" / "metadata.json").read_text()):
        path = folder / "safe_ckpt" / f"{name}.safetensors"
        tensors = load_file(path)
        if key in tensors:
            return path, tensors
    raise KeyError(key)


def test_layout_and_bit_exact_round_trip(saved):
    model, folder = saved
    assert (folder / "clap_ckpt" / "epoch_16.pt").is_file()
    names = json.loads((folder / "safe_ckpt" / "metadata.json").read_text())
    assert len(names) >= 3  # several chunks with a small max_chunk_bytes
    stored = {}
    for name in names:
        path = folder / "safe_ckpt" / f"{name}.safetensors"
        part = load_file(path)
        assert not set(part) & set(stored)  # every key in exactly one chunk
        stored.update(part)
    assert set(stored) == set(model.state_dict())
    pickle = checkpoint.read_clap_pickle(folder / "clap_ckpt" / "epoch_16.pt")
    assert all(k.startswith("module.audio_branch.") for k in pickle)
    assert len(pickle) == sum(k.startswith("clap.nvclap.") for k in stored)

    loaded, report = checkpoint.load(folder)
    assert loaded.config == model.config and not loaded.training
    assert report.loaded == len(model.state_dict()) and not report.missing and not report.unexpected
    assert report.clap_from_pickle == len(pickle) and report.duplicates_folded == 0
    original, again = model.state_dict(), loaded.state_dict()
    assert original.keys() == again.keys()
    for key, value in original.items():
        assert again[key].dtype == value.dtype and torch.equal(again[key], value), key
    lm = loaded.lang_encoder
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()  # still tied


def test_load_into_existing_model_and_bf16(saved):
    model, folder = saved
    target = build_model("af2-tiny")
    report = checkpoint.load_weights(target, folder)
    assert report.loaded == len(model.state_dict())
    assert all(torch.equal(target.state_dict()[k], v) for k, v in model.state_dict().items())
    half, _ = checkpoint.load(folder, dtype=torch.bfloat16)
    assert half.lang_encoder.model.embed_tokens.weight.dtype == torch.bfloat16
    assert half.audio_transformer_clap.position_enc.inv_freq.dtype == torch.float32


def test_missing_key_is_named(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    key = "lang_encoder.model.layers.1.decoder_layer.self_attn.k_proj.bias"
    path, tensors = chunk_holding(folder, key)
    del tensors[key]
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match="missing keys") as err:
        checkpoint.load(folder)
    assert key in str(err.value) and "unexpected" not in str(err.value)


def test_misspelled_key_names_missing_and_unexpected(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    key = "lang_encoder.model.layers.0.gated_cross_attn_layer_sound.attn.to_kv.weight"
    wrong = key.replace("to_kv", "to_kvv")
    path, tensors = chunk_holding(folder, key)
    tensors[wrong] = tensors.pop(key)
    save_file(tensors, path)
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(folder)
    message = str(err.value)
    assert "missing keys (1)" in message and key in message
    assert "unexpected keys (1)" in message and wrong in message


def test_shape_mismatch_is_named(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    key = "audio_transformer_clap.layer_stack.0.pos_ffn.w_1.bias"
    path, tensors = chunk_holding(folder, key)
    tensors[key] = torch.zeros(3)
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match="shape mismatches") as err:
        checkpoint.load(folder)
    assert key in str(err.value)


def test_missing_chunk_and_missing_pickle_are_errors(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    names = json.loads((folder / "safe_ckpt" / "metadata.json").read_text())
    (folder / "safe_ckpt" / f"{names[-1]}.safetensors").unlink()
    with pytest.raises(CheckpointError, match=f"{names[-1]}.safetensors"):
        checkpoint.load(folder)
    (folder / "clap_ckpt" / "epoch_16.pt").unlink()
    with pytest.raises(CheckpointError, match="epoch_16.pt"):
        checkpoint.load(folder)


def test_release_duplicate_families_are_folded(saved, tmp_path):
    model, folder = saved
    folder = copy_of(saved, tmp_path)
    state = model.state_dict()
    extra = {}
    for i in range(2):
        for key, value in state.items():
            for primary, alias in ((f"lang_encoder.model.layers.{i}.decoder_layer.", f"lang_encoder.old_decoder_blocks.{i}."),
                                   (f"lang_encoder.model.layers.{i}.gated_cross_attn_layer_sound.",
                                    f"lang_encoder.gated_cross_attn_layers_sound.{i}.")):
                if key.startswith(primary):
                    extra[alias + key[len(primary):]] = value.clone()
    assert any(k.startswith("lang_encoder.old_decoder_blocks.1.") for k in extra)
    assert any(k.startswith("lang_encoder.gated_cross_attn_layers_sound.0.attn.to_q") for k in extra)
    path, tensors = chunk_holding(folder, "lang_encoder.model.norm.weight")
    save_file({**tensors, **extra}, path)
    loaded, report = checkpoint.load(folder)
    assert report.duplicates_folded == len(extra)
    assert not report.missing and not report.unexpected
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


def _rename_clap_to_afclap(folder) -> int:
    renamed = 0
    for name in json.loads((folder / "safe_ckpt" / "metadata.json").read_text()):
        path = folder / "safe_ckpt" / f"{name}.safetensors"
        out = {}
        for key, value in load_file(path).items():
            if key.startswith("clap.nvclap."):
                key = "clap.afclap." + key[len("clap.nvclap."):]
                renamed += 1
            out[key] = value
        save_file(out, path)
    return renamed


def test_afclap_keys_are_ignored_loudly_as_official_and_loaded_on_request(saved, tmp_path):
    model, folder = saved
    folder = copy_of(saved, tmp_path)
    renamed = _rename_clap_to_afclap(folder)
    # Blank the pickle's copy: by default CLAP must come from it (the official inference ignores clap.afclap.*).
    pickle = torch.load(folder / "clap_ckpt" / "epoch_16.pt", weights_only=True)
    blank = {k: torch.zeros_like(v) for k, v in pickle["state_dict"].items()}
    torch.save({"state_dict": blank}, folder / "clap_ckpt" / "epoch_16.pt")
    differing = sum(bool(v.any()) for v in pickle["state_dict"].values())

    with pytest.warns(checkpoint.CheckpointWarning, match=r"IGNORED 113 clap\.afclap\.\* tensors") as caught:
        loaded, report = checkpoint.load(folder)
    assert renamed == 113 and report.renamed_afclap == 0 and len(report.afclap_ignored) == renamed
    assert "clap.afclap.bn0.running_mean" in report.afclap_ignored
    assert report.afclap_differing_from_pickle == differing
    assert "use_afclap=True" in str(caught[0].message) and "clap.afclap." in str(caught[0].message)
    assert "WARNING: IGNORED 113" in report.summary()
    for key, value in model.state_dict().items():
        expected = blank["module.audio_branch." + key[len("clap.nvclap."):]] if key.startswith("clap.nvclap.") \
            else value
        assert torch.equal(loaded.state_dict()[key], expected), key

    with pytest.warns(checkpoint.CheckpointWarning, match=r"DISAGREEING COPIES .*use_afclap=True"):
        loaded, report = checkpoint.load(folder, use_afclap=True)
    assert report.renamed_afclap == renamed and not report.afclap_ignored
    assert report.clap_from_safetensors == 113
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    # The opt-in still names every pickle tensor it overrode with a different value.
    assert {d.key for d in report.disagreements} == {
        k for k, v in model.state_dict().items() if k.startswith("clap.nvclap.") and v.any()}


def _official_reference_load(folder, config) -> dict[str, torch.Tensor]:
    """NVIDIA's steps (inference_HF_pretrained: factory.CLAP, flamingo_lm.FlamingoLMMixin, inference.py) on our
    module classes: CLAP loads the pickle's audio keys first; the Flamingo mixin registers old_decoder_blocks and
    gated_cross_attn_layers_sound on the LM after model and lm_head; the chunks are merged with dict.update and
    loaded with load_state_dict(strict=False)."""
    ref = build_model(config)
    pickle = torch.load(folder / "clap_ckpt" / "epoch_16.pt", weights_only=True)["state_dict"]
    ref.clap.nvclap.load_state_dict({k.replace("module.audio_branch.", ""): v for k, v in pickle.items()
                                     if "audio" in k}, strict=False)
    lm = ref.lang_encoder
    lm.old_decoder_blocks = torch.nn.ModuleList(layer.decoder_layer for layer in lm.model.layers)
    lm.gated_cross_attn_layers_sound = torch.nn.ModuleList(layer.gated_cross_attn_layer_sound
                                                           for layer in lm.model.layers)
    merged = {}
    for name in json.loads((folder / "safe_ckpt" / "metadata.json").read_text()):
        merged.update(load_file(folder / "safe_ckpt" / f"{name}.safetensors"))
    ref.load_state_dict(merged, strict=False)
    del lm.old_decoder_blocks, lm.gated_cross_attn_layers_sound
    return ref.state_dict()


def test_disagreeing_copies_end_as_the_official_load_and_are_named(saved, tmp_path):
    model, folder = saved
    folder = copy_of(saved, tmp_path)
    state = model.state_dict()
    names = json.loads((folder / "safe_ckpt" / "metadata.json").read_text())
    family_copies = {}
    for key, value in state.items():
        for primary, alias in (("lang_encoder.model.layers.{i}.decoder_layer.", "lang_encoder.old_decoder_blocks.{i}."),
                               ("lang_encoder.model.layers.{i}.gated_cross_attn_layer_sound.",
                                "lang_encoder.gated_cross_attn_layers_sound.{i}.")):
            for i in range(2):
                if key.startswith(primary.format(i=i)):
                    family_copies[alias.format(i=i) + key[len(primary.format(i=i)):]] = value.clone()
    changed = {  # duplicate-family copies that differ from the primary key's
        "lang_encoder.old_decoder_blocks.1.self_attn.q_proj.weight":
            "lang_encoder.model.layers.1.decoder_layer.self_attn.q_proj.weight",
        "lang_encoder.gated_cross_attn_layers_sound.0.attn.to_kv.weight":
            "lang_encoder.model.layers.0.gated_cross_attn_layer_sound.attn.to_kv.weight",
        "lang_encoder.gated_cross_attn_layers_sound.1.attn_gate":
            "lang_encoder.model.layers.1.gated_cross_attn_layer_sound.attn_gate",
    }
    for alias in changed:
        family_copies[alias] = family_copies[alias] + 0.25
    # The family copies go in the FIRST chunk, so the official result does not come from chunk order.
    path = folder / "safe_ckpt" / f"{names[0]}.safetensors"
    save_file({**load_file(path), **family_copies}, path)
    # Tied embeddings stored with different values; a key stored in two chunks with different values; a CLAP tensor
    # in the safetensors that differs from the pickle's.
    embed_path, tensors = chunk_holding(folder, "lang_encoder.lm_head.weight")
    tensors["lang_encoder.lm_head.weight"] = tensors["lang_encoder.lm_head.weight"] * 2
    save_file(tensors, embed_path)
    twice = "lang_encoder.model.norm.weight"
    first_path = folder / "safe_ckpt" / f"{names[0]}.safetensors"
    last_path = folder / "safe_ckpt" / f"{names[-1]}.safetensors"
    assert twice not in load_file(first_path) or twice not in load_file(last_path)
    save_file({**load_file(first_path), twice: state[twice] - 1}, first_path)
    save_file({**load_file(last_path), twice: state[twice] + 1}, last_path)
    clap_key = "clap.nvclap.bn0.running_mean"
    clap_path, tensors = chunk_holding(folder, clap_key)
    tensors[clap_key] = tensors[clap_key] + 3
    save_file(tensors, clap_path)

    with pytest.warns(checkpoint.CheckpointWarning, match="DISAGREEING COPIES"):
        loaded, report = checkpoint.load(folder)
    official = _official_reference_load(folder, model.config)
    ours = loaded.state_dict()
    assert ours.keys() == official.keys()
    for key in ours:
        assert torch.equal(ours[key], official[key]), key
    # The family copy won, and every disagreement is named with the key kept and the keys dropped.
    for alias, primary in changed.items():
        assert torch.equal(ours[primary], state[primary] + 0.25)
    by_key = {d.key: d for d in report.disagreements}
    assert set(by_key) == {*changed.values(), twice, clap_key, "lang_encoder.lm_head.weight"}
    for alias, primary in changed.items():
        assert by_key[primary].kept.startswith(alias) and by_key[primary].dropped[0].startswith(primary)
        assert by_key[primary].max_abs_diff == pytest.approx(0.25)
    assert by_key[twice].kept == f"{twice} (safe_ckpt/{names[-1]}.safetensors)"
    assert torch.equal(ours[twice], state[twice] + 1)
    assert by_key[clap_key].kept.endswith("safetensors)") and "epoch_16.pt" in by_key[clap_key].dropped[0]
    assert by_key["lang_encoder.lm_head.weight"].dropped == ["lang_encoder.model.embed_tokens.weight (checkpoint)"]
    assert torch.equal(ours["lang_encoder.model.embed_tokens.weight"], 2 * state["lang_encoder.lm_head.weight"])
    summary = report.summary()
    assert summary.count("WARNING: DISAGREEING COPIES") == 6
    assert all(alias in summary and primary in summary for alias, primary in changed.items())
    assert report.duplicates_folded == len(family_copies)


def test_clean_checkpoint_loads_without_warnings(saved, recwarn):
    _, report = checkpoint.load(saved[1])
    assert not report.warnings() and "\n" not in report.summary()
    assert not [w for w in recwarn if issubclass(w.category, checkpoint.CheckpointWarning)]


def test_clap_weights_can_come_from_the_pickle_only(saved, tmp_path):
    model, folder = saved
    folder = copy_of(saved, tmp_path)
    for name in json.loads((folder / "safe_ckpt" / "metadata.json").read_text()):
        path = folder / "safe_ckpt" / f"{name}.safetensors"
        tensors = {k: v for k, v in load_file(path).items() if not k.startswith("clap.")}
        save_file(tensors, path)
    pickle = torch.load(folder / "clap_ckpt" / "epoch_16.pt", weights_only=True)["state_dict"]
    pickle["module.text_branch.embeddings.weight"] = torch.ones(3, 2)  # CLAP's text half: ignored
    torch.save({"state_dict": pickle}, folder / "clap_ckpt" / "epoch_16.pt")
    loaded, report = checkpoint.load(folder)
    assert report.clap_pickle_ignored == 1
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


class RunsCode:
    """Unpickling this runs a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    marker = tmp_path / "pwned"
    pickle = torch.load(folder / "clap_ckpt" / "epoch_16.pt", weights_only=True)
    torch.save({**pickle, "callback": RunsCode(marker)}, folder / "clap_ckpt" / "epoch_16.pt")
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        checkpoint.load(folder)
    with pytest.raises(CheckpointError, match="trust_pickle"):
        checkpoint.read_clap_pickle(folder / "clap_ckpt" / "epoch_16.pt")
    assert not marker.exists()
    # The file really is hostile: trusting it runs the (harmless) command.
    checkpoint.read_clap_pickle(folder / "clap_ckpt" / "epoch_16.pt", trust_pickle=True)
    assert marker.exists()


def test_pickle_with_numpy_values_is_accepted(saved, tmp_path):
    model, folder = saved
    folder = copy_of(saved, tmp_path)
    pickle = torch.load(folder / "clap_ckpt" / "epoch_16.pt", weights_only=True)
    blob = {
        "state_dict": pickle["state_dict"],
        "epoch": np.int64(16),
        "best_score": np.float64(0.5),
        "lr": np.float32(1e-4),
        "history": np.arange(5, dtype=np.float32),
        "matrix": np.ones((2, 3)),
        "flag": np.bool_(True),
        "dtype": np.dtype("float16"),
    }
    torch.save(blob, folder / "clap_ckpt" / "epoch_16.pt")
    state = checkpoint.read_clap_pickle(folder / "clap_ckpt" / "epoch_16.pt")
    assert state.keys() == pickle["state_dict"].keys()
    loaded, report = checkpoint.load(folder)
    assert report.clap_from_pickle == len(state)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_pickle_without_state_dict_is_an_error(tmp_path):
    path = tmp_path / "epoch_16.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="state_dict"):
        checkpoint.read_clap_pickle(path)
