/* Every collective x dtype x size (including 0, 1 and sizes the group does
 * not divide) against a reference computed locally in double; bitwise
 * identity of results across ranks, across algorithms' in-place and
 * out-of-place forms and across arrival orders; asynchronous overlap;
 * point-to-point; bad arguments. Runs on the world and, given --tp N, on
 * the tp and dp groups of that grid too (all tp groups at once, then all dp
 * groups). */
#include "mpi_check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const hs_dtype dtypes[] = {HS_FP32, HS_BF16, HS_FP16, HS_INT32, HS_INT64};
static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 64, 1000, 4099, 65537};
#define BIG ((size_t)(1 << 20) + 3)

static int is_float(hs_dtype dt)
{
    return dt == HS_FP32 || dt == HS_BF16 || dt == HS_FP16;
}

static void store(void *buf, size_t i, hs_dtype dt, double x)
{
    switch (dt) {
    case HS_FP32: ((float *)buf)[i] = (float)x; break;
    case HS_BF16: ((uint16_t *)buf)[i] = hs_fp32_to_bf16((float)x); break;
    case HS_FP16: ((uint16_t *)buf)[i] = hs_fp32_to_fp16((float)x); break;
    case HS_INT32: ((int32_t *)buf)[i] = (int32_t)x; break;
    default: ((int64_t *)buf)[i] = (int64_t)x; break;
    }
}

static double load(const void *buf, size_t i, hs_dtype dt)
{
    switch (dt) {
    case HS_FP32: return ((const float *)buf)[i];
    case HS_BF16: return hs_bf16_to_fp32(((const uint16_t *)buf)[i]);
    case HS_FP16: return hs_fp16_to_fp32(((const uint16_t *)buf)[i]);
    case HS_INT32: return ((const int32_t *)buf)[i];
    default: return (double)((const int64_t *)buf)[i];
    }
}

/* Rank r's input element i, as stored in dt and read back. */
static double input(int r, size_t i, hs_dtype dt)
{
    int v = (int)((r * 7919u + i * 104729u + 13u) % 2001u) - 1000;
    double x = is_float(dt) ? v / 32.0 : dt == HS_INT64 ? v + (double)r * 1099511627776.0 : v;
    char tmp[8];
    store(tmp, 0, dt, x);
    return load(tmp, 0, dt);
}

static void *fill(int r, size_t n, hs_dtype dt)
{
    char *b = malloc(n * hs_dtype_size(dt) + 8);
    for (size_t i = 0; i < n; i++)
        store(b, i, dt, input(r, i, dt));
    return b;
}

/* Checks element i of a reduction over p ranks against the double reference. */
static int reduced_ok(double got, size_t i, int p, hs_dtype dt, hs_reduce_op op)
{
    double ref = input(0, i, dt), sum_abs = fabs(ref);
    for (int r = 1; r < p; r++) {
        double x = input(r, i, dt);
        sum_abs += fabs(x);
        if (op == HS_REDUCE_MAX)
            ref = x > ref ? x : ref;
        else if (op == HS_REDUCE_MIN)
            ref = x < ref ? x : ref;
        else
            ref += x;
    }
    if (op == HS_REDUCE_AVG)
        ref /= p;
    if (!is_float(dt) || op == HS_REDUCE_MAX || op == HS_REDUCE_MIN)
        return got == ref;
    double eps = dt == HS_FP32 ? 0x1p-24 : dt == HS_BF16 ? 0x1p-8 : 0x1p-11;
    return fabs(got - ref) <= eps * fabs(ref) + p * 0x1p-23 * sum_abs;
}

static uint64_t hash(const void *b, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)b)[i]) * 1099511628211ull;
    return h;
}

/* Every rank of c holds the same hash. */
static int same_everywhere(hs_comm *c, uint64_t h)
{
    int p = hs_comm_size(c);
    int64_t *all = malloc((size_t)p * sizeof *all), mine = (int64_t)h;
    int ok = hs_comm_allgather(c, &mine, all, (size_t)p, HS_INT64) == HS_OK;
    for (int r = 0; ok && r < p; r++)
        ok = all[r] == all[0];
    free(all);
    return ok;
}

