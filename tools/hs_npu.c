/* hs-npu: the NPU model's spec, trace and memory tools (docs/npu_model.md,
 * docs/memory.md).
 *
 *   hs-npu info PRESET|FILE.ini   spec fields and derived peaks
 *   hs-npu prof TRACE.json        per-kernel totals of a trace
 *   hs-npu memory --model M ...   each rank's memory for a training run
 *
 * Exit status: 0 success, 1 a library error (its message is printed),
 * 2 a usage error (unknown command or preset, wrong arguments). */
#include "hyperspeed/core.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/memory.h"
#include "hyperspeed/npu.h"
#include "hyperspeed/options.h"

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
               "  hs-npu prof TRACE.json        per-kernel totals of a trace written by hs_npu_trace_stop\n"
               "  hs-npu memory --model M [--npus N --tp T --pp P --zero Z --offload O --recompute R ...]\n"
               "                                each rank's memory for a training run and whether it fits\n"
               "                                (hs-npu memory --help for its flags)\n");
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
    printf("host (per NPU):      %.2f GiB, %.1f GB/s\n", s->host_bytes / gib, s->host_bw / 1e9);
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

/* ---- hs-npu memory ---- */

typedef struct memory_args {
    const char *model, *preset, *dtype, *recompute, *schedule, *offload;
    int npus, tp, pp, dp, zero, recompute_layers, micro_batch, seq, micro_batches, virtual_stages, sp, layers;
    float bucket_mb;
} memory_args;

static double gib(size_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/* 1 when two ranks' figures are the same (they print as one row). */
static int same_bytes(const hs_memory_rank *a, const hs_memory_rank *b)
{
    return a->params == b->params && a->weights == b->weights && a->gradients == b->gradients &&
           a->optimizer == b->optimizer && a->activations == b->activations && a->workspace == b->workspace &&
           a->comm == b->comm && a->host == b->host;
}

/* One row per run of consecutive ranks with the same figures. */
static void print_ranks(const hs_memory_rank *r, int n, size_t hbm)
{
    printf("%-11s %13s %9s %9s %9s %11s %9s %9s %9s %6s %9s\n", "ranks", "parameters", "weights", "grads", "AdamW",
           "activations", "workspace", "comm", "total", "HBM", "host");
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && same_bytes(&r[i], &r[j]))
            j++;
        char who[32];
        snprintf(who, sizeof who, j - i > 1 ? "%d-%d" : "%d", i, j - 1);
        printf("%-11s %13lld %9.2f %9.2f %9.2f %11.2f %9.2f %9.2f %9.2f %5.0f%% %9.2f\n", who, (long long)r[i].params,
               gib(r[i].weights), gib(r[i].gradients), gib(r[i].optimizer), gib(r[i].activations),
               gib(r[i].workspace), gib(r[i].comm), gib(r[i].device), 100.0 * (double)r[i].device / (double)hbm,
               gib(r[i].host));
        i = j;
    }
}

/* The engine config of the flags (after the model and preset checks). */
static hs_status memory_config(const memory_args *a, hs_engine_config *ec)
{
    hs_status s = HS_OK;
    *ec = hs_engine_config_default();
    ec->layout.tp = a->tp;
    ec->layout.pp = a->pp;
    ec->layout.virtual_stages = a->virtual_stages;
    ec->layout.micro_batches = a->micro_batches;
    ec->layout.sequence_parallel = a->sp;
    if (a->pp > 1 && (s = hs_pp_schedule_parse(a->schedule, &ec->layout.schedule)))
        return s;
    ec->micro_batch = a->micro_batch;
    ec->seq = a->seq;
    ec->zero = a->zero;
    ec->dp.bucket_bytes = (size_t)((double)a->bucket_mb * 1048576.0);
    ec->model.device = HS_DEVICE_NPU;
    ec->model.recompute_layers = a->recompute_layers;
    if ((s = hs_dtype_parse(a->dtype, &ec->model.compute)) || (s = hs_offload_parse(a->offload, &ec->model.offload)))
        return s;
    return hs_recompute_parse(a->recompute, &ec->model.recompute);
}

