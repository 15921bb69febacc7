"""The training loop (aqa_utils/training/) on af2-tiny and a small generated mini benchmark, on the CPU.

Exact resume (LoRA and full/captions), atomic checkpoints, non-finite loss handling, LoRA touching only the adapters,
a golden loss curve, and DDP (2 processes under torchrun, gloo) against a single process on the same global batch.

Cost: every optimizer step of af2-tiny is a real forward/backward (~0.3-1 s for LoRA at batch 4 on 2 free cores,
more in full mode, where the embedding trains too); runs are a handful of steps. Decoded audio is
shared between the trainers of this module (``trainer()``), which does not change any result: decoding is
deterministic and the store only caches it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import replace
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from aqa_utils.config import TrainConfig
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.data.mini.generic import PRESENCE_VOCABULARY
from aqa_utils.data.mini.vocabulary import CALLS, PITCHES, SPECIES
from aqa_utils.model import build_model
from aqa_utils.model import checkpoint as release
from aqa_utils.model.flamingo import AF2Model, LossOutput
from aqa_utils.audio import ClipCache
from aqa_utils.training import NonFiniteLossError, Trainer, audio_reliance, read_metrics
from aqa_utils.training.checkpointer import Checkpointer
from aqa_utils.training.examples import CAPTION_PROMPT, CaptionExamples
from aqa_utils.training.objectives import FrozenClapTokens
from ddp_worker import ddp_config, deterministic_clap

REPO = Path(__file__).resolve().parents[1]
SIZES = dict(n_train=24, n_dev=8, n_eval=3, n_captions_train=16, n_captions_dev=4)
LORA_STEPS = 4  # of the 6 steps in one epoch (24 examples, global batch 4)

_CLIP_STORES: dict[str, ClipCache] = {}


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The small mini benchmark and a base checkpoint (seeded af2-tiny with open cross-attention gates)."""
    root = tmp_path_factory.mktemp("train")
    data = make_mini_benchmark(root / "mini", seed=0, **SIZES)
    torch.manual_seed(0)
    model = build_model("af2-tiny")
    with torch.no_grad():  # gates at 0 (Flamingo's init) would stop every gradient to CLAP / the audio transformer
        for layer in model.flamingo_layers:
            layer.gated_cross_attn_layer_sound.attn_gate.fill_(0.6)
            layer.gated_cross_attn_layer_sound.ff_gate.fill_(0.6)
    release.save(model, root / "base")
    return SimpleNamespace(root=root, data=data, base=root / "base")


def lora_config(work, out_dir: Path, **changes) -> TrainConfig:
    """The LoRA run of this module: 4 steps, checkpoint every 2, validation loss (4 dev examples) every 3."""
    settings = dict(model="af2-tiny", checkpoint=str(work.base), data_root=str(work.data), batch_size=4,
                    max_steps=LORA_STEPS, save_every=2, eval_every=3, val_split="dev", max_val_examples=4,
                    progress=False, seed=0, out_dir=str(out_dir))
    settings.update(changes)
    return TrainConfig(**settings)


def trainer(cfg: TrainConfig, **kw) -> Trainer:
    """A Trainer whose decoded clips are shared with the other trainers of this module."""
    t = Trainer(cfg, **kw)
    key = repr(t.model_config.audio)
    t.objective.clips = _CLIP_STORES.setdefault(key, t.objective.clips)
    return t


@pytest.fixture(scope="module")
def run_a(work):
    """The reference LoRA run, uninterrupted: its trainer (still in memory) and its folder."""
    out = work.root / "run_a"
    t = trainer(lora_config(work, out))
    summary = t.fit()
    assert summary["steps"] == LORA_STEPS and not summary["resumed"]
    return SimpleNamespace(trainer=t, out=out, summary=summary)


def adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run_dir) / "final" / "adapter_model.safetensors"))


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def latest(run_dir: Path) -> str:
    return (Path(run_dir) / "checkpoints" / "latest").read_text().strip()


