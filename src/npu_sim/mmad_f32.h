/* The fp32 core of mmad's fp16/bf16 functional body, for one instruction
 * level, working in the accumulator's own NZ layout:
 *
 *   C[i][j] (= or +=) sum_l A[i][l] * B[l][j]   (+ bias[j] when biased)
 *
 * for i < m, j < n, with each element summed in order of l onto its running
 * value (the old C, the bias, or 0). The product of two fp16 or bf16 values
 * is exact in fp32 (at most 22 significant bits), so a fused multiply-add
 * rounds exactly as a multiply and then an add: the AVX-512/AVX2 builds
 * contract, and every level gives the same bits (bf16 products below fp32's
 * normal range, 2^-126, are the exception: there the FMA keeps bits the
 * separate multiply would flush).
 *
 * Layouts (16 x 16 fractals, isa.h): C is NZ fp32, so the 16 columns of
 * block jb form an mp x 16 row-major matrix at c + jb * mp * 16, one row of
 * 16 floats per i; A is ZZ widened to fp32 (row i's l runs in 16-element
 * pieces 256 floats apart); B comes as bt[jb][l][16], each column block a
 * k x 16 row-major matrix (mmad transposes the ZN fractals into it). Rows
 * go R at a time: R x 16 accumulators in registers while l runs, B's row
 * loaded once per l and every A(i, l) broadcast against it. Only columns
 * j < n and rows i < m of C are written.
 *
 * Included by mmad_f32_avx512.c, mmad_f32_avx2.c and mmad_f32_baseline.c,
 * each compiled for its level, which define HS_MMAD_W (floats per
 * register), HS_MMAD_R (rows per block: R * 16 / W accumulators plus 16 / W
 * B registers fit the level's register file) and HS_MMAD_FN. */
#include "npu_sim/mmad_f32_fns.h"

#include <string.h>

typedef float vf __attribute__((vector_size(4 * HS_MMAD_W)));
#define NV (16 / HS_MMAD_W) /* registers per 16-column row */

#define INLINE static inline __attribute__((always_inline))

/* Rows i0 .. i0 + R - 1 of column block cb (run valid columns); R is a
 * constant after inlining, so acc and ar live in registers. */
INLINE void rows_block(const int R, float *cb, const float *a, const float *bt, const float *init, int64_t i0,
                       int64_t k, int64_t kp, int64_t run)
{
    vf acc[HS_MMAD_R][NV];
    const float *ar[HS_MMAD_R];
#pragma GCC unroll 32
    for (int r = 0; r < R; r++) {
        const int64_t i = i0 + r;
        ar[r] = a + (i / 16) * (kp / 16) * 256 + (i % 16) * 16;
        const float *src = init ? init : cb + i * 16;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            memcpy(&acc[r][v], src + v * HS_MMAD_W, sizeof(vf));
    }
    for (int64_t l0 = 0; l0 < k; l0 += 16) {
        const int64_t lend = k - l0 < 16 ? k - l0 : 16, off = l0 / 16 * 256;
        for (int64_t ll = 0; ll < lend; ll++) {
            vf b[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                memcpy(&b[v], bt + (l0 + ll) * 16 + v * HS_MMAD_W, sizeof(vf));
#pragma GCC unroll 32
            for (int r = 0; r < R; r++) {
                const float s = ar[r][off + ll];
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[r][v] += s * b[v];
            }
        }
    }
#pragma GCC unroll 32
    for (int r = 0; r < R; r++) {
        float *dst = cb + (i0 + r) * 16;
        if (run == 16) {
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                memcpy(dst + v * HS_MMAD_W, &acc[r][v], sizeof(vf));
        } else {
            float row[16];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                memcpy(row + v * HS_MMAD_W, &acc[r][v], sizeof(vf));
            memcpy(dst, row, (size_t)run * sizeof(float));
        }
    }
}

/* The m % R rows left at the end, with a block of exactly that many. */
INLINE void tail_rows(int rows, float *cb, const float *a, const float *bt, const float *init, int64_t i0, int64_t k,
                      int64_t kp, int64_t run)
{
    switch (rows) {
#define TAIL(n)                                                                                                        \
    case n: rows_block(n < HS_MMAD_R ? n : 1, cb, a, bt, init, i0, k, kp, run); break;
        TAIL(1) TAIL(2) TAIL(3) TAIL(4) TAIL(5) TAIL(6) TAIL(7) TAIL(8) TAIL(9) TAIL(10) TAIL(11) TAIL(12) TAIL(13)
            TAIL(14) TAIL(15)
#undef TAIL
    default: break;
    }
}

void HS_MMAD_FN(float *c, const float *a, const float *bt, const float *bias, int accumulate, int64_t m, int64_t k,
                int64_t n, int64_t mp, int64_t kp)
{
    float zero[16] = {0};
    for (int64_t jb = 0; jb * 16 < n; jb++) {
        const int64_t run = n - jb * 16 < 16 ? n - jb * 16 : 16;
        float *cb = c + jb * mp * 16;
        const float *bj = bt + jb * k * 16;
        float bias_row[16] = {0};
        if (bias && !accumulate)
            memcpy(bias_row, bias + jb * 16, (size_t)run * sizeof(float));
        const float *init = accumulate ? NULL : bias ? bias_row : zero;
        int64_t i = 0;
        for (; i + HS_MMAD_R <= m; i += HS_MMAD_R)
            rows_block(HS_MMAD_R, cb, a, bj, init, i, k, kp, run);
        tail_rows((int)(m - i), cb, a, bj, init, i, k, kp, run);
    }
}
