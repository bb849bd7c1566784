#!/usr/bin/env bash
# Installs every build, test and run-time dependency of nasforge from Debian 12 packages.
# Idempotent: packages already present are skipped by apt. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpqxx-dev libpq-dev libboost-dev libboost-system-dev
  libtorch-dev libopenblas0-pthread
  prometheus-cpp-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libeigen3-dev
  libabsl-dev googletest libgtest-dev libgmock-dev
  postgresql postgresql-common prometheus
  dataset-fashion-mnist
  libcli11-dev libssl-dev openssl zlib1g-dev libcsv-dev procps curl sqlite3 iproute2 iptables
  clang libclang-rt-14-dev python3-yaml python3-torch
  python3-grpcio python3-protobuf python3-pandas
  chromium python3-websocket
)
# kubectl for rendering the Kubernetes manifests (kubectl kustomize): Debian's kubernetes-client
# only where no kubectl exists (it conflicts with a newer one installed otherwise).
command -v kubectl >/dev/null || PKGS+=(kubernetes-client)

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
