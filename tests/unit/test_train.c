/* Training: LR schedule, optimizer arguments, micro-batching, learning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed.h"

#include <math.h>
#include <string.h>

static void test_lr_schedule(void **state)
{
    (void)state;
    hs_lr_schedule s = {1e-3f, 1e-4f, 10, 110};
    assert_float_equal(hs_lr_at(&s, 0), 1e-4f, 1e-9f);
    assert_float_equal(hs_lr_at(&s, 9), 1e-3f, 1e-9f);
    assert_float_equal(hs_lr_at(&s, 10), 1e-3f, 1e-9f);
    assert_float_equal(hs_lr_at(&s, 60), 0.5f * (1e-3f + 1e-4f), 1e-8f);
    assert_float_equal(hs_lr_at(&s, 110), 1e-4f, 1e-9f);
    assert_float_equal(hs_lr_at(&s, 500), 1e-4f, 1e-9f);
    for (int64_t i = 11; i < 110; i++)
        assert_true(hs_lr_at(&s, i) <= hs_lr_at(&s, i - 1));
}

static hs_model *tiny_model(int B, int T)
{
    hs_model_config c = hs_model_config_default();
    c.vocab_size = 16;
    c.max_seq = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_model = 16;
    c.d_ff = 32;
    hs_model *m;
    assert_int_equal(hs_model_new(&c, B, T, &m), HS_OK);
    hs_model_init(m, 7);
    return m;
}

static void test_optimizer_bad_args(void **state)
{
    (void)state;
    hs_model *m = tiny_model(1, 4);
    hs_optimizer *o = (hs_optimizer *)1;
    hs_optimizer_config c = hs_optimizer_config_default();
    c.beta1 = 1.0f;
    assert_int_equal(hs_optimizer_new(m, &c, &o), HS_ERR_INVALID_ARGUMENT);
    assert_null(o);
    assert_non_null(strstr(hs_last_error(), "betas"));
    c = hs_optimizer_config_default();
    c.eps = 0;
    assert_int_equal(hs_optimizer_new(m, &c, &o), HS_ERR_INVALID_ARGUMENT);
    c = hs_optimizer_config_default();
    assert_int_equal(hs_optimizer_new(m, &c, &o), HS_OK);
    assert_int_equal(hs_optimizer_step(o, -1.0f, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_optimizer_set_steps(o, -2), HS_ERR_INVALID_ARGUMENT);
    int32_t tok[4] = {1, 2, 3, 4};
    assert_int_equal(hs_train_step(m, o, tok, tok, 1, 4, 2, 1e-3f, NULL), HS_ERR_INVALID_ARGUMENT);
    hs_optimizer_free(o);
    hs_model_free(m);
}

/* Cutting a batch into micro-batches averages the same gradients. */
static void test_micro_batches_match(void **state)
{
    (void)state;
    const int B = 4, T = 8;
    int32_t tok[32], tgt[32];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (i * 5 + 3) % 16;
        tgt[i] = (i * 7 + 1) % 16;
    }
    hs_model *m1 = tiny_model(B, T), *m4 = tiny_model(1, T);
    hs_optimizer_config c = hs_optimizer_config_default();
    hs_optimizer *o1, *o4;
    assert_int_equal(hs_optimizer_new(m1, &c, &o1), HS_OK);
    assert_int_equal(hs_optimizer_new(m4, &c, &o4), HS_OK);
    hs_step_stats s1, s4;
    for (int step = 0; step < 3; step++) {
        assert_int_equal(hs_train_step(m1, o1, tok, tgt, B, T, 1, 1e-2f, &s1), HS_OK);
        assert_int_equal(hs_train_step(m4, o4, tok, tgt, B, T, 4, 1e-2f, &s4), HS_OK);
        assert_float_equal(s1.loss, s4.loss, 1e-5f * s1.loss);
        assert_true(fabs(s1.grad_norm - s4.grad_norm) < 1e-4 * s1.grad_norm);
    }
    assert_int_equal(hs_optimizer_steps(o1), 3);
    hs_optimizer_free(o1);
    hs_optimizer_free(o4);
    hs_model_free(m1);
    hs_model_free(m4);
}

/* A fixed batch is memorised: the loss falls well below its start. */
static void test_overfits_one_batch(void **state)
{
    (void)state;
    const int B = 2, T = 8;
    int32_t tok[16], tgt[16];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (i * 3) % 16;
        tgt[i] = (i * 3 + 1) % 16;
    }
    hs_model *m = tiny_model(B, T);
    hs_optimizer_config c = hs_optimizer_config_default();
    c.weight_decay = 0;
    hs_optimizer *o;
    assert_int_equal(hs_optimizer_new(m, &c, &o), HS_OK);
    hs_step_stats s;
    float first = 0;
    for (int step = 0; step < 60; step++) {
        assert_int_equal(hs_train_step(m, o, tok, tgt, B, T, 1, 1e-2f, &s), HS_OK);
        if (step == 0)
            first = s.loss;
    }
    assert_true(first > 2.0f);
    assert_true(s.loss < 0.2f * first);
    hs_optimizer_free(o);
    hs_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_optimizer_bad_args),
        cmocka_unit_test(test_micro_batches_match),
        cmocka_unit_test(test_overfits_one_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
