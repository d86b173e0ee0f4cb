#!/usr/bin/env bash
# Data-parallel configurations that cannot work end every rank with a
# clear message and a non-zero exit, never a hang (each run has 60 s):
# --dp other than the world size (with and without mpirun), a global
# batch that dp x micro-batches does not divide, a checkpoint that is not
# there, and a failure on rank 0 alone (its metrics file), which the other
# rank reports as such. Under mpiexec each rank runs inside a shell that
# prints its exit status and exits 0, so that mpiexec does not kill the
# other ranks as soon as one has failed and every rank's own message and
# status can be counted.
source "$(dirname "$0")/dp_common.sh"
small=(--layers 1 --d-model 32 --d-ff 64 --seq 16 --steps 2 --val-batches 1 --sample 0)
passed=0

# expect RANKS EXIT TIMES "phrase" ARGS...: every rank exits with EXIT, the
# phrase is printed TIMES times (RANKS 0: one process without mpirun)
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

expect 2 2 2 "dp=3 x pp=1 = 3 does not equal the world size 2" "${small[@]}" --dp 3
expect 0 2 1 "dp=2 x pp=1 = 2 does not equal the world size 1" "${small[@]}" --dp 2
expect 2 2 1 "[rank 0] configuration: --dp=2 x --micro-batches=2 = 4 does not divide --batch=6" "${small[@]}" \
  --batch 6 --micro-batches 2
expect 2 2 1 "[rank 1] configuration: --dp=2 x --micro-batches=2 = 4 does not divide --batch=6" "${small[@]}" \
  --batch 6 --micro-batches 2
expect 2 2 2 "--dp=2 x --micro-batches=1 = 2 does not divide --batch=3" "${small[@]}" --batch 3
expect 2 2 2 "must be >= 0 (0: the world size)" "${small[@]}" --dp -1
expect 2 1 1 "[rank 0] metrics: cannot open $tmp/no/m.jsonl" "${small[@]}" --batch 2 --metrics "$tmp/no/m.jsonl"
expect 2 1 1 "[rank 1] stopping: another rank failed" "${small[@]}" --batch 2 --metrics "$tmp/no/m.jsonl"
expect 2 1 2 "$tmp/nonexistent" "${small[@]}" --batch 2 --resume "$tmp/nonexistent"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
