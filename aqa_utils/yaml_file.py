"""Reading the project's YAML files (recipes, model configs, ``AQA_CONFIG``) as their authors mean them."""

from __future__ import annotations

import re
from typing import Any

# YAML 1.1 (PyYAML) reads "1e-4" as a string: its floats need a dot ("1.0e-4"). Hyperparameters are written the
# short way, so read_yaml also resolves that form to a float (as YAML 1.2 and JSON do).
_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)[eE][-+]?\d+$")


def read_yaml(text: str) -> Any:
    """``yaml.safe_load`` that reads exponent floats without a dot (``1e-4``, ``3E+2``) as floats."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return yaml.load(text, Loader=_Loader)
