"""Recipes (configs/*.yaml, aqa_utils/recipe.py): every hyperparameter in the file, clear errors naming the file,
the two real recipes saying what the issue asks, and the workbook's profiles taking their LoRA settings from them."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from aqa_utils import workbook
from aqa_utils.config import LoraSettings, TrainConfig
from aqa_utils.recipe import OPTIONAL_LORA, RUN_FIELDS, EvalRecipe, Recipe, available

REPO = Path(__file__).resolve().parents[1]
HYPERPARAMETERS = {f.name for f in fields(TrainConfig)} - set(RUN_FIELDS)


def raw(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())


@pytest.fixture()
def no_settings(monkeypatch):
    for key in ("AQA_DCASE_ROOT", "AQA_AF2_CHECKPOINT", "AQA_MODEL", "AQA_CONFIG", "AQA_TRAIN_SPLIT", "AQA_PROFILE",
                "AQA_RECIPE"):
        monkeypatch.delenv(key, raising=False)


def test_every_recipe_file_states_every_hyperparameter():
    assert set(available()) == {"report", "local", "tiny/full", "tiny/quick", "tiny/ci"}
    for name in available():
        data = raw(name)
        assert set(data["train"]) == HYPERPARAMETERS, name
        assert set(data["train"]["lora"]) == {f.name for f in fields(LoraSettings)} - set(OPTIONAL_LORA), name
        assert set(data["evaluate"]) == {f.name for f in fields(EvalRecipe)}, name
        recipe = Recipe.load(name)
        assert recipe.name == name and recipe.train.recipe == f"configs/{name}.yaml"
        assert recipe.train.lr == data["train"]["lr"] and recipe.evaluate.split == data["evaluate"]["split"]


def test_the_report_recipe_trains_on_dev_and_answers_eval_into_a_checked_submission():
    report = Recipe.load("report")
    assert report.train.train_split == "dev" and report.train.val_split is None
    assert report.ranks == (8, 16, 32) and report.train.lora.components == ("clap", "audio_transformer", "lm")
    assert report.train.model == "af2-3b" and report.train.corpus == "questions"
    ev = report.evaluate
    assert ev.split == "eval" and ev.check_submission and not ev.skip_bad_data and ev.permutations == 0


def test_the_local_recipe_differs_from_the_report_only_in_its_data_and_scores_dev_with_every_metric():
    local, report = raw("local")["train"], raw("report")["train"]
    differ = {k for k in local if local[k] != report[k]}
    assert differ == {"train_split", "val_split", "eval_per_epoch", "max_val_examples"}
    assert local["train_split"] == "train" and local["val_split"] == "dev"
    ev = Recipe.load("local").evaluate
    assert ev.split == "dev" and ev.mode == "both" and ev.permutations > 0 and not ev.check_submission


def test_where_the_report_is_silent_the_file_says_so():
    """lr, epochs, batch, alpha and dropout: the report does not give them; each line says SILENT and why."""
    lines = (REPO / "configs" / "report.yaml").read_text().splitlines()
    for key in ("lr", "epochs", "batch_size", "alpha", "dropout"):
        line = next(line for line in lines if line.strip().startswith(f"{key}:"))
        assert "SILENT" in line and len(line.split("SILENT.", 1)[1].strip()) > 20, key


def write_recipe(tmp_path: Path, change) -> Path:
    data = raw("tiny/ci")
    change(data)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda d: d["train"].pop("lr"), r"mine\.yaml: train: missing \['lr'\]"),
    (lambda d: d["train"]["lora"].pop("dropout"), r"mine\.yaml: train\.lora: missing \['dropout'\]"),
    (lambda d: d["evaluate"].pop("split"), r"mine\.yaml: evaluate: missing \['split'\]"),
    (lambda d: d["train"].update(learning_rate=1.0), r"mine\.yaml: train: unknown field\(s\) \['learning_rate'\]"),
    (lambda d: d.update(extra=1), r"mine\.yaml: unknown key\(s\) \['extra'\]"),
    (lambda d: d["train"].update(out_dir="runs/x"), r"mine\.yaml: train: \['out_dir'\] say where a run lives"),
    (lambda d: d["train"]["lora"].update(rank=4), r"mine\.yaml: train\.lora\.rank 4 is not among ranks"),
    (lambda d: d.update(train=[1, 2]), r"mine\.yaml: train: expected a mapping"),
    (lambda d: d.update(lr_grid=[1.0e-4, 5.0e-4]), r"mine\.yaml: with lr_grid .* train\.lr \(0\.002\) must be one"),
    (lambda d: d["train"].update(val_split="train.fit"), r"mine\.yaml: with lr_grid .* a split other than"),
])
def test_a_bad_recipe_is_refused_naming_the_file_and_the_problem(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        Recipe.load(write_recipe(tmp_path, change))


def test_an_unknown_recipe_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"no recipe 'reprot'.*'report'"):
        Recipe.load("reprot")
    (tmp_path / "broken.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        Recipe.load(tmp_path / "broken.yaml")


@pytest.mark.parametrize("name", ["full", "quick", "ci"])
def test_the_tiny_profiles_lora_configs_are_the_yaml_values(no_settings, name):
    """One file holds each recipe's numbers: every system's derived config carries the YAML's values (its own rank
    and seed aside), and the profile's evaluation settings are the YAML's."""
    prof = workbook.profile(name)
    data = raw(f"tiny/{name}")
    assert prof.recipe == f"tiny/{name}" and prof.ranks == tuple(data["ranks"])
    for system in prof.systems()[1:]:
        cfg = json.loads(json.dumps(prof.lora_config(system).to_dict()))  # tuples as the YAML's lists
        for key, value in data["train"].items():
            if key == "lora":
                assert cfg["lora"] == {**value, "rank": system.rank, "targets": LoraSettings().targets}, system
            elif key == "seed":
                assert cfg[key] == system.seed
            else:
                assert cfg[key] == value, key
        assert cfg["recipe"] == f"configs/tiny/{name}.yaml"
    ev = data["evaluate"]
    assert (prof.eval_permutations, prof.eval_limit, prof.eval_max_new_tokens) == \
        (ev["permutations"], ev["limit"], ev["max_new_tokens"])


def test_the_released_weights_bring_the_real_recipe_to_the_full_profile(no_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("AQA_AF2_CHECKPOINT", str(tmp_path / "af2"))
    monkeypatch.setenv("AQA_DCASE_ROOT", str(tmp_path / "dcase"))
    local = workbook.profile("full")
    cfg = local.lora_config(local.lora_system(16))
    assert local.recipe == "local" and cfg.train_split == "train" and cfg.lr == raw("local")["train"]["lr"]
    assert cfg.lora.rank == 16 and cfg.lora.lora_alpha == 32 and cfg.checkpoint == str(tmp_path / "af2")
    monkeypatch.setenv("AQA_RECIPE", "report")
    report = workbook.profile("full")
    assert report.recipe == "report" and report.lora_config(report.lora_system(8)).train_split == "dev"
    assert workbook.profile("ci").recipe == "tiny/ci"  # make test stays a short smoke run whatever the weights


def test_seeds_are_read_and_checked(no_settings, tmp_path):
    """The full miniature trains every rank at three seeds (one seed decides nothing); a recipe without ``seeds``
    trains one; repeated seeds are refused, naming the file."""
    assert workbook.profile("full").seeds == (0, 1, 2) and workbook.profile("ci").seeds == (0,)
    assert len(workbook.profile("full").systems()) == 1 + 3 * 3
    text = (Path(__file__).resolve().parents[1] / "configs" / "tiny" / "ci.yaml").read_text()
    (tmp_path / "twice.yaml").write_text("seeds: [1, 1]\n" + text)
    with pytest.raises(ValueError, match=r"twice\.yaml: seeds must be distinct"):
        Recipe.load(tmp_path / "twice.yaml")


def test_the_learning_rate_grid_is_read_and_chosen_on_a_carved_validation_split(no_settings):
    """The full miniature picks its rate among several on train.val and trains on train.fit: neither is dev, the
    split every result is reported on."""
    for name in ("full", "ci"):
        prof = workbook.profile(name)
        assert len(prof.lr_grid) >= 2 and prof.lora_recipe.lr in prof.lr_grid
        assert (prof.train_split, prof.lora_recipe.val_split) == ("train.fit", "train.val")
        system = prof.lora_system(8)
        assert prof.lora_config(system, prof.lr_grid[-1]).lr == prof.lr_grid[-1]
        assert prof.lora_config(system).lr == prof.lora_recipe.lr


def test_the_quick_profile_is_the_full_one_with_one_seed_at_the_rate_the_full_sweep_chose(no_settings):
    full, quick = workbook.profile("full"), workbook.profile("quick")
    assert quick.seeds == (0,) and not quick.lr_grid and quick.mini_sizes == full.mini_sizes
    stages = ("encoder_stage", "base_stage", "copy_stage", "facts_stage")
    assert [getattr(quick, k).to_dict() for k in stages] == [getattr(full, k).to_dict() for k in stages]
    assert quick.results_dir != full.results_dir and quick.base_dir != full.base_dir  # never overwrites results/
    differs = {k for k, v in quick.lora_recipe.to_dict().items() if v != full.lora_recipe.to_dict()[k]}
    assert differs <= {"recipe"}
    sweep = Path(__file__).resolve().parents[1] / "results" / "lr_sweep.json"
    if sweep.exists():  # the committed full run's choice
        assert quick.lora_recipe.lr == json.loads(sweep.read_text())["chosen"]


def test_exponents_without_a_dot_are_numbers(tmp_path):
    """PyYAML alone reads `lr: 1e-4` as the text "1e-4"; recipes (and model configs) read it as 0.0001."""
    path = tmp_path / "short.yaml"
    text = (REPO / "configs" / "tiny" / "ci.yaml").read_text()
    path.write_text(re.sub(r"(?m)^(\s+lr:) 2\.0e-3", r"\1 2e-3", text).replace("[1.0e-3, 2.0e-3]", "[1e-3, 2e-3]"))
    assert "lr: 2e-3" in path.read_text() and yaml.safe_load(path.read_text())["train"]["lr"] == "2e-3"
    recipe = Recipe.load(path)
    assert recipe.train.lr == 2e-3 and recipe.lr_grid == (1e-3, 2e-3)


def test_a_number_given_as_text_is_refused_naming_the_file_and_field(tmp_path):
    path = write_recipe(tmp_path, lambda d: d["train"].update(lr="fast"))
    with pytest.raises(ValueError, match=r"mine\.yaml: .*lr: expected a number, got the text 'fast'"):
        Recipe.load(path)
