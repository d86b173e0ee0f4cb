/* The batch loader: positions, resume, rank split, validation passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed/data.h"
#include "scratch.h"

enum { N = 1000 }; /* tokens in the test file: token i = i */

typedef struct fixture {
    char *dir;
    char path[4096];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->dir = scratch_dir("test_loader");
    if (!fx->dir)
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/tokens.bin", fx->dir);
    int32_t tokens[N];
    for (int i = 0; i < N; i++)
        tokens[i] = i;
    if (hs_token_file_write(fx->path, tokens, N, 4))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    scratch_free(fx->dir);
    free(fx);
    return 0;
}

/* A loader config from the default (which sets its size tag). */
static hs_loader_config lc(int batch, int seq, int rank, int world)
{
    hs_loader_config c = hs_loader_config_default();
    c.batch = batch;
    c.seq = seq;
    c.rank = rank;
    c.world = world;
    return c;
}

static hs_loader *open_loader(const fixture *fx, int batch, int seq, int rank, int world)
{
    hs_loader_config c = lc(batch, seq, rank, world);
    hs_loader *l = NULL;
    hs_status s = hs_loader_new(fx->path, &c, &l);
    if (s)
        fail_msg("hs_loader_new: %s", hs_last_error());
    return l;
}

static void test_batches_follow_the_formula(void **state)
{
    const fixture *fx = *state;
    const int B = 3, T = 7;
    const uint64_t M = N - T;
    hs_loader *l = open_loader(fx, B, T, 0, 1);
    assert_int_equal(hs_loader_local_batch(l), B);
    assert_int_equal(hs_loader_num_tokens(l), N);
    int32_t in[3 * 7], tg[3 * 7];
    for (uint64_t k = 0; k < 200; k++) { /* 200 * 21 tokens: wraps around the file four times */
        assert_int_equal(hs_loader_position(l), k * B * T);
        assert_int_equal(hs_loader_next(l, in, tg), HS_OK);
        for (int s = 0; s < B; s++) {
            uint64_t start = (k * B * T + (uint64_t)s * T) % M;
            for (int t = 0; t < T; t++) {
                assert_int_equal(in[s * T + t], (int32_t)(start + t));
                assert_int_equal(tg[s * T + t], (int32_t)(start + t + 1));
            }
        }
    }
    hs_loader_free(l);
}

static void test_resume_from_position(void **state)
{
    const fixture *fx = *state;
    hs_loader *a = open_loader(fx, 4, 16, 0, 1), *b = open_loader(fx, 4, 16, 0, 1);
    int32_t ia[64], ta[64], ib[64], tb[64];
    for (int k = 0; k < 37; k++)
        assert_int_equal(hs_loader_next(a, ia, ta), HS_OK);
    uint64_t saved = hs_loader_position(a);
    hs_loader_set_position(b, saved); /* a fresh loader resumed from a checkpoint */
    for (int k = 0; k < 50; k++) {
        assert_int_equal(hs_loader_next(a, ia, ta), HS_OK);
        assert_int_equal(hs_loader_next(b, ib, tb), HS_OK);
        assert_memory_equal(ia, ib, sizeof ia);
        assert_memory_equal(ta, tb, sizeof ta);
    }
    assert_int_equal(hs_loader_position(a), hs_loader_position(b));
    /* and going back gives the same batch again */
    hs_loader_set_position(a, saved);
    hs_loader_set_position(b, saved);
    assert_int_equal(hs_loader_next(a, ia, ta), HS_OK);
    assert_int_equal(hs_loader_next(b, ib, tb), HS_OK);
    assert_memory_equal(ia, ib, sizeof ia);
    hs_loader_free(a);
    hs_loader_free(b);
}

static void test_rank_split(void **state)
{
    const fixture *fx = *state;
    enum { B = 8, T = 5, W = 4 };
    hs_loader *global = open_loader(fx, B, T, 0, 1);
    hs_loader *ranks[W];
    for (int r = 0; r < W; r++) {
        ranks[r] = open_loader(fx, B, T, r, W);
        assert_int_equal(hs_loader_local_batch(ranks[r]), B / W);
    }
    int32_t gin[B * T], gtg[B * T], in[B / W * T], tg[B / W * T];
    for (int k = 0; k < 60; k++) {
        assert_int_equal(hs_loader_next(global, gin, gtg), HS_OK);
        int seen[B] = {0};
        for (int r = 0; r < W; r++) {
            assert_int_equal(hs_loader_next(ranks[r], in, tg), HS_OK);
            assert_int_equal(hs_loader_position(ranks[r]), hs_loader_position(global));
            /* rank r holds sequences [r*B/W, (r+1)*B/W) of the global batch */
            assert_memory_equal(in, gin + r * (B / W) * T, sizeof in);
            assert_memory_equal(tg, gtg + r * (B / W) * T, sizeof tg);
            for (int s = 0; s < B / W; s++)
                seen[r * (B / W) + s]++;
        }
        for (int s = 0; s < B; s++)
            assert_int_equal(seen[s], 1); /* disjoint and covering */
    }
    for (int r = 0; r < W; r++)
        hs_loader_free(ranks[r]);
    hs_loader_free(global);
}

