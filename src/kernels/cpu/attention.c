/* Causal self-attention on the CPU, flash style (FlashAttention-2, Dao 2023):
 * scores are made and consumed one (query tile, key tile) block at a time,
 * so memory is O(T) per head and no T x T matrix ever exists.
 *
 * Layout. qkv is [B,T,C+2KV] = [q | k | v] per token, C = NH*HD query
 * columns and KV = NKV*HD key and value columns; the queries come from
 * the call's qkv, the keys and values from its kv (the same buffer for
 * self-attention, another block of the sequence for context parallelism).
 * Masking: key s is visible to query t when s <= t + shift, shift 0 for
 * the causal block at the same positions and T for a key block wholly
 * before the queries (every key visible, no extra test in the loops). Query head h reads the
 * key/value head h / (NH/NKV) (grouped-query attention; NKV = NH is
 * multi-head, NKV = 1 multi-query): q at qkv[t][h*HD], k at C + g*HD, v at
 * C + KV + g*HD. Score blocks are kept transposed, St[key][query], so
 * the softmax statistics of the BR queries of a tile are vectors: the
 * online max/sum updates run across queries with no horizontal reductions,
 * and the K (and V) rows feed the products straight from qkv without being
 * transposed. Every product is one register-blocked kernel, mm().
 *
 * Instruction sets. mm() keeps an 8 x 32 block of C in registers: sixteen
 * 16-float vectors, which fits AVX-512's 32 registers but not AVX2's 16, and
 * GCC lowers 16-float vector code badly where it is not native. So the
 * tile functions come three times: an AVX-512 build with explicit 16-float
 * vectors, and AVX2 and baseline builds of plain loops that the vectoriser
 * sizes to the machine. The driver picks the one of the level in use
 * (hs_cpu_isa) per call.
 */
#include "kernels/cpu/dense.h"
#include "kernels/cpu/seq.h"

#include <omp.h>

#define BR 32 /* queries per tile: a vector pair per key */
#define BC 64 /* keys per tile */
#define MR 8  /* rows of C per register block in mm(); the unroll pragmas there match it */

#define AVX512 __attribute__((target("arch=x86-64-v4"), optimize("no-trapping-math")))
#define AVX2 __attribute__((target("arch=x86-64-v3"), optimize("no-trapping-math")))
#define BASELINE __attribute__((optimize("no-trapping-math")))

/* 16 floats; aligned(4) makes every load and store unaligned-safe. */
typedef float vf16 __attribute__((vector_size(64), aligned(4)));

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* rows (1..MR, a constant after inlining) rows of mm() with AVX-512 vectors:
 * each rows x 32 block of C stays in registers while k runs (the loops over
 * r unroll fully), and every scalar of A is broadcast against the two
 * vectors of B loaded once per k. */
static inline __attribute__((always_inline)) void mm_rows_avx512(int rows, int64_t N, int64_t K, const float *A,
                                                                 int64_t am, int64_t ak, const float *B, int64_t ldb,
                                                                 float *C, int64_t ldc, int accumulate)
{
    for (int64_t j = 0; j < N; j += 32) {
        vf16 c[MR][2];
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                c[r][h] = accumulate ? *(const vf16 *)(C + r * ldc + j + 16 * h) : (vf16){0};
        const float *a = A, *b = B + j;
        for (int64_t k = 0; k < K; k++, a += ak, b += ldb) {
            vf16 b0 = *(const vf16 *)b, b1 = *(const vf16 *)(b + 16);
#pragma GCC unroll 8
            for (int r = 0; r < rows; r++) {
                float x = a[r * am];
                c[r][0] += x * b0;
                c[r][1] += x * b1;
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                *(vf16 *)(C + r * ldc + j + 16 * h) = c[r][h];
    }
}

/* The same block with plain loops, vectorised at the machine's width. */
static inline __attribute__((always_inline)) void mm_rows_portable(int rows, int64_t N, int64_t K, const float *A,
                                                                   int64_t am, int64_t ak, const float *B, int64_t ldb,
                                                                   float *C, int64_t ldc, int accumulate)
{
    for (int64_t j = 0; j < N; j += 32) {
        float c[MR][32];
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++)
#pragma omp simd
            for (int h = 0; h < 32; h++)
                c[r][h] = accumulate ? C[r * ldc + j + h] : 0.0f;
        const float *a = A, *b = B + j;
        for (int64_t k = 0; k < K; k++, a += ak, b += ldb)
#pragma GCC unroll 8
            for (int r = 0; r < rows; r++) {
                const float x = a[r * am];
#pragma omp simd
                for (int h = 0; h < 32; h++)
                    c[r][h] += x * b[h];
            }
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++)
#pragma omp simd
            for (int h = 0; h < 32; h++)
                C[r * ldc + j + h] = c[r][h];
    }
}

