/* bench/dp_overlap: how much of data parallelism's gradient reduction the
 * backward hides, and what DP costs per step (weak scaling), on the CPU.
 * Run with two ranks, one compute thread each:
 *   HS_NUM_THREADS=1 mpirun -n 2 bench_dp_overlap [--model gpt2-124m] [--batch 4] [--seq 64]
 *                                               [--steps 7] [--warmup 1] [--bucket-mb 25] [--no-peer]
 * --batch is per rank (the DP run's global batch is ranks x batch).
 *
 * Phases, every figure the median of --steps measured repetitions:
 *   single    rank 0 alone (rank 1 idles in a barrier) trains the model at
 *             the per-rank batch (hs_train_step): the 1-rank step time;
 *   dp        both ranks train with hs_engine (tp = pp = 1, dp 2), each
 *             bucket's all-reduce started from the backward hook;
 *   isolated  the same all-reduces (a reducer with the same buckets in the
 *             same order, all started at once and waited for) with no
 *             computation beside them;
 *   no_overlap (the peer; --no-peer skips it) the dp step with every
 *             bucket started only after the backward (hs_dp_config.overlap
 *             = 0), as a reducer without the hook would.
 * Definitions (per step, the slower rank's figure):
 *   exposed_ms      wall time hs_dp_finish waits, from the end of the
 *                   backward until the last all-reduce has completed: the
 *                   reduction time the backward did not hide;
 *   reduce_ms       wall time of the isolated reduction;
 *   hidden_fraction 1 - median(exposed) / median(isolated reduction):
 *                   the share of the reduction's own time that ran under
 *                   the backward (clamped to [0, 1]);
 *   step_ratio      median dp step / median single step (target <= 1.15;
 *                   hidden_fraction target >= 0.70);
 *   progress_cpu_ms CPU time per step of this process's threads other than
 *                   the compute thread (the comm progress thread, which
 *                   does MPI's copies and the reductions' additions; the
 *                   kernels run on the calling thread with one thread):
 *                   what the communication takes from the compute core.
 * One JSON object per phase and a summary line, each ending with the
 * machine fields of bench/report.h (cpu, isa, isa_native, blas_core, ...). */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "median.h"
#include "report.h"

#include <hyperspeed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct bench_args {
    const char *model;
    int batch, seq, steps, warmup, no_peer;
    float bucket_mb;
} bench_args;

/* One rank's training setup: the single-rank model and optimizer, or
 * the data-parallel engine. */
typedef struct trainer {
    hs_model *m;
    hs_optimizer *o;
    hs_engine *e;
    int32_t *tok; /* B*T + 1 tokens: inputs tok[0..), targets tok[1..) */
} trainer;

static void trainer_free(trainer *t)
{
    hs_engine_free(t->e);
    hs_optimizer_free(t->o);
    hs_model_free(t->m);
    free(t->tok);
    memset(t, 0, sizeof *t);
}

static hs_dp_config dp_config(const bench_args *a, int overlap)
{
    hs_dp_config dc = hs_dp_config_default();
    dc.bucket_bytes = (size_t)((double)a->bucket_mb * 1048576.0);
    dc.overlap = overlap;
    return dc;
}

/* The model at B x T with tokens drawn for `data_rank`: alone (rt NULL),
 * or the engine over the runtime's DP group (overlap on or off). */
static hs_status trainer_new(const bench_args *a, hs_runtime *rt, int data_rank, int overlap, trainer *t)
{
    hs_model_config cfg;
    hs_status s = hs_model_config_preset(a->model, &cfg);
    hs_optimizer_config oc = hs_optimizer_config_default();
    if (!s && !rt)
        s = hs_model_new(&cfg, a->batch, a->seq, &t->m);
    if (!s && !rt)
        s = hs_model_init(t->m, 1234);
    if (!s && !rt)
        s = hs_optimizer_new(t->m, &oc, &t->o);
    if (!s && rt) {
        hs_engine_config ec = hs_engine_config_default();
        ec.micro_batch = a->batch;
        ec.seq = a->seq;
        ec.optim = oc;
        ec.dp = dp_config(a, overlap);
        s = hs_engine_new(rt, &cfg, &ec, &t->e);
        if (!s)
            s = hs_engine_init(t->e, 1234);
    }
    const size_t n = (size_t)a->batch * a->seq + 1;
    if (!s && !(t->tok = malloc(sizeof *t->tok * n)))
        s = hs_error(HS_ERR_OUT_OF_MEMORY, "tokens");
    for (size_t i = 0; !s && i < n; i++)
        t->tok[i] = (int32_t)(hs_rng_uniform(7, (uint64_t)data_rank, i) * (float)cfg.vocab_size);
    if (s)
        trainer_free(t);
    return s;
}

/* Per-step figures of a phase: step, exposed and progress-CPU seconds,
 * the slower rank's. */
typedef struct series {
    double *step, *exposed, *progress;
    int buckets;
} series;

