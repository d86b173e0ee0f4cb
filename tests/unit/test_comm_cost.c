/* HCCL alpha-beta-gamma cost model: every formula against a hand
 * computation from ../shared/NPU_FACTS.md ("Collective costs"), the choice
 * of mesh / ring / halving-doubling / hierarchical by group shape, the
 * simulated group shape of the grid, and the comm-stream advance. */
#include "gradcheck.h"

#include "hyperspeed/comm.h"

#include <math.h>
#include <string.h>

/* The default cluster: HCCS 28 GB/s a link, RoCE 25 GB/s an NPU,
 * alpha 5 us / 15 us, gamma = 3 B of HBM traffic per byte at 1.6 TB/s. */
#define A_IN 5e-6
#define B_IN (1.0 / 28e9)
#define A_OUT 15e-6
#define B_OUT (1.0 / 25e9)
#define G (3.0 / 1.6e12)
#define N 1073741824.0 /* 1 GiB */

static double cost(hs_coll c, int p, int per_node, double n)
{
    hs_cluster_spec s = hs_cluster_spec_default();
    double t = -1;
    assert_int_equal(hs_comm_cost(&s, c, p, per_node, n, &t), HS_OK);
    return t;
}

#define assert_close(a, b) assert_true(fabs((a) - (b)) <= 1e-12 + 1e-12 * fabs(b))

static void test_defaults(void **state)
{
    (void)state;
    hs_cluster_spec s = hs_cluster_spec_default();
    assert_int_equal(s.npus_per_node, 8);
    assert_close(s.intra_beta_s, B_IN);
    assert_close(s.inter_beta_s, B_OUT);
    assert_close(s.intra_alpha_s, A_IN);
    assert_close(s.inter_alpha_s, A_OUT);
    assert_close(s.gamma_s, G);
    assert_int_equal(hs_cluster_spec_validate(&s), HS_OK);
}

/* One node of 8: HCCL's full mesh, all 7 links at once. */
static void test_mesh(void **state)
{
    (void)state;
    /* AR = 2a + 2 n/p b + (p-1)/p n g = 10 us + 2 * 128 MiB / 28 GB/s + 7/8 GiB * g = 11.3586 ms */
    double ar = 2 * A_IN + 2 * (N / 8) * B_IN + 7.0 / 8 * N * G;
    assert_close(cost(HS_COLL_ALLREDUCE, 8, 8, N), ar);
    assert_true(fabs(ar - 11.358588e-3) < 1e-8);
    /* RS = a + n/p b + (p-1)/p n g; AG = a + n/p b */
    assert_close(cost(HS_COLL_REDUCE_SCATTER, 8, 8, N), A_IN + N / 8 * B_IN + 7.0 / 8 * N * G);
    assert_close(cost(HS_COLL_ALLGATHER, 8, 8, N), A_IN + N / 8 * B_IN);
    /* broadcast = scatter + all-gather = 2 AG */
    assert_close(cost(HS_COLL_BROADCAST, 8, 8, N), 2 * (A_IN + N / 8 * B_IN));
    /* all-to-all: n/p to each peer, every link at once */
    assert_close(cost(HS_COLL_ALLTOALL, 8, 8, N), A_IN + N / 8 * B_IN);
    assert_close(cost(HS_COLL_SEND, 8, 8, N), A_IN + N * B_IN);
    assert_close(cost(HS_COLL_BARRIER, 8, 8, 0), A_IN);
    assert_close(cost(HS_COLL_ALLREDUCE, 1, 1, N), 0.0);
}

