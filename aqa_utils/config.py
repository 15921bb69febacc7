"""Typed configuration for every part of the workbook.

Every dimension of the AF2 architecture is a field here, so any size of the same model can be built from a YAML
or JSON file (``ModelConfig.from_file``), not only the named presets (``ModelConfig.preset``).
The presets: ``af2-3b`` (the release, Qwen2.5-3B), ``af2-1.5b`` and ``af2-0.5b`` (the smaller releases) and
``af2-tiny`` (same structure, tiny dimensions: the embedded default that runs on 2 CPU cores).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Type, TypeVar

from aqa_utils.yaml_file import read_yaml

T = TypeVar("T")


def repo_root() -> Path:
    """The repository (holds ``configs/``, ``results/``); the working directory when the package is installed."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def portable(value: Any, root: Path | None = None) -> Any:
    """``value`` (nested dicts/lists of str) with every absolute path under the repo written relative to it, so the
    files a run writes (and the repo commits) never hold the path of the machine that ran them."""
    root = (root or repo_root()).resolve()
    if isinstance(value, dict):
        return {k: portable(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, root) for v in value]
    if isinstance(value, str) and value.startswith("/") and Path(value).is_relative_to(root):
        return Path(value).relative_to(root).as_posix()
    return value

# AF2 adds four tokens to Qwen2.5's 151,665: <audio>, <|endofchunk|>, <|PAD_TOKEN|>, <SEP>.
AF2_VOCAB_SIZE = 151_669
# Qwen2.5's 22 (<|endoftext|> first) and AF2's 4 close every vocabulary: <|endoftext|> is vocab_size - 26.
SPECIAL_TOKENS = 26

_NUMBER_TYPES = ("int", "float", "int | None", "float | None")


def _from_dict(cls: Type[T], data: dict[str, Any], where: str = "") -> T:
    """Build a (nested) dataclass from a plain dict; unknown keys are an error, not silently dropped."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where or cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        sub = f.default_factory if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(value, dict):
            kwargs[name] = _from_dict(sub, value, f"{where or cls.__name__}.{name}")
        elif isinstance(value, list) and f.type in ("tuple[int, ...]", "tuple[int, int]", "tuple[str, ...]"):
            kwargs[name] = tuple(value)
        elif isinstance(value, str) and f.type in _NUMBER_TYPES:
            raise ValueError(f"{where or cls.__name__}.{name}: expected a number, got the text {value!r}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


class _Serialisable:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return _from_dict(cls, data)

    @classmethod
    def from_file(cls, path: str | Path):
        """Read a config from ``.json`` or ``.yaml``/``.yml``."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            data = read_yaml(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


@dataclass
class AudioConfig(_Serialisable):
    """How a clip becomes model input: AF2's front end (16 kHz, 10 s windows, log-mel)."""

    sample_rate: int = 16_000
    """Rate every clip is resampled to (Hz)."""
    window_seconds: float = 10.0
    """Length of one non-overlapping window fed to CLAP (s); the last window is zero-padded."""
    max_windows: int = 12
    """At most this many windows per clip (12 x 10 s = 2 min); audio beyond is not read."""
    n_fft: int = 1024
    """STFT size of the mel front end."""
    win_length: int = 1024
    """STFT window length."""
    hop_length: int = 160
    """STFT hop (10 ms at 16 kHz): a 10 s window gives 1001 frames."""
    f_min: float = 50.0
    """Lowest mel filter frequency (Hz)."""
    f_max: float = 8000.0
    """Highest mel filter frequency (Hz)."""
    n_mels: int = 64
    """Number of mel bins."""

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))


