"""Issue-15 design experiments: answer style x stage-1 corpus -> base, LoRA seeds, evaluation.

python exp/design.py TAG --style {label_first,text,text_first} --corpus {caption_qa,generic,captions_only}
       [--lora-seeds 0 1 2] [--rank 8] [--lr 3e-3] [--epochs 8] [--gen-k 0|4] [--skip-eval-base]
Outputs under work/exp/TAG/ (base/, lora_r8_s0/, eval_*.json).
"""
import sys
sys.path[:0] = [__import__("os").environ["AQA_OLD_CHECKOUT"], __import__("os").path.dirname(__file__)]  # a checkout of d74bb32
from common import *  # noqa: F401,F403  (env + 1 thread)
import argparse
import json
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from aqa_utils import workbook
from aqa_utils.config import LoraSettings
from aqa_utils.data import augment
from aqa_utils.data import mini as M
import aqa_utils.train as T
import aqa_utils.evaluate as E

STYLE = {"style": "label_first"}


def render_answer(choices, answer, fmt=augment.EVAL_FORMAT):
    text, lab = choices[answer].strip(), augment.format_label(answer, fmt)
    return {"label_first": f"{lab} {text}", "text": text, "text_first": f"{text} {lab}"}[STYLE["style"]]


def set_style(style):
    STYLE["style"] = style
    augment.render_answer = render_answer
    T.render_answer = render_answer
    E.render_answer = render_answer


# ---------------------------------------------------------------- stage-1 corpora
GENERIC_Q = ("which of these sounds can be heard?", "what is heard in this recording?",
             "which sound occurs in the clip?", "what can you hear?")
GENERIC_VOCAB = tuple(s.name for s in M.SPECIES) + M.EVENTS


def caption_scenes(split):
    n = {"train": 600, "dev": 100}[split]
    return M._plan(M._seed(0, 100 + M._SPLIT_KEYS[split]), n, prefix="cap", per_clip=1)


class GenericCaptions(T.CaptionExamples):
    """Per clip: its caption, and a generic presence question (one present sound vs absent ones), redrawn per
    epoch; none of the benchmark's question types."""

    def __init__(self, root, split, seed=0, train=True):
        super().__init__(root, split, seed, train)
        scenes = caption_scenes(split)
        caps = [it for it in self.items if isinstance(it, T.Example)]
        assert len(caps) == len(scenes)
        for c, s in zip(caps, scenes):
            assert M.SPECIES_BY_NAME.get(s.sounds[0].name) or s.sounds[0].name in M.EVENTS
        self.items = []
        for c, s in zip(caps, scenes):
            present = sorted({x.name for x in s.sounds})
            self.items += [c, ("generic", c.audio_path, present)]

    def get(self, index, epoch):
        item = self.items[index]
        if isinstance(item, T.Example):
            return item
        _, audio, present = item
        rng = np.random.default_rng([self.seed, epoch, index, 7])
        answer = present[int(rng.integers(len(present)))]
        pool = [v for v in GENERIC_VOCAB if v not in present]
        k = min(int(rng.choice(M.CHOICE_COUNTS)), len(pool) + 1)
        choices = [answer] + [pool[i] for i in rng.permutation(len(pool))[: k - 1]]
        q = GENERIC_Q[int(rng.integers(len(GENERIC_Q)))]
        if self.train:
            mc = augment.augmented_example(q, choices, 0, rng)
            return T.Example(audio, mc.prompt, mc.target)
        return T.Example(audio, augment.render_question(q, choices), render_answer(choices, 0))


class CaptionsOnly(T.CaptionExamples):
    def __init__(self, root, split, seed=0, train=True):
        super().__init__(root, split, seed, train)
        self.items = [it for it in self.items if isinstance(it, T.Example)]


CORPORA = {"caption_qa": T.CaptionExamples, "generic": GenericCaptions, "captions_only": CaptionsOnly}


def set_corpus(name):
    orig = T.load_examples

    def load_examples(cfg, split, train):
        if cfg.corpus == "captions":
            return CORPORA[name](Path(cfg.data_root), split, cfg.seed, train)
        return orig(cfg, split, train)
    T.load_examples = load_examples


# ---------------------------------------------------------------- steps
def stage1(out: Path, args) -> Path:
    final = out / "base"
    if (final / "safe_ckpt" / "metadata.json").exists():
        return final
    prof = workbook.profile("full")
    cfg = replace(prof.pretrain, data_root=str(DATA), checkpoint=str(WORK / "stage0" / "final"),
                  out_dir=str(out / "stage1"), progress=False, eval_every=0,
                  epochs=args.s1_epochs, lr=args.s1_lr)
    t = time.time()
    s = T.Trainer(cfg).fit()
    s["wall"] = round(time.time() - t, 1)
    print("stage1", json.dumps(s), flush=True)
    import shutil
    shutil.copytree(s["final"], final)
    (out / "stage1_summary.json").write_text(json.dumps(s, indent=2))
    return final


def lora_settings(rank, args):
    from aqa_utils.config import LORA_TARGETS
    targets = dict(LORA_TARGETS)
    if args.lm_all:  # diagnostic beyond the report's recipe: LM attention output and MLP projections too
        targets["lm"] = (r"lang_encoder\.model\.layers\.\d+\.decoder_layer\."
                         r"(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))")
    return LoraSettings(rank=rank, targets=targets)


