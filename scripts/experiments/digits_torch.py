"""Shared parts of the PyTorch experiments in this folder (not part of the
product or of CI): the packed dataset, meter-model's augmentation and
architecture re-created in PyTorch, larger networks, and the metrics of
`meter eval` (exact, within one tenth, settled digit).

Call `init(data_dir)` first: it reads what `pack_digits` wrote (`pixels.u8`,
raw RGB) or its compact 4:2:0 copy (`ycc.u8` or `ycc.xz`, see `compact`),
and `meta.csv`.
"""
import lzma, math, os, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEV = "cuda" if torch.cuda.is_available() else "cpu"
H, W = 40, 24
SMOKE = False
X = Y = tr = None
labels = split = src = va_rand = va_held = None


def read_pixels(d):
    """The images as float32 RGB, (N, 3, 40, 24)."""
    if os.path.exists(f"{d}/pixels.u8"):
        raw = np.fromfile(f"{d}/pixels.u8", np.uint8)
        return raw.reshape(-1, H, W, 3).transpose(0, 3, 1, 2).astype(np.float32)
    path = f"{d}/ycc.u8"
    raw = open(path, "rb").read() if os.path.exists(path) else lzma.open(f"{d}/ycc.xz").read()
    a = np.frombuffer(raw, np.uint8).reshape(-1, 1440)
    n = len(a)
    y = a[:, :960].reshape(n, 40, 24).astype(np.float32)
    up = lambda c: np.repeat(np.repeat(c.reshape(n, 20, 12).astype(np.float32) - 128, 2, 1), 2, 2)
    cb, cr = up(a[:, 960:1200]), up(a[:, 1200:])
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return np.clip(rgb, 0, 255)


def compact(d):
    """Writes `ycc.xz`: pixels.u8 as 8-bit YCbCr with the chroma halved both
    ways (1,440 bytes an image instead of 2,880), xz-compressed: 34 MB for
    the 39,188 images, to carry them to a machine with a size limit. The
    shipped model reads this copy at 81.2 / 97.1 / 98.7 against 81.3 / 97.1 /
    98.7 from the originals."""
    px = np.fromfile(f"{d}/pixels.u8", np.uint8).reshape(-1, H, W, 3).astype(np.float32)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    half = lambda c: c.reshape(-1, H // 2, 2, W // 2, 2).mean(axis=(2, 4))
    q = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8).reshape(len(px), -1)
    with lzma.open(f"{d}/ycc.xz", "wb", preset=9) as f:
        f.write(np.concatenate([q(y), q(half(cb)), q(half(cr))], 1).tobytes())


def init(d, smoke=False):
    """Loads the packed dataset into this module's globals."""
    global X, Y, tr, labels, split, src, va_rand, va_held, SMOKE
    t0 = time.time()
    SMOKE = smoke
    rgb = read_pixels(d)
    lab, sp, so = [], [], []
    for line in open(f"{d}/meta.csv"):
        m = line.rstrip("\n").split(",")
        lab.append(int(m[0]))
        sp.append(int(m[1]))
        so.append(",".join(m[2:-1]))
    labels, split, src = np.array(lab), np.array(sp), np.array(so)
    if smoke:
        keep = np.concatenate([np.where(split == s)[0][:400] for s in (0, 1, 2)])
        rgb, labels, split, src = rgb[keep], labels[keep], split[keep], src[keep]
    X = torch.tensor(rgb, device=DEV)
    Y = torch.tensor(labels, device=DEV)
    tr = torch.tensor(np.where(split == 0)[0], device=DEV)
    va_rand = np.where(split == 1)[0]
    va_held = np.where(split == 2)[0]
    print(f"loaded {len(labels)} images ({len(tr)} train, {len(va_rand)} random val, {len(va_held)} held out) in {time.time()-t0:.1f}s", flush=True)


