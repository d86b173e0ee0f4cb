#!/usr/bin/env bash
# Tensor, sequence and pipeline parallel parity: every layout reproduces
# the single-rank run with the same global batch (--batch 4, seq 32) for
# 10 steps, each step's loss and global gradient norm within 1e-5
# relative, on gpt2-tiny and llama-tiny (2 layers, d_model 64; 4 layers for
# the interleaved schedule), and TP2, TP2+SP on the grouped-query models
# llama-tiny-gqa and qwen2-tiny:
#   CPU, fp32: TP2, TP2+SP, PP2 with GPipe and 1F1B (4 micro-batches),
#     PP2 interleaved with 2 virtual stages, PP2 split 3 + 1 layers
#     (--stage-layers), TP2 x PP2, DP2 x TP2,
#     DP2 x PP2 (2 micro-batches), ZeRO-1 over DP2, DP2 x TP2 and DP2 x PP2
#     (GPT-2's tied head too);
#   NPU ("test" preset), bf16: TP2 x PP2, DP2 x TP2 and DP2 with ZeRO-1. The cube takes no
#     fp32, so these compare bf16 runs: the 16-bit copies of the weights
#     and activations turn fp32 summation-order differences (the split
#     matmuls, the all-reduced partial sums: ~1e-7) into bf16 rounding
#     flips (~4e-3 of one element), which grow over the steps. The
#     reference cuts the batch into the same micro-batches and the
#     learning rate is 1e-3 (as dp_parity.sh). Measured worst over the 10
#     steps: loss 1.2e-5, gradient norm 1.8e-4 relative (steps 1-2 agree to
#     the printed digits); the bounds here are 3e-5 and 5e-4.
# The single-rank reference runs with the layout's micro-batch count.
source "$(dirname "$0")/dp_common.sh"
common=(--d-model 64 --d-ff 128 --batch 4 --seq 32 --steps 10 --warmup 2 --val-every 0 --val-batches 2 --sample 0)

# case NAME RANKS TOL_LOSS TOL_NORM ARGS...: the layout against one rank
# with the same arguments minus the layout flags
case_() {
  local name=$1 np=$2 tl=$3 tn=$4
  shift 4
  local ref=() skip=0 steps=10 prev=
  for x in "$@"; do # the reference: drop --tp/--pp/--dp/--virtual-stages/--schedule N and --sequence-parallel
    [ "$prev" = --steps ] && steps=$x
    prev=$x
    if [ $skip -eq 1 ]; then skip=0; continue; fi
    case $x in
      --tp|--pp|--dp|--virtual-stages|--schedule|--stage-layers|--zero) skip=1 ;;
      --sequence-parallel) ;;
      *) ref+=("$x") ;;
    esac
  done
  local key
  key=$(echo "${ref[*]}" | tr ' /' '__')
  if [ ! -f "$tmp/ref$key.jsonl" ]; then
    "$tg" "${common[@]}" "${ref[@]}" --metrics "$tmp/ref$key.jsonl" >"$tmp/ref$key.txt" 2>&1 ||
      fail "$name: 1 rank: $(tail -3 "$tmp/ref$key.txt")"
  fi
  "$mpiexec" -n "$np" "$tg" "${common[@]}" "$@" --metrics "$tmp/$name.jsonl" >"$tmp/$name.txt" 2>&1 ||
    { fail "$name: $np ranks: $(tail -3 "$tmp/$name.txt")"; return; }
  compare "$name" "$tmp/ref$key.jsonl" "$tmp/$name.jsonl" loss "$tl" "$steps"
  compare "$name" "$tmp/ref$key.jsonl" "$tmp/$name.jsonl" grad_norm "$tn" "$steps"
}

npu=(--device npu --npu-preset test --lr 1e-3)
# grouped-query attention (4 query heads on 2 key/value heads): q, k and v
# split over TP by heads; qwen2-tiny adds a qkv bias, split the same way,
# for 4 steps: its key bias's gradient is zero up to rounding in the slowly
# turning RoPE pairs, and AdamW turns the summation-order noise there into
# full-size updates of either sign (2e-5 apart by step 6;
# tests/python/test_torch_parity.py says more)
for model in llama-tiny-gqa qwen2-tiny; do
  steps=()
  [ $model = qwen2-tiny ] && steps=(--steps 4)
  case_ "$model-tp2" 2 1e-5 1e-5 --model $model --layers 2 --tp 2 "${steps[@]}"
  case_ "$model-tp2-sp" 2 1e-5 1e-5 --model $model --layers 2 --tp 2 --sequence-parallel "${steps[@]}"
