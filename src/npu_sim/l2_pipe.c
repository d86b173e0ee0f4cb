/* The L2 model of a launch on a second host thread.
 *
 * A simulated launch runs every block twice (l2.c): a census pass that
 * records which lines each access touches, then a timed pass whose
 * accesses are split into HBM and L2 bytes. About half of the host time
 * goes to the kernels' instructions and half to the line table, so with two
 * host threads the table moves to a worker that runs beside the kernels:
 *
 *   census: the kernel thread logs each access (its cycle is all the
 *           census needs from it) and goes on; the worker applies the log
 *           to the line table in order.
 *   timed:  the split of an access depends only on the census and on the
 *           accesses before it, never on the kernel's timing. In estimate
 *           mode the timed pass makes the census pass's accesses again in
 *           the same order (the instruction stream depends on neither time
 *           nor data, and there is no data), so the worker replays the log,
 *           computing every access's split ahead, and the kernel thread
 *           takes them in order, checking that each access is the logged
 *           one. In execute mode a kernel may read at an address computed
 *           from data (which the census pass does not have), so its timed
 *           pass applies its own accesses on the kernel thread.
 *
 * The table is touched by one thread at a time (the worker while a pass
 * runs, the kernel thread between passes), every access is applied in the
 * same order as without the worker, and so the results are the same bits.
 * Waits spin briefly, then sleep on a condition variable. The worker is
 * used when the process has two or more threads (hs_num_threads). */
#include "core/try.h"
#include "npu_sim/launch.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 14
#define CHUNK (1u << CHUNK_BITS) /* log entries per chunk */
#define MAX_CHUNKS (1u << 16)    /* 2^30 accesses in one launch */
#define SPINS 4000               /* pause loops before a wait sleeps */
#define CYC_LIMIT ((UINT64_C(1) << 48) - 1)

enum phase { IDLE, CENSUS, TIMED, QUIT };

struct hs_npu_l2_pipe {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake_worker, wake_main;
    int worker_sleeps, main_sleeps; /* atomics: a side is (about to be) asleep on its condition */
    int phase;                      /* atomic: what the worker does (set by the kernel thread) */
    int closed;                     /* atomic: the census log is complete */
    int cancel;                     /* atomic: stop the replay (a launch that failed) */
    uint64_t produced;              /* atomic: log entries written */
    uint64_t done;                  /* atomic: entries the worker finished in this phase */
    int busy;                       /* atomic: the worker is inside a phase */
    int status;                     /* atomic: the worker's first failure (an hs_status), with msg */
    char msg[256];
    int active;                     /* kernel thread: this launch runs on the worker */
    hs_npu_l2_op *log[MAX_CHUNKS];
    double (*res[MAX_CHUNKS])[3];
    uint64_t next; /* kernel thread: the next timed access */
};

static hs_npu_l2_op *log_at(struct hs_npu_l2_pipe *p, uint64_t i)
{
    return &p->log[i >> CHUNK_BITS][i & (CHUNK - 1)];
}

