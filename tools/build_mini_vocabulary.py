"""Write aqa_utils/data/mini/tokens.txt: the Qwen2.5 ids af2-tiny's trimmed vocabulary keeps.

It generates the mini benchmark's text (no audio) at the workbook's full and CI sizes, for a few generator seeds,
and keeps every token Qwen2.5's BPE forms on those texts (``data.prompt.merge_path_ids``). Rerun it when the
generator's wording changes; tests/test_vocabulary.py fails until then. Changing the list changes af2-tiny's
vocab_size (``config.PRESETS``) and so every trained tiny model.

    python tools/build_mini_vocabulary.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aqa_utils.data.mini import make_mini_benchmark
from aqa_utils.training.examples import corpus_texts
from aqa_utils.data.prompt import VOCABULARIES, merge_path_ids
from aqa_utils.workbook.profile import profile

SEEDS = (0, 1, 2)


def main() -> None:
    texts: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("full", "ci"):
            for seed in SEEDS:
                root = make_mini_benchmark(Path(tmp) / f"{name}_{seed}", seed=seed, audio=False, progress=False,
                                           **profile(name).mini_sizes)
                texts.update(t.lower().strip() for t in corpus_texts(root, seed=seed))
    kept = sorted(merge_path_ids(texts))
    out = Path(__file__).resolve().parent.parent / "aqa_utils" / VOCABULARIES["mini"]
    header = (f"# af2-tiny's vocabulary: Qwen2.5 BPE ids, one per line ({len(kept)}), written by "
              f"tools/build_mini_vocabulary.py from {len(texts)} distinct texts of the mini benchmark")
    out.write_text(header + "\n" + "\n".join(map(str, kept)) + "\n")
    print(f"{out.relative_to(out.parents[3])}: {len(kept)} ids; af2-tiny's vocab_size = {len(kept)} + 26 special")


if __name__ == "__main__":
    main()