done
# sequence parallelism with bf16 compute gathers the 16-bit rows the matmuls
# read (the fp32 cases above gather fp32); bf16 sums in other orders than
# one rank's flip roundings, hence the NPU cases' bounds
case_ "llama-tiny-tp2-sp-bf16" 2 3e-5 5e-4 --model llama-tiny --layers 2 --tp 2 --sequence-parallel --dtype bf16
# ZeRO-1 (the distributed optimizer) over DP2, alone and with TP2
case_ "gpt2-tiny-dp2-zero1" 2 1e-5 1e-5 --model gpt2-tiny --layers 2 --dp 2 --zero 1
case_ "llama-tiny-dp2-tp2-zero1" 4 1e-5 1e-5 --model llama-tiny --layers 2 --dp 2 --tp 2 --zero 1
case_ "llama-tiny-dp2-pp2-zero1" 4 1e-5 1e-5 --model llama-tiny --layers 2 --dp 2 --pp 2 --micro-batches 2 --zero 1
# GPT-2's head on the last stage is tied to wte on the first: both ends shard it alike and exchange their blocks
case_ "gpt2-tiny-dp2-pp2-zero1" 4 1e-5 1e-5 --model gpt2-tiny --layers 2 --dp 2 --pp 2 --micro-batches 2 --zero 1
# ... and on the NPU in bf16 (the execute-mode device's reduce-scatter and all-gather)
case_ "llama-tiny-npu-dp2-zero1" 2 3e-5 5e-4 --model llama-tiny --layers 2 "${npu[@]}" --dp 2 --zero 1 \
  --micro-batches 2
for model in gpt2-tiny llama-tiny; do
  l2=(--model $model --layers 2)
  case_ "$model-tp2" 2 1e-5 1e-5 "${l2[@]}" --tp 2
  case_ "$model-tp2-sp" 2 1e-5 1e-5 "${l2[@]}" --tp 2 --sequence-parallel
  case_ "$model-pp2-gpipe" 2 1e-5 1e-5 "${l2[@]}" --pp 2 --micro-batches 4 --schedule gpipe
  case_ "$model-pp2-1f1b" 2 1e-5 1e-5 "${l2[@]}" --pp 2 --micro-batches 4 --schedule 1f1b
  case_ "$model-pp2-interleaved" 2 1e-5 1e-5 --model $model --layers 4 --pp 2 --micro-batches 4 \
    --schedule interleaved --virtual-stages 2
  case_ "$model-pp2-uneven" 2 1e-5 1e-5 --model $model --layers 4 --pp 2 --micro-batches 4 --stage-layers 3,1
  case_ "$model-tp2-pp2" 4 1e-5 1e-5 "${l2[@]}" --tp 2 --pp 2 --micro-batches 2
  case_ "$model-dp2-tp2" 4 1e-5 1e-5 "${l2[@]}" --tp 2 --dp 2
  case_ "$model-dp2-pp2" 4 1e-5 1e-5 "${l2[@]}" --pp 2 --dp 2 --micro-batches 2
  case_ "$model-npu-tp2-pp2" 4 3e-5 5e-4 "${l2[@]}" "${npu[@]}" --tp 2 --pp 2 --micro-batches 2
  case_ "$model-npu-dp2-tp2" 4 3e-5 5e-4 "${l2[@]}" "${npu[@]}" --tp 2 --dp 2 --micro-batches 2
done

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "layouts_parity: TP2, TP2+SP, PP2 (gpipe, 1f1b, interleaved), TP2xPP2, DP2xTP2, DP2xPP2, ZeRO-1 over DP2, DP2xTP2, DP2xPP2 (CPU fp32) and TP2xPP2, DP2xTP2, DP2 ZeRO-1 (NPU bf16) reproduce 1 rank"
