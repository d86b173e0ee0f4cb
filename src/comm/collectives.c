/* The public collectives: argument checks on the caller's thread, then a
 * request queued for the progress thread (async forms), or run to the end
 * (blocking forms: inline when the progress thread is idle, else queued
 * and waited for). */
#include "comm/comm_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAG 32767

int hs_comm_rank(const hs_comm *c)
{
    return c->rank;
}

int hs_comm_size(const hs_comm *c)
{
    return c->size;
}

hs_group hs_comm_group(const hs_comm *c)
{
    return c->group;
}

hs_status hs_comm_set_algorithm(hs_comm *c, hs_comm_algo algo)
{
    if (!c || (unsigned)algo > HS_ALGO_HALVING_DOUBLING)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_set_algorithm: %s", c ? "unknown algorithm" : "NULL comm");
    c->algo = algo;
    return HS_OK;
}

/* Common checks: comm, dtype, element count. */
static hs_status check(const char *fn, hs_comm *c, hs_dtype dt, size_t count)
{
    if (!c)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL comm", fn);
    if (dt != HS_FP32 && dt != HS_BF16 && dt != HS_FP16 && dt != HS_INT32 && dt != HS_INT64)
        return hs_error(HS_ERR_DTYPE, "%s: dtype %s is not one of fp32, bf16, fp16, int32, int64", fn,
                        hs_dtype_name(dt));
    if (count > SIZE_MAX / 8 / (size_t)c->size)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: count %zu is too large", fn, count);
    return HS_OK;
}

static hs_status check_buf(const char *fn, const char *name, const void *p, size_t count)
{
    if (!p && count)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL %s with %zu elements", fn, name, count);
    return HS_OK;
}

static hs_status check_op(const char *fn, hs_dtype dt, hs_reduce_op op)
{
    if ((unsigned)op >= HS_REDUCE_COUNT)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: unknown reduce op %d", fn, (int)op);
    if (op == HS_REDUCE_AVG && (dt == HS_INT32 || dt == HS_INT64))
        return hs_error(HS_ERR_DTYPE, "%s: AVG needs a floating dtype, got %s", fn, hs_dtype_name(dt));
    return HS_OK;
}

static hs_status check_rank(const char *fn, const char *what, hs_comm *c, int r)
{
    if (r < 0 || r >= c->size)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s %d outside group %s of size %d", fn, what, r,
                        hs_group_name(c->group), c->size);
    return HS_OK;
}

/* Copies the template into a new request (which takes over t->v) and
 * queues it. */
static hs_status queue(hs_comm *c, hs_comm_request *t, hs_comm_request **req)
{
    if (!req) {
        free(t->v);
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_i%s: NULL request pointer", hs_coll_name(t->kind));
    }
    *req = NULL;
    hs_comm_request *r = malloc(sizeof *r);
    if (!r) {
        free(t->v);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: request");
    }
    *r = *t;
    r->comm = c;
    hs_progress_submit(c->rt, r);
    *req = r;
    return HS_OK;
}

/* Runs t to completion: inline on this thread when the progress thread is
 * idle, else queued and waited for. */
static hs_status run(hs_comm *c, hs_comm_request *t)
{
    t->comm = c;
    hs_status st;
    if (t->kind != HS_COLL_SEND && t->kind != HS_COLL_RECV && hs_progress_run_inline(c->rt, t, &st)) {
        free(t->v);
        return st;
    }
    hs_comm_request *r = NULL;
    HS_TRY(queue(c, t, &r));
    return hs_comm_wait(&r);
}

static hs_status prep_allreduce(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                hs_reduce_op op, hs_comm_request *t)
{
    const char *fn = "hs_comm_allreduce";
    HS_TRY(check(fn, c, dt, count));
    HS_TRY(check_op(fn, dt, op));
    HS_TRY(check_buf(fn, "send", send, count));
    HS_TRY(check_buf(fn, "recv", recv, count));
    *t = (hs_comm_request){.kind = HS_COLL_ALLREDUCE, .send = send, .recv = recv, .count = count, .dt = dt, .op = op};
    return HS_OK;
}

