/* Sequence-parallel gather and reduce-scatter (parallel/tp_comm.h).
 *
 * The collectives move rank-ordered blocks: block r is rank r's slice
 * [B][T/tp][C]. The gather all-gathers the blocks into scratch and copies
 * each row of each block to its place in [B][T][C]; the reduce-scatter
 * copies [B][T][C] into blocks in scratch and reduce-scatters them. */
#include "core/try.h"
#include "parallel/tp_comm.h"

#include <string.h>

/* Checks the buffers and sizes; *p: the group size, *Tl: T / p. */
static hs_status check(const char *op, hs_comm *tp, const void *a, const void *b, const void *scratch, int64_t B,
                       int64_t T, int64_t C, int *p, int64_t *Tl)
{
    if (!tp || !a || !b || !scratch)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL communicator or buffer", op);
    if (B < 1 || T < 1 || C < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: B=%lld T=%lld C=%lld (each must be >= 1)", op, (long long)B,
                        (long long)T, (long long)C);
    *p = hs_comm_size(tp);
    if (T % *p != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "%s: sequence length %lld is not a multiple of the tensor-parallel size %d (sequence "
                        "parallelism splits it evenly)",
                        op, (long long)T, *p);
    *Tl = T / *p;
    return HS_OK;
}

/* Copies src to dst between the layouts [p][B][Tl][C] (blocks) and
 * [B][p Tl][C] (sequences) of es-byte elements; src_blocks: which one src
 * is. */
static void permute(void *dst, const void *src, size_t es, int src_blocks, int p, int64_t B, int64_t Tl, int64_t C)
{
    const size_t row = (size_t)(Tl * C) * es;
    for (int r = 0; r < p; r++)
        for (int64_t b = 0; b < B; b++) {
            const size_t blk = (size_t)(((int64_t)r * B + b) * Tl * C) * es, seq = (size_t)((b * p + r) * Tl * C) * es;
            memcpy((char *)dst + (src_blocks ? seq : blk), (const char *)src + (src_blocks ? blk : seq), row);
        }
}

hs_status hs_sp_gather(hs_comm *tp, const void *local, void *full, int64_t B, int64_t T, int64_t C, hs_dtype dt,
                       void *scratch)
{
    int p;
    int64_t Tl;
    HS_TRY(check("hs_sp_gather", tp, local, full, scratch, B, T, C, &p, &Tl));
    if (dt != HS_FP32 && dt != HS_BF16 && dt != HS_FP16)
        return hs_error(HS_ERR_DTYPE, "hs_sp_gather: %s activations (fp32, bf16 or fp16)", hs_dtype_name(dt));
    HS_TRY(hs_comm_allgather(tp, local, scratch, (size_t)(B * T * C), dt));
    permute(full, scratch, hs_dtype_size(dt), 1, p, B, Tl, C);
    return HS_OK;
}

hs_status hs_sp_reduce_scatter(hs_comm *tp, const float *full, float *local, int64_t B, int64_t T, int64_t C,
                               float *scratch)
{
    int p;
    int64_t Tl;
    HS_TRY(check("hs_sp_reduce_scatter", tp, full, local, scratch, B, T, C, &p, &Tl));
    permute(scratch, full, sizeof(float), 0, p, B, Tl, C);
    return hs_comm_reduce_scatter(tp, scratch, local, (size_t)(B * T * C), HS_FP32, HS_REDUCE_SUM);
}
