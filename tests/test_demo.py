"""The listening demo, driven without a browser: build the app, set widgets, click, read what it shows.

Most tests use ``FakeSystems`` (answers by fixed rules, so what the app must show is known); the last ones answer
with a real af2-tiny through ``Systems``. tests/test_browser.py checks the same app in JupyterLab.
"""

from __future__ import annotations

import datetime
import io

import numpy as np
import pytest
import soundfile as sf

from aqa_utils.config import AudioConfig
from aqa_utils.data.dcase import load_split
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.demo import AQADemo, Systems, free_answer, predict_one, probe_order
from aqa_utils.demo.render import side_by_side

BASE, LORA = "base (zero-shot)", "LoRA r=8"


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = make_mini_benchmark(tmp_path_factory.mktemp("mini"), seed=0, n_train=3, n_dev=9, n_eval=3,
                               n_captions_train=3, n_captions_dev=3)
    return {s: load_split(root, s).questions for s in ("train", "dev", "eval")}


class FakeSystems:
    """The base picks the option containing "two" (else the last); LoRA always picks what is shown first (pure
    position bias). Correctness: the base is right on the dev questions whose answer is option 0, LoRA never."""

    names = [BASE, LORA]

    def __init__(self, fail: bool = False):
        self.calls, self.fail = [], fail

    def answer(self, name, path, question, choices, order=None, generate=True):
        if self.fail:
            raise RuntimeError("the model fell over")
        order = list(range(len(choices))) if order is None else list(order)
        self.calls.append((name, path, question, tuple(choices), tuple(order)))
        shown = [choices[i] for i in order]
        pos = next((p for p, t in enumerate(shown) if "two" in t), len(shown) - 1) if name == BASE else 0
        probs = [0.1 / (len(choices) - 1)] * len(choices)
        probs[order[pos]] = 0.9
        return {"answer": order[pos], "answer_text": choices[order[pos]], "choices": list(choices), "order": order,
                "position": pos, "probabilities": probs, "generated": f"({'abcdef'[pos]}) {shown[pos]}" if generate
                else None, "generated_answer": order[pos] if generate else None, "seconds": 0.25, "load_seconds": 0.0}

    def free(self, name, path, question):
        self.calls.append((name, path, question, (), ()))
        return {"generated": f"a free answer by {name}", "seconds": 1.5, "load_seconds": 2.0}

    def correctness(self, name, questions):
        return {q.qid: name == BASE and q.answer == 0 for q in questions if q.answer is not None}


def wav(seconds: float, rate: int = 16000, fmt: str = "WAV") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.5 * np.sin(2 * np.pi * 440 * t), rate, format=fmt)
    return buffer.getvalue()


