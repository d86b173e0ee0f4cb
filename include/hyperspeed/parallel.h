/* hyperspeed data parallelism: the gradient buckets of a flat gradient
 * buffer and their overlapped reduction over a DP group.
 *
 * Every DP rank holds the same parameters and computes gradients on its
 * own slice of the global batch. The gradients (one flat buffer of
 * tensors laid back to back) are cut into buckets of about
 * `bucket_bytes`, planned from the END of the buffer, because the backward
 * produces gradients in reverse registry order. While the backward runs,
 * the caller reports which gradients are final (hs_dp_grads_ready, with
 * the ranges a model's layer hook gives after each block's backward), and
 * each bucket's all-reduce
 * (hs_comm_iallreduce, the average or the sum over the group) starts the
 * moment its last gradient is final, overlapping the rest of the
 * backward. Rows of a sparse gradient (an embedding's) can be gathered
 * from every rank instead (hs_dp_gather_rows). hs_dp_finish waits for all
 * of it, so the optimizer sees the reduced gradients. On a simulated NPU
 * each collective also advances a comm stream of the device by the HCCL
 * cost model, ordered after the compute stream's work by events, and the
 * compute stream waits for it in hs_dp_finish: the simulated time it
 * waits is the exposed communication.
 * docs/parallelism.md ("Data parallelism") has the whole picture; the
 * trainer glue (the model's backward hook, micro-batches, the loss) is
 * hs_train_step_dp in train.h.
 */
#ifndef HYPERSPEED_PARALLEL_H
#define HYPERSPEED_PARALLEL_H

#include "hyperspeed/comm.h"
#include "hyperspeed/core.h"
#include "hyperspeed/npu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 25 MiB, PyTorch DDP's bucket_cap_mb = 25. */
#define HS_DP_BUCKET_BYTES_DEFAULT ((size_t)25 << 20)

/* A contiguous range of the flat gradient buffer reduced by one
 * all-reduce: whole tensors [first_tensor, first_tensor + n_tensors). */
typedef struct hs_dp_bucket {
    int64_t offset;   /* first element in the flat buffer */
    int64_t numel;    /* elements */
    int first_tensor; /* lowest tensor index in the bucket */
    int n_tensors;
} hs_dp_bucket;

/* Plans the buckets of n_tensors tensors of numel[i] elements of
 * elem_bytes bytes each, laid back to back in a flat buffer (tensor i
 * starts at numel[0] + ... + numel[i-1]). Walking the tensors from the
 * last to the first, a bucket takes tensors while its size stays within
 * bucket_bytes; a tensor larger than bucket_bytes gets a bucket of its own
 * (tensors are never split). out[0] is the bucket at the end of the buffer
 * (reduced first), out[*n_buckets - 1] the one starting at offset 0. out
 * must have room for n_tensors buckets (the most there can be).
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL pointers, n_tensors < 1,
 * elem_bytes or bucket_bytes 0, a negative numel). */
HS_API hs_status hs_dp_plan_buckets(const int64_t *numel, int n_tensors, size_t elem_bytes, size_t bucket_bytes,
                                    hs_dp_bucket *out, int *n_buckets);

typedef struct hs_dp_config {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    size_t bucket_bytes; /* bucket size cap in bytes (HS_DP_BUCKET_BYTES_DEFAULT) */
    int overlap;         /* 1: start each bucket's all-reduce when its gradients are final (default);
                            0: start them all in hs_dp_finish, after the backward (for comparisons) */
    hs_reduce_op op;     /* HS_REDUCE_AVG (default), or HS_REDUCE_SUM for gradients the caller
                            has divided by the group size already (e.g. through the loss scale) */
    int64_t gather_rows; /* hs_dp_gather_rows: the most rows a rank contributes (0: no gathering) */
    int64_t gather_width; /* ... and the floats per row */
    hs_npu *npu;         /* the device the gradient buffer lives on (borrowed), NULL for host memory.
                            Execute mode reduces the values and simulates the time; estimate mode
                            (no values) only simulates. */
    int shard;           /* 1: reduce-scatter instead of all-reduce (ZeRO-1/2's distributed optimizer):
                            each rank gets the reduced values of its block of every bucket only
                            (hs_dp_shard_of), and hs_dp_gather_params brings the updated parameters
                            back to every rank. 0 (default): every rank gets every reduced value */
    int first_alone;     /* 1: tensor 0 gets a bucket of its own, so its blocks depend on its size only
                            (a tied embedding whose two pipeline ends, with different other tensors,
                            must shard it alike under ZeRO). 0 (default): plan as hs_dp_plan_buckets */
} hs_dp_config;

