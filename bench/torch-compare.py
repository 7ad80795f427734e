#!/usr/bin/python3
"""libnsde vs PyTorch on the paper's CIFAR-10 model, back to back on one machine.

    /usr/bin/python3 bench/torch-compare.py [--build build] [--batch 128] [--threads 2] [--steps 3]

Runs BLIS's sgemm peak (`nsde-bench gemm`), `nsde-bench model` twice (libnsde
with store-all gradients and the activation tape, the fast setting; and with
checkpointed gradients, the memory-efficient one) and the same model in
PyTorch (Debian's python3-torch, autograd through the Euler-Maruyama loop as
in the authors' code), same batch, threads, multiplicative noise (sigma 1),
11 steps, and prints images/s for training (forward + backward + SGD) and
inference (noise-free forward), peak RSS, and the ratios. Last line:
train_ratio=<x> infer_ratio=<y> mem_ratio=<z> (ratios > 1 favour libnsde
for speed: store-all run; mem_ratio is the checkpointed run's peak RSS over
PyTorch's, lower is better). Useful GFLOP/s count the direct convolution's
multiply-adds (2 x 585 x 64 x 900 per conv and image), whatever algorithm ran.
"""
import argparse
import os
import resource
import subprocess
import sys
import time


def run_torch(batch, threads, steps, width):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(threads)

    class ConcatConv(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c + 1, c, 3, 1, 1)

        def forward(self, t, x):
            tt = torch.ones_like(x[:, :1]) * t
            return self.conv(torch.cat([tt, x], 1))

    class Drift(nn.Module):
        def __init__(self, c):
            super().__init__()
            g = min(32, c)
            self.n1, self.n2, self.n3, self.n4 = (nn.GroupNorm(g, c) for _ in range(4))
            self.c1, self.c2, self.c3 = ConcatConv(c), ConcatConv(c), ConcatConv(c)

        def forward(self, t, x):
            x = self.c1(t, F.relu(self.n1(x)))
            x = self.c2(t, F.relu(self.n2(x)))
            x = self.c3(t, F.relu(self.n3(x)))
            return self.n4(x)

    class Model(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.stem = nn.Conv2d(3, w, 3, 1, 0)
            self.drift = Drift(w)
            self.norm = nn.GroupNorm(min(32, w), w)
            self.fc = nn.Linear(w, 10)

        def forward(self, x, noisy):
            h = self.stem(x)
            n = int(1.0 / 0.1) + 1
            dt = 1.0 / n
            for k in range(n):
                f = self.drift(k * dt, h)
                h = h + f * dt
                if noisy:
                    h = h + 1.0 * h * torch.randn_like(h) * dt ** 0.5
            h = F.relu(self.norm(h)).mean(dim=(2, 3))
            return self.fc(h)

    torch.manual_seed(0)
    m = Model(width)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.arange(batch) % 10
    # warm-up
    loss = F.cross_entropy(m(x, True), y)
    loss.backward()
    t0 = time.time()
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(m(x, True), y)
        loss.backward()
        opt.step()
    train = batch * steps / (time.time() - t0)
    with torch.no_grad():
        m(x, False)  # warm-up
        t0 = time.time()
        for _ in range(3 * steps):  # as nsde-bench: 3x as many inference batches
            m(x, False)
        infer = batch * 3 * steps / (time.time() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return train, infer, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--width", type=int, default=64)
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench", "nsde-bench")
    gemm = subprocess.run([exe, "gemm"], check=True, capture_output=True, text=True).stdout
    peak = float(gemm.strip().splitlines()[-1].split("gflops=")[1].split()[0])
    runs = {}
    for grad in ("store-all", "checkpoint"):
        out = subprocess.run([exe, "model", "--batch", str(a.batch), "--threads", str(a.threads),
                              "--steps", str(a.steps), "--width", str(a.width), "--grad", grad],
                             check=True, capture_output=True, text=True).stdout.strip()
        print(out)
        runs[grad] = dict(f.split("=") for f in out.split()[2:])
    n_train, n_infer = float(runs["store-all"]["train_img_s"]), float(runs["store-all"]["infer_img_s"])
    n_rss = float(runs["checkpoint"]["peak_rss_bytes"])
    n_rss_all = float(runs["store-all"]["peak_rss_bytes"])
    # PyTorch in a child process, so its peak RSS is its own
    code = ("import sys; sys.path.insert(0, %r); import importlib.util as u; "
            "s = u.spec_from_file_location('tc', %r); mod = u.module_from_spec(s); s.loader.exec_module(mod); "
            "print(*mod.run_torch(%d, %d, %d, %d))") % (os.path.dirname(__file__), __file__, a.batch,
                                                        a.threads, a.steps, a.width)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=env).stdout.split()
    t_train, t_infer, t_rss = float(res[0]), float(res[1]), float(res[2])
    fwd = 11 * 3 * 2.0 * 900 * a.width * (a.width + 1) * 9 / 1e9  # GFLOP per image, forward
    print("pytorch %s model width=%d batch=%d threads=%d train_img_s=%.2f infer_img_s=%.2f "
          "peak_rss_bytes=%d train_gflops=%.1f" % (__import__("torch").__version__, a.width, a.batch,
                                                   a.threads, t_train, t_infer, t_rss, 3 * fwd * t_train))
    print("sgemm peak (n=2048, %d threads): %.1f GFLOP/s" % (a.threads, peak))
    for who, tr, inf in (("libnsde", n_train, n_infer), ("pytorch", t_train, t_infer)):
        print("%s useful GFLOP/s: train %.1f (%.0f%% of sgemm peak) infer %.1f (%.0f%%)"
              % (who, 3 * fwd * tr, 300 * fwd * tr / peak, fwd * inf, 100 * fwd * inf / peak))
    print("checkpoint train_img_s=%s (ratio %.2f); store-all peak RSS ratio %.3f"
          % (runs["checkpoint"]["train_img_s"], float(runs["checkpoint"]["train_img_s"]) / t_train,
             n_rss_all / t_rss))
    print("train_ratio=%.2f infer_ratio=%.2f mem_ratio=%.3f" % (n_train / t_train, n_infer / t_infer,
                                                                 n_rss / t_rss))


if __name__ == "__main__":
    main()
