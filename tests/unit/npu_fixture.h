/* Fixtures of the NPU tests: devices and device copies of host data. The
 * test fails (cmocka) when one cannot be made. */
#ifndef HS_TEST_NPU_FIXTURE_H
#define HS_TEST_NPU_FIXTURE_H

#include "hyperspeed.h"
#include "hyperspeed/npu.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* A device of the given preset and mode. */
static inline hs_npu *npu_make(const char *preset, hs_npu_mode mode)
{
    hs_npu_spec s;
    hs_npu *d;
    assert_int_equal(hs_npu_spec_preset(preset, &s), HS_OK);
    assert_int_equal(hs_npu_new(&s, mode, &d), HS_OK);
    return d;
}

/* The NPU that on_npu places tensors on (npu_use): the tests' own
 * shorthand; the library has no current device. */
static hs_npu *fixture_npu;

static inline void npu_use(hs_npu *d) { fixture_npu = d; }

/* View t on the NPU of the last npu_use. */
static inline hs_tensor on_npu(hs_tensor t) { return hs_on(t, hs_npu_device(fixture_npu)); }

/* One device per mode on the "test" preset. */
typedef struct devs {
    hs_npu *exec, *est;
} devs;

static inline devs devs_new(void)
{
    return (devs){npu_make("test", HS_NPU_EXECUTE), npu_make("test", HS_NPU_ESTIMATE)};
}

static inline void devs_free(devs *d)
{
    hs_npu_free(d->exec);
    hs_npu_free(d->est);
}

/* Device copy of n floats of host (NULL: uninitialised; estimate mode only
 * accounts the copy). */
static inline float *npu_up(hs_npu *d, const float *host, size_t n)
{
    void *p;
    assert_int_equal(hs_npu_malloc(d, n * sizeof(float), &p), HS_OK);
    if (host)
        assert_int_equal(hs_npu_memcpy_h2d(d, NULL, p, host, n * sizeof(float)), HS_OK);
    return p;
}

/* Copies n floats back (execute mode) and frees the device buffer. */
static inline void npu_down(hs_npu *d, float *host, float *dev, size_t n)
{
    if (host && hs_npu_mode_of(d) == HS_NPU_EXECUTE)
        assert_int_equal(hs_npu_memcpy_d2h(d, NULL, host, dev, n * sizeof(float)), HS_OK);
    assert_int_equal(hs_npu_free_mem(d, dev), HS_OK);
}

#endif
