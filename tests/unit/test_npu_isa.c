/* NPU instruction API: instruction costs (mmad, MTE2 with the L2 model,
 * vector), flags ordering pipes and the race check, buffer overflow and
 * launch errors, functional bodies of the data movement (nd2nz, load2d,
 * fixpipe), mmad (fp16, int8) and vector ops, the launch stats and trace. */
#include "gradcheck.h"
#include "npu_fixture.h"
#include "scratch.h"

#include "hyperspeed/npu.h"
#include "npu_sim/isa.h"

#include <string.h>

/* |a - b| <= tol, in double. */
#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

/* Device memory of `bytes` holding a copy of host (when given). */
static void *dev_buf(hs_npu *d, const void *host, size_t bytes)
{
    void *p;
    assert_int_equal(hs_npu_malloc(d, bytes, &p), HS_OK);
    if (host)
        assert_int_equal(hs_npu_memcpy_h2d(d, NULL, p, host, bytes), HS_OK);
    return p;
}

/* ceil(a / b). */
static uint64_t ceil_u(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* ------------------------------------------------------------ mmad cost */

typedef struct mmad_args {
    int m, k, n;
    hs_dtype dt;
    uint64_t cycles; /* CUBE time of the one mmad */
} mmad_args;

/* Kernel: one mmad of the args' shape; records the CUBE time. */
static hs_status k_mmad(hs_npu_kblock *blk, void *arg)
{
    mmad_args *a = arg;
    hs_npu_core *c = hs_npu_kblock_aic(blk);
    const int c0 = hs_npu_c0(a->dt);
    const int64_t mp = (a->m + 15) / 16 * 16, kp = (a->k + c0 - 1) / c0 * c0, np = (a->n + 15) / 16 * 16;
    hs_npu_local l0a, l0b, l0c;
    hs_npu_alloc(c, HS_BUF_L0A, a->dt, mp * kp, &l0a);
    hs_npu_alloc(c, HS_BUF_L0B, a->dt, kp * np, &l0b);
    hs_npu_alloc(c, HS_BUF_L0C, a->dt == HS_INT8 ? HS_INT32 : HS_FP32, mp * np, &l0c);
    hs_npu_mmad(l0c, l0a, l0b, a->m, a->k, a->n, 0);
    a->cycles = hs_npu_pipe_time(c, HS_PIPE_CUBE);
    return hs_npu_core_status(c);
}

/* One mmad of m x k x n costs lat_cube + ceil(m/16) ceil(k/16) ceil(n/16)
 * (int8: k in 32s); the launch lasts those cycles plus the overhead. */
static void test_mmad_cost(void **state)
{
    (void)state;
    hs_npu *d = npu_make("910B2", HS_NPU_ESTIMATE);
    const hs_npu_spec *s = hs_npu_spec_of(d);
    const int shapes[][4] = {{16, 16, 16, HS_FP16}, {1, 1, 1, HS_FP16},   {17, 33, 65, HS_BF16},
                             {128, 64, 128, HS_FP16}, {100, 70, 40, HS_BF16}, {16, 33, 16, HS_INT8}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        mmad_args a = {shapes[i][0], shapes[i][1], shapes[i][2], (hs_dtype)shapes[i][3], 0};
        assert_int_equal(hs_npu_launch(d, NULL, "mmad", HS_NPU_LAUNCH_CUBE, 1, k_mmad, &a), HS_OK);
        const uint64_t kk = a.dt == HS_INT8 ? 32 : 16;
        const uint64_t want = (uint64_t)s->lat_cube + ceil_u(a.m, 16) * ceil_u(a.k, kk) * ceil_u(a.n, 16);
        assert_int_equal(a.cycles, want);
        const hs_npu_launch_stats ls = hs_npu_last_launch(d);
        assert_int_equal(ls.cycles, want);
        assert_int_equal(ls.pipe_busy[HS_PIPE_CUBE], want);
        assert_near(ls.seconds, s->launch_overhead_s + (double)want / s->freq_hz, 1e-15);
        assert_near(ls.cube_utilisation, 1.0, 1e-12);
    }
    hs_npu_free(d);
}

/* ------------------------------------------------------- GM copy and L2 */

typedef struct copy_args {
    const void *gm;
    int64_t n;       /* fp32 elements */
    int copies;      /* copies of the same data in a row */
    uint64_t t[3];   /* MTE2 time after each copy */
} copy_args;

/* Kernel: `copies` GM -> UB copies of the same data; records MTE2 times. */
static hs_status k_copy(hs_npu_kblock *blk, void *arg)
{
    copy_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    hs_npu_local ub;
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, a->n, &ub);
    for (int i = 0; i < a->copies; i++) {
        hs_npu_copy_in(ub, a->n, a->gm, a->n, 1, a->n);
        a->t[i] = hs_npu_pipe_time(v, HS_PIPE_MTE2);
    }
    return hs_npu_core_status(v);
}

