#!/usr/bin/env bash
# `cmake --install` gives a tree an outside project can use: examples/ is
# built against it once with pkg-config (examples/Makefile) and once with
# find_package(hyperspeed) (examples/CMakeLists.txt as a top-level
# project), and the programs run.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name hyperspeed.pc | head -n 1)")
libdir=$(dirname "$pc")
export PKG_CONFIG_PATH="$pc" LD_LIBRARY_PATH="$libdir" HS_CACHE_DIR="$tmp/cache"
run=(--layers 1 --d-model 32 --d-ff 64 --batch 2 --seq 16 --steps 2 --val-batches 1 --sample 16)

make -s -C "$src/examples" OUT="$tmp/pc" >/dev/null
out=$("$tmp/pc/train_gpt" "${run[@]}")
grep -q "final validation loss" <<<"$out"

cmake -S "$src/examples" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm" >/dev/null
out=$("$tmp/cm/train_gpt" "${run[@]}")
grep -q "final validation loss" <<<"$out"
echo "install: examples built with pkg-config and with find_package, and ran"
