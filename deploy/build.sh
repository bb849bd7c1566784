#!/usr/bin/env bash
# Installs what is missing (Debian packages) and builds nasforge with CMake + ninja into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake --preset default >/dev/null
# 2 cores, ~1.5 GB per LibTorch translation unit: ninja's default parallelism is fine.
ninja -C build "$@"
