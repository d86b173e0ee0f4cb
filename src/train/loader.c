/* Deterministic, resumable, rank-split batches over a token file
 * (semantics in data.h and docs/data.md). */
#include "core/config_size.h"
#include "hyperspeed/data.h"

#include <stdlib.h>

struct hs_loader {
    hs_token_file *file;
    hs_loader_config cfg;
    int local_batch;
    uint64_t starts;   /* N - seq: offsets that leave room for seq + 1 tokens */
    uint64_t position; /* tokens consumed by the job so far */
};

hs_loader_config hs_loader_config_default(void)
{
    hs_loader_config c = {.size = sizeof c, .batch = 4, .seq = 64, .rank = 0, .world = 1};
    return c;
}

static hs_status check_config(const hs_loader_config *c)
{
    if (c->batch < 1 || c->seq < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "loader: batch=%d and seq=%d must both be >= 1", c->batch, c->seq);
    if (c->world < 1 || c->rank < 0 || c->rank >= c->world)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "loader: rank=%d is outside 0..world-1 (world=%d)", c->rank,
                        c->world);
    if (c->batch % c->world != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "loader: world=%d does not divide the global batch=%d", c->world,
                        c->batch);
    return HS_OK;
}

hs_status hs_loader_new(const char *path, const hs_loader_config *cfg, hs_loader **out)
{
    *out = NULL;
    hs_status s = cfg ? HS_CHECK_SIZE(cfg, hs_loader_config) : hs_error(HS_ERR_INVALID_ARGUMENT, "loader: NULL config");
    if (!s)
        s = check_config(cfg);
    if (s)
        return s;
    hs_loader *l = calloc(1, sizeof *l);
    if (!l)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "loader: out of memory");
    s = hs_token_file_new(path, &l->file);
    if (!s && hs_token_file_count(l->file) < (uint64_t)cfg->seq + 1)
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "loader: %s has %llu tokens, fewer than seq+1 = %d", path,
                     (unsigned long long)hs_token_file_count(l->file), cfg->seq + 1);
    if (s) {
        hs_loader_free(l);
        return s;
    }
    l->cfg = *cfg;
    l->local_batch = cfg->batch / cfg->world;
    l->starts = hs_token_file_count(l->file) - (uint64_t)cfg->seq;
    *out = l;
    return HS_OK;
}

void hs_loader_free(hs_loader *l)
{
    if (!l)
        return;
    hs_token_file_free(l->file);
    free(l);
}

int hs_loader_local_batch(const hs_loader *l) { return l->local_batch; }
uint64_t hs_loader_num_tokens(const hs_loader *l) { return hs_token_file_count(l->file); }
uint64_t hs_loader_position(const hs_loader *l) { return l->position; }
void hs_loader_set_position(hs_loader *l, uint64_t position) { l->position = position; }

uint64_t hs_loader_pass_batches(const hs_loader *l)
{
    return (hs_token_file_count(l->file) - 1) / ((uint64_t)l->cfg.batch * (uint64_t)l->cfg.seq);
}

hs_status hs_loader_next(hs_loader *l, int32_t *inputs, int32_t *targets)
{
    if (!inputs || !targets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "loader: inputs and targets buffers must not be NULL");
    const uint64_t T = (uint64_t)l->cfg.seq, M = l->starts;
    /* (p + s*T) mod M, each term reduced first so nothing overflows. */
    const uint64_t base = l->position % M;
    for (int i = 0; i < l->local_batch; i++) {
        uint64_t s = (uint64_t)(l->cfg.rank * l->local_batch + i);
        uint64_t start = (base + (s * T) % M) % M;
        hs_status st = hs_token_file_read(l->file, start, (size_t)T, inputs + i * T);
        if (!st)
            st = hs_token_file_read(l->file, start + 1, (size_t)T, targets + i * T);
        if (st)
            return st;
    }
    l->position += (uint64_t)l->cfg.batch * T;
    return HS_OK;
}
