"""Command line: ``python -m aqa_utils <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_params(args: argparse.Namespace) -> int:
    from .params import parameter_table

    table = parameter_table(args.model, args.lora_rank)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        for section, counts in table.items():
            if isinstance(counts, dict):
                print(f"{section}:")
                for name, value in counts.items():
                    print(f"  {name:<20} {value:>15,}")
            else:
                print(f"{section}: {counts}")
    return 0


def cmd_validate_data(args: argparse.Namespace) -> int:
    from .data.dcase import validate_data_cli

    return validate_data_cli(args.root, args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aqa_utils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("params", help="parameter counts per component (built on the meta device)")
    p.add_argument("--model", default="af2-3b", help="preset name or config file")
    p.add_argument("--lora-rank", type=int, default=None, help="also count LoRA parameters at this rank")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("validate-data", help="list every problem of a DCASE-layout data folder")
    p.add_argument("--root", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
