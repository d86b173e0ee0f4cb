/* NPU matmul: hs_matmul_forward and hs_matmul_backward on NPU tensors
 * (execute mode) against double references on the same fp16/bf16-rounded
 * inputs, the fused bias + GELU epilogue, estimate mode timing identical to execute mode,
 * the large-GEMM utilisation and time against the cube peak, small-GEMM
 * inefficiency, double buffering against the pipe overlap it promises,
 * and the dispatch errors.
 *
 * Tolerance: the cube sums exact fp16/bf16 products in fp32 in order of k,
 * so |out - ref| <= gamma_K * sum_k |a b| + |ref| * 2^-24 with
 * gamma_K = K u / (1 - K u), u = 2^-24 (Higham's bound for recursive
 * summation, plus the final rounding); the GELU epilogue adds a few fp32
 * ulps of the activation (checked at 4e-6 relative + 1e-6 absolute). */
#include "gradcheck.h"
#include "npu_fixture.h"

#include "hyperspeed.h"
#include "hyperspeed/npu.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#include <string.h>

/* |a - b| <= tol, in double. */
#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

/* An NPU tensor of the given shape whose device memory holds host (when
 * given, execute mode). */
static hs_tensor npu_tensor(hs_npu *d, hs_dtype dt, int ndim, int64_t d0, int64_t d1, const void *host)
{
    hs_tensor t = {NULL, {d0, d1, 1, 1}, ndim, dt, hs_npu_device(d), 0};
    const size_t bytes = hs_tensor_nbytes(&t);
    assert_int_equal(hs_npu_malloc(d, bytes, &t.data), HS_OK);
    if (host)
        assert_int_equal(hs_npu_memcpy_h2d(d, NULL, t.data, host, bytes), HS_OK);
    return t;
}

/* n random values rounded to dt (stored in h) and their exact values. */
static void rounded(uint16_t *h, double *ref, size_t n, hs_dtype dt, uint64_t seed)
{
    float *f = fz(n);
    gc_fill(f, NULL, n, 1.0, seed);
    for (size_t i = 0; i < n; i++) {
        h[i] = dt == HS_BF16 ? hs_fp32_to_bf16(f[i]) : hs_fp32_to_fp16(f[i]);
        ref[i] = dt == HS_BF16 ? hs_bf16_to_fp32(h[i]) : hs_fp16_to_fp32(h[i]);
    }
    free(f);
}

/* GELU, tanh approximation, in double. */
static double gelu(double u)
{
    return 0.5 * u * (1.0 + tanh(sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u)));
}

/* One forward on NPU d (execute mode) checked element by
 * element; gelu uses the fused NPU-only variant. Returns the launch stats. */
static hs_npu_launch_stats check_forward(hs_npu *d, int N, int C, int OC, hs_dtype dt, int with_bias, int with_gelu,
                                         uint64_t seed)
{
    uint16_t *ih = calloc((size_t)N * C, 2), *wh = calloc((size_t)OC * C, 2);
    double *ir = dz((size_t)N * C), *wr = dz((size_t)OC * C);
    float *bias = fz((size_t)OC), *out = fz((size_t)N * OC);
    assert_true(ih && wh);
    rounded(ih, ir, (size_t)N * C, dt, seed);
    rounded(wh, wr, (size_t)OC * C, dt, seed + 1);
    gc_fill(bias, NULL, (size_t)OC, 0.5, seed + 2);
    hs_tensor inp = npu_tensor(d, dt, 2, N, C, ih), w = npu_tensor(d, dt, 2, OC, C, wh);
    hs_tensor b = npu_tensor(d, HS_FP32, 1, OC, 1, bias), o = npu_tensor(d, HS_FP32, 2, N, OC, NULL);
    if (with_gelu)
        assert_int_equal(hs_npu_matmul_gelu_forward(hs_npu_device(d), o.data, inp.data, w.data,
                                                     with_bias ? b.data : NULL, N, C, OC, dt),
                         HS_OK);
    else
        assert_int_equal(hs_matmul_forward(&o, &inp, &w, with_bias ? &b : NULL), HS_OK);
    const hs_npu_launch_stats ls = hs_npu_last_launch(d);
    assert_int_equal(hs_npu_memcpy_d2h(d, NULL, out, o.data, sizeof(float) * N * OC), HS_OK);
    const double u = ldexp(1.0, -24), gamma = C * u / (1 - C * u);
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++) {
            double s = with_bias ? bias[oc] : 0.0, mag = fabs(s);
            for (int c = 0; c < C; c++) {
                s += ir[(size_t)n * C + c] * wr[(size_t)oc * C + c];
                mag += fabs(ir[(size_t)n * C + c] * wr[(size_t)oc * C + c]);
            }
            const double tol = gamma * mag + fabs(s) * u + 1e-30;
            const float got = out[(size_t)n * OC + oc];
            if (with_gelu)
                assert_near(got, gelu(s), 1.2 * tol + 4e-6 * fabs(gelu(s)) + 1e-6);
            else if (!(fabs(got - s) <= tol)) {
                fprintf(stderr, "%dx%dx%d out[%d,%d] = %.9g, ref %.9g, tol %.3g\n", N, C, OC, n, oc, got, s, tol);
                fail();
            }
        }
    hs_tensor *ts[] = {&inp, &w, &b, &o};
    for (int i = 0; i < 4; i++)
        assert_int_equal(hs_npu_free_mem(d, ts[i]->data), HS_OK);
    free(ih), free(wh), free(ir), free(wr), free(bias), free(out);
    return ls;
}

