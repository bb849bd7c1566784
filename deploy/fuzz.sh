#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan) and runs each for a bounded
# time, starting from its committed corpus in fuzz/corpus/NAME (new inputs go to a temporary
# directory, so the committed corpus stays small). Any crash is written to fuzz/corpus/NAME/ as
# crash-* and fails the run; commit it (after the fix) and every later run replays it.
# Usage: deploy/fuzz.sh [SECONDS per target, default 60] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jobspec space report rpc)
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake --preset fuzz >/dev/null
ninja -C build-fuzz "${targets[@]/%/_fuzzer}"
for t in "${targets[@]}"; do
  work="$(mktemp -d)"
  echo "level=info event=fuzz_start target=$t seconds=$secs corpus=fuzz/corpus/$t"
  # -rss_limit_mb and -timeout turn unbounded memory or time on one input into a failure.
  set +e
  ASAN_OPTIONS=detect_leaks=0 "build-fuzz/fuzz/${t}_fuzzer" -max_total_time="$secs" \
    -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="fuzz/corpus/$t/" "$work" "fuzz/corpus/$t" >"$work.log" 2>&1
  rc=$?
  set -e
  grep -E "stat::|==ERROR|SUMMARY|crash-|Done" "$work.log" || true
  [ "$rc" -eq 0 ] || grep -E "^ +#[0-9]+ .* in nasforge::" "$work.log" | head -5 || true
  rm -f "$work.log"
  rm -rf "$work"
  if [ "$rc" -ne 0 ]; then
    echo "level=error event=fuzz_failed target=$t rc=$rc msg=\"see fuzz/corpus/$t/crash-* or leak-*/timeout-*/oom-*\""
    exit 1
  fi
done
echo "level=info event=fuzz_ok targets=\"${targets[*]}\" seconds=$secs"
