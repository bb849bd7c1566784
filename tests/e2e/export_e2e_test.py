#!/usr/bin/python3
"""`nasforge export` end to end, loaded by Debian's python3-torch.

A controller (SQLite store, artifacts next to it) and a LibTorch worker run a small Fashion-MNIST
job (2 candidates, 2 epochs on 3,000 images). The worker uploads each trained candidate's weights and self-check;
`nasforge export JOB TRIAL` writes the bundle. Then, with nothing from nasforge but the bundle:
  - model.load(bundle) rebuilds the network (strict state-dict load) and its logits on the
    bundle's check inputs equal the worker's (max |diff| <= 1e-4 * max(1, max |logit|));
  - its accuracy on the first test_examples Fashion-MNIST test images, normalised as in
    training, is the trial's reported test_accuracy (within one image: argmax ties);
  - architecture.json hashes (FNV-1a 64) to the trial's arch_hash.
And the refusals: an unknown trial, a non-empty --out without --overwrite, --format onnx, and a
controller started with --artifact-dir none all fail with a message naming the problem.

Usage: export_e2e_test.py SOURCE_DIR CONTROLLER_BIN WORKER_BIN CLI_BIN
"""
import gzip
import importlib.util
import json
import os
import shutil
import sys
import tempfile

import nf_e2e as nf
import torch
from nf_e2e import check, start

SRC, CONTROLLER, WORKER, CLI = sys.argv[1:5]
DATA = "/usr/share/datasets/fashion-mnist"


def start_controller(tmp, name, extra=()):
    return nf.start_controller(CONTROLLER, tmp, name, extra)


def cli(addr, *args):
    return nf.cli(CLI, addr, *args)


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def read_idx(path):
    data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def idx(stem):
    for n in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(DATA, n)):
            return os.path.join(DATA, n)
    sys.exit("no %s in %s" % (stem, DATA))


JOB = """
name: export-e2e
strategy: {name: random}
budget: {max_trials: 2, max_parallel_trials: 1, epochs: 2, seed: 3}
objectives: [{metric: accuracy, direction: MAXIMIZE}, {metric: params, direction: MINIMIZE}]
training: {dataset: fashion-mnist, train_examples: 3000, validation_examples: 500,
           test_examples: 1000, batch_size: 128, learning_rate: 0.004}
search_space:
  name: mbconv-tiny
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8, 16]
    stem_stride: 2
    stages:
      - {stride: 2, kernel: [3, 5], expansion: [1, 3], repeats: [1], channels: [16], se_ratio: [0, 0.25]}
    head_channels: [32]
"""


def main():
    tmp = tempfile.mkdtemp(prefix="nf-export-e2e-")
    try:
        ctl, addr = start_controller(tmp, "main")
        start([WORKER, "--controller", addr, "--threads", "1", "--data-dir", DATA,
               "--worker-id", "export-w1", "--metrics-listen", ""], os.path.join(tmp, "worker.log"))
        spec = os.path.join(tmp, "job.yaml")
        open(spec, "w").write(JOB)
        r = cli(addr, "submit", spec, "--watch")
        check(r.returncode == 0, "job succeeded (%s)" % r.stderr.strip()[-200:])
        job = r.stdout.split()[0]
        cand = json.loads(cli(addr, "candidates", job, "--json").stdout)
        trials = cand.get("trials", [])
        check(len(trials) == 2, "2 candidates")
        logs = open(os.path.join(tmp, "main.log")).read()
        check(logs.count("event=artifact_stored") == 4, "4 artifacts stored (weights + check x 2)")
        for t in trials:
            tid = str(t.get("id", 0))
            out = os.path.join(tmp, "bundle-" + tid)
            r = cli(addr, "export", job, tid, "--out", out)
            check(r.returncode == 0 and r.stdout.strip() == out, "export trial %s: %s" % (tid, r.stderr.strip()))
            files = sorted(os.listdir(out))
            check(files == ["README.md", "architecture.json", "check.pt", "metrics.json", "model.py",
                            "weights.pt"], "bundle files %s" % files)
            spec_ = importlib.util.spec_from_file_location("bundle_model_" + tid, os.path.join(out, "model.py"))
            model = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(model)
            net = model.load(out)
            chk = torch.load(os.path.join(out, "check.pt"))
            with torch.no_grad():
                got = net(chk["inputs"])
            diff = (got - chk["logits"]).abs().max().item()
            tol = 1e-4 * max(1.0, chk["logits"].abs().max().item())
            check(diff <= tol, "trial %s: logits equal the worker's (max diff %.2e, tol %.1e)" % (tid, diff, tol))
            arch_text = open(os.path.join(out, "architecture.json")).read().rstrip("\n")
            check(fnv1a64(arch_text) == t["arch_hash"], "trial %s: architecture.json hashes to %s" % (tid, t["arch_hash"]))
            meta = json.load(open(os.path.join(out, "metrics.json")))
            check(meta.get("arch_hash") == t["arch_hash"], "metrics.json names the trial")
            # The test accuracy the worker reported, recomputed in PyTorch from the bundle.
            x = read_idx(idx("t10k-images-idx3-ubyte"))[:1000].float().div(255).sub(0.2860).div(0.3530).unsqueeze(1)
            y = read_idx(idx("t10k-labels-idx1-ubyte"))[:1000].long()
            with torch.no_grad():
                acc = (net(x).argmax(1) == y).float().mean().item()
            want = t["metrics"]["test_accuracy"]
            check(acc > 0.25, "trial %s: the model learned (test accuracy %.3f > 0.25; chance 0.1)" % (tid, acc))
            check(abs(acc - want) <= 1.0 / 1000 + 1e-9,
                  "trial %s: test accuracy in PyTorch %.4f == reported %.4f" % (tid, acc, want))
        # Refusals.
        r = cli(addr, "export", job, "99")
        check(r.returncode != 0 and "99" in r.stderr, "unknown trial refused: " + r.stderr.strip())
        r = cli(addr, "export", job, "0", "--out", os.path.join(tmp, "bundle-0"))
        check(r.returncode != 0 and "not empty" in r.stderr, "non-empty --out refused: " + r.stderr.strip())
        r = cli(addr, "export", job, "0", "--out", os.path.join(tmp, "bundle-0"), "--overwrite")
        check(r.returncode == 0, "--overwrite replaces it")
        r = cli(addr, "export", job, "0", "--format", "onnx")
        check(r.returncode == 2 and "--format" in r.stderr, "--format onnx refused: " + r.stderr.strip())
        # A controller that keeps no artifacts says so, and its worker trains on regardless.
        _, addr2 = start_controller(tmp, "noart", ["--artifact-dir", "none"])
        start([WORKER, "--controller", addr2, "--threads", "1", "--data-dir", DATA,
               "--worker-id", "export-w2", "--metrics-listen", ""], os.path.join(tmp, "worker2.log"))
        r = cli(addr2, "submit", spec, "--watch")
        check(r.returncode == 0, "job without artifacts succeeded")
        job2 = r.stdout.split()[0]
        r = cli(addr2, "export", job2, "0", "--out", os.path.join(tmp, "nope"))
        check(r.returncode != 0 and "--artifact-dir" in r.stderr, "no artifacts: " + r.stderr.strip())
        check("event=artifacts_off" in open(os.path.join(tmp, "worker2.log")).read(),
              "the worker logs that weights are not kept")
    finally:
        nf.finish(tmp, ("main.log", "worker.log"))
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if nf.failures else 0)


main()