static void test_validation_pass(void **state)
{
    const fixture *fx = *state;
    hs_loader *l = open_loader(fx, 4, 10, 0, 1);
    assert_int_equal(hs_loader_pass_batches(l), (N - 1) / 40); /* 24 */
    int32_t in[40], tg[40], first[40];
    for (int pass = 0; pass < 2; pass++) {
        hs_loader_set_position(l, 0);
        for (uint64_t k = 0; k < hs_loader_pass_batches(l); k++) {
            assert_int_equal(hs_loader_next(l, in, tg), HS_OK);
            /* no wrap: the pass walks the file from its start in order */
            assert_int_equal(in[0], (int32_t)(k * 40));
            assert_int_equal(tg[39], (int32_t)(k * 40 + 40));
            if (k == 0 && pass == 0)
                memcpy(first, in, sizeof in);
            if (k == 0 && pass == 1)
                assert_memory_equal(first, in, sizeof in);
        }
    }
    hs_loader_free(l);
    l = open_loader(fx, 100, 10, 0, 1);
    assert_int_equal(hs_loader_pass_batches(l), 0); /* shorter than one batch */
    hs_loader_free(l);
}

static void test_minimum_file(void **state)
{
    const fixture *fx = *state;
    hs_loader *l = open_loader(fx, 2, N - 1, 0, 1); /* exactly seq + 1 tokens: one start offset */
    int32_t *in = malloc(2 * (N - 1) * sizeof *in), *tg = malloc(2 * (N - 1) * sizeof *tg);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(hs_loader_next(l, in, tg), HS_OK);
        assert_int_equal(in[0], 0);
        assert_int_equal(in[N - 1], 0);
        assert_int_equal(tg[N - 2], N - 1);
    }
    free(in);
    free(tg);
    hs_loader_free(l);
}

static void expect_open_error(const char *path, hs_loader_config c, hs_status want, const char *msg)
{
    hs_loader *l = (hs_loader *)1;
    assert_int_equal(hs_loader_new(path, &c, &l), want);
    assert_null(l);
    if (!strstr(hs_last_error(), msg))
        fail_msg("message \"%s\" lacks \"%s\"", hs_last_error(), msg);
}

static void test_errors(void **state)
{
    const fixture *fx = *state;
    expect_open_error(fx->path, lc(4, N, 0, 1), HS_ERR_INVALID_ARGUMENT,
                      "has 1000 tokens, fewer than seq+1 = 1001");
    expect_open_error(fx->path, lc(0, 8, 0, 1), HS_ERR_INVALID_ARGUMENT, "batch=0");
    expect_open_error(fx->path, lc(4, 0, 0, 1), HS_ERR_INVALID_ARGUMENT, "seq=0");
    expect_open_error(fx->path, lc(4, 8, 2, 2), HS_ERR_INVALID_ARGUMENT, "rank=2 is outside");
    expect_open_error(fx->path, lc(4, 8, -1, 2), HS_ERR_INVALID_ARGUMENT, "rank=-1");
    expect_open_error(fx->path, lc(6, 8, 0, 4), HS_ERR_INVALID_ARGUMENT,
                      "world=4 does not divide the global batch=6");
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/none.bin", fx->dir);
    expect_open_error(missing, hs_loader_config_default(), HS_ERR_IO, "No such file");

    hs_loader *l = open_loader(fx, 1, 4, 0, 1);
    int32_t buf[4];
    assert_int_equal(hs_loader_next(l, NULL, buf), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_loader_position(l), 0);
    hs_loader_free(l);

    hs_loader_config d = hs_loader_config_default();
    assert_int_equal(d.rank, 0);
    assert_int_equal(d.world, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_follow_the_formula),
        cmocka_unit_test(test_resume_from_position),
        cmocka_unit_test(test_rank_split),
        cmocka_unit_test(test_validation_pass),
        cmocka_unit_test(test_minimum_file),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