# ------------------------------------------------------------------------------------------------------ 1. resume
def test_exact_resume_lora(work, run_a, tmp_path):
    out = tmp_path / "run_b"
    cfg = lora_config(work, out)
    first = trainer(cfg).fit(stop_after=3)  # "killed" after step 3; the last checkpoint is step 2
    assert first["steps"] == 3 and "final" not in first and not (out / "final").exists()
    assert latest(out) == "step_000002"
    assert [row["step"] for row in read_metrics(out)] == [1, 2, 3]

    second = trainer(cfg).fit()  # a new process: resumes from step 2, replays step 3
    assert second["resumed"] and second["steps"] == LORA_STEPS

    a, b = adapter(run_a.out), adapter(out)
    assert a and all("lora_" in k for k in a)
    assert_same_tensors(a, b)
    # Whole rows: steps, losses, learning rates, gradient norms, token counts and the validation loss at step 3.
    rows_a, rows_b = read_metrics(run_a.out), read_metrics(out)
    assert [r["step"] for r in rows_a] == list(range(1, LORA_STEPS + 1))
    assert rows_a == rows_b
    assert "val_loss" in rows_a[2] and "val_loss" not in rows_a[1]
    assert second["val_loss"] == run_a.summary["val_loss"]


# ------------------------------------------------------------------------------------------------------ 2. full
def test_exact_resume_full_captions(work, tmp_path):
    def cfg(out):
        return TrainConfig(model="af2-tiny", checkpoint=str(work.base), data_root=str(work.data), corpus="captions",
                           mode="full", batch_size=4, max_steps=2, save_every=1, val_split=None, progress=False,
                           seed=0, out_dir=str(out))

    a = trainer(cfg(tmp_path / "a"))
    a.fit()
    trainer(cfg(tmp_path / "b")).fit(stop_after=1)
    b = trainer(cfg(tmp_path / "b"))
    assert b.fit()["resumed"]

    trainable_a, trainable_b = Checkpointer.trainable_state(a.unwrapped), Checkpointer.trainable_state(b.unwrapped)
    # Full mode: every weight trains but laion-clap's own (unused, frozen) STFT/mel front end.
    frozen = {n for n, p in a.unwrapped.named_parameters() if not p.requires_grad}
    assert frozen and all(".spectrogram_extractor." in n or ".logmel_extractor." in n for n in frozen)
    assert len(trainable_a) > 100
    assert_same_tensors(trainable_a, trainable_b)
    # Everything else too: CLAP's batch-norm running statistics move in full training and must survive a resume.
    assert_same_tensors(a.unwrapped.state_dict(), b.unwrapped.state_dict())
    base = release.load(work.base)[0].state_dict()
    moved = [k for k in base if "running_mean" in k and not torch.equal(base[k], a.unwrapped.state_dict()[k])]
    assert moved, "full training should update CLAP's batch-norm statistics"
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    assert (tmp_path / "b" / "final" / release.CONFIG_FILE).exists()


# ------------------------------------------------------------------------------------------------------ 3. atomic
def test_failed_checkpoint_write_keeps_previous(work, run_a, tmp_path, monkeypatch):
    out = tmp_path / "run_c"
    cfg = lora_config(work, out)
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        path = Path(f)
        if path.name == "optimizer.pt" and path.parent.name.startswith("step_000004"):
            raise OSError("No space left on device (simulated)")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="simulated"):
        trainer(cfg).fit()
    monkeypatch.undo()

    folder = out / "checkpoints"
    assert latest(out) == "step_000002"
    assert not (folder / "step_000004").exists()
    assert {p.name for p in folder.iterdir()} <= {"latest", "step_000002", "step_000004.tmp"}
    assert not (out / "final").exists()

    summary = trainer(cfg).fit()  # resumes from step 2 (the half-written .tmp is ignored, then replaced)
    assert summary["resumed"] and summary["steps"] == LORA_STEPS
    assert latest(out) == "step_000004" and not (folder / "step_000004.tmp").exists()
    assert_same_tensors(adapter(run_a.out), adapter(out))
    assert read_metrics(out) == read_metrics(run_a.out)


