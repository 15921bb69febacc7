"""Session-16 driver (#15, goal 3a), design N: the control's recipe (session15_lora.py: lr 1e-3, SpecAugment off)
on a larger generated train split at the same number of steps: N questions (MINI=work/exp16/mini<N>, made by
make_mini_benchmark with seed 0 and n_train=N) for EPOCHS epochs, e.g. 3,000 x 3 or 2,250 x 4 against the control's
1,500 x 6. Why: the unparsed generations name a class the options leave out, on held-out clips the adapters hear
wrong; more distinct clips at the same cost should leave fewer heard wrong. Evaluated, as every design, on the
pipeline's train.val (296 questions; the larger split is an independent draw of the generator, so none of its clips
is one of them).
usage: SEED=0 MINI=work/exp16/mini3000 EPOCHS=3 python session16_more.py BASE_DIR OUT_DIR"""
import os
import session15_lora

if __name__ == "__main__":
    if "EPOCHS" not in os.environ:
        raise SystemExit("set EPOCHS (3 for mini3000, 4 for mini2250)")
    session15_lora.run(data_root=os.environ["MINI"])  # the control's lr and SpecAugment; EPOCHS from the env
