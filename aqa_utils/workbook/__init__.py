"""The notebook layer: profiles (sizes, paths, systems), the workbook's steps, ``make reproduce``.

Modules: ``profile`` (``Profile``, ``System``, settings from the environment), ``steps`` (data, base, LoRA,
evaluation, each reusing finished work), ``lr_sweep`` (the learning rate, chosen on a validation split), ``reproduce`` (run every notebook, write the results README),
``notebook`` (the notebooks' setup cell).
"""

from aqa_utils.workbook.lr_sweep import choose_lr
from aqa_utils.workbook.notebook import setup
from aqa_utils.workbook.profile import Profile, System, profile, repo_root
from aqa_utils.workbook.reproduce import NOTEBOOKS, reproduce, write_results_readme
from aqa_utils.workbook.steps import (
    SavedEvaluation, base_audio_reliance, base_tokenizer, base_validation_loss, ensure_base, ensure_mini_benchmark,
    evaluate_systems, evaluation_dir, evaluations, finished_with, load_system, parameter_table, saved_correctness,
    saved_evaluations, train_lora, train_loras,
)

__all__ = ["NOTEBOOKS", "Profile", "SavedEvaluation", "System", "base_audio_reliance", "base_tokenizer",
           "base_validation_loss", "choose_lr", "ensure_base", "ensure_mini_benchmark", "evaluate_systems",
           "evaluation_dir", "evaluations", "finished_with", "load_system", "parameter_table", "profile", "repo_root",
           "reproduce", "saved_correctness", "saved_evaluations", "setup", "train_lora", "train_loras",
           "write_results_readme"]
