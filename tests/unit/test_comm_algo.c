/* The pure parts of the collectives (no MPI launch): the block partition,
 * the algorithm rule, and the reduction step (formats, one rounding of
 * 16-bit results, NaN, AVG, integer wrap-around). */
#include "gradcheck.h"

#include "comm/comm_internal.h"

#include <string.h>

static void test_block(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 3, 7, 8, 1000, 1001};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++)
        for (int p = 1; p <= 9; p++) {
            size_t next = 0;
            for (int r = 0; r < p; r++) {
                size_t off, len;
                hs_comm_block(counts[k], p, r, &off, &len);
                assert_int_equal(off, next);
                assert_int_equal(len, counts[k] / (size_t)p + ((size_t)r < counts[k] % (size_t)p));
                next += len;
            }
            assert_int_equal(next, counts[k]);
        }
}

static void test_pick(void **state)
{
    (void)state;
    const size_t mib = (size_t)1 << 20;
    /* one node: halving-doubling for powers of two, else the ring */
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 4, 1, 256 * mib), HS_ALGO_HALVING_DOUBLING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 2, 1, 4), HS_ALGO_HALVING_DOUBLING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 3, 1, 4), HS_ALGO_RING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 6, 1, 256 * mib), HS_ALGO_RING);
    /* across nodes: halving-doubling up to 1 MiB, then the ring */
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 8, 2, mib), HS_ALGO_HALVING_DOUBLING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 8, 2, mib + 1), HS_ALGO_RING);
    /* forcing: honoured where the group allows it */
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_RING, 4, 1, 4), HS_ALGO_RING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_HALVING_DOUBLING, 8, 2, 64 * mib), HS_ALGO_HALVING_DOUBLING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_HALVING_DOUBLING, 6, 1, 4), HS_ALGO_RING);
    assert_int_equal(hs_comm_pick_algorithm(HS_ALGO_AUTO, 1, 1, 4), HS_ALGO_RING);
}

/* fp32: sum, NaN-propagating max/min, AVG only on the final step. */
static void test_combine_fp32(void **state)
{
    (void)state;
    float a[9] = {1, -2, 3, NAN, 5, 6, 7, 8, 9.5f}, b[9] = {0.5f, 4, -3, 1, NAN, 6, -7, 8, 0.5f}, d[9];
    hs_comm_combine(d, 0, a, 0, b, 0, 9, HS_FP32, HS_REDUCE_SUM, 0);
    assert_true(d[0] == 1.5f && d[1] == 2 && d[2] == 0 && isnan(d[3]) && isnan(d[4]) && d[8] == 10);
    hs_comm_combine(d, 0, a, 0, b, 0, 9, HS_FP32, HS_REDUCE_MAX, 0);
    assert_true(d[0] == 1 && d[1] == 4 && d[2] == 3 && isnan(d[3]) && isnan(d[4]) && d[6] == 7);
    hs_comm_combine(d, 0, a, 0, b, 0, 9, HS_FP32, HS_REDUCE_MIN, 0);
    assert_true(d[0] == 0.5f && d[1] == -2 && d[2] == -3 && isnan(d[3]) && isnan(d[4]) && d[6] == -7);
    hs_comm_combine(d, 0, a, 0, b, 0, 9, HS_FP32, HS_REDUCE_AVG, 0);
    assert_true(d[8] == 10); /* not final: a plain sum */
    hs_comm_combine(d, 0, a, 0, b, 0, 9, HS_FP32, HS_REDUCE_AVG, 4);
    assert_true(d[8] == 2.5f && d[0] == 0.375f);
    /* in place: dst == a */
    memcpy(d, a, sizeof d);
    hs_comm_combine(d, 0, d, 0, b, 0, 9, HS_FP32, HS_REDUCE_SUM, 0);
    assert_true(d[1] == 2 && d[8] == 10);
}

