/* LayerNorm and RMSNorm against naive double references, loss = sum(out * R):
 * forward values, saved statistics, gradients of inp, w and b by central
 * differences (accumulated into pre-filled buffers), bad arguments and
 * run-to-run determinism. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "hyperspeed.h"


#define EPS 1e-5f

typedef struct nm {
    int N, C, rms;
    double *x, *w, *b, *R;
} nm;

/* Row n's statistics: mean (0 for RMSNorm) and rstd. */
static void ref_stats(const nm *k, int n, double *mean, double *rstd)
{
    const double *x = k->x + n * k->C;
    double m = 0.0, v = 0.0;
    if (!k->rms) {
        for (int c = 0; c < k->C; c++)
            m += x[c];
        m /= k->C;
    }
    for (int c = 0; c < k->C; c++)
        v += (x[c] - m) * (x[c] - m);
    *mean = m;
    *rstd = 1.0 / sqrt(v / k->C + EPS);
}

static void ref_row(const nm *k, int n, double *out)
{
    double m, s;
    ref_stats(k, n, &m, &s);
    for (int c = 0; c < k->C; c++)
        out[c] = (k->x[n * k->C + c] - m) * s * k->w[c] + (k->rms ? 0.0 : k->b[c]);
}

static double loss(const double *x, void *ctx)
{
    (void)x;
    const nm *k = ctx;
    double l = 0.0, *row = malloc(sizeof(double) * (size_t)k->C);
    for (int n = 0; n < k->N; n++) {
        ref_row(k, n, row);
        for (int c = 0; c < k->C; c++)
            l += row[c] * k->R[n * k->C + c];
    }
    free(row);
    return l;
}

static void subtract(float *g, const float *pre, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] -= pre[i];
}

static void check_case(int N, int C, int rms, size_t max_checks)
{
    const size_t n = (size_t)N * C;
    nm k = {N, C, rms, dz(n), dz(C), dz(C), dz(n)};
    float *x = fz(n), *w = fz(C), *b = fz(C), *R = fz(n), *out = fz(n), *mean = fz(N), *rstd = fz(N);
    float *dx = fz(n), *dw = fz(C), *db = fz(C), *px = fz(n), *pw = fz(C), *pb = fz(C);
    gc_fill(x, k.x, n, 2.0, 1);
    for (size_t i = 0; i < n; i++) /* a row offset, so LayerNorm's mean matters */
        k.x[i] = x[i] = x[i] + (float)(i / (size_t)C % 3);
    gc_fill(w, k.w, C, 1.0, 2);
    gc_fill(b, k.b, C, 1.0, 3);
    gc_fill(R, k.R, n, 1.0, 4);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), tw = hs_view1(w, HS_FP32, C), tb = hs_view1(b, HS_FP32, C);
    hs_tensor tR = hs_view2(R, HS_FP32, N, C), to = hs_view2(out, HS_FP32, N, C);
    hs_tensor tm = hs_view1(mean, HS_FP32, N), ts = hs_view1(rstd, HS_FP32, N);
    hs_tensor tdx = hs_view2(dx, HS_FP32, N, C), tdw = hs_view1(dw, HS_FP32, C), tdb = hs_view1(db, HS_FP32, C);

    if (rms)
        assert_int_equal(hs_rmsnorm_forward(&to, &ts, &tx, &tw, EPS), HS_OK);
    else
        assert_int_equal(hs_layernorm_forward(&to, &tm, &ts, &tx, &tw, &tb, EPS), HS_OK);
    double *ref = dz(n), *rm = dz(N), *rs = dz(N);
    for (int i = 0; i < N; i++) {
        ref_row(&k, i, ref + (size_t)i * C);
        ref_stats(&k, i, &rm[i], &rs[i]);
    }
    assert_true(gc_close_ratio(out, ref, n, 1e-5, 1e-5) <= 1.0);
    assert_true(gc_close_ratio(rstd, rs, N, 0.0, 1e-5) <= 1.0);
    if (!rms)
        assert_true(gc_close_ratio(mean, rm, N, 1e-6, 1e-5) <= 1.0);

    gc_fill(px, NULL, n, 1.0, 5);
    gc_fill(pw, NULL, C, 1.0, 6);
    gc_fill(pb, NULL, C, 1.0, 7);
    memcpy(dx, px, n * sizeof(float));
    memcpy(dw, pw, C * sizeof(float));
    memcpy(db, pb, C * sizeof(float));
    if (rms)
        assert_int_equal(hs_rmsnorm_backward(&tdx, &tdw, &tR, &tx, &tw, &ts), HS_OK);
    else
        assert_int_equal(hs_layernorm_backward(&tdx, &tdw, &tdb, &tR, &tx, &tw, &tm, &ts), HS_OK);
    subtract(dx, px, n);
    subtract(dw, pw, C);
    subtract(db, pb, C);
    assert_true(gc_check("dinp", loss, &k, k.x, n, dx, 1e-4, 1e-4, 1e-4, max_checks) <= 1.0);
    assert_true(gc_check("dw", loss, &k, k.w, C, dw, 1e-4, 1e-4, 1e-4, max_checks) <= 1.0);
    if (!rms)
        assert_true(gc_check("db", loss, &k, k.b, C, db, 1e-4, 1e-4, 1e-4, max_checks) <= 1.0);

    free(k.x), free(k.w), free(k.b), free(k.R), free(ref), free(rm), free(rs);
    free(x), free(w), free(b), free(R), free(out), free(mean), free(rstd);
    free(dx), free(dw), free(db), free(px), free(pw), free(pb);
}

