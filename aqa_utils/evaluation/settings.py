"""How ``evaluate`` runs: answer modes, batch size, shuffle check, caches."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("generate", "score", "both")


@dataclass
class EvalSettings:
    """How ``evaluate`` runs."""

    mode: str = "generate"
    """"generate" (AF2's protocol), "score" (option log-likelihood) or "both"."""
    batch_size: int = 16
    """Questions per batch (with robustness: (question, ordering) items per batch)."""
    max_new_tokens: int = 256
    """Generation budget per answer (AF2 uses 256)."""
    permutations: int = 0
    """K orderings per answered question (the first is the original order) in every mode run: the shuffle-averaged
    accuracy DCASE ranks by; 0 = original order only."""
    seed: int = 0
    """Seed of the orderings (``metrics.permutations_for``)."""
    limit: int | None = None
    """Evaluate only the first ``limit`` questions; None = all."""
    progress: bool = False
    """Show tqdm progress bars."""
    primary: str | None = None
    """Mode whose predictions fill ``pred``/``pred_text`` and the submission in "both"; None = "generate"."""
    clip_cache_size: int = 256
    """Clips kept in the audio cache (a 10 s clip is ~0.6 MB); questions run in clip order, so a small cache
    already reads every clip once per pass. 0 = read the clip for every batch."""
    clip_order: bool = True
    """Batch the questions in clip order (a clip's questions share one encoding); False keeps the input order,
    as NVIDIA's per-question scripts do (with batch_size 1 and no caches: the sequential baseline)."""
    encoded_cache_size: int | None = None
    """Clips whose encoded audio is kept on the model's device between passes (each mode, the shuffle check). None:
    every clip of the call, so each is encoded once (af2-3b: 256 KB per 10 s window in bf16, about 0.6 GB for
    DCASE dev's 2,415 clips); a number caps that memory, and with fewer places than clips a second pass in clip
    order finds its clips evicted and encodes them all again; 0 = encode in every pass."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.primary not in (None, "generate", "score"):
            raise ValueError(f"primary must be None, 'generate' or 'score', got {self.primary!r}")
        if self.primary is not None and self.mode != "both" and self.primary != self.mode:
            raise ValueError(f"primary={self.primary!r} is not run in mode {self.mode!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.permutations < 0 or self.clip_cache_size < 0 \
                or (self.encoded_cache_size or 0) < 0:
            raise ValueError("batch_size and max_new_tokens must be >= 1, permutations, clip_cache_size and "
                             "encoded_cache_size >= 0")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be None or >= 0, got {self.limit}")

    @property
    def modes(self) -> tuple[str, ...]:
        return ("generate", "score") if self.mode == "both" else (self.mode,)

    @property
    def primary_mode(self) -> str:
        if self.primary is not None:
            return self.primary
        return "generate" if "generate" in self.modes else "score"
