"""Our eight held-out meters, seen and unseen: trains the shipped network
(PyTorch copy, 16 epochs, as `ceiling.py`'s ours-16ep) twice, without and
with one half of each held-out meter's photos in the training set (the A
halves of `adapt.py`: even positions), and reads the other halves (B).

    python3 halves.py PACKED_DIR

About 8 minutes on 2 CPU cores.
"""
import sys

import numpy as np
import torch

import digits_torch as dt
from digits_torch import Ours, fmt

if len(sys.argv) != 2:
    sys.exit(__doc__)
dt.init(sys.argv[1])
torch.set_num_threads(2)
a_halves, b_halves = [], []
for s in sorted(set(dt.src[dt.va_held])):
    ids = dt.va_held[dt.src[dt.va_held] == s]
    a_halves.append(ids[0::2])
    b_halves.append(ids[1::2])
A, B = np.concatenate(a_halves), np.concatenate(b_halves)
dt.va_held = B
unseen, _, _ = dt.train("ours-16ep", lambda: Ours(), 16, 3e-3, 1)
dt.tr = torch.cat([dt.tr, torch.tensor(A, device=dt.DEV)])
seen, _, _ = dt.train("ours-16ep+A", lambda: Ours(), 16, 3e-3, 1)
print(f"B halves (n {len(B)}): meters unseen {fmt(unseen['final']['held'])}, seen {fmt(seen['final']['held'])}")