static const char *op_names[] = {"sum", "avg", "max", "min"};

/* All-reduce and reduce-scatter of n elements with one algorithm. */
static void check_reduction(hs_comm *c, hs_dtype dt, hs_reduce_op op, size_t n, hs_comm_algo algo)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    size_t es = hs_dtype_size(dt), off, len;
    hs_comm_block(n, p, r, &off, &len);
    CHECK_OK(hs_comm_set_algorithm(c, algo));
    char *in = fill(r, n, dt), *ar = malloc(n * es + 8), *rs = malloc(len * es + 8), *inplace = fill(r, n, dt);
    CHECK_OK(hs_comm_allreduce(c, in, ar, n, dt, op));
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !reduced_ok(load(ar, i, dt), i, p, dt, op);
    CHECK(bad == 0, "%s allreduce %s n=%zu algo %d on %s: %d wrong elements", hs_dtype_name(dt), op_names[op], n,
          (int)algo, hs_group_name(hs_comm_group(c)), bad);
    CHECK(same_everywhere(c, hash(ar, n * es)), "%s allreduce %s n=%zu: results differ between ranks",
          hs_dtype_name(dt), op_names[op], n);
    CHECK_OK(hs_comm_allreduce(c, inplace, inplace, n, dt, op));
    CHECK(memcmp(inplace, ar, n * es) == 0, "%s allreduce n=%zu: in place differs", hs_dtype_name(dt), n);
    CHECK_OK(hs_comm_reduce_scatter(c, in, rs, n, dt, op));
    CHECK(memcmp(rs, ar + off * es, len * es) == 0, "%s reduce_scatter %s n=%zu: block differs from allreduce",
          hs_dtype_name(dt), op_names[op], n);
    memcpy(inplace, in, n * es);
    CHECK_OK(hs_comm_reduce_scatter(c, inplace, inplace + off * es, n, dt, op));
    CHECK(memcmp(inplace + off * es, ar + off * es, len * es) == 0, "%s reduce_scatter n=%zu: in place differs",
          hs_dtype_name(dt), n);
    free(in);
    free(ar);
    free(rs);
    free(inplace);
}

/* The same all-reduce with ranks arriving in a different order gives the
 * same bits. */
static void check_arrival_order(hs_comm *c, hs_dtype dt)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    size_t n = 10007, es = hs_dtype_size(dt);
    char *in = fill(r, n, dt), *a = malloc(n * es), *b = malloc(n * es);
    CHECK_OK(hs_comm_set_algorithm(c, HS_ALGO_AUTO));
    CHECK_OK(hs_comm_allreduce(c, in, a, n, dt, HS_REDUCE_SUM));
    for (int round = 0; round < 3; round++) {
        usleep((useconds_t)(((r + round) % p) * 3000));
        CHECK_OK(hs_comm_allreduce(c, in, b, n, dt, HS_REDUCE_SUM));
        CHECK(memcmp(a, b, n * es) == 0, "%s allreduce differs with arrival order %d", hs_dtype_name(dt), round);
    }
    free(in);
    free(a);
    free(b);
}

static void check_allgather(hs_comm *c, hs_dtype dt, size_t n)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    size_t es = hs_dtype_size(dt), off, len;
    hs_comm_block(n, p, r, &off, &len);
    char *want = fill(7, n, dt), *got = malloc(n * es + 8), *inplace = calloc(n + 1, es);
    CHECK_OK(hs_comm_allgather(c, want + off * es, got, n, dt));
    CHECK(memcmp(got, want, n * es) == 0, "%s allgather n=%zu on %s differs", hs_dtype_name(dt), n,
          hs_group_name(hs_comm_group(c)));
    memcpy(inplace + off * es, want + off * es, len * es);
    CHECK_OK(hs_comm_allgather(c, inplace + off * es, inplace, n, dt));
    CHECK(memcmp(inplace, want, n * es) == 0, "%s allgather n=%zu in place differs", hs_dtype_name(dt), n);
    free(want);
    free(got);
    free(inplace);
}

