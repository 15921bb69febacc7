"""The model card next to an adapter (aqa_utils/model_card.py), generated from the run's files; publishing it behind
a seam (never the network here); and the whole path through the CLI: train with a recipe, evaluate, card updated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from aqa_utils import config as config_module
from aqa_utils import model_card
from aqa_utils import recipe as recipe_module
from aqa_utils.__main__ import main
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.model import build_model
from aqa_utils.model import checkpoint as release
from aqa_utils.submission import SubmissionError


def fake_run(tmp_path: Path, val_loss=0.4321, lr=0.003) -> Path:
    """A run folder as the trainer writes it, with made-up numbers that the card must repeat."""
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    train = {"model": "af2-tiny", "recipe": "configs/tiny/full.yaml", "data_root": "data/mini", "train_split": "train",
             "val_split": "dev", "corpus": "questions", "lr": lr, "schedule": "cosine", "warmup_steps": 10,
             "weight_decay": 0.0, "seed": 0, "lora": {"components": ["clap", "audio_transformer", "lm"]}}
    (run / "config.json").write_text(json.dumps({"train": train, "model": {"name": "af2-tiny"}}))
    (run / "summary.json").write_text(json.dumps({
        "steps": 480, "examples": 480, "global_batch": 8, "val_loss": val_loss, "load": "200 tensors loaded",
        "lora_parameters": {"clap": 3840, "audio_transformer": 3072, "lm": 15360, "total": 22272}}))
    (run / "final" / "adapter_config.json").write_text(json.dumps(
        {"r": 8, "lora_alpha": 16.0, "lora_dropout": 0.05, "base_model_name_or_path": "af2-tiny"}))
    (run / "final" / "adapter_model.safetensors").write_bytes(b"weights")
    return run / "final"


def metrics_file(tmp_path: Path, micro: float, split_has_answers: bool = True) -> Path:
    per_subset = {"BQA": 0.65, "TSQA": 0.4125, "CQA": 0.5625}
    report = {"micro": micro, "domain_average": micro - 0.01, "per_subset": per_subset,
              "unparsed_rate": 0.0, "counts": {"scored": 240}} if split_has_answers else {"counts": {"rows": 60}}
    path = tmp_path / f"metrics_{micro}.json"
    path.write_text(json.dumps({"n_questions": 240, "settings": {"mode": "score"}, "metrics": {"score": report}}))
    return path


def test_the_card_says_what_was_trained_on_what_with_which_recipe_from_the_run_files(tmp_path):
    adapter = fake_run(tmp_path)
    card = model_card.write_card(adapter).read_text()
    assert card.startswith("---\nlibrary_name: peft\nbase_model: af2-tiny\n")
    assert "LoRA r=8 on af2-tiny" in card and "rank 8, alpha 16.0, dropout 0.05" in card
    assert "Trainable parameters: 22,272 (clap 3,840, audio_transformer 3,072, lm 15,360)" in card
    assert "Split `train` of `data/mini` (480 questions)" in card and "peak lr 0.003" in card
    assert "`configs/tiny/full.yaml`" in card and "Final validation loss on `dev`: 0.4321" in card
    assert "Not evaluated yet" in card
    # the numbers come from the files: other files, other card
    other = model_card.write_card(fake_run(tmp_path / "b", val_loss=0.9, lr=0.0002)).read_text()
    assert "0.9000" in other and "peak lr 0.0002" in other and "0.4321" not in other


def test_recorded_evaluations_appear_per_split_and_a_rerun_replaces_its_split(tmp_path):
    adapter = fake_run(tmp_path)
    model_card.record_evaluation(adapter, "dev", metrics_file(tmp_path, 0.541667))
    card = (adapter / "README.md").read_text()
    assert "| dev | score | 240 | 54.2 | 53.2 | BQA 65.0, TSQA 41.2, CQA 56.2 | 0.0 |" in card
    model_card.record_evaluation(adapter, "dev", metrics_file(tmp_path, 0.6))
    model_card.record_evaluation(adapter, "eval", metrics_file(tmp_path, 0.0, split_has_answers=False))
    card = (adapter / "README.md").read_text()
    assert "54.2" not in card and "| dev | score | 240 | 60.0 |" in card
    assert "| eval | score | 240 | no answers to score |" in card
    assert set(json.loads((adapter / "evaluations.json").read_text())) == {"dev", "eval"}


def test_a_card_without_its_run_files_is_refused_naming_the_file(tmp_path):
    adapter = fake_run(tmp_path)
    (adapter.parent / "summary.json").unlink()
    with pytest.raises(ValueError, match=r"summary\.json: cannot build the model card"):
        model_card.write_card(adapter)


def test_push_to_hub_goes_through_the_seam_with_the_finished_adapter(tmp_path):
    adapter = fake_run(tmp_path)
    calls = []
    fake = lambda folder, repo, private: calls.append((folder, repo, private)) or f"hub://{repo}"  # noqa: E731
    with pytest.raises(ValueError, match=r"final: not a finished adapter with its card, missing \['README.md'\]"):
        model_card.push_to_hub(adapter, "me/af2-lora", upload=fake)
    model_card.write_card(adapter)
    assert model_card.push_to_hub(adapter, "me/af2-lora", upload=fake) == "hub://me/af2-lora"
    assert calls == [(adapter, "me/af2-lora", True)]


def test_the_real_upload_lifts_the_offline_switch_for_its_own_calls_only(tmp_path, monkeypatch):
    """huggingface_hub's HfApi replaced by a recorder: no network; the calls see online mode, the rest offline."""
    import huggingface_hub
    from huggingface_hub import constants

    seen = []

    class RecordingApi:
        def create_repo(self, repo_id, **kw):
            seen.append(("create_repo", repo_id, kw["private"], constants.HF_HUB_OFFLINE))

        def upload_folder(self, folder_path, repo_id, **kw):
            seen.append(("upload_folder", Path(folder_path), sorted(kw["allow_patterns"]), constants.HF_HUB_OFFLINE))

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    adapter = fake_run(tmp_path)
    model_card.write_card(adapter)
    assert model_card.push_to_hub(adapter, "me/af2-lora", private=False) == "https://huggingface.co/me/af2-lora"
    assert seen[0] == ("create_repo", "me/af2-lora", False, False)
    assert seen[1][:2] == ("upload_folder", adapter) and "README.md" in seen[1][2] and seen[1][3] is False
    assert constants.HF_HUB_OFFLINE is True


