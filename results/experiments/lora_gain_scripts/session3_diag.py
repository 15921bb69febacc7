"""Per question type: mean loss of the first answer token and of the later ones, and the model's top first token. usage: python session3_diag.py BASE ADAPTER|- SPLIT N (train.fit, eval format)."""
import sys, collections, torch
torch.set_num_threads(1)
from aqa_utils.loading import load_model
from aqa_utils.data.dcase import load_split
from aqa_utils.data.prompt import build_tokenizer, TrainCollator
from aqa_utils.training.examples import QuestionExamples
from aqa_utils.audio import ClipCache, pad_to_longest

base, adapter, split, n = sys.argv[1], (None if sys.argv[2] == "-" else sys.argv[2]), sys.argv[3], int(sys.argv[4])
tok = build_tokenizer(); col = TrainCollator(tok)
qs = load_split("data/mini", split).questions[:n]
ex = QuestionExamples(qs, 0, train=(len(sys.argv) > 5))
m = load_model(base, adapter, device="cpu")
clips = ClipCache()
stats = collections.defaultdict(list); tops = collections.defaultdict(collections.Counter)
with torch.no_grad():
    for i in range(0, len(qs), 8):
        es = [ex.get(j, 0) for j in range(i, min(i + 8, len(qs)))]
        b = col([(e.prompt, e.target) for e in es])
        w, wm = pad_to_longest([clips.get(e.audio_path) for e in es])
        out = m(b["input_ids"], b["attention_mask"], windows=w, window_mask=wm)
        lp = out.logits.log_softmax(-1)
        for k, e in enumerate(es):
            lab = b["labels"][k]; pos = (lab != -100).nonzero()[0].item()
            tgt = lab[pos].item(); l = -lp[k, pos - 1, tgt].item()
            rest = [-lp[k, p - 1, lab[p]].item() for p in range(pos + 1, int(b["attention_mask"][k].sum()))]
            qt = qs[i + k].question_type
            stats[qt].append((l, sum(rest) / max(1, len(rest))))
            tops[qt][tok.decode([lp[k, pos - 1].argmax().item()])] += 1
for qt, v in sorted(stats.items()):
    print(f"{qt:15s} n={len(v):3d} first={sum(a for a,_ in v)/len(v):6.2f} rest={sum(b for _,b in v)/len(v):5.2f} top={tops[qt].most_common(3)}")
