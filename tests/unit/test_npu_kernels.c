/* CPU-vs-NPU agreement of the vector kernels: every op with an NPU body,
 * forward and backward, on several shapes (one row, ragged sizes that are
 * no tile multiple, rows wider than a UB tile), run on the "test" preset
 * in execute mode against the CPU body on the same inputs; the same call
 * in estimate mode must take identical simulated time; mixed CPU/NPU
 * tensors are HS_ERR_DEVICE.
 *
 * Tolerance: fp32 results agree with the CPU's elementwise within
 *     |npu - cpu| <= RTOL |cpu| + ATOL max|cpu|,  RTOL = 1e-5, ATOL = 1e-6.
 * The devices round differently, each by a few ulp (~1e-7 relative): exp
 * is libm's expf on the vector unit but the vectorised hs_fast_exp on the
 * CPU, a reciprocal or 1/sqrt is a separate rounding, row sums run in
 * another order, and some formulas are arranged for the vector ops. An
 * element that is the difference of larger terms (a normalised value plus
 * its bias, a gradient crossing zero) keeps the absolute rounding of those
 * terms, a few ulp of the tensor's scale, hence ATOL (8 ulp of the largest
 * magnitude).
 */
#include "gradcheck.h"
#include "npu_fixture.h"

#include "hyperspeed/kernels.h"
#include "hyperspeed/npu.h"

#include <string.h>

#define RTOL 1e-5
#define ATOL 1e-6

/* ------------------------------------------------------------- harness */

/* Simulated cost of one op call: stream time and the last launch's cycles. */
typedef struct cost {
    double seconds;
    uint64_t cycles;
} cost;

static double clock_of(hs_npu *d)
{
    return hs_npu_stream_time(hs_npu_default_stream(d));
}

static cost cost_since(hs_npu *d, double t0)
{
    return (cost){clock_of(d) - t0, hs_npu_last_launch(d).cycles};
}

/* The estimate-mode call cost what the execute-mode call did. */
static void same_cost(const char *what, cost exec, cost est)
{
    if (fabs(exec.seconds - est.seconds) > 1e-12 * exec.seconds || exec.cycles != est.cycles)
        fprintf(stderr, "%s: execute %.9g s (%llu cycles) vs estimate %.9g s (%llu cycles)\n", what, exec.seconds,
                (unsigned long long)exec.cycles, est.seconds, (unsigned long long)est.cycles);
    assert_true(exec.seconds >= 0);
    assert_true(fabs(exec.seconds - est.seconds) <= 1e-12 * exec.seconds); /* deltas of two stream clocks */
    assert_true(exec.cycles == est.cycles);
}

/* NPU result got[n] agrees with the CPU's ref[n] (see the top of the file),
 * ATOL taken of `scale` (0: of max|ref|). */
static void agree_at(const char *what, const float *got, const float *ref, size_t n, double scale)
{
    double worst = 0;
    size_t at = 0;
    if (scale == 0)
        for (size_t i = 0; i < n; i++)
            scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        const double r = fabs((double)got[i] - ref[i]) / (RTOL * fabs(ref[i]) + ATOL * scale + 1e-30);
        if (!(r <= worst)) {
            worst = r;
            at = i;
        }
    }
    if (getenv("HS_TEST_VERBOSE") || !(worst <= 1))
        fprintf(stderr, "%s: worst difference %.3g of the tolerance at %zu (npu %.9g, cpu %.9g)\n", what, worst,
                at, (double)got[at], (double)ref[at]);
    assert_true(worst <= 1);
}

static void agree(const char *what, const float *got, const float *ref, size_t n)
{
    agree_at(what, got, ref, n, 0);
}

/* n floats, U[-scale, scale) from seed. */
static float *rnd(size_t n, double scale, uint64_t seed)
{
    float *p = fz(n);
    gc_fill(p, NULL, n, scale, seed);
    return p;
}

static float *dup_f(const float *src, size_t n)
{
    float *p = fz(n);
    memcpy(p, src, n * sizeof *p);
    return p;
}

/* Shapes [N, C]: one row, ragged, several blocks, more rows per block than
 * the per-row results a block gathers (STASH), rows wider than a UB tile. */
static const int64_t SHAPES[][2] = {{1, 8}, {1, 13}, {7, 13}, {33, 100}, {5, 777}, {4500, 8}, {9, 10000}, {2, 12345}};
#define NSHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* --------------------------------------------------------------- norms */

/* LayerNorm (ln) or RMSNorm forward on device d; returns its cost. */
static cost norm_fwd_on(hs_npu *d, int ln, const float *x, const float *w, const float *b, float *out, float *mean,
                        float *rstd, int64_t N, int64_t C)
{
    npu_use(d);
    float *dx = npu_up(d, x, N * C), *dw = npu_up(d, w, C), *db = npu_up(d, b, C);
    float *dout = npu_up(d, NULL, N * C), *dmean = npu_up(d, NULL, N), *drstd = npu_up(d, NULL, N);
    hs_tensor to = on_npu(hs_view2(dout, HS_FP32, N, C)), tx = on_npu(hs_view2(dx, HS_FP32, N, C));
    hs_tensor tw = on_npu(hs_view1(dw, HS_FP32, C)), tb = on_npu(hs_view1(db, HS_FP32, C));
    hs_tensor tm = on_npu(hs_view1(dmean, HS_FP32, N)), tr = on_npu(hs_view1(drstd, HS_FP32, N));
    const double t0 = clock_of(d);
    if (ln)
        assert_int_equal(hs_layernorm_forward(&to, &tm, &tr, &tx, &tw, &tb, 1e-5f), HS_OK);
    else
        assert_int_equal(hs_rmsnorm_forward(&to, &tr, &tx, &tw, 1e-5f), HS_OK);
    const cost c = cost_since(d, t0);
    npu_down(d, out, dout, N * C);
    npu_down(d, mean, dmean, N);
    npu_down(d, rstd, drstd, N);
    npu_down(d, NULL, dx, N * C);
    npu_down(d, NULL, dw, C);
    npu_down(d, NULL, db, C);
    return c;
}

static void norm_forward_case(devs *v, int ln, int64_t N, int64_t C)
{
    char what[64];
    float *x = rnd(N * C, 2.0, 1), *w = rnd(C, 1.0, 2), *b = rnd(C, 1.0, 3);
    float *out = fz(N * C), *mean = fz(N), *rstd = fz(N), *rout = fz(N * C), *rmean = fz(N), *rrstd = fz(N);
    hs_tensor to = hs_view2(rout, HS_FP32, N, C), tx = hs_view2(x, HS_FP32, N, C), tw = hs_view1(w, HS_FP32, C);
    hs_tensor tb = hs_view1(b, HS_FP32, C), tm = hs_view1(rmean, HS_FP32, N), tr = hs_view1(rrstd, HS_FP32, N);
    if (ln)
        assert_int_equal(hs_layernorm_forward(&to, &tm, &tr, &tx, &tw, &tb, 1e-5f), HS_OK);
    else
        assert_int_equal(hs_rmsnorm_forward(&to, &tr, &tx, &tw, 1e-5f), HS_OK);
    const cost ce = norm_fwd_on(v->exec, ln, x, w, b, out, mean, rstd, N, C);
    const cost cs = norm_fwd_on(v->est, ln, x, w, b, NULL, NULL, NULL, N, C);
    snprintf(what, sizeof what, "%s forward %lldx%lld", ln ? "layernorm" : "rmsnorm", (long long)N, (long long)C);
    same_cost(what, ce, cs);
    agree(what, out, rout, N * C);
    agree(what, rstd, rrstd, N);
    if (ln) /* a mean of values of either sign: its rounding is of the inputs' scale */
        agree_at(what, mean, rmean, N, 2.0);
    free(x), free(w), free(b), free(out), free(mean), free(rstd), free(rout), free(rmean), free(rrstd);
}

