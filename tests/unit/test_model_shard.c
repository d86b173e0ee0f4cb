/* Model shards (hs_model_shard): a tensor-parallel shard holds exactly its
 * slice of the single-rank weights (every split kind: qkv's three blocks,
 * LLaMA's gate | up, row-parallel columns, the padded vocabulary), a
 * pipeline chunk registers its layers with their logical ids (and the tied
 * head's copy of wte), and bad shards are refused with a message. No MPI:
 * a shard without its TP group builds and initialises but does not run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed.h"
#include "model_flat.h"
#include "model/model_stage.h"

#include <string.h>

static hs_model_config small(hs_arch arch, int vocab)
{
    hs_model_config c = hs_model_config_default();
    c.arch = arch;
    c.vocab_size = vocab;
    c.max_seq = 8;
    c.n_layer = 2;
    c.n_head = 6;
    c.d_model = 12;
    c.d_ff = 18;
    return c;
}

static hs_model *build(const hs_model_config *c, int tp, int rank, int first, int n)
{
    hs_model_options o = hs_model_options_default();
    o.shard.tp = tp;
    o.shard.tp_rank = rank;
    o.shard.first_layer = first;
    o.shard.n_layers = n;
    hs_model *m = NULL;
    assert_int_equal(hs_model_new_ex(c, 2, 8, &o, &m), HS_OK);
    assert_int_equal(hs_model_init(m, 42), HS_OK);
    return m;
}

/* Element (i, j) of shard s of logical tensor `whole` (rows x cols). */
static float slice_at(const hs_param_info *s, const float *whole, int tp_rank, int64_t i, int64_t j, int *pad)
{
    const int64_t cols = s->logical_shape[1];
    *pad = 0;
    if (s->split == HS_SPLIT_COLS)
        return whole[i * cols + tp_rank * s->shape[1] + j];
    if (s->split == HS_SPLIT_NONE)
        return whole[i * cols + j];
    /* row blocks (qkv: q | k | v, unequal with fewer key/value heads), each
     * split over TP; one block may end in padding rows (the vocabulary) */
    int64_t whole0 = 0, held0 = 0, sum = 0;
    for (int k = 0; k < s->segments; k++)
        sum += s->segment_rows[k];
    assert_int_equal(sum, s->logical_shape[0]);
    for (int k = 0; k < s->segments; k++) {
        const int64_t R = s->segment_rows[k];
        const int64_t Rl = s->segments == 1 ? s->shape[0] : R * s->shape[0] / s->logical_shape[0];
        if (i < held0 + Rl) {
            const int64_t row = tp_rank * Rl + (i - held0);
            if (row >= R) {
                *pad = 1;
                return 0;
            }
            return whole[(whole0 + row) * cols + j];
        }
        whole0 += R;
        held0 += Rl;
    }
    fail_msg("%s: row %lld beyond its blocks", s->name, (long long)i);
    return 0;
}

