"""Per question type: accuracy (all K orders pooled) of the named session-3 evaluations on train.val. usage: python session3_bytype.py TAG ..."""
import pandas as pd, sys
tags = sys.argv[1:]
qt = pd.read_csv(f'work/exp3/eval_base_train.val/predictions.csv')[['qid', 'question_type']]
out = {}
for t in tags:
    for mode in ('score', 'generate'):
        d = pd.read_csv(f'work/exp3/eval_{t}_train.val/robustness_{mode}.csv').merge(qt, on='qid')
        out[(t, mode[:3])] = (d.answer == d.pred).groupby(d.question_type).mean() * 100
t = pd.DataFrame(out).round(0); t['n'] = qt.groupby('question_type').size()
print(t.to_string())
