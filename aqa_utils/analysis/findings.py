"""The notebooks' "what we found" sentences, computed from the run's own numbers (Markdown strings).

No number and no verdict is typed into a notebook: each sentence here reads its numbers, and each verdict word
("above chance", "listens", "saturates") follows from a stated rule, so a CI-profile copy says what its outputs
show and a full run says what it measured. The rules:

- a system is *above/below chance* when its 95% interval lies entirely above/below chance, else *at chance*;
- a difference *helps/hurts* when its paired 95% interval excludes 0, else it is *not detectable*;
- the base *listens* when another clip's audio costs at least ``LISTENS_GAP`` (relative) more loss per token.
"""

from __future__ import annotations

import math

from aqa_utils.analysis.figures import wilson

LISTENS_GAP = 0.10
"""Relative loss increase with the wrong clip above which the base is said to listen (below 1%: it ignores audio)."""


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def interval(ci) -> str:
    return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def versus_chance(ci, chance: float) -> str:
    """"above chance" / "below chance" when the 95% interval excludes chance, else "at chance"."""
    if ci[0] > chance:
        return "above chance"
    if ci[1] < chance:
        return "below chance"
    return "at chance"


def difference_verdict(ci) -> str:
    """"helps" / "hurts" when a paired 95% interval of (new - old) excludes 0, else "no detectable difference"."""
    if ci[0] > 0:
        return "helps"
    if ci[1] < 0:
        return "hurts"
    return "no detectable difference"


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


