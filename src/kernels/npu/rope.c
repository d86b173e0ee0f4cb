/* Rotary position embedding on the NPU's vector cores, written against the
 * instruction API (npu_sim/isa.h). Half-split pairing, as the CPU body:
 * in head h < n_rot of token t, at position p = pos0 + t, element i < HD/2
 * pairs with i + HD/2 and the pair turns by a = p * theta^(-2i/HD):
 *   out_i        = x_i cos a - x_{i+HD/2} sin a
 *   out_{i+HD/2} = x_{i+HD/2} cos a + x_i sin a
 * The backward (inverse) turns by -a. Heads >= n_rot are copied.
 *
 * Angles. The vector unit has no sin/cos, and the CPU computes them in
 * double; so the host computes the same double-precision table once per
 * call, cos2[t] = [cos a | cos a] and sin2[t] = [-sin a | sin a] (signs
 * flipped for the inverse), and uploads it (hs_npu_memcpy_h2d on the
 * current stream: 8 T HD bytes over PCIe, which the stream's time
 * includes). Each pair then costs one multiply over the head and one
 * multiply-add per half, with the CPU's roundings:
 *   y = x * cos2;  y_lo += x_hi * sin2_lo;  y_hi += x_lo * sin2_hi.
 *
 * Tiling. Tokens (B*T rows of H*HD) are split over the blocks of a VECTOR
 * launch; a tile is R consecutive tokens of one sequence (so its table rows
 * are consecutive) times a group of heads (all heads when a token fits
 * UB). Rotated heads come into an input buffer, copied heads straight into
 * the output buffer (when out is not inp; in place they are left alone),
 * and the tile goes back in one MTE3 copy. Tiles ping-pong between two
 * buffer sets with MTE2 -> VECTOR -> MTE3 -> MTE2 flags, so loads, compute
 * and stores overlap. Every element is read before it is written, so out
 * may alias inp.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#include <math.h>
#include <stdlib.h>

#define ROWS_MAX 256 /* tokens per tile */
#define SLACK 1024   /* UB bytes left for alignment */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

typedef struct rope_args {
    float *out;
    const float *inp, *cos2, *sin2; /* tables [T, HD] */
    int64_t N, T, H, HD, n_rot;
    int64_t hend; /* heads a tile covers: n_rot in place, else H */
    int64_t G;    /* heads per tile */
    int64_t R;    /* tokens per tile */
    int64_t ld;   /* UB row stride of a tile: G * HD rounded up to 8 */
} rope_args;

/* Turns the rotated heads [h0, hr) of R rows of x into y (row stride ld,
 * head h at (h - h0) HD); c, s: the rows' tables (row stride ldc). */
static void rotate(hs_npu_local y, hs_npu_local x, hs_npu_local c, hs_npu_local s, const rope_args *a, int64_t rows,
                   int64_t h0, int64_t hr)
{
    const int64_t HD = a->HD, half = HD / 2, ldc = round8(HD);
    for (int64_t r = 0; r < rows; r++) {
        hs_npu_local cr = hs_npu_sub(c, r * ldc, HD), sr = hs_npu_sub(s, r * ldc, HD);
        for (int64_t h = h0; h < hr; h++) {
            const int64_t at = r * a->ld + (h - h0) * HD;
            hs_npu_local xo = hs_npu_sub(x, at, HD), yo = hs_npu_sub(y, at, HD);
            hs_npu_vbin(HS_V_MUL, yo, xo, cr, HD);
            hs_npu_vmla(yo, hs_npu_sub(x, at + half, half), sr, half);
            hs_npu_vmla(hs_npu_sub(y, at + half, half), xo, hs_npu_sub(sr, half, half), half);
        }
    }
}

