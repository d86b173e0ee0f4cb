/* Philox4x32-10 and the layout-independent uniform / normal streams. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hyperspeed/core.h"

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void assert_same_bits(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bits_of(a[i]) != bits_of(b[i]))
            fail_msg("element %zu: %08x vs %08x", i, bits_of(a[i]), bits_of(b[i]));
}

/* Random123's kat_vectors, "philox4x32 10" lines: counter, key, output. */
static void test_philox_known_answers(void **state)
{
    (void)state;
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        hs_philox4x32(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++)
            assert_int_equal(out[j], kat[i].out[j]);
    }
}

/* The documented mapping: element i reads block i/4, lane i%4, with
 * counter {i/4 lo, i/4 hi, tensor lo, tensor hi} and key {seed lo, seed hi}. */
static void block_for(uint64_t seed, uint64_t tid, uint64_t i, uint32_t out[4])
{
    uint64_t b = i / 4;
    const uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)tid, (uint32_t)(tid >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    hs_philox4x32(ctr, key, out);
}

static void test_mapping_formula(void **state)
{
    (void)state;
    const uint64_t seed = 0x0123456789abcdefull, tid = 0xfedcba9876543210ull;
    const uint64_t first = (1ull << 40) + 3;
    float u[16], z[16];
    hs_rng_uniform_fill(u, 16, seed, tid, first, 0.0f, 1.0f);
    hs_rng_normal(z, 16, seed, tid, first, 0.0f, 1.0f);
    for (uint64_t k = 0; k < 16; k++) {
        uint64_t i = first + k;
        uint32_t x[4];
        block_for(seed, tid, i, x);
        float want_u = (float)(x[i % 4] >> 8) * 0x1p-24f;
        assert_true(u[k] == want_u);
        assert_true(hs_rng_uniform(seed, tid, i) == want_u);

        /* Box-Muller in double: lanes (0,1) and (2,3) are pairs */
        unsigned p = (unsigned)(i % 4) / 2;
        double r = sqrt(-2.0 * log(((x[2 * p] >> 8) + 1) * 0x1p-24));
        double theta = 2.0 * M_PI * (x[2 * p + 1] >> 8) * 0x1p-24;
        double want_z = i % 2 ? r * sin(theta) : r * cos(theta);
        assert_true(fabs(z[k] - want_z) < 1e-5 * (1.0 + fabs(want_z)));
    }
}

/* Filling in pieces at any offsets gives the whole fill's bits. */
static void check_shards(size_t n, const size_t *cuts, size_t ncuts, int normal)
{
    float *whole = malloc(n * sizeof *whole), *parts = malloc(n * sizeof *parts);
    assert_non_null(whole);
    assert_non_null(parts);
    const uint64_t seed = 1234, tid = 7;
    if (normal)
        hs_rng_normal(whole, n, seed, tid, 0, 0.5f, 0.02f);
    else
        hs_rng_uniform_fill(whole, n, seed, tid, 0, -0.1f, 0.1f);
    memset(parts, 0, n * sizeof *parts);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        if (normal)
            hs_rng_normal(parts + start, end - start, seed, tid, start, 0.5f, 0.02f);
        else
            hs_rng_uniform_fill(parts + start, end - start, seed, tid, start, -0.1f, 0.1f);
        start = end;
    }
    assert_same_bits(whole, parts, n);
    free(whole);
    free(parts);
}