# ------------------------------------------------------------------------------------------------------ 4. NaN
def test_non_finite_loss_stops_and_keeps_last_checkpoint(work, tmp_path, monkeypatch):
    out = tmp_path / "run_nan"
    cfg = lora_config(work, out, eval_every=0, val_split=None)
    real_forward = AF2Model.forward
    training_calls = []

    def forward(self, *args, **kwargs):
        result = real_forward(self, *args, **kwargs)
        if kwargs.get("labels") is not None and self.training:
            training_calls.append(1)
            if len(training_calls) == 3:  # step 3: the loss sum becomes NaN (the graph stays connected)
                nan = float("nan")
                return LossOutput(result.loss * nan, result.loss_sum * nan, result.n_tokens)
        return result

    monkeypatch.setattr(AF2Model, "forward", forward)
    t = trainer(cfg)
    with pytest.raises(NonFiniteLossError) as err:
        t.fit()
    monkeypatch.undo()
    message = str(err.value)
    assert "non-finite" in message and str(out / "checkpoints") in message
    assert t.step == 2 and len(training_calls) == 3
    assert latest(out) == "step_000002" and not (out / "checkpoints" / "step_000003").exists()
    assert [row["step"] for row in read_metrics(out)] == [1, 2]
    # The NaN never reached the weights (the error comes before the optimizer step) ...
    in_memory = Checkpointer.trainable_state(t.unwrapped)
    assert all(torch.isfinite(v).all() for v in in_memory.values())

    # ... and the last good checkpoint loads and trains on.
    again = trainer(cfg)
    assert again.resume() and again.step == 2
    assert_same_tensors(Checkpointer.trainable_state(again.unwrapped), in_memory)
    summary = again.fit(stop_after=1)
    assert summary["resumed"] and summary["steps"] == 3
    assert math.isfinite(read_metrics(out)[-1]["loss"])


# ------------------------------------------------------------------------------------------------------ 5. frozen base
def test_lora_changes_only_adapters(work, run_a):
    peft_model = run_a.trainer.unwrapped
    trained = peft_model.get_base_model().state_dict()
    base = {k: v for k, v in trained.items() if "lora_" not in k}
    base = {k.replace(".base_layer.", "."): v for k, v in base.items()}
    fresh = release.load(work.base)[0].state_dict()
    assert base.keys() == fresh.keys()
    changed = [k for k in fresh if not torch.equal(base[k], fresh[k])]
    assert not changed, f"LoRA training changed base tensors: {changed[:5]}"
    assert any("running_var" in k for k in fresh) and any("num_batches_tracked" in k for k in fresh)

    lora_b = {k: v for k, v in trained.items() if "lora_B" in k}
    assert {k.split(".")[0] for k in lora_b} == {"clap", "audio_transformer_clap", "lang_encoder"}
    zero = [k for k, v in lora_b.items() if float(v.norm()) == 0.0]
    assert not zero, f"adapters that never trained: {zero[:5]}"

    saved = adapter(run_a.out)
    assert saved and all("lora_A" in k or "lora_B" in k for k in saved)
    n_lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    assert sum(v.numel() for v in saved.values()) == n_lora == run_a.summary["lora_parameters"]["total"]


