/* The DP reducer on the whole world: buckets started as their gradients
 * are reported (all of them before hs_dp_finish when the reports cover
 * the buffer), the buffer holding the group's average (or sum) bitwise
 * the same on every rank, with and without overlap; rows gathered in rank
 * order; sharded (reduce-scatter) rounds whose blocks tile the buckets and
 * whose parameters gather back whole; misuse errors; and on a simulated
 * NPU the comm stream: a
 * reduction started during the compute stream's work is hidden behind it,
 * one started at the end is exposed in full, and an execute-mode device's
 * HBM values are reduced. */
#include "mpi_check.h"

#include "hyperspeed/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NT = 7 };
static const int64_t numel[NT] = {900, 8, 150, 8, 300, 8, 40}; /* a big "embedding" first, as a model */

static float value(int rank, int64_t i) { return (float)(rank + 1) * 0.25f + (float)(i % 97) * 1e-3f; }

static int64_t total(void)
{
    int64_t n = 0;
    for (int i = 0; i < NT; i++)
        n += numel[i];
    return n;
}

static void fill(float *g, int rank)
{
    for (int64_t i = 0; i < total(); i++)
        g[i] = value(rank, i);
}

/* FNV-1a of the buffer's bits, folded to 31 bits. */
static int hash(const float *g, int64_t n)
{
    uint32_t h = 2166136261u;
    const unsigned char *b = (const unsigned char *)g;
    for (int64_t i = 0; i < n * 4; i++)
        h = (h ^ b[i]) * 16777619u;
    return (int)(h & 0x7fffffff);
}

/* The same bits on every rank of world. */
static void check_same(hs_comm *world, const float *g, int64_t n, const char *what)
{
    int h[2] = {hash(g, n), -hash(g, n)};
    CHECK_OK(hs_comm_allreduce(world, h, h, 2, HS_INT32, HS_REDUCE_MAX));
    CHECK(h[0] == -h[1], "%s: the reduced buffers differ between ranks", what);
}

/* One round reporting the buffer from the end down in tensor-sized pieces. */
static void round_reporting(hs_dp *dp, hs_dp_stats *st)
{
    CHECK_OK(hs_dp_begin(dp));
    int64_t end = total();
    for (int i = NT - 1; i >= 0; i--) {
        CHECK_OK(hs_dp_grads_ready(dp, end - numel[i], end));
        end -= numel[i];
    }
    CHECK_OK(hs_dp_finish(dp, st));
}

static void test_reduce(hs_comm *world, int overlap, hs_reduce_op op)
{
    const int p = hs_comm_size(world), me = hs_comm_rank(world);
    const int64_t n = total();
    float *g = malloc(sizeof(float) * (size_t)n);
    fill(g, me);
    hs_dp_config c = hs_dp_config_default();
    c.bucket_bytes = 1000; /* several buckets; the 900-float tensor alone */
    c.overlap = overlap;
    c.op = op;
    hs_dp *dp;
    CHECK_OK(hs_dp_new(world, g, numel, NT, &c, &dp));
    CHECK(hs_dp_num_buckets(dp) >= 4, "%d buckets", hs_dp_num_buckets(dp));
    CHECK(hs_dp_bucket_at(dp, hs_dp_num_buckets(dp) - 1)->numel == 900, "the big tensor's bucket");
    hs_dp_stats st;
    round_reporting(dp, &st);
    CHECK(st.buckets == hs_dp_num_buckets(dp), "%d buckets started", st.buckets);
    CHECK(st.early == (overlap ? st.buckets : 0), "overlap %d: %d started early", overlap, st.early);
    CHECK(st.bytes == (double)n * 4, "bytes %g", st.bytes);
    for (int64_t i = 0; i < n; i++) {
        double want = 0;
        for (int r = 0; r < p; r++)
            want += value(r, i);
        if (op == HS_REDUCE_AVG)
            want /= p;
        CHECK(fabs(g[i] - want) <= 1e-6 * fabs(want), "overlap %d op %d: g[%lld] = %g, want %g", overlap, (int)op,
              (long long)i, (double)g[i], want);
    }
    check_same(world, g, n, "reduce");
    hs_dp_free(dp);
    free(g);
}