static void test_norm_forward(void **state)
{
    (void)state;
    devs v = devs_new();
    for (size_t s = 0; s < NSHAPES; s++)
        for (int ln = 0; ln < 2; ln++)
            norm_forward_case(&v, ln, SHAPES[s][0], SHAPES[s][1]);
    devs_free(&v);
}

/* Backward inputs and the gradients it accumulates into (initial values
 * non-zero, to check accumulation). */
typedef struct norm_bwd_io {
    const float *dy, *x, *w, *mean, *rstd;
    float *dinp, *dw, *db; /* in: initial values; out: results (execute mode) */
} norm_bwd_io;

static cost norm_bwd_on(hs_npu *d, int ln, norm_bwd_io *io, int64_t N, int64_t C, int want)
{
    npu_use(d);
    float *ddy = npu_up(d, io->dy, N * C), *dx = npu_up(d, io->x, N * C), *dw = npu_up(d, io->w, C);
    float *dm = npu_up(d, io->mean, N), *dr = npu_up(d, io->rstd, N);
    float *ddi = npu_up(d, io->dinp, N * C), *ddw = npu_up(d, io->dw, C), *ddb = npu_up(d, io->db, C);
    hs_tensor tdy = on_npu(hs_view2(ddy, HS_FP32, N, C)), tx = on_npu(hs_view2(dx, HS_FP32, N, C));
    hs_tensor tw = on_npu(hs_view1(dw, HS_FP32, C)), tm = on_npu(hs_view1(dm, HS_FP32, N));
    hs_tensor tr = on_npu(hs_view1(dr, HS_FP32, N)), tdi = on_npu(hs_view2(ddi, HS_FP32, N, C));
    hs_tensor tdw = on_npu(hs_view1(ddw, HS_FP32, C)), tdb = on_npu(hs_view1(ddb, HS_FP32, C));
    const double t0 = clock_of(d);
    hs_tensor *pdi = want & 1 ? &tdi : NULL, *pdw = want & 2 ? &tdw : NULL, *pdb = want & 4 ? &tdb : NULL;
    if (ln)
        assert_int_equal(hs_layernorm_backward(pdi, pdw, pdb, &tdy, &tx, &tw, &tm, &tr), HS_OK);
    else
        assert_int_equal(hs_rmsnorm_backward(pdi, pdw, &tdy, &tx, &tw, &tr), HS_OK);
    const cost c = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    npu_down(d, exec ? io->dinp : NULL, ddi, N * C);
    npu_down(d, exec ? io->dw : NULL, ddw, C);
    npu_down(d, exec ? io->db : NULL, ddb, C);
    npu_down(d, NULL, ddy, N * C);
    npu_down(d, NULL, dx, N * C);
    npu_down(d, NULL, dw, C);
    npu_down(d, NULL, dm, N);
    npu_down(d, NULL, dr, N);
    return c;
}

/* want: bit 0 dinp, bit 1 dw, bit 2 db (LayerNorm). */
static void norm_backward_case(devs *v, int ln, int64_t N, int64_t C, int want)
{
    char what[80];
    float *x = rnd(N * C, 2.0, 4), *w = rnd(C, 1.0, 5), *b = rnd(C, 1.0, 6), *dy = rnd(N * C, 1.0, 7);
    float *out = fz(N * C), *mean = fz(N), *rstd = fz(N);
    hs_tensor to = hs_view2(out, HS_FP32, N, C), tx = hs_view2(x, HS_FP32, N, C), tw = hs_view1(w, HS_FP32, C);
    hs_tensor tb = hs_view1(b, HS_FP32, C), tm = hs_view1(mean, HS_FP32, N), tr = hs_view1(rstd, HS_FP32, N);
    if (ln)
        assert_int_equal(hs_layernorm_forward(&to, &tm, &tr, &tx, &tw, &tb, 1e-5f), HS_OK);
    else
        assert_int_equal(hs_rmsnorm_forward(&to, &tr, &tx, &tw, 1e-5f), HS_OK);
    float *di0 = rnd(N * C, 1.0, 8), *dw0 = rnd(C, 1.0, 9), *db0 = rnd(C, 1.0, 10);
    norm_bwd_io ref = {dy, x, w, mean, rstd, dup_f(di0, N * C), dup_f(dw0, C), dup_f(db0, C)};
    norm_bwd_io npu = {dy, x, w, mean, rstd, dup_f(di0, N * C), dup_f(dw0, C), dup_f(db0, C)};
    norm_bwd_io est = npu;
    hs_tensor tdy = hs_view2(dy, HS_FP32, N, C), tdi = hs_view2(ref.dinp, HS_FP32, N, C);
    hs_tensor tdw = hs_view1(ref.dw, HS_FP32, C), tdb = hs_view1(ref.db, HS_FP32, C);
    hs_tensor *pdi = want & 1 ? &tdi : NULL, *pdw = want & 2 ? &tdw : NULL, *pdb = want & 4 ? &tdb : NULL;
    if (ln)
        assert_int_equal(hs_layernorm_backward(pdi, pdw, pdb, &tdy, &tx, &tw, &tm, &tr), HS_OK);
    else
        assert_int_equal(hs_rmsnorm_backward(pdi, pdw, &tdy, &tx, &tw, &tr), HS_OK);
    const cost ce = norm_bwd_on(v->exec, ln, &npu, N, C, want);
    const cost cs = norm_bwd_on(v->est, ln, &est, N, C, want);
    snprintf(what, sizeof what, "%s backward %lldx%lld want %d", ln ? "layernorm" : "rmsnorm", (long long)N,
             (long long)C, want);
    same_cost(what, ce, cs);
    agree(what, npu.dinp, ref.dinp, N * C);
    agree(what, npu.dw, ref.dw, C);
    agree(what, npu.db, ref.db, C);
    free(x), free(w), free(b), free(dy), free(out), free(mean), free(rstd), free(di0), free(dw0), free(db0);
    free(ref.dinp), free(ref.dw), free(ref.db), free(npu.dinp), free(npu.dw), free(npu.db);
}

static void test_norm_backward(void **state)
{
    (void)state;
    devs v = devs_new();
    for (size_t s = 0; s < NSHAPES; s++)
        for (int ln = 0; ln < 2; ln++)
            norm_backward_case(&v, ln, SHAPES[s][0], SHAPES[s][1], 7);
    for (int want = 1; want < 7; want++) /* each subset of the gradients (RMSNorm has no db) */
        for (int ln = want & 3 ? 0 : 1; ln < 2; ln++) {
            norm_backward_case(&v, ln, 33, 100, want);
            norm_backward_case(&v, ln, 3, 10000, want);
        }
    devs_free(&v);
}

