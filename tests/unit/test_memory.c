/* The memory estimator (hyperspeed/memory.h): the ZeRO paper's Table 1
 * from its formulas, the per-rank plan of layouts (ZeRO-1 shards,
 * pipeline stages, recompute, the NPU's verdict on llama2-7b), bad
 * arguments; the host allocation counters. The estimate against what an
 * engine really allocates is tests/mpi/test_engine.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training
 * Trillion Parameter Models" (SC20), Table 1: per-device memory in GB of
 * a 7.5B, a 128B and a 1T parameter model with mixed-precision Adam
 * (K = 12) under P_os, P_os+g and P_os+g+p, for DP degrees 1 .. 1024, as
 * printed. */
static const struct {
    int dp;
    double gb[3][3]; /* [model][stage 1, 2, 3] */
} table1[] = {
    {1, {{120, 120, 120}, {2048, 2048, 2048}, {16000, 16000, 16000}}},
    {4, {{52.5, 41.3, 30}, {896, 704, 512}, {7000, 5500, 4000}}},
    {16, {{35.6, 21.6, 7.5}, {608, 368, 128}, {4750, 2875, 1000}}},
    {64, {{31.4, 16.6, 1.88}, {536, 284, 32}, {4187, 2218, 250}}},
    {256, {{30.4, 15.4, 0.47}, {518, 263, 8}, {4046, 2054, 62.5}}},
    {1024, {{30.1, 15.1, 0.12}, {513, 257, 2}, {4011, 2013, 15.6}}},
};

/* x as the table prints `printed`, to its last shown digit: rounded
 * (41.25 as 41.3, 1.875 as 1.88) or, for the whole-GB entries of the large
 * models, with the fraction dropped (4187.5 as 4187, 513.5 as 513). */
static int as_printed(double x, double printed)
{
    double unit = 1;
    while (fabs(printed * unit - round(printed * unit)) > 1e-9)
        unit *= 10;
    const double scaled = x * unit + 1e-9, want = round(printed * unit);
    return round(scaled) == want || floor(scaled) == want;
}

static void test_zero_table1(void **state)
{
    (void)state;
    const hs_zero_state mixed_adam = {2, 2, 12};
    const double psi[3] = {7.5e9, 128e9, 1e12};
    for (size_t i = 0; i < sizeof table1 / sizeof *table1; i++)
        for (int m = 0; m < 3; m++)
            for (int z = 1; z <= 3; z++) {
                const double gb = hs_zero_state_bytes(psi[m], table1[i].dp, z, &mixed_adam) / 1e9;
                if (!as_printed(gb, table1[i].gb[m][z - 1]))
                    fail_msg("psi %g, DP %d, stage %d: %.4f GB, Table 1 prints %g", psi[m], table1[i].dp, z, gb,
                             table1[i].gb[m][z - 1]);
            }
    /* the formulas themselves: 4 psi + K psi / N, 2 psi + 14 psi / N, 16 psi / N, and no sharding at stage 0 */
    assert_true(fabs(hs_zero_state_bytes(7.5e9, 64, 0, &mixed_adam) - 120e9) < 1);
    assert_true(fabs(hs_zero_state_bytes(7.5e9, 64, 1, &mixed_adam) - (4 * 7.5e9 + 12 * 7.5e9 / 64)) < 1);
    assert_true(fabs(hs_zero_state_bytes(7.5e9, 64, 2, &mixed_adam) - (2 * 7.5e9 + 14 * 7.5e9 / 64)) < 1);
    assert_true(fabs(hs_zero_state_bytes(7.5e9, 64, 3, &mixed_adam) - 16 * 7.5e9 / 64) < 1);
    assert_true(hs_zero_state_bytes(1, 4, 4, &mixed_adam) < 0);
    assert_true(hs_zero_state_bytes(1, 0, 1, &mixed_adam) < 0);
    assert_true(hs_zero_state_bytes(1, 4, 1, NULL) < 0);
}

static hs_engine_config npu_run(int seq)
{
    hs_engine_config ec = hs_engine_config_default();
    ec.micro_batch = 1;
    ec.seq = seq;
    ec.model.device = HS_DEVICE_NPU;
    ec.model.compute = HS_BF16;
    return ec;
}

