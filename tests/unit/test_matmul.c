/* hs_matmul_forward / hs_matmul_backward against a naive double reference:
 * out = inp @ w^T + bias, loss = sum(out * R). fp32 and bf16 operands
 * (bf16: the reference uses the bf16-rounded values), ragged shapes, and a
 * shape past the bf16 path's 512-row tiles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "hyperspeed.h"


typedef struct mm {
    int N, C, OC;
    double *inp, *w, *bias, *R; /* bias NULL: no bias */
} mm;

/* out[n,o] = sum_c inp[n,c] w[o,c] + bias[o] */
static double ref_out(const mm *k, int n, int o)
{
    double s = k->bias ? k->bias[o] : 0.0;
    for (int c = 0; c < k->C; c++)
        s += k->inp[n * k->C + c] * k->w[o * k->C + c];
    return s;
}

static double loss(const double *x, void *ctx)
{
    (void)x; /* x is one of ctx's arrays, perturbed in place */
    const mm *k = ctx;
    double l = 0.0;
    for (int n = 0; n < k->N; n++)
        for (int o = 0; o < k->OC; o++)
            l += ref_out(k, n, o) * k->R[n * k->OC + o];
    return l;
}

/* Random operand as a tensor of dtype dt and its exact values in double. */
static void *operand(hs_dtype dt, double *ref, size_t n, uint64_t seed)
{
    float *f = fz(n);
    gc_fill(f, ref, n, 1.0, seed);
    if (dt == HS_FP32)
        return f;
    uint16_t *h = calloc(n, sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) {
        h[i] = hs_fp32_to_bf16(f[i]);
        ref[i] = hs_bf16_to_fp32(h[i]);
    }
    free(f);
    return h;
}

/* grad - prefill: what the backward added to a pre-filled buffer. */
static float *added(const float *g, const float *pre, size_t n)
{
    float *a = fz(n);
    for (size_t i = 0; i < n; i++)
        a[i] = g[i] - pre[i];
    return a;
}

static void check_case(int N, int C, int OC, int with_bias, hs_dtype dt, size_t max_checks)
{
    const size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
    mm k = {N, C, OC, dz(ni), dz(nw), with_bias ? dz(OC) : NULL, dz(no)};
    void *inp = operand(dt, k.inp, ni, 1), *w = operand(dt, k.w, nw, 2);
    float *bias = fz(OC), *out = fz(no), *R = fz(no);
    gc_fill(bias, k.bias, with_bias ? (size_t)OC : 0, 1.0, 3);
    gc_fill(R, k.R, no, 1.0, 4);

    hs_tensor ti = hs_view2(inp, dt, N, C), tw = hs_view2(w, dt, OC, C), tb = hs_view1(bias, HS_FP32, OC);
    hs_tensor to = hs_view2(out, HS_FP32, N, OC), tR = hs_view2(R, HS_FP32, N, OC);
    assert_int_equal(hs_matmul_forward(&to, &ti, &tw, with_bias ? &tb : NULL), HS_OK);
    double *ref = dz(no);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            ref[n * OC + o] = ref_out(&k, n, o);
    assert_true(gc_close_ratio(out, ref, no, 1e-6, 1e-5) <= 1.0);

    /* backward into pre-filled buffers: they must be added to */
    float *dinp = fz(ni), *dw = fz(nw), *db = fz(OC), *pi = fz(ni), *pw = fz(nw), *pb = fz(OC);
    gc_fill(pi, NULL, ni, 1.0, 5);
    gc_fill(pw, NULL, nw, 1.0, 6);
    gc_fill(pb, NULL, OC, 1.0, 7);
    memcpy(dinp, pi, ni * sizeof(float));
    memcpy(dw, pw, nw * sizeof(float));
    memcpy(db, pb, OC * sizeof(float));
    hs_tensor tdi = hs_view2(dinp, HS_FP32, N, C), tdw = hs_view2(dw, HS_FP32, OC, C), tdb = hs_view1(db, HS_FP32, OC);
    assert_int_equal(hs_matmul_backward(&tdi, &tdw, &tdb, &tR, &ti, &tw), HS_OK);
    float *ai = added(dinp, pi, ni), *aw = added(dw, pw, nw), *ab = added(db, pb, OC);
    assert_true(gc_check("dinp", loss, &k, k.inp, ni, ai, 1e-3, 1e-5, 1e-4, max_checks) <= 1.0);
    assert_true(gc_check("dw", loss, &k, k.w, nw, aw, 1e-3, 1e-5, 1e-4, max_checks) <= 1.0);
    if (with_bias)
        assert_true(gc_check("dbias", loss, &k, k.bias, OC, ab, 1e-3, 1e-5, 1e-4, max_checks) <= 1.0);

    free(k.inp), free(k.w), free(k.bias), free(k.R), free(ref);
    free(inp), free(w), free(bias), free(out), free(R);
    free(dinp), free(dw), free(db), free(pi), free(pw), free(pb), free(ai), free(aw), free(ab);
}

static void test_fp32_shapes(void **state)
{
    (void)state;
    check_case(1, 13, 5, 1, HS_FP32, 200);
    check_case(7, 13, 5, 1, HS_FP32, 200);
    check_case(7, 13, 5, 0, HS_FP32, 200);
    check_case(33, 65, 17, 1, HS_FP32, 200);
    check_case(4, 1, 1, 1, HS_FP32, 200);
}

static void test_bf16_shapes(void **state)
{
    (void)state;
    check_case(7, 13, 5, 1, HS_BF16, 200);
    check_case(33, 65, 17, 0, HS_BF16, 200);
    check_case(520, 3, 515, 1, HS_BF16, 30); /* both reductions of the backward span two tiles */
}

