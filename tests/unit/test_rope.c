/* RoPE: forward against a double reference of the half-split pairing,
 * finite-difference gradient (the backward WRITES dinp), in-place use of
 * both directions, the inverse property, bad arguments and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"


typedef struct shape {
    int B, T, H, HD, n_rot;
} shape;

static const float theta = 10000.0f;

static size_t numel(shape s) { return (size_t)s.B * s.T * s.H * s.HD; }
static hs_tensor view(shape s, float *x) { return hs_view4(x, HS_FP32, s.B, s.T, s.H, s.HD); }

/* Heads h < n_rot of token t, at position pos0 + t: pair (i, i + HD/2)
 * turns by (pos0 + t) * theta^(-2i/HD). */
static void ref_rope(double *out, const double *x, shape s, int64_t pos0)
{
    const int half = s.HD / 2;
    for (int b = 0; b < s.B; b++)
        for (int t = 0; t < s.T; t++)
            for (int h = 0; h < s.H; h++) {
                size_t off = (((size_t)b * s.T + t) * s.H + h) * s.HD;
                for (int i = 0; i < half; i++) {
                    double x0 = x[off + i], x1 = x[off + i + half];
                    if (h >= s.n_rot) {
                        out[off + i] = x0;
                        out[off + i + half] = x1;
                        continue;
                    }
                    double a = (double)(pos0 + t) * pow(theta, -2.0 * i / s.HD);
                    out[off + i] = x0 * cos(a) - x1 * sin(a);
                    out[off + i + half] = x1 * cos(a) + x0 * sin(a);
                }
            }
}

static const shape shapes[] = {{1, 1, 1, 2, 1},   {2, 5, 3, 4, 2},    {1, 33, 4, 8, 4},
                               {2, 70, 3, 16, 0}, {2, 33, 6, 128, 4}, {1, 5, 2, 260, 1}};

static void test_forward(void **state)
{
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        shape s = shapes[k];
        size_t n = numel(s);
        float *x = malloc(n * 4), *y = malloc(n * 4);
        double *xd = malloc(n * 8), *ref = malloc(n * 8);
        gc_fill(x, xd, n, 1.0, k + 1);
        hs_tensor tx = view(s, x), ty = view(s, y);
        const int64_t pos0 = k % 2 ? 0 : 1000 + (int64_t)k; /* whole sequences, and slices further on */
        assert_int_equal(hs_rope_forward(&ty, &tx, s.n_rot, theta, pos0), HS_OK);
        ref_rope(ref, xd, s, pos0);
        assert_true(gc_close_ratio(y, ref, n, 1e-6, 1e-5) <= 1);
        free(x);
        free(y);
        free(xd);
        free(ref);
    }
}

typedef struct ctx {
    shape s;
    int64_t pos0;
    double *R, *y;
} ctx;

static double loss(const double *x, void *c)
{
    ctx *p = c;
    ref_rope(p->y, x, p->s, p->pos0);
    double sum = 0;
    for (size_t i = 0; i < numel(p->s); i++)
        sum += p->y[i] * p->R[i];
    return sum;
}

static void test_gradient(void **state)
{
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        shape s = shapes[k];
        size_t n = numel(s);
        float *R = malloc(n * 4), *dx = malloc(n * 4);
        double *xd = malloc(n * 8), *Rd = malloc(n * 8), *y = malloc(n * 8);
        gc_fill(NULL, xd, n, 1.0, k + 7);
        gc_fill(R, Rd, n, 1.0, k + 9);
        for (size_t i = 0; i < n; i++)
            dx[i] = 1e30f; /* the backward writes: nothing of this may survive */
        hs_tensor tR = view(s, R), tdx = view(s, dx);
        const int64_t pos0 = k % 2 ? 37 : 0;
        assert_int_equal(hs_rope_backward(&tdx, &tR, s.n_rot, theta, pos0), HS_OK);
        ctx c = {s, pos0, Rd, y};
        assert_true(gc_check("dinp", loss, &c, xd, n, dx, 1e-3, 1e-6, 1e-5, 400) <= 1);
        free(R);
        free(dx);
        free(xd);
        free(Rd);
        free(y);
    }
}

/* In place equals out of place, both ways, and the backward undoes the forward. */
static void test_in_place(void **state)
{
    shape s = {2, 37, 5, 64, 3};
    size_t n = numel(s);
    float *x = malloc(n * 4), *y = malloc(n * 4), *z = malloc(n * 4), *w = malloc(n * 4);
    gc_fill(x, NULL, n, 1.0, 3);
    memcpy(z, x, n * 4);
    hs_tensor tx = view(s, x), ty = view(s, y), tz = view(s, z), tw = view(s, w);
    assert_int_equal(hs_rope_forward(&ty, &tx, s.n_rot, theta, 0), HS_OK);
    assert_int_equal(hs_rope_forward(&tz, &tz, s.n_rot, theta, 0), HS_OK);
    assert_memory_equal(y, z, n * 4);
    assert_int_equal(hs_rope_backward(&tw, &ty, s.n_rot, theta, 0), HS_OK);
    assert_int_equal(hs_rope_backward(&tz, &tz, s.n_rot, theta, 0), HS_OK);
    assert_memory_equal(w, z, n * 4);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(z[i], x[i], 1e-6);
    free(x);
    free(y);
    free(z);
    free(w);
}

