/* Causal attention: forward against a double reference that materialises
 * the softmax, finite-difference gradients of q, k and v, the accumulate
 * convention, bad arguments and run-to-run determinism. Shapes cover ragged
 * T (not multiples of the 32-query / 64-key tiles), head sizes that are and
 * are not multiples of 32, B > 1 and several heads. Attention over another
 * block (hs_attention_forward_kv): a sequence cut in two blocks, each
 * block's queries over both key blocks, merged by lse, is the whole
 * sequence's attention, forward and backward; and its bad positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "hyperspeed/kernels.h"


typedef struct shape {
    int B, T, NH, NKV, HD;
} shape;

/* out[B,T,C] and lse[B,NH,T] of causal attention over q [B,T,C] and k, v
 * [B,T,KV]: query head h reads key/value head h / (NH/NKV). */
static void ref_attention(double *out, double *lse, const double *q, const double *k, const double *v, shape s)
{
    const int C = s.NH * s.HD, KV = s.NKV * s.HD, rep = s.NH / s.NKV;
    const double scale = 1.0 / sqrt(s.HD);
    double *p = malloc((size_t)s.T * sizeof *p);
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                const double *qt = q + ((size_t)b * s.T + t) * C + h * s.HD;
                const int kh = h / rep;
                double m = -INFINITY, l = 0;
                for (int u = 0; u <= t; u++) {
                    const double *ku = k + ((size_t)b * s.T + u) * KV + kh * s.HD;
                    double dot = 0;
                    for (int d = 0; d < s.HD; d++)
                        dot += qt[d] * ku[d];
                    p[u] = dot * scale;
                    m = fmax(m, p[u]);
                }
                for (int u = 0; u <= t; u++) {
                    p[u] = exp(p[u] - m);
                    l += p[u];
                }
                double *ot = out + ((size_t)b * s.T + t) * C + h * s.HD;
                for (int d = 0; d < s.HD; d++) {
                    double acc = 0;
                    for (int u = 0; u <= t; u++)
                        acc += p[u] * v[((size_t)b * s.T + u) * KV + kh * s.HD + d];
                    ot[d] = acc / l;
                }
                lse[((size_t)b * s.NH + h) * s.T + t] = m + log(l);
            }
    free(p);
}

/* Test problem: q, k, v in double and packed into qkv [B,T,C+2KV] (fp32),
 * upstream gradient R, and the kernel's outputs. */
typedef struct problem {
    shape s;
    size_t n, nkv, nqkv; /* B*T*C, B*T*KV, B*T*(C+2KV) */
    double *q, *k, *v, *R, *out, *lse;
    float *qkv, *Rf, *outf, *lsef, *dqkv;
} problem;

/* Columns [off, off + w) of each of the rows of a [rows, C+2KV] qkv. */
static void qkv_part(problem *p, int part, size_t *off, size_t *w)
{
    const size_t C = (size_t)p->s.NH * p->s.HD, KV = (size_t)p->s.NKV * p->s.HD;
    *off = part == 0 ? 0 : C + (size_t)(part - 1) * KV;
    *w = part == 0 ? C : KV;
}

static problem make(shape s, double scale, uint64_t seed)
{
    problem p = {.s = s, .n = (size_t)s.B * s.T * s.NH * s.HD, .nkv = (size_t)s.B * s.T * s.NKV * s.HD};
    p.nqkv = p.n + 2 * p.nkv;
    const size_t nl = (size_t)s.B * s.NH * s.T, rows = (size_t)s.B * s.T, ld = p.nqkv / rows;
    double *d[] = {p.q = malloc(p.n * 8), p.k = malloc(p.nkv * 8), p.v = malloc(p.nkv * 8)};
    p.R = malloc(p.n * 8);
    p.out = malloc(p.n * 8);
    p.lse = malloc(nl * 8);
    p.qkv = malloc(p.nqkv * 4);
    p.dqkv = calloc(p.nqkv, 4);
    p.Rf = malloc(p.n * 4);
    p.outf = malloc(p.n * 4);
    p.lsef = malloc(nl * 4);
    float *tmp = malloc(p.n * 4);
    for (int part = 0; part < 3; part++) {
        size_t off, w;
        qkv_part(&p, part, &off, &w);
        gc_fill(tmp, d[part], rows * w, scale, seed + part);
        for (size_t row = 0; row < rows; row++)
            memcpy(p.qkv + row * ld + off, tmp + row * w, w * 4);
    }
    gc_fill(p.Rf, p.R, p.n, 1.0, seed + 3);
    free(tmp);
    return p;
}

