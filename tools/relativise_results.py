"""Rewrite the absolute paths in committed run files under results/ as repo-relative ones (one-off fix).

    python tools/relativise_results.py --written-under OLD_REPO_ROOT [--check]

Runs written before the writers stored repo-relative paths (``config.portable``) hold the absolute path of the
checkout that wrote them (config.json, summary.json, papermill's metadata in the executed notebooks). Each JSON
string that starts with ``OLD_REPO_ROOT/`` becomes relative to it; nothing else changes (the files are re-dumped
with the writers' own indentation). ``--check`` only lists the files that would change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILES = ("results/runs/*/config.json", "results/runs/*/summary.json", "results/notebooks/*.ipynb")


def relativise(value, old_root: str):
    if isinstance(value, dict):
        return {k: relativise(v, old_root) for k, v in value.items()}
    if isinstance(value, list):
        return [relativise(v, old_root) for v in value]
    if isinstance(value, str) and value.startswith(old_root + "/"):
        return value[len(old_root) + 1:]
    return value


def fix(path: Path, old_root: str, write: bool) -> bool:
    text = path.read_text()
    data = json.loads(text)
    fixed = relativise(data, old_root)
    if fixed == data:
        return False
    if write:
        # the writers' layouts: nbformat's indent 1, the trainer's indent 2; a final newline kept as it was
        out = json.dumps(fixed, indent=1 if path.suffix == ".ipynb" else 2, ensure_ascii=False)
        path.write_text(out + ("\n" if text.endswith("\n") else ""))
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--written-under", required=True, help="the repo root the files were written under")
    parser.add_argument("--check", action="store_true", help="list what would change, change nothing")
    args = parser.parse_args(argv)
    old_root = args.written_under.rstrip("/")
    changed = [p for pattern in FILES for p in sorted(REPO.glob(pattern)) if fix(p, old_root, not args.check)]
    for p in changed:
        print(("would fix " if args.check else "fixed ") + p.relative_to(REPO).as_posix())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