def test_frozen_clap_trains_the_rest_from_cached_tokens(work, tmp_path):
    """AF2's first stage: CLAP frozen (eval mode, its tokens cached once per clip), everything else trains."""
    cfg = TrainConfig(model="af2-tiny", checkpoint=str(work.base), data_root=str(work.data), corpus="captions",
                      mode="full", frozen=("clap",), batch_size=4, max_steps=1, val_split=None, progress=False,
                      seed=0, out_dir=str(tmp_path / "run"))
    t = trainer(cfg)
    assert t.objective.clap_tokens == {}
    assert not any(p.requires_grad for p in t.unwrapped.clap.parameters())
    examples = [t.train_data.get(i, 0) for i in range(4)]
    from_windows = trainer(replace(cfg, cache_clap_tokens=False))
    assert from_windows.objective.clap_tokens is None
    losses = []
    for tr in (t, from_windows):
        tr.model.eval()
        with torch.no_grad():
            losses.append(float(tr.objective.loss_sum(tr.model, tr.core, examples, "cpu", contextlib.nullcontext)))
    assert len(t.objective.clap_tokens) == len({e.audio_path for e in examples})  # one entry per distinct clip
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    model = t.unwrapped.eval()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    t.fit()
    after = t.unwrapped.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any(k.startswith("clap.") for k in changed)  # batch-norm statistics included
    assert any(k.startswith("audio_transformer_clap.") for k in changed)
    assert any("gated_cross_attn_layer_sound" in k for k in changed) and "lang_encoder.lm_head.weight" in changed


def test_runs_sharing_a_frozen_clap_compute_its_tokens_once(work, tmp_path):
    """The base's stages 1-3 hand one token store on: a run with the same frozen CLAP reads it without running CLAP
    and gets the loss a store of its own gives, bit for bit; a run whose CLAP differs empties it first."""
    cfg = TrainConfig(model="af2-tiny", checkpoint=str(work.base), data_root=str(work.data), corpus="captions",
                      mode="full", frozen=("clap",), batch_size=4, max_steps=1, val_split=None, progress=False,
                      seed=0, out_dir=str(tmp_path / "first"))
    store = FrozenClapTokens()

    def loss_of(t):
        t.model.eval()
        with torch.no_grad():
            return float(t.objective.loss_sum(t.model, t.core, examples, "cpu", contextlib.nullcontext))

    first = trainer(cfg, clap_tokens=store)
    examples = [first.train_data.get(i, 0) for i in range(4)]
    reference = loss_of(first)
    computed = dict(store)
    assert first.objective.clap_tokens is store and len(store) == len({e.audio_path for e in examples})

    second = trainer(replace(cfg, out_dir=str(tmp_path / "second")), clap_tokens=store)
    second.core.clap.forward = lambda *a, **k: pytest.fail("CLAP ran although its tokens were handed over")
    assert loss_of(second) == reference and all(store[k] is v for k, v in computed.items())

    alone = trainer(replace(cfg, out_dir=str(tmp_path / "alone")))  # a store of its own: the same bits
    assert loss_of(alone) == reference
    assert all(torch.equal(alone.objective.clap_tokens[k], v) for k, v in computed.items())

    other = trainer(replace(cfg, out_dir=str(tmp_path / "other")), clap_tokens=store)
    with torch.no_grad():
        dict(other.core.clap.named_parameters())["nvclap.patch_embed.proj.weight"].add_(0.1)
    loss_of(other)
    assert store.key != alone.objective.clap_tokens.key and len(store) == len(computed)
    assert any(not torch.equal(store[k], v) for k, v in computed.items())


