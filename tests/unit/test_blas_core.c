/* The OpenBLAS core check: core names to levels, the verdict for CPUs this
 * machine is not (Sapphire Rapids, Zen 3/4/5, ...), the warning's advice,
 * and the restart's exec with its environment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hyperspeed/kernels.h"
#include "kernels/blas_core.h"

static const hs_blas_cpu sapphire_rapids = {HS_CPU_VENDOR_INTEL, 6, HS_ISA_AVX512, 1};
static const hs_blas_cpu skylake_sp = {HS_CPU_VENDOR_INTEL, 6, HS_ISA_AVX512, 0};
static const hs_blas_cpu haswell = {HS_CPU_VENDOR_INTEL, 6, HS_ISA_AVX2, 0};
static const hs_blas_cpu westmere = {HS_CPU_VENDOR_INTEL, 6, HS_ISA_BASELINE, 0};
static const hs_blas_cpu zen3 = {HS_CPU_VENDOR_AMD, 0x19, HS_ISA_AVX2, 0};
static const hs_blas_cpu zen4 = {HS_CPU_VENDOR_AMD, 0x19, HS_ISA_AVX512, 1};
static const hs_blas_cpu zen5 = {HS_CPU_VENDOR_AMD, 0x1A, HS_ISA_AVX512, 1};

/* The verdict for core on cpu. */
static hs_blas_core_verdict judge(const hs_blas_cpu *cpu, const char *core)
{
    hs_blas_core_verdict v;
    memset(&v, 0x5a, sizeof v);
    assert_int_equal(hs_blas_core_judge(cpu, core, &v), HS_OK);
    assert_ptr_equal(v.current, core);
    return v;
}

/* Asserts the verdict's best core (NULL: none) and weaker flag. */
static void expect(const hs_blas_cpu *cpu, const char *core, const char *best, int weaker)
{
    hs_blas_core_verdict v = judge(cpu, core);
    if (best)
        assert_string_equal(v.best, best);
    else
        assert_null(v.best);
    if (v.weaker != weaker)
        fail_msg("core %s on family 0x%x isa %s: weaker %d, want %d", core ? core : "(null)", cpu->family,
                 hs_isa_name(cpu->isa), v.weaker, weaker);
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(hs_blas_core_level("Prescott"), HS_BLAS_LEVEL_SSE);
    assert_int_equal(hs_blas_core_level("prescott"), HS_BLAS_LEVEL_SSE); /* OPENBLAS_CORETYPE is case-blind */
    assert_int_equal(hs_blas_core_level("Nehalem"), HS_BLAS_LEVEL_SSE);
    assert_int_equal(hs_blas_core_level("Opteron_SSE3"), HS_BLAS_LEVEL_SSE);
    assert_int_equal(hs_blas_core_level("Sandybridge"), HS_BLAS_LEVEL_AVX);
    assert_int_equal(hs_blas_core_level("Excavator"), HS_BLAS_LEVEL_AVX);
    assert_int_equal(hs_blas_core_level("Haswell"), HS_BLAS_LEVEL_AVX2);
    assert_int_equal(hs_blas_core_level("Zen"), HS_BLAS_LEVEL_AVX2);
    assert_int_equal(hs_blas_core_level("SkylakeX"), HS_BLAS_LEVEL_AVX512);
    assert_int_equal(hs_blas_core_level("Cooperlake"), HS_BLAS_LEVEL_AVX512);
    assert_int_equal(hs_blas_core_level("SapphireRapids"), HS_BLAS_LEVEL_AVX512);
    assert_int_equal(hs_blas_core_level("Unknown"), HS_BLAS_LEVEL_UNKNOWN);
    assert_int_equal(hs_blas_core_level("Zen5"), HS_BLAS_LEVEL_UNKNOWN);
    assert_int_equal(hs_blas_core_level(""), HS_BLAS_LEVEL_UNKNOWN);
    assert_int_equal(hs_blas_core_level(NULL), HS_BLAS_LEVEL_UNKNOWN);
    assert_string_equal(hs_blas_level_name(HS_BLAS_LEVEL_SSE), "sse");
    assert_string_equal(hs_blas_level_name(HS_BLAS_LEVEL_AVX512), "avx512");
    assert_string_equal(hs_blas_level_name(HS_BLAS_LEVEL_UNKNOWN), "unknown");
    assert_string_equal(hs_blas_level_name((hs_blas_level)9), "unknown");
}

/* Intel AVX-512 parts: full-width units, so every core below AVX-512 is
 * weaker; Cooperlake with AVX512_BF16, SkylakeX without. */
