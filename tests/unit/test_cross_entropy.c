/* Fused softmax + cross-entropy: forward against a double reference
 * (vocabularies spanning several chunks, maxima that rise chunk after chunk,
 * large offsets, ignored targets), finite-difference gradient of
 * sum(dloss * loss) (the backward WRITES), in-place backward, bad targets
 * and other bad arguments, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"


typedef struct problem {
    int N, V;
    int32_t *targets;
    float *x, *losses, *lse;
    double *xd, *ref_losses, *ref_lse;
} problem;

static void ref_cross_entropy(double *losses, double *lse, const double *x, const int32_t *targets, int N, int V)
{
    for (int n = 0; n < N; n++) {
        const double *row = x + (size_t)n * V;
        double m = -INFINITY, s = 0;
        for (int v = 0; v < V; v++)
            m = fmax(m, row[v]);
        for (int v = 0; v < V; v++)
            s += exp(row[v] - m);
        lse[n] = m + log(s);
        losses[n] = targets[n] >= 0 ? lse[n] - row[targets[n]] : 0.0;
    }
}

/* Logits U[-scale, scale) plus ramp * v (a max that grows along the row) plus
 * offset; every fourth row's target is -1. */
static problem make(int N, int V, double scale, double ramp, double offset, uint64_t seed)
{
    const size_t nx = (size_t)N * V;
    problem p = {.N = N,
                 .V = V,
                 .targets = malloc(N * 4u),
                 .x = malloc(nx * 4),
                 .losses = malloc(N * 4u),
                 .lse = malloc(N * 4u),
                 .xd = malloc(nx * 8),
                 .ref_losses = malloc(N * 8u),
                 .ref_lse = malloc(N * 8u)};
    gc_fill(p.x, p.xd, nx, scale, seed);
    for (size_t i = 0; i < nx; i++) {
        p.x[i] += (float)(ramp * (double)(i % V) + offset);
        p.xd[i] = p.x[i];
    }
    for (int n = 0; n < N; n++)
        p.targets[n] = n % 4 == 3 ? -1 : (int32_t)((n * 7919u + 13u) % (unsigned)V);
    return p;
}

static void release(problem *p)
{
    free(p->targets);
    free(p->x);
    free(p->losses);
    free(p->lse);
    free(p->xd);
    free(p->ref_losses);
    free(p->ref_lse);
}

static hs_tensor logits_t(problem *p, float *x) { return hs_view2(x, HS_FP32, p->N, p->V); }
static hs_tensor targets_t(problem *p) { return hs_view1(p->targets, HS_INT32, p->N); }

static void run_forward(problem *p)
{
    hs_tensor ls = hs_view1(p->losses, HS_FP32, p->N), lse = hs_view1(p->lse, HS_FP32, p->N);
    hs_tensor x = logits_t(p, p->x), t = targets_t(p);
    assert_int_equal(hs_cross_entropy_forward(&ls, &lse, &x, &t), HS_OK);
}

static void run_backward(problem *p, float *dlogits, float dloss)
{
    hs_tensor d = logits_t(p, dlogits), x = logits_t(p, p->x), t = targets_t(p);
    hs_tensor lse = hs_view1(p->lse, HS_FP32, p->N);
    assert_int_equal(hs_cross_entropy_backward(&d, &x, &lse, &t, dloss), HS_OK);
}

static void check_forward(int N, int V, double scale, double ramp, double offset)
{
    problem p = make(N, V, scale, ramp, offset, (uint64_t)V);
    run_forward(&p);
    ref_cross_entropy(p.ref_losses, p.ref_lse, p.xd, p.targets, N, V);
    assert_true(gc_close_ratio(p.lse, p.ref_lse, (size_t)N, 1e-5, 1e-6) <= 1);
    /* loss = lse - logit cancels: fp32's spacing at |offset| bounds its error */
    assert_true(gc_close_ratio(p.losses, p.ref_losses, (size_t)N, 2e-5 + 2e-7 * fabs(offset), 1e-5) <= 1);
    for (int n = 3; n < N; n += 4)
        assert_true(p.losses[n] == 0.0f);
    release(&p);
}

