/* The operands of one attention call as the device bodies take them
 * (kernels/attention.c fills it). Queries come from the q columns of qkv,
 * keys and values from the k|v columns of kv, both [B, T, C + 2KV] with
 * C = NH*HD and KV = NKV*HD (self-attention: kv == qkv). causal 1: key s
 * is visible to query t when s <= t (the two blocks at the same
 * positions); 0: every key is (a key block wholly before the queries, as
 * context parallelism's chunks are). */
#ifndef HS_KERNELS_ATTENTION_CALL_H
#define HS_KERNELS_ATTENTION_CALL_H

#include <stdint.h>

typedef struct hs_attention_call {
    const float *qkv, *kv;
    int64_t B, T, NH, NKV, HD;
    int causal;
} hs_attention_call;

#endif
