"""Session-14 driver (#15, goal 2): LoRA r=8 from a given base, evaluated on the 296 train.val questions (never dev),
K=4 orders, both modes, as session10_lora.py. The control is the recipe as it was when this ran (6962c0e): 3 epochs,
lr 3e-3, SpecAugment on. Those values are set here, not read from configs/tiny/full.yaml, which adopted the variant
afterwards (187e57a), so the control still reproduces on a later package.
EPOCHS=6 and SPEC=0 (laion-clap's train-mode SpecAugment off in CLAP) are the two settings that, each alone, let the
adapters learn the pitch question nearly fully on design G's base (eleventh and twelfth sessions); this tries them
together. SEED=-1 is the base alone.
usage: SEED=0 [EPOCHS=6] [SPEC=0] python session14_lora.py BASE_DIR OUT_DIR"""
import dataclasses, os, sys
from pathlib import Path
import session10_lora
from aqa_utils.training import trainer as trainer_module

def run_with(settings: dict) -> None:
    """``settings`` (TrainConfig fields) over the package's recipe in every Trainer, then session10_lora's run and
    evaluation (argv: BASE_DIR OUT_DIR; env SEED)."""
    init = trainer_module.Trainer.__init__

    def with_settings(self, cfg, *args, **kwargs):
        init(self, dataclasses.replace(cfg, **settings), *args, **kwargs)

    trainer_module.Trainer.__init__ = with_settings
    session10_lora.main(sys.argv[1], Path(sys.argv[2]), int(os.environ.get("SEED", "0")))


if __name__ == "__main__":
    run_with(dict(epochs=int(os.environ.get("EPOCHS", "3")), lr=3e-3, spec_augment=os.environ.get("SPEC", "1") != "0"))
