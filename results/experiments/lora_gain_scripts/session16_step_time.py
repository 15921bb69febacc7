"""Session-16 measurement (#15, goal 9's room): how a LoRA r=8 step of the control's recipe splits its time between
the audio path (CLAP with its LoRA, the audio transformer) and the LM, on one thread: 20 steps after 3 of warm-up,
forward and backward, then the same steps with the audio memory computed without gradients (the LM alone).
Run with nothing else on the cores. usage: python session16_step_time.py SCRATCH_DIR  (nothing is saved there)"""
import dataclasses, sys, time
import torch
torch.set_num_threads(1)
from aqa_utils.workbook.profile import profile
from aqa_utils.training import Trainer
prof = profile("full")
cfg = dataclasses.replace(prof.lora_config(prof.lora_system(8, 0)), checkpoint="work/quick/base/af2-tiny",
                          out_dir=sys.argv[1], progress=False, save_every=0, lr=1e-3, epochs=6, spec_augment=False)
t = Trainer(cfg)
obj, core = t.objective, t.core
t.model.train()
def step(i, audio_grad=True):
    idx, ep = t.global_batch_at(i)
    ex = [t.train_data.get(j, ep) for j in idx]
    text = obj.collate([(e.prompt, e.target) for e in ex])
    a = obj._audio(core, ex, "cpu", t.accelerator.autocast)
    t0 = time.perf_counter()
    with torch.set_grad_enabled(audio_grad):
        memory = core.encode_audio(a["windows"], a["window_mask"])
    t1 = time.perf_counter()
    out = core(text["input_ids"], text["attention_mask"], memory=memory, labels=text["labels"])
    out.loss_sum.backward()
    t2 = time.perf_counter()
    t.optimizer.zero_grad(set_to_none=True)
    return t1 - t0, t2 - t0
for i in range(3): step(i)
full = [step(i) for i in range(3, 23)]
lm = [step(i, audio_grad=False) for i in range(3, 23)]
f, l = sum(x[1] for x in full) / 20, sum(x[1] - x[0] for x in lm) / 20
print(f"step fwd+bwd {f:.3f} s; audio forward {sum(x[0] for x in full) / 20:.3f} s; LM fwd+bwd alone {l:.3f} s; audio share {1 - l / f:.2f}")
print("examples", len(t.train_data), "distinct clips", len({t.train_data.questions[i].audio_path for i in range(len(t.train_data))}))