/* 25 MiB buckets, overlap on, AVG, no gathering, host memory, not sharded. */
HS_API hs_dp_config hs_dp_config_default(void);

/* What one reduction round (hs_dp_begin .. hs_dp_finish) did. */
typedef struct hs_dp_stats {
    int buckets;          /* all-reduces started */
    int early;            /* of them, started before hs_dp_finish (overlapping the backward) */
    double bytes;         /* bytes all-reduced (each rank's buffer) and gathered (the whole group's rows) */
    double wait_s;        /* wall seconds hs_dp_finish waited for the all-reduces: the exposed part on the host */
    double sim_comm_s;    /* NPU: simulated seconds of the all-reduces on the comm stream; 0 on the host */
    double sim_exposed_s; /* NPU: simulated seconds the compute stream waited for the comm stream */
} hs_dp_stats;

typedef struct hs_dp hs_dp;

/* A reducer of the flat fp32 gradient buffer `grads` (n_tensors tensors
 * of numel[i] elements back to back; host memory, or cfg->npu's HBM)
 * over the group `comm` (borrowed; every rank of the group creates its
 * reducer with the same tensors and config). Plans the buckets and
 * allocates everything a round needs (requests, the gather buffers on the
 * gradients' device, on the NPU a comm stream and two events), so rounds
 * allocate nothing. cfg NULL: the defaults. Free the reducer before the
 * NPU. Errors: those of hs_dp_plan_buckets, HS_ERR_INVALID_ARGUMENT (NULL
 * comm or grads, an op other than AVG and SUM, negative gather sizes),
 * HS_ERR_OUT_OF_MEMORY (host or HBM). Release with hs_dp_free. */
HS_API hs_status hs_dp_new(hs_comm *comm, float *grads, const int64_t *numel, int n_tensors, const hs_dp_config *cfg,
                           hs_dp **out);

/* Waits for reductions still in flight, frees the reducer (NULL is fine). */
HS_API void hs_dp_free(hs_dp *dp);

/* The group, the number of buckets and bucket i (NULL when out of range),
 * in reduction order. */
HS_API hs_comm *hs_dp_comm(const hs_dp *dp);
HS_API int hs_dp_num_buckets(const hs_dp *dp);
HS_API const hs_dp_bucket *hs_dp_bucket_at(const hs_dp *dp, int i);

/* Starts a round: the gradients are about to receive their last
 * contributions (the backward of the last micro-batch). Errors:
 * HS_ERR_INVALID_ARGUMENT when a round is already open. */
HS_API hs_status hs_dp_begin(hs_dp *dp);

/* The gradients at [begin, end) are final (each element is reported at
 * most once a round): starts the all-reduce of every bucket whose
 * gradients are now all final (with overlap on), in the order they
 * complete, which every rank must share. On the NPU the comm stream first
 * waits for the work issued so far on the current (compute) stream.
 * Errors: HS_ERR_INVALID_ARGUMENT outside a round or for a range outside
 * the buffer, the collective's. */
HS_API hs_status hs_dp_grads_ready(hs_dp *dp, int64_t begin, int64_t end);

