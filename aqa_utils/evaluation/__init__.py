"""Evaluation: AF2's generation protocol, option scoring, shuffle robustness, result and submission files."""

from aqa_utils.evaluation.engine import option_targets
from aqa_utils.evaluation.evaluate import evaluate
from aqa_utils.evaluation.results import EvalResult, submission_rows
from aqa_utils.evaluation.settings import MODES, EvalSettings

__all__ = ["MODES", "EvalResult", "EvalSettings", "evaluate", "option_targets", "submission_rows"]