/* bf16/fp16: raw + raw -> fp32 partial (no rounding), partial + raw ->
 * final 16-bit, rounded once. */
static void test_combine_16bit(void **state)
{
    (void)state;
    const hs_dtype dts[2] = {HS_BF16, HS_FP16};
    for (int lvl = 0; lvl <= (int)hs_cpu_isa_native(); lvl++)
    for (int k = 0; k < 2; k++) {
        assert_int_equal(hs_cpu_set_isa((hs_isa)lvl), HS_OK);
        hs_dtype dt = dts[k];
        uint16_t (*to16)(float) = dt == HS_BF16 ? hs_fp32_to_bf16 : hs_fp32_to_fp16;
        float (*to32)(uint16_t) = dt == HS_BF16 ? hs_bf16_to_fp32 : hs_fp16_to_fp32;
        enum { M = 2500 };
        static uint16_t x[M], y[M], z[M], out[M];
        static float part[M];
        for (int i = 0; i < M; i++) {
            x[i] = to16(1.0f + (float)i / 1024);
            y[i] = to16(0.001953125f * (float)(i % 7));
            z[i] = to16(-0.25f + (float)(i % 5) / 1000);
        }
        hs_comm_combine(part, 1, x, 0, y, 0, M, dt, HS_REDUCE_SUM, 0);
        for (int i = 0; i < M; i++)
            assert_true(part[i] == to32(x[i]) + to32(y[i]));
        hs_comm_combine(out, 0, part, 1, z, 0, M, dt, HS_REDUCE_SUM, 3);
        for (int i = 0; i < M; i++)
            assert_int_equal(out[i], to16(part[i] + to32(z[i])));
        hs_comm_combine(out, 0, part, 1, z, 0, M, dt, HS_REDUCE_AVG, 3);
        for (int i = 0; i < M; i++)
            assert_int_equal(out[i], to16((part[i] + to32(z[i])) / 3.0f));
        /* p = 2: both inputs raw, straight to the final value */
        hs_comm_combine(out, 0, x, 0, y, 0, M, dt, HS_REDUCE_MAX, 2);
        for (int i = 0; i < M; i++)
            assert_int_equal(out[i], to32(x[i]) > to32(y[i]) ? x[i] : y[i]);
    }
    assert_int_equal(hs_comm_acc_size(HS_BF16), 4);
    assert_int_equal(hs_comm_acc_size(HS_INT64), 8);
}

/* Every 16-bit pattern against a set of partners, through each
 * instruction level's vector step the machine runs (whole vectors) and the
 * portable one (the tail, and all of it at the baseline level): all must
 * equal the scalar definition bit for bit, denormals, overflow and ties
 * included. A NaN result only has to be a NaN: which operand's payload an
 * add of two NaNs keeps is the compiler's choice of operand order. */
static float ref_op(float x, float y, hs_reduce_op op, int p)
{
    float z = op == HS_REDUCE_MAX   ? ((x > y || x != x) ? x : y)
              : op == HS_REDUCE_MIN ? ((x < y || x != x) ? x : y)
                                    : x + y;
    return op == HS_REDUCE_AVG ? z / (float)p : z;
}