# ------------------------------------------------------------------------------------------------------ notebook 01
def data_findings(position: dict, baselines: dict[str, float], n_dev: int, seconds, window_seconds: float = 10.0,
                  max_windows: int = 12) -> str:
    """Answer placement (``tables.position_test``), text-only rules against chance (``baselines`` as
    ``data.baselines.text_only_baselines``, over ``n_dev`` questions), and how many 10 s windows clips need."""
    observed, expected = position["observed"], position["expected"]
    top = observed.idxmax()
    uniform = position["p_value"] >= 0.05
    lines = [(f"Answer positions are {'consistent with' if uniform else 'not'} uniform placement "
              f"(chi-square p = {position['p_value']:.2g}, n = {position['n']}): the most frequent position, {top}, "
              f"holds {pct(observed[top])} of answers against {pct(expected[top])} expected.")]
    rules = {k: v for k, v in baselines.items() if k != "chance"}
    best = max(rules, key=rules.get)
    lo, hi = wilson(rules[best] * n_dev, n_dev)
    verdict = versus_chance((lo, hi), baselines["chance"])
    meaning = ("so accuracy above chance needs the audio" if verdict != "above chance"
               else "so the text alone gives answers away and accuracy above chance does not prove listening")
    lines.append(f"The best rule that never listens ({best.replace('_', ' ')}) scores {pct(rules[best])} "
                 f"{interval((lo, hi))} on {n_dev} dev questions, {verdict} ({pct(baselines['chance'])}), {meaning}.")
    secs = [float(s) for s in seconds]
    one = sum(s <= window_seconds for s in secs)
    longest = max(secs)
    windows = min(max_windows, int(-(-longest // window_seconds)))
    lines.append(f"{one} of {len(secs)} clips fit one {window_seconds:g} s window; the longest ({longest:.1f} s) "
                 f"needs {windows} window{'s' if windows > 1 else ''}"
                 + (f" (AF2 reads at most {max_windows})." if longest > max_windows * window_seconds else "."))
    return _bullets(lines)


# ------------------------------------------------------------------------------------------------------ notebook 02
def augmentation_findings(moved: float, n_choices: int, format_shares: dict[str, float], distinct: int) -> str:
    """How often the shuffle moves the answer (against 1 - 1/n), whether the formats are drawn evenly, and how
    many distinct strings the formats leave after AF2's lower-casing."""
    expected = 1 - 1 / n_choices
    spread = max(format_shares.values()) - min(format_shares.values())
    return _bullets([
        (f"Shuffling moved the answer of this {n_choices}-option question in {pct(moved)} of draws; a uniform "
         f"shuffle moves it with probability 1 - 1/{n_choices} = {pct(expected)}."),
        (f"The {len(format_shares)} label formats were drawn between {pct(min(format_shares.values()))} and "
         f"{pct(max(format_shares.values()))} of the time (even: {pct(1 / len(format_shares))} each; spread "
         f"{100 * spread:.1f} points); after AF2's lower-casing they are {distinct} distinct strings."),
    ])


# ------------------------------------------------------------------------------------------------------ notebook 03
def listening_verdict(listening: dict[str, float]) -> tuple[str, float]:
    """("listens" | "barely listens" | "ignores its audio", relative gap) from the listening check."""
    gap = (listening["shuffled"] - listening["matched"]) / listening["matched"]
    if gap >= LISTENS_GAP:
        return "listens", gap
    return ("barely listens" if gap >= 0.01 else "ignores its audio"), gap


def base_findings(model: str, listening: dict[str, float] | None, stages: dict[str, dict]) -> str:
    """The listening verdict, stage 0's tagging mAP and each stage's training time (``stages``: {name: summary})."""
    lines = []
    if listening:
        verdict, gap = listening_verdict(listening)
        lines.append(f"The {model} base **{verdict}**: held-out caption lines cost {listening['matched']:.2f} nats "
                     f"per answer token with their own clip and {listening['shuffled']:.2f} with another clip's "
                     f"({100 * gap:+.0f}%; the rule: at least {100 * LISTENS_GAP:.0f}% more means it listens).")
    for name, summary in stages.items():
        if "val_map" in summary:
            aps = summary.get("val_ap", {})
            known = {k: v for k, v in aps.items() if v is not None and not math.isnan(v)}
            worst = min(known, key=known.get) if known else None
            lines.append(f"{name} tags sounds with dev mAP {summary['val_map']:.2f}"
                         + (f"; weakest class {worst} (AP {known[worst]:.2f})." if worst else "."))
    if stages:  # each duration right after "took": the nbval sanitizer hides timings only there
        total = sum(s["seconds"] for s in stages.values())
        parts = ", ".join(f"{name} took {s['seconds']:.0f} s" for name, s in stages.items())
        lines.append(f"On this machine {parts}: pretraining took {total / 60:.1f} min in all.")
    return _bullets(lines)


# ------------------------------------------------------------------------------------------------------ notebook 04
def lora_findings(name: str, summary: dict, base_val_loss: float | None, fresh_count: int) -> str:
    """What the adapter trained (its parameter count against a freshly built model's with the same LoRA settings)
    and its validation loss against the base's on the same questions."""
    trained = summary["lora_parameters"]["total"]
    lines = [(f"{name} trained {trained:,} parameters; a freshly built model with the same LoRA settings has "
              f"{fresh_count:,} ({'the same count' if trained == fresh_count else 'a DIFFERENT count'}).")]
    if base_val_loss is not None and summary.get("val_loss") is not None:
        change = (summary["val_loss"] - base_val_loss) / base_val_loss
        word = "lower" if change < -0.005 else "higher" if change > 0.005 else "unchanged"
        lines.append(f"Validation loss {summary['val_loss']:.3f} after {summary['steps']} steps against the base's "
                     f"{base_val_loss:.3f} on the same questions: {word} ({100 * change:+.1f}%).")
    return _bullets(lines)


def lr_sweep_findings(record: dict) -> str:
    """Which rate the validation sweep chose, and whether the best rate is separated from the others (the
    intervals of the chosen and the runner-up overlap: the choice is a weak one)."""
    runs = sorted(record["runs"].values(), key=lambda r: -r["shuffle_mean"])
    best = runs[0]
    lines = [f"The learning rate {best['lr']:g} was chosen among {', '.join(f'{r:g}' for r in record['grid'])} on "
             f"{record['val_questions']} `{record['val_split']}` questions (never on the reported split): "
             f"{pct(best['shuffle_mean'])} {interval(best['ci'])} shuffle-mean accuracy in option scoring."]
    if len(runs) > 1:
        second = runs[1]
        clear = best["ci"][0] > second["ci"][1]
        lines.append(f"The runner-up, {second['lr']:g}, reached {pct(second['shuffle_mean'])} {interval(second['ci'])}: "
                     + ("the intervals do not overlap." if clear else "the intervals overlap, so the choice between "
                        "these two is within the noise of this split."))
    return _bullets(lines)


# ------------------------------------------------------------------------------------------------------ notebook 05
def evaluation_findings(reports: dict[str, dict], base: str, paired: dict[str, dict], generated: dict[str, dict] | None,
                        metric: str = "micro") -> str:
    """Each system against chance, each adapter against the base (``paired``: {name: ``paired_difference``}),
    the weakest subset, and generation against option scoring."""
    chance = next(iter(reports.values()))["chance"]
    lines = ["Against chance (" + pct(chance) + "): " + "; ".join(
        f"{name} {pct(r[metric])} {interval(r[metric + '_ci'])}, **{versus_chance(r[metric + '_ci'], chance)}**"
        for name, r in reports.items()) + "."]
    if paired:
        lines.append(f"Against {base} on the same questions (paired bootstrap): " + "; ".join(
            f"{name} {100 * d['difference']:+.1f} points {interval(d['ci'])}, **{difference_verdict(d['ci'])}**"
            for name, d in paired.items()) + ".")
    top = max(r[metric] for r in reports.values())
    best = [n for n, r in reports.items() if r[metric] == top]
    per = reports[best[0]]["per_subset"]
    who = f"The best system here ({best[0]})" if len(best) == 1 else \
        f"{'Every system ties' if len(best) == len(reports) else ', '.join(best) + ' tie'} at the top"
    lines.append(f"{who}: weakest on {min(per, key=per.get)} ({pct(min(per.values()))}), strongest on "
                 f"{max(per, key=per.get)} ({pct(max(per.values()))}).")
    if generated:
        unparsed = {n: g["unparsed_rate"] for n, g in generated.items()}
        low, high = min(unparsed.values()), max(unparsed.values())
        share = f"{pct(low)} of answers for every system" if low == high else \
            f"between {pct(low)} and {pct(high)} of answers ({max(unparsed, key=unparsed.get)})"
        lines.append(f"Generating then parsing (AF2's protocol) leaves {share} unparsed, counted wrong; option "
                     "scoring never does, which is why it is the headline here.")
    return _bullets(lines)


# ------------------------------------------------------------------------------------------------------ notebook 06
def rank_findings(comparison, reference: int, reference_vs_base: dict, reported: dict[int, float]) -> str:
    """The saturation verdict: no rank beats ``reference`` with 95% confidence (``comparison``:
    ``tables.rank_comparison``), and whether the reference rank beats the base at all (``reference_vs_base``:
    ``paired_difference``), beside the report's per-rank numbers (published, from ``aqa_utils.reported``)."""
    lines = ["The report (AF2-3B on DCASE dev, published): " + ", ".join(
        f"r={r} {reported[r]:.2f}%" for r in sorted(reported)) + "."]
    if (comparison["questions answered differently"] == 0).all():
        lines.append(f"Every rank answers every question exactly as r={reference} does: the comparison cannot tell "
                     "the ranks apart, so it gives **no verdict** on saturation.")
        return _bullets(lines)
    parts = []
    for label, row in comparison.iterrows():
        ci = tuple(v / 100 for v in row["95% CI"])
        parts.append(f"{label}: {row['difference %']:+.1f} points {interval(ci)}, {difference_verdict(ci)}")
    higher_better = any(row["95% CI"][0] > 0 for _, row in comparison.iterrows() if row["rank"] > reference)
    lines.append("Paired on the same questions: " + "; ".join(parts) + ".")
    lora_helps = difference_verdict(reference_vs_base["ci"]) == "helps"
    if higher_better:
        lines.append(f"A rank above {reference} is better with 95% confidence: accuracy **does not saturate** at "
                     f"r={reference} here.")
    elif lora_helps:
        lines.append(f"No rank above {reference} is better with 95% confidence while r={reference} beats the base: "
                     f"accuracy **saturates** at r={reference} here, as in the report.")
    else:
        lines.append(f"No rank above {reference} is better with 95% confidence, but r={reference} itself does not beat "
                     f"the base ({100 * reference_vs_base['difference']:+.1f} points "
                     f"{interval(reference_vs_base['ci'])}): with no LoRA gain to saturate, this says **nothing about "
                     "saturation**.")
    return _bullets(lines)
