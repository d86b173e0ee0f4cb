/* NPU matmul backward, from the forward's GEMM kernel and two vector
 * kernels:
 *
 *   dout_h = (dt) dout                          vector cast, rounded to nearest even
 *   dinp[N,C]  += dout_h[N,OC] @ w[OC,C]        GEMM, B = w as stored (fractals transposed in load2d)
 *   dw[OC,C]   += dout_h^T @ inp[N,C]           GEMM, A^T = dout_h as stored, B = inp as stored
 *   dbias[OC]  += sum_n dout[n,:]               vector column sums of the fp32 dout, atomic add
 *
 * The cube takes fp16/bf16 only, so the GEMMs see dout rounded to the
 * operands' dtype (as mixed-precision training on the chip does); dbias
 * uses the fp32 dout. The += goes through fixpipe / MTE3 atomic adds. The
 * rounded dout lives in an N x OC workspace allocated on the device for the
 * duration of the call. */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#define CAST_CHUNK 8192 /* elements per cast chunk */
#define COL_CHUNK 1024  /* dbias columns per unit */
#define ROW_CHUNK 16    /* dbias rows per copy */

/* The smaller of a and b. */
static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Arguments of the cast kernel: n fp32 values of src to dst of dtype dt. */
typedef struct cast_args {
    const float *src;
    void *dst;
    int64_t n;
    hs_dtype dt;
} cast_args;

/* Chunks idx, idx + dim, ... of CAST_CHUNK elements: copy in, cast, copy
 * out, ping-ponged (x: VECTOR->MTE2 free, y: MTE3->VECTOR free). */
static hs_status cast_block(hs_npu_kblock *blk, void *arg)
{
    const cast_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    hs_npu_local x[2], y[2];
    for (int q = 0; q < 2; q++) {
        HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, CAST_CHUNK, &x[q]));
        HS_TRY(hs_npu_alloc(v, HS_BUF_UB, a->dt, CAST_CHUNK, &y[q]));
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    const size_t es = hs_dtype_size(a->dt);
    int64_t i = 0;
    for (int64_t e0 = (int64_t)hs_npu_kblock_idx(blk) * CAST_CHUNK; e0 < a->n;
         e0 += (int64_t)hs_npu_kblock_dim(blk) * CAST_CHUNK, i++) {
        const int q = (int)(i % 2);
        const int64_t len = min64(CAST_CHUNK, a->n - e0);
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_copy_in(x[q], len, a->src + e0, len, 1, len);
        hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
        hs_npu_vcast(y[q], x[q], len);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, q);
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, q);
        hs_npu_copy_out((uint8_t *)a->dst + (size_t)e0 * es, len, y[q], len, 1, len);
        hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    for (int q = 0; q < 2; q++) {
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    return hs_npu_core_status(v);
}

/* Arguments of the dbias kernel: column sums of dout [N, OC] added to
 * dbias, in units of (COL_CHUNK columns) x (a group of rows). */
typedef struct dbias_args {
    const float *dout;
    float *dbias;
    int64_t N, OC, col_units, row_groups;
} dbias_args;

/* Units idx, idx + dim, ...: acc = 0; for each ROW_CHUNK rows of the
 * unit's row group: copy in (ping-pong), acc += each row; then acc is
 * added to dbias (MTE3 atomic add). */
static hs_status dbias_block(hs_npu_kblock *blk, void *arg)
{
    const dbias_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    hs_npu_local x[2], acc;
    for (int q = 0; q < 2; q++) {
        HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, (int64_t)ROW_CHUNK * COL_CHUNK, &x[q]));
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
    }
    HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, COL_CHUNK, &acc));
    hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, 0);
    hs_npu_set_atomic_add(v, 1);
    const int64_t rows_per = (a->N + a->row_groups - 1) / a->row_groups;
    int64_t i = 0;
    for (int64_t u = hs_npu_kblock_idx(blk); u < a->col_units * a->row_groups; u += hs_npu_kblock_dim(blk)) {
        const int64_t c0 = u % a->col_units * COL_CHUNK, w = min64(COL_CHUNK, a->OC - c0);
        const int64_t r0 = u / a->col_units * rows_per, r1 = min64(a->N, r0 + rows_per);
        if (r0 >= r1)
            continue;
        hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, 0);
        hs_npu_vdup(acc, 0.0f, w);
        for (int64_t r = r0; r < r1; r += ROW_CHUNK, i++) {
            const int q = (int)(i % 2);
            const int64_t rq = min64(ROW_CHUNK, r1 - r);
            hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
            hs_npu_copy_in(x[q], w, a->dout + (size_t)r * (size_t)a->OC + c0, a->OC, rq, w);
            hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
            hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
            for (int64_t j = 0; j < rq; j++)
                hs_npu_vbin(HS_V_ADD, acc, acc, hs_npu_sub(x[q], j * w, w), w);
            hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        }
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
        hs_npu_copy_out(a->dbias + c0, w, acc, w, 1, w);
        hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, 0);
    }
    for (int q = 0; q < 2; q++)
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
    hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, 0);
    return hs_npu_core_status(v);
}