static void test_combine_all_patterns(void **state)
{
    (void)state;
    enum { M = 65536 + 7 };
    static uint16_t x[M], y[M], out[M];
    static float acc[M], fx[M], fy[M], fout[M];
    const hs_dtype dts[2] = {HS_BF16, HS_FP16};
    const uint16_t partners[2][6] = {{0x0000, 0x3f80, 0x8001, 0x7f7f, 0xff80, 0x7fc1},
                                     {0x0000, 0x3c00, 0x8001, 0x7bff, 0xfc00, 0x7e01}};
    for (int lvl = 0; lvl <= (int)hs_cpu_isa_native(); lvl++)
    for (int k = 0; k < 2; k++) {
        assert_int_equal(hs_cpu_set_isa((hs_isa)lvl), HS_OK);
        hs_dtype dt = dts[k];
        uint16_t (*to16)(float) = dt == HS_BF16 ? hs_fp32_to_bf16 : hs_fp32_to_fp16;
        float (*to32)(uint16_t) = dt == HS_BF16 ? hs_bf16_to_fp32 : hs_fp16_to_fp32;
        for (int j = 0; j < 7; j++) {
            for (int i = 0; i < M; i++) {
                x[i] = (uint16_t)i;
                y[i] = j < 6 ? partners[k][j] : (uint16_t)(M - 1 - i);
            }
            for (int op = 0; op < HS_REDUCE_COUNT; op++) {
                hs_comm_combine(out, 0, x, 0, y, 0, M, dt, (hs_reduce_op)op, 3);
                hs_comm_combine(acc, 1, x, 0, y, 0, M, dt, (hs_reduce_op)op, 0);
                for (int i = 0; i < M; i++) {
                    fx[i] = to32(x[i]);
                    fy[i] = to32(y[i]);
                }
                hs_comm_combine(fout, 0, fx, 0, fy, 0, M, HS_FP32, (hs_reduce_op)op, 3);
                for (int i = 0; i < M; i++) {
                    float z = ref_op(to32(x[i]), to32(y[i]), (hs_reduce_op)op, 3);
                    uint32_t zb, ab;
                    float z0 = ref_op(to32(x[i]), to32(y[i]), op == HS_REDUCE_AVG ? HS_REDUCE_SUM : (hs_reduce_op)op, 0);
                    memcpy(&zb, &z0, 4);
                    memcpy(&ab, &acc[i], 4);
                    int nan = z != z;
                    if (nan ? !(to32(out[i]) != to32(out[i]) && acc[i] != acc[i]) : (out[i] != to16(z) || ab != zb))
                        fail_msg("%s op %d: %04x (+) %04x gave %04x / %08x, want %04x / %08x", hs_dtype_name(dt), op,
                                 x[i], y[i], out[i], ab, to16(z), zb);
                    uint32_t fb, wb;
                    memcpy(&fb, &fout[i], 4);
                    memcpy(&wb, &z, 4);
                    if (nan ? fout[i] == fout[i] : fb != wb)
                        fail_msg("fp32 op %d: %a (+) %a gave %08x, want %08x", op, (double)fx[i], (double)fy[i], fb, wb);
                }
            }
        }
    }
    assert_int_equal(hs_cpu_set_isa(hs_cpu_isa_native()), HS_OK);
}

static void test_combine_int(void **state)
{
    (void)state;
    int32_t a[3] = {INT32_MAX, -5, 7}, b[3] = {1, 5, -9}, d[3];
    hs_comm_combine(d, 0, a, 0, b, 0, 3, HS_INT32, HS_REDUCE_SUM, 2);
    assert_int_equal(d[0], INT32_MIN); /* wraps, identically on every rank */
    assert_int_equal(d[1], 0);
    hs_comm_combine(d, 0, a, 0, b, 0, 3, HS_INT32, HS_REDUCE_MIN, 2);
    assert_int_equal(d[2], -9);
    int64_t e[2] = {(int64_t)1 << 40, -3}, f[2] = {5, -((int64_t)1 << 50)}, g2[2];
    hs_comm_combine(g2, 0, e, 0, f, 0, 2, HS_INT64, HS_REDUCE_MAX, 0);
    assert_true(g2[0] == (int64_t)1 << 40 && g2[1] == -3);
    hs_comm_combine(g2, 0, e, 0, f, 0, 2, HS_INT64, HS_REDUCE_SUM, 0);
    assert_true(g2[0] == ((int64_t)1 << 40) + 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block),        cmocka_unit_test(test_pick),        cmocka_unit_test(test_combine_fp32),
        cmocka_unit_test(test_combine_16bit), cmocka_unit_test(test_combine_all_patterns),
        cmocka_unit_test(test_combine_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
