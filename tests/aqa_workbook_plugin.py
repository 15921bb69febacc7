"""pytest plugin for the whole suite (unit tests and nbval notebooks); loaded by ``-p`` from pyproject's addopts.

Two jobs, both of which must happen before anything else runs:

1. Make every run hermetic and offline. laion-clap fetches tokenizer files from the hub *at import time*, so
   the offline switches must be in ``os.environ`` before any test module (or notebook kernel, which inherits this
   process's environment) can import it. A plugin named by ``-p`` is imported before collection, which is the
   earliest point pytest offers.
2. Tell nbval not to compare stderr: warnings, logging and progress bars go there and vary between machines and
   library versions; what a notebook *shows* is stdout and display data.

It also runs the unit tests' workbook jobs one at a time (``AQA_JOBS=1``, see ``aqa_utils.parallel``).
"""

from __future__ import annotations

import os

# Forced, not defaulted: a test suite must never reach the network, whatever the caller's shell says.
FORCED_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "MPLBACKEND": "Agg",
}
# Defaulted: the thread count suits the 2-core reference machine; a bigger machine may raise it.
DEFAULT_ENV = {"OMP_NUM_THREADS": "2"}

# Notebook kernels draw figures with the inline backend (headless too: it renders with Agg). With MPLBACKEND=Agg
# inherited, ipykernel would keep Agg, ``plt.show()`` would display nothing, and every stored figure output would
# be reported missing by nbval.
NOTEBOOK_MPLBACKEND = "module://matplotlib_inline.backend_inline"

os.environ.update(FORCED_ENV)
for _key, _value in DEFAULT_ENV.items():
    os.environ.setdefault(_key, _value)


def pytest_configure(config):
    if getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False):
        os.environ["MPLBACKEND"] = NOTEBOOK_MPLBACKEND
    else:
        # Unit tests run the workbook's jobs in their own process (starting workers costs seconds per call); the
        # notebooks use workers, and tests/test_parallel.py checks that both give the same bytes.
        os.environ.setdefault("AQA_JOBS", "1")


def pytest_collectstart(collector):
    # nbval builds one IPyNbFile collector per notebook; its ``skip_compare`` tuple names output keys that are
    # not compared. Stream outputs are keyed by stream name ("stdout"/"stderr") at comparison time.
    try:
        from nbval.plugin import IPyNbFile
    except ImportError:  # nbval not installed: nothing to adjust
        return
    if isinstance(collector, IPyNbFile) and "stderr" not in collector.skip_compare:
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr",)