/* C[M,N] = A B (or C += A B when accumulate), with A(m,k) = A[m*am + k*ak]
 * so that A may be read in either orientation; B and C are row-major with
 * leading dimensions ldb, ldc. N must be a multiple of 32; M and K are free.
 * wide (a constant after inlining) selects the AVX-512 block. */
static inline __attribute__((always_inline)) void mm(int wide, int64_t M, int64_t N, int64_t K, const float *A,
                                                     int64_t am, int64_t ak, const float *B, int64_t ldb, float *C,
                                                     int64_t ldc, int accumulate)
{
    int64_t i = 0;
    for (; i + MR <= M; i += MR) {
        if (wide)
            mm_rows_avx512(MR, N, K, A + i * am, am, ak, B, ldb, C + i * ldc, ldc, accumulate);
        else
            mm_rows_portable(MR, N, K, A + i * am, am, ak, B, ldb, C + i * ldc, ldc, accumulate);
    }
    for (; i < M; i++) {
        if (wide)
            mm_rows_avx512(1, N, K, A + i * am, am, ak, B, ldb, C + i * ldc, ldc, accumulate);
        else
            mm_rows_portable(1, N, K, A + i * am, am, ak, B, ldb, C + i * ldc, ldc, accumulate);
    }
}

/* dst[d][r] = scale * src[r][d] for r < n; columns n..BR-1 zero. */
static inline __attribute__((always_inline)) void transpose_tile(float *dst, const float *src, int64_t ld, int64_t n,
                                                                 int64_t HD, float scale)
{
    for (int64_t d = 0; d < HD; d++) {
#pragma omp simd
        for (int64_t r = 0; r < n; r++)
            dst[d * BR + r] = scale * src[r * ld + d];
        for (int64_t r = n; r < BR; r++)
            dst[d * BR + r] = 0.0f;
    }
}

/* Rows [0,n) of src (HD wide, stride ld) as a matrix mm() can take as B with
 * N = HDp: src itself when HD is already a multiple of 32, else a
 * zero-padded copy in buf. */
static const float *padded_rows(const float *src, int64_t ld, int64_t n, int64_t HD, int64_t HDp, float *buf,
                                int64_t *ldb)
{
    if (HD == HDp) {
        *ldb = ld;
        return src;
    }
    for (int64_t r = 0; r < n; r++) {
        memcpy(buf + r * HDp, src + r * ld, (size_t)HD * sizeof(float));
        memset(buf + r * HDp + HD, 0, (size_t)(HDp - HD) * sizeof(float));
    }
    *ldb = HDp;
    return buf;
}

/* The calling thread's workspace, shared out to its OpenMP team: one
 * allocation on the first call (or a larger shape), none afterwards. */
static float *workspace(size_t floats)
{
    static _Thread_local hs_scratch s;
    return hs_scratch_get(&s, floats * sizeof(float));
}

static size_t forward_floats(int64_t HD)
{
    int64_t HDp = round_up(HD, 32);
    return (size_t)(HDp * BR + BR * HDp + BC * BR + BC * HDp + 4 * BR);
}

/* Forward of one query tile [q0, q0+BR) of one head. With S = Q K^T / sqrt(HD)
 * (key s > query t + shift is -inf), for each key tile j up to the last
 * visible key:
 *   m' = max(m, rowmax S_j);  P = exp(S_j - m')
 *   l  = l exp(m - m') + rowsum P;  O = O exp(m - m') + P V_j;  m = m'
 * then out = O / l and lse = m + log l.
 * q, and k, v of its key/value head: rows of stride ld; out: rows of stride
 * C; lse: this head's [T]. */
