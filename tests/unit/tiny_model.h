/* The tiny model configurations of the model-level tests: a vocabulary of
 * 64, 4 heads of width 8, an MLP of 64; LLaMA with grouped-query
 * attention (2 key/value heads). */
#ifndef HS_TEST_TINY_MODEL_H
#define HS_TEST_TINY_MODEL_H

#include "hyperspeed.h"

static inline hs_model_config tiny_model(hs_arch arch, int layers, int max_seq)
{
    hs_model_config c = hs_model_config_default();
    c.arch = arch;
    c.vocab_size = 64;
    c.max_seq = max_seq;
    c.n_layer = layers;
    c.n_head = 4;
    c.n_kv_head = arch == HS_ARCH_LLAMA ? 2 : 0;
    c.d_model = 32;
    c.d_ff = 64;
    return c;
}

#endif
