#!/usr/bin/env bash
# Quick-start demo: installs what the three programs need (install-deps.sh --demo) and builds
# only them (controller, worker, CLI: not the tests), starts a controller (embedded SQLite) and
# two local LibTorch workers, runs a real random search on Fashion-MNIST
# (search_spaces/examples/fashion_mnist_quick.yaml), watches it, and prints the Pareto front and
# how long each step took. deploy/test.sh builds and runs everything else.
# Usage: deploy/demo.sh [JOB.yaml]   (state and logs go to ./nasforge-demo/)
set -euo pipefail
cd "$(dirname "$0")/.."
JOB="${1:-search_spaces/examples/fashion_mnist_quick.yaml}"
t_begin=$(date +%s)
bash deploy/install-deps.sh --demo
t_installed=$(date +%s)
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake --preset default >/dev/null
ninja -C build nasforge-controller nasforge-worker nasforge
t_built=$(date +%s)

OUT="$PWD/nasforge-demo"
mkdir -p "$OUT"
rm -rf "$OUT"/port "$OUT"/demo.db*  # demo.db.artifacts/ is a directory
BIN="$PWD/build"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$BIN/controller/nasforge-controller" --listen 127.0.0.1:0 --port-file "$OUT/port" \
  --store "sqlite://$OUT/demo.db" --metrics-listen 127.0.0.1:0 >"$OUT/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.1; done
[ -s "$OUT/port" ] || { echo "controller did not start; see $OUT/controller.log"; cat "$OUT/controller.log"; exit 1; }
export NASFORGE_CONTROLLER="127.0.0.1:$(cat "$OUT/port")"
echo "controller on $NASFORGE_CONTROLLER (logs: $OUT/*.log)"

for w in 1 2; do
  "$BIN/worker/nasforge-worker" --controller "$NASFORGE_CONTROLLER" --threads 1 \
    --worker-id "demo-worker-$w" >"$OUT/worker-$w.log" 2>&1 &
  pids+=($!)
done

start=$(date +%s)
JOB_ID=$("$BIN/cli/nasforge" submit "$JOB")
echo "job $JOB_ID submitted: $JOB"
UI=$(grep -o 'event=ui_serving url=[^ ]*' "$OUT/controller.log" | head -1 | cut -d= -f3)
[ -n "$UI" ] && echo "watch it in a browser: ${UI}jobs/$JOB_ID"
"$BIN/cli/nasforge" watch "$JOB_ID" || true
t_searched=$(date +%s)
echo
"$BIN/cli/nasforge" status "$JOB_ID"
echo
"$BIN/cli/nasforge" pareto "$JOB_ID" --objectives accuracy:max,macs:min --plot "$OUT/pareto.svg"
echo
echo "took: install $(( t_installed - t_begin )) s, build $(( t_built - t_installed )) s," \
  "search $(( t_searched - start )) s (whole demo $(( $(date +%s) - t_begin )) s)"
