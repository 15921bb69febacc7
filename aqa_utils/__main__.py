"""Command line: ``python -m aqa_utils <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_params(args: argparse.Namespace) -> int:
    from aqa_utils.params import parameter_table

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
    from aqa_utils.data.dcase import validate_data_cli

    return validate_data_cli(args.root, args.json)


def cmd_make_mini(args: argparse.Namespace) -> int:
    from aqa_utils.data.mini import make_mini_benchmark

    sizes = dict(n_train=args.n_train, n_dev=args.n_dev, n_eval=args.n_eval)
    root = make_mini_benchmark(args.root, seed=args.seed, overwrite=args.overwrite, **sizes)
    print(f"mini benchmark ready in {root}")
    return 0


def _train_config(args: argparse.Namespace):
    from aqa_utils.config import LoraSettings, TrainConfig

    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    overrides = {"model": args.model, "checkpoint": args.checkpoint, "data_root": args.data, "out_dir": args.out,
                 "train_split": args.train_split, "max_steps": args.max_steps, "epochs": args.epochs,
                 "batch_size": args.batch_size, "grad_accum": args.grad_accum, "lr": args.lr, "seed": args.seed,
                 "mode": args.mode, "corpus": args.corpus}
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    if args.lora_rank is not None:
        cfg.lora = LoraSettings(**{**cfg.lora.to_dict(), "rank": args.lora_rank, "alpha": None})
    if args.gradient_checkpointing:
        cfg.gradient_checkpointing = True
    if args.skip_bad_data:
        cfg.skip_bad_data = True
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from aqa_utils.training import Trainer

    summary = Trainer(_train_config(args)).fit()
    print(json.dumps(summary, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aqa_utils.data.dcase import load_split
    from aqa_utils.data.prompt import build_tokenizer
    from aqa_utils.evaluation import EvalSettings, evaluate
    from aqa_utils.loading import load_model

    model = load_model(args.checkpoint, args.adapter, model=args.model)
    questions = load_split(args.data, args.split, skip_problems=args.skip_bad_data).questions
    settings = EvalSettings(mode=args.mode, batch_size=args.batch_size, permutations=args.permutations,
                            limit=args.limit)
    result = evaluate(model, build_tokenizer(), questions, settings, out_dir=args.out)
    print(json.dumps(result.metrics, indent=2, default=str))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    # Importing the workbook loads PyTorch: seconds on a small machine, which should not pass in silence.
    print(f"reproduce ({args.profile} profile): loading the package", file=sys.stderr, flush=True)
    from aqa_utils.workbook import reproduce

    return reproduce(profile_name=args.profile)


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

    p = sub.add_parser("make-mini", help="generate the mini benchmark (DCASE layout) from a seed")
    p.add_argument("--root", default="data/mini")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=480)
    p.add_argument("--n-dev", type=int, default=240)
    p.add_argument("--n-eval", type=int, default=60)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_make_mini)

    p = sub.add_parser("train", help="LoRA fine-tuning (or full base training); runs under accelerate/torchrun too")
    p.add_argument("--config", help="TrainConfig as YAML or JSON; the flags below override it")
    p.add_argument("--model", help="preset or model config file")
    p.add_argument("--checkpoint", help="release-layout folder with base weights (e.g. the AF2 download)")
    p.add_argument("--data", help="DCASE-layout root")
    p.add_argument("--out", help="run folder (resumes from its latest checkpoint)")
    p.add_argument("--train-split")
    p.add_argument("--mode", choices=["lora", "full"])
    p.add_argument("--corpus", choices=["questions", "captions", "tags"])
    p.add_argument("--lora-rank", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--epochs", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--skip-bad-data", action="store_true", help="skip questions with data problems (reported)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy per subset, CIs, shuffle robustness, submission file")
    p.add_argument("--checkpoint", required=True, help="release-layout folder with base weights")
    p.add_argument("--adapter", help="peft adapter folder (LoRA)")
    p.add_argument("--model", help="preset when the checkpoint has no af2_config.json (the release: af2-3b)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--mode", default="both", choices=["generate", "score", "both"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--permutations", type=int, default=0)
    p.add_argument("--limit", type=int)
    p.add_argument("--out", help="folder for predictions.csv, metrics.json, submission.csv")
    p.add_argument("--skip-bad-data", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reproduce", help="run the whole workbook (data, base, three ranks, evaluation, analysis)")
    p.add_argument("--profile", default="full", choices=["full", "ci"])
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