/* Execute mode on the "test" chip (2 cube cores): 1x1x1, ragged shapes,
 * several tiles over both cores, bf16 and fp16, with and without bias. */
static void test_forward_execute(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    npu_use(d);
    check_forward(d, 1, 1, 1, HS_BF16, 0, 0, 1);
    check_forward(d, 17, 33, 65, HS_BF16, 1, 0, 2);
    check_forward(d, 100, 70, 40, HS_FP16, 1, 0, 3);
    check_forward(d, 100, 70, 40, HS_BF16, 0, 0, 4);
    hs_npu_launch_stats ls = check_forward(d, 260, 300, 300, HS_FP16, 1, 0, 5); /* 3 x 2 tiles, K over 2 stages */
    assert_true(ls.cycles < ls.pipe_busy[HS_PIPE_MTE2]); /* two cores shared the tiles */
    check_forward(d, 300, 1100, 100, HS_BF16, 1, 0, 9); /* 3 tiles on 2 cores: the third split in 2 K parts */
    hs_npu_free(d);
}

/* The fused bias + GELU epilogue on the vector cores. */
static void test_forward_gelu(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    npu_use(d);
    check_forward(d, 17, 33, 65, HS_BF16, 1, 1, 6);
    hs_npu_launch_stats ls = check_forward(d, 150, 64, 300, HS_FP16, 1, 1, 7);
    assert_true(ls.pipe_busy[HS_PIPE_VECTOR] > 0 && ls.pipe_busy[HS_PIPE_MTE3] > 0);
    check_forward(d, 40, 48, 20, HS_FP16, 0, 1, 8);
    hs_npu_free(d);
}

/* |got - ref| <= tol element by element, naming the first miss. */
static void check_close(const char *what, const float *got, const double *ref, const double *tol, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - ref[i]) <= tol[i])) {
            fprintf(stderr, "%s[%zu] = %.9g, ref %.9g, tol %.3g\n", what, i, got[i], ref[i], tol[i]);
            fail();
        }
}

/* hs_matmul_backward on NPU tensors: gradients pre-filled (the op adds),
 * against double references on dout rounded to dt (the GEMMs) and on the
 * fp32 dout (dbias). */
