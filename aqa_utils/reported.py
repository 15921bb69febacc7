"""Published numbers, exactly as their sources give them: the one home of every reported figure in the workbook.

Nothing here is measured by this project; tables put these beside measured numbers in separate rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_BASELINES = "DCASE 2025 Task 5 baseline table (task paper arXiv 2505.07365; dcase.community challenge2025 task page)"
_AF2_LORA = "the AF2 + LoRA DCASE 2025 Task 5 report this workbook reproduces (rank sweep)"

# Top-1 accuracy in percent on the DCASE dev split, exactly as published; NaN where the source gives no number.
# "overall" is the micro accuracy over all dev questions; no source gives a domain average for dev.
REPORTED = pd.DataFrame(
    [
        ("Qwen2-Audio-7B", 30.0, 39.2, 49.6, 45.0, _BASELINES),
        ("Audio Flamingo 2 (zero-shot)", 53.9, 31.7, 49.5, 45.7, _BASELINES),
        ("Gemini-2.0-Flash", 42.0, 46.3, 56.6, 52.5, _BASELINES),
        ("AF2 + LoRA r=8", np.nan, np.nan, np.nan, 69.67, _AF2_LORA),
        ("AF2 + LoRA r=16", np.nan, np.nan, np.nan, 68.91, _AF2_LORA),
        ("AF2 + LoRA r=32", np.nan, np.nan, np.nan, 68.26, _AF2_LORA),
    ],
    columns=["system", "BQA", "TSQA", "CQA", "overall", "reference"],
).assign(domain_average=np.nan, data="DCASE dev", source="reported")

# Trainable LoRA parameters of the full-size AF2-3B at each rank the report trained (3.38M / 6.75M / 13.5M;
# reproduced exactly by `python -m aqa_utils params --model af2-3b --lora-rank R`).
REPORTED_LORA_PARAMS = {8: 3_375_104, 16: 6_750_208, 32: 13_500_416}


def reported_lora_accuracy() -> dict[int, float]:
    """The report's overall dev accuracy (%) of AF2 + LoRA per rank, read from ``REPORTED``."""
    rows = REPORTED[REPORTED["system"].str.startswith("AF2 + LoRA r=")]
    return {int(system.split("=")[1]): float(acc) for system, acc in zip(rows["system"], rows["overall"])}
