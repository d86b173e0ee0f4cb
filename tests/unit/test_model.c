/* Model: presets, validation, registry, whole-model gradients, generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed.h"
#include "model_flat.h"

#include <string.h>

static hs_model_config micro(hs_arch arch)
{
    hs_model_config c = hs_model_config_default();
    c.arch = arch;
    c.vocab_size = 11;
    c.max_seq = 8;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_model = 8;
    c.d_ff = 12;
    c.init_std = 0.4f; /* large weights: gradients well above fp32 noise for the finite differences */
    return c;
}

static void fill_tokens(int32_t *tok, int32_t *tgt, int n, int V, uint64_t seed)
{
    uint64_t s = seed * 7919 + 3;
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)(gc_rand(&s) * V);
        tgt[i] = (int32_t)(gc_rand(&s) * V);
    }
}

static void test_presets(void **state)
{
    (void)state;
    hs_model_config c;
    for (const char *const *n = hs_model_preset_names(); *n; n++) {
        assert_int_equal(hs_model_config_preset(*n, &c), HS_OK);
        assert_int_equal(hs_model_config_validate(&c), HS_OK);
    }
    assert_int_equal(hs_model_config_preset("gpt5-huge", &c), HS_ERR_NOT_FOUND);
    assert_non_null(strstr(hs_last_error(), "gpt5-huge"));
    assert_non_null(strstr(hs_last_error(), "gpt2-tiny"));
}

static void test_bad_configs(void **state)
{
    (void)state;
    hs_model_config c = micro(HS_ARCH_GPT2);
    c.n_head = 3; /* does not divide 8 */
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "n_head=3 does not divide d_model=8"));
    c = micro(HS_ARCH_GPT2);
    c.d_ff = 0;
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "d_ff=0"));
    c = micro(HS_ARCH_GPT2);
    c.vocab_size = -5;
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    c = micro(HS_ARCH_LLAMA);
    c.d_model = 6;
    c.n_head = 2; /* head size 3: RoPE needs even */
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "even"));
    c = micro(HS_ARCH_LLAMA);
    c.n_head = 4;
    c.n_kv_head = 3; /* 3 key/value heads cannot serve 4 query heads equally */
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "n_kv_head=3 does not divide n_head=4"));
    c.n_kv_head = -1;
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    c = micro(HS_ARCH_GPT2);
    c.n_kv_head = 1; /* GPT-2 has no key/value groups */
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "apply to LLaMA-style models"));
    c = micro(HS_ARCH_GPT2);
    c.n_kv_head = 2; /* = n_head: plain multi-head, fine */
    assert_int_equal(hs_model_config_validate(&c), HS_OK);

    hs_model *m = (hs_model *)1;
    c = micro(HS_ARCH_GPT2);
    assert_int_equal(hs_model_new(&c, 2, 9, &m), HS_ERR_INVALID_ARGUMENT); /* seq 9 > context 8 */
    assert_null(m);
    assert_non_null(strstr(hs_last_error(), "max_seq=8"));
    assert_int_equal(hs_model_new(&c, 0, 4, &m), HS_ERR_INVALID_ARGUMENT);
    c.n_head = 3;
    assert_int_equal(hs_model_new(&c, 1, 4, &m), HS_ERR_INVALID_ARGUMENT);
}

static void test_gpt2_124m_param_count(void **state)
{
    (void)state;
    hs_model_config c;
    assert_int_equal(hs_model_config_preset("gpt2-124m", &c), HS_OK);
    hs_model *m;
    assert_int_equal(hs_model_new(&c, 1, 1, &m), HS_OK);
    assert_int_equal(hs_model_num_params(m), 124439808); /* GPT-2 small with tied head */
    const hs_param_info *p = hs_model_param_by_name(m, "h.11.mlp.fc.w");
    assert_non_null(p);
    assert_int_equal(p->shape[0], 3072);
    assert_int_equal(p->shape[1], 768);
    assert_int_equal(p->decay, 1);
    assert_int_equal(hs_model_param_by_name(m, "lnf.b")->decay, 0);
    assert_null(hs_model_param_by_name(m, "lm_head.w"));
    hs_model_free(m);
}

