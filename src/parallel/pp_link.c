/* The pipeline executor's link and activation-set plan (pp_link.h). */
#include "parallel/pp_link.h"

#include "core/try.h"

#include <stdlib.h>
#include <string.h>

hs_status hs_pp_link_init(hs_pp_link *l, hs_runtime *rt, hs_npu *npu, int G, int m, double bytes)
{
    const int p = hs_runtime_size(rt, HS_GROUP_PP), stage = hs_runtime_rank(rt, HS_GROUP_PP);
    *l = (hs_pp_link){hs_runtime_comm(rt, HS_GROUP_PP), npu, !npu || hs_npu_mode_of(npu) == HS_NPU_EXECUTE,
                      (stage - 1 + p) % p, (stage + 1) % p, G, m, 0};
    if (!npu || p == 1)
        return HS_OK;
    const int me = hs_runtime_rank(rt, HS_GROUP_WORLD);
    int *ranks = malloc((size_t)p * sizeof *ranks);
    if (!ranks)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "pipeline link: %d pipeline ranks", p);
    const hs_status s = hs_grid_group_ranks(hs_runtime_grid(rt), HS_GROUP_PP, me, ranks);
    const hs_cluster_spec *cl = hs_runtime_cluster(rt);
    const int same_node = !s && me / cl->npus_per_node == ranks[l->next] / cl->npus_per_node;
    free(ranks);
    HS_TRY(s);
    return hs_comm_cost(cl, HS_COLL_SEND, 2, same_node ? 2 : 1, bytes, &l->hop_s);
}

int hs_pp_fwd_tag(const hs_pp_link *l, int g, int k) { return g * l->m + k; }
int hs_pp_bwd_tag(const hs_pp_link *l, int g, int k) { return (l->G + g) * l->m + k; }
int hs_pp_tied_tag(const hs_pp_link *l) { return 4 * l->G * l->m; }
static int stamp_tag(const hs_pp_link *l, int tag) { return tag + 2 * l->G * l->m; }

double hs_pp_now(const hs_pp_link *l) { return l->npu ? hs_npu_stream_time(hs_npu_default_stream(l->npu)) : 0; }

hs_status hs_pp_post_recv(const hs_pp_link *l, hs_pp_msg *mm, float *buf, int64_t n, int from, int tag)
{
    if (mm->posted)
        return HS_OK;
    if (l->values)
        HS_TRY(hs_comm_irecv(l->pp, buf, (size_t)n, HS_FP32, from, tag, &mm->data));
    if (l->npu)
        HS_TRY(hs_comm_irecv(l->pp, &mm->stamp, 1, HS_INT64, from, stamp_tag(l, tag), &mm->time));
    mm->posted = 1;
    return HS_OK;
}

hs_status hs_pp_wait(hs_pp_msg *mm)
{
    hs_status s = hs_comm_wait(&mm->data), t = hs_comm_wait(&mm->time);
    mm->posted = 0;
    return s ? s : t;
}

hs_status hs_pp_finish_recv(const hs_pp_link *l, hs_pp_msg *mm, const char *what)
{
    HS_TRY(hs_pp_wait(mm));
    if (!l->npu)
        return HS_OK;
    double arrival;
    memcpy(&arrival, &mm->stamp, sizeof arrival);
    const double t = hs_pp_now(l);
    if (arrival > t)
        hs_npu_stream_advance(hs_npu_default_stream(l->npu), what, "idle", arrival - t);
    return HS_OK;
}

hs_status hs_pp_post_send(const hs_pp_link *l, hs_pp_msg *mm, const float *buf, int64_t n, int to, int tag)
{
    if (l->values)
        HS_TRY(hs_comm_isend(l->pp, buf, (size_t)n, HS_FP32, to, tag, &mm->data));
    if (l->npu) {
        const double arrival = hs_pp_now(l) + l->hop_s;
        memcpy(&mm->stamp, &arrival, sizeof arrival);
        HS_TRY(hs_comm_isend(l->pp, &mm->stamp, 1, HS_INT64, to, stamp_tag(l, tag), &mm->time));
    }
    mm->posted = 1;
    return HS_OK;
}

hs_status hs_pp_plan_slots(const hs_pp_op *ops, int n_ops, int chunks, int m, int stages, int *slot, int *slots,
                           int *last_bwd)
{
    const int maxs = m + 2;
    int *busy = malloc(2 * (size_t)maxs * sizeof *busy), *freed_at = busy + maxs;
    if (!busy)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "pipeline: slot plan of %d micro-batches", m);
    for (int c = 0; c < chunks; c++) {
        for (int s = 0; s < maxs; s++) {
            busy[s] = 0;
            freed_at[s] = -2;
        }
        slots[c] = 1;
        last_bwd[c] = 0;
        for (int i = 0; i < n_ops; i++) {
            const hs_pp_op *op = &ops[i];
            if (op->chunk != c)
                continue;
            int *sl = &slot[c * m + op->micro];
            if (op->backward) {
                busy[*sl] = 0;
                freed_at[*sl] = i;
                last_bwd[c] = op->micro;
                continue;
            }
            int s = 0;
            while (busy[s] || (stages > 1 && freed_at[s] >= i - 1))
                s++;
            busy[s] = 1;
            *sl = s;
            if (s + 1 > slots[c])
                slots[c] = s + 1;
        }
    }
    free(busy);
    return HS_OK;
}
