/* Sequence-parallel gather and reduce-scatter on the TP group: the
 * gathered [B, T, C] holds every rank's slice at its place along T; the
 * reduce-scatter leaves each rank its slice of the sum; both against a
 * reference built from rank-independent values; a sequence length the
 * group does not divide fails with a message on every rank. Runs with
 * --tp N on the whole world. */
#include "mpi_check.h"

#include "parallel/tp_comm.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

/* A value of (rank, b, t, c) that every rank can compute. */
static float value(int rank, int64_t b, int64_t t, int64_t c)
{
    return (float)(rank * 1000 + b * 100 + t) + 0.01f * (float)c;
}

int main(int argc, char **argv)
{
    hs_runtime_config cfg = hs_runtime_config_default();
    hs_runtime *rt = NULL;
    hs_status st = hs_init(&argc, &argv, &cfg, &rt);
    if (st != HS_OK) {
        fprintf(stderr, "test_sp_comm: %s\n", hs_last_error());
        return 1;
    }
    hs_comm *world = hs_runtime_comm(rt, HS_GROUP_WORLD);
    check_rank = hs_comm_rank(world);
    const int p = hs_comm_size(world), me = check_rank;
    enum { B = 3, C = 5 };
    const int64_t T = 4 * p, Tl = 4;
    float *local = malloc(sizeof(float) * B * Tl * C), *full = malloc(sizeof(float) * B * T * C);
    float *scratch = malloc(sizeof(float) * B * T * C), *mine = malloc(sizeof(float) * B * Tl * C);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < Tl; t++)
            for (int64_t c = 0; c < C; c++)
                local[(b * Tl + t) * C + c] = value(me, b, me * Tl + t, c);
    CHECK_OK(hs_sp_gather(world, local, full, B, T, C, HS_FP32, scratch));
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++)
                CHECK(full[(b * T + t) * C + c] == value((int)(t / Tl), b, t, c), "gather at b=%lld t=%lld c=%lld",
                      (long long)b, (long long)t, (long long)c);
    /* every rank contributes value(rank, ...) at every position: the sum is known */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++)
                full[(b * T + t) * C + c] = value(me, b, t, c);
    CHECK_OK(hs_sp_reduce_scatter(world, full, mine, B, T, C, scratch));
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < Tl; t++)
            for (int64_t c = 0; c < C; c++) {
                double want = 0;
                for (int r = 0; r < p; r++)
                    want += value(r, b, me * Tl + t, c);
                CHECK(fabs(mine[(b * Tl + t) * C + c] - want) <= 1e-6 * fabs(want),
                      "reduce-scatter at b=%lld t=%lld c=%lld", (long long)b, (long long)t, (long long)c);
            }
    if (p > 1) { /* a sequence the group does not divide */
        st = hs_sp_gather(world, local, full, B, T + 1, C, HS_FP32, scratch);
        CHECK(st == HS_ERR_INVALID_ARGUMENT && strstr(hs_last_error(), "not a multiple of the tensor-parallel size"),
              "T=%lld: %s", (long long)(T + 1), hs_last_error());
    }
    const int failures = hs_mpi_test_total(world);
    free(local), free(full), free(scratch), free(mine);
    hs_finalize(rt);
    if (me == 0)
        printf("test_sp_comm on %d ranks: %s\n", p, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