static void release(problem *p)
{
    void *all[] = {p->q, p->k, p->v, p->R, p->out, p->lse, p->qkv, p->Rf, p->outf, p->lsef, p->dqkv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
}

static hs_tensor qkv_t(problem *p, float *data)
{
    return hs_view3(data, HS_FP32, p->s.B, p->s.T, (int64_t)(p->nqkv / ((size_t)p->s.B * p->s.T)));
}
static hs_tensor act_t(problem *p, float *data) { return hs_view3(data, HS_FP32, p->s.B, p->s.T, p->s.NH * p->s.HD); }
static hs_tensor lse_t(problem *p, float *data) { return hs_view3(data, HS_FP32, p->s.B, p->s.NH, p->s.T); }

static void run_forward(problem *p)
{
    hs_tensor out = act_t(p, p->outf), lse = lse_t(p, p->lsef), qkv = qkv_t(p, p->qkv);
    assert_int_equal(hs_attention_forward(&out, &lse, &qkv, p->s.NH, p->s.NKV), HS_OK);
}

static void run_backward(problem *p, float *dqkv)
{
    hs_tensor d = qkv_t(p, dqkv), dout = act_t(p, p->Rf), qkv = qkv_t(p, p->qkv), out = act_t(p, p->outf),
              lse = lse_t(p, p->lsef);
    assert_int_equal(hs_attention_backward(&d, &dout, &qkv, &out, &lse, p->s.NH, p->s.NKV), HS_OK);
}

static void check_forward(shape s, double scale)
{
    problem p = make(s, scale, 11);
    run_forward(&p);
    ref_attention(p.out, p.lse, p.q, p.k, p.v, s);
    assert_true(gc_close_ratio(p.outf, p.out, p.n, 1e-5, 1e-4) <= 1);
    assert_true(gc_close_ratio(p.lsef, p.lse, (size_t)s.B * s.NH * s.T, 1e-5, 1e-5) <= 1);
    release(&p);
}

static void test_forward(void **state)
{
    const shape shapes[] = {{1, 1, 1, 1, 8},   {2, 5, 3, 3, 4},   {1, 33, 2, 2, 16},   {2, 70, 2, 2, 8},
                            {2, 64, 3, 3, 40}, {1, 97, 1, 1, 32}, {4, 64, 12, 12, 64}, {2, 300, 2, 2, 64},
                            {2, 70, 4, 2, 8},  {1, 97, 6, 2, 32}, {2, 64, 8, 1, 40},   {1, 130, 4, 1, 64}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_forward(shapes[i], 1.0);
    check_forward((shape){1, 130, 2, 2, 32}, 3.0); /* peaked softmax: large running-max corrections */
}

static double loss(const double *x, void *ctx)
{
    problem *p = ctx;
    ref_attention(p->out, p->lse, p->q, p->k, p->v, p->s);
    double sum = 0;
    for (size_t i = 0; i < p->n; i++)
        sum += p->out[i] * p->R[i];
    return sum;
}

static void check_gradients(shape s, size_t max_checks)
{
    problem p = make(s, 1.0, 5);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    const size_t rows = (size_t)s.B * s.T, ld = p.nqkv / rows;
    double *x[] = {p.q, p.k, p.v};
    const char *names[] = {"dq", "dk", "dv"};
    float *g = malloc(p.n * 4);
    for (int part = 0; part < 3; part++) {
        size_t off, w;
        qkv_part(&p, part, &off, &w);
        for (size_t row = 0; row < rows; row++)
            memcpy(g + row * w, p.dqkv + row * ld + off, w * 4);
        assert_true(gc_check(names[part], loss, &p, x[part], rows * w, g, 1e-3, 1e-4, 1e-3, max_checks) <= 1);
    }
    free(g);
    release(&p);
}

static void test_gradients(void **state)
{
    check_gradients((shape){1, 1, 1, 1, 4}, 1000);
    check_gradients((shape){2, 5, 3, 3, 4}, 1000);
    check_gradients((shape){1, 33, 2, 2, 16}, 300);
    check_gradients((shape){1, 70, 2, 2, 8}, 300);
    check_gradients((shape){1, 70, 1, 1, 32}, 300);
    check_gradients((shape){1, 300, 1, 1, 64}, 12);
    /* grouped-query (two and three query heads per key/value head) and
     * multi-query: the key/value gradients sum over a group */
    check_gradients((shape){2, 5, 4, 2, 4}, 1000);
    check_gradients((shape){1, 70, 6, 2, 8}, 300);
    check_gradients((shape){1, 33, 4, 1, 16}, 300);
}

/* backward adds to dqkv: starting from ones gives 1 + the gradient. */
static void test_accumulates(void **state)
{
    problem p = make((shape){2, 37, 4, 2, 16}, 1.0, 9);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    float *acc = malloc(p.nqkv * 4);
    for (size_t i = 0; i < p.nqkv; i++)
        acc[i] = 1.0f;
    run_backward(&p, acc);
    for (size_t i = 0; i < p.nqkv; i++)
        assert_float_equal(acc[i], 1.0f + p.dqkv[i], 1e-6);
    hs_tensor dout = act_t(&p, p.Rf), qkv = qkv_t(&p, p.qkv), out = act_t(&p, p.outf), lse = lse_t(&p, p.lsef);
    assert_int_equal(hs_attention_backward(NULL, &dout, &qkv, &out, &lse, p.s.NH, p.s.NKV), HS_OK);
    free(acc);
    release(&p);
}

static void test_deterministic(void **state)
{
    problem p = make((shape){2, 100, 6, 2, 64}, 1.0, 3);
    float *out0 = malloc(p.n * 4), *d0 = calloc(p.nqkv, 4);
    run_forward(&p);
    run_backward(&p, d0);
    memcpy(out0, p.outf, p.n * 4);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    assert_memory_equal(out0, p.outf, p.n * 4);
    assert_memory_equal(d0, p.dqkv, p.nqkv * 4);
    free(out0);
    free(d0);
    release(&p);
}

static void test_bad_arguments(void **state)
{
    problem p = make((shape){2, 5, 2, 2, 4}, 1.0, 1);
    hs_tensor qkv = qkv_t(&p, p.qkv), out = act_t(&p, p.outf), lse = lse_t(&p, p.lsef);
    hs_tensor dqkv = qkv_t(&p, p.dqkv), dout = act_t(&p, p.Rf);

    EXPECT_ERR(hs_attention_forward(&out, &lse, NULL, 2, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(NULL, &lse, &qkv, 2, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(&out, NULL, &qkv, 2, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 3, 3), HS_ERR_INVALID_ARGUMENT); /* 9 does not divide 24 */
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 0, 1), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 2, 0), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 2, 3), HS_ERR_INVALID_ARGUMENT); /* 3 kv heads for 2 */
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 3, 2), HS_ERR_INVALID_ARGUMENT); /* 2 does not divide 3 */
    assert_non_null(strstr(hs_last_error(), "n_kv_head=2 does not divide n_head=3"));
    hs_tensor bad = hs_view3(p.qkv, HS_FP32, 2, 5, 23); /* not a multiple of NH + 2 NKV */
    EXPECT_ERR(hs_attention_forward(&out, &lse, &bad, 1, 1), HS_ERR_INVALID_ARGUMENT);
    bad = hs_view3(p.outf, HS_FP32, 2, 4, 8);
    EXPECT_ERR(hs_attention_forward(&bad, &lse, &qkv, 2, 2), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view3(p.lsef, HS_FP32, 2, 1, 5); /* one head's lse for two heads */
    EXPECT_ERR(hs_attention_forward(&out, &bad, &qkv, 2, 2), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view2(p.outf, HS_FP32, 10, 8);
    EXPECT_ERR(hs_attention_forward(&bad, &lse, &qkv, 2, 2), HS_ERR_SHAPE_MISMATCH);
    bad = out;
    bad.dtype = HS_BF16;
    EXPECT_ERR(hs_attention_forward(&bad, &lse, &qkv, 2, 2), HS_ERR_DTYPE);
    bad = qkv;
    bad.device = gc_npu_device();
    EXPECT_ERR(hs_attention_forward(&out, &lse, &bad, 2, 2), HS_ERR_DEVICE);
    /* the same 24 columns read as 4 query heads sharing 1 key/value head of
     * 4 (out [2,5,16]): out of the wrong width is refused */
    EXPECT_ERR(hs_attention_forward(&out, &lse, &qkv, 4, 1), HS_ERR_SHAPE_MISMATCH);

    EXPECT_ERR(hs_attention_backward(&dqkv, NULL, &qkv, &out, &lse, 2, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, NULL, 2, 2), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, &lse, 5, 5), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, &lse, 2, 4), HS_ERR_INVALID_ARGUMENT);
    bad = act_t(&p, p.dqkv); /* [B,T,C] where [B,T,C+2KV] is needed */
    EXPECT_ERR(hs_attention_backward(&bad, &dout, &qkv, &out, &lse, 2, 2), HS_ERR_SHAPE_MISMATCH);
    bad = hs_view3(p.Rf, HS_FP32, 2, 5, 4);
    EXPECT_ERR(hs_attention_backward(&dqkv, &bad, &qkv, &out, &lse, 2, 2), HS_ERR_SHAPE_MISMATCH);
    bad = lse;
    bad.dtype = HS_INT32;
    EXPECT_ERR(hs_attention_backward(&dqkv, &dout, &qkv, &out, &bad, 2, 2), HS_ERR_DTYPE);
    release(&p);
}

