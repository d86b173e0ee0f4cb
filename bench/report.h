/* What every benchmark's JSON line says about the machine it ran on: the
 * CPU, the vector level the library ran with and the CPU's own, and the
 * OpenBLAS core with the environment that chose it. One helper, so every
 * program in bench/ reports the same fields under the same names:
 *   "cpu":"AMD EPYC 9R14 96-Core Processor"   hs_cpu_name()
 *   "isa":"avx512"                  hs_isa_name(hs_cpu_isa()): capped by HS_CPU_ISA
 *   "isa_native":"avx512"           hs_isa_name(hs_cpu_isa_native())
 *   "blas_core":"Cooperlake"        hs_blas_core_name(): the kernels OpenBLAS runs
 *   "openblas_coretype_env":null    OPENBLAS_CORETYPE's value, or null when unset
 *   "openblas_coretype_set_by":null "user", "hyperspeed" (set by the program's
 *                                   restart, hs_blas_core_reexec), or null when unset
 * bench/train_step_torch.py prints the same fields for the PyTorch side. */
#ifndef HS_BENCH_REPORT_H
#define HS_BENCH_REPORT_H

#include <hyperspeed/core.h>
#include <hyperspeed/kernels.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends s to buf (n bytes, *used so far) as a JSON string, or null. */
static inline void hs_bench_json_str(char *buf, size_t n, size_t *used, const char *s)
{
    char tmp[512];
    size_t k = 0;
    if (!s) {
        snprintf(tmp, sizeof tmp, "null");
    } else {
        tmp[k++] = '"';
        for (; *s && k + 8 < sizeof tmp; s++) {
            const unsigned char c = (unsigned char)*s;
            if (c == '"' || c == '\\')
                k += (size_t)snprintf(tmp + k, sizeof tmp - k, "\\%c", c);
            else if (c < 0x20)
                k += (size_t)snprintf(tmp + k, sizeof tmp - k, "\\u%04x", c);
            else
                tmp[k++] = (char)c;
        }
        tmp[k++] = '"';
        tmp[k] = '\0';
    }
    int w = snprintf(buf + *used, n - *used, "%s", tmp);
    if (w > 0)
        *used = *used + (size_t)w < n ? *used + (size_t)w : n - 1;
}

/* The machine fields, starting with a comma, to put before a line's
 * closing brace: printf("{\"bench\":\"x\",...%s}\n", ..., hs_bench_machine()).
 * Built on the first call (a static string). */
static inline const char *hs_bench_machine(void)
{
    static char buf[1536];
    if (buf[0])
        return buf;
    const char *env = getenv("OPENBLAS_CORETYPE"), *marker = getenv("HS_BLAS_CORE_REEXEC");
    size_t used = 0;
    used += (size_t)snprintf(buf, sizeof buf, ",\"cpu\":");
    hs_bench_json_str(buf, sizeof buf, &used, hs_cpu_name());
    used += (size_t)snprintf(buf + used, sizeof buf - used, ",\"isa\":\"%s\",\"isa_native\":\"%s\",\"blas_core\":",
                             hs_isa_name(hs_cpu_isa()), hs_isa_name(hs_cpu_isa_native()));
    hs_bench_json_str(buf, sizeof buf, &used, hs_blas_core_name());
    used += (size_t)snprintf(buf + used, sizeof buf - used, ",\"openblas_coretype_env\":");
    hs_bench_json_str(buf, sizeof buf, &used, env);
    used += (size_t)snprintf(buf + used, sizeof buf - used, ",\"openblas_coretype_set_by\":");
    hs_bench_json_str(buf, sizeof buf, &used,
                      !env ? NULL : marker && strcmp(marker, env) == 0 ? "hyperspeed" : "user");
    return buf;
}

#endif
