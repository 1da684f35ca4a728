#!/usr/bin/env bash
# Build the C++ example against the libtorch inside the installed torch wheel (headers and libraries).
# Usage: examples/cpp/build.sh [OUTPUT]   (default OUTPUT: examples/cpp/build/dislomob_velocities)
# TORCH_DIR (the torch package folder) defaults to the one the `python` on PATH imports; CXX defaults to g++.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build/dislomob_velocities}"
mkdir -p "$(dirname "$out")"
torch_dir="${TORCH_DIR:-$(python -c 'import os, torch; print(os.path.dirname(torch.__file__))')}"
abi="$(python -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)"
"${CXX:-g++}" -std=c++17 -O1 -D_GLIBCXX_USE_CXX11_ABI="$abi" "$here/main.cpp" -o "$out" \
  -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include" \
  -L "$torch_dir/lib" -Wl,-rpath,"$torch_dir/lib" -ltorch -ltorch_cpu -lc10
