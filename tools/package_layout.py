"""The package's shape: lines per module and who imports whom (aqa_utils-internal imports only).

    python tools/package_layout.py            # table of modules, lines and internal imports
    python tools/package_layout.py --dot      # the import graph in Graphviz dot

tests/test_layout.py uses ``modules`` and ``internal_imports`` to hold the layering rules (``LAYERS``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aqa_utils"

# Layers, lowest first: a module may import only from its own layer or a lower one. Patterns are module-name
# prefixes; the longest matching prefix decides.
LAYERS: list[tuple[str, ...]] = [
    ("aqa_utils.config", "aqa_utils.yaml_file", "aqa_utils.reported", "aqa_utils.recipe", "aqa_utils.progress",
     "aqa_utils.parallel", "aqa_utils.memo"),
    ("aqa_utils.audio", "aqa_utils.data"),
    ("aqa_utils.model",),
    ("aqa_utils.lora", "aqa_utils.loading", "aqa_utils.params", "aqa_utils.model_card"),
    ("aqa_utils.training", "aqa_utils.evaluation", "aqa_utils.metrics", "aqa_utils.submission"),
    ("aqa_utils.analysis", "aqa_utils.demo", "aqa_utils.download", "aqa_utils.headline"),
    ("aqa_utils.workbook",),
    ("aqa_utils.__main__", "aqa_utils"),
]


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def internal_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in the file, lazy imports included)."""
    mods = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                root = _absolute(name, node, path.name == "__init__.py")
                names = [f"{root}.{a.name}" for a in node.names]
                if not any(n in mods for n in names):  # `from pkg import name`: the package itself
                    names.append(root)
            else:
                continue
            for target in names:
                # the longest module name that the imported name starts with
                hits = [m for m in mods if target == m or target.startswith(m + ".")]
                if hits:
                    hit = max(hits, key=len)
                    if hit != name and hit != "aqa_utils":
                        targets.add(hit)
        graph[name] = targets
    return graph


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, layer = len(p), i
    if layer < 0:
        raise KeyError(f"{module}: in no layer of tools/package_layout.py LAYERS")
    return layer


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs that go from a lower layer to a higher one."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def main(argv: list[str]) -> int:
    mods, graph = modules(), internal_imports()
    if "--dot" in argv:
        print("digraph aqa_utils {")
        for a, targets in graph.items():
            for b in sorted(targets):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    width = max(map(len, mods))
    total = 0
    for name, path in mods.items():
        lines = len(path.read_text().splitlines())
        total += lines
        print(f"{name:<{width}} {lines:>5}  <- {', '.join(sorted(graph[name])) or '-'}")
    print(f"{'total':<{width}} {total:>5}")
    bad = upward_imports(graph)
    print("upward imports:", bad or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
