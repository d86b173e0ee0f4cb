/* Causal attention: forward against a double reference that materialises
 * the softmax, finite-difference gradients of q, k and v, the accumulate
 * convention, bad arguments and run-to-run determinism. Shapes cover ragged
 * T (not multiples of the 32-query / 64-key tiles), head sizes that are and
 * are not multiples of 32, B > 1 and several heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"


typedef struct shape {
    int B, T, NH, HD;
} shape;

/* out[B,T,C] and lse[B,NH,T] of causal attention over q, k, v [B,T,C]. */
static void ref_attention(double *out, double *lse, const double *q, const double *k, const double *v, shape s)
{
    const int C = s.NH * s.HD;
    const double scale = 1.0 / sqrt(s.HD);
    double *p = malloc((size_t)s.T * sizeof *p);
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                const double *qt = q + ((size_t)b * s.T + t) * C + h * s.HD;
                double m = -INFINITY, l = 0;
                for (int u = 0; u <= t; u++) {
                    const double *ku = k + ((size_t)b * s.T + u) * C + h * s.HD;
                    double dot = 0;
                    for (int d = 0; d < s.HD; d++)
                        dot += qt[d] * ku[d];
                    p[u] = dot * scale;
                    m = fmax(m, p[u]);
                }
                for (int u = 0; u <= t; u++) {
                    p[u] = exp(p[u] - m);
                    l += p[u];
                }
                double *ot = out + ((size_t)b * s.T + t) * C + h * s.HD;
                for (int d = 0; d < s.HD; d++) {
                    double acc = 0;
                    for (int u = 0; u <= t; u++)
                        acc += p[u] * v[((size_t)b * s.T + u) * C + h * s.HD + d];
                    ot[d] = acc / l;
                }
                lse[((size_t)b * s.NH + h) * s.T + t] = m + log(l);
            }
    free(p);
}

/* Test problem: q, k, v in double and packed into qkv (fp32), upstream
 * gradient R, and the kernel's outputs. */
typedef struct problem {
    shape s;
    size_t n; /* B*T*C */
    double *q, *k, *v, *R, *out, *lse;
    float *qkv, *Rf, *outf, *lsef, *dqkv;
} problem;

static problem make(shape s, double scale, uint64_t seed)
{
    problem p = {.s = s, .n = (size_t)s.B * s.T * s.NH * s.HD};
    size_t n = p.n, C = (size_t)s.NH * s.HD, nl = (size_t)s.B * s.NH * s.T;
    double *d[] = {p.q = malloc(n * 8), p.k = malloc(n * 8), p.v = malloc(n * 8)};
    p.R = malloc(n * 8);
    p.out = malloc(n * 8);
    p.lse = malloc(nl * 8);
    p.qkv = malloc(3 * n * 4);
    p.dqkv = calloc(3 * n, 4);
    p.Rf = malloc(n * 4);
    p.outf = malloc(n * 4);
    p.lsef = malloc(nl * 4);
    float *tmp = malloc(n * 4);
    for (int part = 0; part < 3; part++) {
        gc_fill(tmp, d[part], n, scale, seed + part);
        for (size_t row = 0; row < n / C; row++)
            memcpy(p.qkv + row * 3 * C + part * C, tmp + row * C, C * 4);
    }
    gc_fill(p.Rf, p.R, n, 1.0, seed + 3);
    free(tmp);
    return p;
}