/* The two GEMMs on the rounded dout in ws. */
static hs_status backward_gemms(hs_npu *d, hs_npu_stream *s, float *dinp, float *dw, const void *ws, const void *inp,
                                const void *w, int64_t N, int64_t C, int64_t OC, hs_dtype dt)
{
    if (dinp) {
        const hs_npu_gemm g = {.a = ws, .lda = OC, .b = w, .ldb = C, .c = dinp, .ldc = C, .c_dtype = HS_FP32,
                               .dtype = dt, .m = N, .n = C, .k = OC, .accumulate = 1};
        HS_TRY(hs_npu_gemm_run(d, s, "matmul_bwd_dinp", &g));
    }
    if (dw) {
        const hs_npu_gemm g = {.a = ws, .lda = OC, .a_trans = 1, .b = inp, .ldb = C, .c = dw, .ldc = C,
                               .c_dtype = HS_FP32, .dtype = dt, .m = OC, .n = C, .k = N, .accumulate = 1};
        HS_TRY(hs_npu_gemm_run(d, s, "matmul_bwd_dw", &g));
    }
    return HS_OK;
}

/* dbias column sums, dout cast to dt in a workspace, then the dinp and dw GEMMs. */
hs_status hs_npu_matmul_backward(const hs_device *dev, float *dinp, float *dw, float *dbias, const float *dout, const void *inp,
                                 const void *w, int64_t N, int64_t C, int64_t OC, hs_dtype dt)
{
    hs_npu *d = dev->npu;
    hs_npu_stream *s = dev->stream;
    if (dt != HS_FP16 && dt != HS_BF16)
        return hs_error(HS_ERR_DTYPE, "hs_matmul_backward: the cube takes fp16 or bf16 operands, not %s",
                        hs_dtype_name(dt));
    const int vcores = hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR);
    if (dbias) {
        dbias_args a = {dout, dbias, N, OC, (OC + COL_CHUNK - 1) / COL_CHUNK, 1};
        a.row_groups = min64(N, a.col_units >= vcores ? 1 : vcores / a.col_units);
        const hs_npu_operand ops[] = {{dout, 4 * N * OC}, {dbias, 4 * OC}};
        const int64_t dims[] = {N, OC, a.col_units, a.row_groups};
        hs_npu_key key;
        HS_NPU_KEY_OF(&key, ops, dims);
        key.independent = a.row_groups == 1; /* row groups add into the same columns */
        HS_TRY(hs_npu_launch_cached(d, s, "matmul_bwd_dbias", HS_NPU_LAUNCH_VECTOR,
                                    (int)min64(vcores, a.col_units * a.row_groups), dbias_block, &a, &key));
    }
    if (!dinp && !dw)
        return HS_OK;
    void *ws;
    HS_TRY(hs_npu_malloc(d, hs_npu_matmul_bwd_workspace(N, OC, dt), &ws));
    const cast_args ca = {dout, ws, N * OC, dt};
    const hs_npu_operand ops[] = {{dout, 4 * N * OC}, {ws, N * OC * (int64_t)hs_dtype_size(dt)}};
    const int64_t dims[] = {N * OC, dt};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    hs_status st = hs_npu_launch_cached(d, s, "matmul_bwd_cast", HS_NPU_LAUNCH_VECTOR,
                                        (int)min64(vcores, (N * OC + CAST_CHUNK - 1) / CAST_CHUNK), cast_block,
                                        (void *)&ca, &key);
    if (st == HS_OK)
        st = backward_gemms(d, s, dinp, dw, ws, inp, w, N, C, OC, dt);
    hs_npu_free_mem(d, ws);
    return st;
}