/* A slice of a sequence rotated at its offset is the same slice of the
 * whole sequence rotated from 0, bit for bit (the chunk a context-parallel
 * rank holds, or one decode step). */
static void test_offset_is_a_slice(void **state)
{
    (void)state;
    const shape whole = {2, 40, 3, 16, 2}, part = {2, 15, 3, 16, 2};
    const int64_t pos0 = 25, row = (int64_t)whole.H * whole.HD;
    float *x = malloc(numel(whole) * 4), *y = malloc(numel(whole) * 4);
    float *xs = malloc(numel(part) * 4), *ys = malloc(numel(part) * 4);
    gc_fill(x, NULL, numel(whole), 1.0, 9);
    for (int b = 0; b < whole.B; b++)
        memcpy(xs + (size_t)b * part.T * row, x + ((size_t)b * whole.T + pos0) * row, (size_t)(part.T * row) * 4);
    hs_tensor tx = view(whole, x), ty = view(whole, y), txs = view(part, xs), tys = view(part, ys);
    assert_int_equal(hs_rope_forward(&ty, &tx, whole.n_rot, theta, 0), HS_OK);
    assert_int_equal(hs_rope_forward(&tys, &txs, part.n_rot, theta, pos0), HS_OK);
    for (int b = 0; b < whole.B; b++)
        assert_memory_equal(ys + (size_t)b * part.T * row, y + ((size_t)b * whole.T + pos0) * row,
                            (size_t)(part.T * row) * 4);
    assert_int_equal(hs_rope_backward(&tys, &tys, part.n_rot, theta, pos0), HS_OK); /* and back */
    for (size_t i = 0; i < numel(part); i++)
        assert_float_equal(ys[i], xs[i], 1e-6);
    free(x);
    free(y);
    free(xs);
    free(ys);
}

static void test_deterministic(void **state)
{
    shape s = {2, 70, 4, 32, 4};
    size_t n = numel(s);
    float *x = malloc(n * 4), *y0 = malloc(n * 4), *y1 = malloc(n * 4);
    gc_fill(x, NULL, n, 1.0, 5);
    hs_tensor tx = view(s, x), t0 = view(s, y0), t1 = view(s, y1);
    assert_int_equal(hs_rope_forward(&t0, &tx, s.n_rot, theta, 0), HS_OK);
    assert_int_equal(hs_rope_forward(&t1, &tx, s.n_rot, theta, 0), HS_OK);
    assert_memory_equal(y0, y1, n * 4);
    free(x);
    free(y0);
    free(y1);
}

static void test_bad_arguments(void **state)
{
    shape s = {2, 3, 4, 8, 2};
    float *x = calloc(numel(s), 4), *y = calloc(numel(s), 4);
    hs_tensor tx = view(s, x), ty = view(s, y);

    EXPECT_ERR(hs_rope_forward(&ty, NULL, 2, theta, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(&ty, &tx, 2, theta, -1), HS_ERR_INVALID_ARGUMENT); /* a negative position */
    assert_non_null(strstr(hs_last_error(), "pos0=-1"));
    EXPECT_ERR(hs_rope_backward(&ty, &tx, 2, theta, -3), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(NULL, &tx, 2, theta, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(&ty, &tx, 5, theta, 0), HS_ERR_INVALID_ARGUMENT); /* H = 4 */
    EXPECT_ERR(hs_rope_forward(&ty, &tx, -1, theta, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(&ty, &tx, 2, 0.0f, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(&ty, &tx, 2, -1.0f, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(&ty, &tx, 2, NAN, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_forward(&ty, &tx, 2, INFINITY, 0), HS_ERR_INVALID_ARGUMENT);
    hs_tensor odd = hs_view4(x, HS_FP32, 2, 3, 4, 7), odd_out = hs_view4(y, HS_FP32, 2, 3, 4, 7);
    EXPECT_ERR(hs_rope_forward(&odd_out, &odd, 2, theta, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_backward(&odd_out, &odd, 2, theta, 0), HS_ERR_INVALID_ARGUMENT);
    hs_tensor bad = hs_view4(y, HS_FP32, 2, 3, 2, 16);
    EXPECT_ERR(hs_rope_forward(&bad, &tx, 2, theta, 0), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view3(x, HS_FP32, 6, 4, 8);
    EXPECT_ERR(hs_rope_forward(&ty, &bad, 2, theta, 0), HS_ERR_SHAPE_MISMATCH);
    bad = ty;
    bad.dtype = HS_FP16;
    EXPECT_ERR(hs_rope_forward(&bad, &tx, 2, theta, 0), HS_ERR_DTYPE);
    bad = tx;
    bad.device = gc_npu_device();
    EXPECT_ERR(hs_rope_forward(&ty, &bad, 2, theta, 0), HS_ERR_DEVICE);

    EXPECT_ERR(hs_rope_backward(&tx, NULL, 2, theta, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_rope_backward(&tx, &ty, 9, theta, 0), HS_ERR_INVALID_ARGUMENT);
    bad = hs_view4(x, HS_FP32, 2, 3, 4, 4);
    EXPECT_ERR(hs_rope_backward(&bad, &ty, 2, theta, 0), HS_ERR_SHAPE_MISMATCH);
    assert_int_equal(hs_rope_backward(NULL, &ty, 2, theta, 0), HS_OK); /* no gradient wanted */
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),       cmocka_unit_test(test_gradient),      cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_offset_is_a_slice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