static void test_intel_avx512(void **state)
{
    (void)state;
    hs_blas_core_verdict v = judge(&sapphire_rapids, "Prescott");
    assert_true(v.weaker);
    assert_string_equal(v.best, "Cooperlake");
    assert_int_equal(v.current_level, HS_BLAS_LEVEL_SSE);
    assert_int_equal(v.best_level, HS_BLAS_LEVEL_AVX512);
    assert_true(v.full_width);
    expect(&sapphire_rapids, "Sandybridge", "Cooperlake", 1);
    expect(&sapphire_rapids, "Haswell", "Cooperlake", 1);
    expect(&sapphire_rapids, "SkylakeX", "Cooperlake", 0); /* same sgemm kernels */
    expect(&sapphire_rapids, "Cooperlake", "Cooperlake", 0);
    expect(&sapphire_rapids, "SapphireRapids", "Cooperlake", 0);
    expect(&skylake_sp, "Haswell", "SkylakeX", 1);
    expect(&skylake_sp, "SkylakeX", "SkylakeX", 0);
}

/* Zen 4 runs AVX-512 in 256-bit halves: an AVX2 core is as fast there, but
 * an SSE or AVX one is not. Zen 5 is full width. */
static void test_amd_avx512(void **state)
{
    (void)state;
    hs_blas_core_verdict v = judge(&zen4, "Zen");
    assert_false(v.weaker);
    assert_false(v.full_width);
    assert_string_equal(v.best, "Cooperlake");
    expect(&zen4, "Haswell", "Cooperlake", 0);
    expect(&zen4, "Cooperlake", "Cooperlake", 0);
    expect(&zen4, "SkylakeX", "Cooperlake", 0);
    expect(&zen4, "Prescott", "Cooperlake", 1);
    expect(&zen4, "Sandybridge", "Cooperlake", 1);

    v = judge(&zen5, "Zen");
    assert_true(v.weaker);
    assert_true(v.full_width);
    assert_string_equal(v.best, "Cooperlake");
    expect(&zen5, "Haswell", "Cooperlake", 1);
    expect(&zen5, "Prescott", "Cooperlake", 1);
    expect(&zen5, "Cooperlake", "Cooperlake", 0);
}

/* AVX2 CPUs: Zen on AMD, Haswell on Intel; either AVX2 core is fine. */
static void test_avx2(void **state)
{
    (void)state;
    hs_blas_core_verdict v = judge(&zen3, "Prescott");
    assert_true(v.weaker);
    assert_string_equal(v.best, "Zen");
    assert_int_equal(v.best_level, HS_BLAS_LEVEL_AVX2);
    assert_false(v.full_width);
    expect(&zen3, "Zen", "Zen", 0);
    expect(&zen3, "Haswell", "Zen", 0);
    expect(&zen3, "Sandybridge", "Zen", 1);
    expect(&zen3, "Nehalem", "Zen", 1);
    expect(&haswell, "Prescott", "Haswell", 1);
    expect(&haswell, "Haswell", "Haswell", 0);
    expect(&haswell, "Zen", "Haswell", 0);
}

/* Below AVX2 no core is recommended; a name not in the table is never
 * called weaker. */
static void test_no_verdict(void **state)
{
    (void)state;
    hs_blas_core_verdict v = judge(&westmere, "Prescott");
    assert_null(v.best);
    assert_int_equal(v.best_level, HS_BLAS_LEVEL_UNKNOWN);
    assert_false(v.weaker);
    expect(&westmere, "Nehalem", NULL, 0);
    v = judge(&sapphire_rapids, "Unknown");
    assert_int_equal(v.current_level, HS_BLAS_LEVEL_UNKNOWN);
    assert_false(v.weaker);
    assert_string_equal(v.best, "Cooperlake");
    expect(&zen5, "GraniteRapids", "Cooperlake", 0);
    expect(&zen3, NULL, "Zen", 0);
    expect(&zen3, "", "Zen", 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    hs_blas_core_verdict v;
    assert_int_equal(hs_blas_core_judge(NULL, "Zen", &v), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "cpu is NULL"));
    assert_int_equal(hs_blas_core_judge(&zen3, "Zen", NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "out is NULL"));
    hs_blas_cpu bad = zen3;
    bad.isa = HS_ISA_COUNT;
    assert_int_equal(hs_blas_core_judge(&bad, "Zen", &v), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "is not a level"));
}

/* This machine, read with cpuid, judged like any other. */
static void test_native(void **state)
{
    (void)state;
    hs_blas_cpu cpu;
    hs_blas_cpu_native(&cpu);
    assert_int_equal(cpu.isa, hs_cpu_isa_native());
    assert_true(cpu.family >= 6);
    if (cpu.isa != HS_ISA_AVX512)
        assert_false(cpu.avx512_bf16);
    hs_blas_core_verdict v, w;
    hs_blas_core_check(&v);
    assert_string_equal(v.current, hs_blas_core_name());
    assert_int_equal(hs_blas_core_judge(&cpu, hs_blas_core_name(), &w), HS_OK);
    assert_int_equal(v.weaker, w.weaker);
    assert_int_equal(v.full_width, w.full_width);
    if (cpu.isa >= HS_ISA_AVX2)
        assert_non_null(v.best);
}

