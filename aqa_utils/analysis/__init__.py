"""What the notebooks show: tables (``tables``), figures of the data (``data_figures``), of training
(``training_figures``) and of the evaluation (``evaluation_figures``), computed findings sentences (``findings``),
and ``figures.FigureSaver``, which puts each figure inline AND under ``<results_dir>/figures/``."""

from aqa_utils.analysis.figures import FigureSaver, data_name, rank_colour
from aqa_utils.analysis.tables import (
    HEADLINE,
    clip_table,
    headline_table,
    label_mask_table,
    paired_difference,
    position_test,
    question_table,
    rank_comparison,
    rank_table,
    seed_interval,
    shuffle_shares,
    with_clip_seconds,
)

__all__ = [
    "HEADLINE",
    "FigureSaver",
    "clip_table",
    "data_name",
    "headline_table",
    "label_mask_table",
    "paired_difference",
    "position_test",
    "question_table",
    "rank_colour",
    "rank_comparison",
    "rank_table",
    "seed_interval",
    "shuffle_shares",
    "with_clip_seconds",
]
