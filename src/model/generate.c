/* Autoregressive generation with top-k sampling. */
#include "core/try.h"
#include "model/model_internal.h"

#include <math.h>
#include <string.h>

int32_t hs_sample_top_k(const float *logits, int V, int k, float temperature, float u, int32_t *idx, float *prob)
{
    int n = 0; /* idx[0..n) kept sorted by descending logit */
    for (int v = 0; v < V; v++) {
        if (n == k && logits[v] <= logits[idx[n - 1]])
            continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && logits[idx[j - 1]] < logits[v]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    double total = 0;
    for (int j = 0; j < n; j++) {
        prob[j] = expf((logits[idx[j]] - logits[idx[0]]) / temperature);
        total += prob[j];
    }
    double target = u * total, acc = 0;
    for (int j = 0; j < n; j++) {
        acc += prob[j];
        if (target < acc)
            return idx[j];
    }
    return idx[n - 1];
}

hs_status hs_model_generate(hs_model *m, const int32_t *prompt, int n_prompt, int n_new, int top_k,
                            float temperature, uint64_t seed, int32_t *out)
{
    if (!m || !prompt || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_generate: model, prompt and out must not be NULL");
    const int V = m->cfg.vocab_size;
    if (n_prompt < 1 || n_new < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "n_prompt=%d must be >= 1 and n_new=%d >= 0", n_prompt, n_new);
    if (top_k < 1 || top_k > V || !(temperature > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "top_k=%d must be in 1..%d and temperature=%g > 0", top_k, V,
                        (double)temperature);
    if (m->tp > 1 || !m->has_embedding || !m->has_head)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_generate needs the whole model on one rank (tp=%d, "
                        "layers %d..%d of %d): hs_engine_generate samples through a layout", m->tp, m->first_layer, m->first_layer + m->n_layer - 1,
                        m->cfg.n_layer);
    if (m->npu && hs_npu_mode_of(m->npu) != HS_NPU_EXECUTE)
        return hs_error(HS_ERR_DEVICE, "hs_model_generate: an estimate-mode NPU computes no values to sample from");
    /* Scratch for the top-k lists, allocating nothing: on the CPU the
     * backward's gradient scratch (unused by a forward), on the NPU the
     * host staging after the logits row read back into it. */
    int32_t *idx = m->npu ? (int32_t *)(m->stage + V) : (int32_t *)m->g.dres;
    float *prob = m->npu ? m->stage + 2 * (size_t)V : m->g.dln;
    if (!m->npu && (size_t)top_k > (size_t)m->max_B * m->max_T * (size_t)m->cfg.d_model)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "top_k=%d exceeds the model's sampling scratch", top_k);
    memcpy(out, prompt, (size_t)n_prompt * sizeof *out);
    for (int i = 0; i < n_new; i++) {
        int len = n_prompt + i;
        int T = len < m->max_T ? len : m->max_T;
        HS_TRY(hs_model_forward(m, out + len - T, NULL, 1, T, NULL));
        const float *last = m->cur->logits + (size_t)(T - 1) * V;
        if (m->npu) {
            HS_TRY(hs_npu_memcpy_d2h(m->npu, hs_device_stream(m->dev), m->stage, last, (size_t)V * sizeof(float)));
            last = m->stage;
        }
        float u = hs_rng_uniform(seed, 0, (uint64_t)i);
        out[len] = hs_sample_top_k(last, V, top_k, temperature, u, idx, prob);
    }
    return HS_OK;
}
