#!/usr/bin/env bash
# The data-parallel trainer beyond parity:
#   - checkpoints: a 2-rank run stopped after step 4 (rank 0 writes) and
#     resumed on 2 ranks (both read) repeats the uninterrupted run's steps
#     5..8 bit for bit; resumed by one process, within 1e-5;
#   - --verbose prints the grid;
#   - the NPU: each step prints the simulated all-reduce and exposed
#     communication time, the summary the share overlapped, and the
#     --trace shows the comm stream's all-reduces running during backward
#     kernels on the compute stream; estimate mode runs too.
source "$(dirname "$0")/dp_common.sh"
common=(--model gpt2-tiny --layers 2 --d-model 64 --d-ff 128 --batch 4 --seq 32 --steps 8 --warmup 2
        --val-every 0 --val-batches 2 --sample 0)
dp() { "$mpiexec" -n 2 "$tg" "$@" --dp 2; }
keep() { grep -o '"step":[0-9]*,"\(loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*\|val_loss":[^}]*\)' "$1"; }

dp "${common[@]}" --metrics "$tmp/full.jsonl" --verbose >"$tmp/full.txt" 2>"$tmp/full.err" || fail "full run"
grep -q "dp    groups (1 of size 2): \[0 1\]" "$tmp/full.txt" "$tmp/full.err" || fail "--verbose printed no grid"
dp "${common[@]}" --stop-after 4 --save "$tmp/half" --metrics /dev/null >"$tmp/half.txt" 2>&1 || fail "save"
grep -q "saved checkpoint to $tmp/half at step 4" "$tmp/half.txt" || fail "no save line: $(cat "$tmp/half.txt")"
dp "${common[@]}" --resume "$tmp/half" --metrics "$tmp/resumed.jsonl" >/dev/null 2>&1 || fail "resume on 2 ranks"
diff <(keep "$tmp/full.jsonl" | tail -n 5) <(keep "$tmp/resumed.jsonl") >&2 || fail "the resumed 2-rank run differs"
"$tg" "${common[@]}" --resume "$tmp/half" --metrics "$tmp/one.jsonl" >/dev/null 2>&1 || fail "resume on 1 rank"
paste <(keep "$tmp/full.jsonl" | tail -n 5 | grep -o '"\(val_\)*loss":[^,}]*' | cut -d: -f2) \
      <(keep "$tmp/one.jsonl" | grep -o '"\(val_\)*loss":[^,}]*' | cut -d: -f2) |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= 1e-5 * $1)) bad = 1 } END { exit bad || NR != 5 }' ||
  fail "one process resuming the 2-rank checkpoint leaves 1e-5"

npu=(--device npu --npu-preset test --bucket-mb 0.05)
dp "${common[@]}" "${npu[@]}" --steps 3 --trace "$tmp/trace.json" >"$tmp/npu.txt" 2>&1 || fail "NPU run: $(tail -3 "$tmp/npu.txt")"
[ "$(grep -cE '^step +[0-9]+/3 .*[|] sim comm [0-9.]+ ms, exposed [0-9.]+ ms$' "$tmp/npu.txt")" -eq 3 ] ||
  fail "NPU step lines without the communication times"
grep -qE "^data parallel: 2 NPUs, [0-9]+ gradient buckets .* exposed [0-9.]+ ms \([0-9.]+% overlapped" "$tmp/npu.txt" ||
  fail "no data-parallel line in the NPU summary"
python3 - "$tmp/trace.json" <<'PY' || fail "the trace shows no all-reduce overlapping the backward"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"] if isinstance(d, dict) else d
comm = [e for e in ev if e.get("cat") == "comm" and e.get("name", "").startswith("allreduce")]
bwd = [e for e in ev if e.get("cat") == "kernel" and "bwd" in e.get("name", "")]
over = sum(1 for c in comm if any(k["tid"] != c["tid"] and k["ts"] < c["ts"] + c["dur"] and c["ts"] < k["ts"] + k["dur"]
                                  for k in bwd))
print(f"{len(comm)} all-reduces on the comm stream, {over} overlapping backward kernels")
sys.exit(0 if comm and over >= len(comm) // 2 else 1)
PY
dp "${common[@]}" "${npu[@]}" --steps 2 --npu-mode estimate >"$tmp/est.txt" 2>&1 || fail "NPU estimate run: $(tail -3 "$tmp/est.txt")"
grep -qE '^step +2/2 [|] loss - .* sim comm [0-9.]+ ms' "$tmp/est.txt" || fail "estimate mode step lines"

if [ "$failed" -ne 0 ]; then
  cat "$tmp/npu.txt" >&2
  exit 1
fi
echo "dp_train: 2-rank checkpoints resume exactly, the grid prints, the NPU comm stream overlaps the backward"
