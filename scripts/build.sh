#!/usr/bin/env bash
# Configures and builds svmkit the way the project checks it (Ninja,
# RelWithDebInfo, warnings as errors). Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSVMKIT_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j2
