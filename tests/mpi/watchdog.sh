#!/usr/bin/env bash
# A rank that skips a collective under HS_COMM_TIMEOUT=5: the job must end
# with a non-zero exit within ~10 s, and the report must name the
# collective and the rank that did not arrive.
set -uo pipefail
mpiexec=$1 prog=$2
start=$(date +%s.%N)
out=$(HS_COMM_TIMEOUT=5 timeout 40 "$mpiexec" -n 4 "$prog" 2>&1)
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "$out"
echo "exit $rc after ${elapsed} s"
fail=0
[ "$rc" -ne 0 ] || { echo "FAIL: the job exited 0"; fail=1; }
[ "$rc" -ne 124 ] || { echo "FAIL: the job hung until timeout(1) killed it"; fail=1; }
(( $(echo "$elapsed < 15" | bc) )) || { echo "FAIL: took ${elapsed} s"; fail=1; }
grep -q "allreduce #1 on group world (size 4" <<<"$out" || { echo "FAIL: report does not name the collective"; fail=1; }
grep -q "ranks that have not arrived: 3 (world 3)" <<<"$out" || { echo "FAIL: report does not name rank 3"; fail=1; }
exit $fail
