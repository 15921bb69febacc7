"""The build surface: one environment, spelled twice (pyproject.toml, environment.yml), must not drift; the
offline switches are on; the nbval sanitize patterns hide what varies and nothing else."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("notebooks", "dev")  # the extras `make venv` installs


def _canonical(req: str) -> str:
    # Requirement() normalises spacing and specifier order, so "a>=1,<2" and "a <2, >=1" compare equal;
    # the package name is compared case- and separator-insensitively as pip does.
    r = Requirement(req)
    name = re.sub(r"[-_.]+", "-", r.name).lower()
    extras = f"[{','.join(sorted(r.extras))}]" if r.extras else ""
    marker = f"; {r.marker}" if r.marker else ""
    return f"{name}{extras}{r.specifier}{marker}"


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in EXTRAS:
        reqs += project["optional-dependencies"][extra]
    return {_canonical(r) for r in reqs}


def _conda_environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_pip_requirements() -> set[str]:
    deps = _conda_environment()["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    # Option lines (-e ., --index-url ...) are how to install, not what: only requirements are compared.
    return {_canonical(r) for r in pip_sections[0] if not str(r).startswith("-")}


def test_environment_yml_names_the_same_requirements_as_pyproject():
    in_pyproject, in_conda = pyproject_requirements(), conda_pip_requirements()
    only_pyproject = sorted(in_pyproject - in_conda)
    only_conda = sorted(in_conda - in_pyproject)
    assert not (only_pyproject or only_conda), (
        "environment.yml and pyproject.toml (dependencies + extras "
        f"{', '.join(EXTRAS)}) have drifted apart.\n"
        f"  only in pyproject.toml:  {only_pyproject}\n"
        f"  only in environment.yml: {only_conda}\n"
        "Edit both so they name the same requirements."
    )


def test_environment_yml_installs_the_package_itself():
    pip_section = next(d["pip"] for d in _conda_environment()["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def _conda_python() -> str:
    for dep in _conda_environment()["dependencies"]:
        if isinstance(dep, str) and dep.split("=")[0].strip() == "python":
            return dep.split("=", 1)[1].strip("= ")
    raise AssertionError("environment.yml does not pin python")


def test_python_version_is_the_same_everywhere():
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    conda_python = _conda_python()
    makefile_python = re.search(r"^PYTHON \?= python(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_python, "Makefile no longer sets `PYTHON ?= python<version>`"
    assert conda_python == makefile_python.group(1), (
        f"environment.yml pins python {conda_python}, the Makefile builds .venv with python{makefile_python.group(1)}"
    )
    assert requires.contains(conda_python), f"python {conda_python} does not satisfy requires-python {requires}"


def test_runs_are_offline_and_headless():
    # Set by tests/aqa_workbook_plugin.py before collection, i.e. before any test can import laion_clap.
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert os.environ["MPLBACKEND"] == "Agg"
    assert os.environ.get("OMP_NUM_THREADS")


# --- nbval sanitize patterns ------------------------------------------------------------------------------------

def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns  # the parser nbval itself uses for the file

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())
    assert patterns, "tests/nbval_sanitize.cfg has no regex/replace pairs"
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train:  45%|####5     | 45/100 [00:01<00:02, 20.1it/s]", "train:  <PROGRESS>"),
        ("Wall time: 1.25 s", "Wall time: <DURATION>"),
        ("written 2025-06-12T14:35:01.123+02:00", "written <DATETIME>"),
        ("runs/20250612-143501/metrics.json", "runs/<STAMP>/metrics.json"),
        ("elapsed 0:00:12", "elapsed <CLOCK>"),
        ("trained 20 steps in 41.3 s (2.1 steps/s)", "trained 20 steps in <DURATION> (<RATE>)"),
        ("forward took 12 ms", "forward took <DURATION>"),
        ("<Linear object at 0x7f3a2c1d5e50>", "<Linear object at 0x<ADDR>>"),
        ("saved /tmp/tmp.Xy12/main/results/table.csv", "saved <DIR>/table.csv"),
        ("read '/work/main/data/mini/dev/q1.json'", "read '<DIR>/q1.json'"),
        ("cache /home/alice/.cache/x.pt", "cache <DIR>/x.pt"),
    ],
)
def test_sanitize_hides_what_varies(text, expected):
    assert _sanitize(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "accuracy 0.6967 on 2466 questions",  # results are compared, never hidden
        "BQA 53.9 TSQA 31.7 CQA 49.5",
        "window samples: 160000",
        "max audio: 120.0 s in 12 windows",  # a length of audio, not a timing
        "clip 9.87 s long",
        "relative data/work/x.csv",  # relative paths are the same on every machine
        "trainable 3,375,104 of 3,228,000,000",
    ],
)
def test_sanitize_keeps_deterministic_numbers(text):
    assert _sanitize(text) == text
