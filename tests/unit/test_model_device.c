/* Model placement and mixed precision (hs_model_new_ex):
 *   - options that cannot work are clear errors;
 *   - bf16 compute on the CPU trains, and its losses follow the fp32 run's
 *     within the bf16 tolerance below, step by step;
 *   - on the NPU "test" preset in execute mode a micro model's losses,
 *     gradients and training steps agree with the CPU bf16 run, and the
 *     same run in estimate mode takes the same simulated time (within
 *     0.1 %, see npu_agrees) and identical HBM, with NaN losses;
 *     generation, checkpoints and HBM exhaustion.
 *
 * Tolerances. bf16 keeps 8 significant bits (unit roundoff u = 2^-9 after
 * rounding to nearest). Casting every matmul input perturbs each product
 * by at most 2u relative, and the sums stay fp32, so a loss of order 1
 * moves by well under 1 %: we require |loss_bf16 - loss_fp32| <= 1 % of
 * loss_fp32 over 40 training steps (measured: <= 0.03 %). The NPU adds its
 * own bf16 roundings inside attention (q, k, v, P rounded for the cube) and
 * different fp32 summation orders; we require the losses within 0.2 %
 * (measured: <= 0.01 %) and the whole gradient within 2 % in relative L2
 * norm of the CPU bf16 gradient (measured below 0.5 %).
 */
#include "gradcheck.h"

#include "hyperspeed.h"
#include "model_flat.h"

#include <string.h>

static hs_model_config micro(hs_arch arch)
{
    hs_model_config c = hs_model_config_default();
    c.arch = arch;
    c.vocab_size = 32;
    c.max_seq = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_model = 32;
    c.d_ff = 64;
    return c;
}

enum { B = 4, T = 16, N = B * T };

/* A learnable batch: fixed token patterns, targets a function of the token. */
static void batch(int32_t *x, int32_t *y, int V, int step)
{
    for (int i = 0; i < N; i++) {
        x[i] = (i * 7 + step * 13 + i / 5) % V;
        y[i] = (x[i] * 3 + 1) % V;
    }
}

/* LLaMA-style micro model with grouped-query attention (4 query heads on
 * 2 key/value heads) and a qkv bias. */
static hs_model_config micro_gqa(void)
{
    hs_model_config c = micro(HS_ARCH_LLAMA);
    c.n_head = 4;
    c.n_kv_head = 2;
    c.qkv_bias = 1;
    return c;
}

static hs_model *model_on(hs_model_config c, hs_device_kind dev, hs_npu *npu, hs_dtype compute)
{
    hs_model_options o = hs_model_options_default();
    o.device = dev;
    o.npu = npu;
    o.compute = compute;
    hs_model *m;
    assert_int_equal(hs_model_new_ex(&c, B, T, &o, &m), HS_OK);
    assert_int_equal(hs_model_init(m, 5), HS_OK);
    return m;
}

static hs_optimizer *optimizer(hs_model *m)
{
    hs_optimizer_config oc = hs_optimizer_config_default();
    hs_optimizer *o;
    assert_int_equal(hs_optimizer_new(m, &oc, &o), HS_OK);
    return o;
}

static hs_npu *npu_new(hs_npu_mode mode)
{
    hs_npu_spec s;
    hs_npu *d;
    assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
    assert_int_equal(hs_npu_new(&s, mode, &d), HS_OK);
    return d;
}

static double sim_time(hs_npu *d) { return hs_npu_stream_time(hs_npu_default_stream(d)); }