def test_lora_from_cached_log_mels_has_the_gradients_of_lora_from_waveforms(work, tmp_path):
    """CLAP trains under LoRA, so its tokens cannot be cached, but its fixed front end can: each clip's log-mel is
    computed once (``LogMels``), and a batch's loss and every adapter's gradient are bit-identical to the model's
    own front end's."""
    cfg = TrainConfig(model="af2-tiny", checkpoint=str(work.base), data_root=str(work.data), corpus="questions",
                      mode="lora", batch_size=4, max_steps=1, val_split=None, progress=False, seed=0,
                      spec_augment=False, out_dir=str(tmp_path / "run"))
    t = trainer(cfg)
    assert t.objective.mels is not None and trainer(replace(cfg, cache_audio=False)).objective.mels is None
    named = [(n, p) for n, p in t.model.named_parameters() if p.requires_grad]
    with torch.no_grad():  # adapters away from their zero start, so every one of them gets a gradient
        for n, p in named:
            if "lora_B" in n:
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(n)))
    examples = [t.train_data.get(i, 0) for i in range(4)]
    mels, runs = t.objective.mels, []
    for cached in (None, mels, mels):  # from waveforms, then filling the cache, then reading it
        t.objective.mels = cached
        t.model.eval()  # no LoRA dropout: the two passes must see the same network
        for _, p in named:
            p.grad = None
        loss = t.objective.loss_sum(t.model, t.core, examples, "cpu", contextlib.nullcontext)
        loss.backward()
        runs.append((float(loss.detach()), {n: p.grad.clone() for n, p in named}))
    assert len(mels._mels) == len({e.audio_path for e in examples})
    for loss, grads in runs[1:]:
        assert loss == runs[0][0]
        assert all(torch.equal(grads[n], runs[0][1][n]) for n in grads)
    assert any(n.startswith("clap.") or ".clap." in n for n in runs[0][1])


def test_tagging_from_cached_log_mels_has_the_loss_and_gradients_of_tagging_from_waveforms(work, tmp_path):
    """Stage 0 (CLAP tagging) computes each clip's log-mel once too: a batch's loss and every gradient are
    bit-identical to the model's own front end's, and validation scores the same."""
    cfg = TrainConfig(model="af2-tiny", data_root=str(work.data), corpus="tags", mode="full",
                      frozen=("audio_transformer", "xattn", "lm"), spec_augment=False, batch_size=4, max_steps=1,
                      val_split=None, progress=False, seed=0, out_dir=str(tmp_path / "run"))
    t = trainer(cfg)
    assert t.objective.mels is not None and trainer(replace(cfg, cache_audio=False)).objective.mels is None
    named = [(n, p) for n, p in t.model.named_parameters() if p.requires_grad]
    examples = [t.train_data.get(i, 0) for i in range(4)]
    mels, runs = t.objective.mels, []
    for cached in (None, mels, mels):  # from waveforms, then filling the cache, then reading it
        t.objective.mels = cached
        t.model.eval()  # no dropout, batch-norm from its running statistics: the passes must see the same network
        for _, p in named:
            p.grad = None
        loss = t.objective.loss_sum(t.model, t.core, examples, "cpu", contextlib.nullcontext)
        loss.backward()
        scores = t.objective.validate(t.model, t.core, [examples], "cpu", contextlib.nullcontext, lambda x: x)
        runs.append((float(loss.detach()), {n: p.grad.clone() for n, p in named if p.grad is not None},
                     scores["val_map"]))
    assert len(mels._mels) == len({path for path, _ in examples})
    assert any(n.startswith("af2.clap.") for n in runs[0][1]) and "head.proj.weight" in runs[0][1]
    for loss, grads, val_map in runs[1:]:
        assert loss == runs[0][0] and val_map == runs[0][2] and grads.keys() == runs[0][1].keys()
        assert all(torch.equal(grads[n], runs[0][1][n]) for n in grads)


def test_audio_reliance_sees_whether_the_audio_reaches_the_lm(work):
    examples = [CaptionExamples(work.data, "dev", train=False).get(i, 0) for i in range(8)]
    model, _ = release.load(work.base)  # cross-attention gates open: the audio reaches the LM
    listening = audio_reliance(model, examples, batch_size=4)
    assert listening["matched"] != pytest.approx(listening["shuffled"], rel=1e-4)
    with torch.no_grad():  # gates shut: Flamingo's identity, the LM cannot hear
        for layer in model.flamingo_layers:
            layer.gated_cross_attn_layer_sound.attn_gate.zero_()
            layer.gated_cross_attn_layer_sound.ff_gate.zero_()
    deaf = audio_reliance(model, examples, batch_size=4)
    assert deaf["matched"] == pytest.approx(deaf["shuffled"], rel=1e-6)
    with pytest.raises(ValueError, match="more than half"):
        audio_reliance(model, examples[:2] * 2 + examples[:1], batch_size=4)