static void check_backward(hs_npu *d, int N, int C, int OC, hs_dtype dt, uint64_t seed)
{
    const size_t nI = (size_t)N * C, nW = (size_t)OC * C, nO = (size_t)N * OC;
    uint16_t *ih = calloc(nI, 2), *wh = calloc(nW, 2), *oh = calloc(nO, 2);
    double *ir = dz(nI), *wr = dz(nW), *orr = dz(nO);
    float *dout = fz(nO), *pre_i = fz(nI), *pre_w = fz(nW), *pre_b = fz((size_t)OC);
    assert_true(ih && wh && oh);
    rounded(ih, ir, nI, dt, seed);
    rounded(wh, wr, nW, dt, seed + 1);
    rounded(oh, orr, nO, dt, seed + 2); /* orr: dout rounded to dt */
    gc_fill(dout, NULL, nO, 1.0, seed + 2);  /* the same values before rounding */
    gc_fill(pre_i, NULL, nI, 0.5, seed + 3);
    gc_fill(pre_w, NULL, nW, 0.5, seed + 4);
    gc_fill(pre_b, NULL, (size_t)OC, 0.5, seed + 5);
    hs_tensor inp = npu_tensor(d, dt, 2, N, C, ih), w = npu_tensor(d, dt, 2, OC, C, wh);
    hs_tensor to = npu_tensor(d, HS_FP32, 2, N, OC, dout), di = npu_tensor(d, HS_FP32, 2, N, C, pre_i);
    hs_tensor dw = npu_tensor(d, HS_FP32, 2, OC, C, pre_w), db = npu_tensor(d, HS_FP32, 1, OC, 1, pre_b);
    assert_int_equal(hs_matmul_backward(&di, &dw, &db, &to, &inp, &w), HS_OK);
    float *gi = fz(nI), *gw = fz(nW), *gb = fz((size_t)OC);
    assert_int_equal(hs_npu_memcpy_d2h(d, NULL, gi, di.data, nI * 4), HS_OK);
    assert_int_equal(hs_npu_memcpy_d2h(d, NULL, gw, dw.data, nW * 4), HS_OK);
    assert_int_equal(hs_npu_memcpy_d2h(d, NULL, gb, db.data, (size_t)OC * 4), HS_OK);
    const double u = ldexp(1.0, -24);
    double *ref = dz(nI + nW + OC), *tol = dz(nI + nW + OC);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) { /* dinp = pre + dout_r @ w */
            double s = 0, mag = 0;
            for (int o = 0; o < OC; o++) {
                s += orr[(size_t)n * OC + o] * wr[(size_t)o * C + c];
                mag += fabs(orr[(size_t)n * OC + o] * wr[(size_t)o * C + c]);
            }
            ref[(size_t)n * C + c] = pre_i[(size_t)n * C + c] + s;
            tol[(size_t)n * C + c] = OC * u / (1 - OC * u) * mag + 2 * u * (fabs(s) + fabs(pre_i[(size_t)n * C + c]));
        }
    check_close("dinp", gi, ref, tol, nI);
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) { /* dw = pre + dout_r^T @ inp */
            double s = 0, mag = 0;
            for (int n = 0; n < N; n++) {
                s += orr[(size_t)n * OC + o] * ir[(size_t)n * C + c];
                mag += fabs(orr[(size_t)n * OC + o] * ir[(size_t)n * C + c]);
            }
            ref[(size_t)o * C + c] = pre_w[(size_t)o * C + c] + s;
            tol[(size_t)o * C + c] = N * u / (1 - N * u) * mag + 2 * u * (fabs(s) + fabs(pre_w[(size_t)o * C + c]));
        }
    check_close("dw", gw, ref, tol, nW);
    for (int o = 0; o < OC; o++) { /* dbias = pre + sum_n dout (fp32 values) */
        double s = 0, mag = 0;
        for (int n = 0; n < N; n++) {
            s += dout[(size_t)n * OC + o];
            mag += fabs(dout[(size_t)n * OC + o]);
        }
        ref[o] = pre_b[o] + s;
        tol[o] = N * u / (1 - N * u) * mag + 2 * u * (fabs(s) + fabs(pre_b[o]));
    }
    check_close("dbias", gb, ref, tol, (size_t)OC);
    hs_tensor *ts[] = {&inp, &w, &to, &di, &dw, &db};
    for (int i = 0; i < 6; i++)
        assert_int_equal(hs_npu_free_mem(d, ts[i]->data), HS_OK);
    free(ih), free(wh), free(oh), free(ir), free(wr), free(orr), free(dout), free(pre_i), free(pre_w), free(pre_b);
    free(gi), free(gw), free(gb), free(ref), free(tol);
}

/* The backward: ragged shapes, several tiles, split tail tiles, and a
 * tall dout whose dbias rows spread over the vector cores. */
static void test_backward_execute(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    npu_use(d);
    check_backward(d, 17, 33, 65, HS_BF16, 11);
    check_backward(d, 100, 70, 40, HS_FP16, 12);
    check_backward(d, 300, 20, 30, HS_BF16, 13);
    check_backward(d, 1100, 200, 300, HS_FP16, 14); /* dw: 3 tiles on 2 cores, the third in 2 K parts */
    const size_t used = hs_npu_mem_used(d);
    assert_int_equal(used, 0); /* the workspace was released */
    hs_npu_free(d);
}