static void check_broadcast(hs_comm *c, hs_dtype dt, size_t n)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c), root = p - 1;
    size_t es = hs_dtype_size(dt);
    char *want = fill(root, n, dt), *buf = r == root ? fill(root, n, dt) : fill(r + 100, n, dt);
    CHECK_OK(hs_comm_broadcast(c, buf, n, dt, root));
    CHECK(memcmp(buf, want, n * es) == 0, "%s broadcast n=%zu differs", hs_dtype_name(dt), n);
    free(want);
    free(buf);
}

/* Element k of what rank `from` sends rank `to`. */
static double a2a_value(int from, int to, size_t k)
{
    return (double)((from * 31 + to * 7 + (int)(k % 97)) % 200);
}

static void check_alltoall(hs_comm *c, hs_dtype dt, size_t n)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    size_t es = hs_dtype_size(dt);
    char *s = malloc((size_t)p * n * es + 8), *d = malloc((size_t)p * n * es + 8);
    for (int j = 0; j < p; j++)
        for (size_t k = 0; k < n; k++)
            store(s, (size_t)j * n + k, dt, a2a_value(r, j, k));
    CHECK_OK(hs_comm_alltoall(c, s, d, n, dt));
    int bad = 0;
    for (int j = 0; j < p; j++)
        for (size_t k = 0; k < n; k++)
            bad += load(d, (size_t)j * n + k, dt) != a2a_value(j, r, k);
    CHECK(bad == 0, "%s alltoall n=%zu: %d wrong", hs_dtype_name(dt), n, bad);
    free(s);
    free(d);
}

/* Rank i sends rank j (i + j) % 3 * scale elements: symmetric, so the
 * receive counts are the same formula. */
static void check_alltoallv(hs_comm *c, hs_dtype dt, size_t scale)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    size_t es = hs_dtype_size(dt), sc[64], sd[64], rc[64], rd[64], st = 0, rt = 0;
    for (int j = 0; j < p; j++) {
        sc[j] = rc[j] = (size_t)((r + j) % 3) * scale;
        sd[j] = st;
        rd[j] = rt + 1; /* gaps in the receive buffer stay untouched */
        st += sc[j];
        rt += rc[j] + 1;
    }
    char *s = malloc(st * es + 8), *d = calloc(rt + 1, es);
    for (int j = 0; j < p; j++)
        for (size_t k = 0; k < sc[j]; k++)
            store(s, sd[j] + k, dt, a2a_value(r, j, k));
    CHECK_OK(hs_comm_alltoallv(c, s, sc, sd, d, rc, rd, dt));
    int bad = 0;
    for (int j = 0; j < p; j++) {
        bad += load(d, rd[j] - 1, dt) != 0;
        for (size_t k = 0; k < rc[j]; k++)
            bad += load(d, rd[j] + k, dt) != a2a_value(j, r, k);
    }
    CHECK(bad == 0, "%s alltoallv scale %zu: %d wrong", hs_dtype_name(dt), scale, bad);
    free(s);
    free(d);
}

/* Both halves of a ring exchange posted asynchronously, large enough for
 * MPI's rendezvous protocol: must not deadlock. */