def test_unknown_frozen_component_is_refused(work, tmp_path):
    cfg = TrainConfig(model="af2-tiny", checkpoint=str(work.base), data_root=str(work.data), corpus="captions",
                      mode="full", frozen=("clap", "vision"), progress=False, out_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match=r"unknown component\(s\) \['vision'\]"):
        Trainer(cfg)


def test_malformed_caption_lines_are_all_listed(tmp_path):
    lines = ['{"audio": "a.wav", "text": "a knock.", "sounds": ["knock"]}',
             '{"audio": "b.wav", "text": "a bell."}',
             'not json',
             '{"audio": "c.wav", "sounds": ["horn"]}']
    (tmp_path / "captions").mkdir()
    (tmp_path / "captions" / "train.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as err:
        CaptionExamples(tmp_path, "train")
    message = str(err.value)
    assert "3 malformed caption line(s)" in message
    assert all(f"train.jsonl:{n}:" in message for n in (2, 3, 4)) and "train.jsonl:1:" not in message


def test_caption_examples_render_captions_presence_and_copy_questions(work):
    train, dev = CaptionExamples(work.data, "train", seed=0), CaptionExamples(work.data, "dev", train=False)
    assert len(train) == 2 * SIZES["n_captions_train"] and len(dev) == 2 * SIZES["n_captions_dev"]
    caption, presence = train.get(0, 0), train.get(1, 0)
    assert caption.prompt == CAPTION_PROMPT and presence.prompt != CAPTION_PROMPT
    # A presence question's answer is a sound of its clip, named by the caption, and answered by its text alone.
    assert presence.audio_path == caption.audio_path and presence.target in caption.target
    assert presence.target in presence.prompt and not presence.target.startswith("(")
    # On a clip of one animal, about half the presence questions ask its call shape (the one its caption names),
    # against shapes it does not make; on any other clip, none does.
    lines = [(train.clips[i // 2][1], train.get(i, epoch)) for epoch in range(4) for i in range(1, len(train), 2)]
    one_animal = [(text, ex) for text, ex in lines if re.search(r" (whistle|moan|click train|trill) calls", text)]
    shaped = [(text, ex) for text, ex in one_animal if ex.target in CALLS]
    assert one_animal and 0.35 < len(shaped) / len(one_animal) < 0.65
    assert all(f" {ex.target} calls" in text and not any(v in ex.prompt for v in PRESENCE_VOCABULARY)
               for text, ex in shaped)  # the options are call shapes only
    assert not any(ex.target in CALLS for text, ex in lines if (text, ex) not in one_animal)
    # Training: the report's augmentation, seeded by (seed, epoch, index); validation: the fixed (A) format.
    renders = {train.get(1, epoch).prompt for epoch in range(8)}
    assert len(renders) > 1 and train.get(1, 3) == train.get(1, 3)
    assert dev.get(1, 0).prompt.count("(A)") == 1 and dev.get(1, 0).target in dev.get(1, 0).prompt
    # Stage 2's corpus: the same two lines per clip and two text-only copy questions that state their answer.
    mixed = CaptionExamples(work.data, "train", seed=0, copy=True)
    assert len(mixed) == 4 * SIZES["n_captions_train"] and mixed.get(0, 0) == caption
    copies = [mixed.get(i, 0) for i in range(len(mixed)) if mixed.KINDS[i % 4] == "copy"]
    assert len(copies) == 2 * SIZES["n_captions_train"]
    assert all(ex.target in ex.prompt.split(".")[0] and ex.prompt != CAPTION_PROMPT for ex in copies)
    # Stage 3's: and two text-only species facts per clip, as multiple choice, seeded like the rest.
    facts = CaptionExamples(work.data, "train", seed=0, copy=True, facts=True)
    assert len(facts) == 6 * SIZES["n_captions_train"] and facts.KINDS[:4] == mixed.KINDS
    assert [facts.get(i, 0) for i in range(4)] == [mixed.get(i, 0) for i in range(4)]  # clip 0's first four lines
    lines = [facts.get(i, 1) for i in range(len(facts)) if facts.KINDS[i % 6] == "fact"]
    assert len(lines) == 2 * SIZES["n_captions_train"] and len({ex.prompt for ex in lines}) > 3
    # Each names one species and offers its answer among the options, in the training augmentation's formats.
    for ex in lines:
        species = next(sp for sp in SPECIES if sp.name in ex.prompt)
        assert (ex.target == species.pitch) if "pitch" in ex.prompt else (ex.target in species.calls), ex
        assert ex.target in ex.prompt
    dev_facts = CaptionExamples(work.data, "dev", seed=0, train=False, copy=True, facts=True)
    fact = next(dev_facts.get(i, 0) for i in range(len(dev_facts)) if dev_facts.KINDS[i % 6] == "fact")
    assert fact.prompt.count("(A)") == 1 and fact.target in fact.prompt


# ------------------------------------------------------------------------------------------------------ 6. golden
# Re-pinned when af2-tiny's vocabulary was trimmed to the mini benchmark's 626 tokens (a random LM's first loss is
# about ln(vocabulary size)). Produced by this module's run A (lora_config: base = torch.manual_seed(0) af2-tiny with gates 0.6, mini
# benchmark seed 0 with SIZES, batch 4, seed 0, LoRA rank 8 / alpha 16 / dropout 0.05, lr 1e-3 with 10 warm-up
# steps), reading read_metrics(run_a.out)[:3] and printing the values with repr(). Changing the loss (sum over answer
# tokens / token count), the label masking, the data order or the augmentation must break this test.
GOLDEN = [  # (step, answer tokens in the global batch, mean loss per answer token)
    (1, 14, 6.53766850062779),
    (2, 14, 6.533061981201172),
    (3, 17, 6.465641246122472),
]


def test_golden_loss_curve(run_a):
    rows = read_metrics(run_a.out)[:3]
    assert [(r["step"], r["tokens"]) for r in rows] == [(s, n) for s, n, _ in GOLDEN]
    # 2e-5 relative (~2.4e-4 absolute): far above float32 noise, well below the 3e-3..3e-2 between batches.
    for row, (_, _, loss) in zip(rows, GOLDEN):
        assert row["loss"] == pytest.approx(loss, rel=2e-5)


# ------------------------------------------------------------------------------------------------------ 7. DDP
def test_ddp_two_processes_match_one(work, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip(f"torchrun not found next to {sys.executable}")
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", str(REPO / "tests" / "ddp_worker.py"),
           str(work.data), str(work.base), str(ddp_out), "2", "2"]  # 2 processes x batch 2 = global batch 4, 2 steps
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "world=2 backend=gloo" in proc.stdout

    single = trainer(ddp_config(work.data, work.base, single_out, batch_size=4, steps=2))
    assert single.world == 1
    deterministic_clap(single)
    single.fit()

    a, b = adapter(ddp_out), adapter(single_out)
    assert a.keys() == b.keys()
    far = {k: float((a[k] - b[k]).abs().max()) for k in a if not torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4)}
    assert not far, f"DDP and single-process adapters differ: {far}"
    # Adam is invariant to a constant gradient scale, so the weights alone would not catch a wrong normalisation
    # (e.g. a missing factor `world`): the logged loss and clipped-gradient norm do.
    rows_a, rows_b = read_metrics(ddp_out), read_metrics(single_out)
    assert [(r["step"], r["tokens"], r["lr"]) for r in rows_a] == [(r["step"], r["tokens"], r["lr"]) for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
        assert ra["grad_norm"] == pytest.approx(rb["grad_norm"], rel=1e-4)
