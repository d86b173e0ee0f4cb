/* Rotary position embedding on the CPU, half-split pairing (HF LLaMA's
 * rotate_half): in head h < n_rot of token t, at position p = pos0 + t,
 * element i < HD/2 pairs with i + HD/2 and the pair turns by
 * a = p * theta^(-2i/HD):
 *   out_i        = x_i cos a - x_{i+HD/2} sin a
 *   out_{i+HD/2} = x_{i+HD/2} cos a + x_i sin a
 * The backward is the transpose, the same turn by -a. The angles and their
 * sines are computed in double, once per (t, i) per call, and shared by all
 * batch rows and heads; each pair is read before it is written, so out may
 * alias inp. */
#include "kernels/cpu/seq.h"

#define PAIRS 128 /* pairs whose cos/sin one token keeps on the stack at a time */

void hs_cpu_rope(float *out, const float *inp, int64_t B, int64_t T, int64_t H, int64_t HD, int64_t n_rot, float theta,
                 int64_t pos0, int inverse)
{
    const int64_t half = HD / 2;
    const double sign = inverse ? -1.0 : 1.0;
    for (int64_t i0 = 0; i0 < half && n_rot > 0; i0 += PAIRS) {
        const int64_t np = half - i0 < PAIRS ? half - i0 : PAIRS;
        double inv_freq[PAIRS];
        for (int64_t i = 0; i < np; i++)
            inv_freq[i] = pow((double)theta, -2.0 * (double)(i0 + i) / (double)HD);
#pragma omp parallel for num_threads(hs_num_threads()) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            float cs[PAIRS], sn[PAIRS];
            for (int64_t i = 0; i < np; i++) {
                double s, c;
                sincos((double)(pos0 + t) * inv_freq[i], &s, &c);
                cs[i] = (float)c;
                sn[i] = (float)(sign * s);
            }
            for (int64_t b = 0; b < B; b++)
                for (int64_t h = 0; h < n_rot; h++) {
                    const int64_t off = ((b * T + t) * H + h) * HD + i0;
                    const float *x = inp + off;
                    float *y = out + off;
#pragma omp simd
                    for (int64_t i = 0; i < np; i++) {
                        float x0 = x[i], x1 = x[i + half];
                        y[i] = x0 * cs[i] - x1 * sn[i];
                        y[i + half] = x1 * cs[i] + x0 * sn[i];
                    }
                }
        }
    }
    if (out == inp || n_rot == H)
        return;
#pragma omp parallel for num_threads(hs_num_threads()) schedule(static)
    for (int64_t bt = 0; bt < B * T; bt++)
        memcpy(out + (bt * H + n_rot) * HD, inp + (bt * H + n_rot) * HD, (size_t)((H - n_rot) * HD) * sizeof(float));
}