static hs_status prep_reduce_scatter(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                     hs_reduce_op op, hs_comm_request *t)
{
    const char *fn = "hs_comm_reduce_scatter";
    HS_TRY(check(fn, c, dt, count));
    HS_TRY(check_op(fn, dt, op));
    size_t off, len;
    hs_comm_block(count, c->size, c->rank, &off, &len);
    HS_TRY(check_buf(fn, "send", send, count));
    HS_TRY(check_buf(fn, "recv", recv, len));
    *t = (hs_comm_request){
        .kind = HS_COLL_REDUCE_SCATTER, .send = send, .recv = recv, .count = count, .dt = dt, .op = op};
    return HS_OK;
}

static hs_status prep_allgather(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                hs_comm_request *t)
{
    const char *fn = "hs_comm_allgather";
    HS_TRY(check(fn, c, dt, count));
    size_t off, len;
    hs_comm_block(count, c->size, c->rank, &off, &len);
    HS_TRY(check_buf(fn, "send", send, len));
    HS_TRY(check_buf(fn, "recv", recv, count));
    *t = (hs_comm_request){.kind = HS_COLL_ALLGATHER, .send = send, .recv = recv, .count = count, .dt = dt};
    return HS_OK;
}

static hs_status prep_broadcast(hs_comm *c, void *buf, size_t count, hs_dtype dt, int root, hs_comm_request *t)
{
    const char *fn = "hs_comm_broadcast";
    HS_TRY(check(fn, c, dt, count));
    HS_TRY(check_buf(fn, "buf", buf, count));
    HS_TRY(check_rank(fn, "root", c, root));
    *t = (hs_comm_request){.kind = HS_COLL_BROADCAST, .send = buf, .recv = buf, .count = count, .dt = dt, .peer = root};
    return HS_OK;
}

static hs_status prep_alltoall(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                               hs_comm_request *t)
{
    const char *fn = "hs_comm_alltoall";
    HS_TRY(check(fn, c, dt, count));
    HS_TRY(check_buf(fn, "send", send, count));
    HS_TRY(check_buf(fn, "recv", recv, count));
    *t = (hs_comm_request){.kind = HS_COLL_ALLTOALL, .send = send, .recv = recv, .count = count, .dt = dt};
    return HS_OK;
}

/* The four arrays are copied into t->v (released with the request). */
static hs_status prep_alltoallv(hs_comm *c, const void *send, const size_t *scounts, const size_t *sdispls,
                                void *recv, const size_t *rcounts, const size_t *rdispls, hs_dtype dt,
                                hs_comm_request *t)
{
    const char *fn = "hs_comm_alltoallv";
    HS_TRY(check(fn, c, dt, 0));
    if (!scounts || !sdispls || !rcounts || !rdispls)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL count or displacement array", fn);
    int p = c->size;
    size_t sany = 0, rany = 0;
    for (int j = 0; j < p; j++) {
        sany |= scounts[j];
        rany |= rcounts[j];
    }
    HS_TRY(check_buf(fn, "send", send, sany));
    HS_TRY(check_buf(fn, "recv", recv, rany));
    if (scounts[c->rank] != rcounts[c->rank])
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: rank %d sends itself %zu elements but expects %zu", fn,
                        c->rank, scounts[c->rank], rcounts[c->rank]);
    *t = (hs_comm_request){.kind = HS_COLL_ALLTOALLV, .send = send, .recv = recv, .dt = dt};
    t->v = malloc(4 * (size_t)p * sizeof *t->v);
    if (!t->v)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: counts of %d ranks", fn, p);
    const size_t *src[4] = {scounts, sdispls, rcounts, rdispls};
    for (int k = 0; k < 4; k++)
        memcpy(t->v + (size_t)k * p, src[k], (size_t)p * sizeof *t->v);
    return HS_OK;
}

static hs_status prep_p2p(const char *fn, hs_coll kind, hs_comm *c, void *buf, size_t count, hs_dtype dt, int peer,
                          int tag, hs_comm_request *t)
{
    HS_TRY(check(fn, c, dt, count));
    HS_TRY(check_buf(fn, "buf", buf, count));
    HS_TRY(check_rank(fn, "peer", c, peer));
    if (tag < 0 || tag > MAX_TAG)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tag %d outside [0, %d]", fn, tag, MAX_TAG);
    *t = (hs_comm_request){.kind = kind, .send = buf, .recv = buf, .count = count, .dt = dt, .peer = peer, .tag = tag};
    return HS_OK;
}