static void test_layernorm(void **state)
{
    (void)state;
    check_case(1, 7, 0, 200);
    check_case(9, 33, 0, 200);
    check_case(50, 700, 0, 40); /* threaded: partial sums of dw/db from both threads */
}

static void test_rmsnorm(void **state)
{
    (void)state;
    check_case(1, 7, 1, 200);
    check_case(9, 33, 1, 200);
    check_case(50, 700, 1, 40);
}

/* Only the gradients asked for are touched; mean/rstd outputs are optional. */
static void test_optional_outputs(void **state)
{
    (void)state;
    enum { N = 3, C = 5 };
    float x[N * C], w[C], b[C], out[N * C], mean[N], rstd[N], dw[C] = {0}, db[C] = {0};
    gc_fill(x, NULL, N * C, 1.0, 8);
    gc_fill(w, NULL, C, 1.0, 9);
    gc_fill(b, NULL, C, 1.0, 10);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), tw = hs_view1(w, HS_FP32, C), tb = hs_view1(b, HS_FP32, C);
    hs_tensor to = hs_view2(out, HS_FP32, N, C), tm = hs_view1(mean, HS_FP32, N), ts = hs_view1(rstd, HS_FP32, N);
    hs_tensor tdw = hs_view1(dw, HS_FP32, C), tdb = hs_view1(db, HS_FP32, C);
    assert_int_equal(hs_layernorm_forward(&to, NULL, NULL, &tx, &tw, &tb, EPS), HS_OK);
    assert_int_equal(hs_layernorm_forward(&to, &tm, &ts, &tx, &tw, &tb, EPS), HS_OK);
    assert_int_equal(hs_layernorm_backward(NULL, NULL, &tdb, &tx, &tx, &tw, &tm, &ts), HS_OK);
    for (int c = 0; c < C; c++)
        assert_true(fabsf(db[c] - (x[c] + x[C + c] + x[2 * C + c])) < 1e-6f);
    assert_int_equal(hs_rmsnorm_forward(&to, NULL, &tx, &tw, EPS), HS_OK);
    assert_int_equal(hs_rmsnorm_forward(&to, &ts, &tx, &tw, EPS), HS_OK);
    assert_int_equal(hs_rmsnorm_backward(NULL, &tdw, &tx, &tx, &tw, &ts), HS_OK);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float a[64] = {0};
    int32_t ints[64] = {0};
    hs_tensor x = hs_view2(a, HS_FP32, 4, 3), w = hs_view1(a, HS_FP32, 3), st = hs_view1(a, HS_FP32, 4);
    hs_tensor xbad = hs_view2(a, HS_FP32, 3, 4), wbad = hs_view1(a, HS_FP32, 4), stbad = hs_view1(a, HS_FP32, 3);
    hs_tensor wint = hs_view1(ints, HS_INT32, 3), xnpu = x, x3 = hs_view3(a, HS_FP32, 4, 3, 1), out = x;
    xnpu.device = gc_npu_device();

    EXPECT_ERR(hs_layernorm_forward(NULL, &st, &st, &x, &w, &w, EPS), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, NULL, &w, &w, EPS), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &x, &w, NULL, EPS), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &x, &w, &w, -1.0f), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &x, &w, &w, NAN), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_forward(&xbad, &st, &st, &x, &w, &w, EPS), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_forward(&out, &stbad, &st, &x, &w, &w, EPS), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &x, &wbad, &w, EPS), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &x3, &w, &w, EPS), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &x, &w, &wint, EPS), HS_ERR_DTYPE);
    EXPECT_ERR(hs_layernorm_forward(&out, &st, &st, &xnpu, &w, &w, EPS), HS_ERR_DEVICE);

    EXPECT_ERR(hs_layernorm_backward(&out, &w, &w, NULL, &x, &w, &st, &st), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_backward(&out, &w, &w, &x, &x, &w, NULL, &st), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_layernorm_backward(&out, &w, &w, &x, &x, &w, &st, &stbad), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_backward(&out, &wbad, &w, &x, &x, &w, &st, &st), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_backward(&xbad, &w, &w, &x, &x, &w, &st, &st), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_layernorm_backward(&out, &w, &wint, &x, &x, &w, &st, &st), HS_ERR_DTYPE);

    EXPECT_ERR(hs_rmsnorm_forward(NULL, &st, &x, &w, EPS), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rmsnorm_forward(&out, &st, &x, NULL, EPS), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rmsnorm_forward(&out, &st, &x, &w, INFINITY), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rmsnorm_forward(&out, &stbad, &x, &w, EPS), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_rmsnorm_forward(&out, &st, &x, &wint, EPS), HS_ERR_DTYPE);
    EXPECT_ERR(hs_rmsnorm_backward(&out, &w, &x, &x, &w, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rmsnorm_backward(&out, &wbad, &x, &x, &w, &st), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_rmsnorm_backward(&out, &w, &xbad, &x, &w, &st), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_rmsnorm_backward(&out, &wint, &x, &x, &w, &st), HS_ERR_DTYPE);
    EXPECT_ERR(hs_rmsnorm_backward(&out, &w, &x, &xnpu, &w, &st), HS_ERR_DEVICE);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 96, C = 768 };
    float *x = fz(N * C), *w = fz(C), *b = fz(C), *out[2], *mean[2], *rstd[2], *dx[2], *dw[2], *db[2];
    gc_fill(x, NULL, N * C, 1.0, 11);
    gc_fill(w, NULL, C, 1.0, 12);
    gc_fill(b, NULL, C, 1.0, 13);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), tw = hs_view1(w, HS_FP32, C), tb = hs_view1(b, HS_FP32, C);
    for (int r = 0; r < 2; r++) {
        out[r] = fz(N * C), mean[r] = fz(N), rstd[r] = fz(N), dx[r] = fz(N * C), dw[r] = fz(C), db[r] = fz(C);
        hs_tensor to = hs_view2(out[r], HS_FP32, N, C), tm = hs_view1(mean[r], HS_FP32, N);
        hs_tensor ts = hs_view1(rstd[r], HS_FP32, N), tdx = hs_view2(dx[r], HS_FP32, N, C);
        hs_tensor tdw = hs_view1(dw[r], HS_FP32, C), tdb = hs_view1(db[r], HS_FP32, C);
        assert_int_equal(hs_layernorm_forward(&to, &tm, &ts, &tx, &tw, &tb, EPS), HS_OK);
        assert_int_equal(hs_layernorm_backward(&tdx, &tdw, &tdb, &tx, &tx, &tw, &tm, &ts), HS_OK);
        assert_int_equal(hs_rmsnorm_forward(&to, &ts, &tx, &tw, EPS), HS_OK);
        assert_int_equal(hs_rmsnorm_backward(&tdx, &tdw, &tx, &tx, &tw, &ts), HS_OK);
    }
    assert_memory_equal(out[0], out[1], N * C * sizeof(float));
    assert_memory_equal(mean[0], mean[1], N * sizeof(float));
    assert_memory_equal(rstd[0], rstd[1], N * sizeof(float));
    assert_memory_equal(dx[0], dx[1], N * C * sizeof(float));
    assert_memory_equal(dw[0], dw[1], C * sizeof(float));
    assert_memory_equal(db[0], db[1], C * sizeof(float));
    free(x), free(w), free(b);
    for (int r = 0; r < 2; r++)
        free(out[r]), free(mean[r]), free(rstd[r]), free(dx[r]), free(dw[r]), free(db[r]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_optional_outputs),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
