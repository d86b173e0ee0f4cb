#!/usr/bin/env bash
# The trainer with tensor and pipeline parallelism beyond parity:
#   - the banner: the layout and one line per rank (coordinates, layers,
#     parameters, memory);
#   - the CPU step line of a pipeline: the measured bubble next to the
#     theory ((p-1)/m);
#   - the NPU (TP2 x PP2): every rank writes its own trace; rank 0's shows
#     the TP all-reduces on the compute stream and the pipeline bubble as
#     idle slices, its step lines the simulated bubble, the summary the
#     pipeline line; estimate mode runs the same layout.
source "$(dirname "$0")/dp_common.sh"
common=(--model gpt2-tiny --layers 2 --d-model 64 --d-ff 128 --batch 8 --seq 32 --steps 3 --warmup 1
        --val-every 0 --val-batches 1 --sample 0)

"$mpiexec" -n 2 "$tg" "${common[@]}" --pp 2 --micro-batches 4 >"$tmp/pp.txt" 2>&1 || fail "PP2: $(tail -3 "$tmp/pp.txt")"
grep -q "^layout: tp 1 x dp 1 x pp 2 | schedule 1f1b, 1 virtual stages, 4 micro-batches, bubble theory 0.250" \
  "$tmp/pp.txt" || fail "no layout line"
grep -qE "^  rank 1 \(tp 0, dp 0, pp 1\): layers 1..1 in 1 chunk\(s\), [0-9]+ parameters, [0-9.]+ MiB" "$tmp/pp.txt" ||
  fail "no line for rank 1"
[ "$(grep -cE '^step +[0-9]/3 .* [|] bubble [0-9.]+ \(theory 0.250\)$' "$tmp/pp.txt")" -eq 3 ] ||
  fail "CPU step lines without the bubble"

npu=(--device npu --npu-preset test --tp 2 --pp 2 --micro-batches 4)
"$mpiexec" -n 4 "$tg" "${common[@]}" "${npu[@]}" --trace "$tmp/t.json" >"$tmp/npu.txt" 2>&1 ||
  fail "NPU TP2 x PP2: $(tail -3 "$tmp/npu.txt")"
[ "$(grep -cE '^step +[0-9]/3 .* sim bubble [0-9.]+ \(theory 0.250\)$' "$tmp/npu.txt")" -eq 3 ] ||
  fail "NPU step lines without the simulated bubble"
grep -qE "^pipeline: 2 stages, 1f1b, 4 micro-batches [|] simulated bubble of rank 0 [0-9.]+" "$tmp/npu.txt" ||
  fail "no pipeline line in the summary"
for r in 1 2 3; do [ -s "$tmp/t.json.rank$r.json" ] || fail "no trace of rank $r"; done
python3 - "$tmp/t.json" <<'PY' || fail "rank 0's trace shows no TP all-reduces or no bubble"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"] if isinstance(d, dict) else d
tp = [e for e in ev if e.get("cat") == "comm" and e.get("name") == "allreduce tp"]
bubble = [e for e in ev if e.get("cat") == "idle" and e.get("name", "").startswith("bubble")]
print(f"{len(tp)} TP all-reduces, {len(bubble)} bubble slices ({sum(e['dur'] for e in bubble):.1f} us)")
sys.exit(0 if tp and bubble and all(e["dur"] > 0 for e in bubble) else 1)
PY
"$mpiexec" -n 4 "$tg" "${common[@]}" "${npu[@]}" --npu-mode estimate >"$tmp/est.txt" 2>&1 ||
  fail "NPU estimate: $(tail -3 "$tmp/est.txt")"
grep -qE '^step +3/3 [|] loss - .* sim bubble' "$tmp/est.txt" || fail "estimate mode step lines"

if [ "$failed" -ne 0 ]; then
  cat "$tmp/npu.txt" >&2
  exit 1
fi
echo "layouts_train: banner, bubbles (CPU, NPU), per-rank traces with TP all-reduces and bubbles, estimate mode"
