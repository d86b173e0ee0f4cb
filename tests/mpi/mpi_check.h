/* Checks for the MPI test programs: a failed check prints the rank, file,
 * line and message and counts; hs_mpi_test_end() sums the failures over
 * the world so every rank exits with the same verdict. */
#ifndef HS_MPI_CHECK_H
#define HS_MPI_CHECK_H

#include "hyperspeed/comm.h"

#include <stdio.h>

static int check_failures;
static int check_rank;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if (check_failures++ < 20) {                                                                               \
                fprintf(stderr, "rank %d %s:%d: check failed: %s: ", check_rank, __FILE__, __LINE__, #cond);          \
                fprintf(stderr, __VA_ARGS__);                                                                          \
                fputc('\n', stderr);                                                                                   \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

#define CHECK_OK(call)                                                                                                 \
    do {                                                                                                               \
        hs_status check_st_ = (call);                                                                                  \
        CHECK(check_st_ == HS_OK, "%s returned %s: %s", #call, hs_status_str(check_st_), hs_last_error());             \
    } while (0)

/* The number of failed checks on all ranks of `world` (this rank's own
 * count if the reduction itself fails). */
static inline int hs_mpi_test_total(hs_comm *world)
{
    int total = check_failures;
    if (hs_comm_allreduce(world, &total, &total, 1, HS_INT32, HS_REDUCE_SUM) != HS_OK)
        return check_failures ? check_failures : 1;
    return total;
}

#endif
