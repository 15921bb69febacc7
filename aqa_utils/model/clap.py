"""AF-CLAP: AF2's audio encoder, laion-clap's HTSAT Swin transformer with AF2's own output.

AF2 computes a 64-bin log-mel spectrogram of each 10 s window outside HTSAT (torchaudio), stacks it four times
(laion-clap's "fusion" input layout; for windows of exactly 10 s the four copies are identical), and takes the
features *before* ``tscam_conv``: the last Swin stage regrouped into ``tokens_per_window`` tokens of width
``out_dim`` (64 x 2048 for HTSAT-large). Everything else (patch embedding, AFF fusion, Swin stages, batch norm,
SpecAugment in train mode) is laion-clap's own code, so state-dict keys are the release's ``clap.nvclap.<key>``.
"""

from __future__ import annotations

import copy
import json
import warnings

import torch
import torchaudio
from laion_clap.clap_module import htsat as _htsat
from torch import nn

from ..config import AudioConfig, HTSATConfig

# laion-clap's Swin window attention calls torch.meshgrid without ``indexing`` when it is built; the default ("ij")
# is what HTSAT means, so the deprecation warning (once per Swin block, on every build) is noise.
_MESHGRID_WARNING = r"torch\.meshgrid: in an upcoming release, it will be required to pass the indexing argument"


class _HTSATAudioSettings:
    """The attribute bag laion-clap's HTSAT reads its front-end settings from."""

    def __init__(self, audio: AudioConfig):
        self.mel_bins = audio.n_mels
        self.window_size = audio.n_fft
        self.hop_size = audio.hop_length
        self.sample_rate = audio.sample_rate
        self.fmin = audio.f_min
        self.fmax = audio.f_max


class AF2HTSAT(_htsat.HTSAT_Swin_Transformer):
    """laion-clap's HTSAT whose ``forward_features`` returns AF2's tokens instead of the AudioSet head outputs."""

    gradient_checkpointing = False

    def forward_features(self, x: torch.Tensor, longer_idx=None) -> torch.Tensor:
        """x (N, 4, spec, spec) spectrogram images -> (N, tokens_per_window, out_dim)."""
        frames = x.shape[2]
        x = self.patch_embed(x, longer_idx=longer_idx)
        if self.ape:
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for stage in self.layers:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(lambda t, s=stage: s(t)[0], x, use_reentrant=False)
            else:
                x = stage(x)[0]
        x = self.norm(x)
        n, _, width = x.shape
        side = frames // 2 ** (len(self.depths) - 1) // self.patch_stride[0]
        grid = x.transpose(1, 2).reshape(n, width, side, side)
        # HTSAT folds time into frequency rows (freq_ratio groups); undo it so tokens run over
        # (frequency bin, time) exactly as the release's features do.
        freq_bins = side // self.freq_ratio
        grid = grid.reshape(n, width, self.freq_ratio, freq_bins, side).transpose(2, 3)
        return grid.reshape(n, width, -1).transpose(1, 2)


# Meta-device skeletons already built, by configuration: a meta module holds no data, so a copy is as good as a
# fresh build, and building HTSAT-large costs seconds of random initialisation on the CPU.
_META_SKELETONS: dict[str, AF2HTSAT] = {}


def build_htsat(cfg: HTSATConfig, audio: AudioConfig) -> AF2HTSAT:
    frames = audio.window_samples // audio.hop_length + 1
    freq_ratio = cfg.spec_size // audio.n_mels
    if freq_ratio < 1 or cfg.spec_size * freq_ratio < frames:
        raise ValueError(f"spec_size {cfg.spec_size} cannot hold {frames} frames x {audio.n_mels} mels")
    kwargs = dict(
        spec_size=cfg.spec_size, patch_size=cfg.patch_size, patch_stride=(cfg.patch_size, cfg.patch_size),
        num_classes=cfg.num_classes, embed_dim=cfg.embed_dim, depths=list(cfg.depths),
        num_heads=list(cfg.num_heads), window_size=cfg.window_size, mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias, drop_path_rate=cfg.drop_path_rate, config=_HTSATAudioSettings(audio),
        enable_fusion=True, fusion_type=cfg.fusion_type,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MESHGRID_WARNING, category=UserWarning)
        return _build_htsat(cfg, audio, kwargs)


