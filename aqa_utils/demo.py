"""The listening demo: pick (or upload) a clip, hear it, see its spectrogram, ask a multiple-choice question, choose
the base model or an adapter, and read the answer with each option's probability.

All logic lives here so it can be tested without a browser: ``AQADemo`` builds the widgets, ``ask()`` is what the
button does, and ``state`` holds the last answer.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
import time
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from aqa_utils.audio import ClipCache, load_clip
from aqa_utils.config import AudioConfig
from aqa_utils.data.dcase import Question, strip_labels, subset_of
from aqa_utils.evaluation.engine import EncodedClips, Item, audio_config_of, core_of, run_items
from aqa_utils.evaluation.settings import EvalSettings

Answerer = Callable[[str, Path, str, list[str]], dict]


def spectrogram_figure(path: Path, audio: AudioConfig = AudioConfig()):
    """Log-mel spectrogram of the clip as the model's front end sees it (16 kHz, 64 mels, first 2 min)."""
    import torchaudio

    wave = load_clip(path, audio)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=audio.sample_rate, n_fft=audio.n_fft, hop_length=audio.hop_length, f_min=audio.f_min,
        f_max=audio.f_max, n_mels=audio.n_mels)(wave)
    db = torchaudio.transforms.AmplitudeToDB(top_db=80)(mel)
    fig, ax = plt.subplots(figsize=(8, 2.4))
    seconds = wave.shape[0] / audio.sample_rate
    ax.imshow(db.numpy(), origin="lower", aspect="auto", extent=(0, seconds, 0, audio.n_mels), cmap="magma")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    fig.tight_layout()
    return fig


def wav_bytes(path: Path, audio: AudioConfig = AudioConfig()) -> bytes:
    """The clip as 16 kHz mono 16-bit WAV bytes, playable by any browser whatever the source format."""
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, load_clip(path, audio).numpy(), audio.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class AQADemo:
    """The ipywidgets app. ``answer(system, audio_path, question, options) -> predict_one-style dict``."""

    def __init__(self, questions: list[Question], systems: list[str], answer: Answerer, audio: AudioConfig = AudioConfig()):
        self.questions = {f"{q.qid} ({q.subset}, {q.audio_path.name})": q for q in questions}
        self.answer_fn, self.audio = answer, audio
        self.clips: dict[str, Path] = {label: q.audio_path for label, q in self.questions.items()}
        self.state: dict | None = None

        self.clip = widgets.Dropdown(options=list(self.clips), description="clip")
        self.upload = widgets.FileUpload(accept="audio/*,.wav,.mp3,.flac", multiple=False, description="upload")
        self.system = widgets.Dropdown(options=systems, description="model")
        self.question = widgets.Text(description="question", layout=widgets.Layout(width="90%"))
        self.options = widgets.Textarea(description="options", placeholder="one option per line (2 to 6)",
                                        layout=widgets.Layout(width="90%", height="110px"))
        self.ask_button = widgets.Button(description="Ask", button_style="primary")
        self.player = widgets.Audio(autoplay=False)
        self.picture = widgets.Output()
        self.result = widgets.HTML()
        self.clip.observe(lambda change: self.select(change["new"]), names="value")
        self.upload.observe(lambda change: self._uploaded(change["new"]), names="value")
        self.ask_button.on_click(lambda _: self.ask())
        self.view = widgets.VBox([
            widgets.HBox([self.clip, self.upload]), self.player, self.picture, self.question, self.options,
            widgets.HBox([self.system, self.ask_button]), self.result,
        ])
        if self.clips:
            self.select(self.clip.value)

    def select(self, label: str) -> None:
        """Show a clip: player, spectrogram and (for a benchmark clip) its question and options."""
        path = self.clips[label]
        self.player.value = wav_bytes(path, self.audio)
        with self.picture:
            self.picture.clear_output(wait=True)
            fig = spectrogram_figure(path, self.audio)
            display(fig)
            plt.close(fig)
        q = self.questions.get(label)
        if q is not None:
            self.question.value = q.question
            self.options.value = "\n".join(q.choices)

    def _uploaded(self, files) -> None:
        if not files:
            return
        item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        suffix = Path(item["name"]).suffix or ".wav"
        target = Path(tempfile.mkdtemp(prefix="aqa_upload_")) / f"upload{suffix}"
        target.write_bytes(bytes(item["content"]))
        label = f"uploaded: {item['name']}"
        self.clips[label] = target
        self.clip.options = list(self.clips)
        self.clip.value = label

    def ask(self) -> dict | None:
        """What the button does: answer the typed question about the selected clip with the chosen system."""
        options = [line.strip() for line in self.options.value.splitlines() if line.strip()]
        if not self.question.value.strip() or not 2 <= len(options) <= 6:
            self.result.value = "<b>Type a question and 2 to 6 options, one per line.</b>"
            self.state = None
            return None
        out = self.answer_fn(self.system.value, self.clips[self.clip.value], self.question.value, options)
        self.state = out
        rows = "".join(
            f"<tr><td>{'&#9654;' if i == out['answer'] else ''}</td><td>({chr(65 + i)}) {html.escape(t)}</td>"
            f"<td>{100 * p:.1f}%</td></tr>" for i, (t, p) in enumerate(zip(out["choices"], out["probabilities"])))
        generated = out.get("generated")
        self.result.value = (
            f"<p><b>Answer ({html.escape(self.system.value)}):</b> ({chr(65 + out['answer'])}) "
            f"{html.escape(out['answer_text'])}</p><table>{rows}</table>"
            + (f"<p>AF2 free-text answer: <code>{html.escape(generated)}</code></p>" if generated is not None else "")
        )
        return out