static void test_bad_options(void **state)
{
    (void)state;
    const hs_model_config c = micro(HS_ARCH_GPT2);
    hs_npu *d = npu_new(HS_NPU_EXECUTE);
    hs_model *m = (hs_model *)1;
    hs_model_options o = hs_model_options_default();
    assert_int_equal(o.device, HS_DEVICE_CPU);
    assert_int_equal(o.compute, HS_FP32);
    o.device = HS_DEVICE_NPU;
    o.npu = d;
    EXPECT_ERR(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_DTYPE); /* fp32 on the cube */
    assert_null(m);
    assert_non_null(strstr(hs_last_error(), "the cube takes fp16/bf16: use --dtype bf16"));
    o.compute = HS_BF16;
    o.npu = NULL;
    EXPECT_ERR(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "npu is NULL"));
    o = hs_model_options_default();
    o.compute = HS_FP16;
    EXPECT_ERR(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_DTYPE); /* the CPU matmul takes fp32 or bf16 */
    o.compute = HS_INT8;
    EXPECT_ERR(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_DTYPE);
    o = hs_model_options_default();
    o.device = (hs_device_kind)7;
    EXPECT_ERR(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_INVALID_ARGUMENT);

    /* a model larger than the test preset's 64 MiB of HBM */
    hs_model_config big = c;
    big.vocab_size = 50000;
    big.d_model = 256;
    o = hs_model_options_default();
    o.device = HS_DEVICE_NPU;
    o.npu = d;
    o.compute = HS_BF16;
    EXPECT_ERR(hs_model_new_ex(&big, B, T, &o, &m), HS_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(hs_last_error(), "capacity"));
    assert_int_equal(hs_npu_mem_used(d), 0); /* everything allocated before the failure was released */
    hs_npu_free(d);
}

/* bf16 compute on the CPU follows fp32, and learns. */
static void bf16_follows_fp32(hs_arch arch)
{
    hs_model *m32 = model_on(micro(arch), HS_DEVICE_CPU, NULL, HS_FP32);
    hs_model *m16 = model_on(micro(arch), HS_DEVICE_CPU, NULL, HS_BF16);
    assert_int_equal(hs_model_compute_dtype(m16), HS_BF16);
    hs_optimizer *o32 = optimizer(m32), *o16 = optimizer(m16);
    int32_t x[N], y[N];
    float first = 0, last = 0;
    double worst = 0;
    for (int s = 0; s < 40; s++) {
        hs_step_stats a, b;
        batch(x, y, 32, s);
        assert_int_equal(hs_train_step(m32, o32, x, y, B, T, 1, 3e-3f, &a), HS_OK);
        assert_int_equal(hs_train_step(m16, o16, x, y, B, T, 1, 3e-3f, &b), HS_OK);
        worst = fmax(worst, fabs((double)b.loss - a.loss) / a.loss);
        if (s == 0)
            first = b.loss;
        last = b.loss;
    }
    if (getenv("HS_TEST_VERBOSE"))
        fprintf(stderr, "bf16 vs fp32: worst relative loss difference %.3g; bf16 loss %.4f -> %.4f\n", worst,
                (double)first, (double)last);
    assert_true(worst <= 0.01);
    assert_true(last < 0.5f * first);
    hs_optimizer_free(o32);
    hs_optimizer_free(o16);
    hs_model_free(m32);
    hs_model_free(m16);
}

static void test_cpu_bf16_gpt2(void **state)
{
    (void)state;
    bf16_follows_fp32(HS_ARCH_GPT2);
}

static void test_cpu_bf16_llama(void **state)
{
    (void)state;
    bf16_follows_fp32(HS_ARCH_LLAMA);
}

/* The compute-dtype copy follows parameter changes only through
 * hs_model_sync_weights. */
static void test_sync_weights(void **state)
{
    (void)state;
    hs_model *m = model_on(micro(HS_ARCH_GPT2), HS_DEVICE_CPU, NULL, HS_BF16);
    int32_t x[N], y[N];
    batch(x, y, 32, 0);
    float l0, l1, l2;
    assert_int_equal(hs_model_forward(m, x, y, B, T, &l0), HS_OK);
    const hs_param_info *w = hs_model_param_by_name(m, "h.0.mlp.fc.w");
    float *p = flat_params(m) + w->offset;
    for (int64_t i = 0; i < w->numel; i++)
        p[i] *= 3.0f;
    assert_int_equal(hs_model_forward(m, x, y, B, T, &l1), HS_OK);
    assert_true(l1 == l0); /* the matmul still reads the old bf16 copy */
    assert_int_equal(hs_model_sync_weights(m), HS_OK);
    assert_int_equal(hs_model_forward(m, x, y, B, T, &l2), HS_OK);
    assert_true(l2 != l0);
    hs_model_free(m);
}

/* Relative L2 distance of a[n] from b[n]. */
static double rel_l2(const float *a, const float *b, int64_t n)
{
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / r);
}

