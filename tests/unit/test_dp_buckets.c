/* Data parallelism without MPI: the bucket planner (reverse order, sizes,
 * a gradient larger than a bucket, bad arguments) and the model's side of
 * it, the gradient hook (disjoint ranges covering every parameter once, in
 * the backward's order) and the deferred embedding gradient (its rows
 * added later give the same gradients bit for bit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed.h"
#include "model_flat.h"
#include "model/model_stage.h"

#include <stdlib.h>
#include <string.h>

/* The plan's invariants: buckets run from the end of the buffer to 0
 * without gaps, hold whole tensors, and only a lone tensor exceeds the cap. */
static void check_plan(const int64_t *numel, int n, size_t cap_bytes, const hs_dp_bucket *b, int nb)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += numel[i];
    int64_t end = total;
    int next_hi = n; /* tensors below this one are not in a bucket yet */
    for (int k = 0; k < nb; k++) {
        assert_int_equal(b[k].offset + b[k].numel, end);
        assert_int_equal(b[k].first_tensor + b[k].n_tensors, next_hi);
        assert_true(b[k].n_tensors >= 1);
        int64_t sum = 0;
        for (int i = b[k].first_tensor; i < next_hi; i++)
            sum += numel[i];
        assert_int_equal(sum, b[k].numel);
        if (b[k].n_tensors > 1)
            assert_true((size_t)b[k].numel * sizeof(float) <= cap_bytes);
        if (k + 1 < nb) /* the next tensor down did not fit */
            assert_true((size_t)(b[k].numel + numel[b[k].first_tensor - 1]) * sizeof(float) > cap_bytes);
        end = b[k].offset;
        next_hi = b[k].first_tensor;
    }
    assert_int_equal(end, 0);
    assert_int_equal(next_hi, 0);
}

static void test_plan_reverse_order_and_sizes(void **state)
{
    (void)state;
    /* 10 tensors of 100 floats (400 B) under 1000 B buckets: two per bucket,
     * from the end: [8, 10) [6, 8) [4, 6) [2, 4) [0, 2). */
    int64_t numel[10];
    for (int i = 0; i < 10; i++)
        numel[i] = 100;
    hs_dp_bucket b[10];
    int nb = 0;
    assert_int_equal(hs_dp_plan_buckets(numel, 10, sizeof(float), 1000, b, &nb), HS_OK);
    assert_int_equal(nb, 5);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(b[k].first_tensor, 8 - 2 * k);
        assert_int_equal(b[k].n_tensors, 2);
        assert_int_equal(b[k].offset, 800 - 200 * k);
        assert_int_equal(b[k].numel, 200);
    }
    check_plan(numel, 10, 1000, b, nb);
    /* a cap that holds everything: one bucket */
    assert_int_equal(hs_dp_plan_buckets(numel, 10, sizeof(float), 1 << 20, b, &nb), HS_OK);
    assert_int_equal(nb, 1);
    assert_int_equal(b[0].offset, 0);
    assert_int_equal(b[0].numel, 1000);
    /* a cap smaller than every tensor: one each */
    assert_int_equal(hs_dp_plan_buckets(numel, 10, sizeof(float), 4, b, &nb), HS_OK);
    assert_int_equal(nb, 10);
    check_plan(numel, 10, 4, b, nb);
}

static void test_plan_big_tensor(void **state)
{
    (void)state;
    /* like a model: a huge embedding first, small and mid tensors after */
    const int64_t numel[] = {5000, 10, 300, 10, 300, 10, 600, 10, 40};
    const int n = (int)(sizeof numel / sizeof numel[0]);
    hs_dp_bucket b[9];
    int nb = 0;
    assert_int_equal(hs_dp_plan_buckets(numel, n, sizeof(float), 2000, b, &nb), HS_OK);
    check_plan(numel, n, 2000, b, nb);
    /* the last bucket is the big tensor alone, over the cap */
    assert_int_equal(b[nb - 1].first_tensor, 0);
    assert_int_equal(b[nb - 1].n_tensors, 1);
    assert_int_equal(b[nb - 1].numel, 5000);
    /* the 600-float tensor (2400 B) is alone too */
    int alone = 0;
    for (int k = 0; k < nb; k++)
        alone += b[k].first_tensor == 6 && b[k].n_tensors == 1;
    assert_int_equal(alone, 1);
    /* the default cap: 25 MiB */
    assert_int_equal(HS_DP_BUCKET_BYTES_DEFAULT, 25u << 20);
    assert_int_equal(hs_dp_config_default().bucket_bytes, HS_DP_BUCKET_BYTES_DEFAULT);
}

