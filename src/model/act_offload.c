/* Activation offload: the layer regions' trips to the host and back. */
#include "model/act_offload.h"

#include "core/try.h"
#include "memory/host_pool.h"

#include <string.h>

/* The pool only counts on an estimate-mode NPU. */
static int counts_only(const hs_model *m) { return m->npu && hs_npu_mode_of(m->npu) == HS_NPU_ESTIMATE; }

size_t hs_act_offload_host_bytes(const hs_model *m)
{
    return m->act_offload ? (size_t)m->n_slots * (size_t)m->n_layer * m->layer_bytes : 0;
}

hs_status hs_act_offload_alloc(hs_model *m)
{
    if (!m->act_offload)
        return HS_OK;
    const size_t bytes = (size_t)m->n_layer * m->layer_bytes;
    if (m->npu) {
        HS_TRY(hs_npu_stream_new(m->npu, &m->act_copy));
        HS_TRY(hs_npu_event_new(m->npu, &m->act_ready));
    }
    for (int k = 0; k < m->n_slots; k++) {
        act_ring *r = &m->sets[k].ring;
        void *p;
        HS_TRY(hs_pool_alloc(bytes, counts_only(m), "offloaded activations", &p));
        r->host = p;
        r->counted = 1;
        for (int i = 0; i < HS_ACT_RING; i++) {
            r->resident[i] = -1;
            if (m->npu) {
                HS_TRY(hs_npu_event_new(m->npu, &r->out[i]));
                HS_TRY(hs_npu_event_new(m->npu, &r->in[i]));
            }
        }
    }
    return HS_OK;
}

void hs_act_offload_free(hs_model *m)
{
    for (int k = 0; m->sets && k < m->n_slots; k++) {
        act_ring *r = &m->sets[k].ring;
        if (r->counted)
            hs_pool_free(r->host, (size_t)m->n_layer * m->layer_bytes, counts_only(m));
        for (int i = 0; i < HS_ACT_RING; i++) {
            hs_npu_event_free(r->out[i]);
            hs_npu_event_free(r->in[i]);
        }
    }
    hs_npu_event_free(m->act_ready);
    hs_npu_stream_free(m->act_copy);
}

/* Layer l's region on the device and on the host (NULL when the pool only counts). */
static char *device_region(const hs_model *m, int l) { return (char *)m->arena + m->cur->ring.at[l % HS_ACT_RING]; }

static char *host_region(const hs_model *m, int l)
{
    return m->cur->ring.host ? m->cur->ring.host + (size_t)l * m->layer_bytes : NULL;
}

/* The copy stream starts after what the compute stream has queued. */
static void copy_after_compute(hs_model *m)
{
    hs_npu_event_record(m->act_ready, hs_npu_default_stream(m->npu));
    hs_npu_stream_wait(m->act_copy, m->act_ready);
}

hs_status hs_act_before_forward(hs_model *m, int l)
{
    if (!m->act_offload)
        return HS_OK;
    act_ring *r = &m->cur->ring;
    const int slot = l % HS_ACT_RING;
    if (m->npu && r->resident[slot] >= 0) /* the previous layer's copy out has left the region */
        hs_npu_stream_wait(hs_npu_default_stream(m->npu), r->out[slot]);
    r->resident[slot] = l;
    return HS_OK;
}

hs_status hs_act_after_forward(hs_model *m, int l)
{
    if (!m->act_offload)
        return HS_OK;
    if (!m->npu) {
        memcpy(host_region(m, l), device_region(m, l), m->layer_bytes);
        return HS_OK;
    }
    copy_after_compute(m);
    HS_TRY(hs_npu_memcpy_d2h(m->npu, m->act_copy, host_region(m, l), device_region(m, l), m->layer_bytes));
    hs_npu_event_record(m->cur->ring.out[l % HS_ACT_RING], m->act_copy);
    return HS_OK;
}

/* Layer l's region back into its slot unless it is there (the slot's
 * layer, above l, is done with its backward); wait: the compute stream
 * waits for it. */
static hs_status bring(hs_model *m, int l, int wait)
{
    act_ring *r = &m->cur->ring;
    const int slot = l % HS_ACT_RING;
    if (r->resident[slot] != l) {
        if (m->npu) {
            copy_after_compute(m);
            HS_TRY(hs_npu_memcpy_h2d(m->npu, m->act_copy, device_region(m, l), host_region(m, l), m->layer_bytes));
            hs_npu_event_record(r->in[slot], m->act_copy);
        } else {
            memcpy(device_region(m, l), host_region(m, l), m->layer_bytes);
        }
        r->resident[slot] = l;
    }
    if (wait && m->npu)
        hs_npu_stream_wait(hs_npu_default_stream(m->npu), r->in[slot]);
    return HS_OK;
}

hs_status hs_act_before_backward(hs_model *m, int l)
{
    if (!m->act_offload)
        return HS_OK;
    HS_TRY(bring(m, l, 1));
    if (l >= 1) /* its input, the previous layer's output */
        HS_TRY(bring(m, l - 1, 1));
    return l >= 2 ? bring(m, l - 2, 0) : HS_OK; /* under this backward */
}
