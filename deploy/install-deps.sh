#!/usr/bin/env bash
# Installs nasforge's build, test and run-time dependencies from Debian 12 packages.
# Idempotent: packages already present are skipped by apt. Needs root (or sudo).
#   install-deps.sh          everything: build, run, and the whole test suite
#   install-deps.sh --demo   only what building the three programs and running the demo need
#                            (deploy/demo.sh: the first command stays fast on a fresh machine)
#   install-deps.sh --list   print the package names, one a line, and change nothing (the
#                            external-programs test checks every program we call against them)
set -euo pipefail

# Configure and build every target (googletest: the default preset configures the tests too).
BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config ccache ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpqxx-dev libpq-dev libboost-dev libboost-system-dev
  libtorch-dev libopenblas0-pthread
  prometheus-cpp-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libeigen3-dev
  libabsl-dev googletest libgtest-dev libgmock-dev
  libcli11-dev libssl-dev openssl zlib1g-dev libcsv-dev
)
# The demo's data and the tools its script uses.
RUN_PKGS=(dataset-fashion-mnist procps)
# The test suite: real PostgreSQL and Prometheus, the sanitizer and fuzz builds (clang), the
# checks on our own files (iwyu, shfmt), packaging (cpack's DEB generator runs `file` and
# dpkg-shlibdeps, which minbase has neither of), network namespaces and firewalls for the fault
# tests, Python peers and clients, and a headless browser.
TEST_PKGS=(
  git postgresql postgresql-common prometheus
  curl sqlite3 iproute2 iptables file dpkg-dev
  clang libclang-rt-14-dev iwyu shfmt
  python3-yaml python3-torch python3-grpcio python3-protobuf python3-pandas
  chromium python3-websocket
)
PKGS=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}")
# kubectl for rendering the Kubernetes manifests (kubectl kustomize): Debian's kubernetes-client
# only where no kubectl exists (it conflicts with a newer one installed otherwise).
command -v kubectl >/dev/null || PKGS+=(kubernetes-client)

case "${1:-}" in
  --list) printf '%s\n' "${PKGS[@]}"; exit 0 ;;
  --demo) PKGS=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}") ;;
  "") ;;
  *) echo "usage: install-deps.sh [--demo|--list]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "level=info event=deps_ok msg=\"all ${#PKGS[@]} packages present\""
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "level=error event=deps_missing msg=\"run as root or install sudo\" missing=\"${missing[*]}\""; exit 1; }
  SUDO=sudo
fi
echo "level=info event=deps_install count=${#missing[@]} packages=\"${missing[*]}\""
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
