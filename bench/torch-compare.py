#!/usr/bin/python3
"""libnsde vs PyTorch on the paper's CIFAR-10 model, back to back on one machine.

    /usr/bin/python3 bench/torch-compare.py [--build build] [--batch 128] [--threads 2]
        [--steps 3] [--reps 3] [--arch cifar,large] [--widths 16,32,64]
        [--large-widths 64] [--cifar DIR]

Two architectures: `cifar`, the paper's model (stem conv 3x3, the SDE block at
30x30; --widths), and `large`, the recipe every shipped model was trained with
(a strided stem conv(3->w/4)-GN-ReLU-conv(4x4/2)-GN-ReLU-conv(4x4/2), the SDE
block at 8x8; --large-widths). Both run by default.

PyTorch (Debian's python3-torch) gets its best configuration on this CPU:
- torch.set_flush_denormal(True): without it x86 cores slow down on the
  denormal floats of the backward pass (2x and more measured);
- both memory formats, NCHW and channels_last, are timed and the faster one
  is kept for training and for inference separately;
- the same thread count (torch.set_num_threads and OMP_NUM_THREADS), batch,
  GroupNorm groups (min(32, C)), multiplicative noise (sigma 1), 11 Euler-
  Maruyama steps, autograd through the loop as in the authors' code;
- glibc malloc keeps freed memory (MALLOC_ENV below: without it its steps
  vary 2-5x on these virtual machines);
- a real CIFAR-10 batch (the first BATCH test images in [0, 1], the paper's
  scaling) when the data is there (--cifar, default: unpacked from
  ../shared/data/cifar10 into a temporary folder), else [0, 1] values;
- three warm-up steps (PyTorch's second step, and its first training step
  after inference, are several times slower than its steady state), then
  the best of REPS timed windows of STEPS training steps; then three warm-up
  inference batches and the best of REPS windows of 3 x STEPS; exactly as
  `nsde-bench model` does.

libnsde runs `nsde-bench model` with store-all gradients and the activation
tape (the speed numbers) and, at the largest width, with checkpointed
gradients (the memory-efficient setting, mem_ratio). Each side runs in its
own process, so peak RSS is its own.

One line per width with both sides' images/s and the ratios (> 1 favours
libnsde), useful GFLOP/s (the direct convolutions' multiply-adds, backward
counted as twice the forward) against the sgemm peak, and last:
min_train_ratio=<x> min_infer_ratio=<y> mem_ratio=<z> (the paper's model)
large_train_ratio=<x> large_infer_ratio=<y> (the trained recipe).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def cifar_batch(path, batch):
    """The first `batch` test images of CIFAR-10 as [0, 1] floats, and their labels."""
    import torch
    with open(os.path.join(path, "test_batch.bin"), "rb") as f:
        raw = f.read(3073 * batch)
    recs = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(batch, 3073)
    y = recs[:, 0].long()
    x = recs[:, 1:].float().reshape(batch, 3, 32, 32) / 255.0
    return x, y


def run_torch(batch, threads, steps, reps, width, channels_last, cifar, warmup=3, arch="cifar"):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    # flush-to-zero before the thread pool exists: its threads inherit the
    # floating-point state of the thread that creates them
    torch.set_flush_denormal(True)
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

    def stem(w):
        if arch == "cifar":  # the paper's: the SDE block at 30x30
            return nn.Conv2d(3, w, 3, 1, 0)
        # the trained recipe's strided stem: the SDE block at 8x8
        return nn.Sequential(nn.Conv2d(3, w // 4, 3, 1, 1), nn.GroupNorm(min(32, w // 4), w // 4),
                             nn.ReLU(), nn.Conv2d(w // 4, w // 2, 4, 2, 1),
                             nn.GroupNorm(min(32, w // 2), w // 2), nn.ReLU(),
                             nn.Conv2d(w // 2, w, 4, 2, 1))

    class Model(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.stem = stem(w)
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
    if cifar:
        x, y = cifar_batch(cifar, batch)
    else:
        x, y = torch.rand(batch, 3, 32, 32), torch.arange(batch) % 10
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def train(n):
        t0 = time.time()
        for _ in range(n):
            opt.zero_grad()
            loss = F.cross_entropy(m(x, True), y)
            loss.backward()
            opt.step()
        return (time.time() - t0) / n

    def infer(n):
        with torch.no_grad():
            t0 = time.time()
            for _ in range(n):
                m(x, False)
            return (time.time() - t0) / n

    # PyTorch's second training step is 4x slower than the steady state
    # (measured: 23 s against 5.6 s at width 64), and so is the first
    # training step after inference batches: warm up with three steps, and
    # time all training windows before the inference ones
    train(warmup)
    tr = min(train(steps) for _ in range(reps))
    infer(warmup)
    ti = min(infer(3 * steps) for _ in range(reps))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return batch / tr, batch / ti, rss


# glibc malloc returns PyTorch's freed tensors to the kernel and page faults
# are expensive on these virtual machines: with the defaults its training
# steps varied 2-5x from window to window (28 to 69 img/s at width 32), with
# jemalloc they were 10x slower still. Keeping freed memory in the heap gives
# it a steady state; libnsde allocates nothing per step but runs with the same
# settings. (The mmap threshold is glibc's maximum, 32 MiB.)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "68719476736",
              "MALLOC_TOP_PAD_": "536870912"}


def torch_child(a, width, channels_last, cifar, arch):
    code = ("import sys; sys.path.insert(0, %r); import importlib.util as u; "
            "s = u.spec_from_file_location('tc', %r); mod = u.module_from_spec(s); "
            "s.loader.exec_module(mod); print(*mod.run_torch(%d, %d, %d, %d, %d, %r, %r, arch=%r))"
            % (HERE, os.path.abspath(__file__), a.batch, a.threads, a.steps, a.reps, width,
               channels_last, cifar, arch))
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), **MALLOC_ENV)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def nsde_child(a, width, grad, cifar, arch):
    exe = os.path.join(a.build, "bench", "nsde-bench")
    cmd = [exe, "model", "--batch", str(a.batch), "--threads", str(a.threads), "--steps",
           str(a.steps), "--reps", str(a.reps), "--width", str(width), "--grad", grad,
           "--arch", arch]
    if cifar:
        cmd += ["--cifar", cifar]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=dict(os.environ, **MALLOC_ENV)).stdout.strip()
    print(out, flush=True)
    return dict(f.split("=") for f in out.split()[2:])


def find_cifar(arg):
    if arg:
        return arg if arg != "none" else None
    src = os.path.join(HERE, "..", "..", "shared", "data", "cifar10")
    if not os.path.isfile(os.path.join(src, "unpack.sh")):
        return None
    dest = os.path.join(tempfile.gettempdir(), "nsde-bench-cifar10")
    return subprocess.run(["sh", os.path.join(src, "unpack.sh"), dest], check=True,
                          capture_output=True, text=True).stdout.strip()


def fwd_gflop(arch, w):
    """One image's forward pass as a direct convolution's multiply-adds x 2 (nsde-bench's)."""
    if arch == "cifar":
        return 2.0 * (11 * 3 * 900 * w * (w + 1) * 9 + 900 * w * 3 * 9) / 1e9
    return 2.0 * (11 * 3 * 64 * w * (w + 1) * 9 + 1024 * (w // 4) * 3 * 9
                  + 256 * (w // 2) * (w // 4) * 16 + 64 * w * (w // 2) * 16) / 1e9


def compare(a, arch, w, cifar, peak):
    """Both sides at one architecture and width: (train ratio, infer ratio, torch train rss)."""
    n = nsde_child(a, w, "store-all", cifar, arch)
    t = {fmt: torch_child(a, w, fmt == "channels_last", cifar, arch)
         for fmt in ("nchw", "channels_last")}
    for fmt, (tr, ti, rss) in t.items():
        print("pytorch %s arch=%s width=%d format=%s train_img_s=%.2f infer_img_s=%.2f "
              "peak_rss_bytes=%d" % (PT_VERSION, arch, w, fmt, tr, ti, rss), flush=True)
    ftr = max(t, key=lambda f: t[f][0])
    fti = max(t, key=lambda f: t[f][1])
    n_tr, n_ti = float(n["train_img_s"]), float(n["infer_img_s"])
    t_tr, t_ti = t[ftr][0], t[fti][1]
    fwd = fwd_gflop(arch, w)
    print("arch=%s width=%d libnsde train_img_s=%.2f infer_img_s=%.2f | pytorch train_img_s=%.2f "
          "(%s) infer_img_s=%.2f (%s) | train_ratio=%.2f infer_ratio=%.2f | useful GFLOP/s "
          "libnsde train %.1f infer %.1f, pytorch train %.1f infer %.1f (sgemm peak %.1f)"
          % (arch, w, n_tr, n_ti, t_tr, ftr, t_ti, fti, n_tr / t_tr, n_ti / t_ti, 3 * fwd * n_tr,
             fwd * n_ti, 3 * fwd * t_tr, fwd * t_ti, peak), flush=True)
    return n_tr / t_tr, n_ti / t_ti, t[ftr][2]


PT_VERSION = ""


def main():
    global PT_VERSION
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--arch", default="cifar,large",
                    help="cifar (the paper's model), large (the trained recipe), or both")
    ap.add_argument("--widths", default="16,32,64", help="widths of the paper's model")
    ap.add_argument("--large-widths", default="64", help="widths of the trained recipe")
    ap.add_argument("--cifar", default="", help="cifar-10-batches-bin folder, or 'none'")
    a = ap.parse_args()
    import torch
    PT_VERSION = torch.__version__
    cifar = find_cifar(a.cifar)
    archs = a.arch.split(",")
    if not archs or any(x not in ("cifar", "large") for x in archs):
        ap.error("--arch: cifar, large or cifar,large")
    exe = os.path.join(a.build, "bench", "nsde-bench")
    gemm = subprocess.run([exe, "gemm"], check=True, capture_output=True, text=True).stdout
    peak = float(gemm.strip().splitlines()[-1].split("gflops=")[1].split()[0])
    print("# input: %s; PyTorch %s, flush-to-zero on, %d threads, best memory format"
          % ("CIFAR-10 test batch from " + cifar if cifar else "[0,1] values", torch.__version__,
             a.threads), flush=True)
    summary = []
    if "cifar" in archs:
        widths = [int(w) for w in a.widths.split(",")]
        rows = []
        for w in widths:
            tr, ti, t_rss = compare(a, "cifar", w, cifar, peak)
            rows.append((tr, ti))
            if w == max(widths):
                c = nsde_child(a, w, "checkpoint", cifar, "cifar")
                mem_ratio = float(c["peak_rss_bytes"]) / t_rss
                print("width=%d checkpointed libnsde train_img_s=%s peak_rss_bytes=%s; pytorch "
                      "peak_rss_bytes=%d" % (w, c["train_img_s"], c["peak_rss_bytes"], t_rss))
        summary.append("min_train_ratio=%.2f min_infer_ratio=%.2f mem_ratio=%.3f"
                       % (min(r[0] for r in rows), min(r[1] for r in rows), mem_ratio))
    if "large" in archs:
        rows = [compare(a, "large", int(w), cifar, peak) for w in a.large_widths.split(",")]
        summary.append("large_train_ratio=%.2f large_infer_ratio=%.2f"
                       % (min(r[0] for r in rows), min(r[1] for r in rows)))
    print(" ".join(summary))


if __name__ == "__main__":
    main()