static int run_memory(int argc, char **argv)
{
    memory_args a = {"gpt2-124m", "910B2", "bf16", "none", "1f1b", "none", 1, 1, 1, 0, 0, 0, 1, 1024, 1, 1, 0, 0,
                     25.0f};
    const hs_option opts[] = {
        {"model", HS_OPT_STRING, &a.model, "model preset (hs_model_preset_names)"},
        {"layers", HS_OPT_INT, &a.layers, "override the preset's layer count (0: keep)"},
        {"npu-preset", HS_OPT_STRING, &a.preset, "NPU spec preset: 910B2, 910B3, 910B4, 910C, 910A, test"},
        {"npus", HS_OPT_INT, &a.npus, "NPUs (ranks) of the run"},
        {"tp", HS_OPT_INT, &a.tp, "tensor-parallel size"},
        {"pp", HS_OPT_INT, &a.pp, "pipeline stages"},
        {"dp", HS_OPT_INT, &a.dp, "data-parallel size (0: npus / (tp x pp))"},
        {"virtual-stages", HS_OPT_INT, &a.virtual_stages, "chunks per pipeline stage (interleaved)"},
        {"schedule", HS_OPT_STRING, &a.schedule, "pipeline schedule: gpipe, 1f1b, interleaved"},
        {"sequence-parallel", HS_OPT_FLAG, &a.sp, "norms and residuals on seq/tp positions"},
        {"zero", HS_OPT_INT, &a.zero, "ZeRO stage over the DP group: 0 or 1"},
        {"offload", HS_OPT_STRING, &a.offload, "host offload: optimizer (fp32 master, AdamW state), or none"},
        {"recompute", HS_OPT_STRING, &a.recompute, "activation recompute: none, selective, full"},
        {"recompute-layers", HS_OPT_INT, &a.recompute_layers, "recompute the first N layers of each chunk (0: all)"},
        {"micro-batch", HS_OPT_INT, &a.micro_batch, "sequences per micro-batch"},
        {"seq", HS_OPT_INT, &a.seq, "tokens per sequence"},
        {"micro-batches", HS_OPT_INT, &a.micro_batches, "micro-batches per step and pipeline"},
        {"dtype", HS_OPT_STRING, &a.dtype, "matmul compute dtype: bf16, fp16"},
        {"bucket-mb", HS_OPT_FLOAT, &a.bucket_mb, "data parallel: gradient bucket size in MiB"},
    };
    const int n = (int)(sizeof opts / sizeof *opts);
    hs_status s = hs_options_parse(argc, argv, opts, n);
    if (s == HS_ERR_NOT_FOUND) {
        hs_options_usage(stdout, "hs-npu memory", opts, n);
        return 0;
    }
    hs_model_config cfg;
    hs_npu_spec spec;
    hs_engine_config ec;
    if (s || (s = hs_model_config_preset(a.model, &cfg)) || (s = hs_npu_spec_preset(a.preset, &spec))) {
        fprintf(stderr, "hs-npu memory: %s\n", hs_last_error());
        return 2;
    }
    cfg.n_layer = a.layers > 0 ? a.layers : cfg.n_layer;
    if (a.dp > 0 && a.dp * a.tp * a.pp != a.npus) {
        fprintf(stderr, "hs-npu memory: --dp=%d x --tp=%d x --pp=%d does not make --npus=%d\n", a.dp, a.tp, a.pp,
                a.npus);
        return 2;
    }
    if ((s = memory_config(&a, &ec))) {
        fprintf(stderr, "hs-npu memory: %s\n", hs_last_error());
        return 2;
    }
    hs_memory_rank *r = calloc((size_t)(a.npus > 0 ? a.npus : 1), sizeof *r);
    if (!r)
        return fail();
    if ((s = hs_memory_estimate(&cfg, &ec, a.npus, &spec, r))) {
        free(r);
        fprintf(stderr, "hs-npu memory: %s\n", hs_last_error());
        return s == HS_ERR_INVALID_ARGUMENT ? 2 : 1;
    }
    const int dp = a.npus / (a.tp * a.pp);
    const int off = ec.model.offload != HS_OFFLOAD_NONE;
    printf("%s (%d layers) on %d x %s (%.2f GiB HBM, %.2f GiB host each), %s compute | tp %d x pp %d x dp %d | "
           "ZeRO-%d | offload %s | recompute %s | micro-batch %d x seq %d, %d micro-batches per step\n",
           a.model, cfg.n_layer, a.npus, spec.name, gib((size_t)spec.hbm_bytes), gib((size_t)spec.host_bytes),
           a.dtype, a.tp, a.pp, dp, a.zero, a.offload, a.recompute, a.micro_batch, a.seq, a.micro_batches);
    printf("GiB per rank: weights = %s; AdamW = m and v%s; activations = %d micro-batch(es) in flight x %.2f + "
           "%.2f shared%s\n",
           off ? "the 16-bit copy + fp32 norms, biases, embeddings" : "fp32 + the 16-bit copy",
           off ? " (on the host)" : "", r[0].in_flight, gib(r[0].act_per_micro_batch), gib(r[0].act_shared),
           off ? "; host = the offload pool (fp32 master, m, v, the gradients' copy), not in the total" : "");
    print_ranks(r, a.npus, (size_t)spec.hbm_bytes);
    int worst = 0;
    for (int i = 1; i < a.npus; i++)
        worst = r[i].device > r[worst].device ? i : worst;
    int host = 0; /* the fullest host pool */
    for (int i = 1; i < a.npus; i++)
        host = r[i].host > r[host].host ? i : host;
    if (r[host].host > (size_t)spec.host_bytes)
        printf("verdict: does not fit: rank %d's host pool needs %.2f GiB of the %.2f GiB host share of one NPU\n",
               host, gib(r[host].host), gib((size_t)spec.host_bytes));
    else if (r[worst].device <= (size_t)spec.hbm_bytes)
        printf("verdict: fits: the fullest rank (%d) needs %.2f GiB of %.2f GiB (%.0f%%)\n", worst,
               gib(r[worst].device), gib((size_t)spec.hbm_bytes), 100.0 * (double)r[worst].device / (double)spec.hbm_bytes);
    else
        printf("verdict: does not fit: rank %d needs %.2f GiB of %.2f GiB (%.2fx)\n", worst, gib(r[worst].device),
               gib((size_t)spec.hbm_bytes), (double)r[worst].device / (double)spec.hbm_bytes);
    free(r);
    return 0;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv); /* the best OpenBLAS kernels for this CPU (docs/training.md) */
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "memory"))
        return run_memory(argc - 1, argv + 1);
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
