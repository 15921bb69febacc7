"""The first cell of every notebook: one call instead of the same lines seven times."""

from __future__ import annotations

from aqa_utils.workbook.profile import Profile, profile


def setup(name: str | None = None) -> Profile:
    """The notebook's profile (``name``, else ``AQA_PROFILE``, else ``full``), announced; pandas set to print wide
    tables."""
    import pandas as pd

    pd.set_option("display.width", 140)
    prof = profile(name)
    print(f"profile: {prof.name}", *prof.notes, sep="\n")
    return prof
