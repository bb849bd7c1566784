#!/usr/bin/python3
"""Export round trip: models built and run by the C++ worker (LibTorch), loaded in Python with
Debian's python3-torch through the bundle's model.py alone, give the same logits.

  pytorch_roundtrip_test.py SOURCE_DIR EXPORT_FIXTURE_BIN

For every search-space kind (sampled architectures, several seeds) and every reference
architecture (EfficientNet-B0, MobileNetV2, ResNet-18/50, ConvNeXt-T, NAS-Bench-201 cells), the
fixture writes a bundle (architecture.json, weights.pt, check.pt: 4 inputs and the C++ logits,
eval mode, BatchNorm statistics moved off their initial values). Python loads weights.pt with
torch.load (no nasforge code), load_state_dict(strict=True) into model.build(architecture), and
compares logits: max |diff| <= 1e-4 * max(1, max |logit|) (fp32; both run the same oneDNN/ATen
kernels, observed differences are ~1e-6).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

SRC, FIXTURE = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "export"))
import nasforge_model as model  # noqa: E402

SPACES = ["mbconv_small.yaml", "resnet_small.yaml", "convnext_small.yaml",
          "nb201_fashion_mnist.yaml", "mlp_tabular.yaml", "nb201_cifar.yaml"]
REFERENCE = ["efficientnet_b0", "mobilenet_v2", "resnet18", "resnet50", "convnext_tiny",
             "nb201_best", "nb201_resnet_like"]

failures = []
checked = 0


def check(ok, what):
    global checked
    checked += 1
    if not ok:
        failures.append(what)
        print("FAIL", what, flush=True)


def custom_kind():
    """A kind registered in code (SearchSpace.custom): model.py refuses it with the call to make
    until its builder is registered, then builds it from the named values."""
    arch = {"custom": {"kind": "tower", "values": [{"name": "depth", "value": 2},
                                                    {"name": "width", "value": 16}]}}
    try:
        model.build(arch)
        check(False, "custom kind without a builder is refused")
    except ValueError as e:
        check("register_custom('tower'" in str(e), "custom kind error names the call: %s" % e)

    def build(v):
        layers, c = [], 784
        for _ in range(v["depth"]):
            layers += [torch.nn.Linear(c, v["width"]), torch.nn.ReLU()]
            c = v["width"]
        return torch.nn.Sequential(torch.nn.Flatten(), *layers, torch.nn.Linear(c, 10))

    model.register_custom("tower", build, lambda v: [784])
    net = model.build(arch)
    check(model.input_shape(arch) == [784], "custom kind input shape")
    check(sum(p.numel() for p in net.parameters()) == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10,
          "custom kind built from its values")


def main():
    tmp = tempfile.mkdtemp(prefix="nf-export-")
    try:
        args = []
        for sp in SPACES:
            for seed in (1, 2, 3):
                args.append("%s-%d=%s@%d" % (sp[:-5], seed, os.path.join(SRC, "search_spaces", sp), seed))
        for ref in REFERENCE:
            args.append("%s=%s" % (ref, os.path.join(SRC, "search_spaces", "reference", ref + ".yaml")))
        out = subprocess.run([FIXTURE, tmp] + args, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            sys.exit("export_fixture failed")
        names = [a.split("=")[0] for a in args]
        worst = 0.0
        for name in names:
            d = os.path.join(tmp, name)
            with open(os.path.join(d, "architecture.json")) as f:
                arch = json.load(f)
            state = torch.load(os.path.join(d, "weights.pt"))
            check(isinstance(state, dict) and all(torch.is_tensor(v) for v in state.values()),
                  "%s: weights.pt is a dict of tensors" % name)
            net = model.build(arch)
            expected = set(net.state_dict().keys())
            check(expected == set(state.keys()),
                  "%s: state_dict keys match (missing %s, unexpected %s)" % (
                      name, sorted(expected - set(state))[:5], sorted(set(state) - expected)[:5]))
            net.load_state_dict(state, strict=True)
            net.eval()
            chk = torch.load(os.path.join(d, "check.pt"))
            with torch.no_grad():
                got = net(chk["inputs"])
            want = chk["logits"]
            check(tuple(got.shape) == tuple(want.shape), "%s: logits shape %s == %s" % (
                name, tuple(got.shape), tuple(want.shape)))
            diff = (got - want).abs().max().item()
            tol = 1e-4 * max(1.0, want.abs().max().item())
            worst = max(worst, diff / max(1.0, want.abs().max().item()))
            check(diff <= tol, "%s: max |logit diff| %.3g <= %.3g" % (name, diff, tol))
            # The bundle's loader does the same from the directory.
            shutil.copy(os.path.join(SRC, "export", "nasforge_model.py"), os.path.join(d, "model.py"))
            loaded = model.load(d)
            with torch.no_grad():
                check(torch.equal(loaded(chk["inputs"]), got), "%s: model.load(dir)" % name)
            params = sum(p.numel() for p in net.parameters())
            print("ok %-22s params=%-9d max_diff=%.2e" % (name, params, diff), flush=True)
        print("worst relative logit difference: %.2e over %d models" % (worst, len(names)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    custom_kind()
    print("%d checks, %d failed" % (checked, len(failures)))
    sys.exit(1 if failures else 0)


main()