def standardise(x):
    """Per-image standardisation, as meter-model's `preprocess` (std at least 8)."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    s = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False).clamp_min(8.0)
    return (x - m) / s


def augment(x, g):
    """meter-model's `augment` (AugmentConfig::default) on a batch, per image
    on the device: the same ranges and probabilities of rotation, scale,
    shear, width stretch, shift, stroke weight, channel swap, grey, inversion,
    contrast, brightness, colour gains, blur, occlusion and noise. It leaves
    out the JPEG re-compression (p = 0.2); it thickens or thins strokes with a
    3x3 max or min filter per channel (meter-model: the brighter or darker
    horizontal neighbour by luma), and its noise is Gaussian (meter-model's
    is triangular, about 0.7 times the spread)."""
    n = x.shape[0]
    d = x.device
    U = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(*(shape or (n,)), device=d, generator=g)
    B = lambda p: torch.rand(n, device=d, generator=g) < p
    # Geometry in pixel units: rotation, shear, scale, width-only stretch, shift.
    th = U(-6, 6) * math.pi / 180
    sh = U(-0.12, 0.12)
    s = 1 + U(-0.12, 0.12)
    asp = torch.exp(U(-math.log(1.5), math.log(1.5)))
    c, si = torch.cos(th), torch.sin(th)
    A = torch.zeros(n, 2, 2, device=d)
    # R @ Shear @ diag(s*asp, s)
    A[:, 0, 0] = c * s * asp
    A[:, 0, 1] = (c * sh - si) * s
    A[:, 1, 0] = si * s * asp
    A[:, 1, 1] = (si * sh + c) * s
    Ainv = torch.linalg.inv(A)
    t = torch.stack([U(-2, 2), U(-0.7, 0.7)], 1)
    S = torch.tensor([W / 2, H / 2], device=d)
    # normalised: in = S^-1 Ainv S out - S^-1 Ainv t
    theta = torch.zeros(n, 2, 3, device=d)
    theta[:, :, :2] = Ainv * S[None, None, :] / S[None, :, None]
    theta[:, :, 2] = -(Ainv @ t[:, :, None])[:, :, 0] / S[None, :]
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Stroke weight: thicker or thinner glyphs.
    st = B(0.25)
    if st.any():
        thick = F.max_pool2d(x, 3, 1, 1)
        thin = -F.max_pool2d(-x, 3, 1, 1)
        pick = torch.where(B(0.5)[:, None, None, None], thick, thin)
        x = torch.where(st[:, None, None, None], 0.5 * x + 0.5 * pick, x)
    # Photometric.
    perm_p = B(0.1)
    perms = torch.tensor([[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]], device=d)
    pi = torch.where(perm_p, torch.randint(1, 6, (n,), device=d, generator=g), torch.zeros(n, dtype=torch.long, device=d))
    x = torch.gather(x, 1, perms[pi][:, :, None, None].expand(-1, -1, H, W))
    grey = B(0.1)[:, None, None, None]
    gy = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand(-1, 3, -1, -1)
    x = torch.where(grey, gy, x)
    inv = B(0.08)[:, None, None, None]
    x = torch.where(inv, 255 - x, x)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - m) * U(0.6, 1.4)[:, None, None, None] + m + U(-30, 30)[:, None, None, None]) * U(0.8, 1.2, n, 3)[:, :, None, None]
    # Blur.
    bl = B(0.2)[:, None, None, None]
    k = torch.tensor([0.25, 0.5, 0.25], device=d)
    k2 = (k[:, None] * k[None, :]).expand(3, 1, 3, 3).contiguous()
    xb = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    x = torch.where(bl, xb, x)
    # Occlusion: a band at the top or bottom, as a rolling digit shows.
    oc = B(0.15)
    rows = torch.randint(1, H // 8 + 1, (n,), device=d, generator=g)
    val = torch.where(B(0.7), U(0, 40), U(150, 255))
    yy = torch.arange(H, device=d)[None, :]
    top = B(0.5)[:, None]
    band = torch.where(top, yy < rows[:, None], yy >= H - rows[:, None]) & oc[:, None]
    x = torch.where(band[:, None, :, None], val[:, None, None, None], x)
    # Sensor noise.
    x = x + U(0, 5)[:, None, None, None] * torch.randn(x.shape, device=d, generator=g)
    return x.clamp(0, 255)


class Ours(nn.Module):
    """The shipped architecture: 3x (conv3x3 no bias, BN, ReLU, pool) 16/32/48, dropout, linear."""

    def __init__(self, ch=(16, 32, 48)):
        super().__init__()
        layers, cin = [], 3
        for c in ch:
            layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = c
        self.f = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(cin * 5 * 3, 100))

    def forward(self, x):
        return self.head(self.f(x))


def load_tenths_cnn(path):
    """A `tenths-cnn` v1 model file (16/32/48 channels) in `Ours`, with its
    temperature."""
    import json
    from safetensors import safe_open
    from safetensors.torch import load_file

    w = load_file(path)
    m = Ours()
    sd = {"head.2.weight": w["head.weight"], "head.2.bias": w["head.bias"]}
    for i in range(3):
        sd[f"f.{4*i}.weight"] = w[f"conv{i}.weight"]
        for k in ("weight", "bias", "running_mean", "running_var"):
            sd[f"f.{4*i+1}.{k}"] = w[f"bn{i}.{k}"]
    m.load_state_dict(sd)
    meta = json.loads(safe_open(path, "pt").metadata()["meter_model"])
    return m, meta["temperature"]


class Block(nn.Module):
    """A ResNet basic block: two 3x3 convolutions and a shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.sc = None if (stride == 1 and cin == cout) else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.b1(self.c1(x)))
        o = self.b2(self.c2(o))
        return F.relu(o + (x if self.sc is None else self.sc(x)))


