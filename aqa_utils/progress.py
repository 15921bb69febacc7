"""Progress bars: Jupyter widgets where a person watches a notebook, text where the output goes to a terminal.

``tqdm.auto`` draws widgets in every Jupyter kernel. The kernels ``make reproduce`` starts have nobody watching a
widget: their stderr is relayed to the terminal and stored in the executed notebooks (whose widget state is
dropped), where only text shows. ``make reproduce`` sets ``AQA_PROGRESS=text`` for them.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm as _auto
from tqdm.std import tqdm as _text

ENV = "AQA_PROGRESS"


def tqdm(*args, **kwargs):
    """A tqdm bar: text when ``AQA_PROGRESS=text``, else whatever ``tqdm.auto`` picks."""
    bar = _text if os.environ.get(ENV) == "text" else _auto
    return bar(*args, **kwargs)
