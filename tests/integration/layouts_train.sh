#!/usr/bin/env bash
# The trainer with tensor and pipeline parallelism beyond parity:
#   - the banner: the layout and one line per rank (coordinates, layers,
#     parameters, memory);
#   - the CPU step line of a pipeline: the measured bubble next to the
#     theory ((p-1)/m); its metrics record rank 0's forward and backward
#     time of every micro-batch;
#   - the NPU (TP2 x PP2): every rank writes its own trace; rank 0's shows
#     the TP all-reduces on the compute stream and the pipeline bubble as
#     idle slices, its step lines the simulated bubble, the summary the
#     pipeline line; estimate mode runs the same layout;
#   - checkpoints hold the whole model's tensors: a TP2 x PP2 run stopped
#     after step 4 resumes on TP2 x PP2 bit for bit, on one process and on
#     PP2 within 1e-5; one process's checkpoint resumes on TP2 within 1e-5;
#     a DP2 ZeRO-1 run's resumes under ZeRO-1 bit for bit, under ZeRO-0 and
#     on one process within 1e-5, and one process's under DP2 ZeRO-1;
#   - ZeRO-1 with the parameter gather overlapped changes no loss or norm;
#   - activation recompute (selective, full) under TP2 + SP x PP2 changes
#     no loss and no gradient norm;
#   - optimizer offload under DP2 with ZeRO-1 and under PP2 (bf16 compute),
#     and activation offload with it under PP2, change no loss and no
#     gradient norm;
#   - the text sample through the layout: TP2 x PP2 samples the text one
#     process samples (the same weights up to rounding, the same draws).
source "$(dirname "$0")/dp_common.sh"
common=(--model gpt2-tiny --layers 2 --d-model 64 --d-ff 128 --batch 8 --seq 32 --steps 3 --warmup 1
        --val-every 0 --val-batches 1 --sample 0)

"$mpiexec" -n 2 "$tg" "${common[@]}" --pp 2 --micro-batches 4 --metrics "$tmp/pp_cpu.jsonl" >"$tmp/pp.txt" 2>&1 ||
  fail "PP2: $(tail -3 "$tmp/pp.txt")"
[ "$(grep -cE '"bubble_theory":0.250000,"fwd_ms":\[[0-9.]+(,[0-9.]+){3}\],"bwd_ms":\[[0-9.]+(,[0-9.]+){3}\]' \
  "$tmp/pp_cpu.jsonl")" -eq 3 ] || fail "metrics without the per-micro-batch times: $(head -1 "$tmp/pp_cpu.jsonl")"
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

ck=(--model llama-tiny --layers 2 --d-model 64 --d-ff 128 --batch 4 --seq 32 --steps 8 --warmup 2 --val-every 0
    --val-batches 1 --sample 0 --micro-batches 2)
keep() { grep -o '"step":[0-9]*,"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1"; }
# close NAME A.jsonl B.jsonl: the last 4 steps' losses within 1e-5
close() {
  paste <(keep "$2" | tail -n 4 | grep -o '"loss":[^,]*' | cut -d: -f2) \
        <(keep "$3" | grep -o '"loss":[^,]*' | cut -d: -f2) |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= 1e-5 * $1)) bad = 1 } END { exit bad || NR != 4 }' ||
    fail "$1: the resumed losses leave 1e-5: $(paste <(keep "$2" | tail -n 4) <(keep "$3"))"
}
tp2pp2=(-n 4 "$tg" "${ck[@]}" --tp 2 --pp 2)
"$mpiexec" "${tp2pp2[@]}" --metrics "$tmp/full.jsonl" >/dev/null 2>&1 || fail "TP2 x PP2, 8 steps"
"$mpiexec" "${tp2pp2[@]}" --stop-after 4 --save "$tmp/ck" --metrics /dev/null >"$tmp/save.txt" 2>&1 ||
  fail "TP2 x PP2 save: $(tail -3 "$tmp/save.txt")"
grep -q "saved checkpoint to $tmp/ck at step 4" "$tmp/save.txt" || fail "no save line"
"$mpiexec" "${tp2pp2[@]}" --resume "$tmp/ck" --metrics "$tmp/again.jsonl" >/dev/null 2>&1 || fail "TP2 x PP2 resume"
diff <(keep "$tmp/full.jsonl" | tail -n 4) <(keep "$tmp/again.jsonl") >&2 || fail "TP2 x PP2 resumed differs"
"$tg" "${ck[@]}" --resume "$tmp/ck" --metrics "$tmp/one.jsonl" >/dev/null 2>&1 || fail "one process resuming TP2 x PP2"
close "1 process from TP2 x PP2" "$tmp/full.jsonl" "$tmp/one.jsonl"
"$mpiexec" -n 2 "$tg" "${ck[@]}" --pp 2 --resume "$tmp/ck" --metrics "$tmp/pp.jsonl" >/dev/null 2>&1 ||
  fail "PP2 resuming TP2 x PP2"