/* One NPU a node: the cheaper of ring and halving-doubling over RoCE. */
static void test_between_nodes(void **state)
{
    (void)state;
    /* p = 4, a power of two: HD = 2 log2(p) a + 2 (p-1)/p n b + (p-1)/p n g
     * beats ring's 2 (p-1) a by 2 alphas: 65.994 ms vs 66.024 ms */
    double hd = 2 * 2 * A_OUT + 2 * 0.75 * N * B_OUT + 0.75 * N * G;
    double ring = 2 * 3 * A_OUT + 2 * 0.75 * N * B_OUT + 0.75 * N * G;
    assert_close(cost(HS_COLL_ALLREDUCE, 4, 1, N), hd);
    assert_true(hd < ring);
    /* p = 3: HD folds (2a + 2nb + ng extra on q = 2), so the ring wins:
     * 2 (p-1) a + 2 (p-1)/p n b + (p-1)/p n g = 58.668 ms */
    double ring3 = 4 * A_OUT + 2 * (2.0 / 3) * N * B_OUT + (2.0 / 3) * N * G;
    double hd3 = 2 * A_OUT + N * B_OUT + 0.5 * N * G + 2 * A_OUT + 2 * N * B_OUT + N * G;
    assert_close(cost(HS_COLL_ALLREDUCE, 3, 1, N), ring3 < hd3 ? ring3 : hd3);
    assert_true(fabs(ring3 - 58.668408e-3) < 1e-8);
    /* RS/AG with p = 4: HD's log2(p) a */
    assert_close(cost(HS_COLL_REDUCE_SCATTER, 4, 1, N), 2 * A_OUT + 0.75 * N * B_OUT + 0.75 * N * G);
    assert_close(cost(HS_COLL_ALLGATHER, 4, 1, N), 2 * A_OUT + 0.75 * N * B_OUT);
    /* pairwise all-to-all: (p-1) a + b sum_k max_i n(i, i+k) = 3a + 3 (n/4) b */
    assert_close(cost(HS_COLL_ALLTOALL, 4, 1, N), 3 * A_OUT + 3 * (N / 4) * B_OUT);
    assert_close(cost(HS_COLL_SEND, 2, 1, N), A_OUT + N * B_OUT);
    assert_close(cost(HS_COLL_BARRIER, 8, 1, 0), 3 * A_OUT);
}

/* 16 NPUs as 2 nodes x 8: intra-node mesh RS, inter-node AR of n/8 over 2
 * nodes, intra-node mesh AG (16.883 ms). */
static void test_hierarchical(void **state)
{
    (void)state;
    double rs = A_IN + N / 8 * B_IN + 7.0 / 8 * N * G;
    double inter = 2 * A_OUT + 2 * 0.5 * (N / 8) * B_OUT + 0.5 * (N / 8) * G; /* p = 2: ring = HD */
    double ag = A_IN + N / 8 * B_IN;
    assert_close(cost(HS_COLL_ALLREDUCE, 16, 8, N), rs + inter + ag);
    assert_true(fabs(rs + inter + ag - 16.883126e-3) < 1e-8);
    assert_close(cost(HS_COLL_REDUCE_SCATTER, 16, 8, N),
                 rs + A_OUT + 0.5 * (N / 8) * B_OUT + 0.5 * (N / 8) * G);
    assert_close(cost(HS_COLL_ALLGATHER, 16, 8, N), A_OUT + 0.5 * (N / 8) * B_OUT + ag);
    assert_close(cost(HS_COLL_BARRIER, 16, 8, 0), 2 * A_IN + A_OUT);
    /* all-to-all: pairwise steps; step k = 8 crosses nodes for every pair,
     * the other 14 steps cross for some pair: all 15 steps cost RoCE */
    assert_close(cost(HS_COLL_ALLTOALL, 16, 8, N), 15 * (A_OUT + N / 16 * B_OUT));
}

/* sum_k (max_i alpha + max_i n(i, i+k) beta) on a 4-NPU, 2-a-node cluster. */
static void test_alltoallv(void **state)
{
    (void)state;
    hs_cluster_spec s = hs_cluster_spec_default();
    const double m[16] = {
        0, 100, 200, 300, /* row = sender */
        400, 0, 500, 600, 700, 800, 0, 900, 1000, 1100, 1200, 0,
    };
    /* k = 1: pairs (0,1) in, (1,2) out, (2,3) in, (3,0) out:
     *        max alpha = A_OUT, max n b = max(100 B_IN, 500 B_OUT, 900 B_IN, 1000 B_OUT) = 1000 B_OUT
     * k = 2: (0,2) 200, (1,3) 600, (2,0) 700, (3,1) 1100, all out: A_OUT + 1100 B_OUT
     * k = 3: (0,3) 300 out, (1,0) 400 in, (2,1) 800 out, (3,2) 1200 in:
     *        A_OUT + max(800 B_OUT, 1200 B_IN) */
    double want = (A_OUT + 1000 * B_OUT) + (A_OUT + 1100 * B_OUT) + (A_OUT + fmax(800 * B_OUT, 1200 * B_IN));
    double t;
    assert_int_equal(hs_comm_cost_alltoallv(&s, 4, 2, m, &t), HS_OK);
    assert_close(t, want);
    EXPECT_ERR(hs_comm_cost_alltoallv(&s, 4, 2, NULL, &t), HS_ERR_INVALID_ARGUMENT);
}

