/* AdamW on the host over the offloaded master (optimizer_offload.h). */
#include "train/optimizer_offload.h"

#include "core/try.h"
#include "memory/host_pool.h"
#include "model/model_registry.h"

#include <stdlib.h>

/* Elements per tile of the host update: small enough that the copies of
 * one tile overlap the update of the next, large enough to amortise
 * the copies' latency. */
#define TILE ((int64_t)1 << 20)

/* Bytes AdamW moves per element: reads p, g, m, v; writes p, m, v. */
#define ADAMW_BYTES 28.0

struct hs_offload_state {
    hs_model *model;
    hs_npu *npu;        /* NULL on the CPU device */
    int values;         /* the pool holds memory (not an estimate-mode NPU) */
    int64_t n;
    size_t bytes;       /* the pool's allocation */
    float *mem;         /* m [n], v [n], and on the NPU the gradients' host copy [n] */
    hs_npu_stream *down, *host, *up; /* NPU: gradients D2H, the host update, weights H2D */
    hs_npu_event *ev;
};

static int parts(const hs_offload_state *s) { return s->npu ? 3 : 2; }

hs_status hs_offload_state_new(hs_model *m, int64_t n, hs_offload_state **out)
{
    hs_offload_state *s = calloc(1, sizeof *s);
    if (!s)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "optimizer offload: out of host memory");
    s->model = m;
    s->npu = hs_model_npu(m);
    s->values = !s->npu || hs_npu_mode_of(s->npu) == HS_NPU_EXECUTE;
    s->n = n > 0 ? n : 1;
    s->bytes = (size_t)parts(s) * (size_t)s->n * sizeof(float);
    void *p = NULL;
    hs_status st = hs_pool_alloc(s->bytes, !s->values, s->npu ? "AdamW moments and the gradients' copy" :
                                                                "AdamW moments", &p);
    if (st) {
        free(s);
        return st;
    }
    s->mem = p;
    if (s->npu && ((st = hs_npu_stream_new(s->npu, &s->down)) || (st = hs_npu_stream_new(s->npu, &s->host)) ||
                   (st = hs_npu_stream_new(s->npu, &s->up)) || (st = hs_npu_event_new(s->npu, &s->ev)))) {
        hs_offload_state_free(s);
        return st;
    }
    *out = s;
    return HS_OK;
}

void hs_offload_state_free(hs_offload_state *s)
{
    if (!s)
        return;
    hs_pool_free(s->mem, s->bytes, !s->values);
    hs_npu_event_free(s->ev);
    hs_npu_stream_free(s->up);
    hs_npu_stream_free(s->host);
    hs_npu_stream_free(s->down);
    free(s);
}

float *hs_offload_state_moment(hs_offload_state *s, int which)
{
    return s->mem ? s->mem + (size_t)which * (size_t)s->n : NULL;
}

/* Stream `to` waits for what stream `from` has queued so far. */
static void after(hs_offload_state *s, hs_npu_stream *to, hs_npu_stream *from)
{
    hs_npu_event_record(s->ev, from);
    hs_npu_stream_wait(to, s->ev);
}

void hs_offload_begin(hs_offload_state *s)
{
    if (s->npu)
        after(s, s->down, hs_npu_default_stream(s->npu));
}

/* One tile: gradients down (NPU), AdamW on the host, weights up. */
static hs_status tile(hs_offload_state *s, int64_t lo, int64_t hi, int64_t moment, const hs_adamw_params *ap,
                      int upload)
{
    const hs_registry *reg = hs_model_registry(s->model);
    const int64_t n = hi - lo;
    hs_tensor g = hs_registry_span(reg, HS_PARAM_GRAD, lo, hi, NULL);
    if (s->npu) {
        float *copy = s->mem ? s->mem + 2 * (size_t)s->n + (size_t)moment : NULL;
        HS_TRY(hs_npu_memcpy_d2h(s->npu, s->down, copy, reg->grad + lo, (size_t)n * sizeof(float)));
        g.data = copy;
        after(s, s->host, s->down);
        hs_npu_stream_advance(s->host, "AdamW (host)", "host",
                              (double)n * ADAMW_BYTES / hs_npu_spec_of(s->npu)->host_bw);
    }
    if (s->values) {
        hs_tensor p = hs_registry_span(reg, HS_PARAM_VALUE, lo, hi, NULL);
        hs_tensor m = hs_view1(s->mem + moment, HS_FP32, n), v = hs_view1(s->mem + s->n + moment, HS_FP32, n);
        HS_TRY(hs_adamw_update(&p, &g, &m, &v, ap));
    }
    if (!upload)
        return HS_OK;
    if (s->npu)
        after(s, s->up, s->host);
    return hs_model_upload_weights(s->model, lo, hi, s->up);
}

hs_status hs_offload_adamw(hs_offload_state *s, int64_t lo, int64_t hi, int64_t moment, const hs_adamw_params *ap,
                           int upload)
{
    for (int64_t at = lo; at < hi; at += TILE) {
        const int64_t end = hi - at < TILE ? hi : at + TILE;
        HS_TRY(tile(s, at, end, moment + (at - lo), ap, upload));
    }
    return HS_OK;
}

hs_status hs_offload_finish(hs_offload_state *s)
{
    if (s->npu) { /* the next forward reads the uploaded weights; a gather, the updated master */
        hs_npu_stream *dflt = hs_npu_default_stream(s->npu);
        after(s, dflt, s->host);
        after(s, dflt, s->up);
    }
    return HS_OK;
}
