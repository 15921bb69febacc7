import json, sys, glob
for f in sys.argv[1:]:
    r = json.load(open(f))
    out = [f.split('/')[-2] + '/' + f.split('/')[-1][5:-5], f"n={r['n']}", f"{r['seconds']}s"]
    for m in ('score', 'generate'):
        if m not in r: continue
        d = r[m]
        out.append(f"{m}: orig {100*d['original']:.1f} shuf {100*d.get('shuffle_mean', float('nan')):.1f} "
                   f"cons {100*d.get('consistent', float('nan')):.1f} unp {100*d['unparsed']:.1f} "
                   f"TV {d.get('position_tv', float('nan')):.3f}")
    print(" | ".join(out))
    if '-v' in sys.argv[0:1]: pass
