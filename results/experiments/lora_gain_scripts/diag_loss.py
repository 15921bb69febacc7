"""Where is the LoRA's training loss? Per answer token loss of a base (and adapter) on train questions."""
import sys
sys.path[:0] = [__import__("os").environ["AQA_OLD_CHECKOUT"], __import__("os").path.dirname(__file__)]  # a checkout of d74bb32
from common import *  # noqa
import numpy as np
import design as D
from aqa_utils import workbook
from aqa_utils.data.dcase import load_split
from aqa_utils.data.prompt import TrainCollator, build_tokenizer
from aqa_utils.audio import ClipCache, pad_window_batch
D.set_style(sys.argv[1])
base, adapter = sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None)
qs = load_split(D.DATA, "train").questions[:32]
tok = build_tokenizer(); col = TrainCollator(tok)
model = workbook.load_model(base, adapter, device="cpu")
ex = [D.T.QuestionExamples(qs, 0, True).get(i, 0) for i in range(len(qs))]
b = col([(e.prompt, e.target) for e in ex])
clips = ClipCache(model.config.audio)
w, wm = pad_window_batch([clips.get(e.audio_path) for e in ex])
with torch.no_grad():
    out = model(b["input_ids"], b["attention_mask"], windows=w, window_mask=wm)
logits = out.logits if hasattr(out, "logits") else out[0]
lp = torch.log_softmax(logits[:, :-1].float(), -1)
lab = b["labels"][:, 1:]
first, rest, ends = [], [], []
for i in range(len(ex)):
    pos = (lab[i] != -100).nonzero().flatten().tolist()
    l = [-float(lp[i, p, lab[i, p]]) for p in pos]
    first.append(l[0]); rest += l[1:-2]; ends += l[-2:]
    if i < 6:
        top = tok.decode([int(lp[i, pos[0]].argmax())])
        print(qs[i].question_type, repr(ex[i].target), "first-token loss %.2f, top first token %r" % (l[0], top))
print("mean loss: first answer token %.2f, later answer tokens %.2f, eoc+eos %.2f" % (np.mean(first), np.mean(rest), np.mean(ends)))
