#!/usr/bin/env bash
# Checkpoint resume is exact: a run stopped after step 4 (saving its
# checkpoint) and resumed reproduces the uninterrupted run's steps 5..8
# (loss, lr, gradient norm) and final validation loss bit for bit.
set -euo pipefail
build=$1
tg="$build/examples/train_gpt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HS_CACHE_DIR="$tmp/cache"
common=(--model gpt2-tiny --layers 2 --d-model 64 --d-ff 128 --batch 4 --seq 32 --steps 8 --warmup 2
        --val-every 0 --val-batches 2 --sample 0)

"$tg" "${common[@]}" --metrics "$tmp/full.jsonl" >/dev/null
"$tg" "${common[@]}" --stop-after 4 --save "$tmp/half" --metrics /dev/null >/dev/null
"$tg" "${common[@]}" --resume "$tmp/half" --metrics "$tmp/resumed.jsonl" >/dev/null

# step, loss, lr and grad_norm of each step record; step and val_loss of validations
keep() { grep -o '"step":[0-9]*,"\(loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*\|val_loss":[^}]*\)' "$1"; }
keep "$tmp/full.jsonl" | tail -n 5 >"$tmp/want"
keep "$tmp/resumed.jsonl" >"$tmp/got"
if ! diff -u "$tmp/want" "$tmp/got"; then
  echo "resume: the resumed run differs from the uninterrupted run" >&2
  exit 1
fi
if [ "$(wc -l <"$tmp/got")" -ne 5 ]; then
  echo "resume: expected 4 step records and 1 validation, got:" >&2
  cat "$tmp/got" >&2
  exit 1
fi
echo "resume: steps 5-8 and the final validation are bit-identical"