/* ---------------------------------------------------------- bias + GELU */

static cost gelu_fwd_on(hs_npu *d, const float *x, const float *bias, float *out, int64_t N, int64_t C)
{
    npu_use(d);
    float *dx = npu_up(d, x, N * C), *db = bias ? npu_up(d, bias, C) : NULL, *dout = npu_up(d, NULL, N * C);
    hs_tensor to = on_npu(hs_view2(dout, HS_FP32, N, C)), tx = on_npu(hs_view2(dx, HS_FP32, N, C));
    hs_tensor tb = on_npu(hs_view1(db ? db : dx, HS_FP32, C));
    const double t0 = clock_of(d);
    assert_int_equal(hs_bias_gelu_forward(&to, &tx, db ? &tb : NULL), HS_OK);
    const cost c = cost_since(d, t0);
    npu_down(d, out, dout, N * C);
    npu_down(d, NULL, dx, N * C);
    if (db)
        npu_down(d, NULL, db, C);
    return c;
}

static cost gelu_bwd_on(hs_npu *d, const float *dy, const float *x, const float *bias, float *dx, float *dbias,
                        int64_t N, int64_t C)
{
    npu_use(d);
    float *ddy = npu_up(d, dy, N * C), *dxx = npu_up(d, x, N * C), *db = bias ? npu_up(d, bias, C) : NULL;
    float *ddx = dx ? npu_up(d, dx, N * C) : NULL, *ddb = dbias ? npu_up(d, dbias, C) : NULL;
    hs_tensor tdy = on_npu(hs_view2(ddy, HS_FP32, N, C)), tx = on_npu(hs_view2(dxx, HS_FP32, N, C));
    hs_tensor tb = on_npu(hs_view1(db ? db : dxx, HS_FP32, C)), tdx = on_npu(hs_view2(ddx ? ddx : dxx, HS_FP32, N, C));
    hs_tensor tdb = on_npu(hs_view1(ddb ? ddb : dxx, HS_FP32, C));
    const double t0 = clock_of(d);
    assert_int_equal(hs_bias_gelu_backward(ddx ? &tdx : NULL, ddb ? &tdb : NULL, &tdy, &tx, db ? &tb : NULL), HS_OK);
    const cost c = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    if (ddx)
        npu_down(d, exec ? dx : NULL, ddx, N * C);
    if (ddb)
        npu_down(d, exec ? dbias : NULL, ddb, C);
    npu_down(d, NULL, ddy, N * C);
    npu_down(d, NULL, dxx, N * C);
    if (db)
        npu_down(d, NULL, db, C);
    return c;
}

static void gelu_case(devs *v, int64_t N, int64_t C, int with_bias)
{
    char what[64];
    float *x = rnd(N * C, 4.0, 11), *bias = with_bias ? rnd(C, 1.0, 12) : NULL, *dy = rnd(N * C, 1.0, 13);
    float *out = fz(N * C), *rout = fz(N * C);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), tb = hs_view1(bias ? bias : x, HS_FP32, C);
    hs_tensor tro = hs_view2(rout, HS_FP32, N, C), tdy = hs_view2(dy, HS_FP32, N, C);
    assert_int_equal(hs_bias_gelu_forward(&tro, &tx, bias ? &tb : NULL), HS_OK);
    snprintf(what, sizeof what, "bias_gelu forward %lldx%lld bias %d", (long long)N, (long long)C, with_bias);
    same_cost(what, gelu_fwd_on(v->exec, x, bias, out, N, C), gelu_fwd_on(v->est, x, bias, NULL, N, C));
    agree(what, out, rout, N * C);

    float *dx0 = rnd(N * C, 1.0, 14), *db0 = rnd(C, 1.0, 15);
    float *rdx = dup_f(dx0, N * C), *rdb = dup_f(db0, C), *ndx = dup_f(dx0, N * C), *ndb = dup_f(db0, C);
    hs_tensor trdx = hs_view2(rdx, HS_FP32, N, C), trdb = hs_view1(rdb, HS_FP32, C);
    assert_int_equal(hs_bias_gelu_backward(&trdx, with_bias ? &trdb : NULL, &tdy, &tx, bias ? &tb : NULL), HS_OK);
    snprintf(what, sizeof what, "bias_gelu backward %lldx%lld bias %d", (long long)N, (long long)C, with_bias);
    same_cost(what, gelu_bwd_on(v->exec, dy, x, bias, ndx, with_bias ? ndb : NULL, N, C),
              gelu_bwd_on(v->est, dy, x, bias, dx0, with_bias ? db0 : NULL, N, C));
    agree(what, ndx, rdx, N * C);
    agree(what, ndb, rdb, C);
    /* dbias alone */
    memcpy(ndb, db0, C * sizeof *ndb);
    memcpy(rdb, db0, C * sizeof *rdb);
    assert_int_equal(hs_bias_gelu_backward(NULL, &trdb, &tdy, &tx, bias ? &tb : NULL), HS_OK);
    same_cost(what, gelu_bwd_on(v->exec, dy, x, bias, NULL, ndb, N, C),
              gelu_bwd_on(v->est, dy, x, bias, NULL, dx0, N, C));
    agree(what, ndb, rdb, C);
    free(x), free(bias), free(dy), free(out), free(rout), free(dx0), free(db0), free(rdx), free(rdb), free(ndx);
    free(ndb);
}

static void test_gelu(void **state)
{
    (void)state;
    devs v = devs_new();
    for (size_t s = 0; s < NSHAPES; s++)
        for (int bias = 0; bias < 2; bias++)
            gelu_case(&v, SHAPES[s][0], SHAPES[s][1], bias);
    for (int bias = 0; bias < 2; bias++) /* several column chunks per block of the backward */
        gelu_case(&v, 2, 30001, bias);
    devs_free(&v);
}

/* ---------------------------------------------------------------- SwiGLU */

static cost swiglu_on(hs_npu *d, const float *inp, const float *dy, float *out, float *dinp, int64_t N, int64_t F)
{
    npu_use(d);
    float *di = npu_up(d, inp, N * 2 * F), *ddy = npu_up(d, dy, N * F), *dout = npu_up(d, NULL, N * F), *ddi = npu_up(d, dinp, N * 2 * F);
    hs_tensor ti = on_npu(hs_view2(di, HS_FP32, N, 2 * F)), to = on_npu(hs_view2(dout, HS_FP32, N, F));
    hs_tensor tdy = on_npu(hs_view2(ddy, HS_FP32, N, F)), tdi = on_npu(hs_view2(ddi, HS_FP32, N, 2 * F));
    const double t0 = clock_of(d);
    assert_int_equal(hs_swiglu_forward(&to, &ti), HS_OK);
    assert_int_equal(hs_swiglu_backward(&tdi, &tdy, &ti), HS_OK);
    const cost c = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    npu_down(d, exec ? out : NULL, dout, N * F);
    npu_down(d, exec ? dinp : NULL, ddi, N * 2 * F);
    npu_down(d, NULL, di, N * 2 * F);
    npu_down(d, NULL, ddy, N * F);
    return c;
}

