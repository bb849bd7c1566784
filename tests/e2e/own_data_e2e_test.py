#!/usr/bin/python3
"""The built-in LibTorch worker trains on the user's own files: NumPy pairs and CIFAR binary
batches written here, under the worker's --data-root.

A controller (SQLite) and one worker. Checked:
  - an npy job (3-channel 16x16 images, 4 classes, a train and a test split), with random crops
    (padding 2) and flips, normalisation computed from the data: every candidate trains, better
    than chance, with a test accuracy;
  - a CIFAR-10-layout job (data_batch_1.bin + test_batch.bin, 3x32x32) trains too;
  - a job whose data_path does not exist fails its trials naming the path and --data-root;
  - a space that does not fit the data (1 input channel, 2 classes) fails naming both shapes;
  - the controller refuses an absolute or "../" data_path naming training.data_path.

Usage: own_data_e2e_test.py CONTROLLER_BIN WORKER_BIN CLI_BIN
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import nf_e2e as nf
from nf_e2e import check, start

CONTROLLER, WORKER, CLI = sys.argv[1:4]

JOB = """
name: %(name)s
strategy: {name: random}
budget: {max_trials: %(trials)d, max_parallel_trials: 1, epochs: %(epochs)d, seed: 4}
objectives: [{metric: accuracy, direction: maximize}, {metric: macs, direction: minimize}]
training: {dataset: %(dataset)s, data_path: %(path)s, batch_size: 64, learning_rate: 0.004,
           random_crop_padding: 2, horizontal_flip: true}
search_space:
  name: mbconv-own
  mbconv:
    resolution: %(res)d
    in_channels: %(channels)d
    num_classes: %(classes)d
    stem_channels: [8, 16]
    stem_stride: 1
    stages:
      - {stride: 2, kernel: [3], expansion: [1, 3], repeats: [1], channels: [16, 24], se_ratio: [0]}
    head_channels: [32]
"""


def images(n, size, classes, seed):
    """Learnable colour images: the class is a colour and a stripe direction, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = rng.normal(0.0, 30.0, (n, size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    for c in range(classes):
        sel = labels == c
        x[sel, :, :, c % 3] += 110.0 + ((xx if c % 2 else yy) // 2) % 2 * 60.0
    return np.clip(x + 50.0, 0, 255).astype(np.uint8), labels


def write_npy(root):
    d = os.path.join(root, "shapes-npy")
    os.makedirs(d)
    x, y = images(800, 16, 4, 1)
    np.save(os.path.join(d, "train_images.npy"), x)
    np.save(os.path.join(d, "train_labels.npy"), y.astype(np.int64))
    x, y = images(200, 16, 4, 2)
    np.save(os.path.join(d, "test_images.npy"), x)
    np.save(os.path.join(d, "test_labels.npy"), y.astype(np.int32))


def write_cifar(root):
    d = os.path.join(root, "tiny-cifar")
    os.makedirs(d)
    for name, n, seed in (("data_batch_1.bin", 500, 3), ("test_batch.bin", 100, 4)):
        x, y = images(n, 32, 4, seed)
        chw = x.transpose(0, 3, 1, 2).reshape(n, -1)
        rec = np.concatenate([y.astype(np.uint8)[:, None], chw], axis=1)
        rec.tofile(os.path.join(d, name))


def submit(addr, tmp, name, **kw):
    args = dict(name=name, trials=2, epochs=2, dataset="npy", path="shapes-npy", res=16,
                channels=3, classes=4)
    args.update(kw)
    path = os.path.join(tmp, name + ".yaml")
    open(path, "w").write(JOB % args)
    return nf.cli(CLI, addr, "submit", path, "--watch")


def candidates(addr, job):
    r = nf.cli(CLI, addr, "candidates", job, "--json")
    return json.loads(r.stdout or "{}").get("trials", [])


def main():
    tmp = tempfile.mkdtemp(prefix="nf-own-data-")
    root = os.path.join(tmp, "data")
    try:
        write_npy(root)
        write_cifar(root)
        _, addr = nf.start_controller(CONTROLLER, tmp, "ctl")
        start([WORKER, "--controller", addr, "--worker-id", "w1", "--threads", "2",
               "--data-root", root], os.path.join(tmp, "worker.log"))

        r = submit(addr, tmp, "npy")
        job = r.stdout.split()[0] if r.stdout.split() else ""
        check(r.returncode == 0, "npy job succeeded (%s)" % r.stderr.strip()[-300:])
        ts = candidates(addr, job)
        accs = [t["metrics"].get("accuracy", 0) for t in ts]
        check(len(ts) == 2 and all(t["state"] == "TRIAL_SUCCEEDED" for t in ts),
              "npy: 2 candidates trained")
        check(max(accs) > 0.5, "npy: best validation accuracy %.3f > 0.5 (chance 0.25)" % max(accs))
        check(all("test_accuracy" in t["metrics"] for t in ts), "npy: test accuracy reported")

        r = submit(addr, tmp, "cifar", dataset="cifar", path="tiny-cifar", res=32, trials=1)
        job = r.stdout.split()[0] if r.stdout.split() else ""
        ts = candidates(addr, job)
        check(r.returncode == 0 and len(ts) == 1 and
              ts[0]["metrics"].get("accuracy", 0) > 0.4,
              "cifar: trained, accuracy %s (%s)" % (ts[0]["metrics"].get("accuracy") if ts else None,
                                                  r.stderr.strip()[-200:]))

        r = submit(addr, tmp, "missing", path="not-there", trials=1)
        job = r.stdout.split()[0] if r.stdout.split() else ""
        ts = candidates(addr, job)
        err = ts[0].get("error", "") if ts else ""
        check(r.returncode != 0 and "not-there" in err and "--data-root" in err,
              "missing data: the trial fails naming the path (%s)" % err[:200])

        r = submit(addr, tmp, "misfit", channels=1, classes=2, trials=1)
        job = r.stdout.split()[0] if r.stdout.split() else ""
        ts = candidates(addr, job)
        err = ts[0].get("error", "") if ts else ""
        check(r.returncode != 0 and "1x16x16" in err and "3x16x16" in err,
              "misfit space: the trial fails naming both shapes (%s)" % err[:200])

        for bad in ("/etc", "../secrets"):
            r = submit(addr, tmp, "bad", path=bad)
            check(r.returncode == 2 and "training.data_path" in r.stderr,
                  "data_path %s refused naming the field (%s)" % (bad, r.stderr.strip()[-160:]))
    finally:
        nf.conclude(tmp, ["ctl.log", "worker.log"])


if __name__ == "__main__":
    main()
