/* hs_residual_forward / hs_residual_backward: out = a + b against double,
 * gradients (da += dout, db += dout) by central differences of
 * loss = sum((a + b) * R), aliasing, bad arguments, determinism. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "hyperspeed.h"


typedef struct rs {
    size_t n;
    double *a, *b, *R;
} rs;

static double loss(const double *x, void *ctx)
{
    (void)x;
    const rs *k = ctx;
    double l = 0.0;
    for (size_t i = 0; i < k->n; i++)
        l += (k->a[i] + k->b[i]) * k->R[i];
    return l;
}

/* A [B,T,C] residual of n = B*T*C elements. */
static void check_case(int B, int T, int C)
{
    const size_t n = (size_t)B * T * C;
    rs k = {n, dz(n), dz(n), dz(n)};
    float *a = fz(n), *b = fz(n), *out = fz(n), *R = fz(n), *da = fz(n), *db = fz(n), *pa = fz(n), *pb = fz(n);
    gc_fill(a, k.a, n, 1.0, 1);
    gc_fill(b, k.b, n, 1.0, 2);
    gc_fill(R, k.R, n, 1.0, 3);
    hs_tensor ta = hs_view3(a, HS_FP32, B, T, C), tb = hs_view3(b, HS_FP32, B, T, C);
    hs_tensor to = hs_view3(out, HS_FP32, B, T, C), tR = hs_view3(R, HS_FP32, B, T, C);
    hs_tensor tda = hs_view3(da, HS_FP32, B, T, C), tdb = hs_view3(db, HS_FP32, B, T, C);

    assert_int_equal(hs_residual_forward(&to, &ta, &tb), HS_OK);
    double *ref = dz(n);
    for (size_t i = 0; i < n; i++)
        ref[i] = k.a[i] + k.b[i];
    assert_true(gc_close_ratio(out, ref, n, 0.0, 1e-7) <= 1.0);

    /* in place: out aliases b */
    memcpy(out, b, n * sizeof(float));
    assert_int_equal(hs_residual_forward(&to, &ta, &to), HS_OK);
    assert_true(gc_close_ratio(out, ref, n, 0.0, 1e-7) <= 1.0);

    gc_fill(pa, NULL, n, 1.0, 4);
    gc_fill(pb, NULL, n, 1.0, 5);
    memcpy(da, pa, n * sizeof(float));
    memcpy(db, pb, n * sizeof(float));
    assert_int_equal(hs_residual_backward(&tda, &tdb, &tR), HS_OK);
    for (size_t i = 0; i < n; i++)
        da[i] -= pa[i], db[i] -= pb[i];
    assert_true(gc_check("da", loss, &k, k.a, n, da, 1e-3, 1e-6, 1e-6, 100) <= 1.0);
    assert_true(gc_check("db", loss, &k, k.b, n, db, 1e-3, 1e-6, 1e-6, 100) <= 1.0);

    /* one gradient only */
    memset(da, 0, n * sizeof(float));
    assert_int_equal(hs_residual_backward(&tda, NULL, &tR), HS_OK);
    assert_memory_equal(da, R, n * sizeof(float));

    free(k.a), free(k.b), free(k.R), free(ref);
    free(a), free(b), free(out), free(R), free(da), free(db), free(pa), free(pb);
}

static void test_values_and_gradients(void **state)
{
    (void)state;
    check_case(1, 1, 1);
    check_case(2, 3, 5);
    check_case(3, 70, 200); /* several blocks over both threads */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float f[64] = {0};
    int32_t ints[64] = {0};
    hs_tensor a = hs_view2(f, HS_FP32, 4, 3), other = hs_view2(f, HS_FP32, 3, 4), flat = hs_view1(f, HS_FP32, 12);
    hs_tensor aint = hs_view2(ints, HS_INT32, 4, 3), anpu = a, arank = a;
    anpu.device = gc_npu_device();
    arank.ndim = 5;

    EXPECT_ERR(hs_residual_forward(NULL, &a, &a), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_residual_forward(&a, NULL, &a), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_residual_forward(&a, &a, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_residual_forward(&a, &arank, &a), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_residual_forward(&a, &a, &other), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_residual_forward(&flat, &a, &a), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_residual_forward(&a, &a, &aint), HS_ERR_DTYPE);
    EXPECT_ERR(hs_residual_forward(&a, &anpu, &a), HS_ERR_DEVICE);
    EXPECT_ERR(hs_residual_backward(&a, &a, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_residual_backward(&other, &a, &a), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_residual_backward(&a, &aint, &a), HS_ERR_DTYPE);
    EXPECT_ERR(hs_residual_backward(&a, &a, &anpu), HS_ERR_DEVICE);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *a = fz(N), *b = fz(N), *out[2], *da[2];
    gc_fill(a, NULL, N, 1.0, 6);
    gc_fill(b, NULL, N, 1.0, 7);
    hs_tensor ta = hs_view1(a, HS_FP32, N), tb = hs_view1(b, HS_FP32, N);
    for (int r = 0; r < 2; r++) {
        out[r] = fz(N), da[r] = fz(N);
        hs_tensor to = hs_view1(out[r], HS_FP32, N), tda = hs_view1(da[r], HS_FP32, N);
        assert_int_equal(hs_residual_forward(&to, &ta, &tb), HS_OK);
        assert_int_equal(hs_residual_backward(&tda, &tda, &to), HS_OK);
    }
    assert_memory_equal(out[0], out[1], N * sizeof(float));
    assert_memory_equal(da[0], da[1], N * sizeof(float));
    free(a), free(b);
    for (int r = 0; r < 2; r++)
        free(out[r]), free(da[r]);
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
