/* bench/layouts: the same training step on two ranks cut four ways, on the
 * CPU (measured tokens/s) and on a simulated Ascend 910B2 (simulated step
 * time, estimate mode).
 *
 *   mpirun -n 2 bench_layouts [--steps 3] [--runs 5] [--skip-npu] [--npu-steps 3]
 *                             [--threads 1] [--model gpt2-124m]
 *
 * Every layout trains the same model (same seed) on the same global batch
 * of B = 8 sequences of T = 128 tokens per optimizer step (1024 tokens),
 * with AdamW at a constant learning rate:
 *   dp2   tp 1, pp 1, dp 2 through hs_engine: the whole model on each rank,
 *         4 sequences each (gradients averaged in buckets during the
 *         backward), as examples/train_gpt.c runs --dp 2;
 *   tp2   tp 2 through hs_engine: heads, MLP width and vocabulary split, one
 *         micro-batch of 8 sequences;
 *   tp2_sp  tp2 with sequence parallelism (norms and residuals on T/2);
 *   pp2   pp 2 through hs_engine: 6 layers per stage, 1F1B over 8
 *         micro-batches of 1 sequence;
 *   pp2_uneven  pp2 with 9 + 3 layers (--stage-layers 9,3): the last stage also runs
 *         the head, as heavy as ~5.5 layers of GPT-2 124M.
 * Each layout starts its own runtime (hs_init on an adopted MPI_COMM_WORLD
 * with its grid, hs_finalize after it), so MPI is initialised here with
 * MPI_THREAD_MULTIPLE: the timing barriers and reductions below are MPI
 * calls of our own beside hyperspeed's progress thread.
 *
 * CPU: per layout one warm-up step, then --runs runs of --steps steps; a
 * run's tokens/s = 1024 * steps / (the slowest rank's wall seconds from a
 * common barrier to its last step). One line per layout:
 *   {"bench":"layouts","device":"cpu","layout":"tp2","model":..,"tp":2,"pp":1,"dp":1,"sp":0,
 *    "schedule":null,"micro_batches":1,"micro_batch":8,"tok_s_median":..,"tok_s_min":..,
 *    "tok_s_max":..,"runs":5,"steps":3,"threads":1,"loss":..,"wall_s":..,(machine fields)}
 *   tok_s_*        median, min and max over the runs;
 *   micro_batch    sequences per forward (dp2: per rank);
 *   machine fields cpu, isa, isa_native, blas_core (OpenBLAS's kernel core; OPENBLAS_CORETYPE
 *                  can cap it), openblas_coretype_env, openblas_coretype_set_by: bench/report.h,
 *                  on every line below;
 *   loss, grad_norm  the last step's loss and global gradient norm (before clipping):
 *                  every layout has run 1 + runs * steps steps on the same batch from the
 *                  same weights, so they should agree across layouts;
 *   wall_s         the layout's whole wall time, setup included;
 *   pp2 also:      bubble: rank 0's measured pipeline bubble of the last step
 *                  ((span - busy) / busy, hs_engine_stats.bubble), bubble_by_stage: every
 *                  stage's, bubble_theory: the schedule's (hs_pp_bubble_theory, which
 *                  assumes equally heavy stages).
 * Then {"bench":"layouts","check":"tp2_vs_dp2","ratio":..,"target":0.8,"pass":..}: tp2's
 * median tokens/s over dp2's.
 *
 * NPU (unless --skip-npu): each rank its own simulated 910B2 in estimate
 * mode (timing and memory, no values), bf16 compute, the same four
 * layouts, --npu-steps steps. One line per layout:
 *   {"bench":"layouts","device":"npu","preset":"910B2","mode":"estimate","compute":"bf16",
 *    "layout":..,(the layout fields),"sim_step_ms":..,"sim_tok_s":..,"npu_steps":3,
 *    "wall_first_step_s":..,"wall_step_s":..,"hbm_peak_mib":..,"wall_s":..}
 *   sim_step_ms    simulated time of the last step (hs_engine_stats.sim_seconds, the
 *                  slowest rank's; the exposed gradient all-reduce included);
 *   sim_tok_s      1024 / sim_step_ms;
 *   wall_*         host seconds of the first step (every kernel simulated once) and of
 *                  the last one (mostly replayed from the timing cache), slowest rank;
 *   hbm_peak_mib   the larger rank's HBM peak;
 *   pp2 also:      sim_bubble (rank 0's bubble in simulated time), sim_bubble_by_stage,
 *                  bubble_theory.
 */
#include "median.h"
#include "report.h"

#include <hyperspeed.h>

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 8, SEQ = 128, TOKENS = BATCH * SEQ, RANKS = 2 };
#define SEED 1234u
#define LR 3e-4f

