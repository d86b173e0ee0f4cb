/* bench/memory: what the memory features cost and save, each beside the
 * memory estimator's figure.
 *
 *   mpirun -n 2 bench_memory [--steps 2] [--runs 5] [--threads 1] [--model gpt2-124m] [--skip-cpu]
 *                            [--skip-npu] [--npu-model llama2-7b] [--npu-layers 4] [--npu-seq 4096]
 *
 * CPU: data parallelism over the ranks (the default grid), the global
 * batch B = 8 sequences of T = 128 tokens per step (B / ranks per rank, one
 * micro-batch), fp32, AdamW. Configurations, each its own engine on the
 * same runtime: zero0 (plain DP), zero1 (the distributed optimizer),
 * offload (the optimizer on the host), zero1_offload, recompute_selective,
 * recompute_full (ZeRO-0), zero1_overlap (the parameter gather under the
 * next forward, overlap_param_gather). Per configuration one warm-up step, then --runs
 * runs of --steps steps; a run's tokens/s = B * T * steps / the slowest
 * rank's wall seconds from a common barrier. One line each:
 *   {"bench":"memory","device":"cpu","config":"zero1","zero":1,"offload":"none","recompute":"none",
 *    "tok_s_median":..,"tok_s_min":..,"tok_s_max":..,"step_ms_median":..,"runs":5,"steps":2,"threads":1,
 *    "device_mib":..,"device_estimate_mib":..,"device_error":..,"host_mib":..,"host_estimate_mib":..,
 *    "loss":..,(machine fields: bench/report.h)}
 *   device_mib     the largest rank's peak of the library's device allocations during the
 *                  configuration (hs_host_mem_peak on the CPU device, less what was held before:
 *                  the collectives' scratch the first configuration grows stays held, so from
 *                  the second on the estimate's workspace is left out of the comparison);
 *   device_error   device_mib / device_estimate_mib - 1;
 *   host_mib       the offload pool's peak (hs_offload_mem_peak), with the estimate's figure.
 * Then the checks, {"bench":"memory","check":..,"ratio":..,"target":..,"pass":..}:
 *   zero1_vs_zero0         tokens/s ratio, target >= 0.95 (also zero1_overlap_vs_zero0);
 *   recompute_full_step    step time over zero0's, target <= 1.40;
 *   offload_vs_zero0       tokens/s ratio (no target: the host update's cost);
 *   memory_estimate        the largest |device_error|, target <= 0.05.
 *
 * NPU (unless --skip-npu): each rank its own simulated 910B2 in estimate
 * mode, bf16, --npu-model cut to --npu-layers layers, micro-batch 1 of
 * --npu-seq tokens per rank, ZeRO 0, ZeRO 1, ZeRO 1 with the gather
 * overlapped, ZeRO 1 with the optimizer offloaded; three steps, the third
 * reported (with the gather overlapped, a step holds the previous one's):
 *   {"bench":"memory","device":"npu","config":..,"sim_step_ms":..,"dp_sim_comm_ms":..,
 *    "dp_sim_exposed_ms":..,"hccl_formula_ms":..,"hbm_peak_mib":..,"hbm_estimate_mib":..,
 *    "host_mib":..,"host_estimate_mib":..}
 *   dp_sim_comm_ms     the gradient reduction's simulated time on the comm stream (its buckets);
 *   dp_sim_exposed_ms  how long the compute stream waited for it;
 *   hccl_formula_ms    hs_comm_cost of the same bytes in one piece: an all-reduce (ZeRO-0)
 *                      or a reduce-scatter (ZeRO-1; its parameter all-gather, formula
 *                      hccl_gather_ms, of the bf16 compute copy, runs after the update and
 *                      is in sim_step_ms).
 */
#include "median.h"
#include "report.h"

#include <hyperspeed.h>
#include <hyperspeed/memory.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 8, SEQ = 128, TOKENS = BATCH * SEQ };
#define LR 3e-4f

typedef struct bench_args {
    const char *model, *npu_model;
    int steps, runs, threads, skip_npu, npu_layers, npu_seq, skip_cpu;
} bench_args;

typedef struct config {
    const char *name;
    int zero;
    unsigned offload;
    hs_recompute recompute;
    int overlap; /* overlap_param_gather */
} config;

typedef struct bench {
    bench_args a;
    hs_runtime *rt;
    hs_comm *world;
    int rank, ranks;
    int32_t *tok; /* TOKENS + 1 */
} bench;

static void check(hs_status s, const char *what)
{
    if (s) {
        fprintf(stderr, "bench_memory: %s: %s\n", what, hs_last_error());
        exit(1);
    }
}