/* Registry accessors: every entry's value, gradient and compute copy as a
 * tensor of its shape; by name the same; AdamW's moments the same way; an
 * unknown name or index is refused naming it. */
static void test_registry_tensors(void **state)
{
    (void)state;
    hs_model_config c = micro(HS_ARCH_LLAMA);
    hs_model *m;
    assert_int_equal(hs_model_new(&c, 1, 4, &m), HS_OK);
    assert_int_equal(hs_model_init(m, 7), HS_OK);
    hs_optimizer_config oc = hs_optimizer_config_default();
    hs_optimizer *o;
    assert_int_equal(hs_optimizer_new(m, &oc, &o), HS_OK);
    int64_t total = 0;
    for (int i = 0; i < hs_model_num_tensors(m); i++) {
        const hs_param_info *p = hs_model_param(m, i);
        hs_tensor v, g, w, byname, mt;
        assert_int_equal(hs_model_tensor(m, i, HS_PARAM_VALUE, &v), HS_OK);
        assert_int_equal(hs_model_tensor(m, i, HS_PARAM_GRAD, &g), HS_OK);
        assert_int_equal(hs_model_tensor(m, i, HS_PARAM_COMPUTE, &w), HS_OK);
        assert_int_equal(hs_model_tensor_by_name(m, p->name, HS_PARAM_VALUE, &byname), HS_OK);
        assert_int_equal(hs_optimizer_state(o, i, HS_ADAM_V, &mt), HS_OK);
        assert_ptr_equal(byname.data, v.data);
        assert_ptr_equal(w.data, v.data); /* fp32 compute: the values themselves */
        assert_true(v.data != g.data && g.data != mt.data);
        assert_int_equal(v.ndim, p->ndim);
        assert_int_equal(hs_tensor_numel(&v), p->numel);
        assert_int_equal(hs_tensor_numel(&mt), p->numel);
        assert_null(v.device);
        assert_true(p->logical_shape[2] == 1 && p->logical_shape[3] == 1);
        assert_int_equal(p->split_group, HS_SPLIT_TP);
        assert_true(p->value_at == HS_RESIDENT_DEVICE && p->grad_at == HS_RESIDENT_DEVICE &&
                    p->state_at == HS_RESIDENT_DEVICE);
        total += hs_tensor_numel(&g);
    }
    assert_int_equal(total, hs_model_num_params(m));
    /* LLaMA: the untied lm_head.w is the head's weight, nothing is tied */
    for (int i = 0; i < hs_model_num_tensors(m); i++) {
        const hs_param_info *p = hs_model_param(m, i);
        assert_int_equal(p->head_weight, strcmp(p->name, "lm_head.w") == 0);
        assert_int_equal(p->tied, 0);
    }
    /* GPT-2: wte is tied and is the head's weight */
    hs_model_config g2 = micro(HS_ARCH_GPT2);
    hs_model *g;
    assert_int_equal(hs_model_new(&g2, 1, 4, &g), HS_OK);
    for (int i = 0; i < hs_model_num_tensors(g); i++) {
        const hs_param_info *p = hs_model_param(g, i);
        assert_int_equal(p->tied, strcmp(p->name, "wte") == 0);
        assert_int_equal(p->head_weight, p->tied);
    }
    hs_model_free(g);
    hs_tensor t;
    EXPECT_ERR(hs_model_tensor_by_name(m, "h.0.attn.qkv.bias", HS_PARAM_VALUE, &t), HS_ERR_NOT_FOUND);
    assert_non_null(strstr(hs_last_error(), "no parameter 'h.0.attn.qkv.bias'"));
    EXPECT_ERR(hs_model_tensor(m, hs_model_num_tensors(m), HS_PARAM_GRAD, &t), HS_ERR_NOT_FOUND);
    EXPECT_ERR(hs_model_tensor(m, 0, (hs_param_part)7, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_model_tensor_by_name(m, NULL, HS_PARAM_VALUE, &t), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_optimizer_state(o, -1, HS_ADAM_M, &t), HS_ERR_NOT_FOUND);
    EXPECT_ERR(hs_optimizer_state(o, 0, (hs_adam_state)2, &t), HS_ERR_INVALID_ARGUMENT);
    hs_optimizer_free(o);
    hs_model_free(m);
}

/* Whole-model check: the analytic gradient of the mean loss against
 * central differences of the fp32 forward, on a sample of parameters. */
static void whole_model_gradcheck(hs_arch arch, int n_kv_head, int qkv_bias)
{
    hs_model_config c = micro(arch);
    if (n_kv_head) {
        c.n_head = 4;
        c.d_model = 16; /* head size 4 */
        c.n_kv_head = n_kv_head;
        c.qkv_bias = qkv_bias;
    }
    const int B = 2, T = 6;
    hs_model *m;
    assert_int_equal(hs_model_new(&c, B, T, &m), HS_OK);
    hs_model_init(m, 42);
    int32_t tok[12], tgt[12];
    fill_tokens(tok, tgt, B * T, c.vocab_size, 5);
    tgt[3] = -1; /* an ignored position */

    float loss;
    hs_model_zero_grad(m);
    assert_int_equal(hs_model_forward(m, tok, tgt, B, T, &loss), HS_OK);
    assert_int_equal(hs_model_backward(m, 1.0f), HS_OK);
    float *w = flat_params(m), *g = flat_grads(m);
    const int64_t n = hs_model_num_params(m);
    int checked = 0, bad = 0;
    for (int64_t i = 0; i < n; i += 7) {
        const float h = 1e-2f, w0 = w[i];
        float lp, lm;
        w[i] = w0 + h;
        assert_int_equal(hs_model_forward(m, tok, tgt, B, T, &lp), HS_OK);
        w[i] = w0 - h;
        assert_int_equal(hs_model_forward(m, tok, tgt, B, T, &lm), HS_OK);
        w[i] = w0;
        double num = ((double)lp - (double)lm) / (2.0 * h);
        if (fabs(num - g[i]) > 2e-3 + 5e-2 * fabs(num)) {
            fprintf(stderr, "param %lld: analytic %g numeric %g\n", (long long)i, (double)g[i], num);
            bad++;
        }
        checked++;
    }
    assert_true(checked > 50);
    assert_int_equal(bad, 0);
    hs_model_free(m);
}

static void test_gradcheck_gpt2(void **state) { (void)state; whole_model_gradcheck(HS_ARCH_GPT2, 0, 0); }
static void test_gradcheck_llama(void **state) { (void)state; whole_model_gradcheck(HS_ARCH_LLAMA, 0, 0); }
/* Grouped-query attention (4 query heads on 2, then on 1 key/value head)
 * with a qkv bias: the whole model's gradient through the shared heads. */
static void test_gradcheck_gqa(void **state)
{
    (void)state;
    whole_model_gradcheck(HS_ARCH_LLAMA, 2, 1);
    whole_model_gradcheck(HS_ARCH_LLAMA, 1, 0);
}

/* The real presets' parameter counts equal the published ones (Hugging
 * Face model cards / safetensors index totals), counted without allocating. */
static void test_real_preset_param_counts(void **state)
{
    (void)state;
    const struct {
        const char *name;
        long long params;
    } want[] = {{"llama2-7b", 6738415616LL}, {"llama2-13b", 13015864320LL}, {"llama2-70b", 68976648192LL},
                {"llama3-8b", 8030261248LL}, {"qwen2-7b", 7615616512LL}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        hs_model_config c;
        hs_model_memory mm;
        assert_int_equal(hs_model_config_preset(want[i].name, &c), HS_OK);
        assert_int_equal(hs_model_memory_plan(&c, 1, 16, NULL, &mm), HS_OK);
        if (mm.params != want[i].params)
            fail_msg("%s: %lld parameters, published %lld", want[i].name, (long long)mm.params, want[i].params);
    }
}

static void test_forward_errors_and_activations(void **state)
{
    (void)state;
    hs_model_config c = micro(HS_ARCH_GPT2);
    hs_model *m;
    assert_int_equal(hs_model_new(&c, 2, 4, &m), HS_OK);
    hs_model_init(m, 1);
    int32_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tgt[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(hs_model_backward(m, 1.0f), HS_ERR_INVALID_ARGUMENT); /* no forward yet */
    assert_int_equal(hs_model_forward(m, tok, tgt, 3, 4, NULL), HS_ERR_INVALID_ARGUMENT);
    tok[5] = 11; /* == vocab size */
    assert_int_equal(hs_model_forward(m, tok, tgt, 2, 4, NULL), HS_ERR_INVALID_ARGUMENT);
    tok[5] = 6;
    float loss;
    assert_int_equal(hs_model_forward(m, tok, tgt, 2, 4, &loss), HS_OK);
    assert_true(loss > 0 && isfinite(loss));
    hs_tensor t;
    assert_int_equal(hs_model_activation(m, "h.1.out", &t), HS_OK);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[2], 8);
    assert_int_equal(hs_model_activation(m, "h.2.out", &t), HS_ERR_NOT_FOUND);
    assert_int_equal(hs_model_activation(m, "h.1.outx", &t), HS_ERR_NOT_FOUND);
    assert_int_equal(hs_model_logits(m, &t), HS_OK);
    assert_int_equal(t.shape[2], 11);
    assert_int_equal(hs_model_backward(m, 1.0f), HS_OK);
    assert_int_equal(hs_model_backward(m, 1.0f), HS_ERR_INVALID_ARGUMENT); /* logits are gradients now */
    assert_int_equal(hs_model_logits(m, &t), HS_ERR_INVALID_ARGUMENT);
    hs_model_free(m);
}

static void test_generate(void **state)
{
    (void)state;
    hs_model_config c = micro(HS_ARCH_LLAMA);
    hs_model *m;
    assert_int_equal(hs_model_new(&c, 1, 8, &m), HS_OK);
    hs_model_init(m, 3);
    int32_t prompt[2] = {1, 2}, a[14], b[14];
    assert_int_equal(hs_model_generate(m, prompt, 2, 12, 5, 1.0f, 9, a), HS_OK);
    assert_int_equal(hs_model_generate(m, prompt, 2, 12, 5, 1.0f, 9, b), HS_OK);
    assert_memory_equal(a, b, sizeof a); /* deterministic, also past the 8-token window */
    for (int i = 0; i < 14; i++)
        assert_true(a[i] >= 0 && a[i] < 11);
    assert_int_equal(hs_model_generate(m, prompt, 2, 4, 1, 1.0f, 1, a), HS_OK); /* top-1: greedy */
    assert_int_equal(hs_model_generate(m, prompt, 2, 4, 12, 1.0f, 1, a), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_model_generate(m, prompt, 0, 4, 3, 1.0f, 1, a), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_model_generate(m, prompt, 2, 4, 3, 0.0f, 1, a), HS_ERR_INVALID_ARGUMENT);
    hs_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_gpt2_124m_param_count),
        cmocka_unit_test(test_gradcheck_gpt2),
        cmocka_unit_test(test_gradcheck_llama),
        cmocka_unit_test(test_gradcheck_gqa),
        cmocka_unit_test(test_real_preset_param_counts),
        cmocka_unit_test(test_registry_tensors),
        cmocka_unit_test(test_forward_errors_and_activations),
        cmocka_unit_test(test_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
