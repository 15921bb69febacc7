"""aqa_utils."""
