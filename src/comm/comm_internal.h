/* Private state of the comm layer: the runtime, communicators, requests,
 * the progress thread's queue and the helpers the algorithms share. Once
 * hs_init has returned, MPI is called only by the thread holding
 * rt->engine: the progress thread, or a caller running a blocking
 * collective inline while the progress thread has nothing to do (MPI runs
 * at MPI_THREAD_SERIALIZED). */
#ifndef HS_COMM_INTERNAL_H
#define HS_COMM_INTERNAL_H

#include "core/try.h"
#include "comm/scratch.h"
#include "hyperspeed/comm.h"

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>

#define HS_COMM_HISTORY 64 /* ops per communicator the watchdog can describe */
#define HS_COMM_MSG 512

/* What one queued operation was, for the watchdog's mismatch check. */
typedef struct hs_op_record {
    uint64_t seq;
    hs_coll kind;
    size_t count;
    hs_dtype dt;
} hs_op_record;

struct hs_comm {
    hs_runtime *rt;
    hs_group group;
    MPI_Comm coll;    /* collectives: our algorithms' messages and MPI's own */
    MPI_Comm p2p;     /* hs_comm_send/recv, so user tags never meet ours */
    int rank, size;
    int *world_ranks; /* group rank -> world rank */
    int nodes;        /* real nodes the group spans */
    int sim_per_node; /* members per simulated node (cost model) */
    hs_comm_algo algo;
    /* Written by the caller under rt->mu, read by the progress thread. */
    uint64_t issued;  /* collectives queued so far: the next one's sequence number */
    uint64_t started; /* collectives the progress thread has begun */
    uint64_t p2p_issued;
    hs_op_record history[HS_COMM_HISTORY];
};

/* A growable MPI request array. */
typedef struct hs_reqset {
    MPI_Request *r;
    int n, cap;
} hs_reqset;

struct hs_comm_request {
    hs_coll kind;
    hs_comm *comm;
    const void *send;
    void *recv;
    size_t count;
    hs_dtype dt;
    hs_reduce_op op;
    int peer; /* root of broadcast, peer of send/recv */
    int tag;
    size_t *v; /* alltoallv: scounts, sdispls, rcounts, rdispls (4 * p) */
    uint64_t seq;
    double start;      /* when the progress thread began it */
    hs_reqset inflight; /* send/recv: MPI requests still running */
    int stop;          /* the finalize marker */
    /* completion, under rt->mu */
    int done;
    hs_status status;
    char msg[HS_COMM_MSG];
    struct hs_comm_request *next;
};

/* Scratch buffers of the progress thread, grown on demand. */
typedef struct hs_scratch {
    void *p;
    size_t bytes;
} hs_scratch;

struct hs_runtime {
    hs_runtime_config cfg;
    hs_grid grid;
    int owns_mpi;
    int world_rank;
    MPI_Comm world; /* duplicate of the world or adopted communicator */
    MPI_Comm ctrl;  /* watchdog queries and replies */
    hs_comm *comms[HS_GROUP_COUNT];
    int node, nodes, local_rank, local_size;
    int *node_of; /* world rank -> node */
    char binding[160];
    double timeout_s;
    /* progress thread */
    pthread_t thread;
    int thread_running;
    pthread_mutex_t mu;     /* queue, completion flags, sequence counters */
    pthread_mutex_t engine; /* the right to call MPI; locked before mu (or try-locked under it) */
    pthread_cond_t wake; /* queue not empty */
    pthread_cond_t done; /* some request completed */
    hs_comm_request *head, *tail;
    hs_comm_request **active; /* posted sends/receives */
    int n_active, cap_active;
    hs_comm_request *current; /* the collective being run (under engine) */
    hs_scratch scratch[HS_COMM_SCRATCH_SLOTS]; /* comm/scratch.h */
    /* watchdog: the always-posted query receive */
    MPI_Request query_req;
    uint64_t query_buf[2];
};

/* ---- grid.c */
int hs_grid_color(const hs_grid *g, hs_group grp, int rank);

/* ---- algo.c */
int hs_comm_is_pow2(int p);

/* ---- reduce.c: dst = a (op) b over n elements of dt. A buffer is "acc"
 * when it holds the fp32 accumulation format of a 16-bit dtype (for other
 * dtypes the two formats are the same). final_p > 0 marks the last step:
 * AVG divides by final_p there. dst may equal a or b. */
void hs_comm_combine(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                     hs_dtype dt, hs_reduce_op op, int final_p);
/* reduce_avx512.c, reduce_avx2.c: the same step for float dtypes (fp32,
 * bf16, fp16) at one instruction level, over the first n rounded down to a
 * whole number of vectors; returns how many elements it did. avg_p > 0
 * divides by avg_p. Callable only on a CPU that has the level. */
