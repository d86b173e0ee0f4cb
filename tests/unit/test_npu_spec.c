/* NPU spec: presets, derived peaks, validation and the CANN .ini loader. */
#include "gradcheck.h"
#include "scratch.h"

#include "hyperspeed/npu.h"

#include <string.h>

/* Every preset validates, and the known list names each one. */
static void test_presets_valid(void **state)
{
    (void)state;
    int n = 0;
    for (const char *const *name = hs_npu_preset_names(); *name; name++, n++) {
        hs_npu_spec s;
        assert_int_equal(hs_npu_spec_preset(*name, &s), HS_OK);
        assert_string_equal(s.name, *name);
        assert_int_equal(hs_npu_spec_validate(&s), HS_OK);
    }
    assert_int_equal(n, 6);
    hs_npu_spec s;
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    assert_int_equal(s.cube_cores, 24);
    assert_int_equal(s.vector_cores, 48);
    assert_int_equal(s.l1_bytes, 512 * 1024);
    assert_int_equal(s.l0c_bytes, 128 * 1024);
    assert_int_equal(s.ub_bytes, 196608);
    assert_int_equal(s.l2_bytes, 192LL << 20);
    assert_int_equal(s.hbm_bytes, 64LL << 30);
    assert_int_equal(hs_npu_spec_preset("910A", &s), HS_OK);
    assert_int_equal(s.vector_cores, 0);
    assert_int_equal(s.cube_cores, 32);
    assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
    assert_int_equal(s.cube_cores, 2);
    assert_int_equal(s.vector_cores, 4);
    assert_int_equal(s.hbm_bytes, 64LL << 20);
}

/* Peaks match the NPU_FACTS table: 353.9 / 294.9 / 245.8 TFLOP/s. */
static void test_derived_peaks(void **state)
{
    (void)state;
    const struct {
        const char *name;
        double tflops;
    } want[] = {{"910B2", 353.9}, {"910B3", 294.9}, {"910B4", 245.8}};
    for (int i = 0; i < 3; i++) {
        hs_npu_spec s;
        assert_int_equal(hs_npu_spec_preset(want[i].name, &s), HS_OK);
        assert_float_equal(hs_npu_peak_flops(&s, HS_FP16) / 1e12, want[i].tflops, 0.05);
        assert_float_equal(hs_npu_peak_flops(&s, HS_BF16), hs_npu_peak_flops(&s, HS_FP16), 0);
        assert_float_equal(hs_npu_peak_flops(&s, HS_INT8), 2 * hs_npu_peak_flops(&s, HS_FP16), 0);
        assert_float_equal(hs_npu_peak_flops(&s, HS_FP32), 0, 0);
    }
    hs_npu_spec s;
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    assert_float_equal(hs_npu_peak_flops(&s, HS_FP16), 24.0 * 4096 * 2 * 1.8e9, 1);
    assert_float_equal(hs_npu_vector_bytes_per_s(&s), 48.0 * 256 * 1.8e9, 1);
    assert_int_equal(hs_npu_spec_preset("910A", &s), HS_OK); /* vector unit per AI core */
    assert_float_equal(hs_npu_vector_bytes_per_s(&s), 32.0 * 256 * 1.0e9, 1);
}

/* An unknown preset names itself and lists the known ones. */
static void test_unknown_preset(void **state)
{
    (void)state;
    hs_npu_spec s;
    EXPECT_ERR(hs_npu_spec_preset("910Z", &s), HS_ERR_NOT_FOUND);
    assert_non_null(strstr(hs_last_error(), "910Z"));
    assert_non_null(strstr(hs_last_error(), "910B2, 910B3, 910B4, 910C, 910A, test"));
}

/* Validation names the offending field. */
static void test_validate(void **state)
{
    (void)state;
    hs_npu_spec s;
    assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
    s.l0b_bytes = 0;
    EXPECT_ERR(hs_npu_spec_validate(&s), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "l0b_bytes"));
    assert_int_equal(hs_npu_spec_preset("test", &s), HS_OK);
    s.vector_cores = -1;
    EXPECT_ERR(hs_npu_spec_validate(&s), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "vector_cores"));
}

