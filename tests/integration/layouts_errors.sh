#!/usr/bin/env bash
# Tensor / pipeline layouts that cannot work end every rank with a clear
# message (exit 2), never a hang (expect: dp_common.sh): tp not dividing
# the heads or the MLP width, pp larger than the layers, 1F1B with fewer
# micro-batches than stages, virtual stages that do not divide a stage's
# layers, --stage-layers that do not add up or do not parse, sequence parallelism without tp, seq not a multiple of tp under
# sequence parallelism, a world that tp x pp does not divide, an unknown
# schedule, a checkpoint that is not there (every rank reads it: exit 1).
# A vocabulary that tp does not
# divide is padded, with a warning on every rank, and the run trains.
source "$(dirname "$0")/dp_common.sh"
small=(--model gpt2-tiny --layers 2 --d-model 32 --d-ff 64 --seq 16 --batch 4 --steps 2 --val-batches 1 --sample 0)

expect 3 2 3 "tp=3 does not divide n_head=4: attention is split by heads" "${small[@]}" --tp 3
expect 2 2 2 "tp=2 does not divide d_ff=65: the MLP's hidden width is split" "${small[@]}" --tp 2 --d-ff 65
expect 3 2 3 "pp=3 is larger than the model's 2 layers" "${small[@]}" --pp 3
expect 2 2 2 "1f1b with 1 micro-batches on 2 stages: it needs at least as many micro-batches as stages" "${small[@]}" --pp 2 --micro-batches 1
expect 2 2 2 "2 virtual stages do not divide the 1 layers per stage evenly" "${small[@]}" --pp 2 \
  --schedule interleaved --virtual-stages 2 --micro-batches 2
expect 2 2 2 "sequence parallelism needs tensor parallelism (tp >= 2, got tp=1)" "${small[@]}" --dp 2 \
  --sequence-parallel
expect 2 2 2 "seq=15 is not a multiple of tp=2" "${small[@]}" --tp 2 --sequence-parallel --seq 15
expect 3 2 3 "tp=2 x cp=1 x pp=1 = 2 does not divide the world size 3" "${small[@]}" --tp 2
expect 2 2 2 "unknown pipeline schedule 'zigzag'" "${small[@]}" --pp 2 --micro-batches 2 --schedule zigzag
expect 2 2 2 "layers per chunk sum to 3, but the model has 2 layers" "${small[@]}" --pp 2 --micro-batches 2 \
  --stage-layers 2,1
expect 2 2 2 "'2,x': comma-separated layer counts" "${small[@]}" --pp 2 --micro-batches 2 --stage-layers 2,x
# --recompute-layers counts the layers of each pipeline chunk: 2 layers over 2 stages leave 1 per chunk
expect 2 2 2 "recompute_layers=2: the chunk has 1 layers" "${small[@]}" --pp 2 --micro-batches 2 \
  --recompute selective --recompute-layers 2
expect 4 1 4 "$tmp/nonexistent" "${small[@]}" --tp 2 --pp 2 --micro-batches 2 --resume "$tmp/nonexistent"
# gpt2-tiny's 256-byte vocabulary over tp=3 (3 heads of 16): padded to 258 rows, trains
expect 3 0 3 "vocabulary 256 padded to 258, a multiple of tp=3" "${small[@]}" --tp 3 --n-head 3 --d-model 48 \
  --d-ff 96

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
