/* hs_embedding_forward / hs_embedding_backward against a double reference,
 * out[b,t] = wte[tokens[b,t]] + wpe[t], loss = sum(out * R). Tokens repeat,
 * so dwte rows sum several positions; gradients go into pre-filled buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "hyperspeed.h"


typedef struct em {
    int B, T, C;
    const int32_t *tokens;
    double *wte, *wpe, *R; /* wpe NULL: no positions */
} em;

static double ref_out(const em *k, int i, int c)
{
    return k->wte[k->tokens[i] * k->C + c] + (k->wpe ? k->wpe[(i % k->T) * k->C + c] : 0.0);
}

static double loss(const double *x, void *ctx)
{
    (void)x;
    const em *k = ctx;
    double l = 0.0;
    for (int i = 0; i < k->B * k->T; i++)
        for (int c = 0; c < k->C; c++)
            l += ref_out(k, i, c) * k->R[i * k->C + c];
    return l;
}

static int32_t *random_tokens(size_t n, int V, uint64_t seed)
{
    int32_t *t = calloc(n, sizeof *t);
    assert_non_null(t);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)(gc_rand(&s) * V);
    return t;
}

static void check_case(int B, int T, int C, int V, int maxT, int with_wpe)
{
    const size_t n = (size_t)B * T * C, ne = (size_t)V * C, np = (size_t)maxT * C;
    int32_t *tok = random_tokens((size_t)B * T, V, 1);
    em k = {B, T, C, tok, dz(ne), with_wpe ? dz(np) : NULL, dz(n)};
    float *wte = fz(ne), *wpe = fz(np), *R = fz(n), *out = fz(n);
    float *dwte = fz(ne), *dwpe = fz(np), *pe = fz(ne), *pp = fz(np);
    gc_fill(wte, k.wte, ne, 1.0, 2);
    gc_fill(wpe, k.wpe, with_wpe ? np : 0, 1.0, 3);
    gc_fill(R, k.R, n, 1.0, 4);
    hs_tensor tt = hs_view2(tok, HS_INT32, B, T), te = hs_view2(wte, HS_FP32, V, C);
    hs_tensor tp = hs_view2(wpe, HS_FP32, maxT, C);
    hs_tensor to = hs_view3(out, HS_FP32, B, T, C), tR = hs_view3(R, HS_FP32, B, T, C);
    hs_tensor tde = hs_view2(dwte, HS_FP32, V, C), tdp = hs_view2(dwpe, HS_FP32, maxT, C);

    assert_int_equal(hs_embedding_forward(&to, &tt, &te, with_wpe ? &tp : NULL), HS_OK);
    double *ref = dz(n);
    for (int i = 0; i < B * T; i++)
        for (int c = 0; c < C; c++)
            ref[(size_t)i * C + c] = ref_out(&k, i, c);
    assert_true(gc_close_ratio(out, ref, n, 0.0, 1e-7) <= 1.0);

    gc_fill(pe, NULL, ne, 1.0, 5);
    gc_fill(pp, NULL, np, 1.0, 6);
    memcpy(dwte, pe, ne * sizeof(float));
    memcpy(dwpe, pp, np * sizeof(float));
    assert_int_equal(hs_embedding_backward(&tde, with_wpe ? &tdp : NULL, &tR, &tt), HS_OK);
    for (size_t i = 0; i < ne; i++)
        dwte[i] -= pe[i];
    for (size_t i = 0; i < np; i++)
        dwpe[i] -= pp[i];
    assert_true(gc_check("dwte", loss, &k, k.wte, ne, dwte, 1e-3, 1e-5, 1e-5, 150) <= 1.0);
    if (with_wpe)
        assert_true(gc_check("dwpe", loss, &k, k.wpe, np, dwpe, 1e-3, 1e-5, 1e-5, 150) <= 1.0);
    else
        for (size_t i = 0; i < np; i++)
            assert_true(dwpe[i] == 0.0f);

    free(tok), free(k.wte), free(k.wpe), free(k.R), free(ref);
    free(wte), free(wpe), free(R), free(out), free(dwte), free(dwpe), free(pe), free(pp);
}