@dataclass
class HTSATConfig(_Serialisable):
    """The AF-CLAP audio encoder: laion-clap's HTSAT Swin transformer (fusion ``aff_2d``)."""

    spec_size: int = 256
    """Side of the square spectrogram 'image' HTSAT works on; must hold the 1001 frames (spec_size**2/n_mels)."""
    patch_size: int = 4
    """Patch side of the patch embedding."""
    embed_dim: int = 256
    """Width of the first Swin stage; stage i is embed_dim * 2**i wide."""
    depths: tuple[int, ...] = (2, 2, 12, 2)
    """Swin blocks per stage."""
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    """Attention heads per stage."""
    window_size: int = 8
    """Swin attention window side."""
    mlp_ratio: float = 4.0
    """MLP width / stage width in each Swin block."""
    qkv_bias: bool = True
    """Bias on the fused qkv projection."""
    num_classes: int = 527
    """Width of the (unused by AF2, but stored) AudioSet head ``tscam_conv``/``head``."""
    fusion_type: str = "aff_2d"
    """laion-clap feature-fusion variant AF-CLAP was trained with."""
    drop_path_rate: float = 0.1
    """Stochastic depth in train mode (laion-clap's default, which AF2 keeps)."""

    @property
    def out_dim(self) -> int:
        """Width of the tokens HTSAT hands to the audio transformer (last stage width)."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass
class AudioTransformerConfig(_Serialisable):
    """AF2's ``audio_transformer_clap``: post-LN encoder over all windows' CLAP tokens (d_model = HTSAT out_dim)."""

    n_layers: int = 3
    """Encoder layers."""
    n_heads: int = 8
    """Attention heads; head width = d_model / n_heads."""
    d_inner: int = 2048
    """Feed-forward hidden width (ReLU)."""
    rotary_base: float = 4096.0
    """Rotary embedding base; rotary covers max(head_dim // 2, 32) dims of each head."""


@dataclass
class CrossAttentionConfig(_Serialisable):
    """Flamingo gated cross-attention (XATTN-Dense) inserted before LM decoder layers."""

    heads: int = 8
    """Attention heads."""
    dim_head: int = 64
    """Width of each head (inner width = heads * dim_head)."""
    ff_mult: int = 4
    """Feed-forward width / LM hidden size."""
    every_n_layers: int = 1
    """A block before every n-th decoder layer (AF2: every layer)."""
    attn_gate_init: float = 0.0
    """Initial attention gate (tanh(0) = 0: the block starts as the identity, as AF2 does to keep a pretrained LM
    intact; the feed-forward gate always starts at 0). With a closed gate nothing reaches the audio path, so a
    model whose audio encoder is not pretrained must start with the gate ajar."""


@dataclass
class LMConfig(_Serialisable):
    """The Qwen2 decoder (built with ``transformers.Qwen2ForCausalLM``)."""

    vocab_size: int = AF2_VOCAB_SIZE
    """Embedding rows: the tokenizer's length (Qwen2.5's tokenizer plus AF2's four added tokens)."""
    vocabulary: str | None = None
    """None: AF2's tokenizer; else a trimmed one of ``data.prompt.VOCABULARIES`` (``data.prompt.tokenizer_for``)."""
    hidden_size: int = 2048
    """Model width."""
    intermediate_size: int = 11008
    """SwiGLU MLP width."""
    num_hidden_layers: int = 36
    """Decoder layers."""
    num_attention_heads: int = 16
    """Query heads."""
    num_key_value_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    max_position_embeddings: int = 32768
    """Longest sequence the rotary table is sized for."""
    rope_theta: float = 1_000_000.0
    """Rotary base."""
    rms_norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    tie_word_embeddings: bool = True
    """Share input embedding and LM head."""


@dataclass
class ModelConfig(_Serialisable):
    """A whole AF2: audio front end, CLAP, audio transformer, cross-attention and LM."""

    name: str = "af2-3b"
    """Preset name or a free label for a custom size."""
    audio: AudioConfig = field(default_factory=AudioConfig)
    """Audio front end."""
    clap: HTSATConfig = field(default_factory=HTSATConfig)
    """AF-CLAP HTSAT encoder."""
    audio_transformer: AudioTransformerConfig = field(default_factory=AudioTransformerConfig)
    """Audio transformer over CLAP tokens."""
    xattn: CrossAttentionConfig = field(default_factory=CrossAttentionConfig)
    """Gated cross-attention blocks."""
    lm: LMConfig = field(default_factory=LMConfig)
    """Qwen2 language model."""

    @property
    def audio_dim(self) -> int:
        """Width of audio tokens (CLAP output = audio transformer width = cross-attention key/value input)."""
        return self.clap.out_dim

    @property
    def tokens_per_window(self) -> int:
        """CLAP tokens per 10 s window: the final Swin grid (spec_size / patch / 2**(stages-1)) squared."""
        side = self.clap.spec_size // self.clap.patch_size // 2 ** (len(self.clap.depths) - 1)
        return side * side

    @classmethod
    def preset(cls, name: str) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
        return cls.from_dict(PRESETS[name])

    @classmethod
    def resolve(cls, name_or_path: str | Path) -> "ModelConfig":
        """A preset name, or a path to a config file."""
        if str(name_or_path) in PRESETS:
            return cls.preset(str(name_or_path))
        path = Path(name_or_path)
        if path.exists():
            return cls.from_file(path)
        raise ValueError(f"{name_or_path!r} is neither a preset ({sorted(PRESETS)}) nor an existing config file")


def _qwen(hidden: int, inter: int, layers: int, heads: int) -> dict[str, Any]:
    return dict(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=2)


PRESETS: dict[str, dict[str, Any]] = {
    # The release: AF-CLAP HTSAT-large, 3-layer audio transformer, Qwen2.5-3B.
    "af2-3b": dict(name="af2-3b", lm=_qwen(2048, 11008, 36, 16)),
    # The smaller releases share CLAP and the audio transformer; only the LM shrinks.
    "af2-1.5b": dict(name="af2-1.5b", lm=_qwen(1536, 8960, 28, 12)),
    "af2-0.5b": dict(name="af2-0.5b", lm=_qwen(896, 4864, 24, 14)),
    # Same structure at tiny dimensions. spec_size stays 256 (1001 mel frames must fit), so the 64 tokens per
    # window are kept; widths and depths shrink so a 10 s window costs well under a second on 2 CPU cores.
    "af2-tiny": dict(
        name="af2-tiny",
        clap=dict(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), num_classes=8, drop_path_rate=0.0),
        audio_transformer=dict(n_layers=1, n_heads=2, d_inner=128),
        # af2-tiny's CLAP is random, not contrastively pretrained like AF-CLAP: with a closed gate the audio path
        # would get no gradient at all, so its attention gate starts ajar (tanh(0.5) = 0.46).
        xattn=dict(heads=4, dim_head=32, ff_mult=2, attn_gate_init=0.5),
        # 600 Qwen2.5 tokens + 26 specials: the mini benchmark needs no others; a 151,669-wide head is most of a step.
        lm=dict(hidden_size=128, intermediate_size=384, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=1024, vocab_size=626, vocabulary="mini"),
    ),
}