static hs_status rope_block(hs_npu_kblock *blk, void *p)
{
    const rope_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int bi = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk);
    const int64_t k0 = a->N * bi / nb, k1 = a->N * (bi + 1) / nb, ldc = round8(a->HD), row = a->H * a->HD;
    hs_npu_local xb[2], yb[2], cb[2], sb[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &xb[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &yb[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * ldc, &cb[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * ldc, &sb[b]));
    }
    int64_t step = 0;
    for (int64_t k = k0; k < k1;) {
        const int64_t t0 = k % a->T, rows = min64(min64(a->R, k1 - k), a->T - t0); /* one sequence per tile */
        for (int64_t h0 = 0; h0 < a->hend; h0 += a->G, step++) {
            const int64_t h1 = min64(h0 + a->G, a->hend), at = k * row + h0 * a->HD;
            const int64_t hr = a->n_rot < h0 ? h0 : min64(h1, a->n_rot); /* rotated: [h0, hr), copied: [hr, h1) */
            const int b = (int)(step & 1);
            if (step >= 2) /* set b's previous tile is stored */
                hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, b);
            if (hr > h0) {
                hs_npu_copy_in(xb[b], a->ld, a->inp + at, row, rows, (hr - h0) * a->HD);
                hs_npu_copy_in(cb[b], ldc, a->cos2 + t0 * a->HD, a->HD, rows, a->HD);
                hs_npu_copy_in(sb[b], ldc, a->sin2 + t0 * a->HD, a->HD, rows, a->HD);
            }
            if (h1 > hr) /* copied heads go straight to the output tile */
                hs_npu_copy_in(hs_npu_sub(yb[b], (hr - h0) * a->HD, a->R * a->ld - (hr - h0) * a->HD), a->ld,
                               a->inp + at + (hr - h0) * a->HD, row, rows, (h1 - hr) * a->HD);
            hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, b);
            hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, b);
            rotate(yb[b], xb[b], cb[b], sb[b], a, rows, h0, hr);
            hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, b);
            hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, b);
            hs_npu_copy_out(a->out + at, row, yb[b], a->ld, rows, (h1 - h0) * a->HD);
            hs_npu_set_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, b);
        }
        k += rows;
    }
    for (int64_t s = step < 2 ? 0 : step - 2; s < step; s++)
        hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, (int)(s & 1));
    return hs_npu_core_status(c);
}

/* cos2[t] = [cos a | cos a], sin2[t] = [-sin a | sin a] (inverse: negated),
 * a = (pos0 + t) theta^(-2i/HD), in double as the CPU body. */
static void fill_tables(float *cos2, float *sin2, int64_t T, int64_t HD, float theta, int64_t pos0, int inverse)
{
    const int64_t half = HD / 2;
    const double sign = inverse ? -1.0 : 1.0;
    for (int64_t i = 0; i < half; i++) {
        const double inv_freq = pow((double)theta, -2.0 * (double)i / (double)HD);
        for (int64_t t = 0; t < T; t++) {
            double s, co;
            sincos((double)(pos0 + t) * inv_freq, &s, &co);
            cos2[t * HD + i] = cos2[t * HD + half + i] = (float)co;
            sin2[t * HD + half + i] = (float)(sign * s);
            sin2[t * HD + i] = -sin2[t * HD + half + i];
        }
    }
}

hs_status hs_npu_rope(const hs_device *dev, float *out, const float *inp, int64_t B, int64_t T, int64_t H, int64_t HD,
                      int64_t n_rot, float theta, int64_t pos0, int inverse)
{
    hs_npu *d = dev->npu;
    rope_args a = {.out = out, .inp = inp, .N = B * T, .T = T, .H = H, .HD = HD, .n_rot = n_rot};
    a.hend = out == inp ? n_rot : H;
    if (a.hend == 0)
        return HS_OK;
    /* per set: input and output tiles of R x ld, two table tiles of R x round8(HD) */
    const int64_t per_set = (hs_npu_spec_of(d)->ub_bytes - SLACK) / 4 / 2, ldc = round8(HD);
    a.G = a.hend;
    while (a.G > 1 && 2 * round8(a.G * HD) + 2 * ldc > per_set)
        a.G--;
    a.ld = round8(a.G * HD);
    a.R = min64(per_set / (2 * a.ld + 2 * ldc), ROWS_MAX);
    if (a.R < 1)
        a.R = 1; /* a head too wide for UB fails in hs_npu_alloc with the sizes named */
    const size_t tbytes = (size_t)(T * HD) * sizeof(float);
    void *dtab = NULL;
    float *host = n_rot > 0 ? malloc(2 * tbytes) : NULL;
    if (n_rot > 0 && !host)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_rope: %zu bytes of angle tables", 2 * tbytes);
    hs_status st = n_rot > 0 ? hs_npu_malloc(d, hs_npu_rope_workspace(T, HD), &dtab) : HS_OK;
    if (st == HS_OK && n_rot > 0) {
        if (hs_npu_mode_of(d) == HS_NPU_EXECUTE)
            fill_tables(host, host + T * HD, T, HD, theta, pos0, inverse);
        st = hs_npu_memcpy_h2d(d, dev->stream, dtab, host, 2 * tbytes);
        a.cos2 = dtab;
        a.sin2 = (const float *)dtab + T * HD;
    }
    const int64_t act = 4 * B * T * H * HD, tab = 4 * T * HD;
    const hs_npu_operand ops[] = {{out, act}, {inp, act}, {a.cos2, tab}, {a.sin2, tab}};
    const int64_t dims[] = {B, T, H, HD, n_rot};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    if (st == HS_OK)
        st = hs_npu_launch_cached(d, dev->stream, inverse ? "rope_bwd" : "rope_fwd",
                                  HS_NPU_LAUNCH_VECTOR, (int)min64(a.N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR)),
                                  rope_block, &a, &key);
    hs_npu_free_mem(d, dtab);
    free(host);
    return st;
}