static void test_swiglu(void **state)
{
    (void)state;
    devs v = devs_new();
    for (size_t s = 0; s < NSHAPES; s++) {
        const int64_t N = SHAPES[s][0], F = SHAPES[s][1];
        char what[64];
        float *inp = rnd(N * 2 * F, 6.0, 21), *dy = rnd(N * F, 1.0, 22), *di0 = rnd(N * 2 * F, 1.0, 23);
        float *rout = fz(N * F), *out = fz(N * F), *rdi = dup_f(di0, N * 2 * F), *ndi = dup_f(di0, N * 2 * F);
        hs_tensor ti = hs_view2(inp, HS_FP32, N, 2 * F), to = hs_view2(rout, HS_FP32, N, F);
        hs_tensor tdy = hs_view2(dy, HS_FP32, N, F), tdi = hs_view2(rdi, HS_FP32, N, 2 * F);
        assert_int_equal(hs_swiglu_forward(&to, &ti), HS_OK);
        assert_int_equal(hs_swiglu_backward(&tdi, &tdy, &ti), HS_OK);
        snprintf(what, sizeof what, "swiglu %lldx%lld", (long long)N, (long long)F);
        same_cost(what, swiglu_on(v.exec, inp, dy, out, ndi, N, F), swiglu_on(v.est, inp, dy, NULL, di0, N, F));
        agree(what, out, rout, N * F);
        agree(what, ndi, rdi, N * 2 * F);
        free(inp), free(dy), free(di0), free(rout), free(out), free(rdi), free(ndi);
    }
    devs_free(&v);
}

/* -------------------------------------------------------------- residual */

static cost residual_on(hs_npu *d, const float *a, const float *b, const float *dy, float *out, float *da,
                        float *db, int64_t n, int alias)
{
    npu_use(d);
    float *pa = npu_up(d, a, n), *pb = npu_up(d, b, n), *pdy = npu_up(d, dy, n), *pda = npu_up(d, da, n), *pdb = npu_up(d, db, n);
    float *po = alias ? pb : npu_up(d, NULL, n);
    hs_tensor ta = on_npu(hs_view1(pa, HS_FP32, n)), tb = on_npu(hs_view1(pb, HS_FP32, n));
    hs_tensor to = on_npu(hs_view1(po, HS_FP32, n)), tdy = on_npu(hs_view1(pdy, HS_FP32, n));
    hs_tensor tda = on_npu(hs_view1(pda, HS_FP32, n)), tdb = on_npu(hs_view1(pdb, HS_FP32, n));
    const double t0 = clock_of(d);
    assert_int_equal(hs_residual_forward(&to, &ta, &tb), HS_OK);
    assert_int_equal(hs_residual_backward(&tda, &tdb, &tdy), HS_OK);
    assert_int_equal(hs_residual_backward(NULL, &tdb, &tdy), HS_OK);
    const cost c = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    if (!alias)
        npu_down(d, exec ? out : NULL, po, n);
    npu_down(d, exec && alias ? out : NULL, pb, n);
    npu_down(d, exec ? da : NULL, pda, n);
    npu_down(d, exec ? db : NULL, pdb, n);
    npu_down(d, NULL, pa, n);
    npu_down(d, NULL, pdy, n);
    return c;
}

static void test_residual(void **state)
{
    (void)state;
    devs v = devs_new();
    const int64_t sizes[] = {1, 13, 100, 777, 64 * 1024 + 3, 300001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int alias = 0; alias < 2; alias++) {
            const int64_t n = sizes[s];
            char what[64];
            float *a = rnd(n, 1.0, 31), *b = rnd(n, 1.0, 32), *dy = rnd(n, 1.0, 33), *da0 = rnd(n, 1.0, 34);
            float *db0 = rnd(n, 1.0, 35), *rout = fz(n), *out = fz(n), *rda = dup_f(da0, n), *rdb = dup_f(db0, n);
            float *nda = dup_f(da0, n), *ndb = dup_f(db0, n);
            hs_tensor ta = hs_view1(a, HS_FP32, n), tb = hs_view1(b, HS_FP32, n), to = hs_view1(rout, HS_FP32, n);
            hs_tensor tdy = hs_view1(dy, HS_FP32, n), tda = hs_view1(rda, HS_FP32, n), tdb = hs_view1(rdb, HS_FP32, n);
            assert_int_equal(hs_residual_forward(&to, &ta, &tb), HS_OK);
            assert_int_equal(hs_residual_backward(&tda, &tdb, &tdy), HS_OK);
            assert_int_equal(hs_residual_backward(NULL, &tdb, &tdy), HS_OK);
            snprintf(what, sizeof what, "residual %lld alias %d", (long long)n, alias);
            same_cost(what, residual_on(v.exec, a, b, dy, out, nda, ndb, n, alias),
                      residual_on(v.est, a, b, dy, NULL, da0, db0, n, alias));
            agree(what, out, rout, n);
            agree(what, nda, rda, n);
            agree(what, ndb, rdb, n);
            free(a), free(b), free(dy), free(da0), free(db0), free(rout), free(out), free(rda), free(rdb);
            free(nda), free(ndb);
        }
    devs_free(&v);
}

/* ------------------------------------------------------------- optimizer */

static cost adamw_on(hs_npu *d, float *p, const float *g, float *m, float *vv, int64_t n, const hs_adamw_params *hp)
{
    npu_use(d);
    float *pp = npu_up(d, p, n), *pg = npu_up(d, g, n), *pm = npu_up(d, m, n), *pv = npu_up(d, vv, n);
    hs_tensor tp = on_npu(hs_view1(pp, HS_FP32, n)), tg = on_npu(hs_view1(pg, HS_FP32, n));
    hs_tensor tm = on_npu(hs_view1(pm, HS_FP32, n)), tv = on_npu(hs_view1(pv, HS_FP32, n));
    const double t0 = clock_of(d);
    assert_int_equal(hs_adamw_update(&tp, &tg, &tm, &tv, hp), HS_OK);
    const cost c = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    npu_down(d, exec ? p : NULL, pp, n);
    npu_down(d, exec ? m : NULL, pm, n);
    npu_down(d, exec ? vv : NULL, pv, n);
    npu_down(d, NULL, pg, n);
    return c;
}

