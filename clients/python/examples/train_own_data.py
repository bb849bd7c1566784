#!/usr/bin/python3
"""Train nasforge's candidates with your own PyTorch loop on your own images.

Your data: two NumPy files, images uint8 [N, H, W, C] and integer labels [N] (or --fake for a
small generated set to try things with). The job (own_data_job.yaml) says `dataset: external`,
so only workers like this one lease its candidates; its search space says the input channels,
resolution and classes of your images.

    nasforge submit clients/python/examples/own_data_job.yaml
    PYTHONPATH=build/python /usr/bin/python3 clients/python/examples/train_own_data.py \\
        --images images.npy --labels labels.npy

Each candidate arrives as a torch nn.Module (trial.model()); this loop trains it with AdamW and
the usual augmentation (random crop with 4 px padding, horizontal flip), reports validation
accuracy after every epoch, and stops when the job's early-stopping rule says so.
"""
import argparse
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

import nasforge


def fake_data(n=1200, classes=4, size=16, seed=0):
    """Images whose class is a colour and a stripe direction, with noise: learnable in a few
    epochs by a small network."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.normal(0.0, 70.0, (n, size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    for c in range(classes):
        sel = labels == c
        stripe = ((xx if c % 2 else yy) // 2) % 2 * 45.0
        images[sel, :, :, c % 3] += 35.0 + stripe
    return np.clip(images + 90.0, 0, 255).astype(np.uint8), labels.astype(np.int64)


def make_train(images, labels, val_fraction=0.2, threads=1):
    """A train(trial) function over these arrays (uint8 NHWC, int labels)."""
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)  # NCHW in [0, 1]
    y_all = torch.from_numpy(labels).long()
    mean = x_all.mean(dim=(0, 2, 3), keepdim=True)
    std = x_all.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    x_all = (x_all - mean) / std  # per-channel normalisation, computed from the data

    def augment(x):
        # random crop with 4 px of zero padding, then a random horizontal flip, per image
        n, _, h, w = x.shape
        padded = F.pad(x, (4, 4, 4, 4))
        dy = torch.randint(0, 9, (n,))
        dx = torch.randint(0, 9, (n,))
        out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
        flip = torch.rand(n) < 0.5
        out[flip] = out[flip].flip(3)
        return out

    def train(trial):
        torch.set_num_threads(threads)
        torch.manual_seed(trial.seed)
        g = torch.Generator().manual_seed(trial.split_seed)  # the same split for every trial
        order = torch.randperm(len(y_all), generator=g)
        n_val = max(1, int(len(order) * val_fraction))
        val, tr = order[:n_val], order[n_val:]
        c, h, w = trial.input_shape()
        x = x_all if x_all.shape[2] == h else F.interpolate(x_all, size=(h, w), mode="bilinear")
        if x.shape[1] != c:
            raise ValueError("the space expects %d channels, the images have %d" % (c, x.shape[1]))
        net = trial.model()
        t = trial.training
        opt = torch.optim.AdamW(net.parameters(), lr=t.get("learning_rate") or 0.002,
                                weight_decay=t.get("weight_decay") or 1e-4)
        batch = t.get("batch_size") or 128
        best, start = 0.0, time.monotonic()
        for epoch in range(1, trial.epochs + 1):
            net.train()
            perm = tr[torch.randperm(len(tr))]
            total = 0.0
            for i in range(0, len(perm), batch):
                idx = perm[i:i + batch]
                loss = F.cross_entropy(net(augment(x[idx])), y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            net.eval()
            with torch.no_grad():
                acc = (net(x[val]).argmax(1) == y_all[val]).float().mean().item()
            best = max(best, acc)
            if trial.report(epoch, {"accuracy": acc, "loss": total / len(perm)}):
                break  # the job's early-stopping rule says this one is not worth finishing
        return {"accuracy": best, "train_seconds": time.monotonic() - start}

    return train


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--controller", default=None, help="HOST:PORT (default $NASFORGE_CONTROLLER)")
    ap.add_argument("--token-file", default=None)
    ap.add_argument("--images", help="uint8 NHWC images (.npy)")
    ap.add_argument("--labels", help="integer labels (.npy)")
    ap.add_argument("--fake", action="store_true", help="generated images instead of files")
    ap.add_argument("--max-trials", type=int, default=None)
    ap.add_argument("--idle-timeout", type=float, default=None,
                    help="exit after this many seconds without a candidate")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="level=%(levelname)s %(message)s")
    if a.fake:
        images, labels = fake_data()
    elif a.images and a.labels:
        images, labels = np.load(a.images), np.load(a.labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            ap.error("--images: %s is %s %s; expected uint8 [N, H, W, C]"
                     % (a.images, images.dtype, list(images.shape)))
        if labels.shape != (images.shape[0],):
            ap.error("--labels: %s has shape %s; expected [%d]"
                     % (a.labels, list(labels.shape), images.shape[0]))
    else:
        ap.error("give --images and --labels, or --fake")
    counts = nasforge.worker.run(make_train(images, labels.astype(np.int64), threads=a.threads),
                                 controller=a.controller, token_file=a.token_file,
                                 max_trials=a.max_trials, idle_timeout=a.idle_timeout)
    print(counts)


if __name__ == "__main__":
    main()
