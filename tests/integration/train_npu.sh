#!/usr/bin/env bash
# The trainer on the simulated NPU ("test" preset):
#   - execute mode: every step prints a loss, wall ms, simulated ms,
#     simulated MFU and the HBM peak; the loss curve follows the CPU fp32
#     run within the bf16 tolerance (1 % per step, docs/model.md); the end
#     summary lists the top kernels from the --trace file, which hs-npu prof
#     reads back;
#   - estimate mode: the same steps with "-" for the values, the same
#     simulated step time (within 0.1 %) and HBM peak;
#   - a checkpoint saved on the NPU resumes bit for bit;
#   - the host's instruction level (HS_CPU_ISA=avx2, baseline) changes no
#     bit of the NPU run;
#   - bad NPU flags end with a clear message and exit 2;
#   - llama2-7b on the 910B2 in estimate mode does not fit HBM and prints
#     where the memory would go (weights, gradients, optimizer state,
#     activations, workspace), as the memory plan counts it before anything
#     is allocated; hs-npu memory prints the same plan per rank with a
#     verdict, and refuses bad flags with exit 2.
set -uo pipefail
build=$1
tg="$build/examples/train_gpt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HS_CACHE_DIR="$tmp/cache"
common=(--model gpt2-tiny --layers 2 --d-model 64 --d-ff 128 --batch 4 --seq 32 --steps 6 --warmup 2 --lr 3e-3
        --val-every 0 --val-batches 1 --sample 0)
npu=(--device npu --npu-preset test)
failed=0

fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# expect EXIT_CODE "phrase in stderr" ARGS...
expect() {
  local want=$1 phrase=$2
  shift 2
  local out rc
  out=$("$tg" "$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qF -- "$phrase" <<<"$out"; then
    fail "train_gpt $* -> exit $rc (want $want), stderr: $out (want '$phrase')"
  fi
}

"$tg" "${common[@]}" >"$tmp/cpu.txt" || fail "CPU run"
"$tg" "${common[@]}" "${npu[@]}" --npu-mode execute --dtype bf16 --trace "$tmp/trace.json" \
  --metrics "$tmp/exec.jsonl" >"$tmp/exec.txt" || fail "NPU execute run"
"$tg" "${common[@]}" "${npu[@]}" --npu-mode estimate >"$tmp/est.txt" || fail "NPU estimate run"

# step lines: "step N/6 | loss L | ... | wall W ms | sim S ms | sim MFU M% | HBM peak H MiB"
field() { # FILE NAME: the value after "| NAME" on each step line
  grep -E '^step +[0-9]+/[0-9]+ [|]' "$1" | grep -oE "[|] $2 +[0-9.-]+" | awk '{ print $NF }'
}
[ "$(field "$tmp/exec.txt" loss | wc -l)" -eq 6 ] || fail "execute mode printed $(field "$tmp/exec.txt" loss | wc -l) steps"
for f in wall sim; do
  [ "$(field "$tmp/exec.txt" $f | awk '$1 > 0' | wc -l)" -eq 6 ] || fail "execute mode: a step without a positive $f time"
done
grep -q "sim MFU .*% | HBM peak .* MiB$" "$tmp/exec.txt" || fail "execute mode: no simulated MFU / HBM peak"

# the loss curve follows the CPU's
paste <(field "$tmp/cpu.txt" loss) <(field "$tmp/exec.txt" loss) >"$tmp/losses"
awk '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= 0.01 * $1)) { print "step " NR ": cpu " $1 " npu " $2; bad = 1 } }
     END { exit bad }' "$tmp/losses" || fail "the NPU loss curve leaves the bf16 tolerance of the CPU's"

# estimate mode: no values, the same simulated time and memory
[ "$(field "$tmp/est.txt" loss | sort -u)" = "-" ] || fail "estimate mode printed loss values"
paste <(field "$tmp/exec.txt" sim) <(field "$tmp/est.txt" sim) |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= 1e-3 * $1)) bad = 1 } END { exit bad }' ||
  fail "estimate mode's simulated step time differs from execute mode's"
[ "$(grep -o 'HBM peak [0-9.]* MiB of' "$tmp/exec.txt")" = "$(grep -o 'HBM peak [0-9.]* MiB of' "$tmp/est.txt")" ] ||
  fail "estimate mode's HBM peak differs from execute mode's"