static void check_p2p(hs_comm *c)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    if (p < 2)
        return;
    size_t n = (size_t)1 << 20;
    float *s = fill(r, n, HS_FP32), *d = malloc(n * sizeof *d);
    for (int rep = 0; rep < 2; rep++) {
        hs_comm_request *q[2] = {NULL, NULL};
        CHECK_OK(hs_comm_isend(c, s, n, HS_FP32, (r + 1) % p, 5, &q[0]));
        CHECK_OK(hs_comm_irecv(c, d, n, HS_FP32, (r + p - 1) % p, 5, &q[1]));
        CHECK_OK(hs_comm_waitall(q, 2));
        int bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += d[i] != (float)input((r + p - 1) % p, i, HS_FP32);
        CHECK(bad == 0, "ring exchange: %d wrong", bad);
    }
    /* blocking send/recv between ranks 0 and 1, then a count mismatch */
    if (r < 2) {
        int peer = 1 - r;
        int32_t v[12] = {r}, w[12] = {0};
        if (r == 0) {
            CHECK_OK(hs_comm_send(c, v, 1, HS_INT32, peer, 9));
            CHECK_OK(hs_comm_send(c, v, 10, HS_INT32, peer, 9));
        } else {
            CHECK_OK(hs_comm_recv(c, w, 1, HS_INT32, peer, 9));
            CHECK(w[0] == 0, "recv got %d", w[0]);
            hs_status st = hs_comm_recv(c, w, 12, HS_INT32, peer, 9);
            CHECK(st == HS_ERR_COMM && strstr(hs_last_error(), "expected 48 B, got 40 B"),
                  "short message: %s %s", hs_status_str(st), hs_last_error());
        }
    }
    free(s);
    free(d);
}

/* Start an all-reduce, compute, then wait: the progress thread moves it
 * while this thread computes. Several in flight at once. */
static void check_async(hs_comm *c)
{
    int p = hs_comm_size(c), r = hs_comm_rank(c);
    size_t n = (size_t)1 << 21;
    float *a = fill(r, n, HS_FP32), *b = malloc(n * sizeof *b);
    hs_comm_request *q = NULL;
    double t0 = hs_time_now();
    CHECK_OK(hs_comm_iallreduce(c, a, b, n, HS_FP32, HS_REDUCE_SUM, &q));
    double t_post = hs_time_now() - t0, acc = 0;
    for (long i = 0; i < 20000000; i++)
        acc += (double)(i & 7) * 1e-9;
    double t_compute = hs_time_now() - t0 - t_post;
    int done = 0;
    CHECK_OK(hs_comm_test(&q, &done));
    double t1 = hs_time_now();
    CHECK_OK(hs_comm_wait(&q));
    double t_wait = hs_time_now() - t1;
    CHECK(q == NULL, "wait leaves the request");
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !reduced_ok(b[i], i, p, HS_FP32, HS_REDUCE_SUM);
    CHECK(bad == 0, "async allreduce: %d wrong (acc %g)", bad, acc);
    if (r == 0)
        printf("async on %s: post %.3f ms, compute %.1f ms, done after compute: %d, wait %.3f ms\n",
               hs_group_name(hs_comm_group(c)), t_post * 1e3, t_compute * 1e3, done, t_wait * 1e3);

    enum { K = 6 };
    hs_comm_request *qs[K];
    float *bufs[K];
    for (int k = 0; k < K; k++) {
        bufs[k] = fill(r + k, 3000 + (size_t)k, HS_FP32);
        CHECK_OK(hs_comm_iallreduce(c, bufs[k], bufs[k], 3000 + (size_t)k, HS_FP32, HS_REDUCE_MAX, &qs[k]));
    }
    CHECK_OK(hs_comm_waitall(qs, K));
    for (int k = 0; k < K; k++) {
        double want = input(k, 11, HS_FP32);
        for (int j = 1; j < p; j++)
            want = fmax(want, input(j + k, 11, HS_FP32));
        CHECK(bufs[k][11] == (float)want, "waitall max %d: %g vs %g", k, bufs[k][11], want);
        free(bufs[k]);
    }
    free(a);
    free(b);
}

