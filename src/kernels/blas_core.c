/* OpenBLAS's kernel core against this CPU: judge it, warn once, and let a
 * program restart itself with the best core.
 *
 * Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) carries one set of kernels per
 * "core" and picks one from CPUID in its constructor, before main. On CPUs
 * its table does not know it can pick a generic one: on a 16-core
 * Sapphire-Rapids-class Xeon it ran its SSE3 "Prescott" kernels, sgemm
 * 2048^3 on 2 threads at 30.7 GFLOP/s against 204.6 with
 * OPENBLAS_CORETYPE=SkylakeX. (0.3.21 sends Intel family 6 models with
 * extended model 11 or 12, e.g. Emerald Rapids 0xCF, through its Pentium 4
 * branch.) An environment can also cap it: OPENBLAS_CORETYPE=Haswell on an
 * AVX-512 machine halves sgemm where the AVX-512 units are full width.
 * OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded, so the only fix
 * from inside a process is to execute it again with the variable set. */
#include "kernels/blas_core.h"

#include <cblas.h>
#include <cpuid.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Every x86 core name OpenBLAS's dynamic.c knows (0.3.21's corename[]
 * table, plus SapphireRapids from 0.3.24), by the widest vectors its
 * kernels use. "Unknown" is what openblas_get_corename says for none. */
static const struct {
    const char *name;
    hs_blas_level level;
} core_levels[] = {
    {"Katmai", HS_BLAS_LEVEL_SSE},       {"Coppermine", HS_BLAS_LEVEL_SSE},   {"Northwood", HS_BLAS_LEVEL_SSE},
    {"Prescott", HS_BLAS_LEVEL_SSE},     {"Banias", HS_BLAS_LEVEL_SSE},       {"Atom", HS_BLAS_LEVEL_SSE},
    {"Core2", HS_BLAS_LEVEL_SSE},        {"Penryn", HS_BLAS_LEVEL_SSE},       {"Dunnington", HS_BLAS_LEVEL_SSE},
    {"Nehalem", HS_BLAS_LEVEL_SSE},      {"Athlon", HS_BLAS_LEVEL_SSE},       {"Opteron", HS_BLAS_LEVEL_SSE},
    {"Opteron_SSE3", HS_BLAS_LEVEL_SSE}, {"Barcelona", HS_BLAS_LEVEL_SSE},    {"Nano", HS_BLAS_LEVEL_SSE},
    {"Bobcat", HS_BLAS_LEVEL_SSE},       {"Sandybridge", HS_BLAS_LEVEL_AVX},  {"Bulldozer", HS_BLAS_LEVEL_AVX},
    {"Piledriver", HS_BLAS_LEVEL_AVX},   {"Steamroller", HS_BLAS_LEVEL_AVX},  {"Excavator", HS_BLAS_LEVEL_AVX},
    {"Haswell", HS_BLAS_LEVEL_AVX2},     {"Zen", HS_BLAS_LEVEL_AVX2},         {"SkylakeX", HS_BLAS_LEVEL_AVX512},
    {"Cooperlake", HS_BLAS_LEVEL_AVX512}, {"SapphireRapids", HS_BLAS_LEVEL_AVX512},
};

hs_blas_level hs_blas_core_level(const char *core)
{
    if (!core)
        return HS_BLAS_LEVEL_UNKNOWN;
    for (size_t i = 0; i < sizeof core_levels / sizeof core_levels[0]; i++)
        if (strcasecmp(core, core_levels[i].name) == 0)
            return core_levels[i].level;
    return HS_BLAS_LEVEL_UNKNOWN;
}

const char *hs_blas_level_name(hs_blas_level level)
{
    static const char *const names[] = {"sse", "avx", "avx2", "avx512"};
    return level >= HS_BLAS_LEVEL_SSE && level <= HS_BLAS_LEVEL_AVX512 ? names[level] : "unknown";
}

void hs_blas_cpu_native(hs_blas_cpu *out)
{
    hs_blas_cpu c = {HS_CPU_VENDOR_OTHER, 0, hs_cpu_isa_native(), 0};
    unsigned a, b, cx, d;
    if (__get_cpuid(0, &a, &b, &cx, &d)) {
        char v[13];
        memcpy(v, &b, 4);
        memcpy(v + 4, &d, 4);
        memcpy(v + 8, &cx, 4);
        v[12] = '\0';
        if (strcmp(v, "GenuineIntel") == 0)
            c.vendor = HS_CPU_VENDOR_INTEL;
        else if (strcmp(v, "AuthenticAMD") == 0 || strcmp(v, "HygonGenuine") == 0)
            c.vendor = HS_CPU_VENDOR_AMD;
    }
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        c.family = (int)((a >> 8) & 0xf);
        if (c.family == 0xf)
            c.family += (int)((a >> 20) & 0xff);
    }
    if (c.isa == HS_ISA_AVX512 && __get_cpuid_count(7, 1, &a, &b, &cx, &d))
        c.avx512_bf16 = (a >> 5) & 1;
    *out = c;
}