/* x[0 .. n) (n <= 4; seconds or bytes, >= 0) = the maximum over the ranks, to 1e-6. */
static void world_max(bench *b, double *x, int n)
{
    int64_t v[4];
    for (int i = 0; i < n; i++)
        v[i] = llround(x[i] * 1e6);
    check(hs_comm_allreduce(b->world, v, v, (size_t)n, HS_INT64, HS_REDUCE_MAX), "allreduce");
    for (int i = 0; i < n; i++)
        x[i] = (double)v[i] * 1e-6;
}

static double mib(double bytes) { return bytes / 1048576.0; }

/* The engine config of c for micro-batches of mb sequences of T tokens. */
static hs_engine_config engine_config(const config *c, hs_npu *npu, int mb, int T)
{
    hs_engine_config ec = hs_engine_config_default();
    ec.micro_batch = mb;
    ec.seq = T;
    ec.zero = c->zero;
    ec.overlap_param_gather = c->overlap;
    ec.model.offload = c->offload;
    ec.model.recompute = c->recompute;
    if (npu) {
        ec.model.device = HS_DEVICE_NPU;
        ec.model.npu = npu;
        ec.model.compute = HS_BF16;
    }
    return ec;
}

/* This rank's estimate of config ec. */
static hs_memory_rank estimate(bench *b, const hs_model_config *cfg, const hs_engine_config *ec,
                               const hs_npu_spec *spec)
{
    hs_memory_rank *r = calloc((size_t)b->ranks, sizeof *r);
    if (!r)
        check(hs_error(HS_ERR_OUT_OF_MEMORY, "estimates"), "estimate");
    check(hs_memory_estimate(cfg, ec, b->ranks, spec, r), "estimate");
    const hs_memory_rank me = r[b->rank];
    free(r);
    return me;
}

static void print_config(const config *c, const char *device)
{
    char off[64];
    printf("{\"bench\":\"memory\",\"device\":\"%s\",\"config\":\"%s\",\"zero\":%d,\"offload\":\"%s\","
           "\"recompute\":\"%s\",\"overlap_param_gather\":%d",
           device, c->name, c->zero, hs_offload_name(c->offload, off, sizeof off), hs_recompute_name(c->recompute),
           c->overlap);
}

/* CPU: tokens/s and memory of config c; *step_s gets the median step time, *err the memory error. */
static double bench_cpu(bench *b, const config *c, int first, double *step_s, double *err)
{
    hs_model_config cfg;
    check(hs_model_config_preset(b->a.model, &cfg), "model preset");
    const int mb = BATCH / b->ranks;
    const hs_engine_config ec = engine_config(c, NULL, mb, SEQ);
    const hs_memory_rank est = estimate(b, &cfg, &ec, NULL);
    const size_t held = hs_host_mem_used(), pool = hs_offload_mem_used();
    hs_host_mem_reset_peak();
    hs_offload_mem_reset_peak();
    hs_engine *e;
    check(hs_engine_new(b->rt, &cfg, &ec, &e), c->name);
    check(hs_engine_init(e, 1234), "init");
    const int32_t *x = b->tok + (size_t)b->rank * (size_t)mb * SEQ;
    hs_engine_stats st;
    check(hs_engine_train_step(e, x, x + 1, LR, &st), "warm-up step");
    double *tok_s = malloc(sizeof *tok_s * (size_t)b->a.runs);
    if (!tok_s)
        check(hs_error(HS_ERR_OUT_OF_MEMORY, "runs"), "runs");
    for (int i = 0; i < b->a.runs; i++) {
        check(hs_comm_barrier(b->world), "barrier");
        const double t0 = hs_time_now();
        for (int k = 0; k < b->a.steps; k++)
            check(hs_engine_train_step(e, x, x + 1, LR, &st), "step");
        double elapsed = hs_time_now() - t0;
        world_max(b, &elapsed, 1);
        tok_s[i] = (double)TOKENS * b->a.steps / elapsed;
    }
    double m[2] = {(double)(hs_host_mem_peak() - held), (double)(hs_offload_mem_peak() - pool)};
    world_max(b, m, 2);
    hs_engine_free(e);
    const double median = hs_bench_median(tok_s, b->a.runs);
    const double want = (double)(est.device - (first ? 0 : est.workspace));
    *step_s = (double)TOKENS / median;
    *err = m[0] / want - 1;
    if (b->rank == 0) {
        print_config(c, "cpu");
        printf(",\"model\":\"%s\",\"batch\":%d,\"seq\":%d,\"dp\":%d,\"tok_s_median\":%.1f,\"tok_s_min\":%.1f,"
               "\"tok_s_max\":%.1f,\"step_ms_median\":%.1f,\"runs\":%d,\"steps\":%d,\"threads\":%d,"
               "\"device_mib\":%.2f,\"device_estimate_mib\":%.2f,\"device_error\":%.4f,\"host_mib\":%.2f,"
               "\"host_estimate_mib\":%.2f,\"loss\":%.6g%s}\n",
               b->a.model, BATCH, SEQ, b->ranks, median, tok_s[0], tok_s[b->a.runs - 1], *step_s * 1e3, b->a.runs,
               b->a.steps, hs_num_threads(), mib(m[0]), mib(want), *err, mib(m[1]), mib((double)est.host),
               (double)st.loss, hs_bench_machine());
        fflush(stdout);
    }
    free(tok_s);
    return median;
}

