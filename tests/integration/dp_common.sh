# Sourced by the parallel-training test scripts (dp_*.sh, layouts_*.sh
# BUILD MPIEXEC): the trainer, a scratch directory with its own corpus
# cache, fail(), and the parity and failure checks they share.
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

# values NAME FILE: the NAME field of each record of a metrics file
values() { grep -o "\"$1\":[^,}]*" "$2" | cut -d: -f2; }

# compare WHAT ONE.jsonl MANY.jsonl FIELDS [TOL] [STEPS]: each step's fields
# (STEPS records, default 10; val_loss: 1) agree within TOL relative
# (default 1e-5)
compare() {
  local what=$1 one=$2 many=$3 tol=${5:-1e-5} steps=${6:-10}
  for f in $4; do
    paste <(values $f "$one") <(values $f "$many") >"$tmp/pairs"
    [ "$(wc -l <"$tmp/pairs")" -eq "$([ $f = val_loss ] && echo 1 || echo "$steps")" ] ||
      { fail "$what: $f records: $(cat "$tmp/pairs")"; continue; }
    awk -v what="$what $f" -v tol="$tol" '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= tol * $1)) { print what " record " NR ": 1 rank " $1 ", layout " $2; bad = 1 } }
         END { exit bad }' "$tmp/pairs" >&2 || fail "$what: $f differs"
  done
}

# expect RANKS EXIT TIMES "phrase" ARGS...: every rank exits with EXIT and
# the phrase is printed TIMES times, within 60 s (RANKS 0: one process
# without mpirun). Under mpiexec each rank runs inside a shell that prints
# its exit status and exits 0, so that mpiexec does not kill the other
# ranks as soon as one has failed and every rank's own message and status
# can be counted.
passed=0
expect() {
  local np=$1 want=$2 times=$3 phrase=$4
  shift 4
  local out statuses
  if [ "$np" -eq 0 ]; then
    out=$(timeout 60 "$tg" "$@" 2>&1 >/dev/null)
    statuses="exit status $?"
    np=1
  else
    out=$(timeout 60 "$mpiexec" -n "$np" sh -c '"$0" "$@"; echo "exit status $?" >&2' "$tg" "$@" 2>&1 >/dev/null)
    statuses=$(grep '^exit status' <<<"$out")
  fi
  local n ok
  n=$(grep -cF -- "$phrase" <<<"$out")
  ok=$(grep -cx "exit status $want" <<<"$statuses")
  if [ "$ok" -eq "$np" ] && [ "$n" -eq "$times" ]; then
    passed=$((passed + 1))
  else
    echo "FAIL: ($np ranks) train_gpt $* -> $ok of $np ranks exit $want, '$phrase' printed $n times: $out" >&2
    failed=$((failed + 1))
  fi
}
