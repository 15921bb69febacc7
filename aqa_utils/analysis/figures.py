"""Showing and saving figures: each one appears in the notebook AND as a PNG under ``<results_dir>/figures/``.

``FigureSaver.show`` displays the PNG bytes itself (``IPython.display.Image``) instead of relying on
``plt.show()``: the executed notebook gets its figure whatever matplotlib backend the kernel inherited (``make``
exports ``MPLBACKEND=Agg``, under which ``plt.show()`` draws nothing), and the inline copy is the saved file.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

DPI = 110
# One colour per rank, shared by every figure; the base is grey.
_RANK_COLOURS = {0: "tab:gray", 8: "tab:blue", 16: "tab:orange", 32: "tab:green", 4: "tab:purple", 64: "tab:red"}


def data_name(real_data: bool) -> str:
    """What the run's questions are, for titles and prose: the real challenge data or the generated stand-in."""
    return "DCASE 2025 Task 5" if real_data else "mini benchmark (generated)"


def rank_colour(rank: int) -> str:
    return _RANK_COLOURS.get(rank, f"C{(rank.bit_length() + 4) % 10}")


class FigureSaver:
    """``show(fig, name)``: write ``folder/name.png``, display it in the notebook, close the figure."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        if not name or any(c in name for c in "/\\ "):
            raise ValueError(f"figure name {name!r}: use a plain file stem such as '05_accuracy_per_subset'")
        return self.folder / f"{name}.png"

    def show(self, fig, name: str) -> None:
        """Returns None, so a notebook cell ending in ``show(...)`` displays nothing else (nbval would otherwise
        compare the returned path)."""
        path = self.path(name)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)  # the inline backend would otherwise draw it a second time at the end of the cell
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:  # plain Python (the CLI): the file is the output
            return
        if get_ipython() is not None:
            display(Image(data=buffer.getvalue(), format="png"))


def percent_axis(ax, label: str, honest: bool = True) -> None:
    """Accuracy axis in percent; ``honest``: the full 0..100 range, so a small gap is drawn small."""
    ax.set_ylabel(label)
    if honest:
        ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion k/n (groups without a bootstrap CI, e.g. question types)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def smooth(values, window: int) -> np.ndarray:
    """Trailing moving average (window clipped to the series), so a noisy per-step loss shows its trend."""
    v = np.asarray(values, float)
    window = max(1, min(window, len(v)))
    cumulative = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(len(v)):
        lo = max(0, i + 1 - window)
        out[i] = (cumulative[i + 1] - cumulative[lo]) / (i + 1 - lo)
    return out
