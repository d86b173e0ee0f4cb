/* Runs one queued operation on the progress thread: reductions through our
 * ring or halving-doubling algorithms (any dtype), data movement through
 * point-to-point messages or MPI's byte-exact collectives. */
#include "comm/comm_internal.h"

#include <string.h>

static hs_status reduce_scatter(hs_runtime *rt, hs_comm *c, const void *in, void *out, size_t count, hs_dtype dt,
                                 hs_reduce_op op, hs_comm_algo algo)
{
    if (algo == HS_ALGO_HALVING_DOUBLING)
        return hs_hd_reduce_scatter(rt, c, in, out, count, dt, op);
    return hs_ring_reduce_scatter(rt, c, in, out, count, dt, op);
}

static hs_status allgather(hs_runtime *rt, hs_comm *c, const void *mine, void *buf, size_t count, hs_dtype dt,
                           hs_comm_algo algo)
{
    if (algo == HS_ALGO_HALVING_DOUBLING)
        return hs_hd_allgather(rt, c, mine, buf, count, dt);
    return hs_ring_allgather(rt, c, mine, buf, count, dt);
}

static hs_status run_reduction(hs_runtime *rt, hs_comm_request *q)
{
    hs_comm *c = q->comm;
    size_t es = hs_dtype_size(q->dt), off, len;
    hs_comm_block(q->count, c->size, c->rank, &off, &len);
    if (c->size == 1) {
        /* AVG over one rank is the identity. */
        if (q->recv != q->send)
            memmove(q->recv, q->send, q->count * es);
        return HS_OK;
    }
    hs_comm_algo algo = hs_comm_pick_algorithm(c->algo, c->size, c->nodes, q->count * es);
    if (q->kind == HS_COLL_REDUCE_SCATTER)
        return reduce_scatter(rt, c, q->send, q->recv, q->count, q->dt, q->op, algo);
    char *mine = (char *)q->recv + off * es;
    HS_TRY(reduce_scatter(rt, c, q->send, mine, q->count, q->dt, q->op, algo));
    return allgather(rt, c, mine, q->recv, q->count, q->dt, algo);
}

static hs_status run_allgather(hs_runtime *rt, hs_comm_request *q)
{
    hs_comm *c = q->comm;
    size_t es = hs_dtype_size(q->dt), off, len;
    hs_comm_block(q->count, c->size, c->rank, &off, &len);
    if (c->size == 1) {
        memmove((char *)q->recv + off * es, q->send, len * es);
        return HS_OK;
    }
    hs_comm_algo algo = hs_comm_pick_algorithm(c->algo, c->size, c->nodes, q->count * es);
    return allgather(rt, c, q->send, q->recv, q->count, q->dt, algo);
}

/* All-to-all(v) as every pair's messages posted at once; the own block is
 * a local copy. */
static hs_status run_alltoall(hs_runtime *rt, hs_comm_request *q)
{
    hs_comm *c = q->comm;
    int p = c->size;
    size_t es = hs_dtype_size(q->dt);
    hs_reqset s = {0};
    hs_status st = HS_OK;
    for (int k = 0; k < p && st == HS_OK; k++) {
        int j = (c->rank + k) % p, from = (c->rank - k + p) % p;
        size_t sc = q->v ? q->v[j] : q->count, sd = q->v ? q->v[p + j] : (size_t)j * q->count;
        size_t rc = q->v ? q->v[2 * p + from] : q->count, rd = q->v ? q->v[3 * p + from] : (size_t)from * q->count;
        const char *sp = (const char *)q->send + sd * es;
        char *rp = (char *)q->recv + rd * es;
        if (k == 0) {
            if (sc)
                memcpy(rp, sp, sc * es);
            continue;
        }
        st = hs_reqset_irecv(&s, rp, rc * es, from, 0, c->coll);
        if (st == HS_OK)
            st = hs_reqset_isend(&s, sp, sc * es, j, 0, c->coll);
    }
    if (st == HS_OK)
        st = hs_progress_wait(rt, &s);
    hs_reqset_free(&s);
    return st;
}

#define PIECE ((size_t)1 << 30)

static hs_status run_broadcast(hs_runtime *rt, hs_comm_request *q)
{
    size_t bytes = q->count * hs_dtype_size(q->dt);
    hs_reqset s = {0};
    hs_status st = HS_OK;
    int rc;
    for (size_t off = 0; off < bytes && st == HS_OK; off += PIECE) {
        size_t len = bytes - off < PIECE ? bytes - off : PIECE;
        MPI_Request *req = hs_reqset_slot(&s);
        if (!req)
            st = HS_ERR_OUT_OF_MEMORY;
        else if ((rc = MPI_Ibcast((char *)q->recv + off, (int)len, MPI_BYTE, q->peer, q->comm->coll, req)))
            st = hs_mpi_error(rc, "MPI_Ibcast");
    }
    if (st == HS_OK)
        st = hs_progress_wait(rt, &s);
    hs_reqset_free(&s);
    return st;
}

static hs_status run_barrier(hs_runtime *rt, hs_comm_request *q)
{
    hs_reqset s = {0};
    MPI_Request *req = hs_reqset_slot(&s);
    hs_status st = HS_ERR_OUT_OF_MEMORY;
    if (req) {
        int rc = MPI_Ibarrier(q->comm->coll, req);
        st = rc == MPI_SUCCESS ? hs_progress_wait(rt, &s) : hs_mpi_error(rc, "MPI_Ibarrier");
    }
    hs_reqset_free(&s);
    return st;
}

/* Posts a send/receive; the progress thread completes it later (progress.c). */
static hs_status post_p2p(hs_comm_request *q)
{
    size_t bytes = q->count * hs_dtype_size(q->dt);
    if (q->kind == HS_COLL_SEND)
        return hs_reqset_isend(&q->inflight, q->send, bytes, q->peer, q->tag, q->comm->p2p);
    return hs_reqset_irecv(&q->inflight, q->recv, bytes, q->peer, q->tag, q->comm->p2p);
}

hs_status hs_exec(hs_runtime *rt, hs_comm_request *q)
{
    switch (q->kind) {
    case HS_COLL_ALLREDUCE:
    case HS_COLL_REDUCE_SCATTER: return q->count ? run_reduction(rt, q) : HS_OK;
    case HS_COLL_ALLGATHER: return q->count ? run_allgather(rt, q) : HS_OK;
    case HS_COLL_BROADCAST: return run_broadcast(rt, q);
    case HS_COLL_ALLTOALL:
    case HS_COLL_ALLTOALLV: return run_alltoall(rt, q);
    case HS_COLL_BARRIER: return run_barrier(rt, q);
    case HS_COLL_SEND:
    case HS_COLL_RECV: return post_p2p(q);
    default: return hs_error(HS_ERR_INTERNAL, "comm: unknown operation %d", (int)q->kind);
    }
}
