/* Activation recompute (hs_model_options.recompute): selective and full
 * recompute give the plain run's losses and gradients bit for bit, with
 * micro-batches in flight in several activation sets, on the CPU (fp32
 * and bf16) and on the execute-mode NPU; the arena shrinks by exactly what
 * is not kept; bad modes and layer counts are refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed.h"
#include "hyperspeed/npu.h"
#include "model/model_stage.h"
#include "model_flat.h"
#include "tiny_model.h"

#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 16, SLOTS = 2, STEPS = 3 };

static hs_model_config tiny(hs_arch arch) { return tiny_model(arch, 3, T); }

typedef struct run_result {
    float loss[STEPS][SLOTS];
    float *grads; /* the last step's, owned */
    int64_t n;
    size_t activations; /* hs_model_memory_plan's */
    size_t hbm_peak;    /* NPU only */
} run_result;

/* STEPS steps of SLOTS micro-batches, each set's forward before either
 * backward (the second set's forward overwrites the shared scratch before
 * the first set's backward rebuilds it), with an AdamW update between
 * steps. */
static run_result train(hs_arch arch, hs_dtype compute, hs_npu *npu, hs_recompute rc, int layers)
{
    hs_model_config c = tiny(arch);
    hs_model_options o = hs_model_options_default();
    o.compute = compute;
    o.device = npu ? HS_DEVICE_NPU : HS_DEVICE_CPU;
    o.npu = npu;
    o.shard.slots = SLOTS;
    o.recompute = rc;
    o.recompute_layers = layers;
    run_result r = {0};
    hs_model_memory mm;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &mm), HS_OK);
    r.activations = mm.activations;
    hs_model *m;
    assert_int_equal(hs_model_new_ex(&c, B, T, &o, &m), HS_OK);
    assert_int_equal(hs_model_init(m, 5), HS_OK);
    hs_optimizer_config oc = hs_optimizer_config_default();
    hs_optimizer *opt;
    assert_int_equal(hs_optimizer_new(m, &oc, &opt), HS_OK);
    int32_t tok[SLOTS][B * T], tgt[SLOTS][B * T];
    for (int st = 0; st < STEPS; st++) {
        for (int k = 0; k < SLOTS; k++)
            for (int i = 0; i < B * T; i++) {
                tok[k][i] = (int32_t)((i * 7 + k * 13 + st * 5) % c.vocab_size);
                tgt[k][i] = (int32_t)((i * 11 + k * 3 + st) % c.vocab_size);
            }
        assert_int_equal(hs_model_zero_grad(m), HS_OK);
        for (int k = 0; k < SLOTS; k++) {
            assert_int_equal(hs_model_set_slot(m, k), HS_OK);
            assert_int_equal(hs_model_forward(m, tok[k], tgt[k], B, T, &r.loss[st][k]), HS_OK);
        }
        for (int k = SLOTS - 1; k >= 0; k--) {
            assert_int_equal(hs_model_set_slot(m, k), HS_OK);
            assert_int_equal(hs_model_backward(m, 1.0f / SLOTS), HS_OK);
        }
        if (st < STEPS - 1)
            assert_int_equal(hs_optimizer_step(opt, 1e-2f, NULL), HS_OK);
    }
    r.n = hs_model_num_params(m);
    r.grads = malloc((size_t)r.n * sizeof(float));
    assert_non_null(r.grads);
    if (npu) /* execute mode: HBM is host memory */
        r.hbm_peak = hs_npu_mem_peak(npu);
    memcpy(r.grads, flat_grads(m), (size_t)r.n * sizeof(float));
    hs_optimizer_free(opt);
    hs_model_free(m);
    return r;
}

/* Every mode and layer count against the plain run, bit for bit. */
static void same_bits(hs_arch arch, hs_dtype compute, int on_npu)
{
    hs_npu *npu = NULL;
    if (on_npu) {
        hs_npu_spec s;
        assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
        assert_int_equal(hs_npu_new(&s, HS_NPU_EXECUTE, &npu), HS_OK);
    }
    run_result ref = train(arch, compute, npu, HS_RECOMPUTE_NONE, 0);
    const struct {
        hs_recompute rc;
        int layers;
    } cases[] = {{HS_RECOMPUTE_SELECTIVE, 0}, {HS_RECOMPUTE_FULL, 0}, {HS_RECOMPUTE_FULL, 2}, {HS_RECOMPUTE_SELECTIVE, 1}};
    size_t last = ref.activations;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (npu) { /* a fresh device: its peak is this run's alone */
            hs_npu_spec s;
            hs_npu_free(npu);
            assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
            assert_int_equal(hs_npu_new(&s, HS_NPU_EXECUTE, &npu), HS_OK);
        }
        run_result r = train(arch, compute, npu, cases[i].rc, cases[i].layers);
        assert_memory_equal(r.loss, ref.loss, sizeof ref.loss);
        assert_int_equal(r.n, ref.n);
        assert_memory_equal(r.grads, ref.grads, (size_t)ref.n * sizeof(float));
        assert_true(r.activations < ref.activations);
        if (i == 1) /* full keeps less than selective */
            assert_true(r.activations < last);
        last = r.activations;
        if (npu && ref.hbm_peak)
            assert_true(r.hbm_peak < ref.hbm_peak || i == 3);
        free(r.grads);
    }
    free(ref.grads);
    hs_npu_free(npu);
}