typedef size_t hs_comm_combine_fn(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc,
                                  size_t n, hs_dtype dt, hs_reduce_op op, int avg_p);
hs_comm_combine_fn hs_comm_combine_avx512, hs_comm_combine_avx2;
/* The vector step of level isa; NULL for the baseline (reduce.c's portable
 * loops do it all). */
hs_comm_combine_fn *hs_comm_combine_for(hs_isa isa);
/* Bytes per element of dt in accumulation format. */
size_t hs_comm_acc_size(hs_dtype dt);

/* ---- xfer.c: MPI transfers of any size (messages of at most 1 GiB). */
hs_status hs_reqset_isend(hs_reqset *s, const void *buf, size_t bytes, int peer, int tag, MPI_Comm comm);
hs_status hs_reqset_irecv(hs_reqset *s, void *buf, size_t bytes, int peer, int tag, MPI_Comm comm);
/* One more request slot (MPI_REQUEST_NULL); NULL with the error set when
 * out of memory. */
MPI_Request *hs_reqset_slot(hs_reqset *s);
void hs_reqset_free(hs_reqset *s);
/* HS_ERR_COMM with MPI's text for MPI error code rc. */
hs_status hs_mpi_error(int rc, const char *what);

/* A local copy to make while a step's messages are in flight. */
typedef struct hs_copy {
    void *dst;
    const void *src;
    size_t bytes;
} hs_copy;

/* One step of an algorithm: receive rbytes from `from` into rbuf and send
 * sbytes of sbuf to `to` (tag `tag` on comm), make the copy `also` (may be
 * NULL) meanwhile, and wait for both messages; s is the caller's request
 * set, reused from step to step. */
hs_status hs_exchange(hs_runtime *rt, hs_reqset *s, MPI_Comm comm, const void *sbuf, size_t sbytes, int to,
                      void *rbuf, size_t rbytes, int from, int tag, const hs_copy *also);

/* ---- progress.c */
/* Waits (polling with back-off) until every request of s completes, while
 * serving watchdog queries and posted sends/receives; resets s. */
hs_status hs_progress_wait(hs_runtime *rt, hs_reqset *s);
/* Pointer to scratch buffer i with at least `bytes`. */
hs_status hs_progress_scratch(hs_runtime *rt, int i, size_t bytes, void **p);
hs_status hs_progress_start(hs_runtime *rt);
void hs_progress_stop(hs_runtime *rt);
/* Numbers and queues a request (validated, filled by the caller). */
void hs_progress_submit(hs_runtime *rt, hs_comm_request *r);
/* Runs collective r on the calling thread, numbered in queue order, when
 * nothing is queued or in flight and the progress thread is idle; returns
 * 0 (nothing done) otherwise. *st receives its status. */
int hs_progress_run_inline(hs_runtime *rt, hs_comm_request *r, hs_status *st);
/* Marks r done with status s (message from this thread's hs_last_error). */
void hs_progress_complete(hs_runtime *rt, hs_comm_request *r, hs_status s);

/* ---- exec.c: runs (or, for send/recv, posts) one request on the progress thread. */
hs_status hs_exec(hs_runtime *rt, hs_comm_request *r);

/* ---- ring.c / hd.c: on the group's coll communicator. `in` holds count
 * elements (all blocks); out receives this rank's reduced block. */
hs_status hs_ring_reduce_scatter(hs_runtime *rt, hs_comm *c, const void *in, void *out, size_t count, hs_dtype dt,
                                 hs_reduce_op op);
/* All-gather into buf; this rank's block is at `mine` (buf + its offset
 * when in place, else copied there while the first step is in flight). */
hs_status hs_ring_allgather(hs_runtime *rt, hs_comm *c, const void *mine, void *buf, size_t count, hs_dtype dt);
hs_status hs_hd_reduce_scatter(hs_runtime *rt, hs_comm *c, const void *in, void *out, size_t count, hs_dtype dt,
                               hs_reduce_op op);
hs_status hs_hd_allgather(hs_runtime *rt, hs_comm *c, const void *mine, void *buf, size_t count, hs_dtype dt);

/* ---- watchdog.c */
hs_status hs_watchdog_post(hs_runtime *rt);
void hs_watchdog_cancel(hs_runtime *rt);
/* Answers queries that have arrived. */
void hs_watchdog_serve(hs_runtime *rt);
/* Reports request r as hung (asks the group which ranks have arrived) and
 * aborts the job. */
void hs_watchdog_fire(hs_runtime *rt, const hs_comm_request *r);

/* ---- topo.c */
hs_status hs_topo_nodes(hs_runtime *rt);
void hs_topo_bind(hs_runtime *rt);
/* ---- layout.c */
hs_status hs_layout_print(hs_runtime *rt);

#endif
