"""Seen against unseen meters, on the same photos.

    python3 seen_unseen.py PACKED_DIR SEEN_MODEL UNSEEN_MODEL SOURCES_FILE

PACKED_DIR is `pack_digits` output with the shipped model's split. SEEN_MODEL
trained on the sources in SOURCES_FILE (the shipped model does); UNSEEN_MODEL
held them all out (`meter train --holdout-file` listing them and
models/validation-sources.txt). Both read those sources' photos in SEEN_MODEL's
random validation split, which neither trained on.
"""
import sys
import numpy as np
import torch

import digits_torch as dt


if len(sys.argv) != 5:
    sys.exit(__doc__)
packed, seen, unseen, sources_file = sys.argv[1:]
dt.init(packed)
torch.set_num_threads(2)
sources = [l.strip() for l in open(sources_file) if l.strip() and not l.startswith("#")]
idx = dt.va_rand[np.isin(dt.src[dt.va_rand], sources)]
print(f"{len(sources)} sources, {len(idx)} photos in the random split")
for name, path in (("seen", seen), ("unseen", unseen)):
    m, _ = dt.load_tenths_cnn(path)
    print(f"{name:6s} {path}: {dt.fmt(dt.metrics(dt.predict_probs(m, idx), idx))}")
