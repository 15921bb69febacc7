"""Session-6 check (#15): do a stage 0's CLAP tokens carry HOW MANY sounds a clip holds? A linear probe (logistic
regression on the first 10 s window's tokens, frequency rows averaged: 32 time steps x width) trained on the 600
train caption clips, tested on the 100 dev ones, for the number of sounds starting in that window.
usage: python session6_probe.py STAGE0_FINAL [...]"""
import sys
from pathlib import Path
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from aqa_utils.audio import ClipCache
from aqa_utils.model.checkpoint import load
from aqa_utils.workbook.profile import profile
from session6_common import caption_scenes


def features(model, root, split):
    clips, X, y = ClipCache(model.config.audio), [], []
    for line, scene in caption_scenes(root, split):
        with torch.no_grad():
            tok = model.clap.eval()(clips.get(root / line["audio"])[:1])[0]  # (tokens, D) of the first window
        X.append(tok.reshape(2, tok.shape[0] // 2, -1).mean(0).flatten().numpy())
        y.append(sum(s.onset < 10 for s in scene.sounds))
    return np.array(X), np.array(y)


def main(paths):
    root = Path(profile("full").mini_root)
    for path in paths:
        model, _ = load(path, None, device="cpu")
        (Xtr, ytr), (Xte, yte) = features(model, root, "train"), features(model, root, "dev")
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)).fit(Xtr, ytr)
        majority = (yte == np.bincount(ytr).argmax()).mean()
        print(f"{path}: number of sounds, probe {(probe.predict(Xte) == yte).mean():.2f} vs majority {majority:.2f} "
              f"(dev n={len(yte)}, counts {np.bincount(yte).tolist()})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
