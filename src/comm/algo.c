/* Block partition of reduce-scatter/all-gather, the algorithm rule, and
 * collective names. */
#include "comm/comm_internal.h"
#include "comm/scratch.h"

/* Halving-doubling's first step pairs ranks p/2 apart, which crosses nodes
 * with half the vector; past this size the ring, whose traffic stays on
 * neighbour links, wins between nodes. */
#define HD_MAX_INTERNODE_BYTES ((size_t)1 << 20)

static const char *const coll_names[HS_COLL_COUNT] = {
    "allreduce", "reduce_scatter", "allgather", "broadcast", "alltoall", "alltoallv", "send", "recv", "barrier",
};

const char *hs_coll_name(hs_coll c)
{
    return (unsigned)c < HS_COLL_COUNT ? coll_names[c] : "invalid";
}

void hs_comm_block(size_t count, int p, int r, size_t *offset, size_t *len)
{
    size_t q = count / (size_t)p, rem = count % (size_t)p, ur = (size_t)r;
    *len = q + (ur < rem);
    *offset = ur * q + (ur < rem ? ur : rem);
}

int hs_comm_is_pow2(int p)
{
    return p > 0 && (p & (p - 1)) == 0;
}

hs_comm_algo hs_comm_pick_algorithm(hs_comm_algo forced, int p, int nodes, size_t bytes)
{
    if (p <= 1 || !hs_comm_is_pow2(p))
        return HS_ALGO_RING;
    if (forced != HS_ALGO_AUTO)
        return forced;
    if (nodes <= 1 || bytes <= HD_MAX_INTERNODE_BYTES)
        return HS_ALGO_HALVING_DOUBLING;
    return HS_ALGO_RING;
}

void hs_comm_reduce_scratch(int p, int nodes, size_t count, hs_dtype dt, size_t slot[HS_COMM_SCRATCH_SLOTS])
{
    for (int i = 0; i < HS_COMM_SCRATCH_SLOTS; i++)
        slot[i] = 0;
    if (p <= 1)
        return;
    const size_t as = hs_comm_acc_size(dt);
    if (hs_comm_pick_algorithm(HS_ALGO_AUTO, p, nodes, count * hs_dtype_size(dt)) == HS_ALGO_HALVING_DOUBLING) {
        slot[0] = slot[1] = hs_hd_scratch_elems(count, p) * as;
        return;
    }
    slot[0] = slot[1] = slot[2] = hs_ring_scratch_elems(count, p) * as;
}
