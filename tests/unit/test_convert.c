/* hs_cast and hs_fill: the CPU bodies against the scalar conversions of
 * core (special values, ties, subnormals, sizes across the OpenMP blocks),
 * the NPU bodies on the "test" preset in execute mode against the CPU bit
 * for bit, the same calls in estimate mode at identical simulated cost,
 * and every bad argument. */
#include "gradcheck.h"
#include "npu_fixture.h"

#include "hyperspeed/kernels.h"
#include "hyperspeed/npu.h"

#include <string.h>

static const int64_t SIZES[] = {1, 13, 64, 1000, 100003};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

/* n floats covering what a conversion must get right: zeros of both signs,
 * Inf, NaN, values exactly halfway between two bf16 or fp16 neighbours,
 * fp16 subnormals and overflow, then random values over many magnitudes. */
static float *specimens(size_t n)
{
    static const uint32_t bits[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                    0x3f808000u, 0x3f818000u, 0x3f800001u, 0x33800000u, 0x387fc000u,
                                    0x477fe000u, 0x47800000u, 0x00000001u};
    float *x = fz(n);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        if (i < sizeof bits / sizeof bits[0]) {
            memcpy(&x[i], &bits[i], 4);
            continue;
        }
        const double mag = ldexp(1.0, (int)(gc_rand(&s) * 40) - 20);
        x[i] = (float)((2 * gc_rand(&s) - 1) * mag);
    }
    return x;
}

static void same_bits(const void *a, const void *b, size_t bytes)
{
    assert_int_equal(memcmp(a, b, bytes), 0);
}

/* --------------------------------------------------------------------- CPU */

static void test_cpu_cast(void **state)
{
    (void)state;
    for (size_t k = 0; k < NSIZES; k++) {
        const int64_t n = SIZES[k];
        float *x = specimens((size_t)n), *back = fz((size_t)n), *ref32 = fz((size_t)n);
        uint16_t *h = calloc((size_t)n, 2), *ref = calloc((size_t)n, 2);
        assert_non_null(h);
        assert_non_null(ref);
        const hs_dtype halves[2] = {HS_BF16, HS_FP16};
        for (int d = 0; d < 2; d++) {
            const hs_dtype dt = halves[d];
            for (int64_t i = 0; i < n; i++)
                ref[i] = dt == HS_BF16 ? hs_fp32_to_bf16(x[i]) : hs_fp32_to_fp16(x[i]);
            hs_tensor tx = hs_view1(x, HS_FP32, n), th = hs_view2(h, dt, 1, n), tb = hs_view1(back, HS_FP32, n);
            assert_int_equal(hs_cast(&th, &tx), HS_OK);
            same_bits(h, ref, (size_t)n * 2);
            for (int64_t i = 0; i < n; i++)
                ref32[i] = dt == HS_BF16 ? hs_bf16_to_fp32(h[i]) : hs_fp16_to_fp32(h[i]);
            assert_int_equal(hs_cast(&tb, &th), HS_OK);
            same_bits(back, ref32, (size_t)n * 4);
        }
        free(x), free(back), free(ref32), free(h), free(ref);
    }
}