/* The sample ini overrides the base where it has keys, keeps the rest. */
static void test_ini_sample(void **state)
{
    (void)state;
    hs_npu_spec base, s;
    assert_int_equal(hs_npu_spec_preset("910B2", &base), HS_OK);
    assert_int_equal(hs_npu_spec_load_ini(HS_SOURCE_DIR "/tests/data/910B2_sample.ini", NULL, &s), HS_OK);
    assert_string_equal(s.name, "910B2_sample");
    assert_int_equal(s.cube_cores, 22);
    assert_int_equal(s.vector_cores, 44);
    assert_float_equal(s.freq_hz, 1.65e9, 1);
    assert_int_equal(s.hbm_bytes, 32LL << 30);
    assert_int_equal(s.l2_bytes, 96LL << 20);
    assert_float_equal(s.hbm_bw, 1.2e12, 1);
    assert_float_equal(s.ddr_rate, 30, 0);
    assert_int_equal(s.l1_bytes, base.l1_bytes);
    assert_int_equal(s.ub_bytes, 196608);
    assert_int_equal(s.lat_mte2, base.lat_mte2); /* no key: kept from the base */
    assert_float_equal(s.pcie_bw, base.pcie_bw, 0);
}

/* Writes `text` to dir/name and returns the path. */
static const char *write_ini(const char *dir, const char *name, const char *text)
{
    const char *path = scratch_path(dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Unknown keys are ignored; comments and blank lines skipped. */
static void test_ini_unknown_key(void **state)
{
    (void)state;
    char *dir = scratch_dir("npu_ini");
    assert_non_null(dir);
    hs_npu_spec base, s;
    assert_int_equal(hs_npu_spec_preset("test", &base), HS_OK);
    const char *p = write_ini(dir, "a.ini", "# comment\n\n[SoCInfo]\nfancy_unit=yes\n ; more\n  ai_core_cnt = 3 \n");
    assert_int_equal(hs_npu_spec_load_ini(p, &base, &s), HS_OK);
    assert_int_equal(s.cube_cores, 3);
    assert_int_equal(s.vector_cores, base.vector_cores);
    assert_float_equal(s.freq_hz, base.freq_hz, 0);
    scratch_free(dir);
}

/* Malformed lines and values: HS_ERR_FORMAT naming file:line and key. */
static void test_ini_malformed(void **state)
{
    (void)state;
    char *dir = scratch_dir("npu_ini");
    assert_non_null(dir);
    hs_npu_spec s;
    const struct {
        const char *text, *want;
    } cases[] = {
        {"[SoCInfo]\nai_core_cnt=2x\n", "b.ini:2: key 'ai_core_cnt'"},
        {"[SoCInfo]\n\nl2_size=-5\n", "b.ini:3: key 'l2_size'"},
        {"[SoCInfo]\nai_core_cnt=2.5\n", "b.ini:2: key 'ai_core_cnt'"},
        {"[SoCInfo]\nai_core_cnt=\n", "b.ini:2: key 'ai_core_cnt'"},
        {"[SoCInfo]\njust words\n", "b.ini:2: expected key=value"},
        {"[SoCInfo\n", "b.ini:1: section header"},
        {"=5\n", "b.ini:1:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = write_ini(dir, "b.ini", cases[i].text);
        EXPECT_ERR(hs_npu_spec_load_ini(p, NULL, &s), HS_ERR_FORMAT);
        if (!strstr(hs_last_error(), cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, hs_last_error(), cases[i].want);
    }
    const char *p = write_ini(dir, "c.ini", "[SoCInfo]\nai_core_cnt=0\n");
    EXPECT_ERR(hs_npu_spec_load_ini(p, NULL, &s), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "cube_cores"));
    scratch_free(dir);
}

/* A missing file is an I/O error. */
static void test_ini_missing(void **state)
{
    (void)state;
    hs_npu_spec s;
    EXPECT_ERR(hs_npu_spec_load_ini("/nonexistent/npu.ini", NULL, &s), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "/nonexistent/npu.ini"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_valid),   cmocka_unit_test(test_derived_peaks),
        cmocka_unit_test(test_unknown_preset),  cmocka_unit_test(test_validate),
        cmocka_unit_test(test_ini_sample),      cmocka_unit_test(test_ini_unknown_key),
        cmocka_unit_test(test_ini_malformed),   cmocka_unit_test(test_ini_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