/* Every tensor of every shard equals its slice of the whole model's. */
static void check_slices(hs_arch arch, int vocab, int tp, int n_kv_head, int qkv_bias)
{
    hs_model_config c = small(arch, vocab);
    c.n_kv_head = n_kv_head;
    c.qkv_bias = qkv_bias;
    hs_model *whole = build(&c, 1, 0, 0, 0);
    for (int r = 0; r < tp; r++) {
        hs_model *m = build(&c, tp, r, 0, 0);
        assert_int_equal(hs_model_num_tensors(m), hs_model_num_tensors(whole));
        for (int t = 0; t < hs_model_num_tensors(m); t++) {
            const hs_param_info *s = hs_model_param(m, t), *w = hs_model_param(whole, t);
            assert_string_equal(s->name, w->name);
            assert_int_equal(s->logical_id, t);
            assert_int_equal(s->logical_shape[0], w->shape[0]);
            const float *sv = flat_params(m) + s->offset, *wv = flat_params(whole) + w->offset;
            for (int64_t i = 0; i < s->shape[0]; i++)
                for (int64_t j = 0; j < s->shape[1]; j++) {
                    int pad;
                    const float want = slice_at(s, wv, r, i, j, &pad);
                    if (sv[i * s->shape[1] + j] != want)
                        fail_msg("%s shard %d/%d [%lld,%lld]: %g, whole model %g%s", s->name, r, tp, (long long)i,
                                 (long long)j, (double)sv[i * s->shape[1] + j], (double)want, pad ? " (padding)" : "");
                }
            /* hs_param_shard_copy: the whole tensor's slice is the shard, and the shard lands in its place */
            float got[512], back[512];
            assert_true(s->numel <= 512 && w->numel <= 512);
            assert_int_equal(hs_param_shard_copy(s, r, got, (float *)wv, 0), HS_OK);
            assert_memory_equal(got, sv, (size_t)s->numel * sizeof(float));
            memcpy(back, wv, (size_t)w->numel * sizeof(float));
            for (int64_t i = 0; i < s->numel; i++)
                got[i] = -got[i];
            assert_int_equal(hs_param_shard_copy(s, r, got, back, 1), HS_OK);
            assert_int_equal(hs_param_shard_copy(s, r, got, back, 0), HS_OK); /* reads its own elements back */
            for (int64_t i = 0; i < s->numel; i++)
                assert_true(got[i] == -sv[i] || (got[i] == 0 && sv[i] == 0));
            /* the norm counts a replica once: on TP rank 0 */
            assert_int_equal(s->norm_owner, s->split != HS_SPLIT_NONE || r == 0);
        }
        hs_model_free(m);
    }
    hs_model_free(whole);
}

static void test_tp_slices_gpt2(void **state)
{
    (void)state;
    check_slices(HS_ARCH_GPT2, 20, 2, 0, 0);
    check_slices(HS_ARCH_GPT2, 20, 3, 0, 0); /* 20 ids over 3 shards: padded to 21 */
}

static void test_tp_slices_llama(void **state)
{
    (void)state;
    check_slices(HS_ARCH_LLAMA, 20, 2, 0, 0);
    check_slices(HS_ARCH_LLAMA, 19, 3, 0, 0);
}

/* Grouped-query attention: qkv's blocks are q (6 heads) and k, v (2 or 3
 * heads each), each split over TP; the qkv bias (Qwen2) the same way. */
static void test_tp_slices_gqa(void **state)
{
    (void)state;
    check_slices(HS_ARCH_LLAMA, 20, 2, 2, 1);
    check_slices(HS_ARCH_LLAMA, 19, 3, 3, 0);
    check_slices(HS_ARCH_LLAMA, 20, 1, 1, 1);
    hs_model_config c = small(HS_ARCH_LLAMA, 20);
    c.n_kv_head = 2;
    c.qkv_bias = 1;
    hs_model *m = build(&c, 2, 1, 0, 0);
    const hs_param_info *w = hs_model_param_by_name(m, "h.1.attn.qkv.w"),
                        *b = hs_model_param_by_name(m, "h.1.attn.qkv.b");
    assert_non_null(w);
    assert_non_null(b);
    assert_int_equal(w->logical_shape[0], 12 + 2 * 4); /* C + 2 KV, KV = 2 heads of 2 */
    assert_int_equal(w->shape[0], 10);
    assert_int_equal(b->shape[0], 10);
    assert_int_equal(w->segment_rows[1], 4);
    hs_model_free(m);
}

