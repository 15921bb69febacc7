"""Does a base recall the species facts of design K? Text-only fact questions as multiple choice (pitch: high /
medium / low; audio: a dev clip, irrelevant), option scoring and generation, K=4 orders.
usage: python session5_facts.py BASE_DIR ..."""
import sys, torch
from pathlib import Path
torch.set_num_threads(1)
from aqa_utils.data.dcase import Question, load_split
from aqa_utils.data.mini.vocabulary import PITCHES, SPECIES
from aqa_utils.data.prompt import tokenizer_for
from aqa_utils.evaluation import EvalSettings, evaluate
from aqa_utils.loading import load_model

clip = load_split("data/mini", "dev").questions[0]
qs = [Question(qid=f"fact_{i}", split="dev", question=f"what pitch are a {sp.name}'s calls?", choices=list(PITCHES),
               answer=PITCHES.index(sp.pitch), clip_id=clip.clip_id, audio_path=clip.audio_path, subset="BQA",
               question_type="fact_pitch", json_path=clip.json_path) for i, sp in enumerate(SPECIES)]
st = EvalSettings(mode="both", permutations=4, max_new_tokens=12, batch_size=16, progress=False, primary="score")
for base in sys.argv[1:]:
    model = load_model(base, device="cpu")
    r = evaluate(model, tokenizer_for(model), qs, st)  # the tokenizer of the base's vocabulary (tenth session)
    print(base, {m: round(r.robustness[m]["mean_accuracy"], 3) for m in r.robustness}, "chance", round(1 / len(PITCHES), 3), flush=True)
