/* Optimizer offload (hs_model_options.offload = HS_OFFLOAD_OPTIMIZER):
 * the fp32 master and AdamW's moments in the host pool, AdamW on the
 * host. On the CPU the losses and the master weights equal the plain
 * run's bit for bit (fp32 and bf16 compute); on the execute-mode NPU they
 * agree within bf16's tolerance while the HBM holds exactly the compute
 * copy, the fp32 mirror and the gradients; the pool holds exactly what
 * hs_model_memory_plan says; checkpoints move between offloaded and
 * plain runs; bad offload lists and items are refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed.h"
#include "hyperspeed/memory.h"
#include "hyperspeed/npu.h"
#include "model/model_stage.h"
#include "model_flat.h"
#include "npu_fixture.h"
#include "tiny_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 16, STEPS = 4 };

static hs_model_config tiny(hs_arch arch) { return tiny_model(arch, 2, T); }

typedef struct run_result {
    float loss[STEPS];
    float *values; /* the master weights after the last step, owned */
    int64_t n;
    size_t pool;     /* the host pool the model and optimizer hold */
    size_t hbm_peak; /* NPU only */
    hs_model_memory plan;
} run_result;

static hs_model_options options(hs_dtype compute, hs_npu *npu, unsigned offload)
{
    hs_model_options o = hs_model_options_default();
    o.compute = compute;
    o.device = npu ? HS_DEVICE_NPU : HS_DEVICE_CPU;
    o.npu = npu;
    o.offload = offload;
    return o;
}

static void batch(int st, int V, int32_t *tok, int32_t *tgt)
{
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)((i * 7 + st * 5) % V);
        tgt[i] = (int32_t)((i * 11 + st) % V);
    }
}

/* One step: forward, backward, AdamW; the loss. */
static float step(hs_model *m, hs_optimizer *opt, int st)
{
    int32_t tok[B * T], tgt[B * T];
    batch(st, hs_model_config_of(m)->vocab_size, tok, tgt);
    float loss;
    assert_int_equal(hs_model_zero_grad(m), HS_OK);
    assert_int_equal(hs_model_forward(m, tok, tgt, B, T, &loss), HS_OK);
    assert_int_equal(hs_model_backward(m, 1.0f), HS_OK);
    assert_int_equal(hs_optimizer_step(opt, 1e-2f, NULL), HS_OK);
    return loss;
}

/* A model of c with options o, initialised from seed (init 0: not), and its AdamW. */
static hs_optimizer *open_model(const hs_model_config *c, const hs_model_options *o, int init, hs_model **m)
{
    hs_optimizer_config oc = hs_optimizer_config_default();
    hs_optimizer *opt;
    assert_int_equal(hs_model_new_ex(c, B, T, o, m), HS_OK);
    if (init)
        assert_int_equal(hs_model_init(*m, (uint64_t)init), HS_OK);
    assert_int_equal(hs_optimizer_new(*m, &oc, &opt), HS_OK);
    return opt;
}

/* open_model after the plan of the same model (*plan), with the host pool
 * the model and its optimizer took (*pool). */
static hs_optimizer *open_planned(const hs_model_config *c, const hs_model_options *o, int init, hs_model **m,
                                  hs_model_memory *plan, size_t *pool)
{
    assert_int_equal(hs_model_memory_plan(c, B, T, o, plan), HS_OK);
    const size_t pool0 = hs_offload_mem_used();
    hs_optimizer *opt = open_model(c, o, init, m);
    *pool = hs_offload_mem_used() - pool0;
    return opt;
}

/* Every parameter's master value, in registry order, into out (host). */
static void read_values(hs_model *m, float *out)
{
    for (int i = 0; i < hs_model_num_tensors(m); i++) {
        hs_tensor t;
        assert_int_equal(hs_model_tensor(m, i, HS_PARAM_VALUE, &t), HS_OK);
        const hs_param_info *p = hs_model_param(m, i);
        memcpy(out + p->offset, t.data, (size_t)p->numel * sizeof(float)); /* execute-mode HBM is host memory */
    }
}

