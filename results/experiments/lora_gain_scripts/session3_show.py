"""One line per session-3 evaluation under work/exp3: shuffle mean, consistent, unparsed and position TV in both modes."""
import json,sys,glob
for f in sorted(glob.glob('work/exp3/eval_*/metrics.json')):
    d=json.load(open(f)); r=d['robustness']
    print(f.split('/')[2].ljust(32), ' '.join(f"{m[:3]} {100*r[m]['mean_accuracy']:5.1f} cons {100*r[m]['consistent_accuracy']:5.1f} unp {100*r[m]['unparsed_rate']:5.1f} tv {r[m]['position_tv']:.3f} |" for m in ('score','generate')))
