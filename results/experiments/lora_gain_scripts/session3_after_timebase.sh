#!/bin/bash
# waits for the time-resolved base, then: its zero-shot evaluation, LoRA r=8 (recipe), full fine-tuning; all on train.val
while [ ! -f work/exp3/tb_base/summary.json ]; do sleep 10; done
B='"base": "work/exp3/tb_base/final"'
OMP_NUM_THREADS=1 .venv/bin/python work/exp3/run.py tb_zero "{$B}" > work/exp3/tb_zero.log 2>&1 || true
OMP_NUM_THREADS=1 .venv/bin/python work/exp3/run.py tb_lora "{$B}" > work/exp3/tb_lora.log 2>&1
OMP_NUM_THREADS=1 .venv/bin/python work/exp3/run.py tb_fullft "{$B, \"mode\": \"full\", \"frozen\": [\"clap\"], \"lr\": 0.001}" > work/exp3/tb_fullft.log 2>&1