static run_result train(hs_arch arch, hs_dtype compute, hs_npu *npu, unsigned offload)
{
    const hs_model_config c = tiny(arch);
    const hs_model_options o = options(compute, npu, offload);
    run_result r = {0};
    const size_t pool0 = hs_offload_mem_used();
    hs_model *m;
    hs_optimizer *opt = open_planned(&c, &o, 5, &m, &r.plan, &r.pool);
    for (int st = 0; st < STEPS; st++)
        r.loss[st] = step(m, opt, st);
    r.n = hs_model_num_params(m);
    r.values = malloc((size_t)r.n * sizeof(float));
    assert_non_null(r.values);
    read_values(m, r.values);
    if (npu)
        r.hbm_peak = hs_npu_mem_peak(npu);
    hs_optimizer_free(opt);
    hs_model_free(m);
    assert_int_equal(hs_offload_mem_used(), pool0); /* everything given back */
    return r;
}

/* The CPU device: bit for bit, and the pool holds master + m + v. */
static void same_bits(hs_arch arch, hs_dtype compute)
{
    run_result ref = train(arch, compute, NULL, HS_OFFLOAD_NONE);
    run_result off = train(arch, compute, NULL, HS_OFFLOAD_OPTIMIZER);
    assert_memory_equal(off.loss, ref.loss, sizeof ref.loss);
    assert_int_equal(off.n, ref.n);
    assert_memory_equal(off.values, ref.values, (size_t)ref.n * sizeof(float));
    assert_int_equal(ref.pool, 0);
    assert_int_equal(off.pool, 12 * (size_t)off.n);
    assert_int_equal(off.plan.host, off.pool);
    assert_int_equal(off.plan.optimizer, 0);
    free(ref.values);
    free(off.values);
}

static void test_cpu_gpt2_fp32(void **state)
{
    (void)state;
    same_bits(HS_ARCH_GPT2, HS_FP32);
}

static void test_cpu_llama_bf16(void **state)
{
    (void)state;
    same_bits(HS_ARCH_LLAMA, HS_BF16);
}

/* The execute-mode NPU: the plain run's losses within bf16's tolerance
 * (the host's AdamW and cast round like the device's to within an ulp of
 * the update), HBM smaller by the master and the moments less the fp32
 * mirror, the pool holding master + m + v + the gradients' copy. */
static void test_npu_execute(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    run_result ref = train(HS_ARCH_LLAMA, HS_BF16, d, HS_OFFLOAD_NONE);
    hs_npu_free(d);
    d = npu_make("test", HS_NPU_EXECUTE);
    run_result off = train(HS_ARCH_LLAMA, HS_BF16, d, HS_OFFLOAD_OPTIMIZER);
    hs_npu_free(d);
    for (int st = 0; st < STEPS; st++)
        assert_true(fabsf(off.loss[st] - ref.loss[st]) <= 1e-3f * fabsf(ref.loss[st]));
    for (int64_t i = 0; i < ref.n; i++)
        assert_true(fabsf(off.values[i] - ref.values[i]) <= 1e-3f + 1e-2f * fabsf(ref.values[i]));
    const size_t n = (size_t)ref.n, mirror = off.plan.weights - 2 * n;
    assert_int_equal(off.pool, 16 * n);
    assert_int_equal(off.plan.host, off.pool);
    assert_true(mirror > 0 && mirror < n); /* norm weights and the embedding only */
    const double saved = (double)ref.hbm_peak - (double)off.hbm_peak, want = 12.0 * (double)n - (double)mirror;
    assert_true(fabs(saved - want) <= 4 * 512); /* HBM rounds each allocation to 512 B */
    free(ref.values);
    free(off.values);
}

/* An estimate-mode NPU counts the pool without allocating it, and the
 * HBM takes what the plan says. */
static void test_npu_estimate(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    const hs_model_config c = tiny(HS_ARCH_GPT2);
    const hs_model_options o = options(HS_BF16, d, HS_OFFLOAD_OPTIMIZER);
    hs_model_memory plan;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &plan), HS_OK);
    const size_t pool0 = hs_offload_mem_used();
    hs_model *m;
    hs_optimizer *opt = open_model(&c, &o, 5, &m);
    assert_int_equal(hs_model_param(m, 0)->value_at, HS_RESIDENT_HOST);
    assert_int_equal(hs_model_param(m, 0)->state_at, HS_RESIDENT_HOST);
    assert_int_equal(hs_model_param(m, 0)->grad_at, HS_RESIDENT_DEVICE);
    const double t0 = hs_npu_stream_time(hs_npu_default_stream(d));
    step(m, opt, 0);
    assert_true(hs_npu_stream_time(hs_npu_default_stream(d)) > t0);
    assert_int_equal(hs_offload_mem_used() - pool0, plan.host);
    hs_tensor t; /* counted, not allocated: the master and the moments are on the host, without memory */
    assert_int_equal(hs_model_tensor(m, 0, HS_PARAM_VALUE, &t), HS_OK);
    assert_null(t.data);
    assert_null(t.device);
    assert_int_equal(hs_optimizer_state(opt, 0, HS_ADAM_M, &t), HS_OK);
    assert_null(t.data);
    assert_null(t.device);
    hs_optimizer_free(opt);
    hs_model_free(m);
    assert_int_equal(hs_offload_mem_used(), pool0);
    hs_npu_free(d);
}