def _build_htsat(cfg: HTSATConfig, audio: AudioConfig, kwargs: dict) -> AF2HTSAT:
    if torch.empty(0).device.type == "meta":
        # torchlibrosa and HTSAT's own __init__ compute on tensors (``.data`` fills, ``.item()``), which the meta
        # device refuses; build on the CPU (~1 GB transiently for HTSAT-large) and move to meta, once per config.
        key = json.dumps([cfg.to_dict(), audio.to_dict()], sort_keys=True)
        if key not in _META_SKELETONS:
            with torch.device("cpu"):
                _META_SKELETONS[key] = AF2HTSAT(**kwargs).to("meta")
        return copy.deepcopy(_META_SKELETONS[key])
    return AF2HTSAT(**kwargs)


def int16_round_trip(x: torch.Tensor) -> torch.Tensor:
    """AF2 quantises every window to int16 and back (truncating, as ``.type(torch.int16)`` does)."""
    return (x.clamp(-1.0, 1.0) * 32767.0).to(torch.int16).to(x.dtype) / 32767.0


def _same_dtype_inputs(module: nn.Module, args: tuple) -> tuple:
    x, residual = args
    return x, residual.to(x.dtype)


class CLAPEncoder(nn.Module):
    """Windows of audio -> CLAP tokens.

    ``forward(windows)``: windows (N, window_samples) at 16 kHz -> tokens (N, tokens_per_window, out_dim).
    The HTSAT module is ``self.nvclap`` so keys match the release's ``clap.nvclap.*``.
    """

    def __init__(self, cfg: HTSATConfig, audio: AudioConfig):
        super().__init__()
        self.nvclap = build_htsat(cfg, audio)
        fusion = getattr(self.nvclap.patch_embed, "fusion_model", None)
        if fusion is not None:
            # laion-clap pads the local branch with float32 zeros; in bf16 (weights or autocast) the fusion would
            # then mix dtypes. Hand it the local branch in the global branch's dtype.
            fusion.register_forward_pre_hook(_same_dtype_inputs)
        self.audio_config = audio
        # The mel front end is fixed DSP kept outside the module tree: it is not in the release's state dict and
        # must stay float32 when the model is cast to bf16. One copy per device, made on first use.
        self._mel_by_device: dict[torch.device, nn.Module] = {}
        # LoRA fine-tuning must leave every base tensor untouched, batch-norm running statistics included.
        self.freeze_batchnorm = False

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for m in self.nvclap.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def log_mel(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, S) -> (N, frames, n_mels) log-mel in dB, computed in float32."""
        if windows.device not in self._mel_by_device:
            a = self.audio_config
            self._mel_by_device[windows.device] = nn.Sequential(
                torchaudio.transforms.MelSpectrogram(
                    sample_rate=a.sample_rate, n_fft=a.n_fft, win_length=a.win_length, hop_length=a.hop_length,
                    f_min=a.f_min, f_max=a.f_max, n_mels=a.n_mels, center=True, pad_mode="reflect", power=2.0,
                    norm=None,
                ),
                torchaudio.transforms.AmplitudeToDB(top_db=None),
            ).to(windows.device)
        return self._mel_by_device[windows.device](windows.float()).transpose(1, 2)

    def front_end(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, S) windows -> (N, frames, n_mels): AF2's int16 round trip, then the log-mel. Fixed DSP with no
        weights, so training may compute it once per clip (``training.objectives.LogMels``)."""
        return self.log_mel(int16_round_trip(windows.float()))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """windows (N, S) at 16 kHz, or their ``front_end`` (N, frames, n_mels) -> (N, tokens_per_window, out_dim)."""
        mel = windows if windows.ndim == 3 else self.front_end(windows)
        fusion = mel.unsqueeze(1).expand(-1, 4, -1, -1)
        if self.nvclap.training:
            fusion = fusion.clone()  # laion-clap's train path writes into its input
        longer = torch.zeros(mel.shape[0], 1, dtype=torch.bool, device=mel.device)
        dtype = next(self.nvclap.parameters()).dtype
        return self.nvclap({"mel_fusion": fusion.to(dtype), "longer": longer}, device=mel.device)
