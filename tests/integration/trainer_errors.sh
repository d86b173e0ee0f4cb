#!/usr/bin/env bash
# Every bad input to the trainer ends it with a clear message and a
# non-zero exit, never a crash: unknown preset or flag, impossible sizes,
# missing/truncated/wrong-magic token files, truncated or mis-shaped
# checkpoints.
set -uo pipefail
build=$1
tg="$build/examples/train_gpt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HS_CACHE_DIR="$tmp/cache"
small=(--layers 1 --d-model 32 --d-ff 64 --batch 2 --seq 16 --val-batches 1 --sample 0)
failed=0 passed=0

# expect EXIT_CODE "phrase in stderr" ARGS...
expect() {
  local want=$1 phrase=$2
  shift 2
  local out rc
  out=$("$tg" "$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -eq "$want" ] && grep -qF -- "$phrase" <<<"$out"; then
    passed=$((passed + 1))
  else
    echo "FAIL: train_gpt $* -> exit $rc (want $want), stderr: $out (want '$phrase')" >&2
    failed=$((failed + 1))
  fi
}

expect 2 "unknown model preset 'gpt9'" --model gpt9
expect 2 "unknown flag --bogus" --bogus 1
expect 2 "'ten' is not a valid integer" --steps ten
expect 2 "n_head=3 does not divide d_model=128" --n-head 3
expect 2 "seq=300 is longer than the model's context max_seq=256" --seq 300 --steps 1
expect 2 "must be >= 1" --batch 0
expect 2 "d_ff=-4: sizes must be positive" --d-ff -4
expect 2 "does not divide --batch=4" --batch 4 --micro-batches 3
expect 2 "unknown device 'tpu'" --device tpu
expect 2 "unknown recompute mode 'some' (known: none, selective, full)" --recompute some
expect 2 "--recompute-layers=2: a count >= 0 (0: every layer), with --recompute selective or full" \
  --recompute-layers 2
expect 2 "recompute_layers=3: the chunk has 1 layers (layers 0 .. 0)" "${small[@]}" --recompute full \
  --recompute-layers 3
expect 2 "unknown offload item 'gpu' in 'optimizer,gpu'" --offload optimizer,gpu
expect 2 "offload of params moves ZeRO-3's parameter shards to the host: it needs zero=3" "${small[@]}" \
  --offload params
expect 2 "offload of activations with recompute full: activation offload keeps every activation on the host" \
  "${small[@]}" --offload activations --recompute full
expect 0 "zero=1 with one data-parallel rank: nothing to shard, no effect" "${small[@]}" --steps 1 --zero 1
expect 2 "overlap_param_gather overlaps ZeRO's parameter all-gather with the next forward: it needs zero >= 1" \
  "${small[@]}" --overlap-param-gather

mkdir -p "$tmp/missing"
expect 1 "$tmp/missing/train.bin" --data "$tmp/missing" "${small[@]}"

expect 1 "$tmp/nofile.bin" --data "$tmp/nofile.bin" --val "$tmp/nofile.bin" "${small[@]}"

# A good corpus to damage.
"$tg" "${small[@]}" --steps 1 --save "$tmp/ckpt" >/dev/null 2>&1 || { echo "FAIL: baseline run" >&2; exit 1; }
cp -r "$tmp/cache/corpus" "$tmp/trunc"
size=$(stat -c %s "$tmp/trunc/train.bin")
truncate -s $((size - 3)) "$tmp/trunc/train.bin"
expect 1 "HS_ERR_FORMAT" --data "$tmp/trunc" "${small[@]}" --steps 1
cp -r "$tmp/cache/corpus" "$tmp/magic"
printf 'NOTTOKEN' | dd of="$tmp/magic/train.bin" conv=notrunc status=none
expect 1 "HS_ERR_FORMAT" --data "$tmp/magic" "${small[@]}" --steps 1
cp -r "$tmp/cache/corpus" "$tmp/short"
printf 'only ten b' >"$tmp/short.txt"
"$build/hs-data" encode "$tmp/short.txt" -o "$tmp/short/train.bin" >/dev/null
expect 1 "fewer than" --data "$tmp/short" "${small[@]}" --steps 1

# Checkpoints: a truncated data file, a mis-shaped model, a missing manifest.
cp -r "$tmp/ckpt" "$tmp/ckpt_trunc"
st=$(ls "$tmp/ckpt_trunc"/*.safetensors)
truncate -s $(($(stat -c %s "$st") / 2)) "$st"
expect 1 "HS_ERR_FORMAT" "${small[@]}" --steps 2 --resume "$tmp/ckpt_trunc"
expect 1 "HS_ERR_SHAPE_MISMATCH" --layers 1 --d-model 64 --d-ff 64 --batch 2 --seq 16 --sample 0 --steps 2 \
  --resume "$tmp/ckpt"
cp -r "$tmp/ckpt" "$tmp/ckpt_nomanifest"
rm "$tmp/ckpt_nomanifest/manifest.json"
expect 1 "manifest.json" "${small[@]}" --steps 2 --resume "$tmp/ckpt_nomanifest"
expect 1 "HS_ERR_IO" "${small[@]}" --steps 2 --resume "$tmp/nonexistent"

# The damaged copies did not hurt the original: it still resumes.
"$tg" "${small[@]}" --steps 2 --resume "$tmp/ckpt" >/dev/null 2>&1 && passed=$((passed + 1)) ||
  { echo "FAIL: resuming the intact checkpoint" >&2; failed=$((failed + 1)); }

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
