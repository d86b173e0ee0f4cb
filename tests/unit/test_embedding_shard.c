/* Vocab-parallel embedding (hs_embedding_shard_forward/backward): the
 * vocabulary's rows cut into uneven shards; the shards' outputs summed (as
 * the tensor-parallel group's all-reduce does, wpe added on one rank) give
 * the whole table's output, and each shard's dwte rows are the whole
 * table's gradient rows; bad arguments. The NPU bodies are checked against
 * these in test_npu_kernels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"

enum { B = 3, T = 7, C = 12, V = 29 };

/* Row boundaries of the shards: [0,7) [7,8) [8,20) [20,29). */
static const int cuts[] = {0, 7, 8, 20, V};
#define SHARDS ((int)(sizeof cuts / sizeof cuts[0]) - 1)

static void test_shards_sum_to_whole(void **state)
{
    (void)state;
    float *wte = fz(V * C), *wpe = fz(T * C), *dout = fz(B * T * C);
    float *out = fz(B * T * C), *dwte = fz(V * C), *dwpe = fz(T * C), *sum = fz(B * T * C);
    int32_t tok[B * T];
    gc_fill(wte, NULL, V * C, 1.0, 21);
    gc_fill(wpe, NULL, T * C, 1.0, 22);
    gc_fill(dout, NULL, B * T * C, 1.0, 23);
    for (int i = 0; i < B * T; i++)
        tok[i] = (i * 11 + 5) % V;
    hs_tensor tt = hs_view2(tok, HS_INT32, B, T), tw = hs_view2(wte, HS_FP32, V, C), tp = hs_view2(wpe, HS_FP32, T, C);
    hs_tensor to = hs_view3(out, HS_FP32, B, T, C), td = hs_view3(dout, HS_FP32, B, T, C);
    hs_tensor tdw = hs_view2(dwte, HS_FP32, V, C), tdp = hs_view2(dwpe, HS_FP32, T, C);
    assert_int_equal(hs_embedding_forward(&to, &tt, &tw, &tp), HS_OK);
    assert_int_equal(hs_embedding_backward(&tdw, &tdp, &td, &tt), HS_OK);
    for (int s = 0; s < SHARDS; s++) {
        const int rows = cuts[s + 1] - cuts[s];
        float *part = fz(B * T * C), *g = fz((size_t)rows * C), *gp = fz(T * C);
        hs_tensor sw = hs_view2(wte + cuts[s] * C, HS_FP32, rows, C), so = hs_view3(part, HS_FP32, B, T, C);
        hs_tensor sg = hs_view2(g, HS_FP32, rows, C), sgp = hs_view2(gp, HS_FP32, T, C);
        /* wpe and dwpe on the first rank only */
        assert_int_equal(hs_embedding_shard_forward(&so, &tt, &sw, s == 0 ? &tp : NULL, cuts[s]), HS_OK);
        assert_int_equal(hs_embedding_shard_backward(&sg, s == 0 ? &sgp : NULL, &td, &tt, cuts[s]), HS_OK);
        for (int i = 0; i < B * T * C; i++)
            sum[i] += part[i];
        for (int i = 0; i < B * T; i++) /* another shard's token: a zero row (before wpe) */
            if (s > 0 && (tok[i] < cuts[s] || tok[i] >= cuts[s + 1]))
                for (int c = 0; c < C; c++)
                    assert_true(part[i * C + c] == 0.0f);
        assert_memory_equal(g, dwte + cuts[s] * C, (size_t)rows * C * sizeof(float));
        if (s == 0)
            assert_memory_equal(gp, dwpe, T * C * sizeof(float));
        free(part), free(g), free(gp);
    }
    for (int i = 0; i < B * T * C; i++) /* one nonzero term per element: the sum is exact */
        assert_true(sum[i] == out[i]);
    free(wte), free(wpe), free(dout), free(out), free(dwte), free(dwpe), free(sum);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float *wte = fz(V * C), *out = fz(B * T * C);
    int32_t tok[B * T] = {0};
    hs_tensor tt = hs_view2(tok, HS_INT32, B, T), tw = hs_view2(wte, HS_FP32, V, C);
    hs_tensor to = hs_view3(out, HS_FP32, B, T, C);
    EXPECT_ERR(hs_embedding_shard_forward(&to, &tt, &tw, NULL, -1), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "vocab_start = -1"));
    EXPECT_ERR(hs_embedding_shard_backward(&tw, NULL, &to, &tt, -2), HS_ERR_INVALID_ARGUMENT);
    tok[4] = -1;
    EXPECT_ERR(hs_embedding_shard_forward(&to, &tt, &tw, NULL, 0), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "is -1"));
    tok[4] = 1 << 20; /* another shard's id: fine for a shard, a zero row */
    assert_int_equal(hs_embedding_shard_forward(&to, &tt, &tw, NULL, 0), HS_OK);
    for (int c = 0; c < C; c++)
        assert_true(out[4 * C + c] == 0.0f);
    free(wte), free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_sum_to_whole),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