hs_status hs_blas_core_judge(const hs_blas_cpu *cpu, const char *core, hs_blas_core_verdict *out)
{
    if (!cpu || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_blas_core_judge: %s is NULL", cpu ? "out" : "cpu");
    if ((unsigned)cpu->isa >= HS_ISA_COUNT)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_blas_core_judge: cpu->isa=%d is not a level", (int)cpu->isa);
    hs_blas_core_verdict v = {core, hs_blas_core_level(core), NULL, HS_BLAS_LEVEL_UNKNOWN, 0, 0};
    if (cpu->isa == HS_ISA_AVX512) {
        /* Cooperlake's sgemm is SkylakeX's; it adds the bf16 sbgemm. */
        v.best = cpu->avx512_bf16 ? "Cooperlake" : "SkylakeX";
        v.best_level = HS_BLAS_LEVEL_AVX512;
        /* Zen 4 (family 0x19; AMD had no AVX-512 before it) executes a
         * 512-bit FMA as two 256-bit halves: OpenBLAS's AVX2 kernels run
         * sgemm as fast there (Haswell 206-208, Cooperlake 198-204 GFLOP/s
         * on 2 threads). Zen 5 and Intel's AVX-512 parts are full width. */
        v.full_width = !(cpu->vendor == HS_CPU_VENDOR_AMD && cpu->family <= 0x19);
    } else if (cpu->isa == HS_ISA_AVX2) {
        /* 0.3.21 has both; Zen is what it picks itself on AMD. */
        v.best = cpu->vendor == HS_CPU_VENDOR_AMD ? "Zen" : "Haswell";
        v.best_level = HS_BLAS_LEVEL_AVX2;
    }
    if (v.best && v.current_level != HS_BLAS_LEVEL_UNKNOWN) {
        const hs_blas_level enough =
            v.best_level == HS_BLAS_LEVEL_AVX512 && !v.full_width ? HS_BLAS_LEVEL_AVX2 : v.best_level;
        v.weaker = v.current_level < enough;
    }
    *out = v;
    return HS_OK;
}

void hs_blas_core_check(hs_blas_core_verdict *out)
{
    hs_blas_cpu cpu;
    hs_blas_cpu_native(&cpu);
    if (hs_blas_core_judge(&cpu, hs_blas_core_name(), out) != HS_OK) /* cannot fail on a native CPU */
        memset(out, 0, sizeof *out);
}

/* Appends to buf at *used, truncating. */
static void add(char *buf, size_t n, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t n, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *used, n - *used, fmt, ap);
    va_end(ap);
    if (k > 0)
        *used = *used + (size_t)k < n ? *used + (size_t)k : n - 1;
}

void hs_blas_core_advice(const hs_blas_core_verdict *v, const char *cpu_name, const char *env, const char *marker,
                         char *buf, size_t n)
{
    if (!n)
        return;
    buf[0] = '\0';
    size_t used = 0;
    const char *cur = v->current ? v->current : "?", *best = v->best ? v->best : "?";
    const char *cpu = cpu_name && *cpu_name ? cpu_name : "this CPU";
    const char *what = v->best_level == HS_BLAS_LEVEL_AVX512
                           ? (v->full_width ? "AVX-512 with full-width 512-bit units" : "AVX-512")
                           : "AVX2 and FMA";
    const int ours = env && marker && strcmp(env, marker) == 0;
    if (ours)
        add(buf, n, &used, "OPENBLAS_CORETYPE=%s (set by hyperspeed's restart) still gave OpenBLAS's %s kernels (%s) ",
            env, cur, hs_blas_level_name(v->current_level));
    else if (env)
        add(buf, n, &used, "OPENBLAS_CORETYPE=%s in the environment makes OpenBLAS run its %s kernels (%s) ", env, cur,
            hs_blas_level_name(v->current_level));
    else
        add(buf, n, &used, "OpenBLAS picked its %s kernels (%s) ", cur, hs_blas_level_name(v->current_level));
    add(buf, n, &used, "on %s, which has %s: ", cpu, what);
    if (v->current_level == HS_BLAS_LEVEL_AVX2)
        add(buf, n, &used, "its %s kernels run sgemm about 2x faster (2 threads, Zen 5: Haswell 232, Cooperlake "
            "444-454 GFLOP/s). ", best);
    else if (v->best_level == HS_BLAS_LEVEL_AVX512)
        add(buf, n, &used, "its %s kernels%s run sgemm several times faster (2 threads, 16-core "
            "Sapphire-Rapids-class Xeon: Prescott 30.7, SkylakeX 204.6 GFLOP/s). ", best,
            v->full_width ? "" : ", or its AVX2 ones (as fast on this CPU, which runs AVX-512 in 256-bit halves),");
    else
        add(buf, n, &used, "its %s kernels (AVX2, FMA) run sgemm several times faster. ", best);
    if (ours)
        add(buf, n, &used, "This OpenBLAS has no %s kernels: use one that has (a DYNAMIC_ARCH build of a newer "
            "release).", best);
    else if (env)
        add(buf, n, &used, "Unset OPENBLAS_CORETYPE (the bundled programs then restart with the best core) or set "
            "OPENBLAS_CORETYPE=%s.", best);
    else
        add(buf, n, &used, "Start the program with OPENBLAS_CORETYPE=%s (hyperspeed's own programs restart "
            "themselves with it; hs_blas_core_reexec).", best);
}