/* The warning names what runs, the CPU and the OPENBLAS_CORETYPE to set,
 * and tells a user's setting from hyperspeed's own. */
static void test_advice(void **state)
{
    (void)state;
    char msg[1024];
    hs_blas_core_verdict v = judge(&sapphire_rapids, "Prescott");
    hs_blas_core_advice(&v, "Intel(R) Xeon(R) Test", NULL, NULL, msg, sizeof msg);
    assert_non_null(strstr(msg, "OpenBLAS picked its Prescott kernels (sse)"));
    assert_non_null(strstr(msg, "Intel(R) Xeon(R) Test"));
    assert_non_null(strstr(msg, "full-width"));
    assert_non_null(strstr(msg, "30.7"));
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=Cooperlake"));

    v = judge(&sapphire_rapids, "Haswell");
    hs_blas_core_advice(&v, "Xeon", "Haswell", NULL, msg, sizeof msg);
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=Haswell in the environment"));
    assert_non_null(strstr(msg, "about 2x"));
    assert_non_null(strstr(msg, "Unset OPENBLAS_CORETYPE"));
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=Cooperlake"));

    /* hyperspeed set it, and the core is still weak: this OpenBLAS lacks it */
    hs_blas_core_advice(&v, "Xeon", "Cooperlake", "Cooperlake", msg, sizeof msg);
    assert_non_null(strstr(msg, "set by hyperspeed's restart) still gave OpenBLAS's Haswell kernels"));
    assert_non_null(strstr(msg, "has no Cooperlake kernels"));

    v = judge(&zen3, "Prescott");
    hs_blas_core_advice(&v, NULL, NULL, NULL, msg, sizeof msg);
    assert_non_null(strstr(msg, "this CPU"));
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=Zen"));

    char small[16];
    memset(small, 'x', sizeof small);
    hs_blas_core_advice(&v, NULL, NULL, NULL, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* The restart's exec: the new program sees both variables set to the
 * core. Run in a child, since a successful exec replaces the process. */
static void test_exec(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv(HS_BLAS_CORE_REEXEC_ENV);
        char *const argv[] = {"sh", "-c",
                              "test \"$OPENBLAS_CORETYPE\" = Cooperlake && test \"$HS_BLAS_CORE_REEXEC\" = Cooperlake "
                              "&& exit 42; exit 1",
                              NULL};
        hs_blas_core_exec("Cooperlake", "/bin/sh", argv);
        _exit(3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
}

/* A failed exec says why and leaves the environment as it was, so the
 * process runs on and reports the truth. */
static void test_exec_fails(void **state)
{
    (void)state;
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(HS_BLAS_CORE_REEXEC_ENV);
    char *const argv[] = {"prog", NULL};
    assert_int_equal(hs_blas_core_exec("SkylakeX", "/nonexistent/prog", argv), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "/nonexistent/prog"));
    assert_non_null(strstr(hs_last_error(), "OPENBLAS_CORETYPE=SkylakeX"));
    assert_null(getenv("OPENBLAS_CORETYPE"));
    assert_null(getenv(HS_BLAS_CORE_REEXEC_ENV));
}

/* hs_blas_core_reexec returns at once (no exec: this test goes on) when
 * the user set OPENBLAS_CORETYPE, after a restart, on opt-out, and for an
 * argv it cannot use. */
static void test_reexec_leaves(void **state)
{
    (void)state;
    char arg0[] = "test_blas_core";
    char *argv[] = {arg0, NULL};
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    hs_blas_core_reexec(1, argv);
    unsetenv("OPENBLAS_CORETYPE");
    setenv(HS_BLAS_CORE_REEXEC_ENV, "0", 1);
    hs_blas_core_reexec(1, argv);
    unsetenv(HS_BLAS_CORE_REEXEC_ENV);
    hs_blas_core_reexec(0, argv);
    hs_blas_core_reexec(1, NULL);
    char *empty[] = {NULL};
    hs_blas_core_reexec(1, empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),       cmocka_unit_test(test_intel_avx512), cmocka_unit_test(test_amd_avx512),
        cmocka_unit_test(test_avx2),         cmocka_unit_test(test_no_verdict),   cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_native),       cmocka_unit_test(test_advice),       cmocka_unit_test(test_exec),
        cmocka_unit_test(test_exec_fails),   cmocka_unit_test(test_reexec_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