/* Wakes the other side when it sleeps (its flag is read after our store). */
static void wake(struct hs_npu_l2_pipe *p, int *sleeps, pthread_cond_t *cv)
{
    if (__atomic_load_n(sleeps, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Waits until ready(p, arg): spins, then sleeps on cv with *sleeps set. */
static void wait_for(struct hs_npu_l2_pipe *p, int (*ready)(struct hs_npu_l2_pipe *, uint64_t), uint64_t arg,
                     int *sleeps, pthread_cond_t *cv)
{
    for (int i = 0; i < SPINS; i++) {
        if (ready(p, arg))
            return;
        _mm_pause();
    }
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(sleeps, 1, __ATOMIC_SEQ_CST);
    while (!ready(p, arg))
        pthread_cond_wait(cv, &p->mu);
    __atomic_store_n(sleeps, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&p->mu);
}

static int has_work(struct hs_npu_l2_pipe *p, uint64_t unused)
{
    (void)unused;
    const int ph = __atomic_load_n(&p->phase, __ATOMIC_SEQ_CST);
    return ph == QUIT || (ph != IDLE && !__atomic_load_n(&p->busy, __ATOMIC_SEQ_CST));
}

static int census_input(struct hs_npu_l2_pipe *p, uint64_t i)
{
    return __atomic_load_n(&p->produced, __ATOMIC_SEQ_CST) > i || __atomic_load_n(&p->closed, __ATOMIC_SEQ_CST) ||
           __atomic_load_n(&p->cancel, __ATOMIC_SEQ_CST);
}

static int worker_idle(struct hs_npu_l2_pipe *p, uint64_t unused)
{
    (void)unused;
    return !__atomic_load_n(&p->busy, __ATOMIC_SEQ_CST) &&
           __atomic_load_n(&p->phase, __ATOMIC_SEQ_CST) == IDLE;
}

static int result_ready(struct hs_npu_l2_pipe *p, uint64_t i)
{
    return __atomic_load_n(&p->done, __ATOMIC_SEQ_CST) > i || worker_idle(p, 0);
}

/* Records the worker's failure (its message is thread-local: copy it
 * before the status that makes the kernel thread read it). */
static void fail(struct hs_npu_l2_pipe *p, hs_status s)
{
    snprintf(p->msg, sizeof p->msg, "%s", hs_last_error());
    __atomic_store_n(&p->status, (int)s, __ATOMIC_SEQ_CST);
}

static hs_status worker_status(struct hs_npu_l2_pipe *p)
{
    return (hs_status)__atomic_load_n(&p->status, __ATOMIC_SEQ_CST);
}

/* One phase: the census applies the log as it grows until it is closed;
 * the replay computes every logged access's split. */
static void run_phase(hs_npu_l2 *l2, struct hs_npu_l2_pipe *p, int ph)
{
    for (uint64_t i = 0;; i++) {
        if (ph == CENSUS) {
            if (!census_input(p, i))
                wait_for(p, census_input, i, &p->worker_sleeps, &p->wake_worker);
            if (i >= __atomic_load_n(&p->produced, __ATOMIC_SEQ_CST) || __atomic_load_n(&p->cancel, __ATOMIC_SEQ_CST))
                return; /* closed and drained, or a launch that failed in its census */
        } else if (i >= __atomic_load_n(&p->produced, __ATOMIC_SEQ_CST) ||
                   __atomic_load_n(&p->cancel, __ATOMIC_SEQ_CST)) {
            return;
        }
        double *sums = ph == TIMED ? p->res[i >> CHUNK_BITS][i & (CHUNK - 1)] : NULL;
        double scratch[3] = {0, 0, 0};
        if (sums)
            sums[0] = sums[1] = sums[2] = 0;
        if (!worker_status(p)) { /* after a failure, only drain */
            const hs_status s = hs_npu_l2_apply(l2, log_at(p, i), ph == CENSUS, sums ? sums : scratch);
            if (s != HS_OK)
                fail(p, s);
        }
        __atomic_store_n(&p->done, i + 1, __ATOMIC_SEQ_CST);
        if (ph == TIMED)
            wake(p, &p->main_sleeps, &p->wake_main);
    }
}

static void *worker(void *arg)
{
    hs_npu_l2 *l2 = arg;
    struct hs_npu_l2_pipe *p = l2->pipe;
    for (;;) {
        wait_for(p, has_work, 0, &p->worker_sleeps, &p->wake_worker);
        const int ph = __atomic_load_n(&p->phase, __ATOMIC_SEQ_CST);
        if (ph == QUIT)
            return NULL;
        __atomic_store_n(&p->busy, 1, __ATOMIC_SEQ_CST);
        run_phase(l2, p, ph);
        __atomic_store_n(&p->phase, IDLE, __ATOMIC_SEQ_CST);
        __atomic_store_n(&p->busy, 0, __ATOMIC_SEQ_CST);
        wake(p, &p->main_sleeps, &p->wake_main);
    }
}

/* Makes the worker when the process has a second thread for it. */
static void pipe_start(hs_npu_l2 *l2)
{
    if (l2->pipe || hs_num_threads() < 2)
        return;
    struct hs_npu_l2_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return; /* the accesses are applied on the kernel thread instead */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake_worker, NULL);
    pthread_cond_init(&p->wake_main, NULL);
    l2->pipe = p;
    if (pthread_create(&p->thread, NULL, worker, l2) != 0) {
        l2->pipe = NULL;
        free(p);
    }
}

/* Starts phase ph on the idle worker. */
static void start(struct hs_npu_l2_pipe *p, int ph)
{
    __atomic_store_n(&p->done, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->phase, ph, __ATOMIC_SEQ_CST);
    wake(p, &p->worker_sleeps, &p->wake_worker);
}

/* Waits for the worker to finish its phase (stopping a replay no one will
 * read), then passes on its failure. */
static hs_status settle(struct hs_npu_l2_pipe *p, int cancel)
{
    if (cancel) {
        __atomic_store_n(&p->cancel, 1, __ATOMIC_SEQ_CST);
        wake(p, &p->worker_sleeps, &p->wake_worker);
    }
    wait_for(p, worker_idle, 0, &p->main_sleeps, &p->wake_main);
    __atomic_store_n(&p->cancel, 0, __ATOMIC_SEQ_CST);
    const hs_status s = worker_status(p);
    if (!s)
        return HS_OK;
    __atomic_store_n(&p->status, HS_OK, __ATOMIC_SEQ_CST);
    return hs_error(s, "%s", p->msg);
}

hs_status hs_npu_l2_begin(hs_npu_l2 *l2)
{
    pipe_start(l2);
    struct hs_npu_l2_pipe *p = l2->pipe;
    if (p) {
        p->active = 0;
        HS_TRY(settle(p, 1));
        __atomic_store_n(&p->produced, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&p->closed, 0, __ATOMIC_SEQ_CST);
        p->next = 0;
    }
    HS_TRY(hs_npu_l2_lines_begin(l2));
    if (p && hs_num_threads() >= 2) {
        p->active = 1;
        start(p, CENSUS);
    }
    return HS_OK;
}

hs_status hs_npu_l2_end_census(hs_npu_l2 *l2, int64_t l2_bytes, int replay)
{
    struct hs_npu_l2_pipe *p = l2->pipe;
    if (p && p->active) {
        __atomic_store_n(&p->closed, 1, __ATOMIC_SEQ_CST);
        wake(p, &p->worker_sleeps, &p->wake_worker);
        HS_TRY(settle(p, 0));
    }
    HS_TRY(hs_npu_l2_lines_end_census(l2, l2_bytes));
    if (!p || !p->active)
        return HS_OK;
    if (!replay) { /* the timed pass applies its own accesses, on this thread */
        p->active = 0;
        return HS_OK;
    }
    const uint64_t n = __atomic_load_n(&p->produced, __ATOMIC_SEQ_CST);
    for (uint64_t c = 0; c * CHUNK < n; c++)
        if (!p->res[c] && !(p->res[c] = malloc(CHUNK * sizeof *p->res[c])))
            return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %u results", CHUNK);
    start(p, TIMED);
    return HS_OK;
}

/* Census on the worker: appends the access to the log. */
static hs_status push(struct hs_npu_l2_pipe *p, const hs_npu_l2_op *op)
{
    const uint64_t i = p->produced; /* only this thread writes it */
    const uint64_t c = i >> CHUNK_BITS;
    if (c >= MAX_CHUNKS)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: more than %u accesses in one launch",
                        MAX_CHUNKS * CHUNK);
    if (!p->log[c] && !(p->log[c] = malloc(CHUNK * sizeof *p->log[c])))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: a log of %u accesses", CHUNK);
    p->log[c][i & (CHUNK - 1)] = *op;
    __atomic_store_n(&p->produced, i + 1, __ATOMIC_SEQ_CST);
    wake(p, &p->worker_sleeps, &p->wake_worker);
    return HS_OK;
}

/* The same access but for its cycle (the timed pass runs at other cycles;
 * the split does not depend on them). */
static int same_access(const hs_npu_l2_op *a, const hs_npu_l2_op *b)
{
    return a->base == b->base && a->addr == b->addr && a->rows == b->rows && a->row_bytes == b->row_bytes &&
           a->ld == b->ld && a->blk == b->blk && a->write == b->write;
}

/* Timed pass on the worker: the next access's split, once computed. */
static hs_status take(struct hs_npu_l2_pipe *p, const hs_npu_l2_op *op, double sums[3])
{
    const uint64_t i = p->next++;
    if (i >= __atomic_load_n(&p->produced, __ATOMIC_SEQ_CST))
        return hs_error(HS_ERR_INTERNAL, "NPU L2 model: timed access %llu: the census made only %llu",
                        (unsigned long long)i, (unsigned long long)p->produced);
    const hs_npu_l2_op *c = log_at(p, i);
    if (!same_access(c, op))
        return hs_error(HS_ERR_INTERNAL,
                        "NPU L2 model: timed access %llu (block %d, %s %lld x %lld B, stride %lld, at +%llu) is "
                        "not the census's (block %d, %s %lld x %lld B, stride %lld, at +%llu)",
                        (unsigned long long)i, op->blk, op->write ? "write" : "read", (long long)op->rows,
                        (long long)op->row_bytes, (long long)op->ld, (unsigned long long)(op->addr - op->base),
                        c->blk, c->write ? "write" : "read", (long long)c->rows, (long long)c->row_bytes,
                        (long long)c->ld, (unsigned long long)(c->addr - c->base));
    if (!result_ready(p, i))
        wait_for(p, result_ready, i, &p->main_sleeps, &p->wake_main);
    if (worker_status(p))
        return settle(p, 1);
    if (__atomic_load_n(&p->done, __ATOMIC_SEQ_CST) <= i)
        return hs_error(HS_ERR_INTERNAL, "NPU L2 model: the replay stopped before access %llu",
                        (unsigned long long)i);
    memcpy(sums, p->res[i >> CHUNK_BITS][i & (CHUNK - 1)], 3 * sizeof(double));
    return HS_OK;
}

hs_status hs_npu_l2_access(hs_npu_l2 *l2, int blk, int census, int write, uint64_t t, uintptr_t base,
                           uintptr_t addr, int64_t rows, int64_t row_bytes, int64_t ld, hs_npu_gm_split *out)
{
    *out = (hs_npu_gm_split){0, 0, 0};
    if (census && t >= CYC_LIMIT)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "NPU L2 model: a kernel running past 2^48 - 1 cycles (%llu)",
                        (unsigned long long)t);
    if (census && t > l2->t_max)
        l2->t_max = t;
    const hs_npu_l2_op op = {base, addr, rows, row_bytes, ld, t, blk, write};
    double sums[3] = {0, 0, 0}; /* first reads, re-reads, write-back */
    struct hs_npu_l2_pipe *p = l2->pipe;
    if (p && p->active && census)
        return push(p, &op); /* the caller discards a census access's split */
    if (p && p->active)
        HS_TRY(take(p, &op, sums));
    else
        HS_TRY(hs_npu_l2_apply(l2, &op, census, sums));
    out->hbm = sums[0] + sums[1] * (1.0 - l2->fit);
    out->l2 = sums[1] * l2->fit;
    out->writeback = sums[2];
    return HS_OK;
}

void hs_npu_l2_free(hs_npu_l2 *l2)
{
    struct hs_npu_l2_pipe *p = l2->pipe;
    if (p) {
        (void)settle(p, 1);
        __atomic_store_n(&p->phase, QUIT, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake_worker);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        for (unsigned c = 0; c < MAX_CHUNKS && p->log[c]; c++)
            free(p->log[c]);
        for (unsigned c = 0; c < MAX_CHUNKS && p->res[c]; c++)
            free(p->res[c]);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->wake_worker);
        pthread_cond_destroy(&p->wake_main);
        free(p);
        l2->pipe = NULL;
    }
    hs_npu_l2_lines_free(l2);
}
