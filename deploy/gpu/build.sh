#!/usr/bin/env bash
# Builds the nasforge worker (and, unless --worker-only, the controller and CLI with the SQLite
# store) against a CUDA LibTorch on a GPU machine that has pip torch, a compiler and CMake but no
# gRPC, abseil & co: those come from a prefix made on Debian 12 by
# shared/tools/gpu-grpc-prefix.sh --worker-deps --tar prefix.tar.gz DIR (docs/operations.md: GPU workers).
#   deploy/gpu/build.sh PREFIX.tar.gz BUILD_DIR [--worker-only] [--extra TARBALL ...]
# --extra: more tarballs of usr/... unpacked into the same prefix (CLI11 for the CLI).
# Prints the prefix and build directory; binaries in BUILD_DIR/{worker,controller,cli,bench}.
set -euo pipefail
tarball=${1:?PREFIX.tar.gz}; build=${2:?BUILD_DIR}; shift 2
worker_only=OFF; extras=()
while [ $# -gt 0 ]; do
  case $1 in
    --worker-only) worker_only=ON ;;
    --extra) extras+=("$2"); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
src=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d /tmp/nasforge-prefix.XXXXXX)
tar -xzf "$tarball" -C "$root"
P=$(dirname "$(find "$root" -maxdepth 3 -type d -name usr | head -1)")
for e in "${extras[@]}"; do tar -xzf "$e" -C "$P"; done
PY=${PYTHON:-python3}
TORCH_CMAKE=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
echo "level=info event=gpu_build prefix=$P torch=$("$PY" -c 'import torch; print(torch.__version__)') worker_only=$worker_only"
cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$P/usr;$TORCH_CMAKE" \
  -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
  -DNASFORGE_WORKER_ONLY=$worker_only -DNASFORGE_WITH_POSTGRES=OFF -DNASFORGE_BUILD_TESTS=OFF
targets=(nasforge-worker latency_bench train_bench)
[ "$worker_only" = OFF ] && targets+=(nasforge-controller nasforge)
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
echo "level=info event=gpu_build_done build=$build targets=\"${targets[*]}\""