static void test_adamw(void **state)
{
    (void)state;
    devs v = devs_new();
    const int64_t sizes[] = {1, 13, 777, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int64_t step = 1; step <= 3; step += 2) {
            const int64_t n = sizes[s];
            char what[64];
            hs_adamw_params hp = hs_adamw_params_default();
            hp.lr = 1e-2f;
            hp.step = step;
            hp.grad_scale = 0.5f;
            float *p = rnd(n, 1.0, 41), *g = rnd(n, 1.0, 42), *m = rnd(n, 0.1, 43), *vv = rnd(n, 0.01, 44);
            for (int64_t i = 0; i < n; i++)
                vv[i] = fabsf(vv[i]);
            float *rp = dup_f(p, n), *rm = dup_f(m, n), *rv = dup_f(vv, n);
            hs_tensor tp = hs_view1(rp, HS_FP32, n), tg = hs_view1(g, HS_FP32, n), tm = hs_view1(rm, HS_FP32, n);
            hs_tensor tv = hs_view1(rv, HS_FP32, n);
            assert_int_equal(hs_adamw_update(&tp, &tg, &tm, &tv, &hp), HS_OK);
            float *np_ = dup_f(p, n), *nm = dup_f(m, n), *nv = dup_f(vv, n);
            snprintf(what, sizeof what, "adamw %lld step %lld", (long long)n, (long long)step);
            same_cost(what, adamw_on(v.exec, np_, g, nm, nv, n, &hp), adamw_on(v.est, p, g, m, vv, n, &hp));
            agree(what, np_, rp, n);
            agree(what, nm, rm, n);
            agree(what, nv, rv, n);
            free(p), free(g), free(m), free(vv), free(rp), free(rm), free(rv), free(np_), free(nm), free(nv);
        }
    devs_free(&v);
}

/* Global norm over three tensors, and in-place scaling. */
static cost norm_scale_on(hs_npu *d, float *const *x, const int64_t *n, double *norm, float *scaled)
{
    npu_use(d);
    hs_tensor t[3];
    for (int i = 0; i < 3; i++)
        t[i] = on_npu(hs_view1(npu_up(d, x[i], n[i]), HS_FP32, n[i]));
    const double t0 = clock_of(d);
    assert_int_equal(hs_grad_norm(t, 3, norm), HS_OK);
    assert_int_equal(hs_scale_inplace(&t[2], 0.25f), HS_OK);
    const cost c = cost_since(d, t0);
    for (int i = 0; i < 3; i++)
        npu_down(d, i == 2 && hs_npu_mode_of(d) == HS_NPU_EXECUTE ? scaled : NULL, t[i].data, n[i]);
    return c;
}

static void test_grad_norm_scale(void **state)
{
    (void)state;
    devs v = devs_new();
    const int64_t n[3] = {7, 100003, 777};
    float *x[3] = {rnd(n[0], 3.0, 51), rnd(n[1], 1.0, 52), rnd(n[2], 0.01, 53)};
    hs_tensor t[3];
    for (int i = 0; i < 3; i++)
        t[i] = hs_view1(x[i], HS_FP32, n[i]);
    double ref, got, dummy;
    assert_int_equal(hs_grad_norm(t, 3, &ref), HS_OK);
    float *scaled = fz(n[2]), *rscaled = dup_f(x[2], n[2]);
    hs_tensor ts = hs_view1(rscaled, HS_FP32, n[2]);
    assert_int_equal(hs_scale_inplace(&ts, 0.25f), HS_OK);
    same_cost("grad_norm + scale", norm_scale_on(v.exec, x, n, &got, scaled), norm_scale_on(v.est, x, n, &dummy, NULL));
    if (getenv("HS_TEST_VERBOSE") || !(fabs(got - ref) <= RTOL * ref))
        fprintf(stderr, "grad_norm: npu %.12g cpu %.12g (relative %.3g)\n", got, ref, fabs(got - ref) / ref);
    assert_true(fabs(got - ref) <= RTOL * ref);
    agree("scale", scaled, rscaled, n[2]);
    for (int i = 0; i < 3; i++)
        free(x[i]);
    free(scaled), free(rscaled);
    devs_free(&v);
}

/* ------------------------------------------------------------------ RoPE */

/* Forward then backward (into a fresh buffer, or in place when alias). */
static cost rope_on(hs_npu *d, const float *x, float *out, float *back, const int64_t *shape, int n_rot, int64_t pos0,
                    int alias)
{
    npu_use(d);
    const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    float *px = npu_up(d, x, n), *po = alias ? px : npu_up(d, NULL, n), *pb = alias ? px : npu_up(d, NULL, n);
    hs_tensor tx = on_npu(hs_view4(px, HS_FP32, shape[0], shape[1], shape[2], shape[3]));
    hs_tensor to = tx, tb = tx;
    to.data = po;
    tb.data = pb;
    double t0 = clock_of(d);
    assert_int_equal(hs_rope_forward(&to, &tx, n_rot, 10000.0f, pos0), HS_OK);
    const cost fwd = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    if (exec)
        assert_int_equal(hs_npu_memcpy_d2h(d, NULL, out, po, n * sizeof(float)), HS_OK);
    t0 = clock_of(d);
    assert_int_equal(hs_rope_backward(&tb, &to, n_rot, 10000.0f, pos0), HS_OK);
    cost c = cost_since(d, t0);
    c.seconds += fwd.seconds;
    npu_down(d, exec ? back : NULL, pb, n);
    if (!alias) {
        npu_down(d, NULL, po, n);
        npu_down(d, NULL, px, n);
    }
    return c;
}

static void test_rope(void **state)
{
    (void)state;
    devs v = devs_new();
    /* B, T, H, HD, n_rot: one pair, ragged head sizes, some heads copied,
     * all rotated, no head rotated, a token wider than UB (head groups) */
    const int64_t cases[][5] = {{1, 1, 1, 2, 1}, {2, 7, 3, 8, 2}, {3, 33, 4, 16, 4}, {1, 5, 2, 10, 1},
                                {2, 9, 3, 64, 0}, {1, 300, 2, 6, 1}, {1, 3, 48, 256, 40}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int alias = 0; alias < 2; alias++) {
            const int64_t *sh = cases[k], n = sh[0] * sh[1] * sh[2] * sh[3];
            const int n_rot = (int)sh[4];
            const int64_t pos0 = k % 2 ? 4093 : 0; /* some cases a slice further on in the sequence */
            char what[96];
            float *x = rnd(n, 1.0, 61), *rout = fz(n), *rback = fz(n), *out = fz(n), *back = fz(n);
            hs_tensor tx = hs_view4(x, HS_FP32, sh[0], sh[1], sh[2], sh[3]), to = tx, tb = tx;
            to.data = rout;
            tb.data = rback;
            assert_int_equal(hs_rope_forward(&to, &tx, n_rot, 10000.0f, pos0), HS_OK);
            assert_int_equal(hs_rope_backward(&tb, &to, n_rot, 10000.0f, pos0), HS_OK);
            snprintf(what, sizeof what, "rope [%lld,%lld,%lld,%lld] n_rot %d pos0 %lld alias %d", (long long)sh[0],
                     (long long)sh[1], (long long)sh[2], (long long)sh[3], n_rot, (long long)pos0, alias);
            same_cost(what, rope_on(v.exec, x, out, back, sh, n_rot, pos0, alias),
                      rope_on(v.est, x, NULL, NULL, sh, n_rot, pos0, alias));
            agree(what, out, rout, n);
            agree(what, back, rback, n);
            free(x), free(rout), free(rback), free(out), free(back);
        }
    devs_free(&v);
}

/* ------------------------------------------------------------- embedding */

static int32_t *up_i32(hs_npu *d, const int32_t *host, size_t n)
{
    void *p;
    assert_int_equal(hs_npu_malloc(d, n * sizeof(int32_t), &p), HS_OK);
    assert_int_equal(hs_npu_memcpy_h2d(d, NULL, p, host, n * sizeof(int32_t)), HS_OK);
    return p;
}

