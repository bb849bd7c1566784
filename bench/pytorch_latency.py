#!/usr/bin/env python3
"""PyTorch eager side of the latency comparison (bench/latency_compare.sh runs both).

Reads the architectures latency_bench wrote (--json-dir) and its JSON lines (--cxx), builds the
same models with export/nasforge_model.py (the module `nasforge export` ships), measures them with
the same method -- inference_mode, cudnn.benchmark, warm-up >= 10 runs and 0.2 s, CUDA events
with a synchronise per run on a GPU (perf_counter on the CPU), runs until (p75-p25)/p50 < 5%
after 30 runs or 3 s -- and prints both side by side.
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import nasforge_model as model  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def quantile(v, q):
    v = sorted(v)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def measure(fn, cuda, max_seconds=3.0, warmup_runs=10, warmup_seconds=0.2, min_runs=30,
            max_runs=300, target_spread=0.05, min_seconds=0.5):
    if cuda:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def timed():
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop)
    else:
        def timed():
            t = time.perf_counter()
            fn()
            return 1e3 * (time.perf_counter() - t)
    t_warm = time.perf_counter()
    i = 0
    while i < warmup_runs or time.perf_counter() - t_warm < warmup_seconds:
        timed()
        if i > 10 * warmup_runs + 1000 or (i >= 2 and time.perf_counter() - t_warm > max_seconds):
            break
        i += 1
    ms = []
    t0 = time.perf_counter()
    while len(ms) < max_runs:
        ms.append(timed())
        n = len(ms)
        if n % 5 and time.perf_counter() - t0 <= max_seconds:
            continue
        med = quantile(ms, 0.5)
        spread = (quantile(ms, 0.75) - quantile(ms, 0.25)) / med
        if n >= min_runs and time.perf_counter() - t0 >= min_seconds and spread < target_spread:
            break
        if n >= 5 and time.perf_counter() - t0 > max_seconds:
            break
    return quantile(ms, 0.5), quantile(ms, 0.9), len(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json-dir", required=True)
    ap.add_argument("--cxx", required=True, help="latency_bench's JSON lines")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--graph", action="store_true", help="also PyTorch's CUDA-graph replay")
    ap.add_argument("--max-seconds", type=float, default=3.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = True
    cells = [json.loads(l) for l in open(a.cxx) if l.startswith("{")]
    print("# PyTorch %s, device %s%s, threads %d" % (
        torch.__version__, a.device, " (%s)" % torch.cuda.get_device_name(dev) if cuda else "",
        a.threads))
    hdr = "%-15s %5s %5s | %10s %10s %7s | %10s %10s | %10s" % (
        "model", "batch", "prec", "nasforge", "pytorch", "ratio", "nf_graph", "pt_graph", "nf_img/s")
    print(hdr)
    print("-" * len(hdr))
    worst = None
    for c in cells:
        with open(os.path.join(a.json_dir, c["model"] + ".json")) as f:
            arch = json.load(f)
        torch.manual_seed(0)
        dtype = DTYPES[c["precision"]]
        net = model.build(arch).eval().to(dev, dtype)
        x = torch.randn([c["batch"]] + model.input_shape(arch), device=dev).to(dtype)
        if a.channels_last and x.dim() == 4:
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            p50, _, _ = measure(lambda: net(x), cuda, max_seconds=a.max_seconds)
            pt_graph = float("nan")
            if a.graph and cuda:
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        net(x)
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    net(x)
                pt_graph, _, _ = measure(g.replay, cuda, max_seconds=a.max_seconds)
        ratio = p50 / c["p50_ms"]  # > 1: nasforge faster
        worst = ratio if worst is None else min(worst, ratio)
        nf_graph = c.get("graph_p50_ms")
        print("%-15s %5d %5s | %10.3f %10.3f %6.2fx | %10s %10s | %10.0f" % (
            c["model"], c["batch"], c["precision"], c["p50_ms"], p50, ratio,
            "%.3f" % nf_graph if nf_graph is not None else "-",
            "%.3f" % pt_graph if pt_graph == pt_graph else "-", 1e3 * c["batch"] / c["p50_ms"]),
            flush=True)
        del net, x
        if cuda:
            torch.cuda.empty_cache()
    print("# p50 latency, ms; ratio = pytorch / nasforge (>= 1.00: nasforge no slower); "
          "worst cell %.2fx" % worst)


main()
