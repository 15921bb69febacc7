"""Shared setup for issue-15 experiments (run from a checkout of d74bb32 named by AQA_OLD_CHECKOUT)."""
import os
import sys
sys.path.insert(0, os.environ["AQA_OLD_CHECKOUT"])
for k, v in dict(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg",
                 OMP_NUM_THREADS="1").items():
    os.environ[k] = v
import torch
torch.set_num_threads(1)
from pathlib import Path
ROOT = Path(os.environ["AQA_OLD_CHECKOUT"])
DATA = ROOT / "data" / "mini600"
WORK = ROOT / "work" / "exp"
SIZES = dict(n_train=480, n_dev=600, n_eval=60, n_captions_train=600, n_captions_dev=100)
