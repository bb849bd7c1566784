#!/usr/bin/env python3
"""Training speed of the worker against PyTorch (Python) on the same model, data, batch, threads
and optimizer, alternating runs in one process tree.

  bench/train_compare.py BUILD_DIR --spec JOB.yaml [--n 2] [--device cpu|cuda] [--threads 1]
                         [--epochs 2] [--runs 3] [--batch-size B] [--train-examples N]

The models are the spec's first n sampled candidates (train_bench --dump_archs), rebuilt in
PyTorch by export/nasforge_model.py (the module `nasforge export` ships; its state_dict matches
the worker's, so it is the same network). Both sides: Fashion-MNIST normalised the same way and
kept on the device, batches gathered by a random permutation, AdamW (the spec's learning rate and
weight decay) with per-step cosine decay, cross-entropy. images/s counts the training loop of
one epoch (evaluation excluded on both sides); the figure is the last epoch's (epoch 1 includes
warm-up). Ratio = worker / PyTorch: >= 1.0 means the worker trains as fast or faster.
"""
import argparse
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import nasforge_model as model  # noqa: E402


def read_idx(path):
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    sys.exit("no %s[.gz] in %s" % (stem, data_dir))


def yaml_training(spec_path):
    """learning_rate, weight_decay, batch_size, train_examples from the spec (defaults as the
    controller's)."""
    import re
    text = open(spec_path).read()
    m = re.search(r"^training:\n((?:[ \t]+.*\n?)*)", text, re.M)
    out = {"learning_rate": 0.002, "weight_decay": 0.0001, "batch_size": 128, "train_examples": 0}
    if m:
        for line in m.group(1).splitlines():
            kv = line.split("#")[0].strip().split(":")
            if len(kv) == 2 and kv[0].strip() in out:
                out[kv[0].strip()] = float(kv[1]) if "." in kv[1] or "e" in kv[1] else int(kv[1])
    return out


def pytorch_train(arch, x_all, y_all, n, batch, lr, wd, epochs, device, channels_last, autocast):
    torch.manual_seed(0)
    net = model.build(arch).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
    x, y = x_all[:n], y_all[:n]
    steps = math.ceil(n / batch) * epochs
    step, last = 0, None
    size = model.input_shape(arch)
    for epoch in range(1, epochs + 1):
        net.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=device)
        loss_sum = torch.zeros((), device=device)
        for i in range(0, n, batch):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            idx = perm[i:i + batch]
            xb = x.index_select(0, idx)
            if len(size) == 3 and xb.shape[-1] != size[-1]:
                xb = F.interpolate(xb, size=size[1:], mode="bilinear", align_corners=False)
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            opt.zero_grad()
            if autocast:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = net(xb)
                loss = F.cross_entropy(out.float(), y.index_select(0, idx))
            else:
                loss = F.cross_entropy(net(xb), y.index_select(0, idx))
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            step += 1
        loss_sum.item()
        secs = time.perf_counter() - t0
        last = n / secs
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--train-examples", type=int, default=10000)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--autocast", default="")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    t = yaml_training(a.spec)
    batch = a.batch_size or t["batch_size"]
    bench = os.path.join(a.build, "bench", "train_bench")
    tmp = tempfile.mkdtemp(prefix="nf-train-compare-")
    subprocess.run([bench, "--spec", a.spec, "--n", str(a.n), "--dump_archs", tmp], check=True)
    x = read_idx(find(a.data_dir, "train-images-idx3-ubyte")).float().div_(255).sub_(0.2860).div_(0.3530)
    x = x.unsqueeze(1).to(device)
    y = read_idx(find(a.data_dir, "train-labels-idx1-ubyte")).long().to(device)
    n = min(a.train_examples, x.shape[0])
    print("# PyTorch %s vs nasforge worker; device %s%s; threads %d; batch %d; %d training images;"
          " AdamW lr %g wd %g; %d epochs, last epoch's img/s; %d alternating runs" % (
              torch.__version__, a.device,
              " (%s)" % torch.cuda.get_device_name(device) if device.type == "cuda" else "",
              a.threads, batch, n, t["learning_rate"], t["weight_decay"], a.epochs, a.runs))
    print("%-3s %-10s %12s %12s %7s" % ("#", "params", "nasforge", "pytorch", "ratio"))
    for i in range(a.n):
        arch_path = os.path.join(tmp, "%d.json" % i)
        arch = json.load(open(arch_path))
        params = sum(p.numel() for p in model.build(arch).parameters())
        ours, theirs = [], []
        for _ in range(a.runs):
            cmd = [bench, "--spec", a.spec, "--arch", arch_path, "--json", "--epochs", str(a.epochs),
                   "--threads", str(a.threads), "--device", a.device, "--batch_size", str(batch),
                   "--train_examples", str(n), "--data_dir", a.data_dir]
            if a.channels_last:
                cmd.append("--channels_last")
            if a.autocast:
                cmd += ["--autocast", a.autocast]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            epochs = [json.loads(l) for l in out.splitlines() if l.startswith('{"epoch"')]
            ours.append(epochs[-1]["images_per_second"])
            theirs.append(pytorch_train(arch, x, y, n, batch, t["learning_rate"], t["weight_decay"],
                                        a.epochs, device, a.channels_last, a.autocast == "bf16"))
        o, p = statistics.median(ours), statistics.median(theirs)
        print("%-3d %-10d %12.0f %12.0f %6.2fx   (runs: nasforge %s; pytorch %s)" % (
            i, params, o, p, o / p, " ".join("%.0f" % v for v in ours),
            " ".join("%.0f" % v for v in theirs)), flush=True)


main()
