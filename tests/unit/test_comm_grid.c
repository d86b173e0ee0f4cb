/* Process grid arithmetic (no MPI): factorisation checks and their
 * messages, tp-cp-dp-pp rank order, the members of every group, EP folded
 * over DP x CP as Megatron folds it. */
#include "gradcheck.h"

#include "hyperspeed/comm.h"

#include <string.h>

static void expect_group(const hs_grid *g, hs_group grp, int rank, const int *want, int n)
{
    int got[64];
    assert_int_equal(hs_grid_group_size(g, grp), n);
    assert_int_equal(hs_grid_group_ranks(g, grp, rank, got), HS_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(got[i], want[i]);
        assert_int_equal(hs_grid_group_rank(g, grp, want[i]), i);
    }
}

static void test_make(void **state)
{
    (void)state;
    hs_grid g;
    assert_int_equal(hs_grid_make(8, 2, 1, 0, 1, 1, &g), HS_OK);
    assert_int_equal(g.dp, 4);
    assert_int_equal(g.world, 8);
    assert_int_equal(hs_grid_make(1, 1, 1, 0, 1, 1, &g), HS_OK);
    assert_int_equal(g.dp, 1);
    assert_int_equal(hs_grid_make(16, 2, 2, 2, 2, 4, &g), HS_OK);

    EXPECT_ERR(hs_grid_make(4, 3, 1, 0, 1, 1, &g), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tp=3 x cp=1 x pp=1 = 3 does not divide the world size 4"));
    EXPECT_ERR(hs_grid_make(4, 2, 1, 3, 1, 1, &g), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tp=2 x cp=1 x dp=3 x pp=1 = 6 does not equal the world size 4"));
    EXPECT_ERR(hs_grid_make(8, 1, 1, 0, 1, 3, &g), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "ep=3 does not divide dp=8 x cp=1 = 8"));
    EXPECT_ERR(hs_grid_make(4, 0, 1, 0, 1, 1, &g), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grid_make(4, 1, 1, -1, 1, 1, &g), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grid_make(0, 1, 1, 0, 1, 1, &g), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grid_make(4, 1, 1, 0, 1, 1, NULL), HS_ERR_INVALID_ARGUMENT);
}

/* tp 2 x cp 2 x dp 2 x pp 2: rank = t + 2 (c + 2 (d + 2 p)). Rank 5 is
 * t 1, c 0, d 1, p 0. */
static void test_groups(void **state)
{
    (void)state;
    hs_grid g;
    assert_int_equal(hs_grid_make(16, 2, 2, 2, 2, 2, &g), HS_OK);
    assert_int_equal(hs_grid_group_rank(&g, HS_GROUP_TP, 5), 1);
    assert_int_equal(hs_grid_group_rank(&g, HS_GROUP_CP, 5), 0);
    assert_int_equal(hs_grid_group_rank(&g, HS_GROUP_DP, 5), 1);
    assert_int_equal(hs_grid_group_rank(&g, HS_GROUP_PP, 5), 0);
    expect_group(&g, HS_GROUP_TP, 5, (int[]){4, 5}, 2);
    expect_group(&g, HS_GROUP_CP, 5, (int[]){5, 7}, 2);
    expect_group(&g, HS_GROUP_DP, 5, (int[]){1, 5}, 2);
    expect_group(&g, HS_GROUP_PP, 5, (int[]){5, 13}, 2);
    expect_group(&g, HS_GROUP_DATA, 5, (int[]){1, 3, 5, 7}, 4); /* index c + cp d */
    expect_group(&g, HS_GROUP_EP, 5, (int[]){5, 7}, 2);         /* data indices 2, 3 */
    expect_group(&g, HS_GROUP_EDP, 5, (int[]){1, 5}, 2);        /* data indices 0, 2 */
    int all[16];
    for (int i = 0; i < 16; i++)
        all[i] = i;
    expect_group(&g, HS_GROUP_WORLD, 9, all, 16);
}

/* Megatron's example: tp 2, dp 4, ep 2 on 8 ranks gives expert groups
 * [0 2] [4 6] [1 3] [5 7]. */
static void test_expert_fold(void **state)
{
    (void)state;
    hs_grid g;
    assert_int_equal(hs_grid_make(8, 2, 1, 4, 1, 2, &g), HS_OK);
    expect_group(&g, HS_GROUP_EP, 0, (int[]){0, 2}, 2);
    expect_group(&g, HS_GROUP_EP, 4, (int[]){4, 6}, 2);
    expect_group(&g, HS_GROUP_EP, 3, (int[]){1, 3}, 2);
    expect_group(&g, HS_GROUP_EP, 7, (int[]){5, 7}, 2);
    expect_group(&g, HS_GROUP_EDP, 0, (int[]){0, 4}, 2);
    expect_group(&g, HS_GROUP_DP, 3, (int[]){1, 3, 5, 7}, 4);
}

/* Every rank is in exactly one group of each kind, at its own index. */
static void test_partition(void **state)
{
    (void)state;
    static const int dims[][5] = {{1, 1, 0, 1, 1}, {2, 1, 0, 3, 1}, {3, 2, 2, 1, 4}, {1, 4, 0, 1, 2}};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        hs_grid g;
        assert_int_equal(hs_grid_make(24, dims[d][0], dims[d][1], dims[d][2], dims[d][3], dims[d][4], &g),
                         dims[d][2] == 2 ? HS_ERR_INVALID_ARGUMENT : HS_OK);
        if (dims[d][2] == 2)
            continue;
        for (int grp = 0; grp < HS_GROUP_COUNT; grp++) {
            int seen[24] = {0}, members[24], n = hs_grid_group_size(&g, (hs_group)grp);
            for (int r = 0; r < 24; r++) {
                assert_int_equal(hs_grid_group_ranks(&g, (hs_group)grp, r, members), HS_OK);
                assert_int_equal(members[hs_grid_group_rank(&g, (hs_group)grp, r)], r);
                for (int i = 1; i < n; i++)
                    assert_true(members[i] > members[i - 1]);
                seen[r]++;
            }
            for (int r = 0; r < 24; r++)
                assert_int_equal(seen[r], 1);
        }
    }
}

static void test_names_and_errors(void **state)
{
    (void)state;
    assert_string_equal(hs_group_name(HS_GROUP_DP), "dp");
    assert_string_equal(hs_group_name(HS_GROUP_EDP), "edp");
    assert_string_equal(hs_group_name((hs_group)99), "invalid");
    assert_string_equal(hs_coll_name(HS_COLL_REDUCE_SCATTER), "reduce_scatter");
    assert_string_equal(hs_coll_name((hs_coll)99), "invalid");
    hs_grid g;
    int r[4];
    assert_int_equal(hs_grid_make(4, 2, 1, 0, 1, 1, &g), HS_OK);
    EXPECT_ERR(hs_grid_group_ranks(&g, HS_GROUP_TP, 4, r), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grid_group_ranks(&g, (hs_group)99, 0, r), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grid_group_ranks(&g, HS_GROUP_TP, 0, NULL), HS_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make),      cmocka_unit_test(test_groups),           cmocka_unit_test(test_expert_fold),
        cmocka_unit_test(test_partition), cmocka_unit_test(test_names_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