/* NPU (estimate mode): simulated step and communication of config c. */
static void bench_npu(bench *b, const config *c)
{
    hs_model_config cfg;
    hs_npu_spec spec;
    hs_npu *npu;
    check(hs_model_config_preset(b->a.npu_model, &cfg), "model preset");
    cfg.n_layer = b->a.npu_layers;
    check(hs_npu_spec_preset("910B2", &spec), "npu preset");
    check(hs_npu_new(&spec, HS_NPU_ESTIMATE, &npu), "npu");
    const hs_engine_config ec = engine_config(c, npu, 1, b->a.npu_seq);
    const hs_memory_rank est = estimate(b, &cfg, &ec, &spec);
    const size_t pool = hs_offload_mem_used();
    hs_offload_mem_reset_peak();
    hs_engine *e;
    check(hs_engine_new(b->rt, &cfg, &ec, &e), c->name);
    check(hs_engine_init(e, 1234), "init");
    int32_t *tok = calloc((size_t)b->a.npu_seq + 1, sizeof *tok);
    if (!tok)
        check(hs_error(HS_ERR_OUT_OF_MEMORY, "tokens"), "tokens");
    hs_engine_stats st;
    for (int k = 0; k < 3; k++)
        check(hs_engine_train_step(e, tok, tok + 1, LR, &st), "step");
    double m[2] = {(double)hs_npu_mem_peak(npu), (double)(hs_offload_mem_peak() - pool)};
    world_max(b, m, 2);
    const hs_cluster_spec cs = hs_cluster_spec_default();
    double reduce_s = 0, gather_s = 0;
    check(hs_comm_cost(&cs, c->zero ? HS_COLL_REDUCE_SCATTER : HS_COLL_ALLREDUCE, b->ranks, b->ranks, st.dp.bytes,
                       &reduce_s),
          "cost");
    if (c->zero) /* the bf16 compute copy (the master is sharded, or offloaded) */
        check(hs_comm_cost(&cs, HS_COLL_ALLGATHER, b->ranks, b->ranks, st.dp.bytes / 2, &gather_s), "cost");
    hs_engine_free(e);
    hs_npu_free(npu);
    free(tok);
    if (b->rank == 0) {
        print_config(c, "npu");
        printf(",\"preset\":\"910B2\",\"mode\":\"estimate\",\"compute\":\"bf16\",\"model\":\"%s\",\"layers\":%d,"
               "\"seq\":%d,\"dp\":%d,\"sim_step_ms\":%.3f,\"dp_bytes\":%.0f,\"dp_sim_comm_ms\":%.3f,"
               "\"dp_sim_exposed_ms\":%.3f,\"hccl_formula_ms\":%.3f,\"hccl_gather_ms\":%.3f,\"hbm_peak_mib\":%.1f,"
               "\"hbm_estimate_mib\":%.1f,\"host_mib\":%.1f,\"host_estimate_mib\":%.1f%s}\n",
               b->a.npu_model, cfg.n_layer, b->a.npu_seq, b->ranks, st.sim_seconds * 1e3, st.dp.bytes,
               st.dp.sim_comm_s * 1e3, st.dp.sim_exposed_s * 1e3, reduce_s * 1e3, gather_s * 1e3, mib(m[0]),
               mib((double)est.device), mib(m[1]), mib((double)est.host), hs_bench_machine());
        fflush(stdout);
    }
}

static void print_check(const bench *b, const char *name, double ratio, double target, int at_least)
{
    if (b->rank != 0)
        return;
    printf("{\"bench\":\"memory\",\"check\":\"%s\",\"ratio\":%.4f,\"target\":", name, ratio);
    if (isnan(target))
        printf("null,\"pass\":null}\n");
    else
        printf("%.2f,\"pass\":%s}\n", target, (at_least ? ratio >= target : ratio <= target) ? "true" : "false");
}

