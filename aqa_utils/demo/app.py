"""The ipywidgets app. All logic is in Python callbacks (``pick``, ``ask``, ``probe``, ``upload``), so
tests/test_demo.py drives it without a browser and tests/test_browser.py checks it in JupyterLab.

Layout: a question browser (split, subset, question type, "where a system is wrong"), the clip (player, waveform
and spectrogram, upload), the question and its options, then *Ask every system* / *Shuffle probe*; answers come
side by side with the measured time of each. Bad input shows a message in the widget, never a traceback.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import ipywidgets as widgets

from aqa_utils.audio import AudioError
from aqa_utils.config import AudioConfig
from aqa_utils.data.dcase import Question
from aqa_utils.demo import render
from aqa_utils.demo.answering import DemoInputError, check_input, probe_order
from aqa_utils.demo.figures import clip_figure, clip_summary, png_bytes, probabilities_figure, wav_bytes

ANY = "any"
UPLOAD_FORMATS = (".wav", ".flac", ".ogg", ".mp3")


def question_label(q: Question) -> str:
    return f"{q.qid} ({q.subset}, {q.question_type or 'no type'}): {q.question[:60]}"


def _guarded(method):
    """Run a callback; bad input or an unreadable clip becomes a message in the widget, never a traceback."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self.message.value = ""
        try:
            return method(self, *args, **kwargs)
        except (DemoInputError, AudioError) as e:
            self.message.value = render.error(str(e))
        except Exception as e:  # noqa: BLE001 - a demo must stay usable; the message names what failed
            self.message.value = render.error(f"{type(e).__name__}: {e}")
        return None

    return wrapper