/* Forward (timed) and backward (timed) on device d: cost of each. */
typedef struct emb_io {
    const int32_t *tok;
    const float *wte, *wpe, *dy;
    float *out, *dwte, *dwpe; /* dwte, dwpe: in initial values, out results */
    int64_t B, T, C, V;
    int shard;   /* a vocab-parallel shard of rows [v0, v0 + V) */
    int64_t v0;
} emb_io;

static void embedding_on(hs_npu *d, emb_io *io, cost *fwd, cost *bwd)
{
    npu_use(d);
    const int64_t B = io->B, T = io->T, C = io->C, V = io->V, n = B * T * C;
    int32_t *pt = up_i32(d, io->tok, B * T);
    float *pwte = npu_up(d, io->wte, V * C), *pwpe = io->wpe ? npu_up(d, io->wpe, T * C) : NULL, *po = npu_up(d, NULL, n);
    float *pdy = npu_up(d, io->dy, n), *pdwte = npu_up(d, io->dwte, V * C), *pdwpe = npu_up(d, io->dwpe, T * C);
    hs_tensor tt = on_npu(hs_view2(pt, HS_INT32, B, T)), twte = on_npu(hs_view2(pwte, HS_FP32, V, C));
    hs_tensor twpe = on_npu(hs_view2(pwpe ? pwpe : pwte, HS_FP32, T, C)), to = on_npu(hs_view3(po, HS_FP32, B, T, C));
    hs_tensor tdy = on_npu(hs_view3(pdy, HS_FP32, B, T, C)), tdwte = on_npu(hs_view2(pdwte, HS_FP32, V, C));
    hs_tensor tdwpe = on_npu(hs_view2(pdwpe, HS_FP32, T, C));
    double t0 = clock_of(d);
    assert_int_equal(io->shard ? hs_embedding_shard_forward(&to, &tt, &twte, pwpe ? &twpe : NULL, io->v0)
                               : hs_embedding_forward(&to, &tt, &twte, pwpe ? &twpe : NULL),
                     HS_OK);
    *fwd = cost_since(d, t0);
    t0 = clock_of(d);
    assert_int_equal(io->shard ? hs_embedding_shard_backward(&tdwte, pwpe ? &tdwpe : NULL, &tdy, &tt, io->v0)
                               : hs_embedding_backward(&tdwte, pwpe ? &tdwpe : NULL, &tdy, &tt),
                     HS_OK);
    *bwd = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    npu_down(d, exec ? io->out : NULL, po, n);
    npu_down(d, exec ? io->dwte : NULL, pdwte, V * C);
    npu_down(d, exec ? io->dwpe : NULL, pdwpe, T * C);
    assert_int_equal(hs_npu_free_mem(d, pt), HS_OK);
    npu_down(d, NULL, pwte, V * C);
    if (pwpe)
        npu_down(d, NULL, pwpe, T * C);
    npu_down(d, NULL, pdy, n);
}

/* One embedding on both devices against the CPU: the whole table, or
 * (shard) a vocab-parallel shard of rows [v0, v0 + V) of a vocabulary of
 * v0 + 3V, whose tokens are mostly other shards'. */
static void embedding_case(devs *v, int64_t B, int64_t T, int64_t C, int64_t V, int with_wpe, int zero_tokens,
                           int shard, int64_t v0)
{
    char what[112];
    const int64_t n = B * T * C, ids = shard ? v0 + 3 * V : V;
    int32_t *tok = calloc(B * T, sizeof *tok);
    assert_non_null(tok);
    uint64_t st = 77;
    for (int64_t i = 0; i < B * T && !zero_tokens; i++)
        tok[i] = (int32_t)(gc_rand(&st) * (double)ids);
    float *wte = rnd(V * C, 1.0, 71), *wpe = with_wpe ? rnd(T * C, 1.0, 72) : NULL, *dy = rnd(n, 1.0, 73);
    float *dwte0 = rnd(V * C, 1.0, 74), *dwpe0 = rnd(T * C, 1.0, 75);
    float *rout = fz(n), *rdwte = dup_f(dwte0, V * C), *rdwpe = dup_f(dwpe0, T * C);
    hs_tensor tt = hs_view2(tok, HS_INT32, B, T), twte = hs_view2(wte, HS_FP32, V, C);
    hs_tensor twpe = hs_view2(wpe ? wpe : wte, HS_FP32, T, C), to = hs_view3(rout, HS_FP32, B, T, C);
    hs_tensor tdy = hs_view3(dy, HS_FP32, B, T, C), tdwte = hs_view2(rdwte, HS_FP32, V, C);
    hs_tensor tdwpe = hs_view2(rdwpe, HS_FP32, T, C);
    assert_int_equal(shard ? hs_embedding_shard_forward(&to, &tt, &twte, wpe ? &twpe : NULL, v0)
                           : hs_embedding_forward(&to, &tt, &twte, wpe ? &twpe : NULL),
                     HS_OK);
    assert_int_equal(shard ? hs_embedding_shard_backward(&tdwte, wpe ? &tdwpe : NULL, &tdy, &tt, v0)
                           : hs_embedding_backward(&tdwte, wpe ? &tdwpe : NULL, &tdy, &tt),
                     HS_OK);
    emb_io ex = {tok, wte, wpe, dy, fz(n), dup_f(dwte0, V * C), dup_f(dwpe0, T * C), B, T, C, V, shard, v0};
    emb_io es = {tok, wte, wpe, dy, NULL, dwte0, dwpe0, B, T, C, V, shard, v0};
    cost fe, be, fs, bs;
    embedding_on(v->exec, &ex, &fe, &be);
    embedding_on(v->est, &es, &fs, &bs);
    snprintf(what, sizeof what, "embedding [%lld,%lld,%lld] V %lld wpe %d zero tokens %d shard %d", (long long)B,
             (long long)T, (long long)C, (long long)V, with_wpe, zero_tokens, shard);
    /* the gathers cost the same for any rows (hs_npu_copy_in_gather), so
     * estimate mode, which gathers row 0, costs what execute mode does */
    same_cost(what, fe, fs);
    same_cost(what, be, bs);
    agree(what, ex.out, rout, n);
    agree(what, ex.dwte, rdwte, V * C);
    agree(what, ex.dwpe, rdwpe, T * C);
    /* the scatter-add sums in token order, as the CPU does */
    assert_memory_equal(ex.dwte, rdwte, V * C * sizeof(float));
    free(tok), free(wte), free(wpe), free(dy), free(dwte0), free(dwpe0), free(rout), free(rdwte), free(rdwpe);
    free(ex.out), free(ex.dwte), free(ex.dwpe);
}

/* A vocab-parallel shard, with and without positions. */
static void test_embedding_shard(void **state)
{
    (void)state;
    devs v = devs_new();
    for (int with_wpe = 0; with_wpe < 2; with_wpe++)
        embedding_case(&v, 2, 9, 40, 17, with_wpe, 0, 1, 10);
    devs_free(&v);
}

