/* hyperspeed comm: the MPI runtime, the process grid and its groups,
 * collectives (blocking and asynchronous) for every dtype, the hang
 * watchdog, and HCCL's alpha-beta-gamma cost model that advances an NPU's
 * comm stream in simulated time.
 *
 * This header does not include mpi.h: an MPI communicator crosses the API
 * only as the address of a caller's MPI_Comm (hs_runtime_config.mpi_comm).
 * See docs/comm.md and docs/parallelism.md.
 */
#ifndef HYPERSPEED_COMM_H
#define HYPERSPEED_COMM_H

#include "hyperspeed/core.h"
#include "hyperspeed/npu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ grid */

/* The groups of the process grid. World = TP x CP x DP x PP with ranks
 * ordered tp-cp-dp-pp (TP innermost). DATA is DP x CP (the ranks that hold
 * the same weights). EP cuts each DATA group into groups of `ep`
 * consecutive members; EDP ("expert data parallel") joins the members with
 * the same index across the EP groups of one DATA group. */
typedef enum hs_group {
    HS_GROUP_WORLD = 0,
    HS_GROUP_TP,
    HS_GROUP_CP,
    HS_GROUP_DP,
    HS_GROUP_PP,
    HS_GROUP_DATA,
    HS_GROUP_EP,
    HS_GROUP_EDP,
    HS_GROUP_COUNT
} hs_group;

/* Lower-case name of a group ("world", "tp", ...); "invalid" otherwise. */
HS_API const char *hs_group_name(hs_group g);

/* A factorisation of the world size. Plain values; hs_grid_make fills it. */
typedef struct hs_grid {
    int world;
    int tp, cp, dp, pp, ep;
} hs_grid;

/* Builds and checks a grid for `world` ranks. dp == 0 derives dp as
 * world / (tp * cp * pp). Errors: HS_ERR_INVALID_ARGUMENT with a sentence
 * naming the numbers when a size is < 1 (dp < 0), when tp*cp*dp*pp does not
 * equal world, or when ep does not divide dp*cp. */
HS_API hs_status hs_grid_make(int world, int tp, int cp, int dp, int pp, int ep, hs_grid *out);

/* Size of group g (1 for an invalid g). */
HS_API int hs_grid_group_size(const hs_grid *grid, hs_group g);

/* Index of world rank `rank` inside its group g (0 <= index < size); the
 * grid coordinates are hs_grid_group_rank(grid, HS_GROUP_TP/CP/DP/PP, r). */
HS_API int hs_grid_group_rank(const hs_grid *grid, hs_group g, int rank);

/* Writes the world ranks of the group g that world rank `rank` belongs to,
 * in group-rank order, to ranks[0 .. hs_grid_group_size(grid, g)).
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL pointers, g or rank out of range). */
HS_API hs_status hs_grid_group_ranks(const hs_grid *grid, hs_group g, int rank, int *ranks);

/* ----------------------------------------------------------- cost model */

/* The simulated cluster the cost model times collectives on, independent
 * of how many MPI ranks really run: NPU r of the grid sits on node
 * r / npus_per_node. Link figures: Atlas 800T A2 (../shared/NPU_FACTS.md);
 * the latencies are assumptions (docs/comm.md). */
typedef struct hs_cluster_spec {
    int npus_per_node;     /* NPUs in one HCCS full mesh (8 on A2) */
    double intra_alpha_s;  /* per-step latency inside a node, seconds */
    double intra_beta_s;   /* seconds per byte on one HCCS link (1 / 28 GB/s) */
    double inter_alpha_s;  /* per-step latency between nodes, seconds */
    double inter_beta_s;   /* seconds per byte on an NPU's RoCE port (1 / 25 GB/s) */
    double gamma_s;        /* seconds per byte reduced */
} hs_cluster_spec;

/* The A2 figures above with the default latencies and gamma. */
HS_API hs_cluster_spec hs_cluster_spec_default(void);

/* Checks a spec: npus_per_node >= 1, every time >= 0 and finite.
 * Errors: HS_ERR_INVALID_ARGUMENT naming the field. */
HS_API hs_status hs_cluster_spec_validate(const hs_cluster_spec *spec);

/* What a collective does: used by the cost model and in watchdog and
 * trace names. */
typedef enum hs_coll {
    HS_COLL_ALLREDUCE = 0,
    HS_COLL_REDUCE_SCATTER,
    HS_COLL_ALLGATHER,
    HS_COLL_BROADCAST,
    HS_COLL_ALLTOALL,
    HS_COLL_ALLTOALLV,
    HS_COLL_SEND,
    HS_COLL_RECV,
    HS_COLL_BARRIER,
    HS_COLL_COUNT
} hs_coll;

/* Lower-case name ("allreduce", "reduce_scatter", ...); "invalid" otherwise. */
HS_API const char *hs_coll_name(hs_coll c);

