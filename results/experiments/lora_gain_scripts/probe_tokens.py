"""Do the stage-0 CLAP tokens carry "how many" and "when"? Linear probes on frozen tokens of caption-corpus clips
(first 10 s window): number of sounds in BQA/CQA clips, onset bin of the first sound, total sounding time."""
import sys
sys.path[:0] = [__import__("os").environ["AQA_OLD_CHECKOUT"], __import__("os").path.dirname(__file__)]  # a checkout of d74bb32
from common import *  # noqa
import numpy as np
import design as D
from aqa_utils import workbook
from aqa_utils.audio import ClipCache
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

model = workbook.load_model(WORK / "stage0" / "final", device="cpu")
clips = ClipCache(model.config.audio)
feats, ys = {}, {}
for split in ("train", "dev"):
    scenes = D.caption_scenes(split)
    X, Y = [], []
    for i, s in enumerate(scenes):
        w = clips.get(DATA / "captions" / "audio" / split / f"{s.name}.wav")[:1]
        with torch.no_grad():
            tok = model.clap(w)[0]  # (tokens, D)
        n = tok.shape[0]
        X.append(tok.reshape(2, n // 2, -1).mean(0).flatten().numpy())  # (time tokens x D): mean over freq rows
        first = s.sounds[0]
        Y.append((len([x for x in s.sounds if x.onset < 10]), min(int(first.onset // 2), 4),
                  sum(min(x.duration, 10 - x.onset) for x in s.sounds if x.onset < 10), s.subset))
    feats[split], ys[split] = np.array(X), Y
print("features", feats["train"].shape)
for name, col, kind in (("number of sounds", 0, "clf"), ("onset bin (2 s) of first sound", 1, "clf"),
                        ("total sounding time (s)", 2, "reg")):
    ytr = np.array([y[col] for y in ys["train"]]); yte = np.array([y[col] for y in ys["dev"]])
    if kind == "clf":
        m = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)).fit(feats["train"], ytr)
        acc = (m.predict(feats["dev"]) == yte).mean()
        maj = (yte == np.bincount(ytr).argmax()).mean()
        print(f"{name}: probe acc {acc:.2f} vs majority {maj:.2f} (dev n={len(yte)})")
    else:
        m = make_pipeline(StandardScaler(), Ridge(alpha=100)).fit(feats["train"], ytr)
        err = np.abs(m.predict(feats["dev"]) - yte).mean()
        print(f"{name}: probe MAE {err:.2f} s vs predicting the mean {np.abs(ytr.mean() - yte).mean():.2f} s")