static void test_embedding(void **state)
{
    (void)state;
    devs v = devs_new();
    /* B, T, C, V: one token, ragged, repeated tokens, rows wider than a tile */
    const int64_t cases[][4] = {{1, 1, 8, 5}, {2, 7, 13, 11}, {3, 33, 100, 50}, {4, 300, 24, 3}, {1, 3, 13000, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int wpe = 0; wpe < 2; wpe++)
            for (int zero = 0; zero < 2; zero++)
                embedding_case(&v, cases[k][0], cases[k][1], cases[k][2], cases[k][3], wpe, zero, 0, 0);
    devs_free(&v);
}

/* --------------------------------------------------------- cross-entropy */

/* Forward, then backward into dlogits (or over the logits when alias). */
/* Forward and backward of a cross-entropy (a vocab-parallel shard of
 * columns [v0, v0 + V) when shard) on device d: out gets the losses (a
 * shard: x[target]); the backward uses lse_in when given (a shard's
 * combined lse), else the forward's. */
static void ce_on(hs_npu *d, const float *x, const int32_t *tg, float *out, float *lse, float *dx, int64_t N,
                  int64_t V, int alias, int shard, int64_t v0, cost *fwd, cost *bwd)
{
    npu_use(d);
    float *px = npu_up(d, x, N * V), *pl = npu_up(d, NULL, N), *pe = npu_up(d, NULL, N), *pd = alias ? px : npu_up(d, NULL, N * V);
    int32_t *pt = up_i32(d, tg, N);
    hs_tensor tx = on_npu(hs_view2(px, HS_FP32, N, V)), tt = on_npu(hs_view1(pt, HS_INT32, N));
    hs_tensor tl = on_npu(hs_view1(pl, HS_FP32, N)), te = on_npu(hs_view1(pe, HS_FP32, N));
    hs_tensor td = on_npu(hs_view2(pd, HS_FP32, N, V));
    double t0 = clock_of(d);
    assert_int_equal(shard ? hs_cross_entropy_shard_forward(&tl, &te, &tx, &tt, v0)
                           : hs_cross_entropy_forward(&tl, &te, &tx, &tt),
                     HS_OK);
    *fwd = cost_since(d, t0);
    t0 = clock_of(d);
    assert_int_equal(shard ? hs_cross_entropy_shard_backward(&td, &tx, &te, &tt, v0, 0.37f)
                           : hs_cross_entropy_backward(&td, &tx, &te, &tt, 0.37f),
                     HS_OK);
    *bwd = cost_since(d, t0);
    const int exec = hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    npu_down(d, exec ? out : NULL, pl, N);
    npu_down(d, exec ? lse : NULL, pe, N);
    npu_down(d, exec ? dx : NULL, pd, N * V);
    if (!alias)
        npu_down(d, NULL, px, N * V);
    assert_int_equal(hs_npu_free_mem(d, pt), HS_OK);
}

static void test_cross_entropy(void **state)
{
    (void)state;
    devs v = devs_new();
    const int64_t shapes[][2] = {{1, 8}, {7, 13}, {33, 100}, {5, 777}, {3, 30001}, {2, 50257}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int alias = 0; alias < 2; alias++) {
            const int64_t N = shapes[k][0], V = shapes[k][1];
            char what[64];
            float *x = rnd(N * V, 8.0, 81);
            int32_t *tg = calloc(N, sizeof *tg);
            assert_non_null(tg);
            uint64_t st = 82;
            for (int64_t i = 0; i < N; i++) /* every third row ignored (target -1) */
                tg[i] = i % 3 == 1 ? -1 : (int32_t)(gc_rand(&st) * (double)V);
            float *rl = fz(N), *re = fz(N), *rd = fz(N * V), *nl = fz(N), *ne = fz(N), *nd = fz(N * V);
            hs_tensor tx = hs_view2(x, HS_FP32, N, V), tt = hs_view1(tg, HS_INT32, N);
            hs_tensor tl = hs_view1(rl, HS_FP32, N), te = hs_view1(re, HS_FP32, N), td = hs_view2(rd, HS_FP32, N, V);
            assert_int_equal(hs_cross_entropy_forward(&tl, &te, &tx, &tt), HS_OK);
            assert_int_equal(hs_cross_entropy_backward(&td, &tx, &te, &tt, 0.37f), HS_OK);
            cost fe, be, fs, bs;
            ce_on(v.exec, x, tg, nl, ne, nd, N, V, alias, 0, 0, &fe, &be);
            ce_on(v.est, x, tg, NULL, NULL, NULL, N, V, alias, 0, 0, &fs, &bs);
            snprintf(what, sizeof what, "cross_entropy %lldx%lld alias %d", (long long)N, (long long)V, alias);
            same_cost(what, fe, fs);
            same_cost(what, be, bs);
            agree(what, ne, re, N);
            agree_at(what, nl, rl, N, 8.0); /* lse - x[t]: rounding of the logits' scale */
            agree(what, nd, rd, N * V);
            free(x), free(tg), free(rl), free(re), free(rd), free(nl), free(ne), free(nd);
        }
    devs_free(&v);
}

/* A vocab-parallel shard (columns [v0, v0 + V) of a vocabulary of Vt):
 * the NPU's x[target], local lse and gradient against the CPU's shard
 * bodies, with targets in this shard, in others and ignored; estimate
 * mode costs what execute mode does. */
static void test_cross_entropy_shard(void **state)
{
    (void)state;
    devs v = devs_new();
    const int64_t shapes[][3] = {{7, 13, 5}, {33, 100, 300}, {3, 30001, 12000}}; /* N, V, v0 */
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int alias = 0; alias < 2; alias++) {
            const int64_t N = shapes[k][0], V = shapes[k][1], v0 = shapes[k][2], Vt = v0 + 2 * V;
            char what[80];
            float *x = rnd(N * V, 8.0, 91);
            int32_t *tg = calloc(N, sizeof *tg);
            assert_non_null(tg);
            uint64_t st = 92;
            for (int64_t i = 0; i < N; i++) /* every third row ignored, the others anywhere in [0, Vt) */
                tg[i] = i % 3 == 1 ? -1 : i % 3 == 0 ? (int32_t)(v0 + (int64_t)(gc_rand(&st) * (double)V))
                                                     : (int32_t)(gc_rand(&st) * (double)Vt);
            float *rx = fz(N), *re = fz(N), *rd = fz(N * V), *nx = fz(N), *ne = fz(N), *nd = fz(N * V);
            hs_tensor tx = hs_view2(x, HS_FP32, N, V), tt = hs_view1(tg, HS_INT32, N);
            hs_tensor tl = hs_view1(rx, HS_FP32, N), te = hs_view1(re, HS_FP32, N), td = hs_view2(rd, HS_FP32, N, V);
            assert_int_equal(hs_cross_entropy_shard_forward(&tl, &te, &tx, &tt, v0), HS_OK);
            assert_int_equal(hs_cross_entropy_shard_backward(&td, &tx, &te, &tt, v0, 0.37f), HS_OK);
            cost fe, be, fs, bs;
            ce_on(v.exec, x, tg, nx, ne, nd, N, V, alias, 1, v0, &fe, &be);
            ce_on(v.est, x, tg, NULL, NULL, NULL, N, V, alias, 1, v0, &fs, &bs);
            snprintf(what, sizeof what, "cross_entropy shard %lldx%lld at %lld alias %d", (long long)N, (long long)V,
                     (long long)v0, alias);
            same_cost(what, fe, fs);
            same_cost(what, be, bs);
            assert_memory_equal(nx, rx, (size_t)N * sizeof(float)); /* x[target] or 0: copied, not computed */
            agree(what, ne, re, N);
            agree(what, nd, rd, N * V);
            free(x), free(tg), free(rx), free(re), free(rd), free(nx), free(ne), free(nd);
        }
    devs_free(&v);
}