/* Simulated seconds of collective c over a group of p NPUs of which
 * per_node share each node (per_node == p: one node; per_node == 1: one NPU
 * per node), moving n bytes: the whole vector for all-reduce, the input of
 * reduce-scatter, the output of all-gather, the buffer of broadcast and
 * send/recv, each rank's send buffer for all-to-all (n/p to each peer).
 * One node: HCCS full mesh; one NPU per node: the cheaper of ring and
 * halving-doubling over RoCE; both: hierarchical (intra-node mesh,
 * inter-node ring/halving-doubling, intra-node mesh). Formulas in
 * docs/comm.md. Errors: HS_ERR_INVALID_ARGUMENT (spec, p < 1, per_node not
 * dividing p, n < 0, HS_COLL_ALLTOALLV: use hs_comm_cost_alltoallv). */
HS_API hs_status hs_comm_cost(const hs_cluster_spec *spec, hs_coll c, int p, int per_node, double n,
                              double *seconds);

/* Simulated seconds of an all-to-all-v as p-1 pairwise steps: step k costs
 * max_i alpha(i, i+k) + max_i bytes[i*p + (i+k)%p] * beta(i, i+k), where a
 * pair on one node (i / per_node equal) uses the HCCS figures and others the
 * RoCE ones. bytes is p x p, row = sender. Errors: HS_ERR_INVALID_ARGUMENT. */
HS_API hs_status hs_comm_cost_alltoallv(const hs_cluster_spec *spec, int p, int per_node, const double *bytes,
                                        double *seconds);

/* NPUs of the group g containing grid rank `rank` that sit on that rank's
 * simulated node (the per_node argument of hs_comm_cost). */
HS_API int hs_cluster_group_per_node(const hs_cluster_spec *spec, const hs_grid *grid, hs_group g, int rank);

/* Times collective c with hs_comm_cost and advances `stream` (the device's
 * comm stream) by it, as a trace slice named `name` (category "comm").
 * *seconds (may be NULL) receives the time. Errors: as hs_comm_cost, and
 * HS_ERR_INVALID_ARGUMENT for a NULL stream or name. */
HS_API hs_status hs_comm_simulate(hs_npu_stream *stream, const char *name, const hs_cluster_spec *spec, hs_coll c,
                                  int p, int per_node, double n, double *seconds);

/* --------------------------------------------------------------- runtime */

typedef struct hs_runtime hs_runtime;
typedef struct hs_comm hs_comm;
typedef struct hs_comm_request hs_comm_request;

/* Reduce-scatter / all-gather algorithm for hs_comm_set_algorithm. AUTO
 * picks by group shape and size (docs/comm.md). HALVING_DOUBLING needs a
 * power-of-two group; elsewhere the ring runs. */
typedef enum hs_comm_algo {
    HS_ALGO_AUTO = 0,
    HS_ALGO_RING,
    HS_ALGO_HALVING_DOUBLING
} hs_comm_algo;

typedef struct hs_runtime_config {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    int tp, cp, dp, pp; /* group sizes; dp == 0: world / (tp * cp * pp) */
    int ep;             /* expert parallel size, folded over dp * cp */
    /* Address of an MPI_Comm to adopt when the caller already runs MPI
     * (initialised with MPI_THREAD_SERIALIZED or more; MPI_THREAD_MULTIPLE if
     * it makes MPI calls of its own between hs_init and hs_finalize, since
     * the progress thread calls MPI at any time). hs_init duplicates it and
     * hs_finalize leaves MPI running. NULL: hs_init initialises MPI (or takes
     * MPI_COMM_WORLD if it already is) and hs_finalize finalises what it
     * initialised. */
    void *mpi_comm;
    int verbose;        /* 1: rank 0 prints the grid layout at start-up */
    int bind;           /* 1: bind each rank to its own cores (HS_BIND=none overrides) */
    double timeout_s;   /* watchdog; 0: HS_COMM_TIMEOUT seconds, else 300 */
    hs_comm_algo algo;  /* for every group's reduce-scatter/all-gather */
    hs_cluster_spec cluster; /* simulated cluster of hs_comm_advance */
} hs_runtime_config;

/* tp = cp = pp = ep = 1, dp = 0 (all ranks data parallel), mpi_comm NULL,
 * verbose 0, bind 1, timeout_s 0, AUTO, hs_cluster_spec_default(). */
HS_API hs_runtime_config hs_runtime_config_default(void);