static inline __attribute__((always_inline)) void forward_tile(int wide, float *out, float *lse, const float *q,
                                                               const float *k, const float *v, int64_t ld, int64_t C,
                                                               int64_t T, int64_t HD, int64_t q0, int64_t shift,
                                                               float *w)
{
    const int64_t HDp = round_up(HD, 32), nq = T - q0 < BR ? T - q0 : BR, qend = q0 + nq;
    const int64_t kend = qend + shift < T ? qend + shift : T;
    float *Qt = w, *O = Qt + HDp * BR, *St = O + BR * HDp, *Vs = St + BC * BR;
    float *m = Vs + BC * HDp, *l = m + BR, *mt = l + BR, *alpha = mt + BR;

    transpose_tile(Qt, q + q0 * ld, ld, nq, HD, 1.0f / sqrtf((float)HD));
    memset(O, 0, (size_t)(BR * HDp) * sizeof(float));
    for (int r = 0; r < BR; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < kend; k0 += BC) {
        const int64_t nk = kend - k0 < BC ? kend - k0 : BC;
        mm(wide, nk, BR, HD, k + k0 * ld, ld, 1, Qt, BR, St, BR, 0);
        for (int r = 0; r < BR; r++)
            mt[r] = -INFINITY;
        for (int64_t c = 0; c < nk; c++) {
            float *s = St + c * BR;
#pragma omp simd
            for (int r = 0; r < BR; r++) {
                s[r] = k0 + c <= q0 + r + shift ? s[r] : -INFINITY;
                mt[r] = s[r] > mt[r] ? s[r] : mt[r];
            }
        }
#pragma omp simd
        for (int r = 0; r < BR; r++) {
            float mn = mt[r] > m[r] ? mt[r] : m[r];
            alpha[r] = hs_fast_exp(m[r] - mn);
            l[r] *= alpha[r];
            m[r] = mn;
        }
        for (int64_t c = 0; c < nk; c++) {
            float *s = St + c * BR;
#pragma omp simd
            for (int r = 0; r < BR; r++) {
                s[r] = hs_fast_exp(s[r] - m[r]);
                l[r] += s[r];
            }
        }
        for (int r = 0; r < BR; r++) {
            const float a = alpha[r];
            if (a != 1.0f)
#pragma omp simd
                for (int64_t d = 0; d < HDp; d++)
                    O[r * HDp + d] *= a;
        }
        int64_t ldv;
        const float *vb = padded_rows(v + k0 * ld, ld, nk, HD, HDp, Vs, &ldv);
        mm(wide, BR, HDp, nk, St, 1, BR, vb, ldv, O, HDp, 1);
    }
    for (int64_t r = 0; r < nq; r++) {
        const float inv = 1.0f / l[r];
#pragma omp simd
        for (int64_t d = 0; d < HD; d++)
            out[(q0 + r) * C + d] = O[r * HDp + d] * inv;
        lse[q0 + r] = m[r] + logf(l[r]);
    }
}

typedef void forward_fn(float *, float *, const float *, const float *, const float *, int64_t, int64_t, int64_t,
                        int64_t, int64_t, int64_t, float *);

AVX512 static void forward_tile_avx512(float *out, float *lse, const float *q, const float *k, const float *v,
                                       int64_t ld, int64_t C, int64_t T, int64_t HD, int64_t q0, int64_t shift,
                                       float *w)
{
    forward_tile(1, out, lse, q, k, v, ld, C, T, HD, q0, shift, w);
}

AVX2 static void forward_tile_avx2(float *out, float *lse, const float *q, const float *k, const float *v, int64_t ld,
                                   int64_t C, int64_t T, int64_t HD, int64_t q0, int64_t shift, float *w)
{
    forward_tile(0, out, lse, q, k, v, ld, C, T, HD, q0, shift, w);
}

BASELINE static void forward_tile_baseline(float *out, float *lse, const float *q, const float *k, const float *v,
                                           int64_t ld, int64_t C, int64_t T, int64_t HD, int64_t q0, int64_t shift,
                                           float *w)
{
    forward_tile(0, out, lse, q, k, v, ld, C, T, HD, q0, shift, w);
}

hs_status hs_cpu_attention_forward(float *out, float *lse, const hs_attention_call *a)
{
    const int64_t B = a->B, T = a->T, NH = a->NH, NKV = a->NKV, HD = a->HD, shift = a->causal ? 0 : T;
    const int nt = hs_num_threads();
    const size_t per = forward_floats(HD);
    float *ws = workspace(nt * per);
    if (!ws)
        return HS_ERR_OUT_OF_MEMORY;
    const hs_isa isa = hs_cpu_isa();
    forward_fn *tile = isa == HS_ISA_AVX512 ? forward_tile_avx512
                       : isa == HS_ISA_AVX2 ? forward_tile_avx2
                                            : forward_tile_baseline;
    const int64_t C = NH * HD, KV = NKV * HD, ld = C + 2 * KV, rep = NH / NKV, tiles = (T + BR - 1) / BR;
    /* Round-robin tiles: a head's cheap early and costly late query tiles
     * spread over the threads. */
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int64_t it = 0; it < B * NH * tiles; it++) {
        const int64_t b = it / (NH * tiles), h = it / tiles % NH, qt = it % tiles;
        const float *q = a->qkv + b * T * ld + h * HD, *k = a->kv + b * T * ld + C + h / rep * HD;
        tile(out + b * T * C + h * HD, lse + (b * NH + h) * T, q, k, k + KV, ld, C, T, HD, qt * BR, shift,
             ws + omp_get_thread_num() * per);
    }
    return HS_OK;
}