static void test_sequence_parallel_flags(void **state)
{
    (void)state;
    const hs_model_config c = small(HS_ARCH_GPT2, 20);
    hs_model_options o = hs_model_options_default();
    o.shard.tp = 2;
    o.shard.sequence_parallel = 1;
    hs_model *m = NULL;
    assert_int_equal(hs_model_new_ex(&c, 2, 8, &o, &m), HS_OK);
    for (int t = 0; t < hs_model_num_tensors(m); t++) {
        const hs_param_info *p = hs_model_param(m, t);
        const int norm = strstr(p->name, "ln") != NULL;
        assert_int_equal(p->tp_partial, norm);
    }
    assert_int_equal(hs_model_boundary_numel(m, 2, 8), 2 * 8 * 12 / 2);
    /* a forward without the TP group fails with a message, not a crash */
    int32_t tok[16] = {0};
    assert_int_equal(hs_model_forward(m, tok, tok, 2, 8, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tp_comm is NULL"));
    hs_model_free(m);
}

static void test_pipeline_chunks(void **state)
{
    (void)state;
    hs_model_config c = small(HS_ARCH_GPT2, 20);
    c.n_layer = 3;
    hs_model *whole = build(&c, 1, 0, 0, 0);
    hs_model *first = build(&c, 1, 0, 0, 1), *last = build(&c, 1, 0, 1, 2);
    assert_true(hs_model_has_embedding(first) && !hs_model_has_head(first));
    assert_true(!hs_model_has_embedding(last) && hs_model_has_head(last));
    assert_null(hs_model_param_by_name(first, "h.1.ln1.w"));
    assert_null(hs_model_param_by_name(last, "wpe"));
    assert_int_equal(hs_model_num_tensors(first) + hs_model_num_tensors(last), hs_model_num_tensors(whole) + 1);
    /* the tied head's copy: the first chunk's wte, not counted in the norm twice */
    const hs_param_info *copy = hs_model_param_by_name(last, "wte"), *orig = hs_model_param_by_name(first, "wte");
    assert_non_null(copy);
    assert_true(copy->tied_copy && !copy->norm_owner && !orig->tied_copy && orig->norm_owner);
    assert_memory_equal(flat_params(last) + copy->offset, flat_params(first) + orig->offset,
                        (size_t)orig->numel * sizeof(float));
    for (int t = 0; t < hs_model_num_tensors(last); t++) { /* same logical ids, same values */
        const hs_param_info *p = hs_model_param(last, t), *w = hs_model_param_by_name(whole, p->name);
        assert_int_equal(p->logical_id, (int)(w - hs_model_param(whole, 0)));
        assert_memory_equal(flat_params(last) + p->offset, flat_params(whole) + w->offset,
                            (size_t)p->numel * sizeof(float));
    }
    /* a chunk without the head has an output, not a loss; one without the embedding takes no tokens */
    const float *out;
    float *in;
    assert_int_equal(hs_model_stage_output(first, &out), HS_ERR_INVALID_ARGUMENT); /* before a forward */
    assert_int_equal(hs_model_stage_input(first, &in), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_model_backward(first, 1.0f), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_model_stage_input(last, &in), HS_OK);
    hs_model_free(last);
    hs_model_free(first);
    hs_model_free(whole);
}

/* A chunk's forward and backward from given activations equal the whole
 * model's on the same input: the second half of a 2-layer model fed the
 * whole model's h.0.out. */
static void test_chunk_matches_whole(void **state)
{
    (void)state;
    const hs_model_config c = small(HS_ARCH_LLAMA, 20);
    hs_model *whole = build(&c, 1, 0, 0, 0), *tail = build(&c, 1, 0, 1, 1);
    int32_t tok[16], tgt[16];
    for (int i = 0; i < 16; i++) {
        tok[i] = (i * 7 + 3) % 20;
        tgt[i] = (i * 5 + 1) % 20;
    }
    float lw, lt;
    assert_int_equal(hs_model_forward(whole, tok, tgt, 2, 8, &lw), HS_OK);
    hs_tensor h0;
    assert_int_equal(hs_model_activation(whole, "h.0.out", &h0), HS_OK);
    assert_int_equal(hs_model_forward_stage(tail, NULL, h0.data, tgt, 2, 8, &lt), HS_OK);
    assert_float_equal(lw, lt, 0);
    assert_int_equal(hs_model_backward(whole, 1.0f), HS_OK);
    assert_int_equal(hs_model_backward(tail, 1.0f), HS_OK);
    const hs_param_info *w = hs_model_param_by_name(whole, "h.1.mlp.fc.w"), *t = hs_model_param_by_name(tail, "h.1.mlp.fc.w");
    assert_memory_equal(flat_grads(whole) + w->offset, flat_grads(tail) + t->offset,
                        (size_t)w->numel * sizeof(float));
    const float *dx;
    assert_int_equal(hs_model_stage_input_grad(tail, &dx), HS_OK);
    hs_model_free(tail);
    hs_model_free(whole);
}

static void test_shard_copy_errors(void **state)
{
    (void)state;
    const hs_model_config c = small(HS_ARCH_GPT2, 20);
    hs_model *m = build(&c, 2, 1, 0, 0);
    const hs_param_info *qkv = hs_model_param_by_name(m, "h.0.attn.qkv.w");
    float buf[8];
    assert_int_equal(hs_param_shard_copy(qkv, 2, buf, buf, 0), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "has no shard of TP rank 2"));
    assert_int_equal(hs_param_shard_copy(NULL, 0, buf, buf, 0), HS_ERR_INVALID_ARGUMENT);
    hs_model_free(m);
}

static void test_bad_shards(void **state)
{
    (void)state;
    const hs_model_config c = small(HS_ARCH_GPT2, 20);
    struct {
        int tp, rank, sp, first, n, slots;
        const char *phrase;
    } bad[] = {
        {4, 0, 0, 0, 0, 1, "tp=4 does not divide n_head=6"},
        {2, 2, 0, 0, 0, 1, "tp_rank=2 in 0..tp-1"},
        {1, 0, 1, 0, 0, 1, "sequence parallelism needs tp >= 2"},
        {1, 0, 0, 1, 2, 1, "layers 1 .. 2 are not a range of the model's 2"},
        {1, 0, 0, 0, 0, 0, "slots=0 must be >= 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hs_model_options o = hs_model_options_default();
        o.shard.tp = bad[i].tp;
        o.shard.tp_rank = bad[i].rank;
        o.shard.sequence_parallel = bad[i].sp;
        o.shard.first_layer = bad[i].first;
        o.shard.n_layers = bad[i].n;
        o.shard.slots = bad[i].slots;
        hs_model *m = (hs_model *)&o; /* must be reset to NULL */
        assert_int_equal(hs_model_new_ex(&c, 2, 8, &o, &m), HS_ERR_INVALID_ARGUMENT);
        assert_null(m);
        if (!strstr(hs_last_error(), bad[i].phrase))
            fail_msg("case %zu: '%s' lacks '%s'", i, hs_last_error(), bad[i].phrase);
    }
}

/* tp=3 over 2 key/value heads: refused, naming the tp values that work. */
static void test_bad_gqa_shard(void **state)
{
    (void)state;
    hs_model_config c = small(HS_ARCH_LLAMA, 20);
    c.n_kv_head = 2;
    hs_model_options o = hs_model_options_default();
    o.shard.tp = 3;
    hs_model *m = NULL;
    assert_int_equal(hs_model_new_ex(&c, 2, 8, &o, &m), HS_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_non_null(strstr(hs_last_error(), "tp=3 does not divide n_kv_head=2"));
    assert_non_null(strstr(hs_last_error(), "tp in {1, 2} would do"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tp_slices_gpt2),       cmocka_unit_test(test_tp_slices_llama),
        cmocka_unit_test(test_sequence_parallel_flags), cmocka_unit_test(test_pipeline_chunks),
        cmocka_unit_test(test_chunk_matches_whole),  cmocka_unit_test(test_shard_copy_errors),
        cmocka_unit_test(test_bad_shards),
        cmocka_unit_test(test_tp_slices_gqa),
        cmocka_unit_test(test_bad_gqa_shard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