static void test_shard_property(void **state)
{
    (void)state;
    static const size_t small[] = {1, 7, 7, 333, 334, 335, 336, 500, 997, 999};
    check_shards(1000, small, sizeof small / sizeof small[0], 1);
    check_shards(1000, small, sizeof small / sizeof small[0], 0);

    /* Large fills run multi-threaded; pieces straddle the thread split. */
    static const size_t big[] = {3, 65537, 100001, 150002, 150003};
    check_shards(300001, big, sizeof big / sizeof big[0], 1);
    check_shards(300001, big, sizeof big / sizeof big[0], 0);

    /* The thread count does not change a value. */
    enum { BIG = 200003 };
    float *a = malloc(BIG * sizeof *a), *b = malloc(BIG * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    int threads = hs_num_threads();
    assert_int_equal(hs_set_num_threads(1), HS_OK);
    hs_rng_normal(a, BIG, 5, 6, 11, 0.0f, 1.0f);
    assert_int_equal(hs_set_num_threads(3), HS_OK);
    hs_rng_normal(b, BIG, 5, 6, 11, 0.0f, 1.0f);
    assert_same_bits(a, b, BIG);
    assert_int_equal(hs_set_num_threads(threads), HS_OK);
    free(a);
    free(b);

    /* Every prefix/suffix split of a short tensor, element by element. */
    float whole[37], one;
    hs_rng_normal(whole, 37, 99, 3, 0, 0.0f, 1.0f);
    for (size_t i = 0; i < 37; i++) {
        hs_rng_normal(&one, 1, 99, 3, i, 0.0f, 1.0f);
        assert_int_equal(bits_of(one), bits_of(whole[i]));
    }
}

static size_t count_equal(const float *a, const float *b, size_t n)
{
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += a[i] == b[i];
    return same;
}

static void test_streams_differ(void **state)
{
    (void)state;
    enum { N = 1000 };
    float a[N], b[N];
    hs_rng_normal(a, N, 42, 0, 0, 0.0f, 1.0f);
    hs_rng_normal(b, N, 42, 1, 0, 0.0f, 1.0f);
    assert_true(count_equal(a, b, N) < 5);
    hs_rng_normal(b, N, 43, 0, 0, 0.0f, 1.0f);
    assert_true(count_equal(a, b, N) < 5);
    hs_rng_normal(b, N, 42ull | (1ull << 32), 0, 0, 0.0f, 1.0f); /* high seed word matters */
    assert_true(count_equal(a, b, N) < 5);
    hs_rng_normal(b, N, 42, 1ull << 32, 0, 0.0f, 1.0f); /* high tensor-id word matters */
    assert_true(count_equal(a, b, N) < 5);
    hs_rng_normal(b, N, 42, 0, N, 0.0f, 1.0f); /* the next N elements */
    assert_true(count_equal(a, b, N) < 5);
    hs_rng_normal(b, N, 42, 0, 0, 0.0f, 1.0f); /* and the same stream again */
    assert_same_bits(a, b, N);
}

static void test_normal_statistics(void **state)
{
    (void)state;
    enum { N = 1000000 };
    float *z = malloc(N * sizeof *z);
    assert_non_null(z);
    hs_rng_normal(z, N, 2024, 5, 0, 0.0f, 1.0f);
    double sum = 0, sq = 0, lag = 0;
    size_t beyond1 = 0, beyond2 = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(isfinite(z[i]) && fabsf(z[i]) < 6.0f);
        sum += z[i];
        sq += (double)z[i] * z[i];
        if (i)
            lag += (double)z[i] * z[i - 1];
        beyond1 += fabsf(z[i]) > 1.0f;
        beyond2 += fabsf(z[i]) > 2.0f;
    }
    double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    /* standard errors: mean 0.001, sd 0.0007, tail fractions < 0.0005 */
    assert_true(fabs(mean) < 0.005);
    assert_true(fabs(sd - 1.0) < 0.005);
    assert_true(fabs(lag / N) < 0.005); /* the cos/sin halves of a pair are uncorrelated */
    assert_true(fabs((double)beyond1 / N - 0.3173) < 0.003);
    assert_true(fabs((double)beyond2 / N - 0.0455) < 0.002);

    hs_rng_normal(z, N, 2024, 6, 0, 3.0f, 0.5f);
    sum = sq = 0;
    for (size_t i = 0; i < N; i++) {
        sum += z[i];
        sq += (double)z[i] * z[i];
    }
    mean = sum / N;
    sd = sqrt(sq / N - mean * mean);
    assert_true(fabs(mean - 3.0) < 0.0025);
    assert_true(fabs(sd - 0.5) < 0.0025);
    free(z);
}

static void test_uniform_range(void **state)
{
    (void)state;
    enum { N = 1000000 };
    float *u = malloc(N * sizeof *u);
    assert_non_null(u);
    hs_rng_uniform_fill(u, N, 7, 8, 0, 0.0f, 1.0f);
    double sum = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(u[i] >= 0.0f && u[i] < 1.0f);
        sum += u[i];
    }
    assert_true(fabs(sum / N - 0.5) < 0.002);
    for (size_t i = 0; i < 1000; i++)
        assert_true(hs_rng_uniform(7, 8, i) == u[i]);

    /* [lo, hi) holds even where lo + (hi - lo) * u would round up to hi */
    hs_rng_uniform_fill(u, N, 7, 8, 0, -0.1f, 0.1f);
    for (size_t i = 0; i < N; i++)
        assert_true(u[i] >= -0.1f && u[i] < 0.1f);
    hs_rng_uniform_fill(u, N, 7, 8, 0, 1.0f, 1.0f + 0x1p-20f);
    for (size_t i = 0; i < N; i++)
        assert_true(u[i] >= 1.0f && u[i] < 1.0f + 0x1p-20f);

    hs_rng_uniform_fill(u, 10, 7, 8, 0, 2.0f, 2.0f); /* empty interval: lo */
    for (size_t i = 0; i < 10; i++)
        assert_true(u[i] == 2.0f);
    free(u);
}

static void test_zero_length(void **state)
{
    (void)state;
    float canary = 123.0f;
    hs_rng_normal(&canary, 0, 1, 2, 3, 0.0f, 1.0f);
    hs_rng_uniform_fill(&canary, 0, 1, 2, 5, 0.0f, 1.0f);
    assert_true(canary == 123.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers), cmocka_unit_test(test_mapping_formula),
        cmocka_unit_test(test_shard_property),       cmocka_unit_test(test_streams_differ),
        cmocka_unit_test(test_normal_statistics),    cmocka_unit_test(test_uniform_range),
        cmocka_unit_test(test_zero_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