static hs_status parse(int argc, char **argv, bench_args *a, int rank)
{
    const hs_option opts[] = {
        {"steps", HS_OPT_INT, &a->steps, "CPU: steps per timed run"},
        {"runs", HS_OPT_INT, &a->runs, "CPU: timed runs per configuration (median, min, max)"},
        {"threads", HS_OPT_INT, &a->threads, "compute threads per rank"},
        {"model", HS_OPT_STRING, &a->model, "CPU: model preset"},
        {"skip-npu", HS_OPT_FLAG, &a->skip_npu, "skip the simulated 910B2"},
        {"skip-cpu", HS_OPT_FLAG, &a->skip_cpu, "skip the CPU configurations (and their checks)"},
        {"npu-model", HS_OPT_STRING, &a->npu_model, "NPU: model preset"},
        {"npu-layers", HS_OPT_INT, &a->npu_layers, "NPU: the preset cut to this many layers"},
        {"npu-seq", HS_OPT_INT, &a->npu_seq, "NPU: tokens per sequence (one per rank)"},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    hs_status s = hs_options_parse(argc, argv, opts, n);
    if (s && rank == 0)
        hs_options_usage(stderr, "bench_memory", opts, n);
    if (!s && (a->steps < 1 || a->runs < 1 || a->threads < 1 || a->npu_layers < 1 || a->npu_seq < 1))
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "--steps, --runs, --threads, --npu-layers and --npu-seq must be >= 1");
    return s;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv); /* before hs_init starts MPI: the restart keeps the process */
    bench b = {{"gpt2-124m", "llama2-7b", 2, 5, 1, 0, 4, 4096, 0}, NULL, NULL, 0, 0, NULL};
    check(hs_init(&argc, &argv, NULL, &b.rt), "runtime");
    b.world = hs_runtime_comm(b.rt, HS_GROUP_WORLD);
    b.rank = hs_comm_rank(b.world);
    b.ranks = hs_comm_size(b.world);
    if (parse(argc, argv, &b.a, b.rank) == HS_ERR_NOT_FOUND) {
        hs_finalize(b.rt);
        return 0;
    }
    check(parse(argc, argv, &b.a, 1), "flags");
    if (BATCH % b.ranks)
        check(hs_error(HS_ERR_INVALID_ARGUMENT, "%d ranks do not divide the batch of %d", b.ranks, BATCH), "ranks");
    check(hs_set_num_threads(b.a.threads), "threads");
    hs_model_config cfg;
    check(hs_model_config_preset(b.a.model, &cfg), "model preset");
    if (!(b.tok = malloc(sizeof *b.tok * (TOKENS + 1))))
        check(hs_error(HS_ERR_OUT_OF_MEMORY, "tokens"), "tokens");
    for (int i = 0; i <= TOKENS; i++) {
        const int id = (int)(hs_rng_uniform(7, 0, (uint64_t)i) * (float)cfg.vocab_size);
        b.tok[i] = id < cfg.vocab_size ? id : cfg.vocab_size - 1;
    }
    const config cpu[] = {
        {"zero0", 0, HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE, 0},
        {"zero1", 1, HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE, 0},
        {"offload", 0, HS_OFFLOAD_OPTIMIZER, HS_RECOMPUTE_NONE, 0},
        {"zero1_offload", 1, HS_OFFLOAD_OPTIMIZER, HS_RECOMPUTE_NONE, 0},
        {"recompute_selective", 0, HS_OFFLOAD_NONE, HS_RECOMPUTE_SELECTIVE, 0},
        {"recompute_full", 0, HS_OFFLOAD_NONE, HS_RECOMPUTE_FULL, 0},
        {"zero1_overlap", 1, HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE, 1},
    };
    enum { N_CPU = sizeof cpu / sizeof *cpu };
    double tok_s[N_CPU], step_s[N_CPU], err[N_CPU], worst = 0;
    for (int i = 0; !b.a.skip_cpu && i < N_CPU; i++) {
        tok_s[i] = bench_cpu(&b, &cpu[i], i == 0, &step_s[i], &err[i]);
        worst = fabs(err[i]) > worst ? fabs(err[i]) : worst;
    }
    if (!b.a.skip_cpu) {
        print_check(&b, "zero1_vs_zero0", tok_s[1] / tok_s[0], 0.95, 1);
        print_check(&b, "zero1_overlap_vs_zero0", tok_s[6] / tok_s[0], 0.95, 1);
        print_check(&b, "recompute_full_step", step_s[5] / step_s[0], 1.40, 0);
        print_check(&b, "offload_vs_zero0", tok_s[2] / tok_s[0], NAN, 1);
        print_check(&b, "memory_estimate", worst, 0.05, 0);
    }
    const config npu[] = {
        {"zero0", 0, HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE, 0},
        {"zero1", 1, HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE, 0},
        {"zero1_overlap", 1, HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE, 1},
        {"zero1_offload", 1, HS_OFFLOAD_OPTIMIZER, HS_RECOMPUTE_NONE, 0},
    };
    for (size_t i = 0; !b.a.skip_npu && i < sizeof npu / sizeof *npu; i++)
        bench_npu(&b, &npu[i]);
    free(b.tok);
    check(hs_finalize(b.rt), "finalize");
    return 0;
}