/* An n-byte GM -> UB copy costs lat_mte2 + ceil(n / R_hbm) the first time
 * and lat_mte2 + ceil(n / R_l2) when the same lines are read again. */
static void test_copy_cost_and_l2(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    const hs_npu_spec *s = hs_npu_spec_of(d);
    const int64_t n = 10000; /* 40000 bytes, not a multiple of any rate */
    copy_args a = {dev_buf(d, NULL, (size_t)n * 4), n, 2, {0}};
    assert_int_equal(hs_npu_launch(d, NULL, "copy", HS_NPU_LAUNCH_VECTOR, 1, k_copy, &a), HS_OK);
    const double share = s->hbm_bw / s->freq_hz;
    const double r_hbm = s->ddr_rate < share ? s->ddr_rate : share;
    const double r_l2 = s->l2_read_rate < 5 * share ? s->l2_read_rate : 5 * share;
    const uint64_t first = (uint64_t)s->lat_mte2 + (uint64_t)ceil(4.0 * n / r_hbm);
    assert_int_equal(a.t[0], first);
    assert_int_equal(a.t[1] - a.t[0], (uint64_t)s->lat_mte2 + (uint64_t)ceil(4.0 * n / r_l2));
    const hs_npu_launch_stats ls = hs_npu_last_launch(d);
    assert_int_equal(ls.hbm_bytes, 4 * n);
    assert_int_equal(ls.l2_bytes, 4 * n);
    hs_npu_free(d);
}

/* Blocks reading the same lines share their first fetch: with 4 blocks
 * each reading all of it once, HBM serves the bytes once in total. */
static void test_l2_shared_first_read(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    const int64_t n = 4096;
    copy_args a = {dev_buf(d, NULL, (size_t)n * 4), n, 1, {0}};
    assert_int_equal(hs_npu_launch(d, NULL, "copy4", HS_NPU_LAUNCH_VECTOR, 4, k_copy, &a), HS_OK);
    const hs_npu_launch_stats ls = hs_npu_last_launch(d);
    assert_int_equal(ls.hbm_bytes, 4 * n);
    assert_int_equal(ls.l2_bytes, 3 * 4 * n);
    hs_npu_free(d);
}

/* Kernel: reads n fp32 from gm in UB-sized chunks, `copies` passes. */
static hs_status k_sweep(hs_npu_kblock *blk, void *arg)
{
    copy_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    const int64_t chunk = 32768;
    hs_npu_local ub;
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, chunk, &ub);
    for (int pass = 0; pass < a->copies; pass++)
        for (int64_t e = 0; e < a->n; e += chunk)
            hs_npu_copy_in(ub, chunk, (const float *)a->gm + e, chunk, 1, chunk);
    return hs_npu_core_status(v);
}

/* Live data beyond L2 (4 MiB on "test"): 6 MiB read twice. All of it is
 * live between the passes, so fit = 4/6 of the re-read comes from L2. */
static void test_l2_capacity(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    const int64_t n = (6 << 20) / 4;
    copy_args a = {dev_buf(d, NULL, (size_t)n * 4), n, 2, {0}};
    assert_int_equal(hs_npu_launch(d, NULL, "sweep", HS_NPU_LAUNCH_VECTOR, 1, k_sweep, &a), HS_OK);
    const hs_npu_launch_stats ls = hs_npu_last_launch(d);
    assert_near(ls.l2_bytes, 4 << 20, 0.01 * (4 << 20));
    assert_near(ls.hbm_bytes, 8 << 20, 0.01 * (8 << 20));
    a.copies = 1; /* read once: nothing is re-read, all from HBM */
    assert_int_equal(hs_npu_launch(d, NULL, "sweep1", HS_NPU_LAUNCH_VECTOR, 1, k_sweep, &a), HS_OK);
    assert_int_equal(hs_npu_last_launch(d).hbm_bytes, 6 << 20);
    assert_int_equal(hs_npu_last_launch(d).l2_bytes, 0);
    hs_npu_free(d);
}

/* --------------------------------------------------------------- flags */

