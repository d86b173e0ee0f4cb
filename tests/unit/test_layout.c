/* Parallel layouts against models (hs_layout_check): the bad
 * configurations of tensor, sequence and pipeline parallelism each fail
 * with a message naming the rule; the plan splits heads, the MLP and the
 * padded vocabulary, and deals layers to stages (uneven splits, virtual
 * stages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/layout.h"

static hs_model_config tiny(void)
{
    hs_model_config c;
    assert_int_equal(hs_model_config_preset("gpt2-tiny", &c), HS_OK);
    return c;
}

/* Expects layout l on c to fail with a message containing want. */
static void expect_bad(const hs_model_config *c, hs_layout l, const char *want)
{
    hs_layout_plan plan;
    EXPECT_ERR(hs_layout_check(c, &l, &plan), HS_ERR_INVALID_ARGUMENT);
    if (!strstr(hs_last_error(), want))
        fprintf(stderr, "message '%s' lacks '%s'\n", hs_last_error(), want);
    assert_non_null(strstr(hs_last_error(), want));
}

static void test_bad_layouts(void **state)
{
    (void)state;
    hs_model_config c = tiny(); /* 4 layers, 4 heads, d_ff 512, vocab 256 */
    hs_layout l = hs_layout_default();
    l.tp = 3;
    expect_bad(&c, l, "does not divide n_head");
    c.n_head = 6, c.d_model = 192, c.d_ff = 500;
    l.tp = 3;
    expect_bad(&c, l, "does not divide d_ff");
    c = tiny();
    l = hs_layout_default();
    l.sequence_parallel = 1;
    expect_bad(&c, l, "sequence parallelism needs tensor parallelism");
    l.tp = 2, l.seq = 33;
    expect_bad(&c, l, "seq=33 is not a multiple of tp=2");
    l = hs_layout_default();
    l.pp = 5;
    expect_bad(&c, l, "larger than the model's 4 layers");
    l.pp = 4, l.micro_batches = 2;
    expect_bad(&c, l, "at least as many micro-batches as stages");
    l.pp = 2, l.micro_batches = 4, l.schedule = HS_PP_INTERLEAVED, l.virtual_stages = 3;
    expect_bad(&c, l, "virtual stages do not divide");
    l.pp = 1, l.schedule = HS_PP_1F1B, l.virtual_stages = 2;
    expect_bad(&c, l, "without pipeline parallelism");
    l = hs_layout_default();
    l.tp = 0;
    expect_bad(&c, l, "tp=0");
    c.n_layer = 144; /* the fixed cap of chunks is an error, not an overflow */
    l = hs_layout_default();
    l.pp = 8, l.schedule = HS_PP_INTERLEAVED, l.virtual_stages = 9, l.micro_batches = 16;
    expect_bad(&c, l, "pp=8 x 9 virtual stages = 72 chunks (at most 64: hs_layout.chunk_layers has 64 entries)");
    c = tiny();
    hs_layout_plan plan;
    EXPECT_ERR(hs_layout_check(NULL, &l, &plan), HS_ERR_INVALID_ARGUMENT);
}

/* chunk_layers: the caller's split, checked. */
static void test_chunk_layers(void **state)
{
    (void)state;
    hs_model_config c = tiny();
    c.n_layer = 12;
    hs_layout l = hs_layout_default();
    l.pp = 2;
    l.micro_batches = 4;
    l.chunk_layers[0] = 9;
    l.chunk_layers[1] = 3;
    hs_layout_plan plan;
    assert_int_equal(hs_layout_check(&c, &l, &plan), HS_OK);
    assert_int_equal(plan.first_layer[0], 0);
    assert_int_equal(plan.first_layer[1], 9);
    assert_int_equal(plan.first_layer[2], 12);
    l.chunk_layers[1] = 2;
    expect_bad(&c, l, "layers per chunk sum to 11, but the model has 12 layers");
    l.chunk_layers[1] = 0;
    expect_bad(&c, l, "chunk 1 has 0");
    l.chunk_layers[1] = 2, l.chunk_layers[2] = 1;
    expect_bad(&c, l, "need 2 counts >= 1, chunk 2 has 1");
    /* interleaved: 4 chunks, any counts (no multiple of pp x v needed) */
    l = hs_layout_default();
    l.pp = 2, l.virtual_stages = 2, l.schedule = HS_PP_INTERLEAVED, l.micro_batches = 4;
    c.n_layer = 7;
    const int n[4] = {2, 2, 2, 1};
    memcpy(l.chunk_layers, n, sizeof n);
    assert_int_equal(hs_layout_check(&c, &l, &plan), HS_OK);
    assert_int_equal(plan.first_layer[3], 6);
    assert_int_equal(plan.first_layer[4], 7);
}

static void test_plans(void **state)
{
    (void)state;
    hs_model_config c = tiny();
    c.n_layer = 7, c.vocab_size = 257;
    hs_layout l = hs_layout_default();
    l.tp = 2, l.pp = 3, l.micro_batches = 3, l.sequence_parallel = 1, l.seq = 64;
    hs_layout_plan p;
    assert_int_equal(hs_layout_check(&c, &l, &p), HS_OK);
    assert_int_equal(p.padded_vocab, 258); /* padded to a multiple of tp */
    assert_int_equal(p.heads_per_rank, 2);
    assert_int_equal(p.ff_per_rank, c.d_ff / 2);
    assert_int_equal(p.chunks, 3);
    const int want[] = {0, 3, 5, 7}; /* 7 layers on 3 stages: 3, 2, 2 */
    assert_memory_equal(p.first_layer, want, sizeof want);
    c.n_layer = 8;
    l = hs_layout_default();
    l.pp = 2, l.schedule = HS_PP_INTERLEAVED, l.virtual_stages = 2, l.micro_batches = 4;
    assert_int_equal(hs_layout_check(&c, &l, &p), HS_OK);
    const int want2[] = {0, 2, 4, 6, 8}; /* chunk k on rank k mod 2 */
    assert_int_equal(p.chunks, 4);
    assert_memory_equal(p.first_layer, want2, sizeof want2);
    l = hs_layout_default(); /* one rank, whole model */
    assert_int_equal(hs_layout_check(&c, &l, &p), HS_OK);
    assert_int_equal(p.padded_vocab, c.vocab_size);
    assert_int_equal(p.first_layer[1], c.n_layer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_layouts),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_chunk_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
