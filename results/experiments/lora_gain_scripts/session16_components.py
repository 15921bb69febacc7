"""Session-16 driver (#15, goal 3a), a lab-only diagnostic A: the control's recipe (session15_lora.py: 6 epochs, lr
1e-3, SpecAugment off) with adapters on the audio side alone (CLAP and the audio transformer; the LM, with its
gated cross-attention, stays the base's). Not the report's recipe (it adapts all three): it asks where the
unparsed answers come from. If the LM's own option reading, which the base learnt from text, survives when the LM
is not adapted, the unparsed share should fall to near the base's reading of its options; if it does not fall, the
unlisted answers come from what the audio side now tells an unchanged LM.
usage: SEED=0 [COMPONENTS=clap,audio_transformer] python session16_components.py BASE_DIR OUT_DIR"""
import dataclasses, os
import session15_lora
from aqa_utils.training import trainer as trainer_module

COMPONENTS = tuple(os.environ.get("COMPONENTS", "clap,audio_transformer").split(","))
init = trainer_module.Trainer.__init__


def with_components(self, cfg, *args, **kwargs):
    if cfg.mode == "lora":
        cfg = dataclasses.replace(cfg, lora=dataclasses.replace(cfg.lora, components=COMPONENTS))
    init(self, cfg, *args, **kwargs)


trainer_module.Trainer.__init__ = with_components

if __name__ == "__main__":
    session15_lora.run()
