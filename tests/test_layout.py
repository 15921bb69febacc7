"""The package's shape (tools/package_layout.py): imports only go down the layers, no module is long, the CLI
reaches the notebook layer only for ``reproduce``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import package_layout as layout  # noqa: E402

MAX_LINES = 400


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    graph = layout.internal_imports()
    for module in graph:
        layout.layer_of(module)  # raises for a module no layer names
    assert layout.upward_imports(graph) == []


def test_the_checker_sees_an_upward_import(tmp_path):
    pkg = tmp_path / "aqa_utils"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "__init__.py").write_text("")
    (pkg / "config.py").write_text("")
    (pkg / "model" / "flamingo.py").write_text("from ..workbook import steps\n")
    (pkg / "workbook.py").write_text("from aqa_utils.config import x\n")
    graph = layout.internal_imports(pkg)
    assert graph["aqa_utils.workbook"] == {"aqa_utils.config"}
    assert layout.upward_imports(graph) == [("aqa_utils.model.flamingo", "aqa_utils.workbook")]


def test_no_module_is_long():
    long = {name: n for name, path in layout.modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_cli_imports_the_notebook_layer_only_for_reproduce():
    tree = ast.parse((REPO / "aqa_utils" / "__main__.py").read_text())
    users = {fn.name for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
             for node in ast.walk(fn) if isinstance(node, ast.ImportFrom) and "workbook" in (node.module or "")}
    assert users == {"cmd_reproduce"}
