"""What the training loop minimises: the language-model loss on answers, or (stage 0 of the tiny base) sound tags.

An objective turns a list of examples into a summed loss and says how many units (answer tokens, or clip x class
pairs) the sum covers, so the loop can normalise by the whole global batch on every process. It also names the
module the optimizer trains (the AF2 model, or the model plus a tagging head) and how it is validated.

Tagging (stage 0): AF2 never trains its audio encoder from scratch through the language loss (HTSAT was pretrained
on AudioSet, then contrastively as AF-CLAP, and AF2's first stage keeps it frozen). Trained end to end from random
weights, af2-tiny learned to ignore its encoder instead (the audio transformer's output collapsed to a
near-constant token within ~100 steps). So the tiny base first teaches HTSAT to tag the sound classes each caption
names: a linear head scores every CLAP token, a clip's score for a class is its best token's (max pooling, so each
token has to say what sounds at its time and frequency), binary cross-entropy. The head is thrown away.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aqa_utils.audio import ClipCache, pad_to_longest
from aqa_utils.data.prompt import TrainCollator
from aqa_utils.training.examples import Example


class LogMels:
    """Each clip's windows as CLAP's fixed front end turns them into log-mels (L, frames, n_mels), computed once.

    While CLAP trains (LoRA) only what follows the front end changes, and recomputing every clip's STFT and mel
    at every step cost a sixth of an af2-tiny LoRA run on 2 cores (lora_r8_s0: 93 s without, 77 s with). The
    values are the model's own (``CLAPEncoder.front_end``): a batch's loss and gradients are bit-identical with
    and without the cache (tests/test_train.py). Whole runs are not: one left the uncached trajectory in the last
    float bits at step 7 (cause not found), so runs made with and without it are different draws."""

    def __init__(self, clips: ClipCache):
        self.clips = clips
        self._mels: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def get(self, clap: nn.Module, path: Path, device) -> torch.Tensor:
        key = str(path)
        if key not in self._mels:
            self._mels[key] = clap.front_end(self.clips.get(path).to(device))
        return self._mels[key]


def clip_inputs(clips: ClipCache, mels: LogMels | None, clap: nn.Module, paths: list[Path],
                device) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips' CLAP inputs padded to the longest, on ``device``: cached log-mels (B, L, frames, n_mels) when
    ``mels``, else windows (B, L, S); and the window mask (B, L)."""
    if mels is not None:
        windows, mask = pad_to_longest([mels.get(clap, path, device) for path in paths])
    else:
        windows, mask = pad_to_longest([clips.get(path) for path in paths])
    return windows.to(device), mask.to(device)


def weights_fingerprint(module: nn.Module) -> str:
    """A digest of every parameter and buffer of ``module`` (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class FrozenClapTokens(dict):
    """{clip path: (L * tokens_per_window, D) tokens} of one frozen CLAP, which runs sharing that CLAP may pass on.

    The tiny base's stages 1-3 all keep stage 0's CLAP frozen, so each would compute the same tokens again (about
    20 s per stage on 2 cores for the caption clips). ``bind`` ties the store to a CLAP's weights, the device and
    the autocast setting: a store bound to anything else is emptied first, so no run reads another CLAP's tokens."""

    def __init__(self):
        super().__init__()
        self.key: tuple | None = None

    def bind(self, clap: nn.Module, device, autocast) -> None:
        kind = torch.device(device).type
        with autocast():
            precision = (torch.is_autocast_enabled(kind), str(torch.get_autocast_dtype(kind)))
        key = (weights_fingerprint(clap), str(device), precision)
        if key != self.key:
            self.clear()
            self.key = key