typedef struct flag_args {
    const void *gm;
    int64_t n;
    int mode; /* 0: flagged consumer, 1: independent buffer, 2: missing flag */
    uint64_t mte2_end, vec_start, vec_end;
} flag_args;

/* Kernel: a copy into x, then a vector op reading x (flagged or not) or y. */
static hs_status k_flags(hs_npu_kblock *blk, void *arg)
{
    flag_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    hs_npu_local x, y;
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, a->n, &x);
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, a->n, &y);
    hs_npu_copy_in(x, a->n, a->gm, a->n, 1, a->n);
    a->mte2_end = hs_npu_pipe_time(v, HS_PIPE_MTE2);
    if (a->mode == 0) {
        hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, 0);
        hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, 0);
    }
    a->vec_start = hs_npu_pipe_time(v, HS_PIPE_VECTOR);
    hs_npu_local src = a->mode == 1 ? y : x;
    hs_npu_vscalar(HS_V_MULS, y, src, 2.0f, a->n);
    a->vec_end = hs_npu_pipe_time(v, HS_PIPE_VECTOR);
    return hs_npu_core_status(v);
}

/* A consumer waiting on a flag starts when the producer ends; work on an
 * independent buffer overlaps the copy; a consumer without the flag is a
 * race the model reports. */
static void test_flags(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    const hs_npu_spec *s = hs_npu_spec_of(d);
    const int64_t n = 1000;
    const uint64_t vcost = (uint64_t)s->lat_vector + ceil_u(4 * n, (uint64_t)s->vector_bytes);
    flag_args a = {dev_buf(d, NULL, (size_t)n * 4), n, 0, 0, 0, 0};
    assert_int_equal(hs_npu_launch(d, NULL, "flag", HS_NPU_LAUNCH_VECTOR, 1, k_flags, &a), HS_OK);
    assert_int_equal(a.vec_start, a.mte2_end);
    assert_int_equal(a.vec_end, a.mte2_end + vcost);
    assert_int_equal(hs_npu_last_launch(d).cycles, a.mte2_end + vcost);
    a.mode = 1;
    assert_int_equal(hs_npu_launch(d, NULL, "overlap", HS_NPU_LAUNCH_VECTOR, 1, k_flags, &a), HS_OK);
    assert_int_equal(a.vec_end, vcost);
    assert_int_equal(hs_npu_last_launch(d).cycles, a.mte2_end); /* the vector op hid under the copy */
    a.mode = 2;
    const double before = hs_npu_stream_time(hs_npu_default_stream(d));
    EXPECT_ERR(hs_npu_launch(d, NULL, "race", HS_NPU_LAUNCH_VECTOR, 1, k_flags, &a), HS_ERR_INTERNAL);
    assert_non_null(strstr(hs_last_error(), "missing wait_flag(MTE2, VECTOR)"));
    assert_near(hs_npu_stream_time(hs_npu_default_stream(d)), before, 0);
    hs_npu_free(d);
}

typedef struct wait_args {
    int what; /* 0: wait with nothing set, 1: barrier */
    uint64_t t[HS_PIPE_COUNT];
} wait_args;

/* Kernel: a wait with nothing set, or scalar work and a full barrier. */
static hs_status k_wait(hs_npu_kblock *blk, void *arg)
{
    wait_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    if (a->what == 0)
        return hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, 3);
    hs_npu_scalar(v, 7);
    hs_npu_barrier(v);
    for (int p = 0; p < HS_PIPE_COUNT; p++)
        a->t[p] = hs_npu_pipe_time(v, (hs_npu_pipe)p);
    return hs_npu_core_status(v);
}

/* wait_flag without a set is an error (the chip would hang); a full
 * barrier brings every pipe to the busiest one. */
static void test_wait_and_barrier(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    wait_args a = {0, {0}};
    EXPECT_ERR(hs_npu_launch(d, NULL, "hang", HS_NPU_LAUNCH_VECTOR, 1, k_wait, &a), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "no set pending"));
    a.what = 1;
    assert_int_equal(hs_npu_launch(d, NULL, "barrier", HS_NPU_LAUNCH_VECTOR, 1, k_wait, &a), HS_OK);
    for (int p = 0; p < HS_PIPE_COUNT; p++)
        assert_int_equal(a.t[p], 7 * (uint64_t)hs_npu_spec_of(d)->lat_scalar);
    hs_npu_free(d);
}

/* ------------------------------------------------------ buffers, launch */

typedef struct alloc_args {
    hs_npu_buf buf;
    int64_t bytes;
    int on_aiv;
} alloc_args;

