/* The NPU kernel timing cache (src/npu_sim/timing_cache.c): a cached
 * launch reports exactly what a fresh simulation reports, in both modes;
 * execute mode still computes the data; the key tells apart what changes
 * the cost (shapes, operands sharing L2 lines) and ignores what does not
 * (where in HBM the operands are); a model's layers hit after the first. */
#include "gradcheck.h"
#include "npu_fixture.h"

#include "hyperspeed.h"
#include "hyperspeed/npu.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#include <string.h>

static hs_npu *make(hs_npu_mode mode, int cache)
{
    hs_npu *d = npu_make("test", mode);
    hs_npu_set_timing_cache(d, cache);
    npu_use(d);
    return d;
}

static void *dev_alloc(hs_npu *d, size_t bytes)
{
    void *p;
    assert_int_equal(hs_npu_malloc(d, bytes, &p), HS_OK);
    return p;
}

static void assert_same_stats(hs_npu_launch_stats a, hs_npu_launch_stats b)
{
    assert_int_equal(a.cycles, b.cycles);
    assert_true(a.seconds == b.seconds);
    assert_int_equal(a.hbm_bytes, b.hbm_bytes);
    assert_int_equal(a.l2_bytes, b.l2_bytes);
    for (int p = 0; p < 7; p++)
        assert_int_equal(a.pipe_busy[p], b.pipe_busy[p]);
}

/* A matmul launched again on other buffers of the same shapes is a hit
 * with the stats of a fresh simulation, and computes the same data. */
