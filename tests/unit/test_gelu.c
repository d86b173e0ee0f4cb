/* hs_bias_gelu_forward / hs_bias_gelu_backward against a naive double
 * reference with libm's tanh: out = gelu(x + bias), loss = sum(out * R). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "hyperspeed.h"


typedef struct gl {
    int N, C;
    double *x, *bias, *R; /* bias NULL: no bias */
} gl;

static double ref_gelu(double u) { return 0.5 * u * (1.0 + tanh(sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u))); }

static double ref_out(const gl *k, int n, int c) { return ref_gelu(k->x[n * k->C + c] + (k->bias ? k->bias[c] : 0)); }

static double loss(const double *x, void *ctx)
{
    (void)x;
    const gl *k = ctx;
    double l = 0.0;
    for (int n = 0; n < k->N; n++)
        for (int c = 0; c < k->C; c++)
            l += ref_out(k, n, c) * k->R[n * k->C + c];
    return l;
}

static void check_case(int N, int C, int with_bias, double scale, size_t max_checks)
{
    const size_t n = (size_t)N * C;
    gl k = {N, C, dz(n), with_bias ? dz(C) : NULL, dz(n)};
    float *x = fz(n), *b = fz(C), *out = fz(n), *R = fz(n), *dx = fz(n), *db = fz(C), *px = fz(n), *pb = fz(C);
    gc_fill(x, k.x, n, scale, 1);
    gc_fill(b, k.bias, with_bias ? (size_t)C : 0, 1.0, 2);
    gc_fill(R, k.R, n, 1.0, 3);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), tb = hs_view1(b, HS_FP32, C), to = hs_view2(out, HS_FP32, N, C);
    hs_tensor tR = hs_view2(R, HS_FP32, N, C), tdx = hs_view2(dx, HS_FP32, N, C), tdb = hs_view1(db, HS_FP32, C);
    const hs_tensor *bias = with_bias ? &tb : NULL;

    assert_int_equal(hs_bias_gelu_forward(&to, &tx, bias), HS_OK);
    double *ref = dz(n);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++)
            ref[i * C + c] = ref_out(&k, i, c);
    assert_true(gc_close_ratio(out, ref, n, 1e-6, 1e-5) <= 1.0);

    gc_fill(px, NULL, n, 1.0, 4);
    gc_fill(pb, NULL, C, 1.0, 5);
    memcpy(dx, px, n * sizeof(float));
    memcpy(db, pb, C * sizeof(float));
    assert_int_equal(hs_bias_gelu_backward(&tdx, &tdb, &tR, &tx, bias), HS_OK);
    for (size_t i = 0; i < n; i++)
        dx[i] -= px[i];
    for (int c = 0; c < C; c++)
        db[c] -= pb[c];
    assert_true(gc_check("dx", loss, &k, k.x, n, dx, 1e-4, 1e-5, 1e-4, max_checks) <= 1.0);
    if (with_bias)
        assert_true(gc_check("dbias", loss, &k, k.bias, C, db, 1e-4, 1e-5, 1e-4, max_checks) <= 1.0);

    free(k.x), free(k.bias), free(k.R), free(ref);
    free(x), free(b), free(out), free(R), free(dx), free(db), free(px), free(pb);
}

static void test_values_and_gradients(void **state)
{
    (void)state;
    check_case(7, 13, 1, 3.0, 300);
    check_case(5, 33, 0, 3.0, 300);
    check_case(3, 1100, 1, 12.0, 300); /* channels past one 512-wide span; tails of exp's range */
    check_case(40, 900, 1, 3.0, 40);   /* big enough for the threaded paths */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float a[64] = {0};
    int32_t ints[64] = {0};
    hs_tensor x = hs_view2(a, HS_FP32, 4, 3), out = hs_view2(a, HS_FP32, 4, 3), b = hs_view1(a, HS_FP32, 3);
    hs_tensor obad = hs_view2(a, HS_FP32, 3, 4), bbad = hs_view1(a, HS_FP32, 4), x1 = hs_view1(a, HS_FP32, 12);
    hs_tensor xint = hs_view2(ints, HS_INT32, 4, 3), bint = hs_view1(ints, HS_INT32, 3), xnpu = x;
    xnpu.device = gc_npu_device();

    EXPECT_ERR(hs_bias_gelu_forward(NULL, &x, &b), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_bias_gelu_forward(&out, NULL, &b), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_bias_gelu_forward(&obad, &x, &b), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_bias_gelu_forward(&out, &x, &bbad), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_bias_gelu_forward(&out, &x1, &b), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_bias_gelu_forward(&out, &xint, &b), HS_ERR_DTYPE);
    EXPECT_ERR(hs_bias_gelu_forward(&out, &x, &bint), HS_ERR_DTYPE);
    EXPECT_ERR(hs_bias_gelu_forward(&out, &xnpu, NULL), HS_ERR_DEVICE);

    hs_tensor dx = x, db = b, dout = out;
    EXPECT_ERR(hs_bias_gelu_backward(&dx, &db, NULL, &x, &b), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_bias_gelu_backward(&dx, &db, &dout, NULL, &b), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_bias_gelu_backward(&obad, &db, &dout, &x, &b), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_bias_gelu_backward(&dx, &bbad, &dout, &x, &b), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_bias_gelu_backward(&dx, &db, &obad, &x, &b), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_bias_gelu_backward(&dx, &bint, &dout, &x, &b), HS_ERR_DTYPE);
    EXPECT_ERR(hs_bias_gelu_backward(&xint, &db, &dout, &x, &b), HS_ERR_DTYPE);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 64, C = 1000 };
    float *x = fz(N * C), *b = fz(C), *out[2], *dx[2], *db[2];
    gc_fill(x, NULL, N * C, 4.0, 6);
    gc_fill(b, NULL, C, 1.0, 7);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), tb = hs_view1(b, HS_FP32, C);
    for (int r = 0; r < 2; r++) {
        out[r] = fz(N * C), dx[r] = fz(N * C), db[r] = fz(C);
        hs_tensor to = hs_view2(out[r], HS_FP32, N, C), tdx = hs_view2(dx[r], HS_FP32, N, C);
        hs_tensor tdb = hs_view1(db[r], HS_FP32, C);
        assert_int_equal(hs_bias_gelu_forward(&to, &tx, &tb), HS_OK);
        assert_int_equal(hs_bias_gelu_backward(&tdx, &tdb, &to, &tx, &tb), HS_OK);
    }
    assert_memory_equal(out[0], out[1], N * C * sizeof(float));
    assert_memory_equal(dx[0], dx[1], N * C * sizeof(float));
    assert_memory_equal(db[0], db[1], C * sizeof(float));
    free(x), free(b);
    for (int r = 0; r < 2; r++)
        free(out[r]), free(dx[r]), free(db[r]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_gradients),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