/* NPU (execute) against CPU bf16: loss and gradient of one forward and
 * backward, then 8 training steps; the estimate-mode twin takes the same
 * simulated time and HBM and reports NaN. */
static void npu_agrees(hs_model_config cfg)
{
    hs_npu *dx = npu_new(HS_NPU_EXECUTE), *ds = npu_new(HS_NPU_ESTIMATE);
    hs_model *mc = model_on(cfg, HS_DEVICE_CPU, NULL, HS_BF16);
    hs_model *mx = model_on(cfg, HS_DEVICE_NPU, dx, HS_BF16), *ms = model_on(cfg, HS_DEVICE_NPU, ds, HS_BF16);
    assert_ptr_equal(hs_model_device(mx), hs_npu_device(dx));
    assert_int_equal(hs_device_kind_of(hs_model_device(mx)), HS_DEVICE_NPU);
    assert_null(hs_model_device(mc));
    assert_ptr_equal(hs_model_npu(mx), dx);
    const int64_t n = hs_model_num_params(mc);
    int32_t x[N], y[N];
    batch(x, y, 32, 0);
    y[5] = -1; /* an ignored position */

    /* the initial parameters are the same bits */
    float *host = fz((size_t)n), *grad = fz((size_t)n);
    assert_int_equal(hs_npu_memcpy_d2h(dx, NULL, host, flat_params(mx), (size_t)n * sizeof(float)), HS_OK);
    assert_int_equal(memcmp(host, flat_params(mc), (size_t)n * sizeof(float)), 0);

    float lc, lx, ls;
    assert_int_equal(hs_model_zero_grad(mc), HS_OK);
    assert_int_equal(hs_model_zero_grad(mx), HS_OK);
    assert_int_equal(hs_model_forward(mc, x, y, B, T, &lc), HS_OK);
    assert_int_equal(hs_model_backward(mc, 1.0f), HS_OK);
    assert_int_equal(hs_model_forward(mx, x, y, B, T, &lx), HS_OK);
    assert_int_equal(hs_model_backward(mx, 1.0f), HS_OK);
    assert_int_equal(hs_npu_memcpy_d2h(dx, NULL, grad, flat_grads(mx), (size_t)n * sizeof(float)), HS_OK);
    const double gerr = rel_l2(grad, flat_grads(mc), n);
    if (getenv("HS_TEST_VERBOSE"))
        fprintf(stderr, "npu vs cpu bf16: loss %.6f vs %.6f, gradient relative L2 %.3g\n", (double)lx, (double)lc,
                gerr);
    assert_true(fabs((double)lx - lc) <= 2e-3 * lc);
    assert_true(gerr <= 0.02);

    /* training steps; the estimate-mode twin in lockstep */
    hs_optimizer *oc = optimizer(mc), *ox = optimizer(mx), *os = optimizer(ms);
    assert_int_equal(hs_npu_mem_used(dx), hs_npu_mem_used(ds));
    for (int s = 0; s < 8; s++) {
        hs_step_stats a, b, c;
        batch(x, y, 32, s);
        const double tx = sim_time(dx), ts = sim_time(ds);
        assert_int_equal(hs_train_step(mc, oc, x, y, B, T, 1, 3e-3f, &a), HS_OK);
        assert_int_equal(hs_train_step(mx, ox, x, y, B, T, 1, 3e-3f, &b), HS_OK);
        assert_int_equal(hs_train_step(ms, os, x, y, B, T, 1, 3e-3f, &c), HS_OK);
        assert_true(fabs((double)b.loss - a.loss) <= 2e-3 * a.loss);
        assert_true(fabs(b.grad_norm - a.grad_norm) <= 0.02 * a.grad_norm);
        assert_true(isnan(c.loss) && isnan(c.grad_norm));
        const double stepx = sim_time(dx) - tx, steps = sim_time(ds) - ts;
        assert_true(stepx > 0);
        /* Every kernel but one costs the same in both modes: the embedding
         * gather addresses wte rows by token ids it reads on the device,
         * which are 0 in estimate mode, so its L2 line sharing (28 cycles
         * of this micro model's 864 us step) differs. */
        assert_true(fabs(stepx - steps) <= 1e-3 * stepx);
    }
    assert_int_equal(hs_npu_mem_peak(dx), hs_npu_mem_peak(ds));

    /* the bf16 weight copy was refreshed after each update: a forward on
     * the updated parameters agrees too */
    float l2c, l2x;
    assert_int_equal(hs_model_forward(mc, x, y, B, T, &l2c), HS_OK);
    assert_int_equal(hs_model_forward(mx, x, y, B, T, &l2x), HS_OK);
    assert_int_equal(hs_model_forward(ms, x, y, B, T, &ls), HS_OK);
    assert_true(fabs((double)l2x - l2c) <= 2e-3 * l2c);
    assert_true(isnan(ls));

    hs_optimizer_free(oc);
    hs_optimizer_free(ox);
    hs_optimizer_free(os);
    hs_model_free(mc);
    hs_model_free(mx);
    hs_model_free(ms);
    assert_int_equal(hs_npu_mem_used(dx), 0);
    assert_int_equal(hs_npu_mem_used(ds), 0);
    free(host);
    free(grad);
    hs_npu_free(dx);
    hs_npu_free(ds);
}