# the summary and the trace
grep -q "^simulated step time .* ms (mean of 6 steps) | simulated MFU" "$tmp/exec.txt" || fail "no summary"
grep -q "^  matmul " "$tmp/exec.txt" || fail "no matmul among the top kernels"
"$build/hs-npu" prof "$tmp/trace.json" | grep -q "^adamw " || fail "hs-npu prof cannot read the trace"
grep -q '"sim_ms":' "$tmp/exec.jsonl" || fail "no sim_ms in the metrics"

# checkpoints on the NPU: stopped after step 3 and resumed, steps 4..6 are the same bits
"$tg" "${common[@]}" "${npu[@]}" --metrics "$tmp/full.jsonl" >/dev/null || fail "NPU full run"
"$tg" "${common[@]}" "${npu[@]}" --stop-after 3 --save "$tmp/half" --metrics /dev/null >/dev/null || fail "NPU save"
"$tg" "${common[@]}" "${npu[@]}" --resume "$tmp/half" --metrics "$tmp/resumed.jsonl" >/dev/null || fail "NPU resume"
keep() { grep -o '"step":[0-9]*,"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1"; }
diff <(keep "$tmp/full.jsonl" | tail -n 3) <(keep "$tmp/resumed.jsonl") >&2 || fail "the resumed NPU run differs"

# every instruction level of the host computes the same NPU results, bit for bit (the simulator's bodies
# are compiled without FMA contraction; the 16-bit conversions round identically on every level)
for lvl in avx2 baseline; do
  HS_CPU_ISA=$lvl "$tg" "${common[@]}" "${npu[@]}" --metrics "$tmp/$lvl.jsonl" >/dev/null || fail "NPU run at $lvl"
  diff <(keep "$tmp/full.jsonl") <(keep "$tmp/$lvl.jsonl") >&2 || fail "the NPU run at HS_CPU_ISA=$lvl differs"
done

expect 2 "the cube takes fp16/bf16: use --dtype bf16" "${common[@]}" "${npu[@]}" --dtype fp32
expect 2 "unknown NPU preset 'B910'" "${common[@]}" --device npu --npu-preset B910
expect 2 "unknown --npu-mode 'fast'" "${common[@]}" "${npu[@]}" --npu-mode fast
expect 2 "unknown dtype" "${common[@]}" "${npu[@]}" --dtype fp8
expect 2 "--trace records the NPU's simulated time" "${common[@]}" --trace "$tmp/t.json"
expect 2 "--npu-mode estimate has none" "${common[@]}" "${npu[@]}" --npu-mode estimate --save "$tmp/x"
expect 1 "HBM out of memory" "${common[@]}" "${npu[@]}" --d-model 512 --d-ff 2048 --layers 8

# a model far beyond HBM, in estimate mode: where the memory would go
"$tg" --model llama2-7b --batch 1 --seq 4096 --device npu --npu-preset 910B2 --npu-mode estimate --sample 0 \
  >"$tmp/7b.txt" 2>"$tmp/7b.err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "HBM out of memory" "$tmp/7b.err" || fail "llama2-7b on the 910B2: exit $rc, $(cat "$tmp/7b.err")"
for part in weights gradients "optimizer state" activations workspace total; do
  grep -qE "^  $part +[0-9.]+ GiB" "$tmp/7b.txt" || fail "llama2-7b breakdown without '$part': $(cat "$tmp/7b.txt")"
done
grep -q "(6738415616 parameters)" "$tmp/7b.txt" || fail "llama2-7b breakdown: wrong parameter count"
# ... and with the optimizer offloaded to the host and full recompute it fits, and the estimate said so: one step
"$tg" --model llama2-7b --batch 1 --seq 4096 --device npu --npu-preset 910B2 --npu-mode estimate --sample 0 \
  --steps 1 --val-batches 1 --offload optimizer --recompute full >"$tmp/7bo.txt" 2>&1 ||
  fail "llama2-7b, offload optimizer + recompute full: $(tail -5 "$tmp/7bo.txt")"
grep -q "^memory plan: 42.91 GiB of the 910B2's 64.00 GiB HBM" "$tmp/7bo.txt" &&
  grep -q "^host offload pool: 100.41 GiB" "$tmp/7bo.txt" && grep -qE "^step +1/1 .*HBM peak 4393[0-9.]+ MiB" "$tmp/7bo.txt" ||
  fail "llama2-7b, offload: plan, pool or peak: $(cat "$tmp/7bo.txt")"

# hs-npu memory: the same plan before any run (rows of equal ranks, a verdict), and its bad flags
hm="$build/hs-npu"
"$hm" memory --model llama2-7b --seq 4096 >"$tmp/m1.txt" 2>&1 || fail "hs-npu memory: $(cat "$tmp/m1.txt")"
grep -qE '^0 +6738415616 +37.65 +25.10 +50.21 +30.08 +0.24 +0.00 +143.29 +224% +0.00$' "$tmp/m1.txt" ||
  fail "hs-npu memory llama2-7b row: $(cat "$tmp/m1.txt")"
grep -q "^verdict: does not fit: rank 0 needs 143.29 GiB of 64.00 GiB" "$tmp/m1.txt" || fail "hs-npu memory verdict"
"$hm" memory --model llama2-7b --seq 4096 --offload optimizer --recompute full >"$tmp/mo.txt" 2>&1 ||
  fail "hs-npu memory, offload: $(cat "$tmp/mo.txt")"
grep -qE '^0 +6738415616 +13.04 +25.10 +0.00 +4.52 +0.24 +0.00 +42.91 +67% +100.41$' "$tmp/mo.txt" &&
  grep -q "^verdict: fits: the fullest rank (0) needs 42.91 GiB" "$tmp/mo.txt" ||
  fail "hs-npu memory llama2-7b with offload: $(cat "$tmp/mo.txt")"
# the activations offloaded instead of recomputed: 4.30 GiB of them on the device, but the host share is too small
"$hm" memory --model llama2-7b --seq 4096 --offload optimizer,activations >"$tmp/ma.txt" 2>&1 ||
  fail "hs-npu memory, activation offload: $(cat "$tmp/ma.txt")"
grep -qE '^0 +6738415616 +13.04 +25.10 +0.00 +4.30 ' "$tmp/ma.txt" &&
  grep -q "^verdict: does not fit: rank 0's host pool needs 128.87 GiB of the 128.00 GiB host share" "$tmp/ma.txt" ||
  fail "hs-npu memory llama2-7b with activation offload: $(cat "$tmp/ma.txt")"
"$hm" memory --model llama2-7b --seq 4096 --npus 8 --tp 2 --pp 2 --zero 1 --micro-batches 8 \
  --recompute selective >"$tmp/m8.txt" 2>&1 || fail "hs-npu memory, 8 NPUs: $(cat "$tmp/m8.txt")"
grep -qE '^0-3 ' "$tmp/m8.txt" && grep -qE '^4-7 ' "$tmp/m8.txt" && grep -q '^verdict: fits' "$tmp/m8.txt" ||
  fail "hs-npu memory, 8 NPUs: $(cat "$tmp/m8.txt")"
mem_bad() { # mem_bad "phrase" ARGS...: exit 2 with the phrase
  local phrase=$1 out rc
  shift
  out=$("$hm" memory "$@" 2>&1)
  rc=$?
  [ "$rc" -eq 2 ] && grep -qF -- "$phrase" <<<"$out" || fail "hs-npu memory $* -> exit $rc: $out (want '$phrase')"
}
mem_bad "--dp=3 x --tp=1 x --pp=1 does not make --npus=2" --npus 2 --dp 3
mem_bad "zero=4" --npus 2 --zero 4
mem_bad "unknown recompute mode 'most'" --recompute most
mem_bad "recompute_layers=13: the chunk has 12 layers" --recompute full --recompute-layers 13
mem_bad "tp=2 x pp=1 does not divide the world of 3" --npus 3 --tp 2
mem_bad "gpt9" --model gpt9
mem_bad "unknown offload item 'disk'" --offload disk
mem_bad "offload of activations with recompute full" --offload activations --recompute full
mem_bad "needs zero=3" --offload params

if [ "$failed" -ne 0 ]; then
  echo "--- execute run ---" >&2
  cat "$tmp/exec.txt" >&2
  exit 1
fi
echo "train_npu: execute follows the CPU loss curve, estimate matches its simulated time and HBM, NPU resume is exact"
