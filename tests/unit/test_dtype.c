/* dtypes and fp32 <-> bf16 / fp16 conversions.
 *
 * References here are written independently of the library: 16-bit
 * formats are decoded with ldexp, and fp32 -> 16-bit rounding is computed
 * in double arithmetic (rint under the default round-to-nearest-even mode),
 * never with bit tricks like the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* A binary format: significand bits (with the implicit one), smallest
 * normal exponent, exponent bias, mantissa width, largest finite value. */
typedef struct {
    int precision, emin, bias, mant_bits;
    double max;
} format;

static const format FP16 = {11, -14, 15, 10, 65504.0};
static const format BF16 = {8, -126, 127, 7, 0x1.fep127};

/* Value of a 16-bit pattern (NaN for NaNs). */
static double ref_decode(const format *f, uint16_t h)
{
    int exp_bits = 15 - f->mant_bits;
    uint32_t emax = (1u << exp_bits) - 1;
    uint32_t e = (h >> f->mant_bits) & emax;
    uint32_t m = h & ((1u << f->mant_bits) - 1);
    double v;
    if (e == emax)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, f->emin - f->mant_bits);
    else
        v = ldexp((double)(m + (1u << f->mant_bits)), (int)e - f->bias - f->mant_bits);
    return (h & 0x8000) ? -v : v;
}

static int ref_is_nan(const format *f, uint16_t h) { return isnan(ref_decode(f, h)); }

/* x rounded to nearest even in format f, as a double (+-Inf on overflow). */
static double ref_round(const format *f, float x)
{
    double d = fabs((double)x);
    if (d == 0.0 || isinf(d))
        return (double)x;
    int e;
    frexp(d, &e); /* d = m * 2^e, m in [0.5, 1): unbiased exponent e - 1 */
    int exp = e - 1 < f->emin ? f->emin : e - 1;
    double quantum = ldexp(1.0, exp - (f->precision - 1));
    double r = rint(d / quantum) * quantum; /* d / quantum is exact */
    if (r > f->max)
        r = INFINITY;
    return copysign(r, (double)x);
}

/* Checks one fp32 -> 16-bit result against the reference. */
static void check_narrow(const format *f, float x, uint16_t got)
{
    uint32_t u = bits_of(x);
    if (isnan(x)) {
        /* NaN stays NaN, keeps its sign, and comes out quiet. */
        if (!ref_is_nan(f, got) || (got & 0x8000) != ((u >> 16) & 0x8000) ||
            !(got & (1u << (f->mant_bits - 1)))) {
            fail_msg("NaN %08x -> %04x", u, got);
        }
        return;
    }
    double want = ref_round(f, x);
    double have = ref_decode(f, got);
    if (have != want || !signbit(have) != !signbit(want))
        fail_msg("%s(%a = %08x) -> %04x = %a, want %a", f == &FP16 ? "fp16" : "bf16", (double)x, u, got, have, want);
}

/* ------------------------------------------------------------ inputs */

typedef struct {
    float *v;
    size_t n, cap;
} floats;

static void push(floats *a, float x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 1024;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        assert_non_null(a->v);
    }
    a->v[a->n++] = x;
}

static void push_pm(floats *a, float x)
{
    push(a, x);
    push(a, -x);
}

/* Each finite 16-bit magnitude, the halfway point to the next one up (for
 * the largest finite value that is the overflow threshold), and the fp32
 * neighbours of that halfway point: every tie and near-tie. */
static void push_ties(floats *a, const format *f)
{
    for (uint32_t h = 0; h < 0x8000; h++) {
        double v = ref_decode(f, (uint16_t)h);
        if (!isfinite(v))
            continue;
        double next = v == f->max ? v + ldexp(1.0, ilogb(v) - (f->precision - 1)) /* one ulp past max */
                                  : ref_decode(f, (uint16_t)(h + 1));
        float mid = (float)((v + next) / 2.0);
        assert_true((double)mid == (v + next) / 2.0); /* halfway points are fp32-exact */
        push_pm(a, (float)v);
        push_pm(a, mid);
        push_pm(a, nextafterf(mid, 0.0f));
        push_pm(a, nextafterf(mid, INFINITY));
    }
}

