/* sgemm throughput of the OpenBLAS hyperspeed links, at M = N = K = 2048.
 *
 * The ceiling every fp32 training step sits under: the matmuls of a
 * transformer step are OpenBLAS sgemm calls, so this figure (and the core
 * OpenBLAS picked for this CPU) says what the kernels can reach at best.
 * Threads: hs_num_threads() (HS_NUM_THREADS, else this process's cores),
 * which also sets OpenBLAS's thread count. OPENBLAS_CORETYPE, when set,
 * overrides OpenBLAS's CPU detection (e.g. Haswell = AVX2 kernels on an
 * AVX-512 machine); it is echoed so runs with and without it can be told
 * apart. When it is unset and OpenBLAS's own pick is weaker than the best
 * core for this CPU, the program restarts itself with the best one
 * (hs_blas_core_reexec; docs/training.md, "OpenBLAS cores").
 *
 * Prints one JSON line:
 *   {"bench":"gemm","M":2048,"N":2048,"K":2048,"threads":T,"gflops":G,
 *    "ms_median":t,"runs":R,"cpu":..,"isa":..,"isa_native":..,"blas_core":"SkylakeX",
 *    "openblas_coretype_env":"Haswell"|null,"openblas_coretype_set_by":..}
 * where G = 2 M N K / median time over R timed runs after one warm-up run
 * (the machine fields: bench/report.h).
 */
#include "median.h"
#include "report.h"

#include "hyperspeed/core.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

enum { DIM = 2048, RUNS = 7 };

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv);
    const size_t n = (size_t)DIM * DIM;
    float *a = hs_alloc(n * sizeof(float));
    float *b = hs_alloc(n * sizeof(float));
    float *c = hs_alloc(n * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "bench_gemm: %s\n", hs_last_error());
        return 1;
    }
    /* Small, exactly representable values: no denormals or overflow to
     * slow any run down. */
    for (size_t i = 0; i < n; i++) {
        a[i] = (float)((int)(i % 17) - 8) * 0.125f;
        b[i] = (float)((int)(i % 13) - 6) * 0.25f;
    }
    /* OpenBLAS's own thread pool at this process's thread count: the raw
     * peak a BLAS user sees (the library itself keeps OpenBLAS at one
     * thread and splits work over its OpenMP team). */
    int threads = hs_num_threads();
    openblas_set_num_threads(threads);

    double secs[RUNS];
    for (int r = -1; r < RUNS; r++) { /* r = -1: warm-up (thread pool, page faults) */
        double t0 = hs_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, DIM, DIM, DIM, 1.0f, a, DIM, b, DIM, 0.0f, c, DIM);
        if (r >= 0)
            secs[r] = hs_time_now() - t0;
    }
    const double median = hs_bench_median(secs, RUNS);
    double gflops = 2.0 * DIM * DIM * DIM / median * 1e-9;

    printf("{\"bench\":\"gemm\",\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"gflops\":%.1f,\"ms_median\":%.3f,"
           "\"runs\":%d%s}\n",
           DIM, DIM, DIM, threads, gflops, median * 1e3, RUNS, hs_bench_machine());

    hs_free(a);
    hs_free(b);
    hs_free(c);
    return 0;
}
