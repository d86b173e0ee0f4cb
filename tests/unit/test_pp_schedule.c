/* Pipeline schedules: every rank's list holds each (micro-batch, chunk)
 * forward and backward once, forward first; simulating the pipeline (each
 * op waits for its neighbour stage's op and for its rank) never deadlocks
 * and idles exactly the theoretical bubble; 1F1B keeps at most `stages`
 * micro-batches in flight; bad configurations fail with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/pipeline.h"

enum { P_MAX = 8, OPS_MAX = 2 * 64 * 4 };

/* Simulated makespan of a whole pipeline with forward time tf and backward
 * time tb per chunk and free communication; -1 on a deadlock. Also checks
 * each rank's list and its peak number of micro-batch chunks in flight. */
static double simulate(hs_pp_schedule s, int p, int m, int v, double tf, double tb, int *peak_in_flight)
{
    static hs_pp_op ops[P_MAX][OPS_MAX];
    int n[P_MAX], next[P_MAX] = {0};
    double free_at[P_MAX] = {0};
    const int S = p * v;
    double *fdone = malloc(sizeof(double) * (size_t)(m * S)), *bdone = malloc(sizeof(double) * (size_t)(m * S));
    for (int i = 0; i < m * S; i++)
        fdone[i] = bdone[i] = -1;
    *peak_in_flight = 0;
    for (int r = 0; r < p; r++) {
        assert_int_equal(hs_pp_schedule_ops(s, p, m, v, r, ops[r], OPS_MAX, &n[r]), HS_OK);
        assert_int_equal(n[r], 2 * m * v);
        int seen[2][64 * 4] = {{0}}, live = 0;
        for (int k = 0; k < n[r]; k++) { /* each op once, forward before its backward */
            const hs_pp_op o = ops[r][k];
            const int id = o.micro * v + o.chunk;
            assert_int_equal(seen[o.backward][id]++, 0);
            if (o.backward)
                assert_int_equal(seen[0][id], 1);
            live += o.backward ? -1 : 1;
            *peak_in_flight = live > *peak_in_flight ? live : *peak_in_flight;
        }
    }
    int done = 0, progress = 1;
    while (progress) {
        progress = 0;
        for (int r = 0; r < p; r++) {
            if (next[r] == n[r])
                continue;
            const hs_pp_op o = ops[r][next[r]];
            const int g = o.chunk * p + r; /* the model chunk */
            double ready;
            if (!o.backward)
                ready = g == 0 ? 0 : fdone[o.micro * S + g - 1];
            else
                ready = g == S - 1 ? fdone[o.micro * S + g] : bdone[o.micro * S + g + 1];
            if (ready < 0)
                continue;
            const double start = ready > free_at[r] ? ready : free_at[r], end = start + (o.backward ? tb : tf);
            (o.backward ? bdone : fdone)[o.micro * S + g] = end;
            free_at[r] = end;
            next[r]++;
            done++;
            progress = 1;
        }
    }
    double makespan = 0;
    for (int r = 0; r < p; r++)
        makespan = free_at[r] > makespan ? free_at[r] : makespan;
    free(fdone);
    free(bdone);
    return done == 2 * m * S ? makespan : -1;
}

/* Bubble = idle / ideal compute time of a rank. */
static void check_bubble(hs_pp_schedule s, int p, int m, int v)
{
    int peak;
    const double tf = 1.0, tb = 2.0;
    const double span = simulate(s, p, m, v, tf, tb, &peak);
    assert_true(span > 0);
    const double ideal = m * v * (tf + tb), bubble = (span - ideal) / ideal;
    assert_true(fabs(bubble - hs_pp_bubble_theory(s, p, m, v)) < 1e-12);
    if (s == HS_PP_1F1B)
        assert_true(peak <= p);
    if (s == HS_PP_GPIPE)
        assert_int_equal(peak, m);
}

static void test_bubbles(void **state)
{
    (void)state;
    const int pm[][2] = {{1, 1}, {1, 3}, {2, 2}, {2, 8}, {4, 4}, {4, 8}, {3, 7}, {8, 16}};
    for (size_t k = 0; k < sizeof pm / sizeof pm[0]; k++) {
        check_bubble(HS_PP_GPIPE, pm[k][0], pm[k][1], 1);
        check_bubble(HS_PP_1F1B, pm[k][0], pm[k][1], 1);
    }
    const int pmv[][3] = {{2, 2, 2}, {2, 4, 2}, {4, 8, 2}, {4, 8, 3}, {2, 8, 4}, {4, 4, 4}};
    for (size_t k = 0; k < sizeof pmv / sizeof pmv[0]; k++)
        check_bubble(HS_PP_INTERLEAVED, pmv[k][0], pmv[k][1], pmv[k][2]);
    assert_true(hs_pp_bubble_theory(HS_PP_1F1B, 4, 8, 1) == 3.0 / 8);
    assert_true(hs_pp_bubble_theory(HS_PP_INTERLEAVED, 4, 8, 2) == 3.0 / 16);
}

/* The 1F1B list of the first of 4 stages with 6 micro-batches. */
static void test_1f1b_order(void **state)
{
    (void)state;
    hs_pp_op ops[12];
    int n;
    assert_int_equal(hs_pp_schedule_ops(HS_PP_1F1B, 4, 6, 1, 0, ops, 12, &n), HS_OK);
    const char *want = "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 ";
    char got[64] = "";
    for (int k = 0; k < n; k++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%c%d ", ops[k].backward ? 'B' : 'F', ops[k].micro);
    assert_string_equal(got, want);
    assert_int_equal(hs_pp_schedule_ops(HS_PP_1F1B, 4, 6, 1, 3, ops, 12, &n), HS_OK);
    assert_true(!ops[0].backward && ops[1].backward); /* the last stage alternates from the start */
}

static void test_bad_configurations(void **state)
{
    (void)state;
    hs_pp_op ops[64];
    int n;
    EXPECT_ERR(hs_pp_schedule_check(HS_PP_1F1B, 4, 2, 1), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "at least as many micro-batches as stages"));
    EXPECT_ERR(hs_pp_schedule_check(HS_PP_INTERLEAVED, 4, 6, 2), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "multiple of the stages"));
    EXPECT_ERR(hs_pp_schedule_check(HS_PP_INTERLEAVED, 2, 4, 1), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_pp_schedule_check(HS_PP_1F1B, 2, 4, 2), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "interleaved"));
    EXPECT_ERR(hs_pp_schedule_check(HS_PP_GPIPE, 0, 4, 1), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_pp_schedule_check(HS_PP_GPIPE, 2, 0, 1), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_pp_schedule_ops(HS_PP_GPIPE, 2, 4, 1, 2, ops, 64, &n), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_pp_schedule_ops(HS_PP_GPIPE, 2, 4, 1, 0, ops, 7, &n), HS_ERR_INVALID_ARGUMENT);
    hs_pp_schedule s;
    assert_int_equal(hs_pp_schedule_parse("interleaved", &s), HS_OK);
    assert_int_equal(s, HS_PP_INTERLEAVED);
    assert_string_equal(hs_pp_schedule_name(HS_PP_1F1B), "1f1b");
    EXPECT_ERR(hs_pp_schedule_parse("zigzag", &s), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "known: gpipe, 1f1b, interleaved"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bubbles),
        cmocka_unit_test(test_1f1b_order),
        cmocka_unit_test(test_bad_configurations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