def test_train_with_a_recipe_then_evaluate_fills_the_card_and_writes_repo_relative_files(tmp_path, monkeypatch):
    """The CLI end to end on af2-tiny: the run's files hold no path of this machine when they live in the repo."""
    for module in (config_module, recipe_module):  # this folder plays the repository, with its own configs/
        monkeypatch.setattr(module, "repo_root", lambda: tmp_path)
    (tmp_path / "configs" / "tiny").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "configs" / "tiny" / "ci.yaml", tmp_path / "configs" / "tiny")
    data = make_mini_benchmark(tmp_path / "data" / "mini", seed=0, n_train=8, n_dev=4, n_eval=2, n_captions_train=2,
                               n_captions_dev=2)
    torch.manual_seed(0)
    release.save(build_model("af2-tiny"), tmp_path / "work" / "base" / "af2-tiny")
    base, out = tmp_path / "work" / "base" / "af2-tiny", tmp_path / "results" / "runs" / "lora_r8"
    assert main(["train", "--recipe", "tiny/ci", "--checkpoint", str(base), "--data", str(data), "--out", str(out),
                 "--max-steps", "1", "--batch-size", "2"]) == 0
    saved = json.loads((out / "config.json").read_text())["train"]
    assert (saved["checkpoint"], saved["data_root"], saved["out_dir"]) == ("work/base/af2-tiny", "data/mini",
                                                                             "results/runs/lora_r8")
    assert saved["lr"] == 2e-3 and saved["max_steps"] == 1  # the recipe's value, and the flag over it
    assert saved["recipe"] == "configs/tiny/ci.yaml"
    assert json.loads((out / "summary.json").read_text())["final"] == "results/runs/lora_r8/final"
    adapter_config = json.loads((out / "final" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "af2-tiny"
    assert "Not evaluated yet" in (out / "final" / "README.md").read_text()
    assert main(["evaluate", "--checkpoint", str(base), "--adapter", str(out / "final"), "--data", str(data),
                 "--recipe", "tiny/ci", "--mode", "score", "--permutations", "0", "--out", str(tmp_path / "ev")]) == 0
    card = (out / "final" / "README.md").read_text()
    micro = json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]["score"]["micro"]
    assert f"| dev | score | 4 | {100 * micro:.1f} |" in card and "`ev/metrics.json`" in card
    # the eval split through the same command: its submission checked against an example of the dataset's layout
    example = data / "submission_example" / "example.csv"
    example.parent.mkdir()
    ids = sorted(p.stem for p in (data / "dcase_2025_question_path" / "eval").glob("*.json"))
    example.write_text("question,answer\n" + "".join(f"{qid},A. x\n" for qid in ids))
    evaluate_eval = ["evaluate", "--checkpoint", str(base), "--adapter", str(out / "final"), "--data", str(data),
                     "--recipe", "tiny/ci", "--split", "eval", "--mode", "score", "--permutations", "0",
                     "--out", str(tmp_path / "sub"), "--submission-example"]
    assert main(evaluate_eval + [str(example)]) == 0
    assert "| eval | score |" in (out / "final" / "README.md").read_text()
    example.write_text(example.read_text() + "eval_not_a_question,A. x\n")
    with pytest.raises(SubmissionError, match=r"example\.csv: lists 1 question\(s\) not among the questions answered"):
        main(evaluate_eval + [str(example)])
    with pytest.raises(SystemExit, match=r"nope\.csv: no such submission example file"):
        main(evaluate_eval + [str(tmp_path / "nope.csv")])
