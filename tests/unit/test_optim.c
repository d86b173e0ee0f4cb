/* AdamW against a double reference of torch.optim.AdamW's update (PyTorch
 * 1.13), one step from the kernel's own state and a 10-step trajectory;
 * global gradient norm, clip scale, in-place scaling; bad arguments and
 * determinism. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "hyperspeed.h"
#include "train/optimizer_norm.h"


static double *widen(const float *f, size_t n)
{
    double *d = dz(n);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

/* torch.optim.AdamW, in double:
 *   p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),  g = grad * grad_scale */
static void ref_adamw(double *p, const float *grad, double *m, double *v, size_t n, const hs_adamw_params *h)
{
    const double b1 = h->beta1, b2 = h->beta2, t = (double)h->step;
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    for (size_t i = 0; i < n; i++) {
        const double g = (double)grad[i] * h->grad_scale;
        p[i] *= 1.0 - (double)h->lr * h->weight_decay;
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        p[i] -= h->lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + h->eps);
    }
}

static void test_adamw_matches_pytorch(void **state)
{
    (void)state;
    enum { N = 70000, STEPS = 10 }; /* several blocks over both threads */
    float *p = fz(N), *g = fz(N), *m = fz(N), *v = fz(N);
    gc_fill(p, NULL, N, 1.0, 1);
    double *tp = widen(p, N), *tm = dz(N), *tv = dz(N); /* the 10-step trajectory in double */
    hs_tensor tP = hs_view1(p, HS_FP32, N), tG = hs_view1(g, HS_FP32, N);
    hs_tensor tM = hs_view1(m, HS_FP32, N), tV = hs_view1(v, HS_FP32, N);
    hs_adamw_params h = hs_adamw_params_default();
    h.lr = 1e-2f;
    h.weight_decay = 0.1f;
    h.grad_scale = 0.5f;
    for (int s = 1; s <= STEPS; s++) {
        gc_fill(g, NULL, N, s % 3 == 0 ? 1e-3 : 1.0, 100 + (uint64_t)s); /* also gradients far below eps^0.5 */
        h.step = s;
        /* one step from the kernel's own fp32 state: a few ulp */
        double *sp = widen(p, N), *sm = widen(m, N), *sv = widen(v, N);
        ref_adamw(sp, g, sm, sv, N, &h);
        ref_adamw(tp, g, tm, tv, N, &h);
        assert_int_equal(hs_adamw_update(&tP, &tG, &tM, &tV, &h), HS_OK);
        assert_true(gc_close_ratio(p, sp, N, 1e-7, 5e-7) <= 1.0);
        assert_true(gc_close_ratio(m, sm, N, 1e-7, 5e-7) <= 1.0);
        assert_true(gc_close_ratio(v, sv, N, 1e-12, 5e-7) <= 1.0);
        free(sp), free(sm), free(sv);
    }
    assert_true(gc_close_ratio(p, tp, N, 1e-6, 1e-5) <= 1.0);
    free(p), free(g), free(m), free(v), free(tp), free(tm), free(tv);
}

/* With zero gradients and state, a step is the decoupled decay alone. */
static void test_adamw_decay_only(void **state)
{
    (void)state;
    float p[5] = {1, -2, 3, 0.5f, -0.25f}, g[5] = {0}, m[5] = {0}, v[5] = {0};
    hs_tensor tP = hs_view1(p, HS_FP32, 5), tG = hs_view1(g, HS_FP32, 5), tM = hs_view1(m, HS_FP32, 5);
    hs_tensor tV = hs_view1(v, HS_FP32, 5);
    hs_adamw_params h = hs_adamw_params_default();
    h.lr = 0.5f;
    h.weight_decay = 0.2f;
    assert_int_equal(hs_adamw_update(&tP, &tG, &tM, &tV, &h), HS_OK);
    assert_true(p[0] == 0.9f && p[1] == -1.8f && p[4] == -0.225f);
}

