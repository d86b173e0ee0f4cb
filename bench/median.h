/* The median the benchmarks report. */
#ifndef HS_BENCH_MEDIAN_H
#define HS_BENCH_MEDIAN_H

#include <stdlib.h>

static int hs_bench_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of x[0..n) (sorts x in place; n >= 1). */
static inline double hs_bench_median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, hs_bench_cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

#endif