/* Launch stats of one GEMM on a fresh device of the preset and mode with
 * operands allocated (and, in execute mode, zero) on it; *stream_s (when
 * given) gets the stream time it took, launches before the GEMM's own
 * (the zero fill of split tiles) included. */
static hs_npu_launch_stats run_gemm(const char *preset, hs_npu_mode mode, int64_t M, int64_t K, int64_t N,
                                    int with_bias, int with_gelu, int single_buffer, double *stream_s)
{
    hs_npu *d = npu_make(preset, mode);
    hs_npu_gemm g = {.lda = K, .ldb = K, .b_trans = 1, .ldc = N, .c_dtype = HS_FP32, .dtype = HS_FP16, .m = M,
                     .n = N, .k = K, .gelu = with_gelu, .single_buffer = single_buffer};
    void *a, *b, *c, *bias;
    assert_int_equal(hs_npu_malloc(d, (size_t)(M * K * 2), &a), HS_OK);
    assert_int_equal(hs_npu_malloc(d, (size_t)(N * K * 2), &b), HS_OK);
    assert_int_equal(hs_npu_malloc(d, (size_t)(M * N * 4), &c), HS_OK);
    assert_int_equal(hs_npu_malloc(d, (size_t)(N * 4), &bias), HS_OK);
    g.a = a, g.b = b, g.c = c, g.bias = with_bias ? bias : NULL;
    const double t0 = hs_npu_stream_time(hs_npu_default_stream(d));
    assert_int_equal(hs_npu_gemm_run(d, NULL, "gemm", &g), HS_OK);
    if (stream_s)
        *stream_s = hs_npu_stream_time(hs_npu_default_stream(d)) - t0;
    hs_npu_launch_stats ls = hs_npu_last_launch(d);
    hs_npu_free(d);
    return ls;
}

/* Estimate mode runs the same instructions with the same timing. */
static void test_estimate_equals_execute(void **state)
{
    (void)state;
    const int shapes[][5] = {{1, 1, 1, 0, 0},       {17, 33, 65, 1, 0},  {100, 70, 40, 0, 1},
                             {260, 300, 300, 1, 0}, {300, 64, 520, 1, 1}, {300, 1100, 100, 1, 0}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        double tx, te;
        hs_npu_launch_stats x = run_gemm("test", HS_NPU_EXECUTE, s[0], s[1], s[2], s[3], s[4], 0, &tx);
        hs_npu_launch_stats e = run_gemm("test", HS_NPU_ESTIMATE, s[0], s[1], s[2], s[3], s[4], 0, &te);
        assert_int_equal(x.cycles, e.cycles);
        assert_memory_equal(x.pipe_busy, e.pipe_busy, sizeof x.pipe_busy);
        assert_int_equal(x.hbm_bytes, e.hbm_bytes);
        assert_int_equal(x.l2_bytes, e.l2_bytes);
        assert_true(x.seconds == e.seconds && tx == te);
    }
}

/* 4096^3 fp16 on 910B2 keeps the cube >= 90 % busy and takes (zero fill
 * of the split tail tiles included) within 10 % of 2 M N K / peak / 0.9;
 * 64^3 cannot fill it (< 30 %). */
static void test_utilisation_910b2(void **state)
{
    (void)state;
    hs_npu_spec s;
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    const double n = 4096, ideal = 2 * n * n * n / hs_npu_peak_flops(&s, HS_FP16);
    double t;
    const hs_npu_launch_stats big = run_gemm("910B2", HS_NPU_ESTIMATE, 4096, 4096, 4096, 0, 0, 0, &t);
    fprintf(stderr, "4096^3 fp16 on 910B2: cube utilisation %.4f, %.1f us (matmul launch %.1f us; 2MNK/peak/0.9 = "
                    "%.1f us), HBM %.1f MiB, L2 %.1f MiB\n",
            big.cube_utilisation, t * 1e6, big.seconds * 1e6, ideal / 0.9 * 1e6, big.hbm_bytes / 1048576.0,
            big.l2_bytes / 1048576.0);
    assert_true(big.cube_utilisation >= 0.90);
    assert_true(fabs(t / (ideal / 0.9) - 1) <= 0.10);
    const hs_npu_launch_stats small = run_gemm("910B2", HS_NPU_ESTIMATE, 64, 64, 64, 0, 0, 0, NULL);
    fprintf(stderr, "64^3 fp16 on 910B2: cube utilisation %.4f, %.2f us\n", small.cube_utilisation,
            small.seconds * 1e6);
    assert_true(small.cube_utilisation < 0.30);
}

