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


def test_afclap_prefix_is_read_as_nvclap(saved, tmp_path):
    model, folder = saved
    folder = copy_of(saved, tmp_path)
    renamed = 0
    for name in json.loads((folder / "safe_ckpt" / "metadata.json").read_text()):
        path = folder / "safe_ckpt" / f"{name}.safetensors"
        tensors = load_file(path)
        out = {}
        for key, value in tensors.items():
            if key.startswith("clap.nvclap."):
                key = "clap.afclap." + key[len("clap.nvclap."):]
                renamed += 1
            out[key] = value
        save_file(out, path)
    # Blank the pickle's copy: the values must come from the renamed safetensors keys.
    pickle = torch.load(folder / "clap_ckpt" / "epoch_16.pt", weights_only=True)
    torch.save({"state_dict": {k: torch.zeros_like(v) for k, v in pickle["state_dict"].items()}},
               folder / "clap_ckpt" / "epoch_16.pt")
    loaded, report = checkpoint.load(folder)
    assert renamed > 0 and report.renamed_afclap == renamed
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


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