/* A checkpoint of an offloaded run resumes a plain one and the reverse,
 * with the same next-step loss as the run that did not stop. */
static void test_checkpoint(void **state)
{
    (void)state;
    const hs_model_config c = tiny(HS_ARCH_LLAMA);
    char dir[2][512];
    const char *tmp = getenv("HS_TEST_TMP") ? getenv("HS_TEST_TMP") : "/tmp";
    float next[2];
    for (int off = 0; off < 2; off++) { /* save from a run, plain then offloaded */
        snprintf(dir[off], sizeof dir[off], "%s/offload_ckpt_%d", tmp, off);
        const hs_model_options o = options(HS_BF16, NULL, off ? HS_OFFLOAD_OPTIMIZER : HS_OFFLOAD_NONE);
        hs_model *m;
        hs_optimizer *opt = open_model(&c, &o, 9, &m);
        step(m, opt, 0);
        step(m, opt, 1);
        hs_train_state st = {0};
        st.seed = 9;
        assert_int_equal(hs_train_save(dir[off], m, opt, &st), HS_OK);
        next[off] = step(m, opt, 2);
        hs_optimizer_free(opt);
        hs_model_free(m);
    }
    assert_memory_equal(&next[0], &next[1], sizeof next[0]);
    for (int off = 0; off < 2; off++) { /* resume each into the other kind */
        const hs_model_options o = options(HS_BF16, NULL, off ? HS_OFFLOAD_NONE : HS_OFFLOAD_OPTIMIZER);
        hs_model *m;
        hs_optimizer *opt = open_model(&c, &o, 0, &m);
        hs_train_state st = {0};
        assert_int_equal(hs_train_load(dir[off], m, opt, &st), HS_OK);
        assert_int_equal(hs_optimizer_steps(opt), 2);
        const float loss = step(m, opt, 2);
        assert_memory_equal(&loss, &next[0], sizeof loss);
        hs_optimizer_free(opt);
        hs_model_free(m);
    }
}

static void test_parse(void **state)
{
    (void)state;
    unsigned bits = 99;
    char buf[64];
    assert_int_equal(hs_offload_parse("optimizer", &bits), HS_OK);
    assert_int_equal(bits, HS_OFFLOAD_OPTIMIZER);
    assert_int_equal(hs_offload_parse("optimizer,params,activations", &bits), HS_OK);
    assert_int_equal(bits, HS_OFFLOAD_OPTIMIZER | HS_OFFLOAD_PARAMS | HS_OFFLOAD_ACTIVATIONS);
    assert_string_equal(hs_offload_name(bits, buf, sizeof buf), "optimizer,params,activations");
    assert_int_equal(hs_offload_parse("none", &bits), HS_OK);
    assert_int_equal(bits, 0);
    assert_string_equal(hs_offload_name(bits, buf, sizeof buf), "none");
    bits = 7;
    assert_int_equal(hs_offload_parse("optimizer,gradients", &bits), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "unknown offload item 'gradients'"));
    assert_int_equal(bits, 7); /* untouched */
    assert_int_equal(hs_offload_parse("", &bits), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_offload_parse("optimizer,", &bits), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_offload_parse(NULL, &bits), HS_ERR_INVALID_ARGUMENT);
}

/* Activation offload: two micro-batches in flight (both forwards, then
 * both backwards), 5 layers on a ring of 3 regions; losses and gradients
 * as without offload, bit for bit. */
typedef struct act_run {
    float loss[2][2];
    float *grads;
    hs_model_memory plan;
    size_t pool, hbm_peak;
} act_run;