/* Starts the runtime: initialises (or adopts) MPI, builds the grid, splits
 * one communicator per group, finds which ranks share a node, binds this
 * rank to its cores with hwloc (not when ranks outnumber cores; the reason
 * is logged), starts the progress thread and, with verbose, prints the
 * layout. argc/argv may be NULL. config NULL: the defaults. Release with
 * hs_finalize. Every rank gets the same error for a bad configuration.
 * Errors: HS_ERR_INVALID_ARGUMENT (a grid that does not factor the world
 * size, a bad field), HS_ERR_COMM (MPI failed or lacks thread support),
 * HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_init(int *argc, char ***argv, const hs_runtime_config *config, hs_runtime **rt);

/* Stops the progress thread after it has run every queued operation, frees
 * the communicators and finalises MPI if hs_init initialised it. Requests
 * not yet waited on must not be used afterwards. NULL is fine.
 * Errors: HS_ERR_COMM (MPI_Finalize failed). */
HS_API hs_status hs_finalize(hs_runtime *rt);

/* The communicator of group g (owned by the runtime); NULL for a bad g. */
HS_API hs_comm *hs_runtime_comm(const hs_runtime *rt, hs_group g);
/* The grid this runtime was built with. */
HS_API const hs_grid *hs_runtime_grid(const hs_runtime *rt);
/* This rank's index in group g, and g's size (world: the MPI rank/size). */
HS_API int hs_runtime_rank(const hs_runtime *rt, hs_group g);
HS_API int hs_runtime_size(const hs_runtime *rt, hs_group g);
/* This rank's node (0-based, ordered by lowest world rank), the node count,
 * and its index and the rank count on its node; any pointer may be NULL. */
HS_API void hs_runtime_node(const hs_runtime *rt, int *node, int *nodes, int *local_rank, int *local_size);
/* One line on this rank's binding ("cores 0-3" or why it is not bound). */
HS_API const char *hs_runtime_binding(const hs_runtime *rt);
/* The simulated cluster of hs_comm_advance. */
HS_API const hs_cluster_spec *hs_runtime_cluster(const hs_runtime *rt);

/* ---------------------------------------------------------- communicator */

typedef enum hs_reduce_op {
    HS_REDUCE_SUM = 0,
    HS_REDUCE_AVG, /* sum / group size; floating dtypes only */
    HS_REDUCE_MAX, /* NaN wins */
    HS_REDUCE_MIN, /* NaN wins */
    HS_REDUCE_COUNT
} hs_reduce_op;

/* This rank's index in the communicator, its size and its group. */
HS_API int hs_comm_rank(const hs_comm *c);
HS_API int hs_comm_size(const hs_comm *c);
HS_API hs_group hs_comm_group(const hs_comm *c);

/* The block of `count` elements that rank r of p owns in reduce-scatter and
 * all-gather: the first count % p ranks get count / p + 1 elements, the
 * others count / p, in rank order. */
HS_API void hs_comm_block(size_t count, int p, int r, size_t *offset, size_t *len);

/* Sets the reduce-scatter/all-gather algorithm of this communicator. Call it
 * on every rank of the group between collectives. Errors:
 * HS_ERR_INVALID_ARGUMENT. */
HS_API hs_status hs_comm_set_algorithm(hs_comm *c, hs_comm_algo algo);

/* Which algorithm a reduce-scatter/all-gather of `bytes` runs with: ring or
 * halving-doubling (never AUTO). The rule, in docs/comm.md: a group of one
 * gives RING (a copy); HALVING_DOUBLING for a power-of-two group on one
 * node, or across nodes up to 1 MiB; RING otherwise. A forced algorithm
 * wins where the group allows it. */
HS_API hs_comm_algo hs_comm_pick_algorithm(hs_comm_algo forced, int p, int nodes, size_t bytes);

/* Advances `stream` by the simulated time of collective c of n bytes on
 * this communicator's group in the runtime's simulated cluster
 * (hs_comm_simulate with this group's p and per_node). The trace slice is
 * named "<collective> <group>". *seconds may be NULL.
 * Errors: as hs_comm_simulate. */
HS_API hs_status hs_comm_advance(hs_comm *c, hs_npu_stream *stream, hs_coll coll, double n, double *seconds);

/* ----------------------------------------------------------- collectives
 *
 * Every collective exists in two forms: hs_comm_X runs it and returns when
 * it is complete; hs_comm_iX queues it on the runtime's progress thread and
 * returns a request at once, so computation overlaps it. Buffers belong to
 * the caller and must stay untouched until the request completes. Every
 * rank of the group calls a collective with the same arguments (counts,
 * dtype, op, root) in the same order. Results are bitwise identical on all
 * ranks and do not depend on message arrival order. count is in elements.
 * Dtypes: fp32, bf16, fp16, int32, int64; bf16/fp16 reduce in fp32 and round
 * once. Errors found before queueing (returned by the call itself):
 * HS_ERR_INVALID_ARGUMENT (NULL buffer with count > 0, bad root/peer/tag/op),
 * HS_ERR_DTYPE (int8, or AVG on an integer dtype). Errors during the
 * operation (returned by wait/test): HS_ERR_COMM with MPI's message. A
 * collective that does not complete within the watchdog timeout ends the
 * job with a report (docs/comm.md).
 */