static floats make_inputs(void)
{
    floats a = {0};
    for (uint64_t u = 0; u <= 0xffffffffu; u += 4099) /* stratified over all patterns */
        push(&a, float_of((uint32_t)u));
    for (uint32_t u = 1; u < 0x00800000u; u += 997) /* fp32 denormals */
        push_pm(&a, float_of(u));
    push_ties(&a, &FP16);
    push_ties(&a, &BF16);
    static const uint32_t special[] = {
        0x00000000, 0x00000001, 0x007fffff, 0x00800000, 0x00008000, 0x00018000, 0x00008001, 0x7f7fffff,
        0x7f800000, 0x7f800001, 0x7fbfffff, 0x7fc00000, 0x7fffffff, 0x7f802000, 0x7f801fff, 0x33000000,
        0x33000001, 0x32ffffff, 0x33400000, 0x387fe000, 0x387ff000, 0x38800000, 0x477fe000, 0x477fefff,
        0x477ff000, 0x477ff001, 0x47800000, 0x3f800000, 0x3f808000, 0x3f818000, 0x3f7fffff, 0x7f7f8000,
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        push(&a, float_of(special[i]));
        push(&a, float_of(special[i] | 0x80000000u));
    }
    return a;
}

/* ------------------------------------------------------------- tests */

static void test_names_sizes_parse(void **state)
{
    (void)state;
    static const size_t sizes[HS_DTYPE_COUNT] = {4, 2, 2, 4, 8, 1};
    static const char *const names[HS_DTYPE_COUNT] = {"fp32", "bf16", "fp16", "int32", "int64", "int8"};
    for (int i = 0; i < HS_DTYPE_COUNT; i++) {
        assert_int_equal(hs_dtype_size((hs_dtype)i), sizes[i]);
        assert_string_equal(hs_dtype_name((hs_dtype)i), names[i]);
        hs_dtype dt = HS_DTYPE_COUNT;
        assert_int_equal(hs_dtype_parse(names[i], &dt), HS_OK);
        assert_int_equal(dt, i);
    }
    assert_int_equal(hs_dtype_size(HS_DTYPE_COUNT), 0);
    assert_int_equal(hs_dtype_size((hs_dtype)-1), 0);
    assert_string_equal(hs_dtype_name(HS_DTYPE_COUNT), "invalid");
    assert_string_equal(hs_dtype_name((hs_dtype)-1), "invalid");

    hs_dtype dt = HS_FP16;
    assert_int_equal(hs_dtype_parse("float32", &dt), HS_ERR_NOT_FOUND);
    assert_non_null(strstr(hs_last_error(), "float32"));
    assert_int_equal(dt, HS_FP16); /* untouched on failure */
    assert_int_equal(hs_dtype_parse("FP32", &dt), HS_ERR_NOT_FOUND);
    assert_int_equal(hs_dtype_parse("", &dt), HS_ERR_NOT_FOUND);
    assert_int_equal(hs_dtype_parse("invalid", &dt), HS_ERR_NOT_FOUND);
    assert_int_equal(hs_dtype_parse(NULL, &dt), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_dtype_parse("fp32", NULL), HS_ERR_INVALID_ARGUMENT);
}

