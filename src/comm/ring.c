/* Ring reduce-scatter and all-gather over point-to-point messages.
 *
 * Reduce-scatter: in step s (0 .. p-2) rank r sends block (r-s-1) mod p to
 * r+1 and receives block (r-s-2) mod p from r-1, adding its own input of
 * that block. Block b therefore starts at rank b+1 and is summed in the
 * fixed order b+1, b+2, ..., b; its last step lands at its owner b, who
 * rounds it once. The first step ships raw inputs; later steps ship the
 * fp32 partial sums of 16-bit dtypes, so nothing is rounded on the way. */
#include "comm/comm_internal.h"
#include "comm/scratch.h"

static int mod(int a, int p)
{
    return ((a % p) + p) % p;
}

hs_status hs_ring_reduce_scatter(hs_runtime *rt, hs_comm *c, const void *in, void *out, size_t count, hs_dtype dt,
                                 hs_reduce_op op)
{
    int p = c->size, r = c->rank;
    size_t es = hs_dtype_size(dt), as = hs_comm_acc_size(dt);
    size_t maxblk = hs_ring_scratch_elems(count, p);
    void *rbuf, *acc[2];
    HS_TRY(hs_progress_scratch(rt, 0, maxblk * as, &rbuf));
    HS_TRY(hs_progress_scratch(rt, 1, maxblk * as, &acc[0]));
    HS_TRY(hs_progress_scratch(rt, 2, maxblk * as, &acc[1]));
    int right = mod(r + 1, p), left = mod(r - 1, p), cur = 0;
    hs_reqset s = {0};
    hs_status st = HS_OK;
    for (int step = 0; step < p - 1 && st == HS_OK; step++) {
        size_t soff, slen, roff, rlen;
        hs_comm_block(count, p, mod(r - step - 1, p), &soff, &slen);
        hs_comm_block(count, p, mod(r - step - 2, p), &roff, &rlen);
        size_t ws = step == 0 ? es : as; /* bytes per element on the wire */
        const void *src = step == 0 ? (const char *)in + soff * es : acc[cur ^ 1];
        st = hs_exchange(rt, &s, c->coll, src, slen * ws, right, rbuf, rlen * ws, left, step, NULL);
        if (st != HS_OK)
            break;
        int last = step == p - 2;
        hs_comm_combine(last ? out : acc[cur], !last, rbuf, step > 0, (const char *)in + roff * es, 0, rlen, dt, op,
                        last ? p : 0);
        cur ^= 1;
    }
    hs_reqset_free(&s);
    return st;
}

/* Step s: send block (r-s) mod p right, receive block (r-s-1) mod p from
 * the left, in place in buf. Step 0 sends this rank's block from `mine`
 * and copies it into buf meanwhile. */
hs_status hs_ring_allgather(hs_runtime *rt, hs_comm *c, const void *mine, void *buf, size_t count, hs_dtype dt)
{
    int p = c->size, r = c->rank;
    size_t es = hs_dtype_size(dt);
    hs_reqset s = {0};
    hs_status st = HS_OK;
    for (int step = 0; step < p - 1 && st == HS_OK; step++) {
        size_t soff, slen, roff, rlen;
        hs_comm_block(count, p, mod(r - step, p), &soff, &slen);
        hs_comm_block(count, p, mod(r - step - 1, p), &roff, &rlen);
        hs_copy own = {(char *)buf + soff * es, mine, slen * es};
        const void *src = step == 0 ? mine : (const char *)buf + soff * es;
        st = hs_exchange(rt, &s, c->coll, src, slen * es, mod(r + 1, p), (char *)buf + roff * es, rlen * es,
                         mod(r - 1, p), step, step == 0 ? &own : NULL);
    }
    hs_reqset_free(&s);
    return st;
}