/* Sharded (reduce-scatter, ZeRO-1/2): each rank's blocks of the buckets
 * tile every bucket and hold the group's reduction there; the updated
 * parameters, each rank writing its blocks only, come back whole on every
 * rank through hs_dp_gather_params; misuse. */
static void test_shard(hs_comm *world, int overlap)
{
    const int p = hs_comm_size(world), me = hs_comm_rank(world);
    const int64_t n = total();
    float *g = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)n);
    char *mine = calloc((size_t)n, 1);
    fill(g, me);
    hs_dp_config c = hs_dp_config_default();
    c.bucket_bytes = 1000;
    c.overlap = overlap;
    c.shard = 1;
    hs_dp *dp;
    CHECK_OK(hs_dp_new(world, g, numel, NT, &c, &dp));
    hs_dp_stats st;
    round_reporting(dp, &st);
    CHECK(st.buckets == hs_dp_num_buckets(dp) && st.bytes == (double)n * 4, "%d buckets, %g bytes", st.buckets,
          st.bytes);
    for (int b = 0; b < hs_dp_num_buckets(dp); b++) {
        int64_t off, len;
        CHECK_OK(hs_dp_shard_of(dp, b, &off, &len));
        const hs_dp_bucket *k = hs_dp_bucket_at(dp, b);
        CHECK(off >= k->offset && off + len <= k->offset + k->numel, "bucket %d: block outside it", b);
        int64_t covered = len; /* the blocks of all ranks add up to the bucket */
        CHECK_OK(hs_comm_allreduce(world, &covered, &covered, 1, HS_INT64, HS_REDUCE_SUM));
        CHECK(covered == k->numel, "bucket %d: blocks cover %lld of %lld", b, (long long)covered,
              (long long)k->numel);
        for (int64_t i = off; i < off + len; i++) {
            double want = 0;
            for (int r = 0; r < p; r++)
                want += value(r, i);
            want /= p;
            CHECK(fabs(g[i] - want) <= 1e-6 * fabs(want), "shard: g[%lld] = %g, want %g", (long long)i, (double)g[i],
                  want);
            mine[i] = 1;
        }
    }
    for (int64_t i = 0; i < n; i++) /* the parameters this rank updated, junk elsewhere */
        w[i] = mine[i] ? (float)i * 0.5f : (float)(-1 - me);
    CHECK_OK(hs_dp_gather_params(dp, w));
    for (int64_t i = 0; i < n; i++)
        CHECK(w[i] == (float)i * 0.5f, "gathered w[%lld] = %g", (long long)i, (double)w[i]);
    CHECK_OK(hs_dp_begin(dp));
    CHECK(hs_dp_gather_params(dp, w) == HS_ERR_INVALID_ARGUMENT, "a gather inside a round");
    CHECK_OK(hs_dp_finish(dp, NULL));
    int64_t off, len;
    CHECK(hs_dp_shard_of(dp, hs_dp_num_buckets(dp), &off, &len) == HS_ERR_INVALID_ARGUMENT, "a bucket too far");
    hs_dp_free(dp);
    c.shard = 0;
    CHECK_OK(hs_dp_new(world, g, numel, NT, &c, &dp));
    CHECK(hs_dp_gather_params(dp, w) == HS_ERR_INVALID_ARGUMENT, "a gather without sharding");
    hs_dp_free(dp);
    c.shard = 2;
    CHECK(hs_dp_new(world, g, numel, NT, &c, &dp) == HS_ERR_INVALID_ARGUMENT && dp == NULL, "shard=2");
    free(mine);
    free(w);
    free(g);
}