/* Kernel: one allocation of the args' size. */
static hs_status k_alloc(hs_npu_kblock *blk, void *arg)
{
    alloc_args *a = arg;
    hs_npu_core *c = a->on_aiv ? hs_npu_kblock_aiv(blk, 0) : hs_npu_kblock_aic(blk);
    hs_npu_local l;
    return hs_npu_alloc(c, a->buf, HS_INT8, a->bytes, &l);
}

/* A tile that does not fit its buffer is HS_ERR_NPU_BUFFER naming the
 * buffer and sizes; a buffer the core lacks is an invalid argument;
 * block_dim beyond the cores of the launch kind is refused. */
static void test_buffer_and_launch_errors(void **state)
{
    (void)state;
    hs_npu *d = npu_make("910B2", HS_NPU_EXECUTE);
    alloc_args a = {HS_BUF_L0A, 64 * 1024, 0};
    assert_int_equal(hs_npu_launch(d, NULL, "fits", HS_NPU_LAUNCH_CUBE, 2, k_alloc, &a), HS_OK);
    a.bytes = 64 * 1024 + 1;
    EXPECT_ERR(hs_npu_launch(d, NULL, "l0a", HS_NPU_LAUNCH_CUBE, 2, k_alloc, &a), HS_ERR_NPU_BUFFER);
    assert_non_null(strstr(hs_last_error(), "L0A overflow: 65537 bytes"));
    assert_non_null(strstr(hs_last_error(), "aic0"));
    a = (alloc_args){HS_BUF_UB, 196608 + 32, 1};
    EXPECT_ERR(hs_npu_launch(d, NULL, "ub", HS_NPU_LAUNCH_CUBE, 1, k_alloc, &a), HS_ERR_NPU_BUFFER);
    assert_non_null(strstr(hs_last_error(), "UB overflow"));
    a = (alloc_args){HS_BUF_UB, 32, 0};
    EXPECT_ERR(hs_npu_launch(d, NULL, "ub_on_aic", HS_NPU_LAUNCH_CUBE, 1, k_alloc, &a), HS_ERR_INVALID_ARGUMENT);
    a = (alloc_args){HS_BUF_L1, 32, 0};
    assert_int_equal(hs_npu_max_blocks(d, HS_NPU_LAUNCH_CUBE), 24);
    assert_int_equal(hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR), 48);
    EXPECT_ERR(hs_npu_launch(d, NULL, "big", HS_NPU_LAUNCH_CUBE, 25, k_alloc, &a), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "block_dim 25 outside 1..24"));
    EXPECT_ERR(hs_npu_launch(d, NULL, "none", HS_NPU_LAUNCH_VECTOR, 0, k_alloc, &a), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_npu_launch(d, NULL, "null", HS_NPU_LAUNCH_CUBE, 1, NULL, &a), HS_ERR_INVALID_ARGUMENT);
    hs_npu_free(d);
}

/* ------------------------------------------- cube path, functional */

typedef struct cube_args {
    const void *a, *b; /* A [M,K] (or A^T [K,M]); B^T [N,K] (or B [K,N]) */
    void *c;           /* [M,N] */
    int m, k, n, a_trans, b_trans;
    hs_dtype dt, c_dt;
} cube_args;

