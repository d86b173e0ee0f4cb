/* The comm runtime's reduction scratch, sized without a runtime (private:
 * the collectives' and the memory estimator's). A reduce-scatter (and the
 * reduce-scatter half of an all-reduce) asks the progress thread for up
 * to three host buffers (hs_progress_scratch slots), which grow to the
 * largest request and stay: the CPU device's communication workspace. */
#ifndef HS_COMM_SCRATCH_H
#define HS_COMM_SCRATCH_H

#include "hyperspeed/core.h"

#include <stddef.h>

#define HS_COMM_SCRATCH_SLOTS 3

/* Elements of each of the ring's three slots (the largest block) and of
 * halving-doubling's two (half the vector, rounded up per block), for a
 * reduce-scatter of count elements over p ranks. */
static inline size_t hs_ring_scratch_elems(size_t count, int p) { return count / (size_t)p + (count % (size_t)p != 0); }
static inline size_t hs_hd_scratch_elems(size_t count, int p) { return ((size_t)p / 2) * (count / (size_t)p + 1); }

/* slot[i] = the bytes of slot i a reduce-scatter or all-reduce of count
 * elements of dt over p ranks spanning `nodes` nodes asks for, with the
 * algorithm the runtime would pick (0: the slot unused; p = 1 uses none). */
void hs_comm_reduce_scratch(int p, int nodes, size_t count, hs_dtype dt, size_t slot[HS_COMM_SCRATCH_SLOTS]);

#endif