/* CPU seconds of the whole process and of the calling thread. */
static void cpu_times(double *process, double *thread)
{
    struct rusage p, t;
    getrusage(RUSAGE_SELF, &p);
    getrusage(RUSAGE_THREAD, &t);
    *process = (double)p.ru_utime.tv_sec + (double)p.ru_stime.tv_sec + 1e-6 * (double)(p.ru_utime.tv_usec + p.ru_stime.tv_usec);
    *thread = (double)t.ru_utime.tv_sec + (double)t.ru_stime.tv_sec + 1e-6 * (double)(t.ru_utime.tv_usec + t.ru_stime.tv_usec);
}

/* The element-wise maximum over the world of x[0..n), n <= 3 (seconds, as
 * int64 nanoseconds: a type the collectives' MAX takes without rounding). */
static hs_status world_max(hs_comm *world, double *x, int n)
{
    int64_t ns[3];
    for (int i = 0; i < n; i++)
        ns[i] = (int64_t)(x[i] * 1e9);
    hs_status s = hs_comm_allreduce(world, ns, ns, (size_t)n, HS_INT64, HS_REDUCE_MAX);
    if (s)
        return s;
    for (int i = 0; i < n; i++)
        x[i] = (double)ns[i] * 1e-9;
    return HS_OK;
}

/* warmup + steps training steps (the engine's, or the single-rank step). */
static hs_status run_steps(const bench_args *a, trainer *t, hs_comm *world, series *out)
{
    for (int i = 0; i < a->warmup + a->steps; i++) {
        hs_engine_stats st = {0};
        hs_step_stats ss;
        double p0, t0, p1, t1;
        cpu_times(&p0, &t0);
        hs_status s = t->e ? hs_engine_train_step(t->e, t->tok, t->tok + 1, 3e-4f, &st)
                           : hs_train_step(t->m, t->o, t->tok, t->tok + 1, a->batch, a->seq, 1, 3e-4f, &ss);
        cpu_times(&p1, &t1);
        if (s)
            return s;
        double x[3] = {t->e ? st.seconds : ss.seconds, st.dp.wait_s, (p1 - p0) - (t1 - t0)};
        if (t->e && (s = world_max(world, x, 3)))
            return s;
        if (i >= a->warmup) {
            out->step[i - a->warmup] = x[0];
            out->exposed[i - a->warmup] = x[1];
            out->progress[i - a->warmup] = x[2];
        }
        out->buckets = st.dp.buckets;
    }
    return HS_OK;
}

/* One round of dp's all-reduces from a common barrier: *out (if not NULL)
 * = the slowest rank's seconds. */
static hs_status time_reduction(hs_dp *dp, hs_comm *world, double *out)
{
    hs_dp_stats ds;
    hs_status s = hs_comm_barrier(world);
    const double t0 = hs_time_now();
    if (!s)
        s = hs_dp_begin(dp);
    if (!s)
        s = hs_dp_finish(dp, &ds);
    double x = hs_time_now() - t0;
    if (!s)
        s = world_max(world, &x, 1);
    if (!s && out)
        *out = x;
    return s;
}

/* The engine's all-reduces alone: a reducer with the same buckets over
 * a buffer of the model's size, its all-reduces started together and
 * waited for. */
static hs_status run_isolated(const bench_args *a, trainer *t, hs_comm *world, double *out)
{
    const hs_model *m = hs_engine_chunk(t->e, 0);
    const int n = hs_model_num_tensors(m);
    int64_t *numel = malloc(sizeof *numel * (size_t)n);
    float *grads = calloc((size_t)hs_model_num_params(m), sizeof *grads);
    hs_dp *dp = NULL;
    hs_status s = numel && grads ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "isolated reduction buffers");
    for (int i = 0; !s && i < n; i++)
        numel[i] = hs_model_param(m, i)->numel;
    const hs_dp_config dc = dp_config(a, 1);
    if (!s)
        s = hs_dp_new(world, grads, numel, n, &dc, &dp);
    for (int i = 0; !s && i < a->warmup + a->steps; i++)
        s = time_reduction(dp, world, i >= a->warmup ? &out[i - a->warmup] : NULL);
    hs_dp_free(dp);
    free(grads);
    free(numel);
    return s;
}
static hs_status parse(int argc, char **argv, bench_args *a)
{
    const hs_option opts[] = {
        {"model", HS_OPT_STRING, &a->model, "model preset"},
        {"batch", HS_OPT_INT, &a->batch, "sequences per rank"},
        {"seq", HS_OPT_INT, &a->seq, "tokens per sequence"},
        {"steps", HS_OPT_INT, &a->steps, "measured steps per phase"},
        {"warmup", HS_OPT_INT, &a->warmup, "unmeasured steps before them"},
        {"bucket-mb", HS_OPT_FLOAT, &a->bucket_mb, "gradient bucket size, MiB"},
        {"no-peer", HS_OPT_FLAG, &a->no_peer, "skip the no-overlap peer"},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    hs_status s = hs_options_parse(argc, argv, opts, n);
    if (s)
        hs_options_usage(stderr, "bench_dp_overlap", opts, n);
    if (!s && (a->batch < 1 || a->seq < 1 || a->steps < 1 || a->warmup < 0 || !(a->bucket_mb > 0)))
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "--batch, --seq, --steps >= 1, --warmup >= 0, --bucket-mb > 0");
    return s;
}

