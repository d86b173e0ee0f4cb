# Sourced by the data-parallel test scripts (dp_*.sh BUILD MPIEXEC): the
# trainer, a scratch directory with its own corpus cache, and fail().
set -uo pipefail
build=$1 mpiexec=$2
tg="$build/examples/train_gpt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HS_CACHE_DIR="$tmp/cache"
failed=0

fail() {
  echo "FAIL: $*" >&2
  failed=1
}