static size_t backward_floats(int64_t T, int64_t HD)
{
    int64_t HDp = round_up(HD, 32);
    return (size_t)(3 * T * HDp + 2 * HDp * BR + 3 * BR * HDp + 2 * BC * BR + 2 * BR);
}

/* Backward of one key/value head and the query heads that read it,
 * FlashAttention-2 style with the probabilities recomputed from lse. With
 * D_i = rowsum(dO_i * O_i) (which equals rowsum(P_i * dP_i)), for each query
 * head of the group, query tile i and key tile j up to the last visible key:
 *   P   = exp(Q_i K_j^T / sqrt(HD) - lse_i)       (0 where key > query + shift)
 *   dV_j += P^T dO_i;    dP = dO_i V_j^T;    dS = P * (dP - D_i)
 *   dQ_i += dS K_j / sqrt(HD);    dK_j += dS^T Q_i / sqrt(HD)
 * One thread owns the group, so dK and dV gather over its query heads in
 * its workspace without races and in a fixed order; they are added to dqkv
 * at the end (into dkv), dQ after each query tile (into dq). The pointers
 * are batch b's rows: qkv, kv, dq and dkv of stride ld = C + 2KV, dout and
 * o of stride C, lse [NH,T]; the group is key/value head g and query heads
 * [g*rep, (g+1)*rep). */
static inline __attribute__((always_inline)) void backward_group(int wide, float *dq, float *dkv, const float *dout,
                                                                 const float *qkv, const float *kv, const float *o,
                                                                 const float *lse, int64_t ld, int64_t C, int64_t KV,
                                                                 int64_t T, int64_t HD, int64_t g, int64_t rep,
                                                                 int64_t shift, float *w)
{
    const int64_t HDp = round_up(HD, 32);
    const float scale = 1.0f / sqrtf((float)HD);
    const float *k = kv + C + g * HD, *v = k + KV;
    float *dK = w, *dV = dK + T * HDp, *Ks = dV + T * HDp, *Qt = Ks + T * HDp, *dOt = Qt + HDp * BR;
    float *Qs = dOt + HDp * BR, *dOs = Qs + BR * HDp, *dQ = dOs + BR * HDp, *Pt = dQ + BR * HDp, *dSt = Pt + BC * BR;
    float *D = dSt + BC * BR, *L = D + BR;

    memset(dK, 0, (size_t)(2 * T * HDp) * sizeof(float));
    int64_t ldk, ldq, lddo;
    const float *kb = padded_rows(k, ld, T, HD, HDp, Ks, &ldk);
    for (int64_t h = g * rep; h < (g + 1) * rep; h++) {
        const float *q = qkv + h * HD, *dOh = dout + h * HD, *oh = o + h * HD, *lh = lse + h * T;
        float *dqh = dq + h * HD;
        for (int64_t q0 = 0; q0 < T; q0 += BR) {
            const int64_t nq = T - q0 < BR ? T - q0 : BR, qend = q0 + nq;
            const int64_t kend = qend + shift < T ? qend + shift : T;
            transpose_tile(Qt, q + q0 * ld, ld, nq, HD, scale);
            transpose_tile(dOt, dOh + q0 * C, C, nq, HD, 1.0f);
            const float *qb = padded_rows(q + q0 * ld, ld, nq, HD, HDp, Qs, &ldq);
            const float *dob = padded_rows(dOh + q0 * C, C, nq, HD, HDp, dOs, &lddo);
            for (int64_t r = 0; r < BR; r++) {
                float dd = 0.0f;
                if (r < nq) {
                    const float *dr = dOh + (q0 + r) * C, *orow = oh + (q0 + r) * C;
#pragma omp simd reduction(+ : dd)
                    for (int64_t d = 0; d < HD; d++)
                        dd += dr[d] * orow[d];
                }
                D[r] = dd;
                L[r] = r < nq ? lh[q0 + r] : 0.0f;
            }
            memset(dQ, 0, (size_t)(BR * HDp) * sizeof(float));
            for (int64_t k0 = 0; k0 < kend; k0 += BC) {
                const int64_t nk = kend - k0 < BC ? kend - k0 : BC;
                mm(wide, nk, BR, HD, k + k0 * ld, ld, 1, Qt, BR, Pt, BR, 0);
                mm(wide, nk, BR, HD, v + k0 * ld, ld, 1, dOt, BR, dSt, BR, 0);
                for (int64_t c = 0; c < nk; c++) {
                    float *p = Pt + c * BR, *ds = dSt + c * BR;
#pragma omp simd
                    for (int r = 0; r < BR; r++) {
                        p[r] = hs_fast_exp((k0 + c <= q0 + r + shift ? p[r] : -INFINITY) - L[r]);
                        ds[r] = p[r] * (ds[r] - D[r]);
                    }
                }
                mm(wide, nk, HDp, nq, Pt, BR, 1, dob, lddo, dV + k0 * HDp, HDp, 1);
                mm(wide, nk, HDp, nq, dSt, BR, 1, qb, ldq, dK + k0 * HDp, HDp, 1);
                mm(wide, BR, HDp, nk, dSt, 1, BR, kb + k0 * ldk, ldk, dQ, HDp, 1);
            }
            for (int64_t r = 0; r < nq; r++)
#pragma omp simd
                for (int64_t d = 0; d < HD; d++)
                    dqh[(q0 + r) * ld + d] += scale * dQ[r * HDp + d];
        }
    }
    float *dk = dkv + C + g * HD, *dv = dk + KV;
    for (int64_t t = 0; t < T; t++)
#pragma omp simd
        for (int64_t d = 0; d < HD; d++) {
            dk[t * ld + d] += scale * dK[t * HDp + d];
            dv[t * ld + d] += dV[t * HDp + d];
        }
}