close "PP2 from TP2 x PP2" "$tmp/full.jsonl" "$tmp/pp.jsonl"
"$tg" "${ck[@]}" --metrics "$tmp/full1.jsonl" >/dev/null 2>&1 || fail "1 process, 8 steps"
"$tg" "${ck[@]}" --stop-after 4 --save "$tmp/ck1" --metrics /dev/null >/dev/null 2>&1 || fail "1 process save"
"$mpiexec" -n 2 "$tg" "${ck[@]}" --tp 2 --resume "$tmp/ck1" --metrics "$tmp/tp.jsonl" >/dev/null 2>&1 ||
  fail "TP2 resuming 1 process"
close "TP2 from 1 process" "$tmp/full1.jsonl" "$tmp/tp.jsonl"

# ZeRO-1 checkpoints hold the logical moments: DP2 with ZeRO-1 stopped after step 4 resumes under ZeRO-1 bit for
# bit, under ZeRO-0 and on one process within 1e-5; one process's checkpoint resumes under DP2 with ZeRO-1
z1=(-n 2 "$tg" "${ck[@]}" --zero 1)
"$mpiexec" "${z1[@]}" --metrics "$tmp/z1full.jsonl" >/dev/null 2>&1 || fail "DP2 ZeRO-1, 8 steps"
"$mpiexec" "${z1[@]}" --stop-after 4 --save "$tmp/ckz" --metrics /dev/null >"$tmp/savez.txt" 2>&1 ||
  fail "DP2 ZeRO-1 save: $(tail -3 "$tmp/savez.txt")"
"$mpiexec" "${z1[@]}" --resume "$tmp/ckz" --metrics "$tmp/z1again.jsonl" >/dev/null 2>&1 || fail "ZeRO-1 resume"
diff <(keep "$tmp/z1full.jsonl" | tail -n 4) <(keep "$tmp/z1again.jsonl") >&2 || fail "DP2 ZeRO-1 resumed differs"
"$mpiexec" -n 2 "$tg" "${ck[@]}" --resume "$tmp/ckz" --metrics "$tmp/z0.jsonl" >/dev/null 2>&1 ||
  fail "DP2 ZeRO-0 resuming ZeRO-1"
close "DP2 ZeRO-0 from DP2 ZeRO-1" "$tmp/z1full.jsonl" "$tmp/z0.jsonl"
"$tg" "${ck[@]}" --resume "$tmp/ckz" --metrics "$tmp/z1one.jsonl" >/dev/null 2>&1 || fail "1 process resuming ZeRO-1"
close "1 process from DP2 ZeRO-1" "$tmp/z1full.jsonl" "$tmp/z1one.jsonl"
"$mpiexec" "${z1[@]}" --resume "$tmp/ck1" --metrics "$tmp/z1from1.jsonl" >/dev/null 2>&1 ||
  fail "DP2 ZeRO-1 resuming 1 process"
close "DP2 ZeRO-1 from 1 process" "$tmp/full1.jsonl" "$tmp/z1from1.jsonl"

# activation offload through a pipeline: PP2 of 8 layers (4 a stage on a ring of 3 regions, 2 micro-batches in
# flight), with the optimizer offloaded too, reproduces the same layout bit for bit
ao=(-n 2 "$tg" "${ck[@]}" --steps 3 --layers 8 --pp 2)
"$mpiexec" "${ao[@]}" --metrics "$tmp/ao0.jsonl" >/dev/null 2>&1 || fail "PP2, 8 layers"
"$mpiexec" "${ao[@]}" --offload optimizer,activations --metrics "$tmp/ao1.jsonl" >"$tmp/ao1.txt" 2>&1 ||
  fail "PP2, activation offload: $(tail -3 "$tmp/ao1.txt")"
grep -q "^host offload: activations" "$tmp/ao1.txt" || fail "no activation-offload line"
diff <(keep "$tmp/ao0.jsonl") <(keep "$tmp/ao1.jsonl") >&2 || fail "activation offload changes the PP2 run"

# ZeRO-1's parameter gather under the next forward (--overlap-param-gather), bf16: the same run bit for bit
ov=(-n 2 "$tg" "${ck[@]}" --steps 3 --dtype bf16 --zero 1)
"$mpiexec" "${ov[@]}" --metrics "$tmp/ov0.jsonl" >/dev/null 2>&1 || fail "ZeRO-1, bf16"
"$mpiexec" "${ov[@]}" --overlap-param-gather --metrics "$tmp/ov1.jsonl" >"$tmp/ov1.txt" 2>&1 ||
  fail "ZeRO-1, overlapped gather: $(tail -3 "$tmp/ov1.txt")"
grep -q "parameters gathered under the next forward" "$tmp/ov1.txt" || fail "no overlapped-gather banner"
diff <(keep "$tmp/ov0.jsonl") <(keep "$tmp/ov1.jsonl") >&2 || fail "the overlapped gather changes the run"