/* Rows [t0, t0 + T) of every sequence of x [B, 2T, w] into y [B, T, w], or back (to_whole). */
static void block_rows(float *x, float *y, int B, int T, size_t w, int t0, int to_whole)
{
    for (int b = 0; b < B; b++) {
        float *whole = x + ((size_t)b * 2 * T + t0) * w, *part = y + (size_t)b * T * w;
        memcpy(to_whole ? whole : part, to_whole ? part : whole, (size_t)T * w * 4);
    }
}

/* out1, lse1 := the merge of (out1, lse1) and (out2, lse2), [B,T,C] and
 * [B,NH,T], in double. */
static void merge(float *out1, float *lse1, const float *out2, const float *lse2, shape s)
{
    const int C = s.NH * s.HD;
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                float *l1 = lse1 + ((size_t)b * s.NH + h) * s.T + t;
                const double l2 = lse2[((size_t)b * s.NH + h) * s.T + t], m = fmax(*l1, l2);
                const double lse = m + log(exp(*l1 - m) + exp(l2 - m)), w1 = exp(*l1 - lse), w2 = exp(l2 - lse);
                for (int d = 0; d < s.HD; d++) {
                    const size_t i = ((size_t)b * s.T + t) * C + (size_t)h * s.HD + d;
                    out1[i] = (float)(w1 * out1[i] + w2 * out2[i]);
                }
                *l1 = (float)lse;
            }
}