static void test_gather(hs_comm *world)
{
    const int p = hs_comm_size(world), me = hs_comm_rank(world);
    enum { ROWS = 5, W = 3 };
    float g[8] = {0}, rows[ROWS * W];
    int32_t ids[ROWS];
    for (int i = 0; i < ROWS; i++) {
        ids[i] = me * 100 + i;
        for (int j = 0; j < W; j++)
            rows[i * W + j] = (float)(me * 1000 + i * 10 + j);
    }
    const int64_t one[1] = {8};
    hs_dp_config c = hs_dp_config_default();
    c.gather_rows = ROWS;
    c.gather_width = W;
    hs_dp *dp;
    CHECK_OK(hs_dp_new(world, g, one, 1, &c, &dp));
    float *all_rows = NULL;
    int32_t *all_ids = NULL;
    CHECK_OK(hs_dp_begin(dp));
    CHECK(hs_dp_gather_rows(dp, rows, ids, ROWS + 1, &all_rows, &all_ids) == HS_ERR_INVALID_ARGUMENT,
          "more rows than planned");
    CHECK_OK(hs_dp_gather_rows(dp, rows, ids, ROWS, &all_rows, &all_ids));
    CHECK(hs_dp_gather_rows(dp, rows, ids, ROWS, &all_rows, &all_ids) == HS_ERR_INVALID_ARGUMENT, "a second gather");
    CHECK_OK(hs_dp_finish(dp, NULL));
    for (int r = 0; r < p; r++)
        for (int i = 0; i < ROWS; i++) {
            CHECK(all_ids[r * ROWS + i] == r * 100 + i, "id of rank %d row %d", r, i);
            for (int j = 0; j < W; j++)
                CHECK(all_rows[(r * ROWS + i) * W + j] == (float)(r * 1000 + i * 10 + j), "rank %d row %d", r, i);
        }
    hs_dp_free(dp);
}

static void test_misuse(hs_comm *world)
{
    float g[8] = {0};
    const int64_t one[1] = {8};
    hs_dp *dp;
    hs_dp_config c = hs_dp_config_default();
    c.op = HS_REDUCE_MAX;
    CHECK(hs_dp_new(world, g, one, 1, &c, &dp) == HS_ERR_INVALID_ARGUMENT, "MAX is no gradient reduction");
    c = hs_dp_config_default();
    c.size = 0; /* not from hs_dp_config_default */
    CHECK(hs_dp_new(world, g, one, 1, &c, &dp) == HS_ERR_INVALID_ARGUMENT &&
              strstr(hs_last_error(), "hs_dp_config is not initialised") != NULL && dp == NULL,
          "size 0: %s", hs_last_error());
    c.size = sizeof c + 16; /* another version's header */
    CHECK(hs_dp_new(world, g, one, 1, &c, &dp) == HS_ERR_INVALID_ARGUMENT &&
              strstr(hs_last_error(), "hs_dp_config of") != NULL && dp == NULL,
          "size %zu: %s", c.size, hs_last_error());
    CHECK(hs_dp_new(NULL, g, one, 1, NULL, &dp) == HS_ERR_INVALID_ARGUMENT, "NULL group");
    CHECK_OK(hs_dp_new(world, g, one, 1, NULL, &dp));
    CHECK(hs_dp_grads_ready(dp, 0, 8) == HS_ERR_INVALID_ARGUMENT, "ready outside a round");
    CHECK(hs_dp_finish(dp, NULL) == HS_ERR_INVALID_ARGUMENT, "finish without begin");
    CHECK_OK(hs_dp_begin(dp));
    CHECK(hs_dp_begin(dp) == HS_ERR_INVALID_ARGUMENT, "begin twice");
    CHECK(hs_dp_grads_ready(dp, 4, 9) == HS_ERR_INVALID_ARGUMENT, "a range past the buffer");
    CHECK_OK(hs_dp_grads_ready(dp, 4, 8));
    CHECK(hs_dp_grads_ready(dp, 0, 6) == HS_ERR_INVALID_ARGUMENT &&
              strstr(hs_last_error(), "reported twice") != NULL,
          "a double report: %s", hs_last_error());
    CHECK_OK(hs_dp_finish(dp, NULL));
    hs_dp_free(dp);
}

/* Simulated time on an estimate-mode NPU: started while the compute
 * stream has 10 ms of work ahead, the all-reduces are hidden; started at
 * the end, exposed in full. */
