#!/usr/bin/env bash
# The whole system on one GPU machine: a controller (embedded SQLite), a CPU worker and GPU
# workers (--device cuda), two jobs:
#   A  search_spaces/examples/fashion_mnist_quick.yaml (JOB_A_TRIALS candidates, default 6) with
#      two hardware targets: the CPU worker's profile (cpu-<threads>t) and h200-b32 (profile
#      h200, batch 32, bf16). Trained by the CPU and the GPU workers together; each candidate's
#      latency on each target is measured by a worker of that profile (the candidate list shows
#      who trained it, `pareto --hardware-profile` ranks by each target's latency). SKIP_A=1
#      skips it;
#   B  search_spaces/examples/fashion_mnist_gpu.yaml (or JOB_B), GPU workers only, watched up to
#      DEADLINE seconds (then cancelled), its Pareto front printed with test accuracy. SKIP_B=1
#      skips it.
#   deploy/gpu/search.sh BUILD_DIR DATA_DIR [GPU_WORKERS=4] [DEADLINE=400]
set -euo pipefail
build=${1:?BUILD_DIR}; data=${2:?DATA_DIR}; gpus=${3:-4}; deadline=${4:-400}
src=$(cd "$(dirname "$0")/../.." && pwd)
JOB_A=${JOB_A:-$src/search_spaces/examples/fashion_mnist_quick.yaml}
JOB_B=${JOB_B:-$src/search_spaces/examples/fashion_mnist_gpu.yaml}
state=${STATE_DIR:-$(mktemp -d /tmp/nasforge-gpu.XXXXXX)}
mkdir -p "$state"
rm -f "$state/port"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 143' TERM INT
nf="$build/cli/nasforge"
"$build/controller/nasforge-controller" --listen 127.0.0.1:0 --port-file "$state/port" \
  --store "sqlite://$state/gpu.db" >"$state/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$state/port" ] && break; sleep 0.1; done
export NASFORGE_CONTROLLER="127.0.0.1:$(cat "$state/port")"
cpu_threads=$(( $(nproc) / 2 ))
"$build/worker/nasforge-worker" --controller "$NASFORGE_CONTROLLER" --threads "$cpu_threads" --data-dir "$data" --worker-id cpu-1 \
  >"$state/worker-cpu.log" 2>&1 &
cpu_pid=$!; pids+=($cpu_pid)
for g in $(seq "$gpus"); do
  "$build/worker/nasforge-worker" --controller "$NASFORGE_CONTROLLER" --device cuda --data-dir "$data" --worker-id "gpu-$g" \
    >"$state/worker-gpu-$g.log" 2>&1 &
  pids+=($!)
done
echo "== controller $NASFORGE_CONTROLLER, 1 CPU worker ($cpu_threads threads), $gpus GPU workers; state in $state"
t0=$(date +%s)
if [ "${SKIP_A:-0}" != 1 ]; then
  job_a="$state/job_a.yaml"
  sed "s/max_trials: [0-9]*/max_trials: ${JOB_A_TRIALS:-6}/" "$JOB_A" >"$job_a"
  cat >>"$job_a" <<EOF
hardware_targets:
  - {profile: cpu-${cpu_threads}t, threads: $cpu_threads}
  - {name: h200-b32, profile: h200, batch_size: 32, precision: bf16}
EOF
  a=$("$nf" submit "$job_a")
  "$nf" watch "$a" >/dev/null || true
  echo "== job A ($a, $(basename "$JOB_A") with hardware targets): $(( $(date +%s) - t0 )) s"
  "$nf" status "$a"
  "$nf" candidates "$a"
  "$nf" candidates "$a" --json >"$state/candidates_a.json" || true
  for target in "cpu-${cpu_threads}t" h200-b32; do
    echo "== job A front on $target (accuracy, latency there)"
    "$nf" pareto "$a" --hardware-profile "$target" --objectives accuracy:max,latency_ms:min
  done
  grep -c "event=measured" "$state/controller.log" | sed 's/^/measurements: /'
fi
kill -TERM "$cpu_pid" 2>/dev/null || true
[ "${SKIP_B:-0}" = 1 ] && exit 0
t1=$(date +%s)
b=$("$nf" submit "$JOB_B")
timeout "$deadline" "$nf" watch "$b" >/dev/null || { echo "== deadline ${deadline}s: cancelling job B"; "$nf" cancel "$b" || true; }
echo "== job B ($b, $(basename "$JOB_B")): $(( $(date +%s) - t1 )) s"
"$nf" status "$b"
"$nf" candidates "$b"
echo "== job B front (accuracy = validation; test_accuracy on the 10k test set)"
"$nf" pareto "$b" --objectives accuracy:max,params:min
"$nf" pareto "$b" --objectives accuracy:max,params:min --json > "$state/front_b.json" || true
grep -h "event=worker_starting" "$state"/worker-*.log | head -3