static void test_matmul_hit(void **state)
{
    (void)state;
    enum { N = 48, C = 40, OC = 72 };
    hs_npu *cached = make(HS_NPU_EXECUTE, 1), *fresh = make(HS_NPU_EXECUTE, 0);
    uint16_t *x = malloc(2 * N * C), *w = malloc(2 * OC * C);
    float *f = fz(N * C + OC * C), *out[2] = {fz(N * OC), fz(N * OC)};
    gc_fill(f, NULL, N * C + OC * C, 1.0, 3);
    hs_convert_fp32_to_bf16(x, f, N * C);
    hs_convert_fp32_to_bf16(w, f + N * C, OC * C);
    hs_npu_launch_stats st[2][2];
    hs_npu *dv[2] = {cached, fresh};
    for (int k = 0; k < 2; k++) {
        npu_use(dv[k]);
        for (int rep = 0; rep < 2; rep++) {
            dev_alloc(dv[k], 512 * (size_t)(rep + 1)); /* moves the next buffers elsewhere in HBM */
            void *dx = dev_alloc(dv[k], 2 * N * C), *dw = dev_alloc(dv[k], 2 * OC * C);
            float *dout = dev_alloc(dv[k], 4 * N * OC);
            assert_int_equal(hs_npu_memcpy_h2d(dv[k], NULL, dx, x, 2 * N * C), HS_OK);
            assert_int_equal(hs_npu_memcpy_h2d(dv[k], NULL, dw, w, 2 * OC * C), HS_OK);
            assert_int_equal(hs_npu_matmul_forward(hs_npu_device(dv[k]), dout, dx, dw, NULL, N, C, OC, HS_BF16), HS_OK);
            st[k][rep] = hs_npu_last_launch(dv[k]);
            float *host = rep ? out[1] : out[0];
            assert_int_equal(hs_npu_memcpy_d2h(dv[k], NULL, host, dout, 4 * N * OC), HS_OK);
        }
        assert_memory_equal(out[0], out[1], 4 * N * OC);
    }
    uint64_t hits, misses;
    hs_npu_timing_cache_stats(cached, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    hs_npu_timing_cache_stats(fresh, &hits, &misses);
    assert_int_equal(hits + misses, 0);
    assert_same_stats(st[0][0], st[1][0]);
    assert_same_stats(st[0][1], st[1][1]);
    assert_same_stats(st[0][0], st[0][1]);
    free(x);
    free(w);
    free(f);
    free(out[0]);
    free(out[1]);
    hs_npu_free(cached);
    hs_npu_free(fresh);
}

/* A residual add in place (out aliases an input) and out of place have
 * different keys; another size too. */
static void test_key_sees_aliasing_and_shape(void **state)
{
    (void)state;
    hs_npu *d = make(HS_NPU_ESTIMATE, 1);
    const int64_t n = 4096;
    float *a = dev_alloc(d, 4 * n), *b = dev_alloc(d, 4 * n), *o = dev_alloc(d, 4 * n);
    uint64_t hits, misses;
    assert_int_equal(hs_npu_residual_forward(hs_npu_device(d), o, a, b, n), HS_OK);
    assert_int_equal(hs_npu_residual_forward(hs_npu_device(d), a, a, b, n), HS_OK);
    hs_npu_timing_cache_stats(d, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 2);
    assert_int_equal(hs_npu_residual_forward(hs_npu_device(d), o, a, b, n / 2), HS_OK);
    assert_int_equal(hs_npu_residual_forward(hs_npu_device(d), b, b, a, n), HS_OK); /* in place again, other buffers */
    hs_npu_timing_cache_stats(d, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 3);
    hs_npu_free(d);
}

/* Keys: an operand enters by its offset in a 512-byte line, and by its
 * distance to the earlier operands whose lines it shares; where in HBM
 * the operands are does not matter otherwise. Overflowing keys are never
 * stored. */
static void test_key_geometry(void **state)
{
    (void)state;
    hs_npu *d = make(HS_NPU_ESTIMATE, 1);
    uint8_t *p = dev_alloc(d, 1 << 16), *q = dev_alloc(d, 1 << 16);
    hs_npu_key k1, k2, k3;
    /* two disjoint operands, in one allocation or in two: the same key */
    hs_npu_key_init(&k1);
    hs_npu_key_gm(&k1, (hs_npu_operand){p + 64, 1024});
    hs_npu_key_gm(&k1, (hs_npu_operand){p + 8192 + 64, 1024});
    hs_npu_key_init(&k2);
    hs_npu_key_gm(&k2, (hs_npu_operand){q + 64, 1024});
    hs_npu_key_gm(&k2, (hs_npu_operand){p + 4096 + 64, 1024});
    assert_int_equal(k1.len, k2.len);
    assert_memory_equal(k1.w, k2.w, sizeof(int64_t) * (size_t)k1.len);
    /* operands sharing a line: their distance is in the key */
    hs_npu_key_init(&k3);
    hs_npu_key_gm(&k3, (hs_npu_operand){p + 64, 1024});
    hs_npu_key_gm(&k3, (hs_npu_operand){p + 1088 + 64, 1024}); /* starts in the first one's last line */
    assert_true(k3.len > k1.len);
    /* another offset inside a line: another key */
    hs_npu_key_init(&k2);
    hs_npu_key_gm(&k2, (hs_npu_operand){q + 128, 1024});
    hs_npu_key_gm(&k2, (hs_npu_operand){p + 8192 + 64, 1024});
    assert_true(memcmp(k1.w, k2.w, sizeof(int64_t) * (size_t)k1.len) != 0);
    for (int i = 0; i < HS_NPU_KEY_PTRS + 1; i++)
        hs_npu_key_gm(&k2, (hs_npu_operand){p, 4});
    assert_true(k2.overflow);
    hs_npu_free(d);
}

/* A few training steps of a small model: with the cache each step's
 * simulated time and loss equal those without it, in execute mode, and
 * estimate mode's simulated time equals execute mode's. */
static void run_steps(const char *preset, hs_npu_mode mode, int cache, double *sim, float *loss, uint64_t *hits)
{
    hs_npu *d = make(mode, cache);
    hs_model_config cfg;
    assert_int_equal(hs_model_config_preset(preset, &cfg), HS_OK);
    cfg.n_layer = 2;
    cfg.d_model = 32;
    cfg.d_ff = 64;
    enum { B = 2, T = 16 };
    hs_model_options mo = hs_model_options_default();
    mo.device = HS_DEVICE_NPU;
    mo.npu = d;
    mo.compute = HS_BF16;
    hs_model *m;
    hs_optimizer *o;
    assert_int_equal(hs_model_new_ex(&cfg, B, T, &mo, &m), HS_OK);
    assert_int_equal(hs_model_init(m, 5), HS_OK);
    hs_optimizer_config oc = hs_optimizer_config_default();
    assert_int_equal(hs_optimizer_new(m, &oc, &o), HS_OK);
    int32_t tok[B * T + 1];
    for (int i = 0; i <= B * T; i++)
        tok[i] = (int32_t)((i * 37 + 11) % cfg.vocab_size);
    for (int s = 0; s < 3; s++) {
        hs_step_stats st;
        const double t0 = hs_npu_stream_time(hs_npu_default_stream(d));
        assert_int_equal(hs_train_step(m, o, tok, tok + 1, B, T, 1, 1e-3f, &st), HS_OK);
        sim[s] = hs_npu_stream_time(hs_npu_default_stream(d)) - t0;
        loss[s] = st.loss;
    }
    hs_npu_timing_cache_stats(d, hits, NULL);
    hs_optimizer_free(o);
    hs_model_free(m);
    hs_npu_free(d);
}

static void check_model(const char *preset)
{
    double sim[3][3];
    float loss[3][3];
    uint64_t hits[3];
    run_steps(preset, HS_NPU_EXECUTE, 1, sim[0], loss[0], &hits[0]);
    run_steps(preset, HS_NPU_EXECUTE, 0, sim[1], loss[1], &hits[1]);
    run_steps(preset, HS_NPU_ESTIMATE, 1, sim[2], loss[2], &hits[2]);
    assert_true(hits[0] > 0 && hits[2] > 0);
    assert_int_equal(hits[1], 0);
    for (int s = 0; s < 3; s++) {
        assert_true(sim[0][s] == sim[1][s]);
        assert_true(sim[2][s] == sim[1][s]);
        assert_true(loss[0][s] == loss[1][s]);
        assert_true(isfinite(loss[0][s]));
    }
}

static void test_gpt_steps(void **state)
{
    (void)state;
    check_model("gpt2-tiny");
}

static void test_llama_steps(void **state)
{
    (void)state;
    check_model("llama-tiny");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_hit),
        cmocka_unit_test(test_key_sees_aliasing_and_shape),
        cmocka_unit_test(test_key_geometry),
        cmocka_unit_test(test_gpt_steps),
        cmocka_unit_test(test_llama_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