/* The group's operands: batch b's rows of every buffer (backward_group). */
typedef struct group_args {
    float *dq, *dkv;
    const float *dout, *qkv, *kv, *o, *lse;
} group_args;

typedef void backward_fn(const group_args *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         float *);

AVX512 static void backward_group_avx512(const group_args *a, int64_t ld, int64_t C, int64_t KV, int64_t T, int64_t HD,
                                         int64_t g, int64_t rep, int64_t shift, float *w)
{
    backward_group(1, a->dq, a->dkv, a->dout, a->qkv, a->kv, a->o, a->lse, ld, C, KV, T, HD, g, rep, shift, w);
}

AVX2 static void backward_group_avx2(const group_args *a, int64_t ld, int64_t C, int64_t KV, int64_t T, int64_t HD,
                                     int64_t g, int64_t rep, int64_t shift, float *w)
{
    backward_group(0, a->dq, a->dkv, a->dout, a->qkv, a->kv, a->o, a->lse, ld, C, KV, T, HD, g, rep, shift, w);
}

BASELINE static void backward_group_baseline(const group_args *a, int64_t ld, int64_t C, int64_t KV, int64_t T,
                                             int64_t HD, int64_t g, int64_t rep, int64_t shift, float *w)
{
    backward_group(0, a->dq, a->dkv, a->dout, a->qkv, a->kv, a->o, a->lse, ld, C, KV, T, HD, g, rep, shift, w);
}

hs_status hs_cpu_attention_backward(float *dq, float *dkv, const float *dout, const float *out, const float *lse,
                                    const hs_attention_call *a)
{
    const int64_t B = a->B, T = a->T, NH = a->NH, NKV = a->NKV, HD = a->HD, shift = a->causal ? 0 : T;
    const int nt = hs_num_threads();
    const size_t per = backward_floats(T, HD);
    float *ws = workspace(nt * per);
    if (!ws)
        return HS_ERR_OUT_OF_MEMORY;
    const hs_isa isa = hs_cpu_isa();
    backward_fn *group = isa == HS_ISA_AVX512 ? backward_group_avx512
                         : isa == HS_ISA_AVX2 ? backward_group_avx2
                                              : backward_group_baseline;
    const int64_t C = NH * HD, KV = NKV * HD, ld = C + 2 * KV;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bg = 0; bg < B * NKV; bg++) {
        const int64_t b = bg / NKV, g = bg % NKV, rows = b * T * ld;
        const group_args ga = {dq + rows,         dkv + rows,      dout + b * T * C,  a->qkv + rows,
                               a->kv + rows,      out + b * T * C, lse + b * NH * T};
        group(&ga, ld, C, KV, T, HD, g, NH / NKV, shift, ws + omp_get_thread_num() * per);
    }
    return HS_OK;
}
