"""The listening demo, driven without a browser: build the app, set widgets, click, read what it shows."""

from __future__ import annotations

import datetime
import io

import numpy as np
import pytest
import soundfile as sf

from aqa_utils.data.dcase import load_split
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.demo import AQADemo, model_answerer


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    root = make_mini_benchmark(tmp_path_factory.mktemp("mini"), seed=0, n_train=3, n_dev=6, n_eval=3,
                               n_captions_train=3, n_captions_dev=3)
    return load_split(root, "dev").questions


def fake_answer(calls):
    """Answers the option containing the word 'two' if any, else the last option; records every call."""

    def answer(system, path, question, options):
        calls.append((system, path, question, tuple(options)))
        pick = next((i for i, o in enumerate(options) if "two" in o), len(options) - 1)
        probs = [0.1 / (len(options) - 1)] * len(options)
        probs[pick] = 0.9
        return {"answer": pick, "answer_text": options[pick], "choices": list(options), "probabilities": probs,
                "generated": f"({'abcdef'[pick]}) {options[pick]}"}

    return answer


def test_app_shows_first_clip_and_its_question(dev):
    app = AQADemo(dev, ["base", "LoRA r=8"], fake_answer([]))
    first = dev[0]
    assert app.question.value == first.question
    assert app.options.value.splitlines() == first.choices
    assert app.player.value[:4] == b"RIFF"  # playable WAV whatever the source format


def test_click_answers_with_the_chosen_system(dev):
    calls = []
    app = AQADemo(dev, ["base", "LoRA r=8"], fake_answer(calls))
    app.clip.value = app.clip.options[1]
    app.system.value = "LoRA r=8"
    app.question.value = "how many calls?"
    app.options.value = "one\ntwo\nthree"
    app.ask_button.click()
    assert calls[-1][0] == "LoRA r=8" and calls[-1][1] == dev[1].audio_path
    assert calls[-1][2:] == ("how many calls?", ("one", "two", "three"))
    assert app.state["answer"] == 1
    assert "(B) two" in app.result.value and "90.0%" in app.result.value
    assert "LoRA r=8" in app.result.value


def test_bad_input_is_refused_with_a_message(dev):
    calls = []
    app = AQADemo(dev, ["base"], fake_answer(calls))
    app.options.value = "only one option"
    app.ask_button.click()
    assert calls == [] and app.state is None
    assert "2 to 6 options" in app.result.value


def test_upload_adds_and_selects_the_clip(dev):
    calls = []
    app = AQADemo(dev, ["base"], fake_answer(calls))
    buffer = io.BytesIO()
    t = np.arange(16000) / 16000
    sf.write(buffer, 0.5 * np.sin(2 * np.pi * 440 * t), 16000, format="WAV")
    app.upload.value = ({"name": "tone.wav", "type": "audio/wav", "size": len(buffer.getvalue()),
                         "content": memoryview(buffer.getvalue()),
                         "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)
    assert app.clip.value == "uploaded: tone.wav"
    app.question.value = "what is it?"
    app.options.value = "a tone\nnoise"
    app.ask_button.click()
    assert calls[-1][1].name == "upload.wav" and calls[-1][1].read_bytes() == buffer.getvalue()


def test_real_tiny_model_answers_through_the_app(dev):
    import torch

    from aqa_utils.data.prompt import build_tokenizer
    from aqa_utils.model import build_model

    torch.manual_seed(0)
    model = build_model("af2-tiny").eval()
    answer = model_answerer(lambda name: model, build_tokenizer(), max_new_tokens=4)
    app = AQADemo(dev[:2], ["base"], answer)
    app.ask_button.click()
    out = app.state
    assert len(out["probabilities"]) == len(dev[0].choices)
    assert abs(sum(out["probabilities"]) - 1) < 1e-6
    assert out["answer"] == int(np.argmax(out["probabilities"]))
    assert f"({'ABCDEF'[out['answer']]}) {out['answer_text']}" in app.result.value
