#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: unit, integration against a
# real PostgreSQL on loopback, end to end with real LibTorch workers on Fashion-MNIST, and the
# fault tests (label `fault`: kill -9, stopped/black-holed PostgreSQL, full disk, partitions);
# then the controller, core and store tests again under AddressSanitizer + UBSan and under
# ThreadSanitizer (clang, with -Wthread-safety as an error), and the fuzz targets for a minute each.
# Usage: deploy/test.sh [extra ctest args, e.g. -L unit]  (with args: the main build only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
export OPENBLAS_NUM_THREADS=1
# Two cores: the LibTorch tests are CPU-bound, so run tests one at a time.
ctest --test-dir build --output-on-failure --timeout 1200 "$@"
[ "$#" -gt 0 ] && exit 0

SAN_TESTS=(job_manager_test controller_parts_test ui_routes_test store_writer_test store_conformance_test rpc_integration_test strategies_test
           search_space_test spaces_test cost_test pareto_test jobspec_test early_stopping_test
           metrics_server_test http_server_test ui_view_test)
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake --preset asan >/dev/null
ninja -C build-asan "${SAN_TESTS[@]}"
regex="^($(IFS='|'; echo "${SAN_TESTS[*]}"))\$"
# Leak checking is off: Debian's gRPC and protobuf keep process-lifetime singletons.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 1200 -R "$regex"

# ThreadSanitizer: against an instrumented build of Debian's own Abseil (same version, patches and
# SONAMEs; deploy/tsan-abseil.sh), loaded first, so absl::Mutex ordering is visible to TSAN.
# rpc_integration_test is not among them: Debian's libgrpc is not instrumented, and its lock-free
# hand-offs between threads show as ~100 races inside gRPC's own objects per run; the manager
# and store under every RPC are covered here (job_manager_test drives all calls at once).
TSAN_TESTS=(job_manager_test controller_parts_test ui_routes_test store_writer_test store_conformance_test strategies_test
            early_stopping_test metrics_server_test http_server_test)
bash deploy/tsan-abseil.sh .tsan-absl
cmake --preset tsan >/dev/null
ninja -C build-tsan "${TSAN_TESTS[@]}"
regex="^($(IFS='|'; echo "${TSAN_TESTS[*]}"))\$"
LD_LIBRARY_PATH="$PWD/.tsan-absl/lib" \
  TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
  ctest --test-dir build-tsan --output-on-failure --timeout 1200 -R "$regex"

# Fuzzing: the libFuzzer targets (job specs, spaces and architectures, worker reports, RPC
# requests into the job manager), 60 s each from the committed corpus; crashes found earlier live
# in fuzz/corpus/*/crash-* and replay first.
bash deploy/fuzz.sh "${NASFORGE_FUZZ_SECONDS:-60}"