static void test_forward(void **state)
{
    const int shapes[][2] = {{1, 1}, {3, 5}, {4, 33}, {5, 70}, {6, 5003}, {4, 50257}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        check_forward(shapes[k][0], shapes[k][1], 5.0, 0.0, 0.0);
    check_forward(4, 5003, 1.0, 0.01, 0.0);    /* every chunk raises the running max */
    check_forward(4, 5003, 1.0, -0.01, 0.0);   /* the first chunk holds the max */
    check_forward(4, 3000, 20.0, 0.0, 1000.0); /* far from zero: only max-shifted sums survive */
}

typedef struct ctx {
    problem *p;
    double dloss;
} ctx;

static double loss(const double *x, void *c)
{
    ctx *k = c;
    problem *p = k->p;
    ref_cross_entropy(p->ref_losses, p->ref_lse, x, p->targets, p->N, p->V);
    double sum = 0;
    for (int n = 0; n < p->N; n++)
        sum += k->dloss * p->ref_losses[n];
    return sum;
}

static void test_gradient(void **state)
{
    const int shapes[][2] = {{1, 1}, {3, 5}, {4, 33}, {5, 70}, {4, 2100}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        problem p = make(shapes[k][0], shapes[k][1], 3.0, 0.0, 0.0, k + 1);
        size_t n = (size_t)p.N * p.V;
        float *d = malloc(n * 4);
        for (size_t i = 0; i < n; i++)
            d[i] = NAN; /* the backward writes: nothing of this may survive */
        run_forward(&p);
        run_backward(&p, d, 0.7f);
        ctx c = {&p, 0.7};
        assert_true(gc_check("dlogits", loss, &c, p.xd, n, d, 1e-3, 1e-6, 1e-4, 600) <= 1);
        for (int row = 3; row < p.N; row += 4) /* ignored rows: exact zeros */
            for (int v = 0; v < p.V; v++)
                assert_true(d[(size_t)row * p.V + v] == 0.0f);
        free(d);
        release(&p);
    }
}

/* dlogits may be the logits buffer: the gradient then replaces the logits. */
static void test_in_place(void **state)
{
    problem p = make(8, 3001, 5.0, 0.0, 0.0, 3);
    size_t n = (size_t)p.N * p.V;
    float *d = malloc(n * 4);
    run_forward(&p);
    run_backward(&p, d, 0.25f);
    run_backward(&p, p.x, 0.25f);
    assert_memory_equal(d, p.x, n * 4);
    free(d);
    release(&p);
}

static void test_deterministic(void **state)
{
    problem p = make(16, 5003, 5.0, 0.0, 0.0, 4);
    size_t n = (size_t)p.N * p.V;
    float *d0 = malloc(n * 4), *d1 = malloc(n * 4), *l0 = malloc((size_t)p.N * 4), *s0 = malloc((size_t)p.N * 4);
    run_forward(&p);
    memcpy(l0, p.losses, (size_t)p.N * 4);
    memcpy(s0, p.lse, (size_t)p.N * 4);
    run_backward(&p, d0, 1.0f);
    run_forward(&p);
    run_backward(&p, d1, 1.0f);
    assert_memory_equal(l0, p.losses, (size_t)p.N * 4);
    assert_memory_equal(s0, p.lse, (size_t)p.N * 4);
    assert_memory_equal(d0, d1, n * 4);
    free(d0);
    free(d1);
    free(l0);
    free(s0);
    release(&p);
}

static void test_bad_targets(void **state)
{
    problem p = make(4, 70, 1.0, 0.0, 0.0, 5);
    hs_tensor ls = hs_view1(p.losses, HS_FP32, 4), lse = hs_view1(p.lse, HS_FP32, 4);
    hs_tensor x = logits_t(&p, p.x), t = targets_t(&p);
    const int32_t bad[] = {70, -2, 1 << 30};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        p.targets[2] = bad[k];
        char want[64];
        snprintf(want, sizeof want, "targets[2] = %d", bad[k]);
        EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, &x, &t), HS_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(hs_last_error(), want));
        EXPECT_ERR(hs_cross_entropy_backward(&x, &x, &lse, &t, 1.0f), HS_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(hs_last_error(), want));
    }
    release(&p);
}

static void test_bad_arguments(void **state)
{
    problem p = make(4, 70, 1.0, 0.0, 0.0, 6);
    hs_tensor ls = hs_view1(p.losses, HS_FP32, 4), lse = hs_view1(p.lse, HS_FP32, 4);
    hs_tensor x = logits_t(&p, p.x), t = targets_t(&p);

    EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, NULL, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, &x, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_cross_entropy_forward(NULL, &lse, &x, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_cross_entropy_forward(&ls, NULL, &x, &t), HS_ERR_INVALID_ARGUMENT);
    hs_tensor bad = hs_view1(p.targets, HS_FP32, 4);
    EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, &x, &bad), HS_ERR_DTYPE);
    bad = hs_view1(p.targets, HS_INT32, 3);
    EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, &x, &bad), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view1(p.losses, HS_FP32, 3);
    EXPECT_ERR(hs_cross_entropy_forward(&bad, &lse, &x, &t), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view1(p.x, HS_FP32, 280);
    EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, &bad, &t), HS_ERR_SHAPE_MISMATCH);
    bad = x;
    bad.device = gc_npu_device();
    EXPECT_ERR(hs_cross_entropy_forward(&ls, &lse, &bad, &t), HS_ERR_DEVICE);

    bad = hs_view2(p.x, HS_FP32, 4, 69);
    EXPECT_ERR(hs_cross_entropy_backward(&bad, &x, &lse, &t, 1.0f), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_cross_entropy_backward(&x, &x, NULL, &t, 1.0f), HS_ERR_INVALID_ARGUMENT);
    bad = hs_view1(p.lse, HS_FP32, 2);
    EXPECT_ERR(hs_cross_entropy_backward(&x, &x, &bad, &t, 1.0f), HS_ERR_SHAPE_MISMATCH);
    assert_int_equal(hs_cross_entropy_backward(NULL, &x, &lse, &t, 1.0f), HS_OK); /* no gradient wanted */
    release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),       cmocka_unit_test(test_gradient),    cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_bad_targets), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