static void expect_close(const float *got, const float *want, size_t n, double tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]))))
            fail_msg("%s[%zu]: %.9g, the whole sequence's %.9g", what, i, got[i], want[i]);
}

/* A sequence of 2T tokens cut in blocks 0 and 1 (positions 0 and T). Each
 * query block attends to both key blocks (block 0 over block 1 sees
 * nothing: out 0, lse -inf); merged by lse the results are the whole
 * sequence's attention; each (query block, key block) backward with the
 * whole's out and lse adds up to the whole's gradient. */
static void check_blocks(shape half)
{
    shape whole = half;
    whole.T = 2 * half.T;
    problem p = make(whole, 1.0, 21);
    run_forward(&p);
    run_backward(&p, p.dqkv);
    const int B = half.B, T = half.T, C = half.NH * half.HD;
    const size_t w = p.nqkv / ((size_t)B * whole.T), n = (size_t)B * T, nl = (size_t)B * half.NH * T;
    float *blk[2], *dblk[2], *R[2], *outw[2], *lsew[2], *out = malloc(n * C * 4), *lse = malloc(nl * 4),
                                                        *out2 = malloc(n * C * 4), *lse2 = malloc(nl * 4);
    float *lse_whole_t = malloc(nl * 2 * 4); /* the whole's lse as [B, NH, 2T] -> per block [B, NH, T] */
    memcpy(lse_whole_t, p.lsef, nl * 2 * 4);
    for (int k = 0; k < 2; k++) {
        blk[k] = malloc(n * w * 4), dblk[k] = calloc(n * w, 4), R[k] = malloc(n * C * 4);
        outw[k] = malloc(n * C * 4), lsew[k] = malloc(nl * 4);
        block_rows(p.qkv, blk[k], B, T, w, k * T, 0);
        block_rows(p.Rf, R[k], B, T, C, k * T, 0);
        block_rows(p.outf, outw[k], B, T, C, k * T, 0);
        for (size_t bh = 0; bh < (size_t)B * half.NH; bh++)
            memcpy(lsew[k] + bh * T, lse_whole_t + bh * 2 * T + k * T, (size_t)T * 4);
    }
    hs_tensor o = hs_view3(out, HS_FP32, B, T, C), l = hs_view3(lse, HS_FP32, B, half.NH, T);
    hs_tensor o2 = hs_view3(out2, HS_FP32, B, T, C), l2 = hs_view3(lse2, HS_FP32, B, half.NH, T);
    for (int qb = 0; qb < 2; qb++) {
        hs_tensor q = hs_view3(blk[qb], HS_FP32, B, T, (int64_t)w);
        for (int kb = 0; kb < 2; kb++) {
            hs_tensor kv = hs_view3(blk[kb], HS_FP32, B, T, (int64_t)w);
            assert_int_equal(hs_attention_forward_kv(kb ? &o2 : &o, kb ? &l2 : &l, &q, &kv, half.NH, half.NKV,
                                                     (int64_t)qb * T, (int64_t)kb * T),
                             HS_OK);
        }
        if (qb == 0) { /* block 1's keys come after every query of block 0 */
            for (size_t i = 0; i < n * C; i++)
                assert_true(out2[i] == 0.0f);
            for (size_t i = 0; i < nl; i++)
                assert_true(isinf(lse2[i]) && lse2[i] < 0);
        }
        merge(out, lse, out2, lse2, half);
        expect_close(out, outw[qb], n * C, 2e-6, qb ? "out, block 1" : "out, block 0");
        expect_close(lse, lsew[qb], nl, 2e-6, qb ? "lse, block 1" : "lse, block 0");
        hs_tensor dout = hs_view3(R[qb], HS_FP32, B, T, C), ow = hs_view3(outw[qb], HS_FP32, B, T, C);
        hs_tensor lw = hs_view3(lsew[qb], HS_FP32, B, half.NH, T);
        hs_tensor dq = hs_view3(dblk[qb], HS_FP32, B, T, (int64_t)w);
        for (int kb = 0; kb < 2; kb++) {
            hs_tensor kv = hs_view3(blk[kb], HS_FP32, B, T, (int64_t)w);
            hs_tensor dkv = hs_view3(dblk[kb], HS_FP32, B, T, (int64_t)w);
            assert_int_equal(hs_attention_backward_kv(&dq, &dkv, &dout, &q, &kv, &ow, &lw, half.NH, half.NKV,
                                                      (int64_t)qb * T, (int64_t)kb * T),
                             HS_OK);
        }
    }
    float *dwhole = calloc(p.nqkv, 4);
    for (int k = 0; k < 2; k++)
        block_rows(dwhole, dblk[k], B, T, w, k * T, 1);
    expect_close(dwhole, p.dqkv, p.nqkv, 2e-5, "dqkv");
    for (int k = 0; k < 2; k++)
        free(blk[k]), free(dblk[k]), free(R[k]), free(outw[k]), free(lsew[k]);
    free(out), free(lse), free(out2), free(lse2), free(lse_whole_t), free(dwhole);
    release(&p);
}