static void test_plan_bad_args(void **state)
{
    (void)state;
    const int64_t numel[] = {4, -1};
    hs_dp_bucket b[2];
    int nb;
    assert_int_equal(hs_dp_plan_buckets(numel, 2, 4, 64, b, &nb), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tensor 1"));
    assert_int_equal(hs_dp_plan_buckets(numel, 0, 4, 64, b, &nb), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_dp_plan_buckets(numel, 1, 4, 0, b, &nb), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_dp_plan_buckets(numel, 1, 0, 64, b, &nb), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_dp_plan_buckets(NULL, 1, 4, 64, b, &nb), HS_ERR_INVALID_ARGUMENT);
}

static hs_model *micro_model(hs_arch arch, int B, int T)
{
    hs_model_config c = hs_model_config_default();
    c.arch = arch;
    c.vocab_size = 32;
    c.max_seq = 16;
    c.n_layer = 3;
    c.n_head = 2;
    c.d_model = 16;
    c.d_ff = 24;
    hs_model *m;
    assert_int_equal(hs_model_new(&c, B, T, &m), HS_OK);
    assert_int_equal(hs_model_init(m, 11), HS_OK);
    return m;
}

/* What a layer hook saw: the gradient ranges after each block's backward
 * (non-empty ones), and every event in order. */
typedef struct seen {
    int64_t begin[256], end[256];
    int layer[256]; /* of each range */
    int n;
    hs_layer_event events[512];
    int event_layer[512];
    int n_events;
} seen;

static hs_status record(void *ctx, hs_model *m, const hs_layer_info *info)
{
    (void)m;
    seen *s = ctx;
    assert_true(s->n_events < 512 && s->n < 256);
    s->events[s->n_events] = info->event;
    s->event_layer[s->n_events++] = info->layer;
    if (info->event != HS_AFTER_BACKWARD)
        assert_true(info->grad_begin == info->grad_end);
    else if (info->grad_end > info->grad_begin) {
        s->begin[s->n] = info->grad_begin;
        s->end[s->n] = info->grad_end;
        s->layer[s->n++] = info->layer;
    }
    return HS_OK;
}

static void batch(int32_t *tok, int32_t *tgt, int n)
{
    for (int i = 0; i < n; i++) {
        tok[i] = (i * 7 + 3) % 32;
        tgt[i] = (i * 5 + 1) % 32;
    }
}

/* The ranges tile [0, num_params) exactly once. */
static void check_cover(const hs_model *m, const seen *s)
{
    const int64_t n = hs_model_num_params(m);
    char *hit = calloc((size_t)n, 1);
    for (int k = 0; k < s->n; k++) {
        assert_true(0 <= s->begin[k] && s->begin[k] < s->end[k] && s->end[k] <= n);
        for (int64_t i = s->begin[k]; i < s->end[k]; i++)
            hit[i]++;
    }
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(hit[i], 1);
    free(hit);
}

static void test_hook_order(void **state)
{
    (void)state;
    const hs_arch archs[] = {HS_ARCH_GPT2, HS_ARCH_LLAMA};
    for (int a = 0; a < 2; a++) {
        hs_model *m = micro_model(archs[a], 2, 8);
        int32_t tok[16], tgt[16];
        batch(tok, tgt, 16);
        seen s = {.n = 0};
        assert_int_equal(hs_model_add_hook(m, record, &s), HS_OK);
        assert_int_equal(hs_model_forward(m, tok, tgt, 2, 8, NULL), HS_OK);
        /* the forward: embedding, layers 0 .. 2, head; before and after each */
        const int order[5] = {HS_LAYER_EMBEDDING, 0, 1, 2, HS_LAYER_HEAD};
        assert_int_equal(s.n_events, 10);
        for (int k = 0; k < 10; k++) {
            assert_int_equal(s.events[k], k % 2 ? HS_AFTER_FORWARD : HS_BEFORE_FORWARD);
            assert_int_equal(s.event_layer[k], order[k / 2]);
        }
        s.n_events = 0;
        assert_int_equal(hs_model_backward(m, 1.0f), HS_OK);
        check_cover(m, &s);
        /* the backward: head, layers 2 .. 0, embedding, each before and after */
        assert_int_equal(s.n_events, 10);
        for (int k = 0; k < 10; k++) {
            assert_int_equal(s.events[k], k % 2 ? HS_AFTER_BACKWARD : HS_BEFORE_BACKWARD);
            assert_int_equal(s.event_layer[k], order[4 - k / 2]);
        }
        /* one range per block, each right below the last, ending at 0 */
        assert_int_equal(s.n, 5);
        assert_int_equal(s.end[0], hs_model_num_params(m));
        for (int k = 1; k < s.n; k++)
            assert_int_equal(s.end[k], s.begin[k - 1]);
        assert_int_equal(s.begin[s.n - 1], 0);
        assert_int_equal(s.begin[3], hs_model_param_by_name(m, "h.0.ln1.w")->offset);
        assert_int_equal(s.end[3], hs_model_param_by_name(m, "h.1.ln1.w")->offset);
        assert_int_equal(s.begin[0], hs_model_param_by_name(m, "lnf.w")->offset);
        /* removed: nothing more is heard; a hook not there cannot be removed */
        assert_int_equal(hs_model_remove_hook(m, record, &s), HS_OK);
        EXPECT_ERR(hs_model_remove_hook(m, record, &s), HS_ERR_NOT_FOUND);
        EXPECT_ERR(hs_model_add_hook(m, NULL, &s), HS_ERR_INVALID_ARGUMENT);
        s.n = s.n_events = 0;
        assert_int_equal(hs_model_forward(m, tok, tgt, 2, 8, NULL), HS_OK);
        assert_int_equal(hs_model_backward(m, 1.0f), HS_OK);
        assert_int_equal(s.n_events, 0);
        hs_model_free(m);
    }
}

/* Fails at the first event of kind *(hs_layer_event *)ctx. */
static hs_status refuse(void *ctx, hs_model *m, const hs_layer_info *info)
{
    (void)m;
    if (info->event != *(const hs_layer_event *)ctx)
        return HS_OK;
    return hs_error(HS_ERR_COMM, "the listener failed at layer %d", info->layer);
}

static void test_hook_error_stops_backward(void **state)
{
    (void)state;
    hs_model *m = micro_model(HS_ARCH_GPT2, 1, 8);
    int32_t tok[8], tgt[8];
    batch(tok, tgt, 8);
    hs_layer_event when = HS_AFTER_BACKWARD;
    assert_int_equal(hs_model_add_hook(m, refuse, &when), HS_OK);
    assert_int_equal(hs_model_forward(m, tok, tgt, 1, 8, NULL), HS_OK);
    assert_int_equal(hs_model_backward(m, 1.0f), HS_ERR_COMM);
    assert_non_null(strstr(hs_last_error(), "the listener failed at layer -2")); /* the head comes first */
    when = HS_BEFORE_FORWARD; /* a forward stops the same way */
    assert_int_equal(hs_model_forward(m, tok, tgt, 1, 8, NULL), HS_ERR_COMM);
    assert_non_null(strstr(hs_last_error(), "at layer -1"));
    hs_model_free(m);
}

/* Deferring the embedding's rows and adding them afterwards gives the
 * plain backward's gradients bit for bit; the embedding's range is
 * reported right after the head. */
static void test_deferred_embedding(void **state)
{
    (void)state;
    const hs_arch archs[] = {HS_ARCH_GPT2, HS_ARCH_LLAMA};
    for (int a = 0; a < 2; a++) {
        hs_model *ref = micro_model(archs[a], 2, 8), *m = micro_model(archs[a], 2, 8);
        const int64_t n = hs_model_num_params(m);
        int32_t tok[16], tgt[16];
        batch(tok, tgt, 16);
        assert_int_equal(hs_model_forward(ref, tok, tgt, 2, 8, NULL), HS_OK);
        assert_int_equal(hs_model_backward(ref, 0.5f), HS_OK);

        const float *rows;
        const int32_t *ids;
        int B, T;
        assert_int_equal(hs_model_embedding_grad_rows(m, &rows, &ids, &B, &T), HS_ERR_INVALID_ARGUMENT);
        seen s = {.n = 0};
        assert_int_equal(hs_model_add_hook(m, record, &s), HS_OK);
        hs_model_defer_embedding_grad(m, 1);
        assert_int_equal(hs_model_forward(m, tok, tgt, 2, 8, NULL), HS_OK);
        assert_int_equal(hs_model_backward(m, 0.5f), HS_OK);
        check_cover(m, &s);
        const int64_t emb_end = hs_model_param_by_name(m, "h.0.ln1.w")->offset;
        assert_int_equal(s.layer[1], HS_LAYER_EMBEDDING); /* right after the head's */
        assert_int_equal(s.begin[1], 0);
        assert_int_equal(s.end[1], emb_end);
        assert_int_equal(hs_model_embedding_grad_rows(m, &rows, &ids, &B, &T), HS_OK);
        assert_int_equal(B, 2);
        assert_int_equal(T, 8);
        assert_memory_equal(ids, tok, sizeof tok);
        assert_int_equal(hs_model_embedding_backward(m, rows, ids, B, T), HS_OK);
        assert_memory_equal(flat_grads(m), flat_grads(ref), (size_t)n * sizeof(float));
        assert_int_equal(hs_model_embedding_backward(m, rows, ids, B, 17), HS_ERR_INVALID_ARGUMENT);
        assert_int_equal(hs_model_embedding_backward(m, NULL, ids, B, T), HS_ERR_INVALID_ARGUMENT);
        int pb, ps;
        hs_model_planned_shape(m, &pb, &ps);
        assert_int_equal(pb, 2);
        assert_int_equal(ps, 8);
        hs_model_free(m);
        hs_model_free(ref);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_reverse_order_and_sizes),
        cmocka_unit_test(test_plan_big_tensor),
        cmocka_unit_test(test_plan_bad_args),
        cmocka_unit_test(test_hook_order),
        cmocka_unit_test(test_hook_error_stops_backward),
        cmocka_unit_test(test_deferred_embedding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
