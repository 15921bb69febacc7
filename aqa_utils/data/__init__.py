"""Data layer: the DCASE 2025 Task 5 reader (``dcase``), the generated mini benchmark (``mini``), choice
augmentation and answer parsing (``augment``), and AF2's tokenizer, prompt template and collators (``prompt``)."""