static act_run train_acts(hs_dtype compute, hs_npu *npu, unsigned offload)
{
    const hs_model_config c = tiny_model(HS_ARCH_LLAMA, 5, T);
    hs_model_options o = options(compute, npu, offload);
    o.shard.slots = 2;
    act_run r = {0};
    const size_t pool0 = hs_offload_mem_used();
    hs_model *m;
    hs_optimizer *opt = open_planned(&c, &o, 3, &m, &r.plan, &r.pool);
    int32_t tok[2][B * T], tgt[2][B * T];
    for (int st = 0; st < 2; st++) {
        for (int k = 0; k < 2; k++)
            batch(st * 2 + k, c.vocab_size, tok[k], tgt[k]);
        assert_int_equal(hs_model_zero_grad(m), HS_OK);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(hs_model_set_slot(m, k), HS_OK);
            assert_int_equal(hs_model_forward(m, tok[k], tgt[k], B, T, &r.loss[st][k]), HS_OK);
        }
        for (int k = 1; k >= 0; k--) {
            assert_int_equal(hs_model_set_slot(m, k), HS_OK);
            assert_int_equal(hs_model_backward(m, 0.5f), HS_OK);
        }
        if (st == 0)
            assert_int_equal(hs_optimizer_step(opt, 1e-2f, NULL), HS_OK);
    }
    const size_t n = (size_t)hs_model_num_params(m);
    r.grads = malloc(n * sizeof(float));
    assert_non_null(r.grads);
    memcpy(r.grads, flat_grads(m), n * sizeof(float)); /* execute-mode HBM is host memory */
    if (npu)
        r.hbm_peak = hs_npu_mem_peak(npu);
    hs_optimizer_free(opt);
    hs_model_free(m);
    assert_int_equal(hs_offload_mem_used(), pool0);
    return r;
}

static void same_acts(hs_dtype compute, int on_npu)
{
    hs_npu *d = on_npu ? npu_make("test", HS_NPU_EXECUTE) : NULL;
    act_run ref = train_acts(compute, d, HS_OFFLOAD_NONE);
    hs_npu_free(d);
    d = on_npu ? npu_make("test", HS_NPU_EXECUTE) : NULL;
    act_run off = train_acts(compute, d, HS_OFFLOAD_ACTIVATIONS);
    hs_npu_free(d);
    assert_memory_equal(off.loss, ref.loss, sizeof ref.loss);
    const size_t n = (size_t)tiny_model(HS_ARCH_LLAMA, 5, T).n_layer;
    assert_memory_equal(off.grads, ref.grads, (size_t)(off.plan.params) * sizeof(float));
    /* the pool holds every layer's region of both sets, the arena 3 of 5 a set */
    const size_t layer = off.pool / (2 * n);
    assert_int_equal(off.pool, 2 * n * layer);
    assert_int_equal(off.plan.host, off.pool);
    assert_int_equal(ref.plan.activations - off.plan.activations, 2 * (n - 3) * layer);
    if (on_npu)
        assert_true(off.hbm_peak + 2 * (n - 3) * layer <= ref.hbm_peak + 4096);
    free(ref.grads);
    free(off.grads);
}

static void test_activations_cpu(void **state)
{
    (void)state;
    same_acts(HS_FP32, 0);
    same_acts(HS_BF16, 0);
}

static void test_activations_npu(void **state)
{
    (void)state;
    same_acts(HS_BF16, 1);
}

/* A model offloads its optimizer and its activations: parameters (ZeRO-3's
 * shards) are refused, and activations with recompute, before anything is
 * allocated. */
static void test_bad_items(void **state)
{
    (void)state;
    const hs_model_config c = tiny(HS_ARCH_GPT2);
    const unsigned bad[] = {HS_OFFLOAD_PARAMS, HS_OFFLOAD_OPTIMIZER | 8u, HS_OFFLOAD_ACTIVATIONS};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hs_model_options o = options(HS_FP32, NULL, bad[i]);
        o.recompute = i == 2 ? HS_RECOMPUTE_SELECTIVE : HS_RECOMPUTE_NONE;
        const size_t host0 = hs_host_mem_used(), pool0 = hs_offload_mem_used();
        hs_model *m = (hs_model *)&o;
        assert_int_equal(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_INVALID_ARGUMENT);
        assert_null(m);
        assert_non_null(strstr(hs_last_error(), i == 2 ? "offload of activations with recompute selective"
                                                       : "parameter offload (ZeRO-3's shards) is not in this build"));
        assert_int_equal(hs_host_mem_used(), host0);
        assert_int_equal(hs_offload_mem_used(), pool0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_gpt2_fp32), cmocka_unit_test(test_cpu_llama_bf16),
        cmocka_unit_test(test_npu_execute),   cmocka_unit_test(test_npu_estimate),
        cmocka_unit_test(test_checkpoint),    cmocka_unit_test(test_parse),
        cmocka_unit_test(test_activations_cpu), cmocka_unit_test(test_activations_npu),
        cmocka_unit_test(test_bad_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
