/* Counter-based RNG: Philox4x32-10 and the per-element streams built on it.
 *
 * Element i of the logical tensor (seed, tensor_id) reads Philox block
 * floor(i / 4) and lane i % 4:
 *
 *   x = philox4x32_10(counter = {b lo, b hi, tensor_id lo, tensor_id hi},
 *                     key     = {seed lo, seed hi}),   b = floor(i / 4)
 *
 * Nothing depends on where a fill starts or how it is split into threads,
 * so a shard filled on its own equals the slice of the whole tensor.
 */
#include "hyperspeed/core.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

/* One round: two 32x32->64 multiplies, the high halves mixed with the
 * other words and the round key. */
static inline void philox_round(uint32_t *c0, uint32_t *c1, uint32_t *c2, uint32_t *c3, uint32_t k0, uint32_t k1)
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * *c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * *c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ *c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ *c3 ^ k1;
    *c1 = (uint32_t)p1;
    *c3 = (uint32_t)p0;
    *c0 = n0;
    *c2 = n2;
}

/* The key is bumped by the Weyl constants after every round (the bump after
 * the tenth is never used). */
void hs_philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1)
        philox_round(&c0, &c1, &c2, &c3, k0, k1);
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

#define BATCH 16 /* blocks generated side by side: 64 elements */

/* Philox of blocks b0 .. b0 + m - 1 (m <= BATCH) of tensor (seed, tensor_id);
 * x[w][j] is output word w of block b0 + j. One block's rounds are a serial
 * chain of multiplies, so running independent blocks side by side lets the
 * compiler vectorise them: about 2.5x faster than one block at a time. */
static void philox_blocks(uint64_t seed, uint64_t tensor_id, uint64_t b0, int m, uint32_t x[4][BATCH])
{
    for (int j = 0; j < m; j++) {
        uint64_t b = b0 + (uint64_t)j;
        x[0][j] = (uint32_t)b;
        x[1][j] = (uint32_t)(b >> 32);
        x[2][j] = (uint32_t)tensor_id;
        x[3][j] = (uint32_t)(tensor_id >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
#pragma omp simd
        for (int j = 0; j < m; j++)
            philox_round(&x[0][j], &x[1][j], &x[2][j], &x[3][j], k0, k1);
    }
}

/* The top 24 bits: every value is an exact float in [0, 1 - 2^-24]. */
static inline float unit_float(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }

enum dist { DIST_UNIFORM, DIST_NORMAL };

/* g[4j + l] = value of lane l of block b0 + j: a uniform, or for a normal
 * one half of a Box-Muller pair (lanes 0,1 from words 0,1; lanes 2,3 from
 * words 2,3). The radius uses (x >> 8) + 1 so its uniform lies in (0, 1]
 * and log never sees 0; the largest |z| is then sqrt(48 ln 2) ~ 5.77. */
static void gen_blocks(enum dist d, uint64_t seed, uint64_t tensor_id, uint64_t b0, int m, float g[4 * BATCH])
{
    uint32_t x[4][BATCH];
    philox_blocks(seed, tensor_id, b0, m, x);
    for (int j = 0; j < m; j++) {
        if (d == DIST_UNIFORM) {
            for (int l = 0; l < 4; l++)
                g[4 * j + l] = unit_float(x[l][j]);
            continue;
        }
        for (int l = 0; l < 4; l += 2) {
            float u = (float)((x[l][j] >> 8) + 1) * 0x1p-24f;
            float r = sqrtf(-2.0f * logf(u));
            float s, c;
            sincosf(6.28318530717958647692f * unit_float(x[l + 1][j]), &s, &c);
            g[4 * j + l] = r * c;
            g[4 * j + l + 1] = r * s;
        }
    }
}

/* shift + scale * g, capped at `cap` (for U[lo, hi): the product can round
 * up to hi itself, which the half-open interval excludes). */
static inline float affine(float g, float shift, float scale, float cap)
{
    float v = shift + scale * g;
    return v > cap ? cap : v;
}

/* Elements [first, first + n): whole batches of blocks, in parallel when
 * large (each block depends on nothing else), with a partial block or
 * batch at either end. */
static void fill(float *dst, size_t n, uint64_t seed, uint64_t tensor_id, uint64_t first, enum dist d, float shift,
                 float scale, float cap)
{
    float g[4 * BATCH];
    size_t k = 0;
    unsigned lane = (unsigned)(first % 4);
    if (lane != 0 && n > 0) {
        gen_blocks(d, seed, tensor_id, first / 4, 1, g);
        for (; lane < 4 && k < n; lane++, k++)
            dst[k] = affine(g[lane], shift, scale, cap);
    }
    size_t blocks = (n - k) / 4;
    uint64_t b0 = (first + k) / 4;
    float *body = dst + k;
#pragma omp parallel for if (blocks > 16384) schedule(static)
    for (size_t b = 0; b < blocks; b += BATCH) {
        int m = blocks - b < BATCH ? (int)(blocks - b) : BATCH;
        float gb[4 * BATCH];
        gen_blocks(d, seed, tensor_id, b0 + b, m, gb);
        for (size_t j = 0; j < 4 * (size_t)m; j++)
            body[4 * b + j] = affine(gb[j], shift, scale, cap);
    }
    k += 4 * blocks;
    if (k < n) {
        gen_blocks(d, seed, tensor_id, (first + k) / 4, 1, g);
        for (lane = 0; k < n; lane++, k++)
            dst[k] = affine(g[lane], shift, scale, cap);
    }
}

float hs_rng_uniform(uint64_t seed, uint64_t tensor_id, uint64_t index)
{
    float g[4 * BATCH];
    gen_blocks(DIST_UNIFORM, seed, tensor_id, index / 4, 1, g);
    return g[index % 4];
}

void hs_rng_normal(float *dst, size_t n, uint64_t seed, uint64_t tensor_id, uint64_t first, float mean, float std)
{
    fill(dst, n, seed, tensor_id, first, DIST_NORMAL, mean, std, INFINITY);
}

void hs_rng_uniform_fill(float *dst, size_t n, uint64_t seed, uint64_t tensor_id, uint64_t first, float lo, float hi)
{
    float cap = lo < hi ? nextafterf(hi, lo) : INFINITY;
    fill(dst, n, seed, tensor_id, first, DIST_UNIFORM, lo, hi - lo, cap);
}
