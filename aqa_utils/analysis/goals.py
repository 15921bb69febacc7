"""The miniature's goals (issue 15), each checked against a run's ``results/summary.json``: measured, bar, met.

What the workbook promises a researcher about the embedded default, stated as rules over the run's own numbers so
that the table cannot say more than the run measured. Goals a single run cannot check (two runs giving identical
numbers) say so instead of passing.
"""

from __future__ import annotations

from typing import Any

MODES = ("score", "generate")
BARS = {"gain": 0.10, "unparsed": 0.05, "gen_vs_score": 0.05, "position_tv": 0.02, "ci_half_width": 0.04,
        "full_minutes": 40.0, "quick_minutes": 20.0, "orders": 4, "seeds": 3}


def _pts(x: float) -> str:
    """A difference in points, signed: "+5.6"."""
    return f"{100 * x:+.1f}"


def goal_rows(summary: dict[str, Any], sweep: dict | None = None, other: dict[str, Any] | None = None
              ) -> list[dict[str, str]]:
    """One row per goal: ``goal``, ``measured``, ``bar``, ``met`` ("yes" / "no" / "not checked by one run").
    ``other``: another run's summary on this machine (e.g. the quick profile's), whose systems in common with this
    run must hold the same numbers."""
    systems = summary["systems"]
    tuned = {k: s for k, s in systems.items() if s["rank"]}
    base = systems["base"]
    rows = []

    def row(goal: str, measured: str, bar: str, met: bool | None) -> None:
        rows.append({"goal": goal, "measured": measured, "bar": bar,
                     "met": "not checked by one run" if met is None else ("yes" if met else "**no**")})

    k = summary.get("orders")
    has = all(all(m in s and {"original", "shuffle_mean", "consistent"} <= set(s[m]) for m in MODES)
              for s in systems.values())
    row("1. headline: original order, shuffle mean, right under every order, both answer modes",
        f"{len(systems)} systems x {len(MODES)} modes" + (f", K={k} orders" if k else ""),
        f"every system, both modes, K >= {BARS['orders']}", has and (k is None or k >= BARS["orders"]))
    lowest = min(summary["lora_vs_base"], key=int) if summary.get("lora_vs_base") else None
    for mode in MODES:
        gain = summary["lora_vs_base"][lowest].get(mode) if lowest else None
        row(f"2. LoRA r={lowest} - base, shuffle mean, {mode}",
            "n/a" if gain is None else f"{_pts(gain['diff'])} [{_pts(gain['ci'][0])}, {_pts(gain['ci'][1])}] "
            f"({gain.get('n_seeds', '?')} seeds)",
            f">= +{100 * BARS['gain']:.0f} points, CI excludes 0, >= {BARS['seeds']} seeds",
            gain is not None and gain["diff"] >= BARS["gain"] and gain["ci"][0] > 0
            and gain.get("n_seeds", 0) >= BARS["seeds"])
    both = all(m in s for s in systems.values() for m in MODES)  # a run of one answer mode checks only its goals
    worst = max(tuned.values(), key=lambda s: s["generate"]["unparsed"]) if tuned and both else None
    row("3a. unparsed generations, every fine-tuned system",
        "n/a" if worst is None else f"at most {100 * worst['generate']['unparsed']:.1f}%",
        f"<= {100 * BARS['unparsed']:.0f}%", worst is not None and worst["generate"]["unparsed"] <= BARS["unparsed"])
    gaps = {key: s["score"]["shuffle_mean"] - s["generate"]["shuffle_mean"] for key, s in tuned.items() if both}
    widest = max(gaps.values(), key=abs) if gaps else None
    row("3b. generation within 5 points of option scoring, every fine-tuned system (shuffle mean)",
        "n/a" if widest is None else f"largest gap {100 * abs(widest):.1f} points",
        f"<= {100 * BARS['gen_vs_score']:.0f} points", widest is not None and abs(widest) <= BARS["gen_vs_score"])
    seeds = {}
    for s in tuned.values():
        seeds.setdefault(s["rank"], set()).add(s["seed"])
    row("4. rank saturation with statistics", f"ranks {sorted(seeds)}, seeds per rank {sorted(map(len, seeds.values()))}"
        f"; verdict: {summary.get('rank_verdict')}", f">= {BARS['seeds']} seeds per rank, a verdict",
        bool(seeds) and min(map(len, seeds.values())) >= BARS["seeds"] and bool(summary.get("rank_verdict")))
    for mode in MODES:
        excess = max((s[mode]["position_tv"] - base[mode]["position_tv"] for s in tuned.values()
                      if mode in s and mode in base), default=None)
        row(f"5. position bias (total variation), fine-tuned vs base, {mode}",
            "n/a" if excess is None else f"base {base[mode]['position_tv']:.4f}; largest excess {excess:+.4f}",
            f"<= base + {BARS['position_tv']}", excess is not None and excess <= BARS["position_tv"])
    half = max((s[m]["ci"][1] - s[m]["ci"][0]) / 2 for s in systems.values() for m in MODES if m in s)
    row("6. 95% CI half-width of one system's shuffle-mean accuracy", f"at most {100 * half:.1f} points "
        f"({summary['dev_questions']} dev questions)", f"<= {100 * BARS['ci_half_width']:.0f} points",
        half <= BARS["ci_half_width"])
    if sweep:
        row("7. learning rate chosen on a validation split carved out of train",
            f"{sweep['chosen']:g} of {', '.join(f'{x:g}' for x in sweep['grid'])} on {sweep['val_questions']} "
            f"`{sweep['val_split']}` questions", "never the reported split",
            sweep["val_split"] != summary.get("split"))
    else:
        row("7. learning rate chosen on a validation split carved out of train", "no sweep in this recipe",
            "a sweep on validation data", False)
    shared = sorted(set(systems) & set((other or {}).get("systems", {})))
    if shared:
        differ = [k for k in shared if other["systems"][k] != systems[k]]
        row("8. two runs on one machine give identical numbers",
            f"{len(shared)} systems trained and evaluated again by the {other.get('profile')} profile's run: "
            + (f"{len(differ)} differ ({', '.join(differ)})" if differ else "every number identical"),
            "identical numbers", not differ)
    else:
        row("8. two runs on one machine give identical numbers", "one run", "identical numbers", None)
    timed_other = other and other.get("profile") != summary.get("profile") and other.get("minutes", {}).get("total")
    for run in [summary] + ([other] if timed_other else []):  # goal 9 names both profiles' times
        minutes = run.get("minutes", {}).get("total")
        limit = BARS["full_minutes"] if run.get("profile") == "full" else BARS["quick_minutes"]
        row(f"9. time of {'this' if run is summary else 'the other'} `make reproduce` ({run.get('profile')} profile)",
            "n/a" if minutes is None else f"{minutes:.1f} min", f"<= {limit:.0f} min",
            minutes is not None and minutes <= limit)
    return rows


def goals_markdown(summary: dict[str, Any], sweep: dict | None = None, other: dict[str, Any] | None = None) -> str:
    """The goal table as Markdown."""
    rows = goal_rows(summary, sweep, other)
    lines = ["| goal | measured | bar | met |", "|---|---|---|---|"]
    lines += [f"| {r['goal']} | {r['measured']} | {r['bar']} | {r['met']} |" for r in rows]
    return "\n".join(lines)
