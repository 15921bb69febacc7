"""Generate the mini benchmark (dev 600) and run stage 0 (HTSAT tagging) as in profile full."""
import sys, time, json
sys.path[:0] = [__import__("os").environ["AQA_OLD_CHECKOUT"], __import__("os").path.dirname(__file__)]  # a checkout of d74bb32
from common import *
from dataclasses import replace
from aqa_utils import workbook
from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.audio_pretrain import pretrain_audio_encoder
t = time.time()
make_mini_benchmark(DATA, seed=0, **SIZES)
print("data", round(time.time() - t, 1), flush=True)
prof = workbook.profile("full")
cfg = replace(prof.audio_pretrain, data_root=str(DATA), out_dir=str(WORK / "stage0"), progress=False)
t = time.time()
s = pretrain_audio_encoder(cfg)
print("stage0", round(time.time() - t, 1), json.dumps(s)[:300], flush=True)