/* Errors found before anything is queued: the same on every rank. */
static void check_bad_args(hs_comm *c)
{
    float x[4] = {0};
    int32_t k[4] = {0};
    hs_comm_request *q = NULL;
    CHECK(hs_comm_allreduce(c, NULL, x, 4, HS_FP32, HS_REDUCE_SUM) == HS_ERR_INVALID_ARGUMENT, "NULL send");
    CHECK(hs_comm_allreduce(c, k, k, 4, HS_INT32, HS_REDUCE_AVG) == HS_ERR_DTYPE, "avg int");
    CHECK(strstr(hs_last_error(), "AVG needs a floating dtype") != NULL, "%s", hs_last_error());
    CHECK(hs_comm_allreduce(c, x, x, 4, HS_INT8, HS_REDUCE_SUM) == HS_ERR_DTYPE, "int8");
    CHECK(hs_comm_allreduce(c, x, x, 4, HS_FP32, (hs_reduce_op)9) == HS_ERR_INVALID_ARGUMENT, "bad op");
    CHECK(hs_comm_broadcast(c, x, 4, HS_FP32, hs_comm_size(c)) == HS_ERR_INVALID_ARGUMENT, "bad root");
    CHECK(hs_comm_send(c, x, 4, HS_FP32, 0, 40000) == HS_ERR_INVALID_ARGUMENT, "bad tag");
    CHECK(hs_comm_recv(c, x, 4, HS_FP32, -1, 0) == HS_ERR_INVALID_ARGUMENT, "bad peer");
    CHECK(hs_comm_iallreduce(c, x, x, 4, HS_FP32, HS_REDUCE_SUM, NULL) == HS_ERR_INVALID_ARGUMENT, "NULL req");
    CHECK(hs_comm_wait(&q) == HS_OK, "wait NULL");
    CHECK(hs_comm_set_algorithm(c, (hs_comm_algo)7) == HS_ERR_INVALID_ARGUMENT, "bad algo");
}

static void check_comm(hs_comm *c, int full)
{
    static const hs_comm_algo algos[] = {HS_ALGO_RING, HS_ALGO_HALVING_DOUBLING};
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        hs_dtype dt = dtypes[d];
        for (int op = 0; op < HS_REDUCE_COUNT; op++) {
            if (op == HS_REDUCE_AVG && !is_float(dt))
                continue;
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                for (int a = 0; a < 2; a++)
                    check_reduction(c, dt, (hs_reduce_op)op, sizes[s], algos[a]);
        }
        if (full && (dt == HS_FP32 || dt == HS_BF16))
            for (int a = 0; a < 2; a++)
                check_reduction(c, dt, HS_REDUCE_SUM, BIG, algos[a]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (int a = 0; a < 2; a++) {
                CHECK_OK(hs_comm_set_algorithm(c, algos[a]));
                check_allgather(c, dt, sizes[s]);
            }
        CHECK_OK(hs_comm_set_algorithm(c, HS_ALGO_AUTO));
        check_broadcast(c, dt, 0);
        check_broadcast(c, dt, 4099);
        check_alltoall(c, dt, 0);
        check_alltoall(c, dt, 33);
        check_alltoallv(c, dt, 1);
        check_alltoallv(c, dt, 700);
        if (full)
            check_arrival_order(c, dt);
    }
    CHECK_OK(hs_comm_barrier(c));
    check_p2p(c);
    check_async(c);
    check_bad_args(c);
    CHECK_OK(hs_comm_barrier(c));
}

int main(int argc, char **argv)
{
    hs_runtime_config cfg = hs_runtime_config_default();
    if (argc == 3 && strcmp(argv[1], "--tp") == 0)
        cfg.tp = atoi(argv[2]);
    hs_runtime *rt;
    hs_status st = hs_init(&argc, &argv, &cfg, &rt);
    if (st != HS_OK) {
        fprintf(stderr, "hs_init: %s: %s\n", hs_status_str(st), hs_last_error());
        return 1;
    }
    hs_comm *world = hs_runtime_comm(rt, HS_GROUP_WORLD);
    check_rank = hs_comm_rank(world);
    double t0 = hs_time_now();
    check_comm(world, 1);
    if (cfg.tp > 1) {
        check_comm(hs_runtime_comm(rt, HS_GROUP_TP), 0);
        check_comm(hs_runtime_comm(rt, HS_GROUP_DP), 0);
    }
    int total = hs_mpi_test_total(world);
    if (check_rank == 0)
        printf("collectives on %d ranks: %s (%d failed checks, %.1f s)\n", hs_comm_size(world),
               total ? "FAIL" : "ok", total, hs_time_now() - t0);
    CHECK_OK(hs_finalize(rt));
    return total != 0;
}
