"""Session-16 driver (#15, goal 9's room), a lab-only design G: the control's recipe (session15_lora.py: 6 epochs,
lr 1e-3, SpecAugment off) with each epoch's order grouped by clip (the clips in a seeded random order, each clip's
questions together in a random order of their own) and each batch encoding each of its clips once: the audio
path is 79% of a step (session16_step_time.py) and train.fit's 1,204 questions sit on 689 clips. Asks whether the
grouping changes what the adapters learn, and what it saves. The validation loss is computed as before.
usage: SEED=0 python session16_grouped.py BASE_DIR OUT_DIR"""
import torch
import session15_lora
from aqa_utils.training import objectives, trainer as trainer_module
from aqa_utils.training.objectives import clip_inputs


def grouped_order(data, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    clips: dict = {}
    for i, q in enumerate(data.questions):
        clips.setdefault(q.audio_path, []).append(i)
    groups = list(clips.values())
    order = []
    for c in torch.randperm(len(groups), generator=g).tolist():
        members = groups[c]
        order += [members[j] for j in torch.randperm(len(members), generator=g).tolist()]
    return order


def global_batch_at(self, step):
    epoch, within = divmod(step, self.steps_per_epoch)
    order = grouped_order(self.train_data, self.cfg.seed, epoch)
    return order[within * self.global_batch:(within + 1) * self.global_batch], epoch


plain_loss_sum = objectives.LanguageModelling.loss_sum


def loss_sum(self, module, core, batch, device, autocast):
    if not torch.is_grad_enabled() or self.clap_tokens is not None:
        return plain_loss_sum(self, module, core, batch, device, autocast)
    text = {k: v.to(device) for k, v in self.collate([(e.prompt, e.target) for e in batch]).items()}
    unique = list(dict.fromkeys(e.audio_path for e in batch))
    rows = torch.tensor([unique.index(e.audio_path) for e in batch], device=device)
    with autocast():
        windows, mask = clip_inputs(self.clips, self.mels, core.clap, unique, device)
        memory = core.encode_audio(windows, mask).select(rows)
        return module(text["input_ids"], text["attention_mask"], labels=text["labels"], memory=memory).loss_sum


trainer_module.Trainer.global_batch_at = global_batch_at
objectives.LanguageModelling.loss_sum = loss_sum

if __name__ == "__main__":
    session15_lora.run()
