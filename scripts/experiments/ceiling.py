"""Is it the network? Trains much larger networks than the shipped one, for
much longer, on the shipped model's split, and reports them as `meter eval`
would: by source (the held-out meters), per meter, and on the random split.

    python3 ceiling.py PACKED_DIR OUT_DIR BUDGET_SECONDS [smoke]

PACKED_DIR is what `pack_digits` wrote (24x40, models/validation-sources.txt,
seed 1). PLAN=name,name picks runs from the plan below; runs that would not
fit in BUDGET_SECONDS of training are skipped or shortened. Meant for a GPU
(about 2.5 minutes per ResNet run on one H200); `smoke` runs two epochs on
1,200 images anywhere. Results go to OUT_DIR/ceiling.json.
"""
import json, os, sys, time

import digits_torch as dt
from digits_torch import Ours, ResNet, fmt, report

T0 = time.time()
if len(sys.argv) < 4:
    sys.exit(__doc__)
DATA, OUT, BUDGET = sys.argv[1], sys.argv[2], float(sys.argv[3])
SMOKE = len(sys.argv) > 4 and sys.argv[4] == "smoke"
dt.init(DATA, SMOKE)

results = []
probs = {}
E = 2 if SMOKE else None
# name, network, epochs, peak learning rate, seed, Gaussian target width (tenths)
plan = [
    ("ours-16ep", lambda: Ours(), E or 16, 3e-3, 1, None),
    ("ours-60ep", lambda: Ours(), E or 60, 3e-3, 1, None),
    ("ours-16ep-gauss", lambda: Ours(), E or 16, 3e-3, 1, 0.8),
    ("ours-16ep-gauss05", lambda: Ours(), E or 16, 3e-3, 1, 0.5),
    ("resnet-60ep-s1", lambda: ResNet(), E or 60, 2e-3, 1, None),
    ("resnet-wide-60ep", lambda: ResNet((96, 192, 384, 384)), E or 60, 2e-3, 4, None),
    ("resnet-60ep-s2", lambda: ResNet(), E or 60, 2e-3, 2, None),
    ("resnet-60ep-gauss", lambda: ResNet(), E or 60, 2e-3, 3, 0.8),
]
only = os.environ.get("PLAN")
if only:
    plan = [p for p in plan if p[0] in only.split(",")]
t_train = time.time()
last_s = 0.0
for name, make, ep, lr, seed, sigma in plan:
    spent = time.time() - t_train
    if last_s and spent + last_s * (2.0 if "wide" in name else 1.0) > BUDGET:
        print(f"skip {name}: {spent:.0f}s spent of {BUDGET:.0f}", flush=True)
        continue
    est = dt.epoch_seconds(make)
    fit = int((BUDGET - spent) * 0.92 / est)
    if fit < ep:
        print(f"{name}: {est:.1f}s per epoch; {ep} epochs do not fit, running {max(fit, 4)}", flush=True)
        ep = max(fit, 4)
    res, ph, pr = dt.train(name, make, ep, lr, seed, sigma)
    results.append(res)
    last_s = res["train_s"]
    probs[name] = (ph, pr)
    resnets = [k for k in probs if k.startswith("resnet")]
    if len(resnets) >= 2:
        # Probabilities averaged over every ResNet so far.
        ens = report(sum(probs[k][0] for k in resnets) / len(resnets), sum(probs[k][1] for k in resnets) / len(resnets))
        print(f"ensemble of {resnets}: held {fmt(ens['held'])} random {fmt(ens['random'])}", flush=True)
        for s, m in ens["per_source"].items():
            print(f"    {s:28s} n {m['n']:5d} {fmt(m)}", flush=True)
        results.append({"name": "ensemble:" + "+".join(resnets), "final": ens})
    with open(f"{OUT}/ceiling.json", "w") as f:
        json.dump(results, f, indent=1)
print(f"total {time.time()-T0:.0f}s", flush=True)
