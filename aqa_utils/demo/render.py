"""The demo's answers as HTML: every system side by side, the shuffle probe, free answers. Pure functions of the
answer dicts (``Systems.answer`` / ``Systems.free``), so they are tested without widgets."""

from __future__ import annotations

from html import escape

RIGHT, WRONG = "&#10003;", "&#10007;"  # check mark, ballot x


def label(i: int) -> str:
    return f"({chr(65 + i)})"


def duration(seconds: float) -> str:
    """A measured time, always in ms (one unit to compare at a glance; the notebook checks hide "<n> ms")."""
    return f"{1000 * seconds:.0f} ms"


def timing(out: dict) -> str:
    """The answer's measured time, and the model's load time when this answer had to load it (kept apart)."""
    load = out.get("load_seconds") or 0.0
    return duration(out["seconds"]) + (f" (+ model load {duration(load)})" if load > 0 else "")


def _mark(pred: int | None, truth: int | None) -> str:
    return "" if truth is None or pred is None else f" {RIGHT if pred == truth else WRONG}"


def side_by_side(answers: dict[str, dict], truth: int | None) -> str:
    """One column per system: chosen option (scoring) and whether it is right, the generated answer and its parsed
    option, each option's probability (the chosen one in bold), the measured answer time."""
    names = list(answers)
    choices = answers[names[0]]["choices"]
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    truth_line = (f"true answer: <b>{label(truth)} {escape(choices[truth])}</b>" if truth is not None
                  else "true answer: unknown (no answer key for this question as asked)")
    rows = ["<tr><td>chosen option (scoring)</td>" + "".join(
        f"<td><b>{label(a['answer'])} {escape(a['answer_text'])}</b>{_mark(a['answer'], truth)}</td>"
        for a in answers.values()) + "</tr>"]
    rows.append("<tr><td>generated answer</td>" + "".join(
        f"<td><code>{escape(a['generated'] or '')}</code> "
        f"({'unparsed' if a['generated_answer'] is None else 'reads as ' + label(a['generated_answer'])})"
        f"{_mark(a['generated_answer'], truth)}</td>" for a in answers.values()) + "</tr>")
    for i, text in enumerate(choices):
        star = " (true)" if i == truth else ""
        cells = "".join(
            (f"<td><b>{100 * a['probabilities'][i]:.1f}%</b></td>" if i == a["answer"]
             else f"<td>{100 * a['probabilities'][i]:.1f}%</td>") for a in answers.values())
        rows.append(f"<tr><td>p {label(i)} {escape(text)}{star}</td>{cells}</tr>")
    rows.append("<tr><td>answer time (measured)</td>" + "".join(
        f"<td>{timing(a)}</td>" for a in answers.values()) + "</tr>")
    return (f"<p class='aqa-truth'>{truth_line}</p><table class='aqa-answers'><tr><th></th>{head}</tr>"
            + "".join(rows) + "</table>")


def probe(given: dict[str, dict], reordered: dict[str, dict]) -> str:
    """The shuffle probe: per system, the option chosen as given and with the options reordered (and the position
    it was shown at), whether the choice survived, and the largest change of an option's probability."""
    rows = []
    for name in given:
        a, b = given[name], reordered[name]
        same = a["answer"] == b["answer"]
        shift = max(abs(p - q) for p, q in zip(a["probabilities"], b["probabilities"]))
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(a['answer_text'])} at {label(a['position'])}</td>"
            f"<td>{escape(b['answer_text'])} at {label(b['position'])}</td>"
            f"<td>{'same option' if same else '<b>changed</b>'}</td><td>{100 * shift:.1f} points</td>"
            f"<td>{timing(b)}</td></tr>")
    order = given[next(iter(given))]["choices"]
    shown = " ".join(f"{label(p)} {escape(order[i])}" for p, i in enumerate(reordered[next(iter(reordered))]["order"]))
    return (f"<p>Shuffle probe: the same question with the options shown as {shown}</p>"
            "<table class='aqa-probe'><tr><th>system</th><th>chosen as given</th><th>chosen reordered</th>"
            "<th>choice</th><th>largest probability change</th><th>answer time (measured)</th></tr>"
            + "".join(rows) + "</table>")


def free(answers: dict[str, dict]) -> str:
    """Free answers (no options): each system's generated text, marked as such."""
    rows = "".join(f"<tr><td>{escape(name)}</td><td><code>{escape(a['generated'])}</code></td><td>{timing(a)}</td></tr>"
                   for name, a in answers.items())
    return ("<p class='aqa-free'><b>Free generation</b> (no options given): AF2's own words, nothing scored, so "
            "no chosen option and no probabilities.</p><table class='aqa-free-answers'><tr><th>system</th>"
            "<th>generated</th><th>answer time (measured)</th></tr>" + rows + "</table>")


def error(message: str) -> str:
    return f"<p class='aqa-error' style='color:#b00020'><b>Cannot answer:</b> {escape(message)}</p>"