static void test_adamw_defaults_and_bad_arguments(void **state)
{
    (void)state;
    hs_adamw_params d = hs_adamw_params_default();
    assert_true(d.lr == 3e-4f && d.beta1 == 0.9f && d.beta2 == 0.95f && d.eps == 1e-8f);
    assert_true(d.weight_decay == 0.1f && d.grad_scale == 1.0f && d.step == 1);

    float f[16] = {0};
    uint16_t h16[16] = {0};
    hs_tensor a = hs_view1(f, HS_FP32, 8), a2 = hs_view2(f, HS_FP32, 2, 4), b = hs_view1(f, HS_FP32, 7);
    hs_tensor bf = hs_view1(h16, HS_BF16, 8), npu = a;
    npu.device = gc_npu_device();
    assert_int_equal(hs_adamw_update(&a, &a2, &a, &a2, &d), HS_OK); /* same numel, any shape */

    EXPECT_ERR(hs_adamw_update(NULL, &a, &a, &a, &d), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_adamw_update(&a, &a, &a, NULL, &d), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_adamw_update(&a, &a, &a, &a, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_adamw_update(&a, &b, &a, &a, &d), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_adamw_update(&a, &a, &b, &a, &d), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_adamw_update(&a, &a, &a, &bf, &d), HS_ERR_DTYPE);
    EXPECT_ERR(hs_adamw_update(&a, &npu, &a, &a, &d), HS_ERR_DEVICE);

    const struct {
        int field;
        float value;
    } bad[] = {{0, -1e-3f}, {0, NAN},     {1, 1.0f},  {1, -0.1f}, {2, 1.5f},     {3, 0.0f},
               {3, -1.0f},  {4, -0.1f},   {5, -1.0f}, {5, NAN},   {0, INFINITY}, {3, INFINITY}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hs_adamw_params p = d;
        float *fields[] = {&p.lr, &p.beta1, &p.beta2, &p.eps, &p.weight_decay, &p.grad_scale};
        *fields[bad[i].field] = bad[i].value;
        EXPECT_ERR(hs_adamw_update(&a, &a, &a, &a, &p), HS_ERR_INVALID_ARGUMENT);
    }
    hs_adamw_params p = d;
    p.step = 0;
    EXPECT_ERR(hs_adamw_update(&a, &a, &a, &a, &p), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "step"));
}