# Module-name patterns (full match) of the report's LoRA targets, per component.
LORA_TARGETS: dict[str, str] = {
    "clap": r"clap\.nvclap\.layers\.\d+\.blocks\.\d+\.attn\.qkv",
    "audio_transformer": r"audio_transformer_clap\.layer_stack\.\d+\.slf_attn\.(w_qs|w_ks|w_vs)",
    "lm": r"lang_encoder\.model\.layers\.\d+\.decoder_layer\.self_attn\.(q_proj|k_proj|v_proj)",
    # Not a target in the report's configuration; available for ablations.
    "xattn": r"lang_encoder\.model\.layers\.\d+\.gated_cross_attn_layer_sound\.attn\.(to_q|to_kv)",
}


@dataclass
class LoraSettings(_Serialisable):
    """LoRA through peft on AF2's query/key/value projections.

    Alpha: the report does not state it. We default to alpha = 2 * rank (scaling alpha/r = 2 at every rank), so
    the ranks differ only in capacity, not in the effective step size of the adapter update.
    """

    rank: int = 8
    """LoRA rank r (the report: 8, 16, 32)."""
    alpha: float | None = None
    """LoRA alpha; None means 2 * rank."""
    dropout: float = 0.05
    """Dropout on the LoRA input path."""
    components: tuple[str, ...] = ("clap", "audio_transformer", "lm")
    """Which components get adapters (keys of ``targets``); the report adapts all three."""
    targets: dict[str, str] = field(default_factory=lambda: dict(LORA_TARGETS))
    """Per component, a regular expression that must fully match the names of the modules to adapt."""

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else 2.0 * self.rank


