#!/usr/bin/env bash
# Latency of the reference architectures measured by the worker (latency_bench) and by PyTorch
# eager on the same models (bench/pytorch_latency.py), one after the other in one run.
#   bench/latency_compare.sh BUILD_DIR [cpu|cuda] [latency_bench flags...]
# CPU here: bench/latency_compare.sh build cpu --batches 1,32 --threads 1
# GPU:      bench/latency_compare.sh build-gpu cuda --batches 1,32,256 --precisions fp32,bf16 --graph
set -euo pipefail
build=${1:?BUILD_DIR}; device=${2:-cpu}; shift 2 || true
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
threads=1; graph=(); cl=(); maxs=3
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --threads) threads=${args[i+1]} ;;
    --threads=*) threads=${args[i]#*=} ;;
    --graph) graph=(--graph) ;;
    --max_seconds) maxs=${args[i+1]} ;;
    --channels-last|--channels_last) cl=(--channels-last) ;;
  esac
done
PY=${PYTHON:-/usr/bin/python3}
"$build/bench/latency_bench" reference --device "$device" --json_dir "$tmp/arch" "$@" > "$tmp/cxx.jsonl"
OMP_NUM_THREADS=$threads "$PY" "$here/pytorch_latency.py" --json-dir "$tmp/arch" --cxx "$tmp/cxx.jsonl" \
  --device "$device" --threads "$threads" --max-seconds "$maxs" "${graph[@]}" "${cl[@]}"