static void print_phase(const bench_args *a, const char *phase, int ranks, series *x)
{
    const int n = a->steps;
    const double step_ms = hs_bench_median(x->step, n) * 1e3, exposed_ms = hs_bench_median(x->exposed, n) * 1e3;
    const double progress_ms = hs_bench_median(x->progress, n) * 1e3;
    printf("{\"bench\":\"dp_overlap\",\"phase\":\"%s\",\"model\":\"%s\",\"ranks\":%d,\"batch_per_rank\":%d,"
           "\"global_batch\":%d,\"seq\":%d,\"threads\":%d,\"steps\":%d,\"step_ms\":%.2f",
           phase, a->model, ranks, a->batch, ranks * a->batch, a->seq, hs_num_threads(), a->steps, step_ms);
    if (ranks > 1)
        printf(",\"exposed_ms\":%.2f,\"buckets\":%d,\"bucket_mb\":%g", exposed_ms, x->buckets,
               (double)a->bucket_mb);
    printf(",\"progress_cpu_ms\":%.2f%s}\n", progress_ms, hs_bench_machine());
}

/* The phases; rank 0 prints. */
static hs_status bench(const bench_args *a, hs_runtime *rt)
{
    hs_comm *world = hs_runtime_comm(rt, HS_GROUP_WORLD);
    const int me = hs_comm_rank(world), p = hs_comm_size(world), n = a->steps;
    double *buf = calloc((size_t)n * 10, sizeof *buf);
    if (!buf)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "bench buffers");
    series single = {buf, buf + n, buf + 2 * n, 0}, dp = {buf + 3 * n, buf + 4 * n, buf + 5 * n, 0};
    series peer = {buf + 6 * n, buf + 7 * n, buf + 8 * n, 0};
    double *iso = buf + 9 * n;
    trainer t = {0};
    hs_status s = HS_OK;
    if (me == 0) { /* single: rank 0 alone */
        s = trainer_new(a, NULL, 0, 1, &t);
        if (!s)
            s = run_steps(a, &t, world, &single);
        trainer_free(&t);
    }
    hs_status b = hs_comm_barrier(world);
    s = s ? s : b;
    if (!s)
        s = trainer_new(a, rt, me, 1, &t);
    if (!s)
        s = run_steps(a, &t, world, &dp);
    if (!s)
        s = run_isolated(a, &t, world, iso);
    trainer_free(&t);
    if (!s && !a->no_peer && !(s = trainer_new(a, rt, me, 0, &t)))
        s = run_steps(a, &t, world, &peer);
    trainer_free(&t);
    if (!s && me == 0) {
        print_phase(a, "single", 1, &single); /* sorts: the medians below read sorted series */
        print_phase(a, "dp", p, &dp);
        const double one = hs_bench_median(single.step, n), step = hs_bench_median(dp.step, n);
        const double exposed = hs_bench_median(dp.exposed, n), reduce = hs_bench_median(iso, n);
        double hidden = reduce > 0 ? 1 - exposed / reduce : 1;
        hidden = hidden < 0 ? 0 : hidden > 1 ? 1 : hidden;
        printf("{\"bench\":\"dp_overlap\",\"phase\":\"isolated\",\"ranks\":%d,\"reduce_ms\":%.2f,\"buckets\":%d%s}\n",
               p, reduce * 1e3, dp.buckets, hs_bench_machine());
        if (!a->no_peer)
            print_phase(a, "no_overlap", p, &peer);
        printf("{\"bench\":\"dp_overlap\",\"summary\":true,\"ranks\":%d,\"hidden_fraction\":%.3f,\"step_ratio\":%.3f,"
               "\"target_hidden\":0.70,\"target_ratio\":1.15,\"hidden_ok\":%s,\"ratio_ok\":%s%s}\n",
               p, hidden, step / one, hidden >= 0.70 ? "true" : "false", step / one <= 1.15 ? "true" : "false",
               hs_bench_machine());
    }
    free(buf);
    return s;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv); /* before hs_init starts MPI: the restart keeps the process */
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_args a = {"gpt2-124m", 4, 64, 7, 1, 0, 25.0f};
    hs_status s = parse(argc, argv, &a);
    if (s) {
        fprintf(stderr, "bench_dp_overlap: %s\n", hs_last_error());
        return 2;
    }
    hs_runtime *rt;
    if ((s = hs_init(&argc, &argv, NULL, &rt))) {
        fprintf(stderr, "bench_dp_overlap: %s\n", hs_last_error());
        return 1;
    }
    if (!getenv("HS_NUM_THREADS"))
        hs_set_num_threads(1); /* one compute thread per rank in every phase */
    s = bench(&a, rt);
    if (s)
        fprintf(stderr, "bench_dp_overlap: rank %d: %s\n", hs_runtime_rank(rt, HS_GROUP_WORLD), hs_last_error());
    hs_finalize(rt);
    return s ? 1 : 0;
}
