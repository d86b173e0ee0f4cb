/* Vocab-parallel cross-entropy (hs_cross_entropy_shard_forward/backward):
 * the vocabulary cut into uneven shards, each shard's forward combined as
 * a tensor-parallel group would (max, then sum of e^(lse_r - M), and the
 * sum of x[target]) gives the whole-vocabulary losses and lse; each
 * shard's backward with the combined lse gives its columns of the
 * whole-vocabulary gradient; bad arguments. The NPU bodies are checked
 * against these in test_npu_kernels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"

enum { N = 12, V = 53 };

/* Shard boundaries: [0,10) [10,11) [11,40) [40,53). */
static const int cuts[] = {0, 10, 11, 40, V};
#define SHARDS ((int)(sizeof cuts / sizeof cuts[0]) - 1)

/* Logits U[-4, 4) and targets in every shard, with ignored rows. */
static void fill(float *x, int32_t *t)
{
    gc_fill(x, NULL, (size_t)N * V, 4.0, 11);
    for (int n = 0; n < N; n++)
        t[n] = n % 5 == 4 ? -1 : (int32_t)((n * 17 + 3) % V);
}

/* Shard s's columns of x [N, V] into out [N, w]. */
static void columns(float *out, const float *x, int s)
{
    const int w = cuts[s + 1] - cuts[s];
    for (int n = 0; n < N; n++)
        memcpy(out + n * w, x + n * V + cuts[s], (size_t)w * sizeof(float));
}

static void test_combined_equals_whole(void **state)
{
    (void)state;
    float *x = fz(N * V), *loss = fz(N), *lse = fz(N), *dx = fz(N * V);
    int32_t t[N];
    fill(x, t);
    hs_tensor tx = hs_view2(x, HS_FP32, N, V), tt = hs_view1(t, HS_INT32, N);
    hs_tensor tl = hs_view1(loss, HS_FP32, N), tlse = hs_view1(lse, HS_FP32, N), tdx = hs_view2(dx, HS_FP32, N, V);
    assert_int_equal(hs_cross_entropy_forward(&tl, &tlse, &tx, &tt), HS_OK);
    assert_int_equal(hs_cross_entropy_backward(&tdx, &tx, &tlse, &tt, 0.5f), HS_OK);

    double slse[SHARDS][N], sxt[SHARDS][N];
    for (int s = 0; s < SHARDS; s++) { /* each rank's forward */
        const int w = cuts[s + 1] - cuts[s];
        float *xs = fz((size_t)N * w), *xt = fz(N), *ls = fz(N);
        columns(xs, x, s);
        hs_tensor a = hs_view2(xs, HS_FP32, N, w), b = hs_view1(xt, HS_FP32, N), c = hs_view1(ls, HS_FP32, N);
        assert_int_equal(hs_cross_entropy_shard_forward(&b, &c, &a, &tt, cuts[s]), HS_OK);
        for (int n = 0; n < N; n++) {
            slse[s][n] = ls[n];
            sxt[s][n] = xt[n];
            const int mine = t[n] >= cuts[s] && t[n] < cuts[s + 1];
            if (!mine) /* another shard's (or an ignored) target contributes nothing */
                assert_true(xt[n] == 0.0f);
            else
                assert_true(xt[n] == x[n * V + t[n]]);
        }
        free(xs), free(xt), free(ls);
    }
    float comb[N]; /* the group's combine: two all-reduces */
    for (int n = 0; n < N; n++) {
        double M = -INFINITY, S = 0, X = 0;
        for (int s = 0; s < SHARDS; s++)
            M = fmax(M, slse[s][n]);
        for (int s = 0; s < SHARDS; s++) {
            S += exp(slse[s][n] - M);
            X += sxt[s][n];
        }
        comb[n] = (float)(M + log(S));
        assert_true(fabs(comb[n] - lse[n]) <= 1e-5 * fabs(lse[n]) + 1e-6);
        const double l = t[n] < 0 ? 0.0 : comb[n] - X;
        assert_true(fabs(l - loss[n]) <= 1e-5 * fabs(loss[n]) + 1e-5);
    }
    hs_tensor tc = hs_view1(comb, HS_FP32, N);
    for (int s = 0; s < SHARDS; s++) { /* each rank's backward with the combined lse */
        const int w = cuts[s + 1] - cuts[s];
        float *xs = fz((size_t)N * w), *want = fz((size_t)N * w);
        columns(xs, x, s);
        columns(want, dx, s);
        hs_tensor a = hs_view2(xs, HS_FP32, N, w);
        assert_int_equal(hs_cross_entropy_shard_backward(&a, &a, &tc, &tt, cuts[s], 0.5f), HS_OK); /* in place */
        for (int i = 0; i < N * w; i++)
            assert_true(fabs(xs[i] - want[i]) <= 1e-5 * fabs(want[i]) + 1e-7);
        free(xs), free(want);
    }
    free(x), free(loss), free(lse), free(dx);
}