class AQADemo:
    """``splits``: {split name: questions}; ``systems``: a ``Systems`` (names, answer, free, correctness)."""

    def __init__(self, splits: dict[str, list[Question]], systems, audio: AudioConfig = AudioConfig()):
        self.splits, self.systems, self.audio = {k: v for k, v in splits.items() if v}, systems, audio
        self.state: dict | None = None
        """The last answer: {"kind": "answers" | "probe" | "free", ...} with each system's answer dicts."""
        self.current: Question | None = None
        self.clip_path: Path | None = None
        names = systems.names

        self.split = widgets.Dropdown(options=list(self.splits), description="split")
        self.subset = widgets.Dropdown(description="subset")
        self.qtype = widgets.Dropdown(description="type")
        self.wrong = widgets.Dropdown(options=[ANY] + [f"{n} is wrong" for n in names] + ["every system is wrong"],
                                      description="where")
        self.picker = widgets.Dropdown(description="question", layout=widgets.Layout(width="95%"))
        self.count = widgets.HTML()
        self.upload = widgets.FileUpload(accept=",".join(UPLOAD_FORMATS), multiple=False, description="upload clip")
        self.clip_info = widgets.HTML()
        self.player = widgets.Audio(format="wav", autoplay=False, loop=False)
        # Figures go into Image widgets as PNG: an Output widget captures only inside a running kernel.
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="800px"))
        self.question = widgets.Text(description="question", layout=widgets.Layout(width="95%"))
        self.options = widgets.Textarea(description="options", layout=widgets.Layout(width="95%", height="120px"),
                                        placeholder="one option per line (2 to 6); none: free generation")
        self.ask_button = widgets.Button(description="Ask every system", button_style="primary")
        self.probe_button = widgets.Button(description="Shuffle probe")
        self.message = widgets.HTML()
        self.result = widgets.HTML()
        self.bars = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))

        self._filling = False  # while the split's filter options are refilled, their changes do not refilter
        self.split.observe(lambda _: self.change_split(), names="value")
        for w in (self.subset, self.qtype, self.wrong):
            w.observe(lambda _: self.refilter(), names="value")
        self.picker.observe(lambda change: self.pick(change["new"]), names="value")
        self.upload.observe(lambda change: self.uploaded(change["new"]), names="value")
        self.ask_button.on_click(lambda _: self.ask())
        self.probe_button.on_click(lambda _: self.probe())
        self.view = widgets.VBox([
            widgets.HBox([self.split, self.subset, self.qtype, self.wrong]), widgets.HBox([self.picker, self.count]),
            widgets.HBox([self.upload, self.clip_info]), self.player, self.picture, self.question, self.options,
            widgets.HBox([self.ask_button, self.probe_button]), self.message, self.result, self.bars,
        ])
        self.change_split()

    # -- browsing
    @_guarded
    def change_split(self) -> None:
        """Offer the split's subsets and question types, then show its questions."""
        questions = self.splits.get(self.split.value, [])
        self._filling = True
        try:
            self.subset.options = [ANY] + sorted({q.subset for q in questions})
            self.qtype.options = [ANY] + sorted({q.question_type for q in questions if q.question_type})
            self.subset.value = self.qtype.value = ANY
        finally:
            self._filling = False
        self.refilter()

    def filtered(self) -> list[Question]:
        """The current split's questions that pass the subset, type and "wrong" filters."""
        questions = self.splits.get(self.split.value, [])
        out = [q for q in questions if self.subset.value in (ANY, q.subset) and self.qtype.value in (ANY, q.question_type)]
        if self.wrong.value != ANY:
            names = self.systems.names if self.wrong.value == "every system is wrong" else \
                [self.wrong.value.removesuffix(" is wrong")]
            if not any(q.answer is not None for q in out):
                raise DemoInputError(f"the {self.split.value} split has no answers: nothing can be wrong")
            right = [self.systems.correctness(n, out) for n in names]
            out = [q for q in out if q.answer is not None and not any(r[q.qid] for r in right)]
        return out

    @_guarded
    def refilter(self) -> None:
        """Show the questions that pass the filters, and the first of them."""
        if self._filling:
            return
        shown = self.filtered()
        total = len(self.splits.get(self.split.value, []))
        self.count.value = f"{len(shown)} of {total} questions"
        self.picker.options = [(question_label(q), q) for q in shown]
        if shown:
            self.picker.value = shown[0]

    @_guarded
    def pick(self, q: Question | None) -> None:
        """Show a benchmark question: its clip (player, figure) and its question and options."""
        if q is None:
            return
        self.show_clip(q.audio_path)
        self.current = q
        self.question.value = q.question
        self.options.value = "\n".join(q.choices)

    def show_clip(self, path: Path, name: str | None = None) -> None:
        """Play and draw a clip (raises ``AudioError`` when it cannot be read, before anything changes)."""
        summary = clip_summary(path, self.audio)
        data = wav_bytes(path, self.audio)
        fig = clip_figure(path, self.audio, name)
        self.clip_path, self.current = Path(path), None
        self.result.value, self.state = "", None  # answers about the previous clip
        self._show_bars(None)
        self.player.value = data
        length = "unknown length" if summary["file_seconds"] is None else f"{summary['file_seconds']:.1f} s long"
        cut = "" if summary["file_seconds"] is None or summary["file_seconds"] <= summary["heard_seconds"] + 1e-3 \
            else f", only the first {summary['heard_seconds']:.0f} s are heard"
        self.clip_info.value = (f"clip <code>{name or Path(path).name}</code>: {length}, "
                                f"{summary['windows']} window(s) of {self.audio.window_seconds:g} s{cut}")
        self.picture.value = png_bytes(fig)

    @_guarded
    def uploaded(self, files) -> None:
        """An uploaded clip (WAV, FLAC, OGG, MP3) becomes the current clip; an unreadable one is refused."""
        if not files:
            return
        item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        name = item["name"]
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_FORMATS:
            raise DemoInputError(f"{name}: not a supported audio file (give {', '.join(UPLOAD_FORMATS)})")
        target = Path(tempfile.mkdtemp(prefix="aqa_upload_")) / f"upload{suffix}"
        target.write_bytes(bytes(item["content"]))
        try:
            self.show_clip(target, name)
        except AudioError as e:
            raise DemoInputError(f"{name}: {e.reason}" + (f" ({e.detail})" if e.detail else "")) from e

    # -- answering
    def _truth(self, texts: list[str]) -> int | None:
        q = self.current
        if q is None or q.answer is None or self.question.value != q.question or texts != q.choices:
            return None  # an edited question or options, an uploaded clip: the answer key no longer applies
        return q.answer

    def _inputs(self, free_allowed: bool) -> list[str]:
        if self.clip_path is None:
            raise DemoInputError("no clip: pick a question or upload a clip first")
        return check_input(self.question.value, self.options.value.splitlines(), free_allowed=free_allowed)

    def _show_bars(self, fig) -> None:
        """The probability chart, or none (hidden: an empty image shows as a broken one)."""
        self.bars.value = b"" if fig is None else png_bytes(fig)
        self.bars.layout.display = "none" if fig is None else None

    @_guarded
    def ask(self) -> dict | None:
        """What *Ask every system* does: every system answers; with no options, each generates freely."""
        texts = self._inputs(free_allowed=True)
        self.result.value, self.state = "", None
        self._show_bars(None)
        if not texts:
            answers = {n: self.systems.free(n, self.clip_path, self.question.value) for n in self.systems.names}
            self.state = {"kind": "free", "answers": answers}
            self.result.value = render.free(answers)
            return self.state
        answers = {n: self.systems.answer(n, self.clip_path, self.question.value, texts) for n in self.systems.names}
        truth = self._truth(texts)
        self.state = {"kind": "answers", "answers": answers, "truth": truth}
        self._show_bars(probabilities_figure(answers))  # drawn first: the table says "done"
        self.result.value = render.side_by_side(answers, truth)
        return self.state

    @_guarded
    def probe(self) -> dict | None:
        """What *Shuffle probe* does: every system scores the options as given and reordered (no generation: the
        probe compares option probabilities)."""
        texts = self._inputs(free_allowed=False)
        order = probe_order(len(texts))
        q, path, names = self.question.value, self.clip_path, self.systems.names
        given = {n: self.systems.answer(n, path, q, texts, generate=False) for n in names}
        moved = {n: self.systems.answer(n, path, q, texts, order=order, generate=False) for n in names}
        self.state = {"kind": "probe", "answers": given, "reordered": moved, "order": order}
        self._show_bars(probabilities_figure(given, moved))
        self.result.value = render.probe(given, moved)
        return self.state
