# Adaptation experiment: how much does fine-tuning the shipped
# model on one unseen meter's own images help on that meter's other images?
# Each held-out meter's images are split in two halves by index parity:
# A (the user's collected crops) and B (evaluation). Variants:
#   pseudo: A labelled by the shipped model itself, kept when its confidence
#           (mass within one tenth, temperature from the file) >= 0.95;
#   human:  A with its true labels (what `meter classify` gives);
# each fine-tuned from the shipped weights with replay of the training data.
#
#     python3 adapt.py PACKED_DIR MODEL   (EPOCHS, LR, REPLAY, THRESH, OUTJSON from the environment)
#
# About 3 minutes on 2 CPU cores. Needs torch, numpy and safetensors.
import sys, time, os, json
import numpy as np
import torch
import torch.nn.functional as F

import digits_torch as dt
from digits_torch import augment, fmt, metrics, standardise

if len(sys.argv) != 3:
    sys.exit("usage: adapt.py PACKED_DIR MODEL")
dt.init(sys.argv[1])
X, labels, src, tr, va_held, va_rand = dt.X, dt.labels, dt.src, dt.tr, dt.va_held, dt.va_rand
torch.set_num_threads(2)
EPOCHS = int(os.environ.get("EPOCHS", "3"))
LR = float(os.environ.get("LR", "1e-4"))
REPLAY = int(os.environ.get("REPLAY", "3000"))
THRESH = float(os.environ.get("THRESH", "0.95"))
FREEZE_BN = os.environ.get("FREEZE_BN", "1") == "1"
_, TEMP = dt.load_tenths_cnn(sys.argv[2])


def shipped():
    """The model file's weights in the PyTorch copy of its architecture."""
    return dt.load_tenths_cnn(sys.argv[2])[0]


@torch.no_grad()
def logits_of(model, idx):
    model.eval()
    return torch.cat([model(standardise(X[torch.tensor(idx[i:i + 1024])])) for i in range(0, len(idx), 1024)])


def confidence(logits):
    p = F.softmax(logits / TEMP, 1)
    a = p.argmax(1)
    conf = sum(p.gather(1, ((a + k) % 100)[:, None])[:, 0] for k in (-1, 0, 1))
    return a, conf


def fine_tune(model, own_idx, own_lab, seed):
    # Dropout draws from torch's global generator: seed it too, or reruns differ.
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    rng = np.random.default_rng(seed)
    replay = rng.choice(tr.numpy(), size=min(REPLAY, len(tr)), replace=False)
    # Own images repeated to make up half of each epoch.
    reps = max(1, REPLAY // max(1, len(own_idx)))
    idx = np.concatenate([replay, np.tile(own_idx, reps)])
    lab = np.concatenate([labels[replay], np.tile(own_lab, reps)])
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=5e-4)
    bs = 64
    for ep in range(EPOCHS):
        model.train()
        if FREEZE_BN:
            # Keep the batch-norm statistics of the original training.
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.eval()
        order = rng.permutation(len(idx))
        for i in range(len(order) // bs):
            b = order[i * bs:(i + 1) * bs]
            x = standardise(augment(X[torch.tensor(idx[b])], g))
            loss = F.cross_entropy(model(x), torch.tensor(lab[b]), label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


rows = []
base_m = shipped()
for s in sorted(set(src[va_held])):
    ids = va_held[src[va_held] == s]
    A, B = ids[0::2], ids[1::2]
    a_pred, a_conf = confidence(logits_of(base_m, A))
    keep = (a_conf >= THRESH).numpy()
    pa = a_pred.numpy()
    d = dt.circular_distance(pa, labels[A])
    before = metrics(dt.predict_probs(base_m, B), B)
    row = {"source": s, "n_A": len(A), "n_B": len(B), "kept": int(keep.sum()),
           "pseudo_exact": float((d[keep] == 0).mean()) if keep.any() else None,
           "pseudo_within": float((d[keep] <= 1).mean()) if keep.any() else None,
           "before": before}
    t = time.time()
    if keep.any():
        m = fine_tune(shipped(), A[keep], pa[keep], 1)
        row["pseudo"] = metrics(dt.predict_probs(m, B), B)
    m = fine_tune(shipped(), A, labels[A], 1)
    row["human"] = metrics(dt.predict_probs(m, B), B)
    # Forgetting: the random split (other meters the model knew).
    row["human_random"] = metrics(dt.predict_probs(m, va_rand), va_rand)
    rows.append(row)
    print(f"{s:28s} A {len(A):4d} kept {row['kept']:4d} (pseudo labels exact {100*(row['pseudo_exact'] or 0):.1f} within {100*(row['pseudo_within'] or 0):.1f})  "
          f"B before {fmt(before)}  pseudo {fmt(row['pseudo']) if 'pseudo' in row else '-'}  human {fmt(row['human'])}  (random after human {fmt(row['human_random'])}) {time.time()-t:.0f}s", flush=True)


def pooled(key):
    tot = {k: 0.0 for k in ("exact", "within_0_1")}
    n = 0
    for r in rows:
        m = r.get(key) or r["before"]
        n += m["n"]
        for k in tot:
            tot[k] += m[k] * m["n"]
    return {k: v / n for k, v in tot.items()}


for key in ("before", "pseudo", "human"):
    p = pooled(key)
    print(f"pooled B {key:7s} exact {100*p['exact']:.1f} within {100*p['within_0_1']:.1f}")
json.dump(rows, open(os.environ.get("OUTJSON", "/tmp/adapt.json"), "w"), indent=1)
