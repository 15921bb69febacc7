"""``python -m aqa_utils params``: per-component and LoRA counts, JSON and table output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aqa_utils.__main__ import main
from aqa_utils.params import component_counts, parameter_table
from aqa_utils.model import build_model


def test_params_json_af2_3b_lora_rank_8(capsys):
    assert main(["params", "--model", "af2-3b", "--lora-rank", "8", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["model"] == "af2-3b" and table["lora_rank"] == 8
    assert table["parameters"] == {
        "clap": 278_770_007,
        "audio_transformer": 75_538_432,
        "xattn": 1_359_249_480,
        "lm": 3_085_391_872,
        "total": 4_798_949_791,
    }
    assert table["lora"] == {"clap": 573_440, "audio_transformer": 294_912, "lm": 2_506_752, "total": 3_375_104}


def test_params_table_for_a_config_file(tmp_path, capsys):
    from aqa_utils.config import ModelConfig

    path = tmp_path / "tiny.json"
    ModelConfig.preset("af2-tiny").save(path)
    assert main(["params", "--model", str(path), "--lora-rank", "2"]) == 0
    out = capsys.readouterr().out
    expected = component_counts(build_model("af2-tiny", device="meta"))
    assert "model: af2-tiny" in out and "lora_rank: 2" in out
    assert f"{expected['lm']:>15,}" in out and f"{expected['total']:>15,}" in out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ")}
    assert int(lines["xattn"].replace(",", "")) == expected["xattn"]
    table = parameter_table(str(path), 2)
    assert table["parameters"] == expected
    assert table["lora"]["total"] == sum(v for k, v in table["lora"].items() if k != "total") > 0


def test_params_without_lora_has_no_lora_section(capsys):
    assert main(["params", "--model", "af2-tiny", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert "lora" not in table and "lora_rank" not in table
    assert table["parameters"]["total"] == sum(v for k, v in table["parameters"].items() if k != "total")


def test_unknown_model_is_an_error():
    with pytest.raises(ValueError, match="neither a preset"):
        main(["params", "--model", "af2-13b"])


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "aqa_utils", "params", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--lora-rank" in proc.stdout
