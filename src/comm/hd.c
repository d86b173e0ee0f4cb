/* Recursive halving reduce-scatter and recursive doubling all-gather for
 * power-of-two groups (Rabenseifner), over point-to-point messages.
 *
 * Reduce-scatter works on ranges of blocks: in the step with mask m rank r
 * pairs with r ^ m, keeps the half of its range its bit m selects and sends
 * the other half. After log2 p steps it holds block r, summed along a fixed
 * binary tree (a + b is commutative, so both partners' order is moot). The
 * first step ships raw inputs, later ones fp32 partials of 16-bit dtypes;
 * the owner rounds once. */
#include "comm/comm_internal.h"
#include "comm/scratch.h"

static size_t block_start(size_t count, int p, int b)
{
    size_t off, len;
    if (b >= p)
        return count;
    hs_comm_block(count, p, b, &off, &len);
    return off;
}

hs_status hs_hd_reduce_scatter(hs_runtime *rt, hs_comm *c, const void *in, void *out, size_t count, hs_dtype dt,
                               hs_reduce_op op)
{
    int p = c->size, r = c->rank;
    size_t es = hs_dtype_size(dt), as = hs_comm_acc_size(dt);
    size_t half = hs_hd_scratch_elems(count, p);
    void *rbuf, *acc;
    HS_TRY(hs_progress_scratch(rt, 0, half * as, &rbuf));
    HS_TRY(hs_progress_scratch(rt, 1, half * as, &acc));
    int lo = 0, hi = p;
    size_t base = 0; /* element index of acc[0] */
    hs_reqset s = {0};
    hs_status st = HS_OK;
    for (int m = p / 2; m >= 1; m /= 2) {
        int first = m == p / 2, last = m == 1, mid = lo + (hi - lo) / 2;
        int keep_lo = (r & m) ? mid : lo, keep_hi = (r & m) ? hi : mid;
        int send_lo = (r & m) ? lo : mid, send_hi = (r & m) ? mid : hi;
        size_t ko = block_start(count, p, keep_lo), ke = block_start(count, p, keep_hi);
        size_t so = block_start(count, p, send_lo), se = block_start(count, p, send_hi);
        size_t ws = first ? es : as;
        const void *src = first ? (const char *)in + so * es : (const char *)acc + (so - base) * as;
        st = hs_exchange(rt, &s, c->coll, src, (se - so) * ws, r ^ m, rbuf, (ke - ko) * ws, r ^ m, m, NULL);
        if (st != HS_OK)
            break;
        if (first)
            base = ko;
        const void *mine = first ? (const char *)in + ko * es : (const char *)acc + (ko - base) * as;
        void *dst = last ? out : (char *)acc + (ko - base) * as;
        hs_comm_combine(dst, !last, rbuf, !first, mine, !first, ke - ko, dt, op, last ? p : 0);
        lo = keep_lo;
        hi = keep_hi;
    }
    hs_reqset_free(&s);
    return st;
}

/* Step with mask m: rank r holds the m blocks of its aligned group and
 * swaps them for its partner's group's. The first step (m = 1) sends this
 * rank's block from `mine` and copies it into buf meanwhile. */
hs_status hs_hd_allgather(hs_runtime *rt, hs_comm *c, const void *mine, void *buf, size_t count, hs_dtype dt)
{
    int p = c->size, r = c->rank;
    size_t es = hs_dtype_size(dt);
    hs_reqset s = {0};
    hs_status st = HS_OK;
    for (int m = 1; m < p && st == HS_OK; m *= 2) {
        int held = r & ~(m - 1), theirs = (r ^ m) & ~(m - 1);
        size_t ho = block_start(count, p, held), he = block_start(count, p, held + m);
        size_t to = block_start(count, p, theirs), te = block_start(count, p, theirs + m);
        hs_copy own = {(char *)buf + ho * es, mine, (he - ho) * es};
        const void *src = m == 1 ? mine : (const char *)buf + ho * es;
        st = hs_exchange(rt, &s, c->coll, src, (he - ho) * es, r ^ m, (char *)buf + to * es, (te - to) * es, r ^ m, m,
                         m == 1 ? &own : NULL);
    }
    hs_reqset_free(&s);
    return st;
}