static void test_errors(void **state)
{
    (void)state;
    hs_cluster_spec s = hs_cluster_spec_default();
    double t;
    EXPECT_ERR(hs_comm_cost(&s, HS_COLL_ALLREDUCE, 6, 4, 1, &t), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "per_node=4 must divide the group size p=6"));
    EXPECT_ERR(hs_comm_cost(&s, HS_COLL_ALLREDUCE, 0, 1, 1, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_comm_cost(&s, HS_COLL_ALLREDUCE, 4, 1, -1, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_comm_cost(&s, HS_COLL_ALLTOALLV, 4, 1, 1, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_comm_cost(&s, HS_COLL_ALLREDUCE, 4, 1, 1, NULL), HS_ERR_INVALID_ARGUMENT);
    s.npus_per_node = 0;
    EXPECT_ERR(hs_comm_cost(&s, HS_COLL_ALLREDUCE, 4, 1, 1, &t), HS_ERR_INVALID_ARGUMENT);
    s = hs_cluster_spec_default();
    s.inter_beta_s = NAN;
    EXPECT_ERR(hs_cluster_spec_validate(&s), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "inter_beta_s"));
}

/* Group members per simulated node follow the tp-cp-dp-pp order. */
static void test_group_per_node(void **state)
{
    (void)state;
    hs_cluster_spec s = hs_cluster_spec_default();
    hs_grid g;
    assert_int_equal(hs_grid_make(32, 8, 1, 0, 1, 1, &g), HS_OK); /* tp 8 x dp 4 */
    assert_int_equal(hs_cluster_group_per_node(&s, &g, HS_GROUP_TP, 13), 8);
    assert_int_equal(hs_cluster_group_per_node(&s, &g, HS_GROUP_DP, 13), 1);
    assert_int_equal(hs_cluster_group_per_node(&s, &g, HS_GROUP_WORLD, 13), 8);
    assert_int_equal(hs_grid_make(16, 2, 1, 0, 1, 1, &g), HS_OK); /* tp 2 x dp 8: dp = {0, 2, ..., 14} */
    assert_int_equal(hs_cluster_group_per_node(&s, &g, HS_GROUP_DP, 0), 4);
    s.npus_per_node = 1;
    assert_int_equal(hs_cluster_group_per_node(&s, &g, HS_GROUP_DP, 0), 1);
}

/* hs_comm_simulate advances the stream by the modelled time. */
static void test_simulate(void **state)
{
    (void)state;
    hs_npu_spec ns;
    hs_npu *d;
    hs_npu_stream *st;
    assert_int_equal(hs_npu_spec_preset("test", &ns), HS_OK);
    assert_int_equal(hs_npu_new(&ns, HS_NPU_ESTIMATE, &d), HS_OK);
    assert_int_equal(hs_npu_stream_new(d, &st), HS_OK);
    hs_cluster_spec s = hs_cluster_spec_default();
    double t0 = hs_npu_stream_time(st), t;
    assert_int_equal(hs_comm_simulate(st, "allreduce dp", &s, HS_COLL_ALLREDUCE, 8, 8, N, &t), HS_OK);
    assert_close(t, cost(HS_COLL_ALLREDUCE, 8, 8, N));
    assert_close(hs_npu_stream_time(st), t0 + t);
    EXPECT_ERR(hs_comm_simulate(NULL, "x", &s, HS_COLL_ALLREDUCE, 8, 8, N, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_comm_simulate(st, "x", &s, HS_COLL_ALLREDUCE, 8, 3, N, &t), HS_ERR_INVALID_ARGUMENT);
    assert_close(hs_npu_stream_time(st), t0 + t);
    hs_npu_stream_free(st);
    hs_npu_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_mesh),      cmocka_unit_test(test_between_nodes),
        cmocka_unit_test(test_hierarchical), cmocka_unit_test(test_alltoallv), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_group_per_node), cmocka_unit_test(test_simulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
