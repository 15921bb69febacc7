"""The CLI: ``params`` (per-component and LoRA counts, JSON and table output); ``train`` and ``evaluate`` reading a
recipe (configs/*.yaml) that their flags override; ``train --push-to-hub``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aqa_utils.__main__ import EVALUATE_DEFAULTS, _evaluate_plan, _train_config, build_parser, main
from aqa_utils.params import component_counts, parameter_table
from aqa_utils.model import build_model

REPO = Path(__file__).resolve().parents[1]


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


# --- train / evaluate with a recipe (configs/*.yaml) ------------------------------------------------------------------

def parse(argv: list[str]):
    return build_parser().parse_args(argv)


def recipe_values(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())


def test_train_reads_a_recipe_and_the_flags_override_it():
    cfg = _train_config(parse(["train", "--recipe", "report", "--data", "dcase", "--out", "runs/r16",
                               "--lora-rank", "16", "--lr", "1e-4"]))
    values = recipe_values("report")["train"]
    assert cfg.recipe == "configs/report.yaml" and cfg.train_split == "dev" and cfg.epochs == values["epochs"]
    assert cfg.batch_size == values["batch_size"] and cfg.grad_accum == values["grad_accum"]
    assert cfg.lr == 1e-4 and cfg.lora.rank == 16 and cfg.lora.lora_alpha == 32  # alpha: the recipe's 2 x rank rule
    assert (cfg.data_root, cfg.out_dir) == ("dcase", "runs/r16")


def test_train_takes_a_recipe_or_a_config_file_not_both(capsys):
    with pytest.raises(SystemExit):
        parse(["train", "--recipe", "report", "--config", "train.yaml"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_push_to_hub_publishes_the_finished_adapter_through_the_seam(monkeypatch, tmp_path, capsys):
    import aqa_utils.training
    from aqa_utils import model_card

    class FakeTrainer:
        def __init__(self, cfg):
            self.cfg = cfg

        def fit(self):
            return {"final": str(tmp_path / "final")}

    pushed = []
    monkeypatch.setattr(aqa_utils.training, "Trainer", FakeTrainer)
    monkeypatch.setattr(model_card, "push_to_hub", lambda folder, repo, private: pushed.append((folder, repo, private))
                        or f"hub://{repo}")
    assert main(["train", "--recipe", "tiny/ci", "--push-to-hub", "me/af2-lora"]) == 0
    assert pushed == [(str(tmp_path / "final"), "me/af2-lora", True)] and "published: hub://me/af2-lora" in \
        capsys.readouterr().out
    with pytest.raises(SystemExit, match="publishes a LoRA adapter"):
        main(["train", "--mode", "full", "--push-to-hub", "me/af2-lora"])


def test_evaluate_takes_its_split_and_settings_from_the_recipe_and_the_flags_win():
    from aqa_utils.evaluation import EvalSettings

    plan, settings = _evaluate_plan(parse(["evaluate", "--checkpoint", "c", "--data", "d", "--recipe", "report",
                                           "--out", "o"]))
    values = recipe_values("report")["evaluate"]
    assert plan == {**EVALUATE_DEFAULTS, "split": "eval", "skip_bad_data": False, "check_submission": True}
    assert settings["mode"] == values["mode"] and settings["max_new_tokens"] == values["max_new_tokens"]
    plan, settings = _evaluate_plan(parse(["evaluate", "--checkpoint", "c", "--data", "d", "--recipe", "local",
                                           "--split", "eval", "--mode", "score"]))
    assert plan["split"] == "eval" and settings["mode"] == "score"
    assert settings["permutations"] == recipe_values("local")["evaluate"]["permutations"]
    EvalSettings(**settings)  # every key is a setting


def test_evaluate_without_a_recipe_keeps_its_defaults_and_a_submission_check_needs_out():
    plan, settings = _evaluate_plan(parse(["evaluate", "--checkpoint", "c", "--data", "d"]))
    assert plan == EVALUATE_DEFAULTS and settings == {"mode": "both", "batch_size": 16, "permutations": 0,
                                                      "limit": None}
    with pytest.raises(SystemExit, match="needs --out"):
        _evaluate_plan(parse(["evaluate", "--checkpoint", "c", "--data", "d", "--recipe", "report"]))
    plan, _ = _evaluate_plan(parse(["evaluate", "--checkpoint", "c", "--data", "d", "--submission-example", "x.csv",
                                    "--out", "o"]))
    assert plan["check_submission"]