static double gib(size_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/* llama2-7b on one 910B2: 143 GiB of state and activations does not fit
 * its 64 GiB; recompute cuts the activations, not the state. */
static void test_llama2_7b_verdict(void **state)
{
    (void)state;
    hs_model_config c;
    hs_npu_spec s;
    assert_int_equal(hs_model_config_preset("llama2-7b", &c), HS_OK);
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    hs_engine_config ec = npu_run(4096);
    hs_memory_rank r, full;
    assert_int_equal(hs_memory_estimate(&c, &ec, 1, &s, &r), HS_OK);
    assert_int_equal(r.params, 6738415616);
    assert_int_equal(r.weights, 6 * (size_t)r.params);   /* fp32 + bf16 (512-byte multiples already) */
    assert_int_equal(r.gradients, 4 * (size_t)r.params);
    assert_int_equal(r.optimizer, 8 * (size_t)r.params);
    assert_true(gib(r.device) > 143 && gib(r.device) < 144);
    assert_true(r.device > (size_t)s.hbm_bytes);
    assert_int_equal(r.in_flight, 1);
    assert_int_equal(r.activations, r.act_per_micro_batch + r.act_shared);
    ec.model.recompute = HS_RECOMPUTE_FULL;
    assert_int_equal(hs_memory_estimate(&c, &ec, 1, &s, &full), HS_OK);
    assert_true(full.activations < r.activations / 5);
    assert_int_equal(full.optimizer, r.optimizer);
    assert_true(full.device > (size_t)s.hbm_bytes);
}

/* Eight ranks, TP2 x PP2 x DP2 with ZeRO-1 and 1F1B: the grid's order
 * (TP innermost), the stages' chunks, the shards of AdamW's moments and of
 * the fp32 master, the first stage's extra micro-batches in flight. */
static void test_layout_ranks(void **state)
{
    (void)state;
    hs_model_config c;
    hs_npu_spec s;
    assert_int_equal(hs_model_config_preset("gpt2-124m", &c), HS_OK);
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    hs_engine_config ec = npu_run(1024);
    ec.layout.tp = ec.layout.pp = 2;
    ec.layout.micro_batches = 8;
    hs_memory_rank r[8], plain[8];
    assert_int_equal(hs_memory_estimate(&c, &ec, 8, &s, plain), HS_OK);
    ec.zero = 1;
    assert_int_equal(hs_memory_estimate(&c, &ec, 8, &s, r), HS_OK);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].rank, i);
        assert_int_equal(r[i].tp_rank, i % 2);
        assert_int_equal(r[i].dp_rank, i / 2 % 2);
        assert_int_equal(r[i].pp_rank, i / 4);
        /* the moments of about half the parameters (512-byte rounding, uneven blocks) */
        assert_true(llabs((long long)r[i].optimizer - (long long)plain[i].optimizer / 2) < 4096);
        /* bf16 compute: the fp32 master sharded too (4P -> 4P/2), less the fp32 mirror of norms, biases,
           embeddings */
        assert_true(r[i].weights < plain[i].weights);
        assert_true(plain[i].weights - r[i].weights <= 2 * (size_t)r[i].params + 4096);
        assert_int_equal(r[i].device, r[i].weights + r[i].gradients + r[i].optimizer + r[i].activations +
                                          r[i].workspace + r[i].comm);
    }
    assert_true(r[0].in_flight > r[4].in_flight); /* 1F1B: the first stage keeps more micro-batches */
    assert_true(r[0].params != r[4].params);      /* the embedding vs the head (GPT-2: a tied copy) */
    assert_true(r[0].comm > 0 && r[4].comm > 0);  /* boundary buffers; DP's rows on stage 0; the tied copy */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    hs_model_config c = hs_model_config_default();
    hs_npu_spec s;
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    hs_engine_config ec = npu_run(64);
    hs_memory_rank r[4];
    assert_int_equal(hs_memory_estimate(NULL, &ec, 1, &s, r), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_memory_estimate(&c, &ec, 1, NULL, r), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "an NPU run needs the NPU's spec"));
    ec.layout.tp = 2;
    assert_int_equal(hs_memory_estimate(&c, &ec, 3, &s, r), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "tp=2 x pp=1 does not divide the world of 3"));
    ec = npu_run(64);
    ec.zero = 4;
    assert_int_equal(hs_memory_estimate(&c, &ec, 2, &s, r), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "zero=4"));
    ec = npu_run(64);
    ec.model.recompute = HS_RECOMPUTE_FULL;
    ec.model.recompute_layers = c.n_layer + 1;
    assert_int_equal(hs_memory_estimate(&c, &ec, 1, &s, r), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "recompute_layers="));
    ec = npu_run(64);
    ec.size = 0;
    assert_int_equal(hs_memory_estimate(&c, &ec, 1, &s, r), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "hs_engine_config is not initialised"));
}

static void test_host_counters(void **state)
{
    (void)state;
    const size_t before = hs_host_mem_used();
    hs_host_mem_reset_peak();
    assert_int_equal(hs_host_mem_peak(), before);
    void *a = hs_alloc(1000), *b = hs_alloc(64);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_int_equal(hs_host_mem_used(), before + 1024 + 64);
    hs_free(a);
    assert_int_equal(hs_host_mem_used(), before + 64);
    assert_int_equal(hs_host_mem_peak(), before + 1024 + 64);
    hs_free(b);
    hs_free(NULL);
    assert_int_equal(hs_host_mem_used(), before);
    hs_host_mem_reset_peak();
    assert_int_equal(hs_host_mem_peak(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_table1),  cmocka_unit_test(test_llama2_7b_verdict),
        cmocka_unit_test(test_layout_ranks), cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_host_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
