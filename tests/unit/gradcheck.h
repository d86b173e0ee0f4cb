/* Test helpers shared by the kernel tests: deterministic test data and a
 * finite-difference gradient check in double precision.
 *
 * The pattern every kernel test follows:
 *   1. write the op's forward once more in double, naively (the reference);
 *   2. define loss(x) = sum(ref_forward(x) * R) for a fixed random R, so
 *      the upstream gradient fed to the kernel's backward is R;
 *   3. compare the fp32 kernel forward with the double reference, and the
 *      fp32 kernel backward with central differences of loss in double.
 */
#ifndef HS_TEST_GRADCHECK_H
#define HS_TEST_GRADCHECK_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hyperspeed/core.h"
#include "hyperspeed/npu.h"

/* `call` returns `status` and leaves a message in hs_last_error(). */
#define EXPECT_ERR(call, status)                                                                                       \
    do {                                                                                                               \
        hs_clear_error();                                                                                              \
        assert_int_equal((call), (status));                                                                            \
        assert_true(hs_last_error()[0] != '\0');                                                                       \
    } while (0)

/* The device handle of a spare NPU (estimate mode, "test" preset), for the
 * checks that a tensor on a device other than the CPU is refused. The NPU
 * lives until the test program exits. */
static hs_npu *gc_spare_npu;

static inline void gc_free_spare_npu(void) { hs_npu_free(gc_spare_npu); }

static inline hs_device *gc_npu_device(void)
{
    if (!gc_spare_npu) {
        hs_npu_spec s;
        assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
        assert_int_equal(hs_npu_new(&s, HS_NPU_ESTIMATE, &gc_spare_npu), HS_OK);
        atexit(gc_free_spare_npu);
    }
    return hs_npu_device(gc_spare_npu);
}

/* Zeroed test buffers (the test fails when out of memory). */
static inline float *fz(size_t n)
{
    float *p = calloc(n, sizeof *p);
    assert_non_null(p);
    return p;
}

static inline double *dz(size_t n)
{
    double *p = calloc(n, sizeof *p);
    assert_non_null(p);
    return p;
}

/* xorshift64*: test data that does not depend on the library's RNG. */
static inline double gc_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0); /* [0,1) */
}

/* Fills f (float) and d (double, may be NULL) with the same U[-scale, scale) values. */
static inline void gc_fill(float *f, double *d, size_t n, double scale, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        float v = (float)((2.0 * gc_rand(&s) - 1.0) * scale);
        if (f)
            f[i] = v;
        if (d)
            d[i] = v;
    }
}

/* Largest |a - b| / (atol + rtol |b|) over n elements; <= 1 means "close". */
static inline double gc_close_ratio(const float *a, const double *b, size_t n, double atol, double rtol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs(b[i]));
        if (!(r <= worst)) /* also catches NaN */
            worst = r;
    }
    return worst;
}

typedef double (*gc_loss_fn)(const double *x, void *ctx);

/* Central-difference check of `analytic` (the kernel's fp32 gradient of
 * loss w.r.t. x) at up to max_checks evenly spread elements of x (all when
 * n <= max_checks). x is perturbed in place and restored. Returns the worst
 * ratio as gc_close_ratio does, and prints the worst element. */
static inline double gc_check(const char *what, gc_loss_fn loss, void *ctx, double *x, size_t n,
                              const float *analytic, double h, double atol, double rtol, size_t max_checks)
{
    size_t stride = n <= max_checks ? 1 : n / max_checks;
    double worst = 0, worst_num = 0, worst_ana = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i += stride) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = loss(x, ctx);
        x[i] = x0 - h;
        double lm = loss(x, ctx);
        x[i] = x0;
        double num = (lp - lm) / (2 * h);
        double r = fabs((double)analytic[i] - num) / (atol + rtol * fabs(num));
        if (!(r <= worst)) {
            worst = r;
            worst_i = i;
            worst_num = num;
            worst_ana = analytic[i];
        }
    }
    if (worst > 1)
        fprintf(stderr, "gradcheck %s: worst at %zu: analytic %.9g numeric %.9g (ratio %.3g)\n", what, worst_i,
                worst_ana, worst_num, worst);
    return worst;
}

#endif