/* ------------------------------------------------------------- devices */

/* Mixed CPU and NPU tensors are HS_ERR_DEVICE; so are tensors of two
 * NPUs in one op. */
static void test_mixed_devices(void **state)
{
    (void)state;
    devs v = devs_new();
    npu_use(v.exec);
    float host[64] = {0};
    float *dev = npu_up(v.exec, host, 64);
    hs_tensor hx = hs_view2(host, HS_FP32, 4, 16), hw = hs_view1(host, HS_FP32, 16), hr = hs_view1(host, HS_FP32, 4);
    hs_tensor nx = on_npu(hs_view2(dev, HS_FP32, 4, 16)), nw = on_npu(hs_view1(dev, HS_FP32, 16));
    hs_tensor nr = on_npu(hs_view1(dev, HS_FP32, 4));
    EXPECT_ERR(hs_rmsnorm_forward(&nx, &nr, &nx, &hw, 1e-5f), HS_ERR_DEVICE);
    EXPECT_ERR(hs_rmsnorm_forward(&hx, &hr, &hx, &nw, 1e-5f), HS_ERR_DEVICE);
    EXPECT_ERR(hs_layernorm_forward(&nx, NULL, NULL, &nx, &nw, &hw, 1e-5f), HS_ERR_DEVICE);
    EXPECT_ERR(hs_layernorm_backward(&nx, &hw, NULL, &nx, &nx, &nw, &nr, &nr), HS_ERR_DEVICE);
    EXPECT_ERR(hs_rmsnorm_backward(&hx, NULL, &hx, &hx, &hw, &nr), HS_ERR_DEVICE);
    EXPECT_ERR(hs_bias_gelu_forward(&hx, &nx, NULL), HS_ERR_DEVICE);
    EXPECT_ERR(hs_bias_gelu_backward(&nx, &hw, &nx, &nx, NULL), HS_ERR_DEVICE);
    hs_tensor hy = hs_view2(host, HS_FP32, 4, 8);
    EXPECT_ERR(hs_swiglu_forward(&hy, &nx), HS_ERR_DEVICE);
    EXPECT_ERR(hs_swiglu_backward(&nx, &hy, &nx), HS_ERR_DEVICE);
    EXPECT_ERR(hs_residual_forward(&nx, &nx, &hx), HS_ERR_DEVICE);
    EXPECT_ERR(hs_residual_backward(&hx, NULL, &nx), HS_ERR_DEVICE);
    hs_adamw_params hp = hs_adamw_params_default();
    EXPECT_ERR(hs_adamw_update(&nx, &nx, &hx, &nx, &hp), HS_ERR_DEVICE);
    const hs_tensor mixed[2] = {nx, hx};
    double norm;
    EXPECT_ERR(hs_grad_norm(mixed, 2, &norm), HS_ERR_DEVICE);
    hs_tensor h4 = hs_view4(host, HS_FP32, 1, 2, 2, 16), n4 = on_npu(hs_view4(dev, HS_FP32, 1, 2, 2, 16));
    EXPECT_ERR(hs_rope_forward(&h4, &n4, 1, 10000.0f, 0), HS_ERR_DEVICE);
    EXPECT_ERR(hs_rope_backward(&n4, &h4, 1, 10000.0f, 0), HS_ERR_DEVICE);
    int32_t htok[4] = {0, 1, 2, 3};
    int32_t *dtok = up_i32(v.exec, htok, 4);
    hs_tensor ht = hs_view2(htok, HS_INT32, 1, 4), nt = on_npu(hs_view2(dtok, HS_INT32, 1, 4));
    hs_tensor h3 = hs_view3(host, HS_FP32, 1, 4, 16), n3 = on_npu(hs_view3(dev, HS_FP32, 1, 4, 16));
    EXPECT_ERR(hs_embedding_forward(&n3, &nt, &hx, NULL), HS_ERR_DEVICE);
    EXPECT_ERR(hs_embedding_forward(&h3, &ht, &nx, NULL), HS_ERR_DEVICE);
    EXPECT_ERR(hs_embedding_backward(&nx, NULL, &h3, &nt), HS_ERR_DEVICE);
    htok[2] = 9; /* out of range: named, as on the CPU */
    assert_int_equal(hs_npu_memcpy_h2d(v.exec, NULL, dtok, htok, sizeof htok), HS_OK);
    EXPECT_ERR(hs_embedding_forward(&n3, &nt, &nx, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tokens[0][2]"));
    hs_tensor n1 = on_npu(hs_view1(dev, HS_FP32, 1)), h1 = hs_view1(host, HS_FP32, 1);
    hs_tensor nl = on_npu(hs_view2(dev, HS_FP32, 1, 8)), hl = hs_view2(host, HS_FP32, 1, 8);
    hs_tensor nt1 = on_npu(hs_view1(dtok, HS_INT32, 1)), ht1 = hs_view1(htok, HS_INT32, 1);
    hs_tensor nt9 = on_npu(hs_view1(dtok + 2, HS_INT32, 1));
    EXPECT_ERR(hs_cross_entropy_forward(&h1, &n1, &nl, &nt1), HS_ERR_DEVICE);
    EXPECT_ERR(hs_cross_entropy_forward(&n1, &n1, &nl, &ht1), HS_ERR_DEVICE);
    EXPECT_ERR(hs_cross_entropy_backward(&hl, &nl, &n1, &nt1, 1.0f), HS_ERR_DEVICE);
    EXPECT_ERR(hs_cross_entropy_forward(&n1, &n1, &nl, &nt9), HS_ERR_INVALID_ARGUMENT); /* target 9, V = 8 */
    assert_non_null(strstr(hs_last_error(), "targets[0] = 9"));
    assert_int_equal(hs_npu_free_mem(v.exec, dtok), HS_OK);
    /* tensors of two NPUs in one call */
    float *other = npu_up(v.est, NULL, 64);
    hs_tensor ow = hs_on(hs_view1(other, HS_FP32, 16), hs_npu_device(v.est));
    EXPECT_ERR(hs_rmsnorm_forward(&nx, &nr, &nx, &ow, 1e-5f), HS_ERR_DEVICE);
    assert_non_null(strstr(hs_last_error(), "two NPUs"));
    npu_down(v.est, NULL, other, 64);
    npu_down(v.exec, NULL, dev, 64);
    devs_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_forward),
        cmocka_unit_test(test_norm_backward),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_grad_norm_scale),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_embedding_shard),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_cross_entropy_shard),
        cmocka_unit_test(test_mixed_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