static void warn(void)
{
    hs_blas_core_verdict v;
    hs_blas_core_check(&v);
    const char *env = getenv("OPENBLAS_CORETYPE"), *marker = getenv(HS_BLAS_CORE_REEXEC_ENV);
    if (!v.weaker) {
        if (env && marker && strcmp(env, marker) == 0)
            hs_log(HS_LOG_INFO, "OpenBLAS core %s (OPENBLAS_CORETYPE=%s, set by hyperspeed's restart)", v.current,
                   env);
        return;
    }
    char msg[1024];
    hs_blas_core_advice(&v, hs_cpu_name(), env, marker, msg, sizeof msg);
    hs_log(HS_LOG_WARN, "%s", msg);
}

void hs_blas_core_warn_once(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, warn);
}

hs_status hs_blas_core_exec(const char *core, const char *exe, char *const argv[])
{
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv(HS_BLAS_CORE_REEXEC_ENV, core, 1) != 0) {
        int e = errno;
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv(HS_BLAS_CORE_REEXEC_ENV);
        return hs_error(HS_ERR_IO, "could not set OPENBLAS_CORETYPE=%s: %s", core, strerror(e));
    }
    fflush(NULL); /* what is buffered would be lost, not printed twice */
    execv(exe, argv);
    int e = errno;
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(HS_BLAS_CORE_REEXEC_ENV);
    return hs_error(HS_ERR_IO, "could not re-execute %s with OPENBLAS_CORETYPE=%s: %s", exe, core, strerror(e));
}

/* 1 when /proc/self/exe is the dynamic loader (a program started as
 * `ld-linux-x86-64.so.2 PROGRAM ...`): executing it with the program's argv
 * would run the program's first argument instead. */
static int exe_is_loader(void)
{
    char path[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k <= 0)
        return 0; /* the exec will fail and say so */
    path[k] = '\0';
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld.so", 5) == 0;
}

void hs_blas_core_reexec(int argc, char **argv)
{
    if (argc < 1 || !argv || !argv[0])
        return;
    if (getenv("OPENBLAS_CORETYPE") || getenv(HS_BLAS_CORE_REEXEC_ENV))
        return; /* the user's choice, or already restarted once */
    /* Without DYNAMIC_ARCH the kernels are fixed at build time and
     * OpenBLAS ignores the variable. */
    const char *config = openblas_get_config();
    if (!config || !strstr(config, "DYNAMIC_ARCH"))
        return;
    hs_blas_core_verdict v;
    hs_blas_core_check(&v);
    if (!v.weaker)
        return;
    if (exe_is_loader()) {
        hs_log(HS_LOG_INFO, "OpenBLAS core %s is weaker than %s, but the program was started through the dynamic "
               "loader: not restarting it", v.current, v.best);
        return;
    }
    hs_log(HS_LOG_INFO, "OpenBLAS picked its %s kernels (%s) on this CPU; restarting with OPENBLAS_CORETYPE=%s",
           v.current, hs_blas_level_name(v.current_level), v.best);
    if (hs_blas_core_exec(v.best, "/proc/self/exe", argv) != HS_OK)
        hs_log(HS_LOG_WARN, "%s; running on with OpenBLAS's %s kernels", hs_last_error(), v.current);
}
