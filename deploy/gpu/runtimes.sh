#!/usr/bin/env bash
# Two latency runtimes on one GPU (search_spaces/examples/gpu_runtimes.yaml): a controller on an
# embedded store, one GPU worker of profile `gpu` that runs both runtimes (libtorch,
# libtorch-cuda-graph), the job watched to its end, then every candidate's latency under each.
#   deploy/gpu/runtimes.sh BUILD_DIR
set -euo pipefail
build=${1:?BUILD_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
state=$(mktemp -d /tmp/nasforge-runtimes.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$build/controller/nasforge-controller" --listen 127.0.0.1:0 --port-file "$state/port" \
  --store "sqlite://$state/s.db" --metrics-listen= --ui-listen= >"$state/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$state/port" ] && break; sleep 0.1; done
[ -s "$state/port" ] || { cat "$state/controller.log"; exit 1; }
export NASFORGE_CONTROLLER="127.0.0.1:$(cat "$state/port")"
"$build/worker/nasforge-worker" --device "${DEVICE:-cuda}" --threads "${THREADS:-4}" --hardware-profile gpu --controller "$NASFORGE_CONTROLLER" \
  --worker-id gpu-1 >"$state/worker.log" 2>&1 &
pids+=($!)
job=$("$build/cli/nasforge" submit "$src/search_spaces/examples/gpu_runtimes.yaml")
timeout "${DEADLINE:-240}" "$build/cli/nasforge" watch "$job" >/dev/null || true
"$build/cli/nasforge" status "$job" || true
"$build/cli/nasforge" candidates "$job" --format csv || true
echo "--- controller (registrations, measurements, failures)"
grep -h "event=worker_registered\|event=measured\|event=measurement_\|level=error\|level=warn" \
  "$state/controller.log" | head -40
echo "--- worker"
tail -20 "$state/worker.log"