typedef struct bench_args {
    const char *model;
    int steps, runs, npu_steps, threads, skip_npu;
} bench_args;

/* A process grid and how a step is cut on it. */
typedef struct layout {
    const char *name;
    int tp, pp, dp, sp;
    int micro_batches; /* per step and pipeline (1F1B when pp > 1) */
    int last_stage_layers; /* pp 2: the last stage's layers (the rest on the first); 0: the even split */
} layout;

static const layout LAYOUTS[] = {
    {"dp2", 1, 1, 2, 0, 1, 0},
    {"tp2", 2, 1, 1, 0, 1, 0},
    {"tp2_sp", 2, 1, 1, 1, 1, 0},
    {"pp2", 1, 2, 1, 0, 8, 0},
    {"pp2_uneven", 1, 2, 1, 0, 8, 3}, /* the last stage also holds the head: 9 + 3 layers of GPT-2 124M */
};
enum { N_LAYOUTS = (int)(sizeof LAYOUTS / sizeof LAYOUTS[0]) };

static int world_rank;

/* A failed call ends the job (every rank: MPI_Abort). */
static void check(hs_status s, const char *what)
{
    if (!s)
        return;
    fprintf(stderr, "bench_layouts: rank %d: %s: %s (%s)\n", world_rank, what, hs_last_error(), hs_status_str(s));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* x[0..n) = the maximum over the world ranks. */
static void world_max(double *x, int n) { MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); }