@dataclass
class TrainConfig(_Serialisable):
    """One training run: LoRA fine-tuning on questions, full training of a base on captions, or (stage 0 of the
    tiny base) CLAP learning the caption corpus' sound tags."""

    model: str = "af2-tiny"
    """Preset name or model config file (ignored for the architecture when ``checkpoint`` has af2_config.json)."""
    checkpoint: str | None = None
    """Release-layout folder with the base weights (None: random initialisation)."""
    data_root: str = "data/mini"
    """Folder holding ``dcase_2025_question_path/`` and ``local_audio_path/`` (and ``captions/``)."""
    corpus: str = "questions"
    """"questions" (multiple choice, the report's augmentation), "captions", "captions+copy" or
    "captions+copy+facts" (the tiny base's corpora, ``training.examples.CaptionExamples``) or "tags" (the caption
    corpus' sound classes, a tagging objective on CLAP tokens: train it with every other component in ``frozen``)."""
    train_split: str = "train"
    """Split to train on (the report fine-tuned on DCASE dev; the mini benchmark has its own train split)."""
    val_split: str | None = "dev"
    """Split for periodic validation loss (None: none)."""
    mode: str = "lora"
    """"lora" (adapters only, base frozen) or "full" (every weight trains: base pretraining)."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """Adapter settings for mode "lora"."""
    frozen: tuple[str, ...] = ()
    """Mode "full": components kept fixed ("clap", "audio_transformer", "xattn", "lm"); a frozen CLAP also runs in
    eval mode (batch-norm statistics fixed, no SpecAugment), as in AF2's first stage, where AF-CLAP is frozen."""
    epochs: float = 3.0
    """Passes over the training data (fractional allowed); ``max_steps`` wins when set."""
    max_steps: int | None = None
    """Optimizer steps to run (None: from epochs)."""
    batch_size: int = 8
    """Examples per micro-batch on each process."""
    grad_accum: int = 1
    """Micro-batches per optimizer step; global batch = batch_size * grad_accum * processes."""
    lr: float = 1e-3
    """Peak learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay (AF2's own training used 0.1 on full weights)."""
    warmup_steps: int = 10
    """Linear warm-up steps."""
    schedule: str = "cosine"
    """After warm-up: "cosine" (to 10% of peak), "linear" (to 0) or "constant"."""
    grad_clip: float = 1.0
    """Clip the global gradient norm (0: off)."""
    seed: int = 0
    """Seeds data order, augmentation, initialisation and dropout."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""
    precision: str = "auto"
    """"auto" (bf16 autocast on CUDA, fp32 on CPU), "fp32" or "bf16"."""
    log_every: int = 1
    """Write a metrics line every N steps."""
    eval_every: int = 0
    """Validation every N steps (0: only at the end)."""
    eval_per_epoch: bool = False
    """Also validate at the end of every epoch."""
    save_every: int = 0
    """Resumable checkpoint every N steps (0: only at the end)."""
    max_val_examples: int = 64
    """Validation examples used (the first ones of the split)."""
    spec_augment: bool = True
    """Keep laion-clap's train-mode SpecAugment in CLAP (off for tagging: on a corpus this small it mostly hides
    the evidence)."""
    skip_bad_data: bool = False
    """Skip questions with data problems (reported) instead of refusing to start."""
    cache_audio: bool = True
    """Keep decoded clips in memory, and their log-mels too where CLAP trains (LoRA runs, the tiny base's stage-0
    tagging; right for the mini benchmark; off for full DCASE)."""
    cache_clap_tokens: bool = True
    """With "clap" in ``frozen`` (mode "full"), compute each clip's CLAP tokens once and reuse them every epoch
    (a frozen CLAP runs in eval mode, so they never change). Memory: tokens_per_window x out_dim floats per window."""
    out_dir: str = "work/runs/run"
    """Run folder: config, metrics.jsonl, checkpoints/, final/."""
    progress: bool = True
    """Show a progress bar."""
    recipe: str | None = None
    """The recipe file this config was read from (``recipe.Recipe``), named in the run's config and model card."""
