"""Session-16 driver (#15, goal 3a), design T: the control's recipe (session15_lora.py: 6 epochs, lr 1e-3) with
laion-clap's train-mode SpecAugment back on in CLAP, but its time stripes only (2 x 64 frames, 0.64 s each); the
frequency stripes (2 x 8 of 64 mel bands) stay off. Why: SpecAugment on left fewer generations unparsed (twelfth
session: 5.1 / 5.3 / 5.5% against 5.1 / 6.4 / 7.1% off, 3-epoch recipe), and what it cost was the identity types
(species, pitch), whose mel bands the frequency stripes hide. FULL=1 keeps both kinds of stripes (design T2).
usage: SEED=0 [FULL=1] python session16_timemask.py BASE_DIR OUT_DIR"""
import os
from torch import nn
import session15_lora
from aqa_utils.training import trainer as trainer_module

init = trainer_module.Trainer.__init__


def time_stripes_only(self, cfg, *args, **kwargs):
    init(self, cfg, *args, **kwargs)
    found = [m for name, m in self.model.named_modules() if name.endswith("spec_augmenter")]
    assert len(found) == 1 and hasattr(found[0], "freq_dropper"), found
    if os.environ.get("FULL") != "1":
        found[0].freq_dropper = nn.Identity()


trainer_module.Trainer.__init__ = time_stripes_only

if __name__ == "__main__":
    session15_lora.run(spec_augment=True)