/* out[r] on rank 0 = world rank r's x (with pp 2 of 2 ranks, rank r is stage r). */
static void gather_to_rank0(double x, double *out)
{
    MPI_Gather(&x, 1, MPI_DOUBLE, out, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

/* Sequences per forward: a DP rank's share of the batch, cut into the micro-batches. */
static int micro_batch(const layout *L) { return BATCH / (L->dp * L->micro_batches); }

/* One rank's run of one layout: its runtime, (NPU,) model and tokens. */
typedef struct trainer {
    const layout *L;
    hs_runtime *rt;
    hs_npu *npu;                  /* NULL on the CPU */
    hs_engine *e;
    int32_t *tok;                 /* the global batch: BATCH * SEQ + 1 ids, targets shifted by one */
    const int32_t *x, *y;         /* this rank's inputs and targets */
} trainer;

/* What one step reports. */
typedef struct step_result {
    float loss;
    double grad_norm; /* before clipping (NaN on an estimate-mode NPU) */
    double wall_s, sim_s;
    double bubble, bubble_theory, sim_bubble; /* pipeline: this rank's (engine stats) */
} step_result;

/* This rank's engine; every rank of a DP replica passes the replica's
 * slice of the batch (as a loader gives). */
static void engine_open(trainer *t, const hs_model_config *cfg, const hs_model_options *mo)
{
    hs_engine_config ec = hs_engine_config_default();
    ec.layout.tp = t->L->tp;
    ec.layout.pp = t->L->pp;
    ec.layout.sequence_parallel = t->L->sp;
    ec.layout.schedule = HS_PP_1F1B;
    ec.layout.micro_batches = t->L->micro_batches;
    if (t->L->last_stage_layers && t->L->last_stage_layers < cfg->n_layer) {
        ec.layout.chunk_layers[0] = cfg->n_layer - t->L->last_stage_layers;
        ec.layout.chunk_layers[1] = t->L->last_stage_layers;
    }
    ec.micro_batch = micro_batch(t->L);
    ec.seq = SEQ;
    ec.model = *mo;
    check(hs_engine_new(t->rt, cfg, &ec, &t->e), "engine");
    check(hs_engine_init(t->e, SEED), "engine init");
    t->x = t->tok + (size_t)hs_runtime_rank(t->rt, HS_GROUP_DP) * (size_t)(BATCH / t->L->dp) * SEQ;
    t->y = t->x + 1;
}

static void trainer_open(const bench_args *a, const layout *L, int on_npu, trainer *t)
{
    memset(t, 0, sizeof *t);
    t->L = L;
    MPI_Comm world = MPI_COMM_WORLD; /* hs_init duplicates it */
    hs_runtime_config rc = hs_runtime_config_default();
    rc.mpi_comm = &world;
    rc.tp = L->tp;
    rc.pp = L->pp;
    rc.dp = L->dp;
    check(hs_init(NULL, NULL, &rc, &t->rt), "runtime");
    check(hs_set_num_threads(a->threads), "threads"); /* after hs_init, which sets them from its binding */
    hs_model_config cfg;
    check(hs_model_config_preset(a->model, &cfg), "model preset");
    hs_model_options mo = hs_model_options_default();
    if (on_npu) {
        hs_npu_spec spec;
        check(hs_npu_spec_preset("910B2", &spec), "npu preset");
        check(hs_npu_new(&spec, HS_NPU_ESTIMATE, &t->npu), "npu");
        mo.device = HS_DEVICE_NPU;
        mo.npu = t->npu;
        mo.compute = HS_BF16;
    }
    if (!(t->tok = malloc(sizeof *t->tok * (TOKENS + 1))))
        check(hs_error(HS_ERR_OUT_OF_MEMORY, "tokens"), "tokens");
    for (int i = 0; i <= TOKENS; i++) {
        const int id = (int)(hs_rng_uniform(7, 0, (uint64_t)i) * (float)cfg.vocab_size);
        t->tok[i] = id < cfg.vocab_size ? id : cfg.vocab_size - 1;
    }
    engine_open(t, &cfg, &mo);
}

static void trainer_close(trainer *t)
{
    hs_engine_free(t->e);
    hs_npu_free(t->npu);
    free(t->tok);
    check(hs_finalize(t->rt), "finalize");
    memset(t, 0, sizeof *t);
}

static void engine_step(trainer *t, step_result *r)
{
    hs_engine_stats st;
    check(hs_engine_train_step(t->e, t->x, t->y, LR, &st), "engine step");
    r->loss = st.loss;
    r->grad_norm = st.grad_norm;
    r->sim_s = st.sim_seconds; /* already the slowest rank's */
    r->bubble = st.bubble;
    r->bubble_theory = st.bubble_theory;
    r->sim_bubble = st.sim_bubble;
}

static void trainer_step(trainer *t, step_result *r)
{
    memset(r, 0, sizeof *r);
    const double t0 = hs_time_now();
    engine_step(t, r);
    r->wall_s = hs_time_now() - t0;
}

/* A number for JSON: null for NaN (an estimate-mode NPU computes no loss). */
static const char *jnum(char *buf, size_t n, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, n, "null");
    else
        snprintf(buf, n, "%.6g", v);
    return buf;
}

/* The fields every line starts with (no closing brace). */
static void print_layout(const bench_args *a, const layout *L, const char *device)
{
    printf("{\"bench\":\"layouts\",\"device\":\"%s\"", device);
    if (strcmp(device, "npu") == 0)
        printf(",\"preset\":\"910B2\",\"mode\":\"estimate\",\"compute\":\"bf16\"");
    printf(",\"layout\":\"%s\",\"model\":\"%s\",\"batch\":%d,\"seq\":%d,\"tp\":%d,\"pp\":%d,\"dp\":%d,\"sp\":%d,"
           "\"schedule\":%s,\"micro_batches\":%d,\"micro_batch\":%d",
           L->name, a->model, BATCH, SEQ, L->tp, L->pp, L->dp, L->sp, L->pp > 1 ? "\"1f1b\"" : "null",
           L->micro_batches, micro_batch(L));
    if (L->last_stage_layers)
        printf(",\"last_stage_layers\":%d", L->last_stage_layers);
}

/* CPU tokens/s of layout L; returns the median. */
static double bench_cpu(const bench_args *a, const layout *L)
{
    const double start = hs_time_now();
    trainer t;
    trainer_open(a, L, 0, &t);
    step_result r;
    trainer_step(&t, &r); /* warm-up */
    double *tok_s = malloc(sizeof *tok_s * (size_t)a->runs);
    if (!tok_s)
        check(hs_error(HS_ERR_OUT_OF_MEMORY, "runs"), "runs");
    for (int i = 0; i < a->runs; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = hs_time_now();
        for (int k = 0; k < a->steps; k++)
            trainer_step(&t, &r);
        double elapsed = hs_time_now() - t0;
        world_max(&elapsed, 1);
        tok_s[i] = (double)TOKENS * a->steps / elapsed;
    }
    const double median = hs_bench_median(tok_s, a->runs); /* sorts: min and max at the ends */
    const double lo = tok_s[0], hi = tok_s[a->runs - 1];
    double stage_bubble[RANKS];
    gather_to_rank0(r.bubble, stage_bubble);
    trainer_close(&t);
    double wall = hs_time_now() - start;
    world_max(&wall, 1);
    if (world_rank == 0) {
        char b[32];
        print_layout(a, L, "cpu");
        printf(",\"tok_s_median\":%.1f,\"tok_s_min\":%.1f,\"tok_s_max\":%.1f,\"runs\":%d,\"steps\":%d,\"threads\":%d,"
               "\"loss\":%s",
               median, lo, hi, a->runs, a->steps, hs_num_threads(), jnum(b, sizeof b, r.loss));
        printf(",\"grad_norm\":%s", jnum(b, sizeof b, r.grad_norm));
        if (L->pp > 1)
            printf(",\"bubble\":%.4f,\"bubble_by_stage\":[%.4f,%.4f],\"bubble_theory\":%.4f", r.bubble,
                   stage_bubble[0], stage_bubble[1], r.bubble_theory);
        printf(",\"wall_s\":%.1f%s}\n", wall, hs_bench_machine());
    }
    free(tok_s);
    return median;
}

/* Simulated 910B2 step time of layout L (estimate mode). */
static void bench_npu(const bench_args *a, const layout *L)
{
    const double start = hs_time_now();
    trainer t;
    trainer_open(a, L, 1, &t);
    step_result r;
    double wall[3] = {0, 0, 0}; /* first step, last step (host seconds), HBM peak (MiB) */
    for (int k = 0; k < a->npu_steps; k++) {
        trainer_step(&t, &r);
        wall[k == 0 ? 0 : 1] = r.wall_s;
    }
    if (a->npu_steps == 1)
        wall[1] = wall[0];
    wall[2] = (double)hs_npu_mem_peak(t.npu) / 1048576.0;
    world_max(wall, 3);
    double stage_bubble[RANKS];
    gather_to_rank0(r.sim_bubble, stage_bubble);
    trainer_close(&t);
    double total = hs_time_now() - start;
    world_max(&total, 1);
    if (world_rank == 0) {
        print_layout(a, L, "npu");
        printf(",\"sim_step_ms\":%.3f,\"sim_tok_s\":%.1f,\"npu_steps\":%d,\"wall_first_step_s\":%.3f,"
               "\"wall_step_s\":%.3f,\"hbm_peak_mib\":%.1f",
               r.sim_s * 1e3, r.sim_s > 0 ? TOKENS / r.sim_s : 0.0, a->npu_steps, wall[0], wall[1], wall[2]);
        if (L->pp > 1)
            printf(",\"sim_bubble\":%.4f,\"sim_bubble_by_stage\":[%.4f,%.4f],\"bubble_theory\":%.4f",
                   r.sim_bubble, stage_bubble[0], stage_bubble[1], r.bubble_theory);
        printf(",\"wall_s\":%.1f%s}\n", total, hs_bench_machine());
    }
}

static hs_status parse(int argc, char **argv, bench_args *a)
{
    const hs_option opts[] = {
        {"steps", HS_OPT_INT, &a->steps, "CPU: steps per timed run"},
        {"runs", HS_OPT_INT, &a->runs, "CPU: timed runs per layout (median, min, max)"},
        {"skip-npu", HS_OPT_FLAG, &a->skip_npu, "skip the simulated 910B2"},
        {"npu-steps", HS_OPT_INT, &a->npu_steps, "NPU: steps per layout (the last one is reported)"},
        {"threads", HS_OPT_INT, &a->threads, "compute threads per rank"},
        {"model", HS_OPT_STRING, &a->model, "model preset"},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    hs_status s = hs_options_parse(argc, argv, opts, n);
    if (s && world_rank == 0)
        hs_options_usage(stderr, "bench_layouts", opts, n);
    if (!s && (a->steps < 1 || a->runs < 1 || a->npu_steps < 1 || a->threads < 1))
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "--steps, --runs, --npu-steps and --threads must be >= 1");
    return s;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv); /* before MPI_Init: the restart keeps the process */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int level, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &level);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (level < MPI_THREAD_MULTIPLE || size != RANKS) {
        if (world_rank == 0)
            fprintf(stderr, "bench_layouts: needs %d ranks (got %d) and MPI_THREAD_MULTIPLE (got level %d)\n", RANKS,
                    size, level);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    bench_args a = {"gpt2-124m", 3, 5, 3, 1, 0};
    hs_status s = parse(argc, argv, &a);
    if (s) {
        if (world_rank == 0)
            fprintf(stderr, "bench_layouts: %s\n", hs_last_error());
        MPI_Finalize();
        return s == HS_ERR_NOT_FOUND ? 0 : 2; /* --help */
    }
    double tok_s[N_LAYOUTS];
    for (int i = 0; i < N_LAYOUTS; i++)
        tok_s[i] = bench_cpu(&a, &LAYOUTS[i]);
    if (world_rank == 0) {
        const double ratio = tok_s[1] / tok_s[0]; /* LAYOUTS[1] is tp2, LAYOUTS[0] dp2 */
        printf("{\"bench\":\"layouts\",\"check\":\"tp2_vs_dp2\",\"ratio\":%.3f,\"target\":0.8,\"pass\":%s%s}\n",
               ratio, ratio >= 0.8 ? "true" : "false", hs_bench_machine());
    }
    for (int i = 0; !a.skip_npu && i < N_LAYOUTS; i++)
        bench_npu(&a, &LAYOUTS[i]);
    MPI_Finalize();
    return 0;
}