static void test_npu_streams(hs_comm *world)
{
    hs_npu_spec spec;
    hs_npu *npu;
    CHECK_OK(hs_npu_spec_preset("910B2", &spec));
    CHECK_OK(hs_npu_new(&spec, HS_NPU_ESTIMATE, &npu));
    void *g;
    CHECK_OK(hs_npu_malloc(npu, (size_t)total() * 4, &g));
    hs_npu_stream *compute = hs_npu_default_stream(npu);
    for (int overlap = 1; overlap >= 0; overlap--) {
        hs_dp_config c = hs_dp_config_default();
        c.bucket_bytes = 1000;
        c.overlap = overlap;
        c.npu = npu;
        hs_dp *dp;
        hs_dp_stats st;
        CHECK_OK(hs_dp_new(world, g, numel, NT, &c, &dp));
        CHECK_OK(hs_dp_begin(dp));
        CHECK_OK(hs_dp_grads_ready(dp, 0, total()));
        hs_npu_stream_advance(compute, "backward", "kernel", 10e-3);
        const double before = hs_npu_stream_time(compute);
        CHECK_OK(hs_dp_finish(dp, &st));
        CHECK(st.sim_comm_s > 0, "simulated all-reduce time %g", st.sim_comm_s);
        if (overlap)
            CHECK(st.sim_exposed_s == 0, "overlapped: %g s exposed", st.sim_exposed_s);
        else
            CHECK(fabs(st.sim_exposed_s - st.sim_comm_s) <= 1e-12, "at the end: exposed %g of %g s",
                  st.sim_exposed_s, st.sim_comm_s);
        CHECK(fabs(hs_npu_stream_time(compute) - (before + st.sim_exposed_s)) <= 1e-12,
              "the compute stream waits the exposed time");
        hs_dp_free(dp);
    }
    hs_npu_free_mem(npu, g);
    hs_npu_free(npu);
}

/* An execute-mode device: the values in HBM are averaged. */
static void test_npu_values(hs_comm *world)
{
    const int p = hs_comm_size(world), me = hs_comm_rank(world);
    const int64_t n = total();
    hs_npu_spec spec;
    hs_npu *npu;
    CHECK_OK(hs_npu_spec_preset("test", &spec));
    CHECK_OK(hs_npu_new(&spec, HS_NPU_EXECUTE, &npu));
    float *host = malloc(sizeof(float) * (size_t)n);
    void *g;
    fill(host, me);
    CHECK_OK(hs_npu_malloc(npu, (size_t)n * 4, &g));
    CHECK_OK(hs_npu_memcpy_h2d(npu, NULL, g, host, (size_t)n * 4));
    hs_dp_config c = hs_dp_config_default();
    c.bucket_bytes = 1000;
    c.npu = npu;
    hs_dp *dp;
    hs_dp_stats st;
    CHECK_OK(hs_dp_new(world, g, numel, NT, &c, &dp));
    round_reporting(dp, &st);
    CHECK_OK(hs_npu_memcpy_d2h(npu, NULL, host, g, (size_t)n * 4));
    for (int64_t i = 0; i < n; i++) {
        double want = 0;
        for (int r = 0; r < p; r++)
            want += value(r, i);
        want /= p;
        CHECK(fabs(host[i] - want) <= 1e-6 * want, "NPU g[%lld] = %g, want %g", (long long)i, (double)host[i], want);
    }
    hs_dp_free(dp);
    hs_npu_free_mem(npu, g);
    hs_npu_free(npu);
    free(host);
}

int main(int argc, char **argv)
{
    hs_runtime *rt = NULL;
    if (hs_init(&argc, &argv, NULL, &rt) != HS_OK) {
        fprintf(stderr, "test_dp: %s\n", hs_last_error());
        return 1;
    }
    hs_comm *world = hs_runtime_comm(rt, HS_GROUP_WORLD);
    check_rank = hs_comm_rank(world);
    test_reduce(world, 1, HS_REDUCE_AVG);
    test_reduce(world, 0, HS_REDUCE_AVG);
    test_reduce(world, 1, HS_REDUCE_SUM);
    test_gather(world);
    test_misuse(world);
    test_shard(world, 1);
    test_shard(world, 0);
    test_npu_streams(world);
    test_npu_values(world);
    const int failures = hs_mpi_test_total(world);
    if (check_rank == 0)
        printf("test_dp on %d ranks: %s\n", hs_comm_size(world), failures ? "FAILED" : "ok");
    hs_finalize(rt);
    return failures ? 1 : 0;
}