class LanguageModelling:
    """Loss per answer token (prompt masked) of the AF2 model given each example's clip.

    With ``cache_clap_tokens`` (CLAP frozen, so in eval mode and deterministic), each clip's CLAP tokens are
    computed once and reused every epoch, in ``clap_tokens`` (a store handed over from an earlier run with the same
    CLAP, or a new one); otherwise, with ``cache_log_mels``, each clip's log-mel (``LogMels``)."""

    def __init__(self, collate: TrainCollator, clips: ClipCache, cache_clap_tokens: bool,
                 cache_log_mels: bool = False, clap_tokens: FrozenClapTokens | None = None):
        self.collate, self.clips = collate, clips
        self.clap_tokens = (FrozenClapTokens() if clap_tokens is None else clap_tokens) if cache_clap_tokens else None
        self._bound = False
        self.mels = LogMels(clips) if cache_log_mels and not cache_clap_tokens else None

    def trained_module(self, model: nn.Module) -> nn.Module:
        return model

    def af2(self, module: nn.Module) -> nn.Module:
        return module

    def units(self, examples: list[Example]) -> int:
        """Answer tokens of ``examples`` (the loss normaliser)."""
        return int((self.collate([(e.prompt, e.target) for e in examples])["labels"][:, 1:] != -100).sum())

    def loss_sum(self, module, core, examples: list[Example], device, autocast) -> torch.Tensor:
        """Summed loss over the answer tokens of ``examples``; ``core`` is the unwrapped AF2 model."""
        text = {k: v.to(device) for k, v in self.collate([(e.prompt, e.target) for e in examples]).items()}
        with autocast():
            out = module(text["input_ids"], text["attention_mask"], labels=text["labels"],
                         **self._audio(core, examples, device, autocast))
        return out.loss_sum

    def _audio(self, core, examples: list[Example], device, autocast) -> dict:
        """The forward's audio keyword arguments: cached CLAP tokens, or the clips' windows."""
        if self.clap_tokens is not None:
            tokens = [self._frozen_clap_tokens(core, e.audio_path, device, autocast) for e in examples]
            batch, mask = pad_to_longest(tokens)
            return {"clap_tokens": (batch, mask.to(device))}
        windows, mask = clip_inputs(self.clips, self.mels, core.clap, [e.audio_path for e in examples], device)
        return {"windows": windows, "window_mask": mask}

    @torch.no_grad()
    def _frozen_clap_tokens(self, core, path: Path, device, autocast) -> torch.Tensor:
        """(L * tokens_per_window, D) CLAP tokens of a clip, computed once by the frozen (eval-mode) CLAP."""
        if not self._bound:  # the CLAP is frozen: its weights are the same at every later call
            self.clap_tokens.bind(core.clap, device, autocast)
            self._bound = True
        key = str(path)
        if key not in self.clap_tokens:
            with autocast():
                self.clap_tokens[key] = core.clap.eval()(self.clips.get(path).to(device)).flatten(0, 1)
        return self.clap_tokens[key]

    shard_validation = True
    """Each process validates its share of the batches; the sums are reduced."""

    @torch.no_grad()
    def validate(self, module, core, chunks: list[list[Example]], device, autocast, reduce) -> dict:
        """Mean loss per answer token over the batches ``chunks`` (``reduce`` sums over processes)."""
        loss_sum, tokens = 0.0, 0
        for chunk in chunks:
            loss_sum += float(self.loss_sum(module, core, chunk, device, autocast))
            tokens += self.units(chunk)
        totals = reduce(torch.tensor([loss_sum, float(tokens)], device=device))
        return {"val_loss": float(totals[0] / max(totals[1], 1))}


class TagHead(nn.Module):
    """CLAP tokens (B, N, D) with mask (B, N) -> clip logits (B, C): a linear score per token, max over the clip."""

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.proj = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.proj(tokens).masked_fill(~mask[..., None], torch.finfo(tokens.dtype).min)
        return logits.max(dim=1).values


class TaggedAF2(nn.Module):
    """The AF2 model with a tagging head on its CLAP tokens: windows (B, L, S), mask (B, L) -> logits (B, C)."""

    def __init__(self, af2: nn.Module, n_classes: int):
        super().__init__()
        self.af2 = af2
        self.head = TagHead(af2.config.audio_dim, n_classes).to(next(af2.parameters()).device)

    def forward(self, windows: torch.Tensor, window_mask: torch.Tensor) -> torch.Tensor:
        return self.head(*self.af2.clap_tokens(windows, window_mask))


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class average precision of (N, C) scores against (N, C) 0/1 targets; NaN for a class with no positive."""
    order = scores.argsort(dim=0, descending=True)
    hits = targets.gather(0, order)
    precision_at = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=hits.dtype)[:, None]
    positives = hits.sum(0)
    return torch.where(positives > 0, (precision_at * hits).sum(0) / positives.clamp(min=1), torch.nan)


class Tagging:
    """Binary cross-entropy of clip tags (``CaptionTags`` examples: (clip path, multi-hot target)).

    With ``cache_log_mels``, each clip's log-mel (``LogMels``): the tiny base's stage 0 trains CLAP for 10 epochs
    over the same clips, and recomputing the front end every time was a fifth of its time (lora_gain.md)."""

    def __init__(self, clips: ClipCache, classes: tuple[str, ...], cache_log_mels: bool = False):
        self.clips, self.classes = clips, classes
        self.mels = LogMels(clips) if cache_log_mels else None

    def trained_module(self, model: nn.Module) -> nn.Module:
        return TaggedAF2(model, len(self.classes))

    def af2(self, module: nn.Module) -> nn.Module:
        return module.af2

    def units(self, examples: list) -> int:
        return len(examples) * len(self.classes)

    def _logits(self, module, core, examples: list, device) -> torch.Tensor:
        return module(*clip_inputs(self.clips, self.mels, core.clap, [path for path, _ in examples], device))

    def loss_sum(self, module, core, examples: list, device, autocast) -> torch.Tensor:
        targets = torch.stack([t for _, t in examples]).to(device)
        with autocast():
            logits = self._logits(module, core, examples, device)
        return F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="sum")

    shard_validation = False
    """Average precision needs every clip's scores: each process scores all of them."""

    @torch.no_grad()
    def validate(self, module, core, chunks: list[list], device, autocast, reduce) -> dict:
        """Mean average precision over the classes present in the batches ``chunks`` (and each class's AP)."""
        core.clap.eval()
        with autocast():
            scores = torch.cat([self._logits(module, core, chunk, device).float().cpu() for chunk in chunks])
        ap = average_precision(scores, torch.stack([t for chunk in chunks for _, t in chunk]))
        return {"val_map": float(ap.nanmean()), "val_ap": dict(zip(self.classes, [round(float(a), 4) for a in ap]))}
