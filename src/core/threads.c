/* Thread count shared by OpenMP kernels and OpenBLAS; wall clock. */
#include "hyperspeed/core.h"
#include "hyperspeed/kernels.h" /* hs_blas_core_warn_once */

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

static int num_threads; /* 0: not decided yet */

static int threads_from_env(void)
{
    const char *e = getenv("HS_NUM_THREADS");
    if (e && *e) {
        int n = atoi(e);
        if (n >= 1)
            return n;
        hs_log(HS_LOG_WARN, "HS_NUM_THREADS=%s is not a positive integer; using this process's cores", e);
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1)
            return n;
    }
    return omp_get_num_procs();
}

/* The kernels run sgemm on the OpenMP team (each thread a single-threaded
 * sgemm on its slice, src/kernels/cpu/matmul.c), so OpenBLAS keeps one
 * thread: two thread pools taking turns on the same cores spin against
 * each other and halve the throughput. */
static void apply(int n)
{
    /* The first decision about threads comes before any kernel runs: the
     * one place to say, once, that OpenBLAS runs weak kernels here. */
    hs_blas_core_warn_once();
    num_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
}

int hs_num_threads(void)
{
    if (num_threads == 0)
        apply(threads_from_env());
    return num_threads;
}

hs_status hs_set_num_threads(int n)
{
    if (n < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "thread count must be >= 1, got %d", n);
    apply(n);
    return HS_OK;
}

double hs_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
