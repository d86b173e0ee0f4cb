/* Bus bandwidth of hyperspeed's all-reduce, reduce-scatter and all-gather
 * against MPI's own (MPI_Allreduce, MPI_Reduce_scatter_block,
 * MPI_Allgather) in the same run, fp32, buffers of 4 KiB .. 256 MiB; plus
 * our bf16 figures, which MPI cannot produce, compared with fp32
 * MPI_Allreduce of the same number of elements.
 *
 *   mpiexec -n 2 bench_collectives [--max-mib 256] [--min-kib 4] [--runs 7] [--op allreduce|reduce_scatter|allgather]
 *
 * nccl-tests convention: S = the whole buffer in bytes (all-reduce buffer,
 * reduce-scatter input, all-gather output), algbw = S / t, busbw = algbw *
 * 2(p-1)/p for all-reduce and algbw * (p-1)/p for the others. t is the
 * median over --runs timed measurements (after one warm-up) of the slowest
 * rank's time per call; buffers under 16 MiB repeat the call inside a
 * measurement to fill 16 MiB. Ours fp32, MPI fp32 and ours bf16 are measured
 * in turn within each run, so a slow moment of the machine hits all three.
 *
 * One JSON line per (op, dtype, size):
 *   {"bench":"collectives","op":"allreduce","dtype":"fp32","bytes":S,"elements":N,"ranks":p,
 *    "ours_us":t,"ours_busbw_gbps":b,"mpi_us":t,"mpi_busbw_gbps":b,"ours_vs_mpi":x}
 * where ours_vs_mpi = mpi time / our time (>= 1: ours is faster). bf16 lines
 * carry "fp32_mpi_us" (MPI_Allreduce of N fp32 elements) and
 * "speedup_vs_fp32_mpi" instead of the MPI fields. Every line ends with the
 * machine fields of bench/report.h (cpu, isa, isa_native, blas_core, ...).
 *
 * MPI is started here with MPI_THREAD_MULTIPLE and handed to hs_init, since
 * this program calls MPI itself while hyperspeed's progress thread runs.
 */
#include "report.h"

#include "hyperspeed/comm.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { AR, RS, AG } op_kind;
static const char *const op_names[] = {"allreduce", "reduce_scatter", "allgather"};

typedef struct bench {
    hs_comm *comm;
    MPI_Comm mpi;
    int p;
    void *send, *recv;
} bench;

typedef int (*call_fn)(bench *b, op_kind op, hs_dtype dt, size_t count);

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return (a > c) - (a < c);
}

static int ours(bench *b, op_kind op, hs_dtype dt, size_t count)
{
    switch (op) {
    case AR: return hs_comm_allreduce(b->comm, b->send, b->recv, count, dt, HS_REDUCE_SUM);
    case RS: return hs_comm_reduce_scatter(b->comm, b->send, b->recv, count, dt, HS_REDUCE_SUM);
    default: return hs_comm_allgather(b->comm, b->send, b->recv, count, dt);
    }
}

static int theirs(bench *b, op_kind op, hs_dtype dt, size_t count)
{
    (void)dt;
    int n = (int)count, blk = (int)(count / (size_t)b->p);
    switch (op) {
    case AR: return MPI_Allreduce(b->send, b->recv, n, MPI_FLOAT, MPI_SUM, b->mpi);
    case RS: return MPI_Reduce_scatter_block(b->send, b->recv, blk, MPI_FLOAT, MPI_SUM, b->mpi);
    default: return MPI_Allgather(b->send, blk, MPI_FLOAT, b->recv, blk, MPI_FLOAT, b->mpi);
    }
}

/* The slowest rank's seconds per call over `reps` back-to-back calls. */
static double time_once(bench *b, call_fn fn, op_kind op, hs_dtype dt, size_t count, int reps)
{
    MPI_Barrier(b->mpi);
    double t0 = MPI_Wtime();
    for (int k = 0; k < reps; k++)
        if (fn(b, op, dt, count) != 0) {
            fprintf(stderr, "bench_collectives: %s failed: %s\n", op_names[op], hs_last_error());
            MPI_Abort(b->mpi, 1);
        }
    double secs = (MPI_Wtime() - t0) / reps;
    MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, b->mpi);
    return secs;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

static double busbw(op_kind op, int p, size_t bytes, double secs)
{
    double alg = (double)bytes / secs / 1e9;
    return op == AR ? alg * 2 * (p - 1) / p : alg * (p - 1) / p;
}

