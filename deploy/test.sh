#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration against a
# real PostgreSQL on loopback, and end to end with real LibTorch workers on Fashion-MNIST).
# Usage: deploy/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
cd build
export OPENBLAS_NUM_THREADS=1
# Two cores: the LibTorch tests are CPU-bound, so run tests one at a time.
ctest --output-on-failure --timeout 1200 "$@"
