"""Answer rules that never look at the audio: what a benchmark gives away through its text alone."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from aqa_utils.data.dcase import Question


def text_only_baselines(questions: list[Question], fit_on: list[Question] | None = None) -> dict[str, float]:
    """Accuracy of answer rules that never look at the audio, next to chance (mean of 1 / number of choices).

    ``answer_prior`` picks the option text most often right, ``question_prior`` the option most often the answer
    to this exact question text; both are fitted on ``fit_on`` (e.g. the train split), or leave-one-out on
    ``questions`` when it is None (leave-one-out reads slightly below chance: it removes each question's own answer).
    Ties go to the earlier option.
    """
    qs = [q for q in questions if q.answer is not None]
    if not qs:
        raise ValueError("no answered questions")
    loo = fit_on is None
    right, shown = Counter(), Counter()
    per_question: dict[str, Counter] = defaultdict(Counter)
    for q in qs if loo else [q for q in fit_on if q.answer is not None]:
        right[q.choices[q.answer]] += 1
        shown.update(q.choices)
        per_question[q.question.casefold()][q.choices[q.answer]] += 1

    def own(q: Question, i: int) -> int:
        return int(loo and i == q.answer)

    def prior(q: Question, i: int) -> float:
        seen = shown[q.choices[i]] - int(loo)
        return (right[q.choices[i]] - own(q, i)) / seen if seen > 0 else 0.0

    def by_question(q: Question, i: int) -> float:
        return per_question[q.question.casefold()][q.choices[i]] - own(q, i)

    def best(q: Question, score) -> int:
        return max(range(len(q.choices)), key=lambda i: (score(q, i), -i))

    rules = {
        "always_first": lambda q: 0,
        "always_last": lambda q: len(q.choices) - 1,
        "longest_option": lambda q: best(q, lambda q, i: len(q.choices[i])),
        "shortest_option": lambda q: best(q, lambda q, i: -len(q.choices[i])),
        "answer_prior": lambda q: best(q, prior),
        "question_prior": lambda q: best(q, by_question),
    }
    result = {"chance": float(np.mean([1 / len(q.choices) for q in qs]))}
    for name, rule in rules.items():
        result[name] = float(np.mean([rule(q) == q.answer for q in qs]))
    return result