class ResNet(nn.Module):
    """A ResNet for 40x24 digits: 863 MFLOPs with the default widths, 180 times
    the shipped network's 4.8."""

    def __init__(self, w=(64, 128, 256, 256)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))
        blocks, cin = [], w[0]
        for i, c in enumerate(w):
            blocks += [Block(cin, c, 1 if i == 0 else 2), Block(c, c, 1)]
            cin = c
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(cin * 5 * 3, 100))

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def targets(y, smoothing, sigma):
    if sigma is None:
        return None
    k = torch.arange(100, device=y.device)[None, :]
    dist = (k - y[:, None]).remainder(100)
    dist = torch.minimum(dist, 100 - dist).float()
    p = torch.exp(-0.5 * (dist / sigma) ** 2)
    p = p / p.sum(1, keepdim=True)
    return (1 - smoothing) * p + smoothing / 100


@torch.no_grad()
def predict_probs(model, idx):
    model.eval()
    out = []
    for i in range(0, len(idx), 2048):
        b = torch.tensor(idx[i:i + 2048], device=DEV)
        with torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
            logits = model(standardise(X[b]).contiguous(memory_format=torch.channels_last))
        out.append(F.softmax(logits.float(), 1))
    return torch.cat(out).cpu().numpy()


def circular_distance(a, b):
    """Distance in tenths between label indices, 9.9 and 0.0 being neighbours."""
    d = np.abs(a - b) % 100
    return np.minimum(d, 100 - d)