def upload(app, name: str, content: bytes) -> None:
    app.upload.value = ({"name": name, "type": "audio/x", "size": len(content), "content": memoryview(content),
                         "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)


def test_app_opens_on_the_first_question_with_its_clip(splits):
    app = AQADemo(splits, FakeSystems())
    first = splits["train"][0]
    assert app.current == first and app.question.value == first.question
    assert app.options.value.splitlines() == first.choices
    assert app.player.value[:4] == b"RIFF"  # playable WAV whatever the source format
    assert "window(s) of 10 s" in app.clip_info.value
    assert app.picture.value[:4] == b"\x89PNG"  # the waveform + spectrogram figure
    assert app.count.value == f"{len(splits['train'])} of {len(splits['train'])} questions"


def test_filters_by_split_subset_type_and_where_a_system_is_wrong(splits):
    app = AQADemo(splits, FakeSystems())
    app.split.value = "dev"
    dev = splits["dev"]
    assert [q for _, q in app.picker.options] == dev
    subset = dev[0].subset
    app.subset.value = subset
    assert [q for _, q in app.picker.options] == [q for q in dev if q.subset == subset]
    app.subset.value = "any"
    qtype = dev[-1].question_type
    app.qtype.value = qtype
    assert [q for _, q in app.picker.options] == [q for q in dev if q.question_type == qtype]
    app.qtype.value = "any"
    app.wrong.value = f"{BASE} is wrong"
    assert [q for _, q in app.picker.options] == [q for q in dev if q.answer != 0]
    app.wrong.value = f"{LORA} is wrong"
    assert [q for _, q in app.picker.options] == dev
    app.split.value = "eval"  # answers withheld: "wrong" cannot be decided, and the app says so
    assert "has no answers" in app.message.value


def test_ask_answers_with_every_system_side_by_side(splits):
    systems = FakeSystems()
    app = AQADemo(splits, systems)
    app.split.value = "dev"
    q = app.picker.options[1][1]
    app.picker.value = q
    app.ask_button.click()
    assert [c[0] for c in systems.calls] == [BASE, LORA]
    assert all(c[1] == q.audio_path and c[3] == tuple(q.choices) for c in systems.calls)
    html = app.result.value
    assert app.state["truth"] == q.answer and f"({'ABCDEF'[q.answer]}) {q.choices[q.answer]}" in html
    assert BASE in html and LORA in html and "90.0%" in html and "250 ms" in html
    lora_right = q.answer == 0
    assert app.state["answers"][LORA]["answer"] == 0 and (("&#10003;" if lora_right else "&#10007;") in html)
    assert app.bars.value[:4] == b"\x89PNG"  # the probability bars


def test_an_edited_question_has_no_true_answer(splits):
    app = AQADemo(splits, FakeSystems())
    app.options.value = "five\ntwo\nseven"  # no mini question has these options
    app.ask_button.click()
    assert app.state["truth"] is None and "true answer: unknown" in app.result.value
    assert app.state["answers"][BASE]["answer_text"] == "two"


def test_shuffle_probe_shows_position_bias(splits):
    systems = FakeSystems()
    app = AQADemo(splits, systems)
    app.question.value = "how many?"
    app.options.value = "one\ntwo\nthree"
    app.probe_button.click()
    assert systems.calls[-1][4] == tuple(probe_order(3)) == (2, 0, 1)
    state = app.state
    assert state["reordered"][BASE]["answer_text"] == state["answers"][BASE]["answer_text"] == "two"
    assert state["answers"][LORA]["answer_text"] == "one" and state["reordered"][LORA]["answer_text"] == "three"
    assert "changed" in app.result.value and "same option" in app.result.value
    assert app.bars.value[:4] == b"\x89PNG"


def test_free_question_without_options_is_generated_and_marked(splits):
    systems = FakeSystems()
    app = AQADemo(splits, systems)
    app.question.value = "what do you hear?"
    app.options.value = ""
    app.ask_button.click()
    assert app.state["kind"] == "free" and [c[3] for c in systems.calls] == [(), ()]
    assert "Free generation" in app.result.value and "a free answer by LoRA r=8" in app.result.value
    assert "1500 ms (+ model load 2000 ms)" in app.result.value  # the load is measured apart from the answer


@pytest.mark.parametrize("question, options, expected", [
    ("", "a\nb", "the question is empty"),
    ("which?", "only one", "got 1 option(s): give 2 to 6"),
    ("which?", "\n".join("abcdefg"), "got 7 option(s): give 2 to 6"),
])
def test_bad_input_gets_a_message_not_an_answer(splits, question, options, expected):
    systems = FakeSystems()
    app = AQADemo(splits, systems)
    app.question.value, app.options.value = question, options
    app.ask_button.click()
    assert systems.calls == [] and app.state is None
    assert expected in app.message.value and "Cannot answer" in app.message.value


def test_probe_needs_options(splits):
    app = AQADemo(splits, FakeSystems())
    app.options.value = ""
    app.probe_button.click()
    assert "got 0 option(s)" in app.message.value


def test_a_failing_model_is_reported_in_the_widget(splits):
    app = AQADemo(splits, FakeSystems(fail=True))
    assert app.ask() is None
    assert "RuntimeError: the model fell over" in app.message.value


@pytest.mark.parametrize("fmt, suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_upload_each_format_becomes_the_clip(splits, fmt, suffix):
    systems = FakeSystems()
    app = AQADemo(splits, systems)
    upload(app, f"tone{suffix}", wav(2.0, fmt=fmt))
    assert app.message.value == "" and app.clip_path.suffix == suffix and app.current is None
    assert "tone" + suffix in app.clip_info.value and app.player.value[:4] == b"RIFF"
    app.question.value, app.options.value = "what is it?", "a tone\nnoise"
    app.ask_button.click()
    assert systems.calls[-1][1] == app.clip_path and app.state["truth"] is None
    upload(app, f"again{suffix}", wav(1.0, fmt=fmt))  # a new clip clears the answers about the old one
    assert app.state is None and app.result.value == "" and app.bars.layout.display == "none"


def test_a_long_upload_is_windowed_as_in_evaluation(splits):
    app = AQADemo(splits, FakeSystems(), audio=AudioConfig(max_windows=2))
    upload(app, "long.wav", wav(25.0, rate=8000))
    assert "25.0 s long, 2 window(s) of 10 s, only the first 20 s are heard" in app.clip_info.value


@pytest.mark.parametrize("name, content, expected", [
    ("broken.wav", b"not audio at all", "broken.wav: unreadable"),
    ("notes.txt", b"hello", "notes.txt: not a supported audio file"),
])
def test_a_bad_upload_is_refused_with_its_name(splits, name, content, expected):
    app = AQADemo(splits, FakeSystems())
    before = app.clip_path
    upload(app, name, content)
    assert expected in app.message.value and app.clip_path == before


def test_answer_table_escapes_option_text():
    out = {"answer": 0, "answer_text": "<b>x</b>", "choices": ["<b>x</b>", "y"], "probabilities": [0.6, 0.4],
           "generated": "<i>", "generated_answer": None, "seconds": 0.01}
    html = side_by_side({"base": out}, truth=1)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<i>" not in html and "unparsed" in html and "&#10007;" in html


@pytest.fixture(scope="module")
def tiny():
    import torch

    from aqa_utils.data.prompt import tokenizer_for
    from aqa_utils.model import build_model

    torch.manual_seed(0)
    model = build_model("af2-tiny").eval()
    return model, tokenizer_for(model)


def test_real_tiny_model_answers_through_the_app(splits, tiny):
    model, tokenizer = tiny
    systems = Systems({BASE: lambda: model}, tokenizer, max_new_tokens=4)
    app = AQADemo({"dev": splits["dev"][:2]}, systems)
    app.ask_button.click()
    out = app.state["answers"][BASE]
    assert abs(sum(out["probabilities"]) - 1) < 1e-6
    assert out["answer"] == int(np.argmax(out["probabilities"]))
    assert out["load_seconds"] > 0 and out["seconds"] > 0
    assert f"({'ABCDEF'[out['answer']]}) {out['answer_text']}" in app.result.value
    app.ask_button.click()
    assert app.state["answers"][BASE]["load_seconds"] == 0.0  # loaded once


def test_predict_one_reorders_and_reports_in_original_indices(splits, tiny):
    model, tokenizer = tiny
    q = splits["dev"][0]
    order = probe_order(len(q.choices))
    out = predict_one(model, tokenizer, q.audio_path, q.question, q.choices, max_new_tokens=4, generate=False,
                      order=order)
    assert out["order"] == order and out["generated"] is None
    assert order[out["position"]] == out["answer"] == int(np.argmax(out["probabilities"]))
    with pytest.raises(ValueError, match="not a permutation"):
        predict_one(model, tokenizer, q.audio_path, q.question, q.choices, generate=False, order=[0, 0])


def test_free_answer_and_correctness_on_the_tiny_model(splits, tiny):
    from aqa_utils.evaluation import EvalSettings, evaluate

    model, tokenizer = tiny
    q = splits["dev"][0]
    out = free_answer(model, tokenizer, q.audio_path, "what do you hear?", max_new_tokens=4)
    assert isinstance(out["generated"], str) and out["seconds"] > 0
    systems = Systems({BASE: lambda: model}, tokenizer)
    right = systems.correctness(BASE, splits["dev"])
    table = evaluate(model, tokenizer, splits["dev"], EvalSettings(mode="score")).predictions
    assert right == dict(zip(table["qid"], table["correct"].astype(bool)))


def test_correctness_reads_saved_scores_and_scores_only_what_they_miss(splits, tiny):
    model, tokenizer = tiny
    dev = [q for q in splits["dev"] if q.answer is not None][:3]
    loads = []
    saved = {q.qid: i % 2 == 0 for i, q in enumerate(dev)}
    systems = Systems({BASE: lambda: loads.append(1) or model}, tokenizer, scored={BASE: saved})
    assert systems.correctness(BASE, dev) == saved and loads == []  # read, no model loaded
    del saved[dev[-1].qid]
    systems = Systems({BASE: lambda: loads.append(1) or model}, tokenizer, scored={BASE: saved})
    right = systems.correctness(BASE, dev)  # one question is not covered: the list is scored
    assert loads == [1] and set(right) == {q.qid for q in dev}