def model_answerer(load: Callable[[str], object], tokenizer, max_new_tokens: int = 32) -> Answerer:
    """An ``answer`` function over lazily loaded models: ``load(system_name) -> model`` (cached)."""

    models: dict[str, object] = {}

    def answer(system: str, path: Path, question: str, options: list[str]) -> dict:
        if system not in models:
            models[system] = load(system)
        return predict_one(models[system], tokenizer, path, question, options, max_new_tokens=max_new_tokens)

    return answer


def probabilities_bar(out: dict):
    """A small bar chart of the option probabilities of one answer."""
    fig, ax = plt.subplots(figsize=(5, 2.2))
    labels = [f"({chr(65 + i)}) {t}" for i, t in enumerate(out["choices"])]
    ax.barh(labels[::-1], np.array(out["probabilities"])[::-1])
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    fig.tight_layout()
    return fig


def predict_one(model: Any, tokenizer: Any, audio_path: str | Path, question: str, choices: Sequence[str],
                max_new_tokens: int = 256, generate: bool = True) -> dict[str, Any]:
    """Answer one question about one clip (the demo): option probabilities (score) and the generated answer.

    ``choices``: option texts, with or without "A. " labels. Returns ``answer`` (index of the most likely
    option), ``answer_text``, ``probabilities`` (per option, softmax over the options' summed log-probs),
    ``logprobs``, ``generated`` (AF2's free answer; None with ``generate=False``) and ``generated_answer``
    (its parsed option index, None if unparsed), and ``seconds``.
    """
    texts = strip_labels(choices)
    if not 2 <= len(texts) <= 6:
        raise ValueError(f"predict_one: need 2 to 6 choices, got {len(texts)}")
    path = Path(audio_path)
    q = Question(qid="demo", split="demo", question=question, choices=texts, answer=None, clip_id=path.stem,
                 audio_path=path, subset=subset_of(path.name), question_type="",
                 json_path=path, raw_choices=[f"{chr(ord('A') + i)}. {t}" for i, t in enumerate(texts)])
    settings = EvalSettings(mode="both" if generate else "score", batch_size=1, max_new_tokens=max_new_tokens)
    t0 = time.perf_counter()
    clips = EncodedClips(ClipCache(audio_config_of(core_of(model)), 1), keep=1)
    item = Item(0, q, tuple(range(len(texts))))
    (scored,), _ = run_items(model, tokenizer, [item], "score", settings, clips)
    generated = None
    if generate:
        (generated,), _ = run_items(model, tokenizer, [item], "generate", settings, clips)
    return {
        "answer": scored.pred,
        "answer_text": texts[scored.pred],
        "choices": texts,
        "probabilities": scored.probs,
        "logprobs": scored.logprobs,
        "generated": None if generated is None else generated.text,
        "generated_answer": None if generated is None else generated.pred,
        "seconds": time.perf_counter() - t0,
    }
