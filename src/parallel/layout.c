/* Checks a parallel layout against a model and cuts the model
 * (hyperspeed/layout.h). */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/layout.h"
#include "parallel/tp_rules.h"

#include <stdio.h>
#include <string.h>

hs_layout hs_layout_default(void)
{
    return (hs_layout){
        .size = sizeof(hs_layout), .tp = 1, .pp = 1, .schedule = HS_PP_1F1B, .virtual_stages = 1, .micro_batches = 1};
}

/* "1, 2, 4, 8": the tp values up to 64 that divide n_head, the key/value
 * heads and d_ff. */
static const char *good_tps(const hs_model_config *c, char *buf, size_t size)
{
    const int kv = hs_model_config_kv_heads(c);
    size_t used = 0;
    buf[0] = 0;
    for (int t = 1; t <= 64 && t <= c->n_head; t++)
        if (c->n_head % t == 0 && kv % t == 0 && c->d_ff % t == 0 && used < size) {
            int n = snprintf(buf + used, size - used, "%s%d", used ? ", " : "", t);
            used += n > 0 ? (size_t)n : 0;
        }
    return buf;
}

hs_status hs_tp_check_heads(const hs_model_config *c, int tp)
{
    char ok[128];
    const int kv = hs_model_config_kv_heads(c);
    if (tp < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "tp=%d must be >= 1", tp);
    if (c->n_head % tp != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "tp=%d does not divide n_head=%d: attention is split by "
                        "heads (tp in {%s} would do)",
                        tp, c->n_head, good_tps(c, ok, sizeof ok));
    if (kv % tp != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "tp=%d does not divide n_kv_head=%d: each TP rank holds "
                        "whole key/value heads and the query "
                        "heads that read them (tp in {%s} would do)",
                        tp, kv, good_tps(c, ok, sizeof ok));
    if (c->d_ff % tp != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "tp=%d does not divide d_ff=%d: the MLP's hidden width is "
                        "split (tp in {%s} would do)",
                        tp, c->d_ff, good_tps(c, ok, sizeof ok));
    return HS_OK;
}

/* Tensor and sequence parallelism. */
static hs_status check_tp(const hs_model_config *c, const hs_layout *l, hs_layout_plan *plan)
{
    HS_TRY(hs_tp_check_heads(c, l->tp));
    if (l->sequence_parallel && l->tp < 2)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "sequence parallelism needs tensor parallelism (tp >= 2, "
                        "got tp=%d): it splits the sequence "
                        "over the TP group",
                        l->tp);
    if (l->sequence_parallel && l->seq > 0 && l->seq % l->tp != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "sequence parallelism: seq=%d is not a multiple of tp=%d "
                        "(each rank holds seq / tp positions)",
                        l->seq, l->tp);
    plan->heads_per_rank = c->n_head / l->tp;
    plan->ff_per_rank = c->d_ff / l->tp;
    plan->padded_vocab = (c->vocab_size + l->tp - 1) / l->tp * l->tp;
    return HS_OK;
}

/* Pipeline stages and their layers. */
static hs_status check_pp(const hs_model_config *c, const hs_layout *l, hs_layout_plan *plan)
{
    if (l->pp < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "pp=%d must be >= 1", l->pp);
    if (l->pp > c->n_layer)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "pp=%d is larger than the model's %d layers: every stage "
                        "needs at least one (use pp <= %d)",
                        l->pp, c->n_layer, c->n_layer);
    if (l->pp > 1)
        HS_TRY(hs_pp_schedule_check(l->schedule, l->pp, l->micro_batches, l->virtual_stages));
    else if (l->virtual_stages != 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%d virtual stages without pipeline parallelism (pp=1)",
                        l->virtual_stages);
    const int v = l->virtual_stages, chunks = l->pp * v;
    if (chunks > 64)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "pp=%d x %d virtual stages = %d chunks (at most 64: hs_layout.chunk_layers has 64 entries)",
                        l->pp, v, chunks);
    plan->chunks = chunks;
    int given = 0, sum = 0;
    for (int k = 0; k < 64; k++)
        given |= l->chunk_layers[k] != 0;
    for (int k = 0; given && k < 64; k++) {
        const int n = l->chunk_layers[k];
        if ((k < chunks && n < 1) || (k >= chunks && n != 0))
            return hs_error(HS_ERR_INVALID_ARGUMENT,
                            "layers per chunk: %d chunks (pp=%d x %d virtual stages) "
                            "need %d counts >= 1, chunk %d "
                            "has %d",
                            chunks, l->pp, v, chunks, k, n);
        plan->first_layer[k] = sum;
        sum += n;
    }
    if (given) {
        if (sum != c->n_layer)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "layers per chunk sum to %d, but the model has %d layers", sum,
                            c->n_layer);
        plan->first_layer[chunks] = sum;
        return HS_OK;
    }
    if (v > 1 && c->n_layer % chunks != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "%d virtual stages do not divide the %d layers per stage "
                        "evenly: n_layer=%d must be a "
                        "multiple of pp x virtual stages = %d",
                        v, c->n_layer / l->pp, c->n_layer, chunks);
    for (int k = 0, at = 0; k <= chunks; k++) { /* the first n_layer mod chunks chunks take one more */
        plan->first_layer[k] = at;
        at += k < c->n_layer % chunks ? c->n_layer / chunks + 1 : c->n_layer / chunks;
    }
    return HS_OK;
}

hs_status hs_layout_check(const hs_model_config *c, const hs_layout *l, hs_layout_plan *plan)
{
    if (!c || !l || !plan)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_layout_check: NULL argument");
    memset(plan, 0, sizeof *plan);
    HS_TRY(HS_CHECK_SIZE(c, hs_model_config));
    HS_TRY(HS_CHECK_SIZE(l, hs_layout));
    HS_TRY(check_tp(c, l, plan));
    return check_pp(c, l, plan);
}