# ... and in bf16, where ZeRO-1 shards the fp32 master too (the checkpoint gathers it): resumes bit for bit
zb=(-n 2 "$tg" "${ck[@]}" --zero 1 --dtype bf16)
"$mpiexec" "${zb[@]}" --metrics "$tmp/zbfull.jsonl" >/dev/null 2>&1 || fail "DP2 ZeRO-1 bf16, 8 steps"
"$mpiexec" "${zb[@]}" --stop-after 4 --save "$tmp/ckzb" --metrics /dev/null >/dev/null 2>&1 || fail "ZeRO-1 bf16 save"
"$mpiexec" "${zb[@]}" --resume "$tmp/ckzb" --metrics "$tmp/zbagain.jsonl" >/dev/null 2>&1 || fail "ZeRO-1 bf16 resume"
diff <(keep "$tmp/zbfull.jsonl" | tail -n 4) <(keep "$tmp/zbagain.jsonl") >&2 || fail "DP2 ZeRO-1 bf16 resumed differs"
# ... with the optimizer offloaded (the host master current in the rank's blocks, gathered for the checkpoint):
# the same run, and its checkpoint resumes it bit for bit
"$mpiexec" "${zb[@]}" --offload optimizer --stop-after 4 --save "$tmp/ckzo" --metrics /dev/null >/dev/null 2>&1 ||
  fail "ZeRO-1 bf16 offload save"
"$mpiexec" "${zb[@]}" --offload optimizer --resume "$tmp/ckzo" --metrics "$tmp/zoagain.jsonl" >/dev/null 2>&1 ||
  fail "ZeRO-1 bf16 offload resume"
diff <(keep "$tmp/zbfull.jsonl" | tail -n 4) <(keep "$tmp/zoagain.jsonl") >&2 || fail "ZeRO-1 bf16 offload resumed differs"

# activation recompute through a layout: TP2 + SP x PP2 (1F1B, 4 micro-batches, so several in flight share the
# recompute scratch) with full and selective recompute reproduce the same layout without it, bit for bit
rc=(-n 4 "$tg" "${ck[@]}" --steps 3 --micro-batches 4 --tp 2 --sequence-parallel --pp 2)
"$mpiexec" "${rc[@]}" --metrics "$tmp/rc_none.jsonl" >/dev/null 2>&1 || fail "TP2 + SP x PP2 without recompute"
for mode in selective full; do
  "$mpiexec" "${rc[@]}" --recompute $mode --metrics "$tmp/rc_$mode.jsonl" >"$tmp/rc_$mode.txt" 2>&1 ||
    fail "TP2 + SP x PP2, recompute $mode: $(tail -3 "$tmp/rc_$mode.txt")"
  grep -q "^activation recompute: $mode" "$tmp/rc_$mode.txt" || fail "no recompute line ($mode)"
  [ "$(keep "$tmp/rc_$mode.jsonl" | wc -l)" -eq 3 ] || fail "recompute $mode: not 3 steps"
  diff <(keep "$tmp/rc_none.jsonl") <(keep "$tmp/rc_$mode.jsonl") >&2 || fail "recompute $mode changes the run"
done

# optimizer offload through a layout: DP2 with ZeRO-1 (the host AdamW over the rank's shard, the fp32 master
# all-gathered on the host) and PP2, in bf16, reproduce the same layout without offload, bit for bit
for lay in "--zero 1" "--pp 2"; do
  off=(-n 2 "$tg" "${ck[@]}" --steps 3 --dtype bf16 $lay)
  "$mpiexec" "${off[@]}" --metrics "$tmp/off0.jsonl" >/dev/null 2>&1 || fail "$lay without offload"
  "$mpiexec" "${off[@]}" --offload optimizer --metrics "$tmp/off1.jsonl" >"$tmp/off1.txt" 2>&1 ||
    fail "$lay, offload: $(tail -3 "$tmp/off1.txt")"
  grep -q "^host offload: optimizer" "$tmp/off1.txt" || fail "no offload line ($lay)"
  [ "$(keep "$tmp/off1.jsonl" | wc -l)" -eq 3 ] || fail "offload $lay: not 3 steps"
  diff <(keep "$tmp/off0.jsonl") <(keep "$tmp/off1.jsonl") >&2 || fail "offload changes the $lay run"
done

gen=(--model gpt2-tiny --layers 2 --d-model 64 --d-ff 128 --batch 4 --seq 32 --steps 30 --val-every 0
     --val-batches 1 --sample 60)
sample_of() { sed -n '/^---- sample ----$/,/^----------------$/p' "$1"; }
"$tg" "${gen[@]}" >"$tmp/gen1.txt" 2>&1 || fail "1 process sample"
"$mpiexec" -n 4 "$tg" "${gen[@]}" --tp 2 --pp 2 --micro-batches 2 >"$tmp/gen4.txt" 2>&1 || fail "TP2 x PP2 sample"
[ "$(sample_of "$tmp/gen1.txt" | wc -l)" -ge 3 ] || fail "no sample from 1 process"
diff <(sample_of "$tmp/gen1.txt") <(sample_of "$tmp/gen4.txt") >&2 || fail "TP2 x PP2 samples another text"

if [ "$failed" -ne 0 ]; then
  cat "$tmp/npu.txt" >&2
  exit 1
fi
echo "layouts_train: banner, bubbles (CPU, NPU), per-rank traces with TP all-reduces and bubbles, estimate mode, checkpoints across layouts, recompute, offload, sampling"
