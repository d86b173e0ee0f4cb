/* The CPU's vector instruction level, the cap on it, and its name.
 *
 * The level is one of the x86-64 psABI levels the hot loops are compiled
 * for (src/core/isa.h). The cap (HS_CPU_ISA or hs_cpu_set_isa) lets one
 * machine run, test and time the code paths of a smaller one: with
 * HS_CPU_ISA=avx2 an AVX-512 machine runs exactly the instructions an
 * AVX2-only machine runs in the library's own code. */
#include "hyperspeed/core.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const isa_names[HS_ISA_COUNT] = {"baseline", "avx2", "avx512"};

/* -1: not decided yet. Written once by the first reader (every reader
 * computes the same value) or by hs_cpu_set_isa; read with relaxed atomics. */
static int isa_cap = -1;

const char *hs_isa_name(hs_isa isa) { return (unsigned)isa < HS_ISA_COUNT ? isa_names[isa] : "invalid"; }

hs_status hs_isa_parse(const char *name, hs_isa *out)
{
    if (!name || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_isa_parse: %s is NULL", name ? "out" : "name");
    for (int i = 0; i < HS_ISA_COUNT; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (hs_isa)i;
            return HS_OK;
        }
    }
    return hs_error(HS_ERR_NOT_FOUND, "unknown instruction level \"%s\" (expected avx512, avx2 or baseline)", name);
}

/* __builtin_cpu_supports reads the table libgcc fills before main, and
 * counts a feature only when the OS saves its registers (XCR0). */
hs_isa hs_cpu_isa_native(void)
{
    if (__builtin_cpu_supports("x86-64-v4"))
        return HS_ISA_AVX512;
    if (__builtin_cpu_supports("x86-64-v3"))
        return HS_ISA_AVX2;
    return HS_ISA_BASELINE;
}

static int cap_from_env(void)
{
    const hs_isa native = hs_cpu_isa_native();
    const char *e = getenv("HS_CPU_ISA");
    if (!e || !*e)
        return (int)native;
    hs_isa want;
    if (hs_isa_parse(e, &want) != HS_OK) {
        hs_log(HS_LOG_WARN, "HS_CPU_ISA=%s is not avx512, avx2 or baseline; using %s", e, isa_names[native]);
        return (int)native;
    }
    if (want > native) {
        hs_log(HS_LOG_WARN, "HS_CPU_ISA=%s: this CPU runs at most %s; using %s", e, isa_names[native],
               isa_names[native]);
        return (int)native;
    }
    return (int)want;
}

hs_isa hs_cpu_isa(void)
{
    int v = __atomic_load_n(&isa_cap, __ATOMIC_RELAXED);
    if (v < 0) {
        v = cap_from_env();
        __atomic_store_n(&isa_cap, v, __ATOMIC_RELAXED);
    }
    return (hs_isa)v;
}

hs_status hs_cpu_set_isa(hs_isa max)
{
    if ((unsigned)max >= HS_ISA_COUNT)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_cpu_set_isa: %d is not an instruction level", (int)max);
    const hs_isa native = hs_cpu_isa_native();
    if (max > native)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_cpu_set_isa: this CPU runs at most %s, not %s",
                        isa_names[native], isa_names[max]);
    __atomic_store_n(&isa_cap, (int)max, __ATOMIC_RELAXED);
    return HS_OK;
}

static char cpu_name[49]; /* the brand string's 48 bytes and a NUL */

static void read_cpu_name(void)
{
    unsigned regs[12];
    if (__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) {
        strcpy(cpu_name, "unknown x86-64 CPU");
        return;
    }
    for (unsigned i = 0; i < 3; i++)
        __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char raw[49];
    memcpy(raw, regs, 48);
    raw[48] = '\0';
    const char *s = raw;
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    memcpy(cpu_name, s, n);
    cpu_name[n] = '\0';
}

const char *hs_cpu_name(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_cpu_name);
    return cpu_name;
}