/* nd2nz of both operands, load2d, one mmad, fixpipe. */
static hs_status k_cube(hs_npu_kblock *blk, void *arg)
{
    cube_args *a = arg;
    hs_npu_core *c = hs_npu_kblock_aic(blk);
    const int c0 = hs_npu_c0(a->dt), mp = (a->m + 15) / 16 * 16, np = (a->n + 15) / 16 * 16;
    const int kp = (a->k + c0 - 1) / c0 * c0, kp16 = (a->k + 15) / 16 * 16;
    hs_npu_local l1a, l1b, l0a, l0b, l0c;
    hs_npu_alloc(c, HS_BUF_L1, a->dt, (int64_t)mp * kp + 4096, &l1a);
    hs_npu_alloc(c, HS_BUF_L1, a->dt, (int64_t)np * kp + 4096, &l1b);
    hs_npu_alloc(c, HS_BUF_L0A, a->dt, (int64_t)mp * kp, &l0a);
    hs_npu_alloc(c, HS_BUF_L0B, a->dt, (int64_t)kp * np, &l0b);
    hs_npu_alloc(c, HS_BUF_L0C, a->dt == HS_INT8 ? HS_INT32 : HS_FP32, (int64_t)mp * np, &l0c);
    if (a->a_trans)
        hs_npu_copy_nd2nz(l1a, a->a, a->m, a->k, a->m);
    else
        hs_npu_copy_nd2nz(l1a, a->a, a->k, a->m, a->k);
    if (a->b_trans)
        hs_npu_copy_nd2nz(l1b, a->b, a->k, a->n, a->k);
    else
        hs_npu_copy_nd2nz(l1b, a->b, a->n, a->k, a->n);
    hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, 0);
    hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, 0);
    hs_npu_load_l0a(l0a, l1a, a->a_trans ? kp16 : mp, 0, 0, a->m, a->k, a->a_trans);
    hs_npu_load_l0b(l0b, l1b, a->b_trans ? np : kp16, 0, 0, a->k, a->n, a->b_trans);
    hs_npu_set_flag(c, HS_PIPE_MTE1, HS_PIPE_CUBE, 0);
    hs_npu_wait_flag(c, HS_PIPE_MTE1, HS_PIPE_CUBE, 0);
    hs_npu_mmad(l0c, l0a, l0b, a->m, a->k, a->n, 0);
    hs_npu_set_flag(c, HS_PIPE_CUBE, HS_PIPE_FIXPIPE, 0);
    hs_npu_wait_flag(c, HS_PIPE_CUBE, HS_PIPE_FIXPIPE, 0);
    hs_npu_fixpipe(a->c, a->n, a->c_dt, l0c, a->m, a->n);
    return hs_npu_core_status(c);
}

/* fp16 with every transposition (fractals transposed in load2d), ragged
 * sizes: exact small integers, so the fp32 result is exact. */
static void test_cube_fp16_layouts(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    const int M = 19, K = 37, N = 21;
    float A[19 * 37], B[37 * 21];
    uint16_t ah[19 * 37], at[37 * 19], bh[21 * 37], bt[37 * 21];
    for (int i = 0; i < M; i++)
        for (int l = 0; l < K; l++) {
            A[i * K + l] = (float)((i * 7 + l * 3) % 9 - 4);
            ah[i * K + l] = at[l * M + i] = hs_fp32_to_fp16(A[i * K + l]);
        }
    for (int l = 0; l < K; l++)
        for (int j = 0; j < N; j++) {
            B[l * N + j] = (float)((l * 5 + j * 2) % 7 - 3);
            bt[l * N + j] = bh[j * K + l] = hs_fp32_to_fp16(B[l * N + j]); /* bh: B^T [N,K]; bt: B [K,N] */
        }
    for (int tr = 0; tr < 4; tr++) {
        const int a_trans = tr & 1, b_trans = tr >> 1;
        float *C = dev_buf(d, NULL, sizeof(float) * M * N);
        cube_args a = {dev_buf(d, a_trans ? at : ah, sizeof ah), dev_buf(d, b_trans ? bh : bt, sizeof bh), C, M, K,
                       N, a_trans, b_trans, HS_FP16, HS_FP32};
        assert_int_equal(hs_npu_launch(d, NULL, "cube", HS_NPU_LAUNCH_CUBE, 1, k_cube, &a), HS_OK);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float ref = 0;
                for (int l = 0; l < K; l++)
                    ref += A[i * K + l] * B[l * N + j];
                assert_near(C[i * N + j], ref, 0);
            }
    }
    hs_npu_free(d);
}

