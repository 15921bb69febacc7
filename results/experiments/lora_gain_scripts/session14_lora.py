"""Session-14 driver (#15, goal 2): the recipe's LoRA r=8 from a given base with some of its settings changed,
evaluated on the 296 train.val questions (never dev), K=4 orders, both modes, as session10_lora.py.
EPOCHS (default the recipe's 3) and SPEC=0 (laion-clap's train-mode SpecAugment off in CLAP) are the two settings
that, each alone, let the adapters learn the pitch question nearly fully on design G's base (eleventh and twelfth
sessions); this tries them together. SEED=-1 is the base alone.
usage: SEED=0 [EPOCHS=6] [SPEC=0] python session14_lora.py BASE_DIR OUT_DIR"""
import dataclasses, os, sys
from pathlib import Path
import session10_lora
from aqa_utils.training import trainer as trainer_module

if __name__ == "__main__":
    changes = {}
    if "EPOCHS" in os.environ:
        changes["epochs"] = int(os.environ["EPOCHS"])
    if os.environ.get("SPEC", "1") == "0":
        changes["spec_augment"] = False
    if changes:
        init = trainer_module.Trainer.__init__

        def changed(self, cfg, *args, **kwargs):
            init(self, dataclasses.replace(cfg, **changes), *args, **kwargs)

        trainer_module.Trainer.__init__ = changed
    session10_lora.main(sys.argv[1], Path(sys.argv[2]), int(os.environ.get("SEED", "0")))