static void test_cpu_fill(void **state)
{
    (void)state;
    const float values[] = {0.0f, -0.0f, 1.5f, 1.00390625f, -3e-8f};
    for (size_t k = 0; k < NSIZES; k++) {
        const int64_t n = SIZES[k];
        float *x = fz((size_t)n);
        uint16_t *h = calloc((size_t)n, 2);
        assert_non_null(h);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            hs_tensor tx = hs_view1(x, HS_FP32, n);
            assert_int_equal(hs_fill(&tx, values[v]), HS_OK);
            for (int64_t i = 0; i < n; i++)
                same_bits(&x[i], &values[v], 4);
            const hs_dtype halves[2] = {HS_BF16, HS_FP16};
            for (int d = 0; d < 2; d++) {
                hs_tensor th = hs_view1(h, halves[d], n);
                const uint16_t want = halves[d] == HS_BF16 ? hs_fp32_to_bf16(values[v]) : hs_fp32_to_fp16(values[v]);
                assert_int_equal(hs_fill(&th, values[v]), HS_OK);
                for (int64_t i = 0; i < n; i++)
                    assert_int_equal(h[i], want);
            }
        }
        free(x), free(h);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float x[8] = {0}, y[8] = {0};
    int32_t iv[8] = {0};
    uint16_t h[8] = {0};
    hs_tensor tx = hs_view1(x, HS_FP32, 8), ty = hs_view1(y, HS_FP32, 8), th = hs_view1(h, HS_BF16, 8);
    hs_tensor th7 = hs_view1(h, HS_BF16, 7), ti = hs_view1(iv, HS_INT32, 8), tf16 = hs_view1(h, HS_FP16, 8);
    EXPECT_ERR(hs_cast(&ty, &tx), HS_ERR_DTYPE); /* fp32 -> fp32 */
    assert_non_null(strstr(hs_last_error(), "fp32 -> fp32"));
    EXPECT_ERR(hs_cast(&tf16, &th), HS_ERR_DTYPE); /* bf16 -> fp16 */
    EXPECT_ERR(hs_cast(&tx, &ti), HS_ERR_DTYPE);
    EXPECT_ERR(hs_cast(&th7, &tx), HS_ERR_SHAPE_MISMATCH);
    assert_non_null(strstr(hs_last_error(), "7 elements"));
    EXPECT_ERR(hs_cast(NULL, &tx), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_cast(&th, NULL), HS_ERR_INVALID_ARGUMENT);
    hs_tensor bad = tx;
    bad.ndim = 5;
    EXPECT_ERR(hs_cast(&th, &bad), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_fill(&ti, 1.0f), HS_ERR_DTYPE);
    assert_non_null(strstr(hs_last_error(), "int32"));
    EXPECT_ERR(hs_fill(NULL, 1.0f), HS_ERR_INVALID_ARGUMENT);
    hs_tensor on = hs_on(th, gc_npu_device());
    EXPECT_ERR(hs_cast(&on, &tx), HS_ERR_DEVICE); /* mixed devices */
    assert_non_null(strstr(hs_last_error(), "on the npu device, expected cpu"));
}

/* --------------------------------------------------------------------- NPU */

/* Simulated cost of one call: stream time and the launch's cycles. */
typedef struct cost {
    double seconds;
    uint64_t cycles;
} cost;

static double clock_of(hs_npu *d) { return hs_npu_stream_time(hs_npu_default_stream(d)); }

static void same_cost(cost a, cost b)
{
    assert_true(a.seconds > 0);
    assert_true(fabs(a.seconds - b.seconds) <= 1e-12 * a.seconds);
    assert_true(a.cycles == b.cycles);
}

/* Casts n elements of host src (src_dt) to dst_dt on device d; the result
 * comes back into out (execute mode). */
static cost npu_cast(hs_npu *d, void *out, hs_dtype dst_dt, const void *src, hs_dtype src_dt, int64_t n)
{
    npu_use(d);
    const size_t in_bytes = (size_t)n * hs_dtype_size(src_dt), out_bytes = (size_t)n * hs_dtype_size(dst_dt);
    void *ds, *dd;
    assert_int_equal(hs_npu_malloc(d, in_bytes, &ds), HS_OK);
    assert_int_equal(hs_npu_malloc(d, out_bytes, &dd), HS_OK);
    assert_int_equal(hs_npu_memcpy_h2d(d, NULL, ds, src, in_bytes), HS_OK);
    hs_tensor ts = hs_view1(ds, src_dt, n), td = hs_view1(dd, dst_dt, n);
    ts.device = td.device = hs_npu_device(d);
    const double t0 = clock_of(d);
    assert_int_equal(hs_cast(&td, &ts), HS_OK);
    const cost c = {clock_of(d) - t0, hs_npu_last_launch(d).cycles};
    if (hs_npu_mode_of(d) == HS_NPU_EXECUTE)
        assert_int_equal(hs_npu_memcpy_d2h(d, NULL, out, dd, out_bytes), HS_OK);
    assert_int_equal(hs_npu_free_mem(d, ds), HS_OK);
    assert_int_equal(hs_npu_free_mem(d, dd), HS_OK);
    return c;
}