static hs_status prep_barrier(hs_comm *c, hs_comm_request *t)
{
    HS_TRY(check("hs_comm_barrier", c, HS_INT32, 0));
    *t = (hs_comm_request){.kind = HS_COLL_BARRIER, .dt = HS_INT32};
    return HS_OK;
}

/* ---- the public pairs: prepare, then queue (async) or run (blocking) */

hs_status hs_comm_iallreduce(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt, hs_reduce_op op,
                             hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_allreduce(c, send, recv, count, dt, op, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_allreduce(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt, hs_reduce_op op)
{
    hs_comm_request t;
    HS_TRY(prep_allreduce(c, send, recv, count, dt, op, &t));
    return run(c, &t);
}

hs_status hs_comm_ireduce_scatter(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                  hs_reduce_op op, hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_reduce_scatter(c, send, recv, count, dt, op, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_reduce_scatter(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                 hs_reduce_op op)
{
    hs_comm_request t;
    HS_TRY(prep_reduce_scatter(c, send, recv, count, dt, op, &t));
    return run(c, &t);
}

hs_status hs_comm_iallgather(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                             hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_allgather(c, send, recv, count, dt, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_allgather(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt)
{
    hs_comm_request t;
    HS_TRY(prep_allgather(c, send, recv, count, dt, &t));
    return run(c, &t);
}

hs_status hs_comm_ibroadcast(hs_comm *c, void *buf, size_t count, hs_dtype dt, int root, hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_broadcast(c, buf, count, dt, root, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_broadcast(hs_comm *c, void *buf, size_t count, hs_dtype dt, int root)
{
    hs_comm_request t;
    HS_TRY(prep_broadcast(c, buf, count, dt, root, &t));
    return run(c, &t);
}

hs_status hs_comm_ialltoall(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                            hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_alltoall(c, send, recv, count, dt, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_alltoall(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt)
{
    hs_comm_request t;
    HS_TRY(prep_alltoall(c, send, recv, count, dt, &t));
    return run(c, &t);
}

hs_status hs_comm_ialltoallv(hs_comm *c, const void *send, const size_t *scounts, const size_t *sdispls, void *recv,
                             const size_t *rcounts, const size_t *rdispls, hs_dtype dt, hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_alltoallv(c, send, scounts, sdispls, recv, rcounts, rdispls, dt, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_alltoallv(hs_comm *c, const void *send, const size_t *scounts, const size_t *sdispls, void *recv,
                            const size_t *rcounts, const size_t *rdispls, hs_dtype dt)
{
    hs_comm_request t;
    HS_TRY(prep_alltoallv(c, send, scounts, sdispls, recv, rcounts, rdispls, dt, &t));
    return run(c, &t);
}

hs_status hs_comm_isend(hs_comm *c, const void *buf, size_t count, hs_dtype dt, int peer, int tag,
                        hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_p2p("hs_comm_send", HS_COLL_SEND, c, (void *)buf, count, dt, peer, tag, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_send(hs_comm *c, const void *buf, size_t count, hs_dtype dt, int peer, int tag)
{
    hs_comm_request t;
    HS_TRY(prep_p2p("hs_comm_send", HS_COLL_SEND, c, (void *)buf, count, dt, peer, tag, &t));
    return run(c, &t);
}

hs_status hs_comm_irecv(hs_comm *c, void *buf, size_t count, hs_dtype dt, int peer, int tag, hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_p2p("hs_comm_recv", HS_COLL_RECV, c, buf, count, dt, peer, tag, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_recv(hs_comm *c, void *buf, size_t count, hs_dtype dt, int peer, int tag)
{
    hs_comm_request t;
    HS_TRY(prep_p2p("hs_comm_recv", HS_COLL_RECV, c, buf, count, dt, peer, tag, &t));
    return run(c, &t);
}

hs_status hs_comm_ibarrier(hs_comm *c, hs_comm_request **req)
{
    hs_comm_request t;
    HS_TRY(prep_barrier(c, &t));
    return queue(c, &t, req);
}

hs_status hs_comm_barrier(hs_comm *c)
{
    hs_comm_request t;
    HS_TRY(prep_barrier(c, &t));
    return run(c, &t);
}