static void release(problem *p)
{
    void *all[] = {p->q, p->k, p->v, p->R, p->out, p->lse, p->qkv, p->Rf, p->outf, p->lsef, p->dqkv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
}

static hs_tensor qkv_t(problem *p, float *data)
{
    return hs_view3(data, HS_FP32, p->s.B, p->s.T, 3 * p->s.NH * p->s.HD);
}
static hs_tensor act_t(problem *p, float *data) { return hs_view3(data, HS_FP32, p->s.B, p->s.T, p->s.NH * p->s.HD); }
static hs_tensor lse_t(problem *p, float *data) { return hs_view3(data, HS_FP32, p->s.B, p->s.NH, p->s.T); }

static void run_forward(problem *p)
{
    hs_tensor out = act_t(p, p->outf), lse = lse_t(p, p->lsef), qkv = qkv_t(p, p->qkv);
    assert_int_equal(hs_attention_forward(&out, &lse, &qkv, p->s.NH), HS_OK);
}

static void run_backward(problem *p, float *dqkv)
{
    hs_tensor d = qkv_t(p, dqkv), dout = act_t(p, p->Rf), qkv = qkv_t(p, p->qkv), out = act_t(p, p->outf),
              lse = lse_t(p, p->lsef);
    assert_int_equal(hs_attention_backward(&d, &dout, &qkv, &out, &lse, p->s.NH), HS_OK);
}

static void check_forward(shape s, double scale)
{
    problem p = make(s, scale, 11);
    run_forward(&p);
    ref_attention(p.out, p.lse, p.q, p.k, p.v, s);
    assert_true(gc_close_ratio(p.outf, p.out, p.n, 1e-5, 1e-4) <= 1);
    assert_true(gc_close_ratio(p.lsef, p.lse, (size_t)s.B * s.NH * s.T, 1e-5, 1e-5) <= 1);
    release(&p);
}

static void test_forward(void **state)
{
    const shape shapes[] = {{1, 1, 1, 8},   {2, 5, 3, 4},   {1, 33, 2, 16},  {2, 70, 2, 8},
                            {2, 64, 3, 40}, {1, 97, 1, 32}, {4, 64, 12, 64}, {2, 300, 2, 64}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_forward(shapes[i], 1.0);
    check_forward((shape){1, 130, 2, 32}, 3.0); /* peaked softmax: large running-max corrections */
}

static double loss(const double *x, void *ctx)
{
    problem *p = ctx;
    ref_attention(p->out, p->lse, p->q, p->k, p->v, p->s);
    double sum = 0;
    for (size_t i = 0; i < p->n; i++)
        sum += p->out[i] * p->R[i];
    return sum;
}

static void check_gradients(shape s, size_t max_checks)
{
    problem p = make(s, 1.0, 5);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    const size_t C = (size_t)s.NH * s.HD;
    double *x[] = {p.q, p.k, p.v};
    const char *names[] = {"dq", "dk", "dv"};
    float *g = malloc(p.n * 4);
    for (int part = 0; part < 3; part++) {
        for (size_t row = 0; row < p.n / C; row++)
            memcpy(g + row * C, p.dqkv + row * 3 * C + part * C, C * 4);
        assert_true(gc_check(names[part], loss, &p, x[part], p.n, g, 1e-3, 1e-4, 1e-3, max_checks) <= 1);
    }
    free(g);
    release(&p);
}

static void test_gradients(void **state)
{
    check_gradients((shape){1, 1, 1, 4}, 1000);
    check_gradients((shape){2, 5, 3, 4}, 1000);
    check_gradients((shape){1, 33, 2, 16}, 300);
    check_gradients((shape){1, 70, 2, 8}, 300);
    check_gradients((shape){1, 70, 1, 32}, 300);
    check_gradients((shape){1, 300, 1, 64}, 12);
}

/* backward adds to dqkv: starting from ones gives 1 + the gradient. */
static void test_accumulates(void **state)
{
    problem p = make((shape){2, 37, 2, 16}, 1.0, 9);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    float *acc = malloc(3 * p.n * 4);
    for (size_t i = 0; i < 3 * p.n; i++)
        acc[i] = 1.0f;
    run_backward(&p, acc);
    for (size_t i = 0; i < 3 * p.n; i++)
        assert_float_equal(acc[i], 1.0f + p.dqkv[i], 1e-6);
    hs_tensor dout = act_t(&p, p.Rf), qkv = qkv_t(&p, p.qkv), out = act_t(&p, p.outf), lse = lse_t(&p, p.lsef);
    assert_int_equal(hs_attention_backward(NULL, &dout, &qkv, &out, &lse, p.s.NH), HS_OK);
    free(acc);
    release(&p);
}

static void test_deterministic(void **state)
{
    problem p = make((shape){2, 100, 3, 64}, 1.0, 3);
    float *out0 = malloc(p.n * 4), *d0 = calloc(3 * p.n, 4);
    run_forward(&p);
    run_backward(&p, d0);
    memcpy(out0, p.outf, p.n * 4);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    assert_memory_equal(out0, p.outf, p.n * 4);
    assert_memory_equal(d0, p.dqkv, 3 * p.n * 4);
    free(out0);
    free(d0);
    release(&p);
}

static void test_bad_arguments(void **state)
{
    problem p = make((shape){2, 5, 2, 4}, 1.0, 1);
    hs_tensor qkv = qkv_t(&p, p.qkv), out = act_t(&p, p.outf), lse = lse_t(&p, p.lsef);
    hs_tensor dqkv = qkv_t(&p, p.dqkv), dout = act_t(&p, p.Rf);

    EXPECT_ERR(hs_attention_forward(&out, &lse, NULL, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(NULL, &lse, &qkv, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(&out, NULL, &qkv, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 3), HS_ERR_INVALID_ARGUMENT); /* 3 does not divide C=8 */
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 0), HS_ERR_INVALID_ARGUMENT);
    hs_tensor bad = hs_view3(p.qkv, HS_FP32, 2, 5, 23); /* not 3*C */
    EXPECT_ERR(hs_attention_forward(&out, &lse, &bad, 1), HS_ERR_INVALID_ARGUMENT);
    bad = hs_view3(p.outf, HS_FP32, 2, 4, 8);
    EXPECT_ERR(hs_attention_forward(&bad, &lse, &qkv, 2), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view3(p.lsef, HS_FP32, 2, 1, 5); /* one head's lse for two heads */
    EXPECT_ERR(hs_attention_forward(&out, &bad, &qkv, 2), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view2(p.outf, HS_FP32, 10, 8);
    EXPECT_ERR(hs_attention_forward(&bad, &lse, &qkv, 2), HS_ERR_SHAPE_MISMATCH);
    bad = out;
    bad.dtype = HS_BF16;
    EXPECT_ERR(hs_attention_forward(&bad, &lse, &qkv, 2), HS_ERR_DTYPE);
    bad = qkv;
    bad.device = HS_DEVICE_NPU;
    EXPECT_ERR(hs_attention_forward(&out, &lse, &bad, 2), HS_ERR_DEVICE);

    EXPECT_ERR(hs_attention_backward(&dqkv, NULL, &qkv, &out, &lse, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, NULL, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, &lse, 5), HS_ERR_INVALID_ARGUMENT);
    bad = act_t(&p, p.dqkv); /* [B,T,C] where [B,T,3C] is needed */
    EXPECT_ERR(hs_attention_backward(&bad, &dout, &qkv, &out, &lse, 2), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view3(p.Rf, HS_FP32, 2, 5, 4);
    EXPECT_ERR(hs_attention_backward(&dqkv, &bad, &qkv, &out, &lse, 2), HS_ERR_SHAPE_MISMATCH);
    bad = lse;
    bad.dtype = HS_INT32;
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, &bad, 2), HS_ERR_DTYPE);
    release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),       cmocka_unit_test(test_gradients),     cmocka_unit_test(test_accumulates),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