/* recv[i] = op over ranks of send[i], i < count. send may equal recv. */
HS_API hs_status hs_comm_allreduce(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                   hs_reduce_op op);
HS_API hs_status hs_comm_iallreduce(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                    hs_reduce_op op, hs_comm_request **req);

/* Reduces send[0 .. count) over ranks and leaves this rank's block
 * (hs_comm_block(count, p, rank)) in recv[0 .. len). recv may be
 * send + offset of that block; otherwise the buffers must not overlap. */
HS_API hs_status hs_comm_reduce_scatter(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                        hs_reduce_op op);
HS_API hs_status hs_comm_ireduce_scatter(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                         hs_reduce_op op, hs_comm_request **req);

/* Gathers every rank's block (hs_comm_block(count, p, rank) elements at
 * send) into recv[0 .. count) in rank order. send may be recv + offset of
 * this rank's block (in place). */
HS_API hs_status hs_comm_allgather(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt);
HS_API hs_status hs_comm_iallgather(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                    hs_comm_request **req);

/* Copies root's buf[0 .. count) to every rank's buf. */
HS_API hs_status hs_comm_broadcast(hs_comm *c, void *buf, size_t count, hs_dtype dt, int root);
HS_API hs_status hs_comm_ibroadcast(hs_comm *c, void *buf, size_t count, hs_dtype dt, int root,
                                    hs_comm_request **req);

/* Sends send[j*count .. (j+1)*count) to rank j and receives rank j's block
 * into recv[j*count ..). The buffers must not overlap. */
HS_API hs_status hs_comm_alltoall(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt);
HS_API hs_status hs_comm_ialltoall(hs_comm *c, const void *send, void *recv, size_t count, hs_dtype dt,
                                   hs_comm_request **req);

/* Sends scounts[j] elements from send + sdispls[j] to rank j and receives
 * rcounts[j] elements from rank j at recv + rdispls[j] (all in elements;
 * the four arrays have hs_comm_size entries and are copied by the call).
 * rcounts[j] must equal rank j's scounts[this rank]. */
HS_API hs_status hs_comm_alltoallv(hs_comm *c, const void *send, const size_t *scounts, const size_t *sdispls,
                                   void *recv, const size_t *rcounts, const size_t *rdispls, hs_dtype dt);
HS_API hs_status hs_comm_ialltoallv(hs_comm *c, const void *send, const size_t *scounts, const size_t *sdispls,
                                    void *recv, const size_t *rcounts, const size_t *rdispls, hs_dtype dt,
                                    hs_comm_request **req);

/* Point to point with a tag in [0, 32767]. The receive's count must equal
 * the send's (HS_ERR_COMM otherwise). Messages between two ranks with one
 * tag arrive in the order they were sent. Async sends and receives are all
 * in flight together, so posting both halves of an exchange cannot
 * deadlock. */
HS_API hs_status hs_comm_send(hs_comm *c, const void *buf, size_t count, hs_dtype dt, int peer, int tag);
HS_API hs_status hs_comm_isend(hs_comm *c, const void *buf, size_t count, hs_dtype dt, int peer, int tag,
                               hs_comm_request **req);
HS_API hs_status hs_comm_recv(hs_comm *c, void *buf, size_t count, hs_dtype dt, int peer, int tag);
HS_API hs_status hs_comm_irecv(hs_comm *c, void *buf, size_t count, hs_dtype dt, int peer, int tag,
                               hs_comm_request **req);

/* Returns when every rank of the group has entered the barrier. */
HS_API hs_status hs_comm_barrier(hs_comm *c);

/* Bytes this process has sent to other ranks through the library's
 * collectives and point-to-point calls since it started (every algorithm
 * step's message counted once, as it goes to MPI): the communication
 * volume of a step is the difference of two readings. */
HS_API uint64_t hs_comm_bytes_sent(void);
HS_API hs_status hs_comm_ibarrier(hs_comm *c, hs_comm_request **req);

/* Waits (sleeping, not spinning) until *req completes, releases it, sets
 * *req to NULL and returns the operation's status (its message in
 * hs_last_error). NULL *req: HS_OK. */
HS_API hs_status hs_comm_wait(hs_comm_request **req);

/* *done = 1 when *req has completed: then it is released, *req set to NULL
 * and its status returned. *done = 0: HS_OK and the request stays. */
HS_API hs_status hs_comm_test(hs_comm_request **req, int *done);

/* Waits for reqs[0 .. n) (NULL entries are skipped), releases all of them
 * and returns the first failure's status, else HS_OK. */
HS_API hs_status hs_comm_waitall(hs_comm_request **reqs, size_t n);

#ifdef __cplusplus
}
#endif
#endif
