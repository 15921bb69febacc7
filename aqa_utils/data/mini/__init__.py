"""The generated mini benchmark: DCASE Task 5's on-disk layout and quirks, synthetic audio, learnable by a tiny model.

Three domains mirror the real ones:

- BQA-like (``watkins_0012``): one invented species calling 1-4 times. Species differ by frequency band
  (250 Hz .. 4.5 kHz, spread over the mel range); each uses two of four call shapes (whistle = up-sweep,
  moan = long harmonic tone, click train, trill = rapid down-chirps). Asks species, vocalization, pitch, count.
- TSQA-like (``fold1_0003``): 10 s soundscapes of timed events (knock, horn, siren, bell, beep). Asks first/last,
  next, count, onset, offset, duration, overlap.
- CQA-like (``audio_0042``): animal A calls, an event sounds, animal B calls. Asks which animal calls
  before/after the event, which event separates them, how many calls come before/after it.

Sounds last >= 0.5 s with >= 0.5 s gaps so a 64-token-per-window encoder can resolve them. Every answer class is
drawn from a balanced cycle and every answer position from another, with distractors drawn uniformly from the same
class vocabulary, so the question text and options alone give no clue (see ``data.baselines.text_only_baselines``).
The files exercise the real quirks: 16 / 22.05 / 44.1 / 48 kHz, some stereo, some MP3 data behind a ``.wav`` name,
2-6 choices (mostly 4), a few 15-35 s BQA clips, several questions per clip. Eval JSONs carry no answer; the key is
written to ``eval_answers.csv`` (submission format) so the mini eval split can still be scored.

Modules: ``vocabulary`` (species, calls, events, templates), ``scenes`` (what sounds when, and the questions),
``synth`` (signals and files), ``captions`` (the pretraining corpus), ``benchmark`` (the DCASE layout on disk).
"""

from aqa_utils.data.mini.benchmark import VERSION, make_mini_benchmark
from aqa_utils.data.mini.captions import read_captions
from aqa_utils.data.mini.vocabulary import CALLS, EVENTS, QTYPES, SOUND_CLASSES, SPECIES

__all__ = ["CALLS", "EVENTS", "QTYPES", "SOUND_CLASSES", "SPECIES", "VERSION", "make_mini_benchmark", "read_captions"]