/* Gathers a sparse gradient's rows from the whole group: this rank's n
 * rows of cfg->gather_width floats (`rows`, n x width) and their int32
 * ids (n) are sent to every rank, and *all_rows / *all_ids receive the
 * group's p x n rows and ids in rank order (the reducer's buffers, on the
 * gradients' device). Every rank passes the same n. The gather runs
 * asynchronously: the buffers hold the result after hs_dp_finish. rows and
 * ids must stay untouched until then. A group of one returns rows and ids
 * themselves. Errors: HS_ERR_INVALID_ARGUMENT outside a round, a second
 * gather in one round, n outside 1..cfg->gather_rows; the collectives'. */
HS_API hs_status hs_dp_gather_rows(hs_dp *dp, const float *rows, const int32_t *ids, int64_t n, float **all_rows,
                                   int32_t **all_ids);

/* Ends the round: starts the buckets not started yet, waits for every
 * all-reduce (the buffer then holds the group's average or sum, bitwise
 * the same on every rank) and gather and, on the NPU, makes the compute
 * stream wait for the comm stream. *stats may be NULL. The round is closed even on error.
 * Errors: HS_ERR_INVALID_ARGUMENT outside a round, the collectives'. */
HS_API hs_status hs_dp_finish(hs_dp *dp, hs_dp_stats *stats);

/* With cfg.shard: this rank's block of bucket b (hs_comm_block of the
 * bucket over the group, in rank order) as flat-buffer offsets
 * [*offset, *offset + *numel): the gradients the round reduces for this
 * rank, and the parameters it updates and hs_dp_gather_params sends to
 * the others. The blocks of all ranks tile the bucket. Errors:
 * HS_ERR_INVALID_ARGUMENT (NULL, b out of range). */
HS_API hs_status hs_dp_shard_of(const hs_dp *dp, int b, int64_t *offset, int64_t *numel);

/* With cfg.shard, outside a round: every rank's blocks of `params` (a
 * flat buffer laid out as the gradients, on their device) all-gathered in
 * place, bucket by bucket, so that every rank holds the parameters each
 * rank updated in its blocks; on the NPU the time runs on the comm stream
 * and the compute stream waits for it (the next forward reads them).
 * Allocates nothing. Errors: HS_ERR_INVALID_ARGUMENT (NULL, no sharding,
 * inside a round), the collectives'. */
HS_API hs_status hs_dp_gather_params(hs_dp *dp, float *params);

/* hs_dp_gather_params in pieces, to overlap the gathers with the next
 * forward (Megatron's --overlap-param-gather), of a buffer of any dtype laid
 * out as the gradients (dt: fp32, or the 16-bit compute copy under ZeRO-1's
 * sharded master): _start posts every bucket's all-gather in registry
 * order (the forward's) and returns; _wait waits
 * for those of the buckets overlapping the flat-buffer range [begin, end)
 * (and on the NPU makes the compute stream wait for their end on the comm
 * stream), which a block's pre-forward hook calls for its parameters;
 * _finish waits for all of them (hs_dp_begin and hs_dp_free do too).
 * hs_dp_gathering: some are still in flight. Errors: as
 * hs_dp_gather_params, and _start with gathers in flight. */
HS_API hs_status hs_dp_gather_start(hs_dp *dp, void *params, hs_dtype dt);
HS_API hs_status hs_dp_gather_wait(hs_dp *dp, int64_t begin, int64_t end);
HS_API hs_status hs_dp_gather_finish(hs_dp *dp);
HS_API int hs_dp_gathering(const hs_dp *dp);

/* Outside a round: buf[0 .. n) (on the gradients' device) = its sum over
 * the group, in place (on the NPU timed on the comm stream, which the
 * compute stream then waits for): how ZeRO-1 with a sharded master
 * rebuilds the fp32 copies its kernels read from each rank's pieces of
 * them (zeros elsewhere: the sum is exact). Errors: HS_ERR_INVALID_ARGUMENT,
 * the collective's. */
HS_API hs_status hs_dp_sum(hs_dp *dp, float *buf, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
