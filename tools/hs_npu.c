/* hs-npu: the NPU model's spec and trace tools (docs/npu_model.md).
 *
 *   hs-npu info PRESET|FILE.ini   spec fields and derived peaks
 *   hs-npu prof TRACE.json        per-kernel totals of a trace
 *
 * Exit status: 0 success, 1 a library error (its message is printed),
 * 2 a usage error (unknown command or preset, wrong arguments). */
#include "hyperspeed/core.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/npu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Prints the usage text to f. */
static void usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  hs-npu info PRESET|FILE.ini   spec and derived peaks (presets:");
    for (const char *const *n = hs_npu_preset_names(); *n; n++)
        fprintf(f, " %s", *n);
    fprintf(f, ")\n"
               "  hs-npu prof TRACE.json        per-kernel totals of a trace written by hs_npu_trace_stop\n");
}

/* Prints the last library error; exit status 1. */
static int fail(void)
{
    fprintf(stderr, "hs-npu: %s\n", hs_last_error());
    return 1;
}

/* Prints every spec field and the derived figures. */
static void print_spec(const hs_npu_spec *s)
{
    const double kib = 1024.0, mib = kib * 1024, gib = mib * 1024;
    printf("name:                %s\n", s->name);
    printf("cube cores (AIC):    %d\n", s->cube_cores);
    printf("vector cores (AIV):  %d%s\n", s->vector_cores, s->vector_cores ? "" : " (vector unit inside each AI core)");
    printf("clock:               %.0f MHz\n", s->freq_hz / 1e6);
    printf("per AIC:             L1 %.0f KiB, L0A %.0f KiB, L0B %.0f KiB, L0C %.0f KiB, bias table %.0f KiB, fixpipe "
           "%.0f KiB\n",
           s->l1_bytes / kib, s->l0a_bytes / kib, s->l0b_bytes / kib, s->l0c_bytes / kib, s->bias_table_bytes / kib,
           s->fixpipe_bytes / kib);
    printf("per AIV:             UB %.0f KiB\n", s->ub_bytes / kib);
    printf("L2:                  %.0f MiB\n", s->l2_bytes / mib);
    printf("HBM:                 %.2f GiB, %.2f TB/s\n", s->hbm_bytes / gib, s->hbm_bw / 1e12);
    printf("rates (B/cycle):     ddr %g, l2 read %g, l2 write %g, l1->l0 %g, ub->l2 %g, fixpipe %g\n", s->ddr_rate,
           s->l2_read_rate, s->l2_write_rate, s->l1_to_l0_rate, s->ub_to_l2_rate, s->fixpipe_rate);
    printf("cube:                %dx%dx%d MAC/cycle\n", s->cube_m, s->cube_k, s->cube_n);
    printf("vector:              %d B/cycle\n", s->vector_bytes);
    printf("latency (cycles):    mte2 %d, mte1 %d, cube %d, fixpipe %d, vector %d, mte3 %d, scalar %d\n", s->lat_mte2,
           s->lat_mte1, s->lat_cube, s->lat_fixpipe, s->lat_vector, s->lat_mte3, s->lat_scalar);
    printf("launch overhead:     %.2f us\n", s->launch_overhead_s * 1e6);
    printf("PCIe:                %.1f GB/s, %.2f us latency\n", s->pcie_bw / 1e9, s->pcie_latency_s * 1e6);
    printf("peak fp16/bf16:      %.1f TFLOP/s\n", hs_npu_peak_flops(s, HS_FP16) / 1e12);
    printf("peak int8:           %.1f TOPS\n", hs_npu_peak_flops(s, HS_INT8) / 1e12);
    printf("vector peak:         %.1f TB/s\n", hs_npu_vector_bytes_per_s(s) / 1e12);
}

/* hs-npu info: a preset name, else an .ini file over the 910B2 preset. */
static int run_info(const char *arg)
{
    hs_npu_spec s;
    if (hs_npu_spec_preset(arg, &s) == HS_OK) {
        print_spec(&s);
        return 0;
    }
    if (access(arg, F_OK) != 0) {
        fprintf(stderr, "hs-npu: %s, and no file of that name\n", hs_last_error());
        return 2;
    }
    if (hs_npu_spec_load_ini(arg, NULL, &s) != HS_OK)
        return fail();
    print_spec(&s);
    return 0;
}

/* "  93.1" for a utilisation, "     -" when the trace has none. */
static void print_util(double u)
{
    if (u < 0)
        printf(" %6s", "-");
    else
        printf(" %5.1f%%", 100 * u);
}

/* hs-npu prof: one line per kernel, most simulated time first. */
static int run_prof(const char *path)
{
    hs_npu_kernel_profile *k;
    size_t n;
    if (hs_npu_trace_profile(path, &k, &n) != HS_OK)
        return fail();
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += k[i].seconds;
    printf("%s: %zu kernels, %.3f ms of kernel time\n", path, n, total * 1e3);
    if (n)
        printf("%-32s %7s %11s %6s %7s %7s %10s %9s %9s\n", "kernel", "count", "time ms", "share", "cube", "vector",
               "HBM MiB", "HBM GB/s", "TFLOP/s");
    for (size_t i = 0; i < n; i++) {
        printf("%-32s %7lld %11.4f %5.1f%%", k[i].name, (long long)k[i].count, k[i].seconds * 1e3,
               total > 0 ? 100 * k[i].seconds / total : 0.0);
        print_util(k[i].cube_util);
        print_util(k[i].vector_util);
        double secs = k[i].seconds > 0 ? k[i].seconds : 1;
        printf(" %10.2f %9.1f %9.2f\n", k[i].hbm_bytes / (1024.0 * 1024.0), k[i].hbm_bytes / secs / 1e9,
               k[i].flops / secs / 1e12);
    }
    free(k);
    return 0;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv); /* the best OpenBLAS kernels for this CPU (docs/training.md) */
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 3) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "info"))
        return run_info(argv[2]);
    if (!strcmp(argv[1], "prof"))
        return run_prof(argv[2]);
    fprintf(stderr, "hs-npu: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
