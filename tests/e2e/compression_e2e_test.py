#!/usr/bin/python3
"""Compressed variants end to end (JobSpec.compression, issue #30): a controller (SQLite store,
artifacts next to it) and a LibTorch worker run a small Fashion-MNIST job whose spec asks for an
int8, a pruned and a distilled variant of every front member. Checked:
  - every member of the final front has exactly one variant per recipe; every variant names a
    succeeded, non-variant parent of the job; variants are not counted against max_trials and
    the search's own front (pareto) does not list them;
  - each variant was made from its parent's trained weights: its fp32_accuracy is exactly the
    parent's accuracy (same network, same validation split, BatchNorms folded), its int8
    accuracy is close to it, and it stores less than half of the fp32 bytes; it ran on the real
    int8 engine (oneDNN on x86): its latency and the folded fp32 network's are measured;
  - a pruned variant of every front member: a smaller architecture of its own (half the widths,
    at most half the MACs), made from its parent's weights (parent_accuracy is the parent's
    accuracy), fine-tuned for the recipe's epoch; its exported bundle gives the worker's logits
    in python3-torch;
  - a distilled variant of every front member whose student is that member pruned: its teacher a
    search trial at least as accurate as the parent (scoring, as loaded, its own accuracy), its
    no-teacher control recorded beside it (control_accuracy, distill_gain);
  - `nasforge compress JOB TRIAL --distill --watch` on the ended job makes a variant of that
    trial (the job runs again, then ends); a recipe made already and a missing trial are refused;
  - the worker registered the kinds it makes; the spec's errors name the field.

Usage: compression_e2e_test.py CONTROLLER_BIN WORKER_BIN CLI_BIN
"""
import json
import os
import sys
import tempfile

import nf_e2e as nf
from nf_e2e import check, start

CONTROLLER, WORKER, CLI = sys.argv[1:4]
DATA = "/usr/share/datasets/fashion-mnist"

JOB = """
name: compression-e2e
strategy: {name: random}
budget: {max_trials: 4, max_parallel_trials: 1, epochs: 2, seed: 5}
objectives: [{metric: accuracy, direction: MAXIMIZE}, {metric: params, direction: MINIMIZE}]
training: {dataset: fashion-mnist, train_examples: 3000, validation_examples: 1000,
           test_examples: 1000, batch_size: 128, learning_rate: 0.004}
compression:
  recipes:
    - {int8: {calibration_batches: 4}}
    - {prune: {ratio: 0.5, epochs: 1}}
    - {name: distill-half, distill: {epochs: 1, student: prune}}
search_space:
  name: mbconv-tiny
  mbconv:
    resolution: 28
    in_channels: 1
    num_classes: 10
    stem_channels: [8, 16]
    stem_stride: 2
    stages:
      - {stride: 2, kernel: [3, 5], expansion: [1, 3], repeats: [1], channels: [16, 24], se_ratio: [0, 0.25]}
    head_channels: [0, 32]
"""

BAD = {
    "compression: {recipes: [{name: q8}]}": "compression.recipes[0]",
    "compression: {recipes: [{name: Q8, int8: {}}]}": "compression.recipes[0].name",
    "compression: {recipes: [{int8: {calibration_batches: 999}}]}":
        "compression.recipes[0].int8.calibration_batches",
    "compression: {recipes: [{int8: {}}, {int8: {}}]}": "compression.recipes[1].name",
    "compression: {recipes: [{prune: {ratio: 1.5}}]}": "compression.recipes[0].prune.ratio",
    "compression: {recipes: [{distill: {student: nothing}}]}": "compression.recipes[0].distill.student",
}


def cli(addr, *args):
    return nf.cli(CLI, addr, *args)