static void test_grad_norm(void **state)
{
    (void)state;
    const int64_t sizes[3] = {40000, 1, 333}; /* the first spans three blocks */
    float *g[3];
    hs_tensor t[3];
    double ref = 0.0;
    for (int i = 0; i < 3; i++) {
        g[i] = fz((size_t)sizes[i]);
        gc_fill(g[i], NULL, (size_t)sizes[i], 2.0, 10 + (uint64_t)i);
        for (int64_t j = 0; j < sizes[i]; j++)
            ref += (double)g[i][j] * g[i][j];
        t[i] = hs_view1(g[i], HS_FP32, sizes[i]);
    }
    t[2] = hs_view3(g[2], HS_FP32, 3, 111, 1);
    double norm = -1.0, again = -1.0;
    assert_int_equal(hs_grad_norm(t, 3, &norm), HS_OK);
    assert_true(fabs(norm - sqrt(ref)) <= 1e-12 * sqrt(ref));
    assert_int_equal(hs_grad_norm(t, 3, &again), HS_OK);
    assert_memory_equal(&norm, &again, sizeof norm);
    assert_int_equal(hs_grad_norm(t, 0, &norm), HS_OK);
    assert_true(norm == 0.0);

    uint16_t h16[4] = {0};
    hs_tensor mixed[2] = {t[1], hs_view1(h16, HS_BF16, 4)};
    EXPECT_ERR(hs_grad_norm(t, 3, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grad_norm(NULL, 1, &norm), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grad_norm(t, -1, &norm), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_grad_norm(mixed, 2, &norm), HS_ERR_DTYPE);
    assert_non_null(strstr(hs_last_error(), "grads[1]"));
    for (int i = 0; i < 3; i++)
        free(g[i]);
}

static void test_clip_scale(void **state)
{
    (void)state;
    assert_true(hs_clip_scale(100.0, 0.0f) == 1.0f);
    assert_true(hs_clip_scale(100.0, -1.0f) == 1.0f);
    assert_true(hs_clip_scale(0.5, 1.0f) == 1.0f);
    assert_true(hs_clip_scale(0.0, 1.0f) == 1.0f);
    assert_true(hs_clip_scale(10.0, 1.0f) == (float)(1.0 / (10.0 + 1e-6)));
    assert_true(isnan(hs_clip_scale(NAN, 1.0f)));
}

static void test_scale_inplace(void **state)
{
    (void)state;
    enum { N = 50000 };
    float *x = fz(N), *y = fz(N);
    gc_fill(x, NULL, N, 1.0, 20);
    memcpy(y, x, N * sizeof(float));
    hs_tensor t = hs_view2(x, HS_FP32, 100, 500), bad = hs_view1(x, HS_INT32, N);
    assert_int_equal(hs_scale_inplace(&t, 0.25f), HS_OK);
    for (int i = 0; i < N; i++)
        assert_true(x[i] == y[i] * 0.25f);
    EXPECT_ERR(hs_scale_inplace(NULL, 2.0f), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_scale_inplace(&bad, 2.0f), HS_ERR_DTYPE);
    free(x), free(y);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *p[2], *m[2], *v[2], *g = fz(N);
    gc_fill(g, NULL, N, 1.0, 30);
    hs_adamw_params h = hs_adamw_params_default();
    for (int r = 0; r < 2; r++) {
        p[r] = fz(N), m[r] = fz(N), v[r] = fz(N);
        gc_fill(p[r], NULL, N, 1.0, 31);
        hs_tensor tp = hs_view1(p[r], HS_FP32, N), tg = hs_view1(g, HS_FP32, N);
        hs_tensor tm = hs_view1(m[r], HS_FP32, N), tv = hs_view1(v[r], HS_FP32, N);
        for (h.step = 1; h.step <= 3; h.step++)
            assert_int_equal(hs_adamw_update(&tp, &tg, &tm, &tv, &h), HS_OK);
    }
    assert_memory_equal(p[0], p[1], N * sizeof(float));
    assert_memory_equal(m[0], m[1], N * sizeof(float));
    assert_memory_equal(v[0], v[1], N * sizeof(float));
    free(g);
    for (int r = 0; r < 2; r++)
        free(p[r]), free(m[r]), free(v[r]);
}

/* A one-layer GPT-2 of width 32: the optimizer tests' model. */
static hs_model_config one_layer(void)
{
    hs_model_config c = hs_model_config_default();
    c.n_layer = 1;
    c.d_model = 32;
    c.d_ff = 64;
    c.max_seq = 8;
    return c;
}

/* The norm's share of a registry range (the pipeline step sums the tied
 * wte's squares apart, after its exchange): inside + outside is the
 * whole, inside is the range's own sum of squares, in double. */
static void test_grad_sumsq_parts(void **state)
{
    (void)state;
    const hs_model_config c = one_layer();
    hs_model *m;
    hs_optimizer *o;
    const hs_optimizer_config oc = hs_optimizer_config_default();
    assert_int_equal(hs_model_new(&c, 1, 8, &m), HS_OK);
    assert_int_equal(hs_optimizer_new(m, &oc, &o), HS_OK);
    for (int i = 0; i < hs_model_num_tensors(m); i++) {
        hs_tensor g;
        assert_int_equal(hs_model_tensor(m, i, HS_PARAM_GRAD, &g), HS_OK);
        for (int64_t k = 0; k < hs_tensor_numel(&g); k++)
            ((float *)g.data)[k] = (float)((k * 7 + i * 13) % 23) * 0.01f - 0.1f;
    }
    hs_tensor wte;
    assert_int_equal(hs_model_tensor_by_name(m, "wte", HS_PARAM_GRAD, &wte), HS_OK);
    const hs_param_info *w = hs_model_param_by_name(m, "wte");
    double want = 0, whole, in, out;
    for (int64_t k = 0; k < w->numel; k++)
        want += (double)((float *)wte.data)[k] * ((float *)wte.data)[k];
    assert_int_equal(hs_optimizer_grad_sumsq(o, &whole), HS_OK);
    assert_int_equal(hs_optimizer_grad_sumsq_part(o, w->offset, w->offset + w->numel, 1, &in), HS_OK);
    assert_int_equal(hs_optimizer_grad_sumsq_part(o, w->offset, w->offset + w->numel, 0, &out), HS_OK);
    assert_true(fabs(in - want) <= 1e-12 * want);
    assert_true(fabs(in + out - whole) <= 1e-12 * whole);
    assert_true(out > 0 && in > 0);
    /* a range inside one span splits it in two outside pieces */
    const int64_t mid = w->offset + w->numel / 2;
    assert_int_equal(hs_optimizer_grad_sumsq_part(o, mid, mid + 5, 1, &in), HS_OK);
    assert_int_equal(hs_optimizer_grad_sumsq_part(o, mid, mid + 5, 0, &out), HS_OK);
    assert_true(fabs(in + out - whole) <= 1e-12 * whole);
    assert_int_equal(hs_optimizer_grad_sumsq_part(o, 0, 0, 1, &in), HS_OK);
    assert_true(in == 0);
    hs_optimizer_free(o);
    hs_model_free(m);
}

/* ZeRO-1's sharded optimizer: over its blocks it updates the parameters
 * exactly as the whole optimizer does (same norm given), leaves the rest
 * alone, holds moments for its blocks only, counts its blocks' squares,
 * and refuses bad blocks and the calls that need the whole state. */
static void test_sharded(void **state)
{
    (void)state;
    const hs_model_config c = one_layer();
    hs_model *a, *b;
    hs_optimizer *full, *shard;
    const hs_optimizer_config oc = hs_optimizer_config_default();
    assert_int_equal(hs_model_new(&c, 1, 8, &a), HS_OK);
    assert_int_equal(hs_model_new(&c, 1, 8, &b), HS_OK);
    assert_int_equal(hs_model_init(a, 5), HS_OK);
    assert_int_equal(hs_model_init(b, 5), HS_OK);
    const int64_t n = hs_model_num_params(a);
    const int64_t off[2] = {n / 7, n / 2}, len[2] = {n / 5, n / 2 - 3}; /* across several entries */
    assert_int_equal(hs_optimizer_new(a, &oc, &full), HS_OK);
    assert_int_equal(hs_optimizer_new_sharded(b, &oc, off, len, 2, &shard), HS_OK);
    hs_tensor ga, gb, va, vb;
    assert_int_equal(hs_model_tensor(a, 0, HS_PARAM_GRAD, &ga), HS_OK);
    assert_int_equal(hs_model_tensor(b, 0, HS_PARAM_GRAD, &gb), HS_OK);
    assert_int_equal(hs_model_tensor(a, 0, HS_PARAM_VALUE, &va), HS_OK);
    assert_int_equal(hs_model_tensor(b, 0, HS_PARAM_VALUE, &vb), HS_OK);
    float *g1 = ga.data, *g2 = gb.data, *w1 = va.data, *w2 = vb.data; /* entry 0 starts the flat buffers */
    float *before = malloc(sizeof(float) * (size_t)n);
    memcpy(before, w2, sizeof(float) * (size_t)n);
    for (int step = 0; step < 3; step++) {
        for (int64_t i = 0; i < n; i++)
            g1[i] = g2[i] = (float)((i * 31 + step * 7) % 41) * 0.01f - 0.2f;
        double norm, mine = 0, want = 0;
        assert_int_equal(hs_optimizer_grad_sumsq(full, &norm), HS_OK);
        assert_int_equal(hs_optimizer_grad_sumsq(shard, &mine), HS_OK);
        assert_int_equal(hs_optimizer_grad_sumsq_part(full, off[0], off[0] + len[0], 1, &want), HS_OK);
        double second;
        assert_int_equal(hs_optimizer_grad_sumsq_part(full, off[1], off[1] + len[1], 1, &second), HS_OK);
        assert_true(fabs(mine - (want + second)) <= 1e-12 * mine);
        assert_int_equal(hs_optimizer_step_norm(full, 1e-2f, sqrt(norm)), HS_OK);
        assert_int_equal(hs_optimizer_step_norm(shard, 1e-2f, sqrt(norm)), HS_OK);
    }
    for (int64_t i = 0; i < n; i++) {
        const int inside = (i >= off[0] && i < off[0] + len[0]) || (i >= off[1] && i < off[1] + len[1]);
        if (inside && w1[i] != w2[i])
            fail_msg("parameter %lld: sharded %.9g, whole %.9g", (long long)i, w2[i], w1[i]);
        if (!inside && w2[i] != before[i])
            fail_msg("parameter %lld outside the blocks moved", (long long)i);
    }
    EXPECT_ERR(hs_optimizer_step(shard, 1e-2f, NULL), HS_ERR_INVALID_ARGUMENT);
    hs_tensor m;
    EXPECT_ERR(hs_optimizer_state(shard, 0, HS_ADAM_M, &m), HS_ERR_INVALID_ARGUMENT);
    hs_optimizer *bad = NULL;
    const int64_t overlap_off[2] = {10, 15}, overlap_len[2] = {10, 10}, past[1] = {n - 5}, five[1] = {10};
    EXPECT_ERR(hs_optimizer_new_sharded(b, &oc, overlap_off, overlap_len, 2, &bad), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_optimizer_new_sharded(b, &oc, past, five, 1, &bad), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_optimizer_new_sharded(b, &oc, off, len, 0, &bad), HS_ERR_INVALID_ARGUMENT);
    assert_null(bad);
    free(before);
    hs_optimizer_free(shard);
    hs_optimizer_free(full);
    hs_model_free(b);
    hs_model_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_pytorch),
        cmocka_unit_test(test_adamw_decay_only),
        cmocka_unit_test(test_adamw_defaults_and_bad_arguments),
        cmocka_unit_test(test_grad_norm),
        cmocka_unit_test(test_clip_scale),
        cmocka_unit_test(test_scale_inplace),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_grad_sumsq_parts),
        cmocka_unit_test(test_sharded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
