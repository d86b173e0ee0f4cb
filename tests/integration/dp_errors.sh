#!/usr/bin/env bash
# Data-parallel configurations that cannot work end every rank with a
# clear message and a non-zero exit, never a hang (each run has 60 s):
# --dp other than the world size (with and without mpirun), a global
# batch that dp x micro-batches does not divide, a checkpoint that is not
# there, and a failure on rank 0 alone (its metrics file), which the other
# rank reports as such (expect: dp_common.sh).
source "$(dirname "$0")/dp_common.sh"
small=(--layers 1 --d-model 32 --d-ff 64 --seq 16 --steps 2 --val-batches 1 --sample 0)

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
