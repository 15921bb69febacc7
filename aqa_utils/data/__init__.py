"""Data layer: the DCASE 2025 Task 5 layout (``layout``) and reader (``dcase``), the generated mini benchmark
(``mini``), label formats (``formats``), the training augmentation (``augment``), answer parsing (``answers``),
text-only baselines (``baselines``), and AF2's tokenizer, prompt template and collators (``prompt``)."""
