"""Session-6 check (#15): does a base hear counts and order? For each dev caption clip, the caption is varied in one
slot (the number of calls of a BQA clip; the calls before / after the event of a CQA clip; the first event of a TSQA
clip, or the whole second of its first onset) and the base's summed loss picks a variant (teacher forcing, prompt
"describe the sound."); the share of clips where it picks the true caption, against 1 / number of variants.
usage: python session6_captions.py BASE DATA_ROOT"""
import json, re, sys
from pathlib import Path
from aqa_utils.training.examples import CAPTION_PROMPT
from aqa_utils.data.mini.vocabulary import NUMBERS, EVENTS
from session6_common import Chooser

def variants(text):
    """(slot name, true index, [caption variants])"""
    out = []
    m = re.match(r"^(an? [a-z ]+ makes )(one|two|three|four)( calls?)(.*)$", text)
    if m and ", then" not in text:
        vs = [m.group(1) + n + (" call" if n == "one" else " calls") + m.group(4) for n in NUMBERS]
        out.append(("bqa_count", NUMBERS.index(m.group(2)), vs))
    m = re.match(r"^(an? [a-z ]+ makes )(one|two|three)( calls?)(, then .* makes )(one|two|three)( calls?)(\.)$", text)
    if m:
        vs = [m.group(1) + n + (" call" if n == "one" else " calls") + m.group(4) + m.group(5) + m.group(6) + m.group(7) for n in NUMBERS[:3]]
        out.append(("cqa_count_before", NUMBERS.index(m.group(2)), vs))
        vs = [m.group(1) + m.group(2) + m.group(3) + m.group(4) + n + (" call" if n == "one" else " calls") + m.group(7) for n in NUMBERS[:3]]
        out.append(("cqa_count_after", NUMBERS.index(m.group(5)), vs))
    m = re.match(r"^([a-z ]+?) first, ([a-z ]+?) last: (.*)$", text)
    if m and m.group(1) in EVENTS:
        vs = [e + " first, " + m.group(2) + " last: " + m.group(3) for e in EVENTS]
        out.append(("tsqa_first", EVENTS.index(m.group(1)), vs))
    m = re.search(r" at (\d+)\.(\d) s", text)
    if m and " first, " in text:
        sec = int(m.group(1))
        vs = [text[:m.start(1)] + str(s) + text[m.end(1):] for s in range(10)]
        out.append(("tsqa_first_onset_second", sec, vs))
    return out

def main(base, root):
    chooser = Chooser(base)
    rows = [json.loads(l) for l in (Path(root) / "captions/dev.jsonl").read_text().splitlines()]
    res = {}
    for r in rows:
        for slot, true, vs in variants(r["text"]):
            pred = chooser.choose(Path(root) / r["audio"], CAPTION_PROMPT, vs)
            res.setdefault(slot, []).append((pred == true, len(vs)))
    for slot, v in res.items():
        print(f"{slot}: {sum(c for c, _ in v)}/{len(v)} = {sum(c for c,_ in v)/len(v):.2f} (chance {1/v[0][1]:.2f})")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