static void test_blocks(void **state)
{
    (void)state;
    check_blocks((shape){2, 37, 4, 2, 16}); /* ragged tiles, grouped-query */
    check_blocks((shape){1, 80, 2, 2, 32}); /* several key tiles a block */
    check_blocks((shape){1, 1, 3, 1, 8});   /* one token a block, multi-query */
}

/* Positions that make kv another kind of block than the three refused. */
static void test_blocks_bad_positions(void **state)
{
    (void)state;
    problem p = make((shape){1, 8, 2, 2, 4}, 1.0, 5);
    hs_tensor qkv = qkv_t(&p, p.qkv), out = act_t(&p, p.outf), lse = lse_t(&p, p.lsef);
    hs_tensor dq = qkv_t(&p, p.dqkv), dout = act_t(&p, p.Rf);
    EXPECT_ERR(hs_attention_forward_kv(&out, &lse, &qkv, &qkv, 2, 2, 8, 4), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "the key block at positions 4..11 overlaps the queries' 8..15 in part"));
    EXPECT_ERR(hs_attention_forward_kv(&out, &lse, &qkv, &qkv, 2, 2, 3, 8), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_backward_kv(&dq, &dq, &dout, &qkv, &qkv, &out, &lse, 2, 2, 0, 5), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_attention_forward_kv(&out, &lse, &qkv, &qkv, 2, 2, -1, 0), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "must be >= 0"));
    hs_tensor short_kv = hs_view3(p.qkv, HS_FP32, 1, 7, qkv.shape[2]);
    EXPECT_ERR(hs_attention_forward_kv(&out, &lse, &qkv, &short_kv, 2, 2, 8, 0), HS_ERR_SHAPE_MISMATCH);
    EXPECT_ERR(hs_attention_forward_kv(&out, &lse, &qkv, NULL, 2, 2, 8, 0), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_attention_forward_kv(&out, &lse, &qkv, &qkv, 2, 2, 7, 0), HS_OK); /* wholly before */
    release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),       cmocka_unit_test(test_gradients),     cmocka_unit_test(test_accumulates),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_blocks_bad_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