/* Only the gradients asked for are touched. */
static void test_null_gradients(void **state)
{
    (void)state;
    enum { N = 3, C = 4, OC = 2 };
    float inp[N * C] = {0}, w[OC * C] = {0}, dout[N * OC], dw[OC * C] = {0};
    gc_fill(dout, NULL, N * OC, 1.0, 8);
    hs_tensor ti = hs_view2(inp, HS_FP32, N, C), tw = hs_view2(w, HS_FP32, OC, C);
    hs_tensor td = hs_view2(dout, HS_FP32, N, OC), tdw = hs_view2(dw, HS_FP32, OC, C);
    assert_int_equal(hs_matmul_backward(NULL, NULL, NULL, &td, &ti, &tw), HS_OK);
    assert_int_equal(hs_matmul_backward(NULL, &tdw, NULL, &td, &ti, &tw), HS_OK);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float a[64] = {0};
    uint16_t h[64] = {0};
    int32_t ints[64] = {0};
    hs_tensor inp = hs_view2(a, HS_FP32, 4, 3), w = hs_view2(a, HS_FP32, 5, 3), out = hs_view2(a, HS_FP32, 4, 5);
    hs_tensor bias = hs_view1(a, HS_FP32, 5), wbad = hs_view2(a, HS_FP32, 5, 4), obad = hs_view2(a, HS_FP32, 4, 4);
    hs_tensor bbad = hs_view1(a, HS_FP32, 4), iint = hs_view2(ints, HS_INT32, 4, 3), wbf = hs_view2(h, HS_BF16, 5, 3);
    hs_tensor obf = hs_view2(h, HS_BF16, 4, 5), w3 = hs_view3(a, HS_FP32, 5, 3, 1), inpu = inp;
    inpu.device = gc_npu_device();

    EXPECT_ERR(hs_matmul_forward(NULL, &inp, &w, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_matmul_forward(&out, NULL, &w, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_matmul_forward(&out, &inp, NULL, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_matmul_forward(&out, &inp, &wbad, NULL), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_forward(&out, &inp, &w3, NULL), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_forward(&obad, &inp, &w, NULL), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_forward(&out, &inp, &w, &bbad), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_forward(&out, &iint, &w, NULL), HS_ERR_DTYPE);
    EXPECT_ERR(hs_matmul_forward(&out, &inp, &wbf, NULL), HS_ERR_DTYPE);
    EXPECT_ERR(hs_matmul_forward(&obf, &inp, &w, &bias), HS_ERR_DTYPE);
    EXPECT_ERR(hs_matmul_forward(&out, &inpu, &w, NULL), HS_ERR_DEVICE);

    hs_tensor dinp = inp, dw = w, dout = out;
    EXPECT_ERR(hs_matmul_backward(&dinp, &dw, NULL, NULL, &inp, &w), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_matmul_backward(&dinp, &dw, NULL, &dout, &inp, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_matmul_backward(&obad, &dw, NULL, &dout, &inp, &w), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_backward(&dinp, &wbad, NULL, &dout, &inp, &w), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_backward(&dinp, &dw, &bbad, &dout, &inp, &w), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_backward(&dinp, &dw, NULL, &obad, &inp, &w), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_matmul_backward(&dinp, &wbf, NULL, &dout, &inp, &w), HS_ERR_DTYPE);
    EXPECT_ERR(hs_matmul_backward(&dinp, &dw, NULL, &obf, &inp, &w), HS_ERR_DTYPE);
}

/* Two runs on the same data are bit-identical (shapes large enough to use
 * every thread). */
static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 64, C = 96, OC = 600 };
    float *inp = fz(N * C), *w = fz(OC * C), *b = fz(OC), *out[2], *dinp[2], *dw[2], *db[2];
    gc_fill(inp, NULL, N * C, 1.0, 9);
    gc_fill(w, NULL, OC * C, 1.0, 10);
    gc_fill(b, NULL, OC, 1.0, 11);
    hs_tensor ti = hs_view2(inp, HS_FP32, N, C), tw = hs_view2(w, HS_FP32, OC, C), tb = hs_view1(b, HS_FP32, OC);
    for (int r = 0; r < 2; r++) {
        out[r] = fz(N * OC), dinp[r] = fz(N * C), dw[r] = fz(OC * C), db[r] = fz(OC);
        hs_tensor to = hs_view2(out[r], HS_FP32, N, OC), tdi = hs_view2(dinp[r], HS_FP32, N, C);
        hs_tensor tdw = hs_view2(dw[r], HS_FP32, OC, C), tdb = hs_view1(db[r], HS_FP32, OC);
        assert_int_equal(hs_matmul_forward(&to, &ti, &tw, &tb), HS_OK);
        assert_int_equal(hs_matmul_backward(&tdi, &tdw, &tdb, &to, &ti, &tw), HS_OK);
    }
    assert_memory_equal(out[0], out[1], N * OC * sizeof(float));
    assert_memory_equal(dinp[0], dinp[1], N * C * sizeof(float));
    assert_memory_equal(dw[0], dw[1], OC * C * sizeof(float));
    assert_memory_equal(db[0], db[1], OC * sizeof(float));
    free(inp), free(w), free(b);
    for (int r = 0; r < 2; r++)
        free(out[r]), free(dinp[r]), free(dw[r]), free(db[r]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_shapes),    cmocka_unit_test(test_bf16_shapes),
        cmocka_unit_test(test_null_gradients), cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