static void test_gpt2_fp32(void **state)
{
    (void)state;
    same_bits(HS_ARCH_GPT2, HS_FP32, 0);
}

static void test_llama_bf16(void **state)
{
    (void)state;
    same_bits(HS_ARCH_LLAMA, HS_BF16, 0);
}

static void test_llama_npu(void **state)
{
    (void)state;
    same_bits(HS_ARCH_LLAMA, HS_BF16, 1);
}

/* What each mode leaves out of every activation set, in bytes, on a
 * GPT-2 in fp32 (every buffer a multiple of 64 bytes, no alignment
 * padding): selective the cores (attention's output [N,C] and its
 * log-sum-exp [B,NH,T], the GELU output [N,F]) of all but the one layer
 * the scratch holds; full everything but the layer's output. */
static void test_arena_savings(void **state)
{
    (void)state;
    const hs_model_config c = tiny(HS_ARCH_GPT2);
    const size_t N = B * T, C = (size_t)c.d_model, F = (size_t)c.d_ff, NH = (size_t)c.n_head, L = (size_t)c.n_layer;
    const size_t Q = 3 * C, f = sizeof(float);
    hs_model_options o = hs_model_options_default();
    o.shard.slots = SLOTS;
    hs_model_memory none, sel, full;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &none), HS_OK);
    o.recompute = HS_RECOMPUTE_SELECTIVE;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &sel), HS_OK);
    o.recompute = HS_RECOMPUTE_FULL;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &full), HS_OK);
    const size_t core = (N * C + N * NH + N * F) * f;
    /* per sublayer: ln [N,C], mean, rstd [N], in, core, (lse), res [N,C] */
    const size_t layer = (2 * (N * C + 2 * N + N * C) + N * Q + N * C + N * NH + N * F + N * F) * f;
    const size_t out = N * C * f;
    assert_int_equal(none.activations - sel.activations, (SLOTS * L - 1) * core);
    assert_int_equal(none.activations - full.activations, SLOTS * L * (layer - out) - layer);
}

static void test_bad_input(void **state)
{
    (void)state;
    const hs_model_config c = tiny(HS_ARCH_GPT2);
    hs_model_options o = hs_model_options_default();
    hs_model *m = (hs_model *)&o;
    o.recompute = HS_RECOMPUTE_FULL;
    o.recompute_layers = 4; /* the model has 3 */
    assert_int_equal(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_non_null(strstr(hs_last_error(), "recompute_layers=4: the chunk has 3 layers"));
    o.shard.first_layer = 1; /* a chunk of layers 1 .. 2 */
    o.recompute_layers = 3;
    hs_model_memory mm;
    assert_int_equal(hs_model_memory_plan(&c, B, T, &o, &mm), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "has 2 layers (layers 1 .. 2)"));
    o = hs_model_options_default();
    o.recompute_layers = -1;
    assert_int_equal(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_INVALID_ARGUMENT);
    o = hs_model_options_default();
    o.recompute = (hs_recompute)7;
    assert_int_equal(hs_model_new_ex(&c, B, T, &o, &m), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "unknown recompute mode 7"));

    hs_recompute r = HS_RECOMPUTE_FULL;
    assert_int_equal(hs_recompute_parse("selective", &r), HS_OK);
    assert_int_equal(r, HS_RECOMPUTE_SELECTIVE);
    assert_int_equal(hs_recompute_parse("partial", &r), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(r, HS_RECOMPUTE_SELECTIVE);
    assert_non_null(strstr(hs_last_error(), "'partial' (known: none, selective, full)"));
    assert_string_equal(hs_recompute_name(HS_RECOMPUTE_FULL), "full");
    assert_string_equal(hs_recompute_name((hs_recompute)9), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_fp32),   cmocka_unit_test(test_llama_bf16), cmocka_unit_test(test_llama_npu),
        cmocka_unit_test(test_arena_savings), cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