/* Hand-checked cases, so a reader sees the rules in action. */
static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(hs_fp32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(hs_fp32_to_bf16(float_of(0x3f808000)), 0x3f80); /* tie, even stays */
    assert_int_equal(hs_fp32_to_bf16(float_of(0x3f818000)), 0x3f82); /* tie, odd rounds up */
    assert_int_equal(hs_fp32_to_bf16(float_of(0x3f808001)), 0x3f81);
    assert_int_equal(hs_fp32_to_bf16(FLT_MAX), 0x7f80);              /* rounds to Inf */
    assert_int_equal(hs_fp32_to_bf16(float_of(0x00018000)), 0x0002); /* denormal tie, not flushed */
    assert_int_equal(hs_fp32_to_bf16(float_of(0x80008001)), 0x8001);
    assert_int_equal(hs_fp32_to_bf16(float_of(0x7f800001)), 0x7fc0); /* sNaN with low payload only */
    assert_int_equal(hs_fp32_to_bf16(-INFINITY), 0xff80);

    assert_int_equal(hs_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(hs_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(hs_fp32_to_fp16(nextafterf(65520.0f, 0.0f)), 0x7bff);
    assert_int_equal(hs_fp32_to_fp16(65520.0f), 0x7c00);
    assert_int_equal(hs_fp32_to_fp16(-65520.0f), 0xfc00);
    assert_int_equal(hs_fp32_to_fp16(0x1p-24f), 0x0001);
    assert_int_equal(hs_fp32_to_fp16(0x1p-25f), 0x0000); /* tie to even: zero */
    assert_int_equal(hs_fp32_to_fp16(nextafterf(0x1p-25f, 1.0f)), 0x0001);
    assert_int_equal(hs_fp32_to_fp16(0x3p-25f), 0x0002); /* 1.5 ulp ties to 2 */
    assert_int_equal(hs_fp32_to_fp16(0x1.ff8p-15f), 0x03ff);                 /* largest subnormal */
    assert_int_equal(hs_fp32_to_fp16(nextafterf(0x1.ffcp-15f, 0.0f)), 0x03ff);
    assert_int_equal(hs_fp32_to_fp16(0x1.ffcp-15f), 0x0400); /* tie: up to the smallest normal */
    assert_int_equal(hs_fp32_to_fp16(-0.0f), 0x8000);
    assert_int_equal(hs_fp32_to_fp16(FLT_TRUE_MIN), 0x0000);
    assert_int_equal(hs_fp32_to_fp16(float_of(0xffc00000)), 0xfe00);

    assert_true(hs_fp16_to_fp32(0x0001) == 0x1p-24f);
    assert_true(hs_fp16_to_fp32(0x7bff) == 65504.0f);
    assert_int_equal(bits_of(hs_fp16_to_fp32(0x7c01)), 0x7fc02000); /* sNaN comes out quiet */
    assert_int_equal(bits_of(hs_bf16_to_fp32(0xff81)), 0xffc10000);
}

/* All 65,536 patterns of one format: decode matches the reference, and
 * 16 -> 32 -> 16 gives the pattern back (a NaN comes back quiet). */
static void check_all_patterns(const format *f, float (*widen)(uint16_t), uint16_t (*narrow)(float))
{
    uint16_t quiet = (uint16_t)(1u << (f->mant_bits - 1));
    for (uint32_t i = 0; i < 0x10000; i++) {
        uint16_t h = (uint16_t)i;
        float x = widen(h);
        if (ref_is_nan(f, h)) {
            /* quiet bit set, sign and payload kept, round trip quiets */
            uint32_t u = bits_of(x);
            assert_true(isnan(x));
            assert_int_equal(u >> 31, h >> 15);
            assert_int_equal((u >> (23 - f->mant_bits)) & ((1u << f->mant_bits) - 1), (h & (quiet * 2 - 1)) | quiet);
            assert_int_equal(narrow(x), h | quiet);
            continue;
        }
        double want = ref_decode(f, h);
        if ((double)x != want || !signbit(x) != !signbit(want))
            fail_msg("%04x -> %a, want %a", h, (double)x, want);
        if (narrow(x) != h)
            fail_msg("%04x -> %a -> %04x", h, (double)x, narrow(x));
    }
}

static void test_bf16_all_patterns(void **state)
{
    (void)state;
    check_all_patterns(&BF16, hs_bf16_to_fp32, hs_fp32_to_bf16);
    /* bf16 -> fp32 is the plain 16-bit shift for every non-NaN */
    for (uint32_t h = 0; h < 0x10000; h++)
        if (!ref_is_nan(&BF16, (uint16_t)h))
            assert_int_equal(bits_of(hs_bf16_to_fp32((uint16_t)h)), h << 16);
}

static void test_fp16_all_patterns(void **state)
{
    (void)state;
    check_all_patterns(&FP16, hs_fp16_to_fp32, hs_fp32_to_fp16);
}

static void test_narrow_rne(void **state)
{
    floats *in = *state;
    for (size_t i = 0; i < in->n; i++) {
        check_narrow(&BF16, in->v[i], hs_fp32_to_bf16(in->v[i]));
        check_narrow(&FP16, in->v[i], hs_fp32_to_fp16(in->v[i]));
    }
}

/* ------------------------------------------------------------ bulk paths */

/* Every instruction level's bulk conversions are checked on any machine
 * that runs the level (an AVX-512 machine checks all three). */
#define EACH_LEVEL(f)                                                                                                  \
    for (int lvl_ = 0; lvl_ <= (int)hs_cpu_isa_native(); lvl_++)                                                      \
        for (const hs_convert_fns *f = hs_convert_fns_for((hs_isa)lvl_); f; f = NULL)

/* Narrowing n values (from src) matches the scalar functions bit for bit. */
static void check_bulk_narrow(const hs_convert_fns *f, const float *src, size_t n, uint16_t *dst)
{
    f->fp32_to_bf16(dst, src, n);
    for (size_t i = 0; i < n; i++)
        if (dst[i] != hs_fp32_to_bf16(src[i]))
            fail_msg("bulk bf16(%08x) = %04x, scalar %04x", bits_of(src[i]), dst[i], hs_fp32_to_bf16(src[i]));
    f->fp32_to_fp16(dst, src, n);
    for (size_t i = 0; i < n; i++)
        if (dst[i] != hs_fp32_to_fp16(src[i]))
            fail_msg("bulk fp16(%08x) = %04x, scalar %04x", bits_of(src[i]), dst[i], hs_fp32_to_fp16(src[i]));
}

/* Bulk == scalar bit for bit, from an odd offset with an odd length so the
 * SIMD bodies, their tails and unaligned loads all run. */
static void test_bulk_narrow_matches_scalar(void **state)
{
    floats *in = *state;
    size_t n = in->n - 1;
    if (n % 2 == 0)
        n--;
    uint16_t *dst = malloc(n * sizeof *dst);
    assert_non_null(dst);
    EACH_LEVEL(f)
    check_bulk_narrow(f, in->v + 1, n, dst);
    free(dst);
}

/* For each of the 65,536 16-bit patterns h, the fp32 values around the
 * bf16 value h << 16 that decide its rounding: exact, one ulp above, just
 * below the tie, the tie, just above it, and the last before the next
 * pattern; then a stride through all 2^32 fp32 patterns. */
static void test_bulk_narrow_all_patterns(void **state)
{
    (void)state;
    static const uint32_t low[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff};
    enum { NL = sizeof low / sizeof low[0], N = 0x10000 * NL, STRIDE = 4099 };
    float *src = malloc(N * sizeof *src);
    uint16_t *dst = malloc(N * sizeof *dst);
    assert_non_null(src);
    assert_non_null(dst);
    for (uint32_t h = 0; h < 0x10000; h++)
        for (int k = 0; k < NL; k++)
            src[h * NL + k] = float_of(h << 16 | low[k]);
    EACH_LEVEL(f)
    check_bulk_narrow(f, src, N, dst);
    size_t n = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += STRIDE) {
        src[n++] = float_of((uint32_t)u);
        if (n == N || u + STRIDE > 0xffffffffu) {
            EACH_LEVEL(f)
            check_bulk_narrow(f, src, n, dst);
            n = 0;
        }
    }
    free(src);
    free(dst);
}

/* All 65,536 patterns widen as the scalar functions do. */
static void test_bulk_widen_matches_scalar(void **state)
{
    (void)state;
    uint16_t *src = malloc(0x10001 * sizeof *src);
    float *dst = malloc(0x10000 * sizeof *dst);
    assert_non_null(src);
    assert_non_null(dst);
    for (uint32_t i = 0; i < 0x10000; i++)
        src[i + 1] = (uint16_t)i; /* from offset 1: unaligned */
    EACH_LEVEL(f)
    {
        f->bf16_to_fp32(dst, src + 1, 0x10000);
        for (uint32_t i = 0; i < 0x10000; i++)
            assert_int_equal(bits_of(dst[i]), bits_of(hs_bf16_to_fp32((uint16_t)i)));
        f->fp16_to_fp32(dst, src + 1, 0x10000);
        for (uint32_t i = 0; i < 0x10000; i++)
            assert_int_equal(bits_of(dst[i]), bits_of(hs_fp16_to_fp32((uint16_t)i)));
    }
    free(src);
    free(dst);
}

/* Every length 0..64 at every offset 0..3: tails, and no write past n. */
static void test_bulk_lengths(void **state)
{
    (void)state;
    enum { MAX = 64 + 4 };
    float f[MAX], fw[MAX + 1];
    uint16_t h[MAX + 1];
    for (int i = 0; i < MAX; i++)
        f[i] = (float)(i - 30) * 1.37f + 0.001f * (float)i;
    EACH_LEVEL(fns)
    for (size_t off = 0; off < 4; off++) {
        for (size_t n = 0; n + off <= 64; n++) {
            for (int which = 0; which < 2; which++) {
                memset(h, 0xab, sizeof h);
                (which ? fns->fp32_to_fp16 : fns->fp32_to_bf16)(h, f + off, n);
                for (size_t i = 0; i < n; i++)
                    assert_int_equal(h[i], which ? hs_fp32_to_fp16(f[off + i]) : hs_fp32_to_bf16(f[off + i]));
                assert_int_equal(h[n], 0xabab);

                memset(fw, 0xcd, sizeof fw);
                (which ? fns->fp16_to_fp32 : fns->bf16_to_fp32)(fw, h, n);
                for (size_t i = 0; i < n; i++)
                    assert_int_equal(bits_of(fw[i]), bits_of(which ? hs_fp16_to_fp32(h[i]) : hs_bf16_to_fp32(h[i])));
                assert_int_equal(bits_of(fw[n]), 0xcdcdcdcd);
            }
        }
    }
}

/* Lone fp32 denormals and a NaN inside vectors of normals: no level may
 * flush a denormal (vcvtneps2bf16 would) or lose the NaN. */
static void test_bulk_bf16_denormal_lanes(void **state)
{
    (void)state;
    float src[67];
    uint16_t dst[67];
    for (int i = 0; i < 67; i++)
        src[i] = 1.0f + (float)i / 64.0f;
    src[5] = float_of(0x00018000);
    src[21] = float_of(0x80400000);
    src[47] = FLT_TRUE_MIN;
    src[48] = NAN;
    src[66] = float_of(0x00008001);
    EACH_LEVEL(f)
    {
        f->fp32_to_bf16(dst, src, 67);
        for (int i = 0; i < 67; i++)
            assert_int_equal(dst[i], hs_fp32_to_bf16(src[i]));
        assert_int_equal(dst[5], 0x0002);
        assert_int_equal(dst[21], 0x8040);
        assert_int_equal(dst[66], 0x0001);
    }
}

/* The public functions use the level in force, and a cap changes it. */
static void test_dispatch_follows_cap(void **state)
{
    floats *in = *state;
    const hs_isa native = hs_cpu_isa_native();
    uint16_t *dst = malloc(in->n * sizeof *dst);
    assert_non_null(dst);
    for (int l = 0; l <= (int)native; l++) {
        assert_int_equal(hs_cpu_set_isa((hs_isa)l), HS_OK);
        assert_int_equal(hs_cpu_isa(), l);
        hs_convert_fp32_to_bf16(dst, in->v, in->n);
        for (size_t i = 0; i < in->n; i++)
            assert_int_equal(dst[i], hs_fp32_to_bf16(in->v[i]));
    }
    assert_int_equal(hs_cpu_set_isa(native), HS_OK);
    free(dst);
}

/* Level names, parsing, and the cap's bad values. */
static void test_isa_api(void **state)
{
    (void)state;
    hs_isa l;
    for (int i = 0; i < HS_ISA_COUNT; i++) {
        assert_int_equal(hs_isa_parse(hs_isa_name((hs_isa)i), &l), HS_OK);
        assert_int_equal(l, i);
    }
    assert_string_equal(hs_isa_name(HS_ISA_AVX2), "avx2");
    assert_string_equal(hs_isa_name(HS_ISA_COUNT), "invalid");
    assert_int_equal(hs_isa_parse("avx1024", &l), HS_ERR_NOT_FOUND);
    assert_non_null(strstr(hs_last_error(), "avx1024"));
    assert_int_equal(hs_isa_parse(NULL, &l), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_cpu_set_isa((hs_isa)7), HS_ERR_INVALID_ARGUMENT);
    if (hs_cpu_isa_native() < HS_ISA_AVX512) {
        assert_int_equal(hs_cpu_set_isa(HS_ISA_AVX512), HS_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(hs_last_error(), "at most"));
    }
    assert_true(hs_cpu_isa() <= hs_cpu_isa_native());
    assert_true(strlen(hs_cpu_name()) > 0);
    print_message("CPU: %s, native level %s\n", hs_cpu_name(), hs_isa_name(hs_cpu_isa_native()));
}

static int setup_inputs(void **state)
{
    floats *a = malloc(sizeof *a);
    if (!a)
        return -1;
    *a = make_inputs();
    *state = a;
    return 0;
}

static int teardown_inputs(void **state)
{
    floats *a = *state;
    free(a->v);
    free(a);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_sizes_parse),
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_bf16_all_patterns),
        cmocka_unit_test(test_fp16_all_patterns),
        cmocka_unit_test(test_narrow_rne),
        cmocka_unit_test(test_bulk_narrow_matches_scalar),
        cmocka_unit_test(test_bulk_narrow_all_patterns),
        cmocka_unit_test(test_bulk_widen_matches_scalar),
        cmocka_unit_test(test_bulk_lengths),
        cmocka_unit_test(test_bulk_bf16_denormal_lanes),
        cmocka_unit_test(test_dispatch_follows_cap),
        cmocka_unit_test(test_isa_api),
    };
    return cmocka_run_group_tests(tests, setup_inputs, teardown_inputs);
}
