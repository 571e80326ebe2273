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
import json, os, sys, time

import torch
import torch.nn.functional as F

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


def run(name, model, epochs, lr, teacher=None, bs=128, wd=5e-4, smoothing=0.1):
    """dt.train's loop (same seeds, schedule and augmentation), with an
    optional teacher whose softened predictions on each batch join the loss."""
    torch.manual_seed(SEED)
    g = torch.Generator(device=dt.DEV)
    g.manual_seed(SEED)
    model = model.to(dt.DEV).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * (len(dt.tr) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    if teacher is not None:
        teacher.eval()
    t = time.time()
    for ep in range(epochs):
        model.train()
        perm = dt.tr[torch.randperm(len(dt.tr), device=dt.DEV, generator=g)]
        for i in range(len(dt.tr) // bs):
            b = perm[i * bs:(i + 1) * bs]
            x = dt.standardise(dt.augment(dt.X[b], g)).contiguous(memory_format=torch.channels_last)
            logits = model(x)
            loss = F.cross_entropy(logits, dt.Y[b], label_smoothing=smoothing)
            if teacher is not None:
                with torch.no_grad():
                    soft = F.softmax(teacher(x) / TEMP, 1)
                kd = F.kl_div(F.log_softmax(logits / TEMP, 1), soft, reduction="batchmean") * TEMP**2
                loss = ALPHA * loss + (1 - ALPHA) * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"  {name} epoch {ep+1}/{epochs} loss {loss.item():.3f} ({time.time()-t:.0f}s)", flush=True)
    r = report(predict_probs(model, dt.va_held), predict_probs(model, dt.va_rand))
    print(f"{name}: {time.time()-t:.0f}s; held {fmt(r['held'])} random {fmt(r['random'])}", flush=True)
    for s, m in r["per_source"].items():
        print(f"    {s:28s} n {m['n']:5d} {fmt(m)}", flush=True)
    return model, {"name": name, "epochs": epochs, "train_s": time.time() - t, "final": r}


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
    teacher, res = run("teacher", teacher, T_EPOCHS, 3e-3)
    torch.save(teacher.state_dict(), path)
    results.append(res)
runs = [(f"student-T{TEMP:g}-a{ALPHA:g}", teacher), ("alone", None)]
if os.environ.get("SKIP_ALONE"):
    runs = runs[:1]
for name, t in runs:
    _, res = run(name, Ours(), S_EPOCHS, 3e-3, teacher=t)
    results.append(res)
    with open(f"{OUT}/distill-{name}.json", "w") as f:
        json.dump(results, f, indent=1)