static void test_values_and_gradients(void **state)
{
    (void)state;
    check_case(1, 1, 1, 1, 1, 1);
    check_case(2, 5, 7, 4, 8, 1); /* maxT > T; 10 positions on 4 tokens */
    check_case(3, 4, 6, 11, 4, 0);
    check_case(4, 64, 200, 50, 64, 1); /* threaded channel slices */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float f[256] = {0};
    int32_t tok[6] = {0, 1, 2, 3, 4, 0}, bad[6] = {0, 1, 2, 3, 9, 0}, neg[6] = {0, -1, 0, 0, 0, 0};
    hs_tensor tt = hs_view2(tok, HS_INT32, 2, 3), wte = hs_view2(f, HS_FP32, 5, 4), wpe = hs_view2(f, HS_FP32, 3, 4);
    hs_tensor out = hs_view3(f, HS_FP32, 2, 3, 4), tbad = hs_view2(bad, HS_INT32, 2, 3);
    hs_tensor tneg = hs_view2(neg, HS_INT32, 2, 3), tf = hs_view2(f, HS_FP32, 2, 3);
    hs_tensor short_wpe = hs_view2(f, HS_FP32, 2, 4), wpe_c = hs_view2(f, HS_FP32, 3, 5);
    hs_tensor out2 = hs_view2(f, HS_FP32, 6, 4), obad = hs_view3(f, HS_FP32, 2, 3, 5), wnpu = wte;
    wnpu.device = gc_npu_device();

    EXPECT_ERR(hs_embedding_forward(NULL, &tt, &wte, &wpe), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_embedding_forward(&out, NULL, &wte, &wpe), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_embedding_forward(&out, &tt, NULL, &wpe), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_embedding_forward(&out, &tbad, &wte, &wpe), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tokens[1][1]"));
    assert_non_null(strstr(hs_last_error(), "is 9"));
    EXPECT_ERR(hs_embedding_forward(&out, &tneg, &wte, &wpe), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "position 1"));
    EXPECT_ERR(hs_embedding_forward(&out, &tf, &wte, &wpe), HS_ERR_DTYPE);
    EXPECT_ERR(hs_embedding_forward(&out, &tt, &wte, &short_wpe), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_forward(&out, &tt, &wte, &wpe_c), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_forward(&out2, &tt, &wte, &wpe), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_forward(&obad, &tt, &wte, &wpe), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_forward(&out, &tt, &wnpu, &wpe), HS_ERR_DEVICE);

    EXPECT_ERR(hs_embedding_backward(&wte, &wpe, NULL, &tt), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_embedding_backward(&wte, &wpe, &out, NULL), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_embedding_backward(&wte, &wpe, &out, &tbad), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_embedding_backward(&wte, &short_wpe, &out, &tt), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_backward(&wpe_c, &wpe, &out, &tt), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_backward(&wte, &wpe, &out2, &tt), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_embedding_backward(&wte, &wpe, &out, &tf), HS_ERR_DTYPE);
    EXPECT_ERR(hs_embedding_backward(&tt, &wpe, &out, &tt), HS_ERR_DTYPE);
    /* without dwte the tokens are not read, so their range does not matter */
    assert_int_equal(hs_embedding_backward(NULL, &wpe, &out, &tbad), HS_OK);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { B = 4, T = 64, C = 256, V = 37 };
    int32_t *tok = random_tokens(B * T, V, 7);
    float *wte = fz(V * C), *wpe = fz(T * C), *out[2], *dwte[2], *dwpe[2];
    gc_fill(wte, NULL, V * C, 1.0, 8);
    gc_fill(wpe, NULL, T * C, 1.0, 9);
    hs_tensor tt = hs_view2(tok, HS_INT32, B, T), te = hs_view2(wte, HS_FP32, V, C), tp = hs_view2(wpe, HS_FP32, T, C);
    for (int r = 0; r < 2; r++) {
        out[r] = fz(B * T * C), dwte[r] = fz(V * C), dwpe[r] = fz(T * C);
        hs_tensor to = hs_view3(out[r], HS_FP32, B, T, C), tde = hs_view2(dwte[r], HS_FP32, V, C);
        hs_tensor tdp = hs_view2(dwpe[r], HS_FP32, T, C);
        assert_int_equal(hs_embedding_forward(&to, &tt, &te, &tp), HS_OK);
        assert_int_equal(hs_embedding_backward(&tde, &tdp, &to, &tt), HS_OK);
    }
    assert_memory_equal(out[0], out[1], B * T * C * sizeof(float));
    assert_memory_equal(dwte[0], dwte[1], V * C * sizeof(float));
    assert_memory_equal(dwpe[0], dwpe[1], T * C * sizeof(float));
    free(tok), free(wte), free(wpe);
    for (int r = 0; r < 2; r++)
        free(out[r]), free(dwte[r]), free(dwpe[r]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_gradients),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