/* Double buffering: 4 tiles of 128 x 256 per core (12 x 8 tiles on 24
 * cores), K = 8192; with it the kernel takes about max(MTE2, CUBE) per
 * core, without it about MTE2 + CUBE, and the off/on ratio follows. */
static void test_double_buffering(void **state)
{
    (void)state;
    const hs_npu_launch_stats on = run_gemm("910B2", HS_NPU_ESTIMATE, 1536, 8192, 2048, 0, 0, 0, NULL);
    const hs_npu_launch_stats off = run_gemm("910B2", HS_NPU_ESTIMATE, 1536, 8192, 2048, 0, 0, 1, NULL);
    const double cores = 24;
    const double on_pred = fmax((double)on.pipe_busy[HS_PIPE_MTE2], (double)on.pipe_busy[HS_PIPE_CUBE]) / cores;
    const double off_pred = (double)(off.pipe_busy[HS_PIPE_MTE2] + off.pipe_busy[HS_PIPE_CUBE]) / cores;
    fprintf(stderr, "double buffering on: %llu cycles (max(MTE2, CUBE) per core %.0f); off: %llu (MTE2 + CUBE "
                    "%.0f); off/on %.3f, predicted %.3f\n",
            (unsigned long long)on.cycles, on_pred, (unsigned long long)off.cycles, off_pred,
            (double)off.cycles / on.cycles, off_pred / on_pred);
    assert_near(on.cycles / on_pred, 1.0, 0.10);
    assert_near(off.cycles / off_pred, 1.0, 0.10);
    assert_near(((double)off.cycles / on.cycles) / (off_pred / on_pred), 1.0, 0.10);
    assert_true(off.cycles > 1.3 * on.cycles);
}

/* fp32 operands on the NPU, mixed devices and two NPUs in one call are
 * clear errors. */
static void test_dispatch_errors(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    hs_tensor i32 = npu_tensor(d, HS_FP32, 2, 4, 8, NULL), w32 = npu_tensor(d, HS_FP32, 2, 4, 8, NULL);
    hs_tensor ih = npu_tensor(d, HS_BF16, 2, 4, 8, NULL), wh = npu_tensor(d, HS_BF16, 2, 4, 8, NULL);
    hs_tensor o = npu_tensor(d, HS_FP32, 2, 4, 4, NULL);
    float host[16];
    hs_tensor ocpu = hs_view2(host, HS_FP32, 4, 4);
    EXPECT_ERR(hs_matmul_forward(&o, &i32, &w32, NULL), HS_ERR_DTYPE);
    assert_non_null(strstr(hs_last_error(), "fp16 or bf16"));
    EXPECT_ERR(hs_matmul_forward(&ocpu, &ih, &wh, NULL), HS_ERR_DEVICE);
    EXPECT_ERR(hs_matmul_backward(NULL, &ocpu, NULL, &o, &ih, &wh), HS_ERR_DEVICE);
    assert_int_equal(hs_matmul_forward(&o, &ih, &wh, NULL), HS_OK);
    hs_npu *e = npu_make("test", HS_NPU_ESTIMATE); /* the output on a second NPU */
    hs_tensor oe = npu_tensor(e, HS_FP32, 2, 4, 4, NULL);
    EXPECT_ERR(hs_matmul_forward(&oe, &ih, &wh, NULL), HS_ERR_DEVICE);
    assert_non_null(strstr(hs_last_error(), "two NPUs"));
    hs_npu_free(e);
    hs_npu_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_execute),
        cmocka_unit_test(test_forward_gelu),
        cmocka_unit_test(test_backward_execute),
        cmocka_unit_test(test_estimate_equals_execute),
        cmocka_unit_test(test_utilisation_910b2),
        cmocka_unit_test(test_double_buffering),
        cmocka_unit_test(test_dispatch_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