int main(int argc, char **argv)
{
    int level, max_mib = 256, min_kib = 4, runs = 7;
    const char *only = NULL;
    hs_blas_core_reexec(argc, argv); /* before MPI_Init: the restart keeps the process */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &level);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--max-mib") == 0)
            max_mib = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--min-kib") == 0)
            min_kib = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--op") == 0)
            only = argv[i + 1];
    }
    if (level < MPI_THREAD_MULTIPLE || runs < 1 || max_mib < 1 || min_kib < 1) {
        fprintf(stderr, "bench_collectives: needs MPI_THREAD_MULTIPLE (got %d), --runs, --max-mib, --min-kib >= 1\n",
                level);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm world = MPI_COMM_WORLD;
    hs_runtime_config cfg = hs_runtime_config_default();
    cfg.mpi_comm = &world;
    hs_runtime *rt;
    if (hs_init(&argc, &argv, &cfg, &rt) != HS_OK) {
        fprintf(stderr, "bench_collectives: %s\n", hs_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bench b = {hs_runtime_comm(rt, HS_GROUP_WORLD), world, 0, NULL, NULL};
    b.p = hs_comm_size(b.comm);
    int me = hs_comm_rank(b.comm);
    size_t max_bytes = (size_t)max_mib << 20;
    b.send = hs_alloc(max_bytes);
    b.recv = hs_alloc(max_bytes);
    if (!b.send || !b.recv)
        MPI_Abort(world, 1);
    /* Small integers as fp32: read as bf16, each float is its own bf16
     * value and a zero, so no dtype sees NaN, overflow or denormals. */
    for (size_t i = 0; i < max_bytes / 4; i++)
        ((float *)b.send)[i] = (float)((i + (size_t)me) % 16);
    memset(b.recv, 0, max_bytes);

    double *t = malloc(3 * (size_t)runs * sizeof *t);
    for (int op = AR; op <= AG; op++) {
        if (only && strcmp(only, op_names[op]) != 0)
            continue;
        for (size_t bytes = (size_t)min_kib << 10; bytes <= max_bytes; bytes *= 4) {
            size_t n = bytes / 4;
            /* ours fp32, MPI fp32 and ours bf16 take turns, so a slow
             * moment of the machine hits all three alike */
            int reps = bytes >= ((size_t)16 << 20) ? 1 : (int)(((size_t)16 << 20) / bytes);
            reps = reps > 200 ? 200 : reps;
            for (int r = -1; r < runs; r++) {
                double a = time_once(&b, ours, (op_kind)op, HS_FP32, n, reps);
                double m = time_once(&b, theirs, (op_kind)op, HS_FP32, n, reps);
                double h = time_once(&b, ours, (op_kind)op, HS_BF16, n, reps);
                if (r >= 0) {
                    t[r] = a;
                    t[runs + r] = m;
                    t[2 * runs + r] = h;
                }
            }
            double o = median(t, runs), m = median(t + runs, runs), h = median(t + 2 * runs, runs);
            if (me == 0) {
                printf("{\"bench\":\"collectives\",\"op\":\"%s\",\"dtype\":\"fp32\",\"bytes\":%zu,\"elements\":%zu,"
                       "\"ranks\":%d,\"runs\":%d,\"ours_us\":%.2f,\"ours_busbw_gbps\":%.3f,\"mpi_us\":%.2f,"
                       "\"mpi_busbw_gbps\":%.3f,\"ours_vs_mpi\":%.3f%s}\n",
                       op_names[op], bytes, n, b.p, runs, o * 1e6, busbw((op_kind)op, b.p, bytes, o), m * 1e6,
                       busbw((op_kind)op, b.p, bytes, m), m / o, hs_bench_machine());
                /* bf16: the same element count, half the bytes */
                printf("{\"bench\":\"collectives\",\"op\":\"%s\",\"dtype\":\"bf16\",\"bytes\":%zu,\"elements\":%zu,"
                       "\"ranks\":%d,\"runs\":%d,\"ours_us\":%.2f,\"ours_busbw_gbps\":%.3f,\"fp32_mpi_us\":%.2f,"
                       "\"speedup_vs_fp32_mpi\":%.3f%s}\n",
                       op_names[op], bytes / 2, n, b.p, runs, h * 1e6, busbw((op_kind)op, b.p, bytes / 2, h),
                       m * 1e6, m / h, hs_bench_machine());
                fflush(stdout);
            }
        }
    }
    free(t);
    hs_free(b.send);
    hs_free(b.recv);
    hs_finalize(rt);
    MPI_Finalize();
    return 0;
}