/* vocab_start 0 over the whole vocabulary: the shard forward's lse and
 * the plain forward's are the same bits, x[target] = lse - loss there. */
static void test_whole_vocabulary_shard(void **state)
{
    (void)state;
    float *x = fz(N * V), loss[N], lse[N], xt[N], lse2[N];
    int32_t t[N];
    fill(x, t);
    hs_tensor tx = hs_view2(x, HS_FP32, N, V), tt = hs_view1(t, HS_INT32, N);
    hs_tensor tl = hs_view1(loss, HS_FP32, N), tlse = hs_view1(lse, HS_FP32, N);
    hs_tensor txt = hs_view1(xt, HS_FP32, N), tlse2 = hs_view1(lse2, HS_FP32, N);
    assert_int_equal(hs_cross_entropy_forward(&tl, &tlse, &tx, &tt), HS_OK);
    assert_int_equal(hs_cross_entropy_shard_forward(&txt, &tlse2, &tx, &tt, 0), HS_OK);
    assert_memory_equal(lse, lse2, sizeof lse);
    for (int n = 0; n < N; n++)
        assert_true(t[n] < 0 ? xt[n] == 0.0f && loss[n] == 0.0f : xt[n] == x[n * V + t[n]]);
    free(x);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float *x = fz(N * V), xt[N], lse[N];
    int32_t t[N];
    fill(x, t);
    hs_tensor tx = hs_view2(x, HS_FP32, N, V), tt = hs_view1(t, HS_INT32, N);
    hs_tensor txt = hs_view1(xt, HS_FP32, N), tlse = hs_view1(lse, HS_FP32, N);
    EXPECT_ERR(hs_cross_entropy_shard_forward(&txt, &tlse, &tx, &tt, -1), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "vocab_start = -1"));
    EXPECT_ERR(hs_cross_entropy_shard_backward(&tx, &tx, &tlse, &tt, -3, 1.0f), HS_ERR_INVALID_ARGUMENT);
    t[3] = -2;
    EXPECT_ERR(hs_cross_entropy_shard_forward(&txt, &tlse, &tx, &tt, 0), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "targets[3] = -2"));
    t[3] = 1 << 30; /* another shard's id: fine for a shard */
    assert_int_equal(hs_cross_entropy_shard_forward(&txt, &tlse, &tx, &tt, 0), HS_OK);
    assert_true(xt[3] == 0.0f);
    hs_tensor bad = hs_view1(xt, HS_FP32, N - 1);
    EXPECT_ERR(hs_cross_entropy_shard_forward(&bad, &tlse, &tx, &tt, 0), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_cross_entropy_shard_forward(NULL, &tlse, &tx, &tt, 0), HS_ERR_INVALID_ARGUMENT);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined_equals_whole),
        cmocka_unit_test(test_whole_vocabulary_shard),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