def metrics(probs, idx):
    pred = probs.argmax(1)
    lab = labels[idx]
    d = circular_distance(pred, lab)
    frac = lab % 10
    settled_mask = (frac <= 2) | (frac >= 8)
    sd = lambda v: ((v + 5) // 10) % 10
    r = {
        "n": int(len(idx)),
        "exact": float((d == 0).mean()),
        "within_0_1": float((d <= 1).mean()),
        "settled": float((sd(pred) == sd(lab))[settled_mask].mean()) if settled_mask.any() else None,
    }
    return r


def report(probs_held, probs_rand):
    r = {"held": metrics(probs_held, va_held), "random": metrics(probs_rand, va_rand), "per_source": {}}
    for s in sorted(set(src[va_held])):
        m = src[va_held] == s
        r["per_source"][s] = metrics(probs_held[m], va_held[m])
    return r


def fmt(m):
    return f"{100*m['exact']:.1f}/{100*m['within_0_1']:.1f}/{100*(m['settled'] or 0):.1f}"


def train(name, make, epochs, lr, seed, sigma=None, smoothing=0.1, bs=128, wd=5e-4, teacher=None, kd_temp=2.0, kd_alpha=0.5):
    """Trains `make()` and reports it. With a `teacher`, the loss is
    kd_alpha * (the loss above) + (1 - kd_alpha) * kd_temp^2 * KL(teacher's
    predictions on the same batch at temperature kd_temp || the model's)."""
    torch.manual_seed(seed)
    g = torch.Generator(device=DEV)
    g.manual_seed(seed)
    model = make().to(DEV).to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * (len(tr) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    if teacher is not None:
        teacher.eval()
    t = time.time()
    curve = []
    for ep in range(epochs):
        model.train()
        perm = tr[torch.randperm(len(tr), device=DEV, generator=g)]
        for i in range(len(tr) // bs):
            b = perm[i * bs:(i + 1) * bs]
            x = standardise(augment(X[b], g)).contiguous(memory_format=torch.channels_last)
            with torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
                logits = model(x).float()
            tg = targets(Y[b], smoothing, sigma)
            loss = F.cross_entropy(logits, Y[b], label_smoothing=smoothing) if tg is None else -(tg * F.log_softmax(logits, 1)).sum(1).mean()
            if teacher is not None:
                with torch.no_grad():
                    soft = F.softmax(teacher(x).float() / kd_temp, 1)
                kd = F.kl_div(F.log_softmax(logits / kd_temp, 1), soft, reduction="batchmean") * kd_temp**2
                loss = kd_alpha * loss + (1 - kd_alpha) * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (ep + 1) % max(1, epochs // 6) == 0 or ep == epochs - 1:
            ph = predict_probs(model, va_held)
            pr = predict_probs(model, va_rand)
            r = report(ph, pr)
            curve.append({"epoch": ep + 1, "held": r["held"], "random": r["random"]})
            print(f"  {name} epoch {ep+1}/{epochs} loss {loss.item():.3f} held {fmt(r['held'])} random {fmt(r['random'])} ({time.time()-t:.0f}s)", flush=True)
    res = {"name": name, "params": params, "epochs": epochs, "seed": seed, "sigma": sigma, "train_s": time.time() - t, "final": r, "curve": curve}
    print(f"{name}: {params} params, {time.time()-t:.0f}s; final held {fmt(r['held'])} random {fmt(r['random'])}", flush=True)
    for s, m in r["per_source"].items():
        print(f"    {s:28s} n {m['n']:5d} {fmt(m)}", flush=True)
    return res, ph, pr


def epoch_seconds(make, bs=128):
    """Times training steps of a throwaway model, to fit the epochs to the budget."""
    g = torch.Generator(device=DEV)
    g.manual_seed(0)
    model = make().to(DEV).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n = 3 if SMOKE else 40
    for i in range(n + 10):
        if i == 10:
            if DEV == "cuda":
                torch.cuda.synchronize()
            t = time.time()
        b = tr[torch.randint(0, len(tr), (bs,), device=DEV, generator=g)]
        x = standardise(augment(X[b], g)).contiguous(memory_format=torch.channels_last)
        with torch.autocast(DEV, dtype=torch.bfloat16, enabled=DEV == "cuda"):
            loss = F.cross_entropy(model(x).float(), Y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if DEV == "cuda":
        torch.cuda.synchronize()
    return (time.time() - t) / n * (len(tr) // bs) * 1.08