/* int8 x int8 -> int32 (16 x 32 fractals), exact; fixpipe to bf16 rounds. */
static void test_cube_int8_and_bf16_out(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    enum { M = 18, K = 45, N = 17 };
    int8_t A[M * K], Bt[N * K];
    for (int i = 0; i < M * K; i++)
        A[i] = (int8_t)((i * 37) % 255 - 127);
    for (int i = 0; i < N * K; i++)
        Bt[i] = (int8_t)((i * 53) % 251 - 125);
    int32_t *C = dev_buf(d, NULL, sizeof(int32_t) * M * N);
    cube_args a = {dev_buf(d, A, sizeof A), dev_buf(d, Bt, sizeof Bt), C, M, K, N, 0, 1, HS_INT8, HS_INT32};
    assert_int_equal(hs_npu_launch(d, NULL, "int8", HS_NPU_LAUNCH_CUBE, 1, k_cube, &a), HS_OK);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int32_t ref = 0;
            for (int l = 0; l < K; l++)
                ref += (int32_t)A[i * K + l] * Bt[j * K + l];
            assert_int_equal(C[i * N + j], ref);
        }
    /* int8 B given as [K,N] would need fractal transposes the chip lacks */
    a.b_trans = 0;
    EXPECT_ERR(hs_npu_launch(d, NULL, "int8t", HS_NPU_LAUNCH_CUBE, 1, k_cube, &a), HS_ERR_DTYPE);

    uint16_t ah[3 * 16], bh[5 * 16];
    for (int i = 0; i < 3 * 16; i++)
        ah[i] = hs_fp32_to_bf16(0.1f * (float)(i % 11) - 0.5f);
    for (int i = 0; i < 5 * 16; i++)
        bh[i] = hs_fp32_to_bf16(0.07f * (float)(i % 13) - 0.4f);
    uint16_t *Cb = dev_buf(d, NULL, sizeof(uint16_t) * 3 * 5);
    cube_args b = {dev_buf(d, ah, sizeof ah), dev_buf(d, bh, sizeof bh), Cb, 3, 16, 5, 0, 1, HS_BF16, HS_BF16};
    assert_int_equal(hs_npu_launch(d, NULL, "bf16", HS_NPU_LAUNCH_CUBE, 1, k_cube, &b), HS_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) {
            float ref = 0;
            for (int l = 0; l < 16; l++)
                ref += hs_bf16_to_fp32(ah[i * 16 + l]) * hs_bf16_to_fp32(bh[j * 16 + l]);
            assert_int_equal(Cb[i * 5 + j], hs_fp32_to_bf16(ref));
        }
    hs_npu_free(d);
}

/* -------------------------------------------------------------- vector */

typedef struct vec_args {
    const float *x, *y; /* [n] in GM */
    float *out;         /* [16][n] in GM */
    int64_t n;
    uint64_t add_cost;
} vec_args;

/* Kernel: every vector op family on x and y, results copied out. */
static hs_status k_vec(hs_npu_kblock *blk, void *arg)
{
    vec_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    const int64_t n = a->n;
    assert_int_equal(hs_npu_core_spec(v)->vector_bytes, 256);
    hs_npu_local x, y, o, m, h, s, t;
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, n, &x);
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, n, &y);
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, 16 * n, &o);
    hs_npu_alloc(v, HS_BUF_UB, HS_INT8, n, &m);
    hs_npu_alloc(v, HS_BUF_UB, HS_BF16, n, &h);
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, 8, &s);
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, n, &t);
    const hs_npu_local i32 = hs_npu_as(t, HS_INT32); /* the same bytes as int32 */
    hs_npu_copy_in(x, n, a->x, n, 1, n);
    hs_npu_copy_in(y, n, a->y, n, 1, n);
    hs_npu_barrier(v);
    const uint64_t t0 = hs_npu_pipe_time(v, HS_PIPE_VECTOR);
    hs_npu_vbin(HS_V_ADD, hs_npu_sub(o, 0, n), x, y, n);
    a->add_cost = hs_npu_pipe_time(v, HS_PIPE_VECTOR) - t0;
    assert_int_equal(hs_npu_pipe_busy(v, HS_PIPE_VECTOR), a->add_cost);
    hs_npu_vbin(HS_V_DIV, hs_npu_sub(o, n, n), x, y, n);
    hs_npu_vunary(HS_V_EXP, hs_npu_sub(o, 2 * n, n), x, n);
    hs_npu_vunary(HS_V_TANH, hs_npu_sub(o, 3 * n, n), x, n);
    hs_npu_vscalar(HS_V_MAXS, hs_npu_sub(o, 4 * n, n), x, 0.25f, n);
    hs_npu_vcmp(HS_CMP_GT, m, x, y, n);
    hs_npu_vselect(hs_npu_sub(o, 5 * n, n), m, x, y, n);
    hs_npu_vcast(h, x, n);
    hs_npu_vcast(hs_npu_sub(o, 6 * n, n), h, n);
    hs_npu_vreduce_sum(s, x, n);
    hs_npu_vreduce_max(hs_npu_sub(s, 1, 1), x, n);
    hs_npu_vbcast(hs_npu_sub(o, 7 * n, n), s, n);
    hs_npu_vdup(hs_npu_sub(o, 8 * n, n), 3.0f, n);
    hs_npu_vmla(hs_npu_sub(o, 8 * n, n), x, y, n);
    hs_npu_vaxpy(hs_npu_sub(o, 8 * n, n), x, 0.5f, n);
    hs_npu_vscalar(HS_V_MULS, hs_npu_sub(o, 9 * n, n), x, 100.0f, n);
    hs_npu_vcast(i32, hs_npu_sub(o, 9 * n, n), n);
    hs_npu_vcast(hs_npu_sub(o, 9 * n, n), i32, n);
    hs_npu_vbin(HS_V_SUB, hs_npu_sub(o, 10 * n, n), x, y, n);
    hs_npu_vbin(HS_V_MIN, hs_npu_sub(o, 11 * n, n), x, y, n);
    hs_npu_vunary(HS_V_LN, hs_npu_sub(o, 12 * n, n), y, n);
    hs_npu_vunary(HS_V_RELU, hs_npu_sub(o, 13 * n, n), x, n);
    hs_npu_vunary(HS_V_ABS, hs_npu_sub(o, 14 * n, n), x, n);
    hs_npu_vscalar(HS_V_MINS, hs_npu_sub(o, 14 * n, n), hs_npu_sub(o, 14 * n, n), 0.3f, n);
    hs_npu_vcmps(HS_CMP_LT, m, x, 0.0f, n);
    hs_npu_vselect(hs_npu_sub(o, 15 * n, n), m, x, y, n);
    hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_SCALAR, 0);
    hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_SCALAR, 0);
    const float mx = hs_npu_get_value(s, 1);
    hs_npu_set_value(s, 2, mx);
    hs_npu_set_flag(v, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 0);
    hs_npu_wait_flag(v, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 0);
    hs_npu_vscalar(HS_V_ADDS, hs_npu_sub(o, 4 * n, 1), hs_npu_sub(o, 4 * n, 1), hs_npu_get_value(s, 2), 1);
    hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
    hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
    hs_npu_copy_out(a->out, 16 * n, o, 16 * n, 1, 16 * n);
    return hs_npu_core_status(v);
}

