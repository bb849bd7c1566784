#!/usr/bin/env bash
# Builds Debian's own Abseil (the source package of the installed libabsl-dev, same version and
# Debian patches, so the same ABI and SONAMEs) with ThreadSanitizer into DIR (default
# .tsan-absl), for the tsan preset's tests: run them with LD_LIBRARY_PATH=DIR/lib.
#
# Why: Debian's libabsl is not instrumented, so ThreadSanitizer cannot see absl::Mutex or
# absl::Notification order memory, and reports every access they guard as a race (10,221 false
# reports on the controller tests). With the instrumented build loaded first, the process (gRPC's
# own absl use included) synchronises through code TSAN sees.
#
# Fetches the source with apt-get from the machine's own Debian mirror (a private deb-src list;
# the system's apt configuration is not changed). Idempotent: a build of the same version is kept.
# Usage: deploy/tsan-abseil.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(realpath -m "${1:-.tsan-absl}")"
version="$(dpkg-query -W -f='${Version}' libabsl-dev)"
if [ -f "$DIR/.version" ] && [ "$(cat "$DIR/.version")" = "$version" ]; then
  echo "level=info event=tsan_absl_ok dir=$DIR version=$version"
  exit 0
fi

# The mirror the system installs from (deb822 .sources or a one-line sources.list).
mirror="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security |
          head -1 | awk '{print $2}' || true)"
if [ -z "$mirror" ]; then
  mirror="$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -1 |
            awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/parts" "$work/cache/archives/partial"
echo "deb-src $mirror $suite main" > "$work/sources.list"
APT=(apt-get -q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts"
     -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User="$(id -un)")
echo "level=info event=tsan_absl_fetch mirror=$mirror suite=$suite version=$version"
"${APT[@]}" update >/dev/null
(cd "$work" && "${APT[@]}" source "abseil=$version" >/dev/null)
src="$(find "$work" -maxdepth 1 -type d -name 'abseil-*' | head -1)"
[ -d "$src" ] || { echo "level=error event=tsan_absl_fetch msg=\"no abseil source unpacked\""; exit 1; }

echo "level=info event=tsan_absl_build dir=$DIR msg=\"about 1-2 min on 2 cores\""
rm -rf "$DIR"
# Debian builds it without a build type (-O2 -g, NDEBUG unset), C++17.
CC=clang CXX=clang++ cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_CXX_STANDARD=17 \
  -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF -DABSL_PROPAGATE_CXX_STD=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1 -g" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_INSTALL_PREFIX="$DIR" -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
ninja -C "$work/build" install >/dev/null
echo "$version" > "$DIR/.version"
echo "level=info event=tsan_absl_built dir=$DIR libs=$(ls "$DIR"/lib/*.so | wc -l)"
