#!/usr/bin/env bash
# The Debian packages: `cpack -G DEB` in the build directory makes nasforge-controller,
# nasforge-worker, nasforge-cli and python3-nasforge; each names its dependencies (found by
# dpkg-shlibdeps); apt resolves them (a simulated install of the four files, when apt has package
# lists); installed into an empty prefix (dpkg -x, no root changes) they run: `nasforge --help`,
# the completion script, a controller and a worker from the prefix training a tiny job submitted
# by the packaged CLI with a packaged example spec, and the packaged Python client listing it.
#   deb_package_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
TMP=$(mktemp -d /tmp/nf-deb-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${ok:-0}" = 1 ]; then rm -rf "$TMP"; else echo "kept $TMP"; fi
}
trap cleanup EXIT
fail() { echo "FAIL $*"; for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }
pass() { echo "ok   $*"; }

(cd "$TMP" && cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$TMP/debs" > "$TMP/cpack.log" 2>&1) ||
  fail "cpack -G DEB"
debs=("$TMP"/debs/*.deb)
[ "${#debs[@]}" -eq 4 ] || fail "4 packages (got ${#debs[@]}: ${debs[*]})"
pass "cpack made ${#debs[@]} packages: $(cd "$TMP/debs" && echo *.deb)"
for p in nasforge-controller nasforge-worker nasforge-cli python3-nasforge; do
  f=$(ls "$TMP"/debs/${p}_*.deb 2>/dev/null | head -1)
  [ -n "$f" ] || fail "no package $p"
  deps=$(dpkg-deb -f "$f" Depends)
  [ -n "$deps" ] || fail "$p names no dependencies"
  echo "     $p: $(du -h "$f" | cut -f1), Depends: ${deps:0:100}..."
done
dpkg-deb -f "$TMP"/debs/nasforge-controller_*.deb Depends | grep -q libgrpc || fail "controller depends on gRPC"
dpkg-deb -f "$TMP"/debs/nasforge-worker_*.deb Depends | grep -q libtorch || fail "worker depends on LibTorch"
dpkg-deb -f "$TMP"/debs/python3-nasforge_*.deb Depends | grep -q python3-grpcio || fail "python depends on grpcio"
pass "dependencies named (gRPC, LibTorch, python3-grpcio)"
if [ "$(id -u)" = 0 ] && ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  apt-get install -s -q "${debs[@]}" > "$TMP/apt.log" 2>&1 || fail "apt-get install -s (see apt.log)"
  pass "apt resolves every dependency (simulated install)"
else
  echo "skip apt simulation (needs root and apt package lists)"
fi

ROOT="$TMP/root"
for f in "${debs[@]}"; do dpkg -x "$f" "$ROOT"; done
for f in usr/bin/nasforge usr/bin/nasforge-controller usr/bin/nasforge-worker \
         usr/lib/systemd/system/nasforge-controller.service usr/lib/systemd/system/nasforge-worker@.service \
         usr/share/bash-completion/completions/nasforge \
         usr/share/nasforge/search_spaces/examples/fashion_mnist_quick.yaml \
         usr/share/nasforge/dashboards/prometheus.yml usr/lib/python3/dist-packages/nasforge/client.py \
         usr/lib/python3/dist-packages/nasforge/v1/nasforge_pb2.py; do
  [ -e "$ROOT/$f" ] || fail "installed file /$f"
done
grep -q "ExecStart=.*/usr/bin/nasforge-controller" "$ROOT/usr/lib/systemd/system/nasforge-controller.service" ||
  fail "the unit runs /usr/bin/nasforge-controller"
pass "files in their FHS places; units name /usr/bin"
"$ROOT/usr/bin/nasforge" --help > "$TMP/help.out" || fail "nasforge --help"
grep -q submit "$TMP/help.out" || fail "--help lists submit"
bash -n "$ROOT/usr/share/bash-completion/completions/nasforge" || fail "completion script is bash"
pass "nasforge --help; the completion script parses"

"$ROOT/usr/bin/nasforge-controller" --listen 127.0.0.1:0 --port-file "$TMP/port" \
  --store "sqlite://$TMP/nf.db" --metrics-listen "" > "$TMP/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || fail "packaged controller started"
ADDR=127.0.0.1:$(cat "$TMP/port")
"$ROOT/usr/bin/nasforge-worker" --controller "$ADDR" --worker-id deb-w1 --threads 1 \
  > "$TMP/worker.log" 2>&1 &
pids+=($!)
sed -e 's/max_trials: 12/max_trials: 1/' -e 's/epochs: 3/epochs: 1/' \
    -e 's/train_examples: 15000/train_examples: 500/' -e 's/validation_examples: 5000/validation_examples: 200/' \
    -e 's/test_examples: 10000/test_examples: 200/' -e 's/dataset: fashion-mnist/dataset: synthetic/' \
    "$ROOT/usr/share/nasforge/search_spaces/examples/fashion_mnist_quick.yaml" > "$TMP/job.yaml"
timeout 300 "$ROOT/usr/bin/nasforge" --controller "$ADDR" submit "$TMP/job.yaml" --watch \
  > "$TMP/submit.log" 2>&1 || fail "a tiny job through the packaged binaries"
job=$(head -1 "$TMP/submit.log" | awk '{print $1}')
pass "packaged controller + worker + CLI ran $job"
PYTHONPATH="$ROOT/usr/lib/python3/dist-packages" /usr/bin/python3 -c "
import nasforge, sys
c = nasforge.Client('$ADDR')
rows = c.candidates('$job', as_frame=False)
sys.exit(0 if len(rows) == 1 and rows[0]['state'] == 'SUCCEEDED' else 1)
" || fail "the packaged Python client reads the job"
pass "the packaged Python client reads the job's candidate"
ok=1
echo "0 failed"