/* Vector ops against scalar C on the same fp32 values, and the cost of a
 * simple op: lat_vector + ceil(n * 4 / vector_bytes). */
static void test_vector_ops(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    enum { n = 300 };
    float x[n], y[n], out[16 * n];
    for (int i = 0; i < n; i++) {
        x[i] = 0.013f * (float)(i % 97) - 0.6f;
        y[i] = 0.021f * (float)(i % 41) + 0.1f;
    }
    vec_args a = {dev_buf(d, x, sizeof x), dev_buf(d, y, sizeof y), dev_buf(d, NULL, sizeof out), n, 0};
    assert_int_equal(hs_npu_launch(d, NULL, "vec", HS_NPU_LAUNCH_VECTOR, 1, k_vec, &a), HS_OK);
    assert_int_equal(hs_npu_memcpy_d2h(d, NULL, out, a.out, sizeof out), HS_OK);
    const hs_npu_spec *s = hs_npu_spec_of(d);
    assert_int_equal(a.add_cost, (uint64_t)s->lat_vector + ceil_u(4 * n, (uint64_t)s->vector_bytes));
    float sum = 0, mx = x[0];
    for (int i = 0; i < n; i++) {
        sum += x[i];
        mx = x[i] > mx ? x[i] : mx;
    }
    for (int i = 0; i < n; i++) {
        assert_near(out[i], x[i] + y[i], 0);
        assert_near(out[n + i], x[i] / y[i], 0);
        assert_near(out[2 * n + i], expf(x[i]), 0);
        assert_near(out[3 * n + i], tanhf(x[i]), 0);
        assert_near(out[4 * n + i], (x[i] > 0.25f ? x[i] : 0.25f) + (i == 0 ? mx : 0.0f), 0);
        assert_near(out[5 * n + i], x[i] > y[i] ? x[i] : y[i], 0);
        assert_near(out[6 * n + i], hs_bf16_to_fp32(hs_fp32_to_bf16(x[i])), 0);
        assert_near(out[7 * n + i], sum, 0);
        assert_near(out[8 * n + i], (3.0f + x[i] * y[i]) + 0.5f * x[i], 0);
        assert_near(out[9 * n + i], nearbyintf(x[i] * 100.0f), 0);
        assert_near(out[10 * n + i], x[i] - y[i], 0);
        assert_near(out[11 * n + i], x[i] < y[i] ? x[i] : y[i], 0);
        assert_near(out[12 * n + i], logf(y[i]), 0);
        assert_near(out[13 * n + i], x[i] > 0 ? x[i] : 0.0f, 0);
        assert_near(out[14 * n + i], fabsf(x[i]) < 0.3f ? fabsf(x[i]) : 0.3f, 0);
        assert_near(out[15 * n + i], x[i] < 0 ? x[i] : y[i], 0);
    }
    hs_npu_free(d);
}

/* ------------------------------------------ execute vs estimate, trace */