static void test_npu_cast(void **state)
{
    (void)state;
    devs v = devs_new();
    const hs_dtype halves[2] = {HS_BF16, HS_FP16};
    for (size_t k = 0; k < NSIZES; k++) {
        const int64_t n = SIZES[k];
        float *x = specimens((size_t)n), *back = fz((size_t)n), *ref32 = fz((size_t)n);
        uint16_t *h = calloc((size_t)n, 2), *ref = calloc((size_t)n, 2);
        assert_non_null(h);
        assert_non_null(ref);
        for (int d = 0; d < 2; d++) {
            const hs_dtype dt = halves[d];
            hs_tensor tx = hs_view1(x, HS_FP32, n), tr = hs_view1(ref, dt, n), tr32 = hs_view1(ref32, HS_FP32, n);
            assert_int_equal(hs_cast(&tr, &tx), HS_OK);
            assert_int_equal(hs_cast(&tr32, &tr), HS_OK);
            same_cost(npu_cast(v.exec, h, dt, x, HS_FP32, n), npu_cast(v.est, NULL, dt, x, HS_FP32, n));
            same_bits(h, ref, (size_t)n * 2);
            same_cost(npu_cast(v.exec, back, HS_FP32, ref, dt, n), npu_cast(v.est, NULL, HS_FP32, ref, dt, n));
            same_bits(back, ref32, (size_t)n * 4);
        }
        free(x), free(back), free(ref32), free(h), free(ref);
    }
    devs_free(&v);
}

/* Fills n elements of dtype dt with value on device d; the result comes
 * back into out (execute mode). */
static cost npu_fill(hs_npu *d, void *out, hs_dtype dt, float value, int64_t n)
{
    npu_use(d);
    const size_t bytes = (size_t)n * hs_dtype_size(dt);
    void *dd;
    assert_int_equal(hs_npu_malloc(d, bytes, &dd), HS_OK);
    hs_tensor t = hs_view1(dd, dt, n);
    t = on_npu(t);
    const double t0 = clock_of(d);
    assert_int_equal(hs_fill(&t, value), HS_OK);
    const cost c = {clock_of(d) - t0, hs_npu_last_launch(d).cycles};
    if (hs_npu_mode_of(d) == HS_NPU_EXECUTE)
        assert_int_equal(hs_npu_memcpy_d2h(d, NULL, out, dd, bytes), HS_OK);
    assert_int_equal(hs_npu_free_mem(d, dd), HS_OK);
    return c;
}

static void test_npu_fill(void **state)
{
    (void)state;
    devs v = devs_new();
    const hs_dtype dts[3] = {HS_FP32, HS_BF16, HS_FP16};
    const float values[] = {0.0f, -0.0f, 1.00390625f, -7.25f};
    for (size_t k = 0; k < NSIZES; k++) {
        const int64_t n = SIZES[k];
        void *got = calloc((size_t)n, 4), *ref = calloc((size_t)n, 4);
        assert_non_null(got);
        assert_non_null(ref);
        for (int d = 0; d < 3; d++) {
            for (size_t j = 0; j < sizeof values / sizeof values[0]; j++) {
                hs_tensor tr = hs_view1(ref, dts[d], n);
                assert_int_equal(hs_fill(&tr, values[j]), HS_OK);
                memset(got, 0x5a, (size_t)n * 4);
                same_cost(npu_fill(v.exec, got, dts[d], values[j], n), npu_fill(v.est, NULL, dts[d], values[j], n));
                same_bits(got, ref, (size_t)n * hs_dtype_size(dts[d]));
            }
        }
        free(got), free(ref);
    }
    devs_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_cast),
        cmocka_unit_test(test_cpu_fill),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_npu_cast),
        cmocka_unit_test(test_npu_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
