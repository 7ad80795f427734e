#!/usr/bin/python3
"""Independent forward pass of libnsde's classifiers in PyTorch.

Run once with Debian's python3-torch (1.13) to (re)create
tests/data/torch-forward-reference.txt:

    NSDE_EXPORT_DIR=/tmp/ref build/tests/test-model      # writes ref-*.nsde
    /usr/bin/python3 tests/data/torch_reference.py /tmp/ref > tests/data/torch-forward-reference.txt

It reads the model files (format: doc/model.md), rebuilds the same networks
with torch.nn layers (Conv2d, GroupNorm, ReLU, AdaptiveAvgPool2d, Linear; the
concat-conv prepends a plane of t), integrates the SDE block without noise
with the paper's 11 Euler steps (t_k = k/11), and prints the logits for the
deterministic test images defined below (the C test builds the same ones).
"""
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

# float64: the reference is the exact answer for libnsde's float32 inputs and
# weights, so a comparison sees libnsde's rounding only. (With a float32
# reference both sides' rounding counts, and near a ReLU kink PyTorch's own
# float32 rounding flipped activations: seeds 8 and 11 of the C test.)
torch.set_default_dtype(torch.float64)


def read_model(path):
    data = open(path, "rb").read()
    assert data[:8] == b"NSDEMODL", "not a libnsde model file"
    version, hdr = struct.unpack_from("<II", data, 8)
    assert version in (1, 2) and hdr == 128, "format version %d (this reader knows 1 and 2)" % version
    arch, cin, hin, win, width, classes, noise, learn = struct.unpack_from("<8I", data, 16)
    sigma, t1, dt = struct.unpack_from("<3d", data, 48)
    (n,) = struct.unpack_from("<Q", data, 72)
    (ngroups,) = struct.unpack_from("<I", data, 84)  # version 2; 0 (the paper's 32) in version 1
    assert len(data) == 128 + 4 * n + 8, "truncated or extended"
    # FNV-1a 64; version 1 files used an offset basis a digit short
    h = 14695981039346656037 if version == 2 else 1469598103934665603
    for b in data[:-8]:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    assert h == struct.unpack_from("<Q", data, len(data) - 8)[0], "checksum"
    params = np.frombuffer(data, dtype="<f4", count=n, offset=128).astype(np.float64)
    return dict(arch=arch, cin=cin, hin=hin, win=win, width=width, classes=classes,
                t1=t1, dt=dt, groups=ngroups or 32, params=torch.from_numpy(params.copy()))


class Reader:
    def __init__(self, p):
        self.p, self.i = p, 0

    def take(self, *shape):
        n = math.prod(shape)
        t = self.p[self.i:self.i + n].reshape(shape)
        self.i += n
        return t


def groups(c, g=32):
    """GroupNorm groups: min(g, C), g the file's groups field (the paper's 32 when 0)."""
    return min(g, c)


def conv(r, x, cin, cout, k, stride, pad):
    w = r.take(cout, cin, k, k)
    b = r.take(cout)
    return F.conv2d(x, w, b, stride=stride, padding=pad)


def gn(r, x, c, ng=32):
    g = r.take(c)
    b = r.take(c)
    return F.group_norm(x, groups(c, ng), g, b, eps=1e-5)


def forward(m, images, params=None):
    params = m["params"] if params is None else params
    r = Reader(params)
    w, ng = m["width"], m["groups"]
    if m["arch"] == 0:
        h = conv(r, images, m["cin"], w, 3, 1, 0)
    else:
        h = conv(r, images, m["cin"], w // 4, 3, 1, 1)
        h = F.relu(gn(r, h, w // 4, ng))
        h = conv(r, h, w // 4, w // 2, 4, 2, 1)
        h = F.relu(gn(r, h, w // 2, ng))
        h = conv(r, h, w // 2, w, 4, 2, 1)
    drift_start = r.i
    steps = int(m["t1"] / m["dt"]) + 1
    dt = m["t1"] / steps

    def drift(t, x):
        rr = Reader(params)
        rr.i = drift_start
        y = x
        for _ in range(3):
            y = F.relu(gn(rr, y, w, ng))
            tt = torch.full((y.shape[0], 1, y.shape[2], y.shape[3]), t)
            y = conv(rr, torch.cat([tt, y], 1), w + 1, w, 3, 1, 1)
        y = gn(rr, y, w, ng)
        return y, rr.i

    end = None
    for k in range(steps):
        f, end = drift(k * dt, h)
        h = h + dt * f
    r.i = end
    h = F.relu(gn(r, h, w, ng))
    h = h.mean(dim=(2, 3))
    wl = r.take(m["classes"], w)
    bl = r.take(m["classes"])
    return h @ wl.t() + bl


def images(batch, c, hh, ww):
    """The C test's formula, in float64 then rounded to float32 (the values libnsde sees)."""
    x = np.zeros((batch, c, hh, ww))
    for b in range(batch):
        for ch in range(c):
            for i in range(hh):
                for j in range(ww):
                    x[b, ch, i, j] = 0.5 + 0.5 * math.sin(0.37 * (b + 1) * (i + 1) + 0.61 * ch + 0.23 * j)
    return torch.from_numpy(x.astype(np.float32).astype(np.float64))


def main():
    d = sys.argv[1]
    print("# libnsde forward reference: torch %s in float64, logits per image" % torch.__version__)
    for name in ("ref-cifar", "ref-large"):
        m = read_model("%s/%s.nsde" % (d, name))
        x = images(2, m["cin"], m["hin"], m["win"]).requires_grad_(True)
        p = m["params"].clone().requires_grad_(True)
        logits = forward(m, x, p)
        for b in range(2):
            print(name, "logits", b, " ".join("%.8e" % v for v in logits[b].detach().tolist()))
        # mean cross-entropy for labels 1, 2 and its gradient, in libnsde's parameter order
        loss = F.cross_entropy(logits, torch.tensor([1, 2]))
        loss.backward()
        g = p.grad.numpy()
        print(name, "loss", "%.8e" % loss.item())
        print(name, "gradnorm", "%.8e" % float(np.sqrt((g.astype(np.float64) ** 2).sum())))
        idx = list(range(0, len(g), max(1, len(g) // 40)))
        print(name, "grad", " ".join("%d:%.8e" % (i, g[i]) for i in idx))
        gx = x.grad.numpy().reshape(-1)
        idx = list(range(0, len(gx), max(1, len(gx) // 40)))
        print(name, "gradimg", " ".join("%d:%.8e" % (i, gx[i]) for i in idx))


if __name__ == "__main__":
    main()