static void test_npu_gpt2(void **state)
{
    (void)state;
    npu_agrees(micro(HS_ARCH_GPT2));
}

static void test_npu_llama(void **state)
{
    (void)state;
    npu_agrees(micro(HS_ARCH_LLAMA));
}

static void test_npu_gqa(void **state)
{
    (void)state;
    npu_agrees(micro_gqa());
}

/* Views, bad tokens, generation and checkpoints of an NPU model. */
static void test_npu_io(void **state)
{
    (void)state;
    hs_npu *dx = npu_new(HS_NPU_EXECUTE), *ds = npu_new(HS_NPU_ESTIMATE);
    hs_model *mc = model_on(micro(HS_ARCH_GPT2), HS_DEVICE_CPU, NULL, HS_BF16);
    hs_model *mx = model_on(micro(HS_ARCH_GPT2), HS_DEVICE_NPU, dx, HS_BF16);
    hs_model *ms = model_on(micro(HS_ARCH_GPT2), HS_DEVICE_NPU, ds, HS_BF16);
    int32_t x[N], y[N];
    batch(x, y, 32, 0);

    hs_tensor v;
    assert_int_equal(hs_model_forward(mx, x, NULL, B, T, NULL), HS_OK);
    assert_int_equal(hs_model_logits(mx, &v), HS_OK);
    assert_ptr_equal(v.device, hs_npu_device(dx));
    assert_int_equal(hs_model_activation(mx, "h.1.out", &v), HS_OK);
    assert_ptr_equal(v.device, hs_npu_device(dx));

    /* out-of-range ids are caught on the host in both modes */
    y[9] = 32;
    EXPECT_ERR(hs_model_forward(ms, x, y, B, T, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "targets[0][9] (position 9) is 32"));
    y[9] = 0;
    x[20] = -2;
    EXPECT_ERR(hs_model_forward(ms, x, y, B, T, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tokens[1][4]"));
    x[20] = 1;

    /* generation: the same text as the CPU model in execute mode (the
     * logits agree within bf16 noise, far below the gaps top-k draws
     * across at this temperature); none in estimate mode */
    const int32_t prompt[3] = {1, 2, 3};
    int32_t gc[11], gx[11];
    assert_int_equal(hs_model_generate(mc, prompt, 3, 8, 1, 1.0f, 9, gc), HS_OK);
    assert_int_equal(hs_model_generate(mx, prompt, 3, 8, 1, 1.0f, 9, gx), HS_OK);
    assert_memory_equal(gc, gx, sizeof gc);
    EXPECT_ERR(hs_model_generate(ms, prompt, 3, 8, 1, 1.0f, 9, gx), HS_ERR_DEVICE);

    /* checkpoints: NPU -> disk -> CPU model gives the NPU's parameters */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/model_device_ckpt", getenv("HS_TEST_TMP") ? getenv("HS_TEST_TMP") : "/tmp");
    hs_optimizer *ox = optimizer(mx), *os = optimizer(ms), *oc = optimizer(mc);
    assert_int_equal(hs_train_step(mx, ox, x, y, B, T, 1, 3e-3f, NULL), HS_OK);
    hs_train_state st = {5, 77}, back = {0, 0};
    assert_int_equal(hs_train_save(dir, mx, ox, &st), HS_OK);
    assert_int_equal(hs_train_load(dir, mc, oc, &back), HS_OK);
    assert_int_equal(back.data_position, 77);
    assert_int_equal(hs_optimizer_steps(oc), 1);
    const int64_t n = hs_model_num_params(mc);
    float *host = fz((size_t)n);
    assert_int_equal(hs_npu_memcpy_d2h(dx, NULL, host, flat_params(mx), (size_t)n * sizeof(float)), HS_OK);
    assert_memory_equal(host, flat_params(mc), (size_t)n * sizeof(float));
    /* and back onto a fresh NPU model */
    hs_model *my = model_on(micro(HS_ARCH_GPT2), HS_DEVICE_NPU, dx, HS_BF16);
    hs_optimizer *oy = optimizer(my);
    assert_int_equal(hs_train_load(dir, my, oy, &back), HS_OK);
    float lx, ly;
    assert_int_equal(hs_model_forward(mx, x, y, B, T, &lx), HS_OK);
    assert_int_equal(hs_model_forward(my, x, y, B, T, &ly), HS_OK);
    assert_true(lx == ly);
    EXPECT_ERR(hs_train_save(dir, ms, os, &st), HS_ERR_DEVICE);
    assert_non_null(strstr(hs_last_error(), "estimate-mode"));
    EXPECT_ERR(hs_train_load(dir, ms, os, &back), HS_ERR_DEVICE);

    free(host);
    hs_optimizer_free(oy);
    hs_optimizer_free(ox);
    hs_optimizer_free(os);
    hs_optimizer_free(oc);
    hs_model_free(my);
    hs_model_free(mc);
    hs_model_free(mx);
    hs_model_free(ms);
    hs_npu_free(dx);
    hs_npu_free(ds);
}

/* hs_model_memory_plan: what an NPU model and its optimizer allocate,
 * without allocating; the llama2-7b preset. */
static void test_memory_plan(void **state)
{
    (void)state;
    hs_npu *d = npu_new(HS_NPU_ESTIMATE);
    const hs_model_config c = micro(HS_ARCH_LLAMA);
    hs_model_options o = hs_model_options_default();
    o.device = HS_DEVICE_NPU;
    o.npu = d;
    o.compute = HS_BF16;
    hs_model_memory mm;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &mm), HS_OK);
    hs_model *m = model_on(micro(HS_ARCH_LLAMA), HS_DEVICE_NPU, d, HS_BF16);
    hs_optimizer *opt = optimizer(m);
    assert_int_equal(mm.params, hs_model_num_params(m));
    const size_t n = (size_t)mm.params, planned = mm.weights + mm.gradients + mm.optimizer + mm.activations;
    assert_int_equal(mm.weights, 6 * n);
    assert_int_equal(mm.gradients, 4 * n);
    assert_int_equal(mm.optimizer, 8 * n);
    /* six allocations, each rounded up to 512 bytes by the HBM allocator */
    assert_true(hs_npu_mem_used(d) >= planned && hs_npu_mem_used(d) < planned + 6 * 512);
    assert_true(mm.workspace >= (size_t)N * 32 * 2); /* at least the head's bf16 dlogits */
    hs_optimizer_free(opt);
    hs_model_free(m);
    EXPECT_ERR(hs_model_memory_plan(&c, B, 999, &o, &mm), HS_ERR_INVALID_ARGUMENT); /* seq > max_seq */
    hs_npu_free(d);

    hs_model_config big;
    assert_int_equal(hs_model_config_preset("llama2-7b", &big), HS_OK);
    assert_int_equal(hs_model_memory_plan(&big, 1, 4096, NULL, &mm), HS_OK);
    assert_int_equal(mm.params, 6738415616LL); /* LLaMA-2 7B */
    assert_int_equal(mm.workspace, 0);          /* the CPU's kernels keep per-thread scratch */
    assert_int_equal(mm.weights, 4 * (size_t)mm.params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),  cmocka_unit_test(test_cpu_bf16_gpt2), cmocka_unit_test(test_cpu_bf16_llama),
        cmocka_unit_test(test_sync_weights), cmocka_unit_test(test_npu_gpt2),      cmocka_unit_test(test_npu_llama),
        cmocka_unit_test(test_npu_gqa),
        cmocka_unit_test(test_npu_io),       cmocka_unit_test(test_memory_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
