"""Command line: ``python -m aqa_utils <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
    from aqa_utils.recipe import Recipe

    if args.recipe:
        cfg = Recipe.load(args.recipe).train
    else:
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

    cfg = _train_config(args)
    if args.push_to_hub and cfg.mode != "lora":
        raise SystemExit("--push-to-hub publishes a LoRA adapter; this run trains mode 'full'")
    summary = Trainer(cfg).fit()
    print(json.dumps(summary, indent=2))
    if args.push_to_hub and "final" in summary:
        from aqa_utils.model_card import push_to_hub

        print("published:", push_to_hub(summary["final"], args.push_to_hub, private=not args.public))
    return 0


# `evaluate` without --recipe: these; with one, the recipe's values. A flag given on the command line wins.
EVALUATE_DEFAULTS = dict(split="dev", mode="both", batch_size=16, permutations=0, limit=None, skip_bad_data=False,
                         check_submission=False)


def _evaluate_plan(args: argparse.Namespace) -> tuple[dict, dict]:
    """(what to evaluate: split, skip_bad_data, check_submission; EvalSettings keyword arguments)."""
    plan = dict(EVALUATE_DEFAULTS)
    settings: dict = {}
    if args.recipe:
        from aqa_utils.recipe import Recipe

        ev = Recipe.load(args.recipe).evaluate
        settings = ev.settings()
        plan.update(split=ev.split, skip_bad_data=ev.skip_bad_data, check_submission=ev.check_submission)
    else:
        settings = {k: plan[k] for k in ("mode", "batch_size", "permutations", "limit")}
    for key in ("mode", "batch_size", "permutations", "limit"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if settings["mode"] != "both":
        settings.pop("primary", None)  # a recipe's primary mode chooses between the two of "both" only
    if args.split is not None:
        plan["split"] = args.split
    plan["skip_bad_data"] = plan["skip_bad_data"] or args.skip_bad_data
    plan["check_submission"] = plan["check_submission"] or args.submission_example is not None
    if plan["check_submission"] and not args.out:
        raise SystemExit("checking the submission needs --out (the folder submission.csv is written to)")
    return plan, settings


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aqa_utils.data.dcase import load_split
    from aqa_utils.data.prompt import tokenizer_for
    from aqa_utils.evaluation import EvalSettings, evaluate
    from aqa_utils.loading import load_model

    plan, settings = _evaluate_plan(args)
    example = None
    if plan["check_submission"]:  # found before the (long) evaluation, so that a missing one fails at once
        from aqa_utils.submission import check_submission, example_file

        example = Path(args.submission_example) if args.submission_example else example_file(args.data)
        if not example.is_file():
            raise SystemExit(f"{example}: no such submission example file")
    model = load_model(args.checkpoint, args.adapter, model=args.model)
    questions = load_split(args.data, plan["split"], skip_problems=plan["skip_bad_data"]).questions
    result = evaluate(model, tokenizer_for(model), questions, EvalSettings(**settings), out_dir=args.out)
    print(json.dumps(result.metrics, indent=2, default=str))
    if example is not None:
        checked = check_submission(result.files["submission"], example, questions)
        print(f"{checked['file']}: {checked['rows']} rows, in the format of {checked['example']}")
    if args.adapter and args.out and (Path(args.adapter).parent / "summary.json").exists():
        from aqa_utils.model_card import record_evaluation

        print("model card:", record_evaluation(args.adapter, plan["split"], result.files["metrics"]))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    # Importing the workbook loads PyTorch: seconds on a small machine, which should not pass in silence.
    print(f"reproduce ({args.profile} profile): loading the package", file=sys.stderr, flush=True)
    from aqa_utils.workbook import reproduce

    return reproduce(profile_name=args.profile)


def cmd_download(args: argparse.Namespace) -> int:
    from .download import download_cli

    return download_cli(args)


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
    source = p.add_mutually_exclusive_group()
    source.add_argument("--recipe", help="recipe name under configs/ (report, local, tiny/full, ...) or a recipe "
                                         "YAML file; the flags below override it")
    source.add_argument("--config", help="TrainConfig as YAML or JSON; the flags below override it")
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
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="publish the adapter and its model card on the Hugging "
                                                            "Face Hub when training ends (needs internet and a token)")
    p.add_argument("--public", action="store_true", help="with --push-to-hub: a public repo (default: private)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy per subset, CIs, shuffle robustness, submission file")
    p.add_argument("--checkpoint", required=True, help="release-layout folder with base weights")
    p.add_argument("--adapter", help="peft adapter folder (LoRA)")
    p.add_argument("--model", help="preset when the checkpoint has no af2_config.json (the release: af2-3b)")
    p.add_argument("--data", required=True)
    p.add_argument("--recipe", help="recipe name under configs/ or a recipe YAML file: its evaluate section sets "
                                    "the split and the settings; the flags below override it")
    p.add_argument("--split", help=f"default: the recipe's, else {EVALUATE_DEFAULTS['split']}")
    p.add_argument("--mode", choices=["generate", "score", "both"],
                   help=f"default: the recipe's, else {EVALUATE_DEFAULTS['mode']}")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--permutations", type=int)
    p.add_argument("--limit", type=int)
    p.add_argument("--out", help="folder for predictions.csv, metrics.json, submission.csv")
    p.add_argument("--skip-bad-data", action="store_true")
    p.add_argument("--submission-example", help="check submission.csv against this example file (default with a "
                                                "recipe that checks: the one CSV in <data>/submission_example/)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reproduce", help="run the whole workbook (data, base, three ranks, evaluation, analysis)")
    p.add_argument("--profile", default="full", choices=["full", "quick", "ci"])
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("download", help="fetch the released AF2 weights or the DCASE data from the Hugging Face Hub "
                                        "(needs internet; the only command that goes online)")
    what = p.add_subparsers(dest="what", required=True)
    d = what.add_parser("af2", help="released AF2 checkpoint at the revision in download/af2.py, then a layout check")
    d.add_argument("--size", default="3b", choices=["3b", "1.5b", "0.5b"])
    d.add_argument("--to", required=True, help="folder for the release layout (clap_ckpt/, safe_ckpt/)")
    d.add_argument("--revision", help="branch, tag or commit instead of the pinned one")
    d = what.add_parser("dcase", help="the gated DCASE 2025 Task 5 dataset, unpacked, then validate-data")
    d.add_argument("--to", required=True, help="data root (gets dcase_2025_question_path/, local_audio_path/)")
    d.add_argument("--revision", help="branch, tag or commit instead of the pinned one")
    d.add_argument("--no-audio-check", action="store_true", help="validate the JSON only, not every audio file")
    p.set_defaults(func=cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