def lora(out: Path, base: Path, rank, seed, args, train_split="train") -> Path:
    run = out / f"lora_r{rank}_s{seed}{args.lora_tag}"
    if (run / "summary.json").exists():
        return run / "final"
    prof = workbook.profile("full")
    cfg = replace(prof.finetune, data_root=str(DATA), checkpoint=str(base), out_dir=str(run),
                  lora=lora_settings(rank, args), seed=seed, lr=args.lr, epochs=args.epochs, progress=False,
                  val_split=args.val_split, train_split=train_split)
    t = time.time()
    s = T.Trainer(cfg).fit()
    s["wall"] = round(time.time() - t, 1)
    print(run.name, json.dumps(s), flush=True)
    return run / "final"


def position_tv(per_perm: pd.DataFrame) -> float:
    pred = per_perm["pred_position"].astype("float").fillna(-1).astype(int)
    true = per_perm["answer_position"].astype(int)
    keys = sorted(set(pred) | set(true))
    p = pred.value_counts(normalize=True).reindex(keys, fill_value=0)
    q = true.value_counts(normalize=True).reindex(keys, fill_value=0)
    return float(0.5 * (p - q).abs().sum())


def evaluate_system(out: Path, name: str, base: Path, adapter, args, split="dev"):
    path = out / f"eval_{name}{args.eval_tag}.json"
    if path.exists():
        return json.loads(path.read_text())
    from aqa_utils.data.dcase import load_split
    from aqa_utils.data.prompt import build_tokenizer
    qs = load_split(DATA, args.eval_split).questions
    if args.val_ids:
        qs = [q for q in qs if q.qid in VAL_IDS]
    if args.limit:
        qs = qs[: args.limit]
    tok = build_tokenizer()
    model = workbook.load_model(base, adapter, device="cpu")
    t = time.time()
    res = {"system": name, "n": len(qs)}
    modes = {"score": args.score_k, "generate": args.gen_k}
    per_q = {}
    for mode, k in modes.items():
        if k < 0:
            continue
        st = E.EvalSettings(mode=mode, permutations=k, robustness_mode=mode, max_new_tokens=24, batch_size=16)
        r = E.evaluate(model, tok, qs, st)
        rep = r.metrics[mode]
        d = {"original": rep["micro"], "unparsed": rep["unparsed_rate"]}
        tab = r.predictions
        d["by_type"] = tab.assign(c=tab["correct"].astype(float)).groupby("question_type")["c"].mean().round(3).to_dict()
        if mode == "generate":
            d["examples"] = tab["raw_output"].head(6).tolist()
        if r.robustness:
            d["shuffle_mean"] = r.robustness["mean_accuracy"]
            d["consistent"] = r.robustness["consistent_accuracy"]
            pp = r.per_perm
            d["position_tv"] = position_tv(pp)
            d["unparsed_shuffle"] = float(pp["pred"].isna().mean())
            c = (pp["pred"].astype("float") == pp["answer"]).astype(float)
            qmean = c.groupby(pp["qid"]).mean()
            per_q[mode] = qmean.to_dict()
            d["by_type_shuffle"] = (c.groupby(pp["qid"]).mean().rename("a").to_frame()
                                    .join(tab.set_index("qid")["question_type"]).groupby("question_type")["a"]
                                    .mean().round(3).to_dict())
        res[mode] = d
    res["seconds"] = round(time.time() - t, 1)
    res["per_question"] = per_q
    path.write_text(json.dumps(res, indent=1))
    print("eval", name, json.dumps({m: {k: v for k, v in res[m].items() if k in ("original", "shuffle_mean", "unparsed",
                                                                                  "position_tv", "consistent")}
                                    for m in modes if m in res}), res["seconds"], flush=True)
    return res


VAL_IDS: set = set()


def carve_val(fraction_every=5):
    """Validation split carved from train: the questions of every 5th train clip (sorted by clip id)."""
    from aqa_utils.data.dcase import load_split
    qs = load_split(DATA, "train").questions
    clips = sorted({q.audio_path.name for q in qs})
    held = set(clips[::fraction_every])
    VAL_IDS.update(q.qid for q in qs if q.audio_path.name in held)
    orig = T.load_split

    def load_split_carved(root, split, **kw):
        if split in ("train", "val") and Path(root) == DATA:
            loaded = orig(root, "train", **kw)
            keep = [q for q in loaded.questions if (q.qid in VAL_IDS) == (split == "val")]
            return replace(loaded, questions=keep)
        return orig(root, split, **kw)
    T.load_split = load_split_carved

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("tag")
    ap.add_argument("--style", default="label_first")
    ap.add_argument("--corpus", default="caption_qa")
    ap.add_argument("--lora-seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--epochs", type=float, default=8)
    ap.add_argument("--s1-epochs", type=float, default=7)
    ap.add_argument("--s1-lr", type=float, default=3e-3)
    ap.add_argument("--score-k", type=int, default=4)
    ap.add_argument("--gen-k", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--val-split", default=None)
    ap.add_argument("--lora-tag", default="")
    ap.add_argument("--eval-tag", default="")
    ap.add_argument("--val-ids", default="")
    ap.add_argument("--skip-eval-base", action="store_true")
    ap.add_argument("--base-only", action="store_true")
    ap.add_argument("--lm-all", action="store_true")
    ap.add_argument("--carve", action="store_true", help="train LoRA on train minus val; evaluate on val")
    args = ap.parse_args()
    set_style(args.style)
    set_corpus(args.corpus)
    if args.carve:
        carve_val()
        args.val_ids = "1"
        args.eval_split = "train"
    else:
        args.eval_split = "dev"
    out = WORK / args.tag
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    base = stage1(out, args)
    if not args.skip_eval_base:
        evaluate_system(out, "base", base, None, args)
    if not args.base_only:
        for seed in args.lora_seeds:
            ad = lora(out, base, args.rank, seed, args)
            evaluate_system(out, f"lora_r{args.rank}_s{seed}{args.lora_tag}", base, ad, args)
    print("total", round(time.time() - t0, 1), flush=True)
