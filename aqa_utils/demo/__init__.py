"""The listening demo (notebook 07): browse the benchmark or upload a clip, hear it, see it, ask every system.

Modules: ``answering`` (``predict_one``, ``free_answer``, input checks, ``Systems``: the compared systems loaded
on first use), ``figures`` (the clip as the model hears it, option probabilities), ``render`` (answers as HTML),
``app`` (the ipywidgets app, ``AQADemo``).
"""

from aqa_utils.demo.answering import DemoInputError, Systems, check_input, free_answer, predict_one, probe_order
from aqa_utils.demo.app import AQADemo
from aqa_utils.demo.figures import clip_figure, clip_summary, probabilities_figure, wav_bytes

__all__ = ["AQADemo", "DemoInputError", "Systems", "check_input", "clip_figure", "clip_summary", "free_answer",
           "predict_one", "probabilities_figure", "probe_order", "wav_bytes"]
