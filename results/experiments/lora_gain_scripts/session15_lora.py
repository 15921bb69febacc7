"""Session-15 driver (#15, goals 3a and 9): LoRA r=8 from a given base, evaluated on the 296 train.val questions
(never dev), K=4 orders, both modes, as session10_lora.py. The control is the recipe of 187e57a / 6b06a30: 6 epochs,
lr 1e-3 (the sweep's choice at 6 epochs), laion-clap's SpecAugment off. Its settings are set here, not read from
configs/tiny/full.yaml, so the control reproduces on a later package. EPOCHS=4 is the variant: fewer epochs, for
the unparsed share (the 3-epoch recipe left fewer generations unparsed) and for the run time. SEED=-1: the base alone.
usage: SEED=0 [EPOCHS=4] [LR=1e-3] python session15_lora.py BASE_DIR OUT_DIR"""
import os
import session14_lora


def run(**changes) -> None:
    """The control's settings over the package's recipe, then ``changes`` (TrainConfig fields) over those, then
    session10_lora's run and evaluation (argv, SEED)."""
    control = dict(epochs=int(os.environ.get("EPOCHS", "6")), lr=float(os.environ.get("LR", "1e-3")), spec_augment=False)
    session14_lora.run_with({**control, **changes})


if __name__ == "__main__":
    run()
