"""Would distilling a larger network into the shipped one help? Trains a
teacher (the shipped architecture, four times as wide: 64/128/192 channels,
about 14 times the compute), then the shipped network (16/32/48) on the same
augmented batches with the loss

    alpha * cross-entropy(label, smoothing 0.1)
        + (1 - alpha) * T^2 * KL(teacher at temperature T || student at T)

and reports both as `meter eval` would, next to the shipped network trained
alone with the same seed and epochs.

    python3 distill.py PACKED_DIR OUT_DIR [TEACHER_EPOCHS] [STUDENT_EPOCHS]

KD_TEMP (default 2) and KD_ALPHA (default 0.5) set T and alpha; SKIP_ALONE=1
leaves out the network trained alone.

On the 2-core development machine: about 26 minutes for a 30-epoch teacher,
10 for a 16-epoch student. The teacher's weights go to OUT_DIR/teacher.pt
(reused when present), results to OUT_DIR/distill-NAME.json.
"""
import json, os, sys

import torch

import digits_torch as dt
from digits_torch import Ours, fmt, predict_probs, report

if len(sys.argv) < 3:
    sys.exit(__doc__)
DATA, OUT = sys.argv[1], sys.argv[2]
T_EPOCHS = int(sys.argv[3]) if len(sys.argv) > 3 else 30
S_EPOCHS = int(sys.argv[4]) if len(sys.argv) > 4 else 16
TEMP = float(os.environ.get("KD_TEMP", "2"))
ALPHA = float(os.environ.get("KD_ALPHA", "0.5"))
SEED = 1
TEACHER = (64, 128, 192)
torch.set_num_threads(max(1, os.cpu_count() or 1))
dt.init(DATA)


def run(name, model, epochs, teacher=None):
    """dt.train on a model built here, before the seed is set (so that the
    numbers in models/README.md stay reproducible), keeping it."""
    res, _, _ = dt.train(name, lambda: model, epochs, 3e-3, SEED, teacher=teacher, kd_temp=TEMP, kd_alpha=ALPHA)
    return model, res


results = []
path = f"{OUT}/teacher.pt"
teacher = Ours(TEACHER)
if os.path.exists(path):
    teacher.load_state_dict(torch.load(path, weights_only=True))
    teacher = teacher.to(dt.DEV).to(memory_format=torch.channels_last)
    r = report(predict_probs(teacher, dt.va_held), predict_probs(teacher, dt.va_rand))
    print(f"teacher (loaded): held {fmt(r['held'])} random {fmt(r['random'])}", flush=True)
    results.append({"name": "teacher", "final": r})
else:
    teacher, res = run("teacher", teacher, T_EPOCHS)
    torch.save(teacher.state_dict(), path)
    results.append(res)
runs = [(f"student-T{TEMP:g}-a{ALPHA:g}", teacher), ("alone", None)]
if os.environ.get("SKIP_ALONE"):
    runs = runs[:1]
for name, t in runs:
    _, res = run(name, Ours(), S_EPOCHS, teacher=t)
    results.append(res)
    with open(f"{OUT}/distill-{name}.json", "w") as f:
        json.dump(results, f, indent=1)