def main():
    tmp = tempfile.mkdtemp(prefix="nf-compression-e2e-")
    try:
        _, addr = nf.start_controller(CONTROLLER, tmp, "main")
        start([WORKER, "--controller", addr, "--threads", "1", "--data-dir", DATA,
               "--worker-id", "compress-w1", "--metrics-listen", ""], os.path.join(tmp, "worker.log"))
        for extra, field in BAD.items():
            path = os.path.join(tmp, "bad.yaml")
            open(path, "w").write(JOB.replace(
                "compression:\n  recipes:\n    - {int8: {calibration_batches: 4}}\n    - {prune: {ratio: 0.5, epochs: 1}}\n"
                "    - {name: distill-half, distill: {epochs: 1, student: prune}}\n",
                extra + "\n"))
            r = cli(addr, "submit", path)
            check(r.returncode != 0 and field in r.stderr, "refused, naming %s: %s" % (field, r.stderr.strip()[-160:]))
        spec = os.path.join(tmp, "job.yaml")
        open(spec, "w").write(JOB)
        r = cli(addr, "submit", spec, "--watch")
        check(r.returncode == 0, "job succeeded (%s)" % r.stderr.strip()[-300:])
        job = r.stdout.split()[0]
        trials = json.loads(cli(addr, "candidates", job, "--json").stdout).get("trials", [])
        by_id = {int(t.get("id", 0)): t for t in trials}
        variants = [t for t in trials if "variant" in t]
        searched = [t for t in trials if "variant" not in t]
        check(len(searched) == 4, "4 searched trials (max_trials), %d variants beside them" % len(variants))
        front = json.loads(cli(addr, "pareto", job, "--json").stdout)
        front_ids = sorted(int(t.get("id", 0)) for t in front.get("trials", front.get("front", [])))
        check(front_ids and all("variant" not in by_id[i] for i in front_ids),
              "the search's front %s lists no variant" % front_ids)
        only = json.loads(cli(addr, "pareto", job, "--variants", "only", "--json").stdout)
        only_ids = [int(t.get("id", 0)) for t in only.get("trials", [])]
        check(only_ids and all("variant" in by_id[i] for i in only_ids),
              "pareto --variants only lists variants alone: %s" % only_ids)
        r = cli(addr, "pareto", job, "--variants", "all")
        check(r.returncode == 2 and "--variants" in r.stderr, "--variants all refused: " + r.stderr.strip()[-120:])
        made = sorted((int(v["variant"].get("of", 0)), v["variant"]["recipe"]["name"]) for v in variants)
        check(len(made) == len(set(made)), "one variant per parent and recipe: %s" % made)
        for recipe in ("int8", "prune", "distill-half"):
            parents = set(of for of, name in made if name == recipe)
            check(set(front_ids) <= parents, "every front member %s has a %s variant (%s)" % (front_ids, recipe, sorted(parents)))
        pruned = [v for v in variants if v["variant"]["recipe"]["name"] == "prune"]
        distilled = [v for v in variants if v["variant"]["recipe"]["name"] == "distill-half"]
        for v in distilled:
            p = by_id[int(v["variant"].get("of", 0))]
            teacher = by_id[int(v["variant"].get("teacher", 0))]
            m, pm = v.get("metrics", {}), p.get("metrics", {})
            what = "distilled variant %s of %s (teacher %s)" % (v.get("id", 0), p.get("id", 0), teacher.get("id", 0))
            check(v.get("state") == "TRIAL_SUCCEEDED", what + " succeeded: " + v.get("error", ""))
            check("variant" not in teacher and teacher["metrics"]["accuracy"] >= pm.get("accuracy", 1),
                  what + ": the teacher is a search trial at least as accurate as the parent")
            twin = [x for x in pruned if x["variant"].get("of", 0) == v["variant"].get("of", 0)]
            check(twin and v.get("architecture") == twin[0].get("architecture") and m.get("macs") == twin[0]["metrics"].get("macs"),
                  what + ": the student is the parent pruned by recipe 'prune'")
            check(m.get("teacher_accuracy") == teacher["metrics"]["accuracy"],
                  what + ": the teacher as loaded scores its own accuracy (%s)" % m.get("teacher_accuracy"))
            check("control_accuracy" in m and abs(m.get("distill_gain", 9) - (m.get("accuracy", 0) - m.get("control_accuracy", 0))) < 1e-9,
                  what + ": its no-teacher control recorded beside it (%.4f distilled, %.4f control)" % (m.get("accuracy", -1), m.get("control_accuracy", -1)))
        others = len(pruned) + len(distilled)
        variants = [v for v in variants if v["variant"]["recipe"]["name"] == "int8"]
        for v in pruned:
            p = by_id[int(v["variant"].get("of", 0))]
            m, pm = v.get("metrics", {}), p.get("metrics", {})
            what = "pruned variant %s of %s" % (v.get("id", 0), p.get("id", 0))
            check(v.get("state") == "TRIAL_SUCCEEDED", what + " succeeded: " + v.get("error", ""))
            check(v["variant"]["recipe"]["prune"] == {"ratio": 0.5, "epochs": 1}, what + ": recipe %s" % v["variant"]["recipe"])
            check(v["variant"].get("of_architecture") == p.get("architecture") and v.get("architecture") != p.get("architecture"),
                  what + ": a smaller architecture of its own, its parent's named")
            check(m.get("parent_accuracy") == pm.get("accuracy"),
                  what + ": made from the parent's weights (parent as loaded %s == parent %s)" % (m.get("parent_accuracy"), pm.get("accuracy")))
            check(0 < m.get("macs", 0) <= 0.5 * pm.get("macs", 0) and 0 < m.get("params", 0) < 0.6 * pm.get("params", 0),
                  what + ": its own counts, macs %d vs %d, params %d vs %d" % (m.get("macs", 0), pm.get("macs", 0), m.get("params", 0), pm.get("params", 0)))
            check(m.get("epochs") == 1 and "pruned_accuracy" in m and m.get("accuracy", 0) > 0.15,
                  what + ": fine-tuned 1 epoch from the copy (%.4f before, %.4f after)" % (m.get("pruned_accuracy", -1), m.get("accuracy", -1)))
        # A pruned variant exports like any candidate: python3-torch rebuilds it from the bundle
        # and gives the worker's logits.
        import importlib.util
        import torch
        v = pruned[0]
        out = os.path.join(tmp, "bundle-pruned")
        r = cli(addr, "export", job, str(v.get("id", 0)), "--out", out)
        check(r.returncode == 0, "export of pruned variant %s: %s" % (v.get("id", 0), r.stderr.strip()[-200:]))
        spec_ = importlib.util.spec_from_file_location("bundle_pruned", os.path.join(out, "model.py"))
        model = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(model)
        net = model.load(out)
        chk = torch.load(os.path.join(out, "check.pt"))
        with torch.no_grad():
            diff = (net(chk["inputs"]) - chk["logits"]).abs().max().item()
        check(diff <= 1e-4 * max(1.0, chk["logits"].abs().max().item()),
              "pruned variant: PyTorch's logits from the bundle equal the worker's (max diff %.2e)" % diff)
        for v in variants:
            p = by_id[int(v["variant"].get("of", 0))]
            m, pm = v.get("metrics", {}), p.get("metrics", {})
            what = "variant %s of %s" % (v.get("id", 0), p.get("id", 0))
            check(v.get("state") == "TRIAL_SUCCEEDED", what + " succeeded: " + v.get("error", ""))
            check("variant" not in p and p.get("state") == "TRIAL_SUCCEEDED", what + ": its parent is a succeeded search trial")
            check(v["variant"]["recipe"].get("name") == "int8" and
                  v["variant"]["recipe"]["int8"].get("calibration_batches") == 4,
                  what + ": recipe with defaults %s" % v["variant"]["recipe"])
            check(m.get("fp32_accuracy") == pm.get("accuracy"),
                  what + ": made from the parent's weights (fp32 %s == parent %s)" % (m.get("fp32_accuracy"), pm.get("accuracy")))
            check(abs(m.get("accuracy", -1) - m.get("fp32_accuracy", 0)) <= 0.05,
                  what + ": int8 accuracy %.4f near fp32 %.4f" % (m.get("accuracy", -1), m.get("fp32_accuracy", 0)))
            # Weights at 1 byte instead of 4; per-channel scales and fp32 biases are a large share
            # of a network this small.
            check(0 < m.get("size_bytes", 0) < m.get("fp32_size_bytes", 0) / 2,
                  what + ": %d bytes vs %d fp32" % (m.get("size_bytes", 0), m.get("fp32_size_bytes", 0)))
            check(m.get("int8_within_tolerance") in (0, 1), what + ": tolerance verdict recorded")
            check(m.get("latency_ms", 0) > 0 and m.get("fp32_latency_ms", 0) > 0 and
                  abs(m.get("int8_engine_accuracy", -1) - m.get("accuracy", 0)) <= 0.03,
                  what + ": on the int8 engine %.4f ms (fp32 %.4f ms), accuracy %.4f" %
                  (m.get("latency_ms", 0), m.get("fp32_latency_ms", 0), m.get("int8_engine_accuracy", -1)))
            check(m.get("macs") == pm.get("macs") and m.get("params") == pm.get("params"),
                  what + ": its parent's counts")
        counts = json.loads(cli(addr, "status", job, "--json").stdout).get("counts", {})
        check(counts.get("variants") == len(variants) + others, "job counts %d variants: %s" % (len(variants) + others, counts))
        wlog = open(os.path.join(tmp, "worker.log")).read()
        check(wlog.count("event=int8_engine_measured") == len(variants) and "engine=onednn" in wlog,
              "the worker ran each int8 variant on the oneDNN int8 engine")
        log = open(os.path.join(tmp, "main.log")).read()
        check("compress-w1" in log and log.count("event=variant_created") == len(variants) + others,
              "the controller logged each variant's creation")
        # `nasforge compress JOB TRIAL`: a variant of a named trial of the ended job, which runs
        # again until it is made; a recipe made already is refused.
        member = str(front_ids[0])
        r = cli(addr, "compress", job, member, "--int8")
        check(r.returncode != 0 and "ALREADY_EXISTS" in r.stderr, "compress: int8 made already: " + r.stderr.strip()[-160:])
        r = cli(addr, "compress", job, "999", "--int8")
        check(r.returncode != 0 and "NOT_FOUND" in r.stderr, "compress: no trial 999: " + r.stderr.strip()[-160:])
        r = cli(addr, "compress", job, member, "--distill", "--distill-epochs", "1", "--watch")
        check(r.returncode == 0 and ("distill of " + member) in r.stdout,
              "compress --distill --watch: made and the job ended again (%s)" % (r.stdout + r.stderr).strip()[-300:])
        trials = json.loads(cli(addr, "candidates", job, "--json").stdout).get("trials", [])
        asked = [t for t in trials if t.get("variant", {}).get("recipe", {}).get("name") == "distill"]
        check(len(asked) == 1 and asked[0].get("state") == "TRIAL_SUCCEEDED" and
              str(asked[0]["variant"].get("of", 0)) == member and "control_accuracy" in asked[0].get("metrics", {}),
              "the asked-for variant succeeded with its control: %s" % [(t.get("id"), t.get("state")) for t in asked])
    finally:
        nf.conclude(tmp, ("main.log", "worker.log"))


main()
