"""DCASE 2025 Task 5's on-disk layout: folder names, splits, subsets (importable without torch)."""

QUESTION_DIR = "dcase_2025_question_path"
"""One JSON per question: ``<root>/dcase_2025_question_path/<split>/<question id>.json``."""
AUDIO_DIR = "local_audio_path"
"""The clips: ``<root>/local_audio_path/<split>/<clip>``."""
SUBMISSION_DIR = "submission_example"
"""The dataset's example submission files."""
SPLITS = ("train", "dev", "eval")
SUBSETS = ("BQA", "TSQA", "CQA")
MAX_CHOICES = 6
