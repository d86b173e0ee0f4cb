/* SwiGLU: forward against a double reference (including saturated gates),
 * finite-difference gradient of [gate | up], the accumulate convention, bad
 * arguments and determinism. Widths F are not multiples of the vector size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"


typedef struct shape {
    int N, F;
} shape;

static void ref_swiglu(double *out, const double *inp, shape s)
{
    for (int n = 0; n < s.N; n++)
        for (int f = 0; f < s.F; f++) {
            double g = inp[(size_t)n * 2 * s.F + f], u = inp[(size_t)n * 2 * s.F + s.F + f];
            out[(size_t)n * s.F + f] = g / (1.0 + exp(-g)) * u;
        }
}

static const shape shapes[] = {{1, 1}, {3, 5}, {4, 33}, {2, 70}, {7, 1000}};

static void check_forward(shape s, double scale)
{
    size_t n = (size_t)s.N * s.F;
    float *x = malloc(2 * n * 4), *y = malloc(n * 4);
    double *xd = malloc(2 * n * 8), *ref = malloc(n * 8);
    gc_fill(x, xd, 2 * n, scale, (uint64_t)s.F);
    hs_tensor tx = hs_view2(x, HS_FP32, s.N, 2 * s.F), ty = hs_view2(y, HS_FP32, s.N, s.F);
    assert_int_equal(hs_swiglu_forward(&ty, &tx), HS_OK);
    ref_swiglu(ref, xd, s);
    assert_true(gc_close_ratio(y, ref, n, 1e-6, 1e-5) <= 1);
    free(x);
    free(y);
    free(xd);
    free(ref);
}

static void test_forward(void **state)
{
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        check_forward(shapes[k], 4.0);
        check_forward(shapes[k], 120.0); /* gates far into both tails of the sigmoid */
    }
}

typedef struct ctx {
    shape s;
    double *R, *y;
} ctx;

static double loss(const double *x, void *c)
{
    ctx *p = c;
    ref_swiglu(p->y, x, p->s);
    double sum = 0;
    for (size_t i = 0; i < (size_t)p->s.N * p->s.F; i++)
        sum += p->y[i] * p->R[i];
    return sum;
}

static void test_gradient(void **state)
{
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        shape s = shapes[k];
        size_t n = (size_t)s.N * s.F;
        float *x = malloc(2 * n * 4), *R = malloc(n * 4), *dx = calloc(2 * n, 4);
        double *xd = malloc(2 * n * 8), *Rd = malloc(n * 8), *y = malloc(n * 8);
        gc_fill(x, xd, 2 * n, 4.0, k + 1);
        gc_fill(R, Rd, n, 1.0, k + 2);
        hs_tensor tx = hs_view2(x, HS_FP32, s.N, 2 * s.F), tR = hs_view2(R, HS_FP32, s.N, s.F),
                  tdx = hs_view2(dx, HS_FP32, s.N, 2 * s.F);
        assert_int_equal(hs_swiglu_backward(&tdx, &tR, &tx), HS_OK);
        ctx c = {s, Rd, y};
        assert_true(gc_check("dinp", loss, &c, xd, 2 * n, dx, 1e-4, 1e-5, 1e-4, 400) <= 1);
        /* backward adds: a second call doubles the gradient exactly */
        float *once = malloc(2 * n * 4);
        memcpy(once, dx, 2 * n * 4);
        assert_int_equal(hs_swiglu_backward(&tdx, &tR, &tx), HS_OK);
        for (size_t i = 0; i < 2 * n; i++)
            assert_true(dx[i] == 2 * once[i]);
        free(once);
        free(x);
        free(R);
        free(dx);
        free(xd);
        free(Rd);
        free(y);
    }
}

static void test_deterministic(void **state)
{
    shape s = {9, 333};
    size_t n = (size_t)s.N * s.F;
    float *x = malloc(2 * n * 4), *R = malloc(n * 4), *y0 = malloc(n * 4), *y1 = malloc(n * 4);
    float *d0 = calloc(2 * n, 4), *d1 = calloc(2 * n, 4);
    gc_fill(x, NULL, 2 * n, 4.0, 1);
    gc_fill(R, NULL, n, 1.0, 2);
    hs_tensor tx = hs_view2(x, HS_FP32, s.N, 2 * s.F), tR = hs_view2(R, HS_FP32, s.N, s.F);
    hs_tensor t0 = hs_view2(y0, HS_FP32, s.N, s.F), t1 = hs_view2(y1, HS_FP32, s.N, s.F);
    hs_tensor g0 = hs_view2(d0, HS_FP32, s.N, 2 * s.F), g1 = hs_view2(d1, HS_FP32, s.N, 2 * s.F);
    assert_int_equal(hs_swiglu_forward(&t0, &tx), HS_OK);
    assert_int_equal(hs_swiglu_forward(&t1, &tx), HS_OK);
    assert_int_equal(hs_swiglu_backward(&g0, &tR, &tx), HS_OK);
    assert_int_equal(hs_swiglu_backward(&g1, &tR, &tx), HS_OK);
    assert_memory_equal(y0, y1, n * 4);
    assert_memory_equal(d0, d1, 2 * n * 4);
    free(x);
    free(R);
    free(y0);
    free(y1);
    free(d0);
    free(d1);
}

static void test_bad_arguments(void **state)
{
    float *x = calloc(64, 4), *y = calloc(64, 4);
    hs_tensor tx = hs_view2(x, HS_FP32, 4, 8), ty = hs_view2(y, HS_FP32, 4, 4);

    EXPECT_ERR(hs_swiglu_forward(&ty, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_swiglu_forward(NULL, &tx), HS_ERR_INVALID_ARGUMENT);
    hs_tensor odd = hs_view2(x, HS_FP32, 4, 7);
    EXPECT_ERR(hs_swiglu_forward(&ty, &odd), HS_ERR_INVALID_ARGUMENT);
    hs_tensor bad = hs_view2(y, HS_FP32, 4, 8);
    EXPECT_ERR(hs_swiglu_forward(&bad, &tx), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view1(y, HS_FP32, 16);
    EXPECT_ERR(hs_swiglu_forward(&bad, &tx), HS_ERR_SHAPE_MISMATCH);
    bad = tx;
    bad.dtype = HS_INT32;
    EXPECT_ERR(hs_swiglu_forward(&ty, &bad), HS_ERR_DTYPE);

    hs_tensor dx = hs_view2(y, HS_FP32, 4, 8), dy = hs_view2(x, HS_FP32, 4, 4);
    EXPECT_ERR(hs_swiglu_backward(&dx, NULL, &tx), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_swiglu_backward(&dx, &dy, &odd), HS_ERR_INVALID_ARGUMENT);
    bad = hs_view2(y, HS_FP32, 4, 4);
    EXPECT_ERR(hs_swiglu_backward(&bad, &dy, &tx), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_swiglu_backward(&dx, &tx, &tx), HS_ERR_SHAPE_MISMATCH);
    assert_int_equal(hs_swiglu_backward(NULL, &dy, &tx), HS_OK); /* no gradient wanted */
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