typedef struct pipe_args {
    const void *gm;
    void *out;
    int64_t n;
} pipe_args;

/* A double-buffered copy-scale-copy loop over 4 chunks. */
static hs_status k_pipeline(hs_npu_kblock *blk, void *arg)
{
    pipe_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    const int64_t n = a->n, part = n / 4;
    hs_npu_local x[2], y[2];
    for (int q = 0; q < 2; q++) {
        hs_npu_alloc(v, HS_BUF_UB, HS_FP32, part, &x[q]);
        hs_npu_alloc(v, HS_BUF_UB, HS_FP32, part, &y[q]);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    for (int i = 0; i < 4; i++) {
        const int q = i % 2;
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_copy_in(x[q], part, (const float *)a->gm + i * part, part, 1, part);
        hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
        hs_npu_vscalar(HS_V_MULS, y[q], x[q], 3.0f, part);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, q);
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, q);
        hs_npu_copy_out((float *)a->out + i * part, part, y[q], part, 1, part);
        hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    for (int q = 0; q < 2; q++) {
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    return hs_npu_core_status(v);
}

/* The same kernel costs the same cycles in both modes; only execute mode
 * computes; the trace gets the kernel slice with its args. */
static void test_modes_and_trace(void **state)
{
    (void)state;
    const int64_t n = 4096;
    hs_npu_launch_stats st[2];
    for (int mode = 0; mode < 2; mode++) {
        hs_npu *d = npu_make("test", (hs_npu_mode)mode);
        float host[4096];
        for (int i = 0; i < n; i++)
            host[i] = (float)i;
        pipe_args a = {dev_buf(d, mode == HS_NPU_EXECUTE ? host : NULL, sizeof host), dev_buf(d, NULL, sizeof host), n};
        char *dir = scratch_dir("npu_isa");
        assert_non_null(dir);
        const char *path = scratch_path(dir, "trace.json");
        assert_int_equal(hs_npu_trace_start(d, path), HS_OK);
        assert_int_equal(hs_npu_launch(d, NULL, "scale", HS_NPU_LAUNCH_VECTOR, 2, k_pipeline, &a), HS_OK);
        st[mode] = hs_npu_last_launch(d);
        assert_int_equal(hs_npu_trace_stop(d), HS_OK);
        hs_npu_kernel_profile *prof;
        size_t count;
        assert_int_equal(hs_npu_trace_profile(path, &prof, &count), HS_OK);
        assert_int_equal(count, 1);
        assert_string_equal(prof[0].name, "scale");
        assert_true(prof[0].vector_util > 0 && prof[0].vector_util <= 1);
        assert_near(prof[0].hbm_bytes, (double)st[mode].hbm_bytes, 0.5);
        free(prof);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char text[1 << 16];
        const size_t len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = '\0';
        assert_non_null(strstr(text, "\"aiv1.MTE2\"")); /* pipe rows of both blocks */
        assert_non_null(strstr(text, "\"aiv0.VECTOR\""));
        assert_non_null(strstr(text, "\"npu0 cores\""));
        if (mode == HS_NPU_EXECUTE) {
            assert_int_equal(hs_npu_memcpy_d2h(d, NULL, host, a.out, sizeof host), HS_OK);
            for (int i = 0; i < n; i++)
                assert_near(host[i], 3.0f * (float)i, 0);
        }
        hs_npu_free(d);
        scratch_free(dir);
    }
    assert_int_equal(st[0].cycles, st[1].cycles);
    assert_memory_equal(st[0].pipe_busy, st[1].pipe_busy, sizeof st[0].pipe_busy);
    assert_int_equal(st[0].hbm_bytes, st[1].hbm_bytes);
    /* the four chunks overlap: less than the serial sum of the pipes */
    assert_true(st[0].cycles < (st[0].pipe_busy[HS_PIPE_MTE2] + st[0].pipe_busy[HS_PIPE_VECTOR] +
                                st[0].pipe_busy[HS_PIPE_MTE3]) / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mmad_cost),
        cmocka_unit_test(test_copy_cost_and_l2),
        cmocka_unit_test(test_l2_shared_first_read),
        cmocka_unit_test(test_l2_capacity),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_wait_and_barrier),
        cmocka_unit_test(test_buffer_and_launch_errors),
        cmocka_unit_test(test_cube_fp16_layouts),
        cmocka_unit_test(test_cube_int8_and_bf16_out),
        cmocka_unit_test(test_vector_ops),
        cmocka_unit_test(test_modes_and_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
