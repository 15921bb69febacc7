"""aqa_utils: Audio Flamingo 2 + LoRA for DCASE 2025 Task 5 audio question answering.

Nothing in this package downloads at run time. laion-clap's package ``__init__`` tries to fetch text tokenizers
from the hub when imported, so the hub is switched to offline mode here, before anything imports it.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
