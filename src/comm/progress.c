/* The progress thread. It sleeps on a condition variable while nothing is
 * queued or in flight (waking every 100 ms to answer watchdog queries),
 * runs queued collectives one at a time in queue order, keeps posted
 * sends/receives in flight together, and while it waits on MPI it polls
 * with back-off (MPI_Test, then sched_yield, then nanosleep) instead of
 * spinning. It holds rt->engine (the right to call MPI) except while it
 * sleeps; then a blocking collective runs on its caller's thread instead,
 * which saves the two thread wake-ups of a hand-over. */
#include "comm/comm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define IDLE_TICK_NS 100000000L /* idle wake-up for watchdog queries */

/* Poll freely for 20 us, then yield the core between polls until 2 ms,
 * then sleep 1/20 of the time waited so far (100 .. 200 us): a long wait
 * costs ~5 % extra latency and almost no CPU. Yielding (not sleeping) for
 * the first 2 ms matters: a sleep costs ~20 us here and lets the vCPU idle,
 * and both slow down the CMA copies MPI does inside our polls (sleeping
 * from 200 us on made a 4 MiB all-reduce 2x slower). A yield hands the
 * core to a runnable compute thread at once. */
static void back_off(double waited_s)
{
    if (waited_s < 20e-6)
        return;
    if (waited_s < 2e-3) {
        sched_yield();
        return;
    }
    double s = waited_s / 20;
    s = s > 200e-6 ? 200e-6 : s;
    struct timespec ts = {0, (long)(s * 1e9)};
    nanosleep(&ts, NULL);
}

hs_status hs_progress_scratch(hs_runtime *rt, int i, size_t bytes, void **p)
{
    hs_scratch *s = &rt->scratch[i];
    if (s->bytes < bytes) {
        hs_free(s->p);
        s->bytes = 0;
        s->p = hs_alloc(bytes);
        if (!s->p)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: %zu B of scratch", bytes);
        s->bytes = bytes;
    }
    *p = s->p;
    return HS_OK;
}

void hs_progress_complete(hs_runtime *rt, hs_comm_request *r, hs_status s)
{
    pthread_mutex_lock(&rt->mu);
    r->status = s;
    if (s != HS_OK)
        snprintf(r->msg, sizeof r->msg, "%s", hs_last_error());
    r->done = 1;
    pthread_cond_broadcast(&rt->done);
    pthread_mutex_unlock(&rt->mu);
}

/* A finished receive must have got exactly what it asked for. */
static hs_status check_p2p(hs_comm_request *r, MPI_Status *st, int n)
{
    size_t got = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        MPI_Get_count(&st[i], MPI_BYTE, &k);
        got += (size_t)k;
    }
    size_t want = r->count * hs_dtype_size(r->dt);
    if (r->kind == HS_COLL_RECV && got != want)
        return hs_error(HS_ERR_COMM, "recv from rank %d tag %d on group %s: expected %zu B, got %zu B", r->peer,
                        r->tag, hs_group_name(r->comm->group), want, got);
    return HS_OK;
}

/* Completes the posted sends/receives that have finished and fires the
 * watchdog on one that has run too long. */
static void serve_p2p(hs_runtime *rt)
{
    double now = hs_time_now();
    for (int i = 0; i < rt->n_active;) {
        hs_comm_request *r = rt->active[i];
        MPI_Status sts[8];
        MPI_Status *st = r->inflight.n <= 8 ? sts : malloc((size_t)r->inflight.n * sizeof *st);
        int flag = 0, rc = st ? MPI_Testall(r->inflight.n, r->inflight.r, &flag, st) : MPI_ERR_NO_MEM;
        if (rc == MPI_SUCCESS && !flag) {
            if (st != sts)
                free(st);
            if (now - r->start > rt->timeout_s)
                hs_watchdog_fire(rt, r);
            i++;
            continue;
        }
        hs_status s = rc == MPI_SUCCESS ? check_p2p(r, st, r->inflight.n)
                                        : hs_mpi_error(rc, r->kind == HS_COLL_SEND ? "send" : "recv");
        if (st != sts)
            free(st);
        rt->active[i] = rt->active[--rt->n_active];
        hs_progress_complete(rt, r, s);
    }
}

static void serve(hs_runtime *rt)
{
    hs_watchdog_serve(rt);
    if (rt->n_active)
        serve_p2p(rt);
}

hs_status hs_progress_wait(hs_runtime *rt, hs_reqset *s)
{
    double t0 = hs_time_now();
    for (;;) {
        int flag = 0, rc = MPI_Testall(s->n, s->r, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return hs_mpi_error(rc, "MPI_Testall");
        if (flag) {
            s->n = 0;
            return HS_OK;
        }
        serve(rt);
        double now = hs_time_now();
        if (rt->current && now - rt->current->start > rt->timeout_s)
            hs_watchdog_fire(rt, rt->current);
        back_off(now - t0);
    }
}

static hs_status add_active(hs_runtime *rt, hs_comm_request *r)
{
    if (rt->n_active == rt->cap_active) {
        int cap = rt->cap_active ? 2 * rt->cap_active : 16;
        hs_comm_request **a = realloc(rt->active, (size_t)cap * sizeof *a);
        if (!a)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: %d in-flight sends/receives", cap);
        rt->active = a;
        rt->cap_active = cap;
    }
    rt->active[rt->n_active++] = r;
    return HS_OK;
}

/* Gives r its sequence number on its communicator (under rt->mu). */
static void number(hs_comm_request *r)
{
    hs_comm *c = r->comm;
    if (r->kind == HS_COLL_SEND || r->kind == HS_COLL_RECV) {
        r->seq = c->p2p_issued++;
        return;
    }
    r->seq = c->issued++;
    c->history[r->seq % HS_COMM_HISTORY] = (hs_op_record){r->seq, r->kind, r->count, r->dt};
}

/* Takes the next request, sleeping (without the engine) while there is
 * nothing to do. */
static hs_comm_request *next_request(hs_runtime *rt)
{
    pthread_mutex_lock(&rt->mu);
    if (!rt->head && rt->n_active == 0) {
        pthread_mutex_unlock(&rt->engine);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += IDLE_TICK_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rt->wake, &rt->mu, &ts);
        /* engine before mu is the lock order (a caller holding mu only
         * try-locks the engine): drop mu, wait for a caller's inline
         * collective to finish, take mu again */
        pthread_mutex_unlock(&rt->mu);
        pthread_mutex_lock(&rt->engine);
        pthread_mutex_lock(&rt->mu);
    }
    hs_comm_request *r = rt->head;
    if (r) {
        rt->head = r->next;
        if (!rt->head)
            rt->tail = NULL;
        if (!r->stop && r->kind != HS_COLL_SEND && r->kind != HS_COLL_RECV)
            r->comm->started = r->seq + 1;
    }
    pthread_mutex_unlock(&rt->mu);
    return r;
}

int hs_progress_run_inline(hs_runtime *rt, hs_comm_request *r, hs_status *st)
{
    pthread_mutex_lock(&rt->mu);
    int idle = !rt->head && rt->n_active == 0 && pthread_mutex_trylock(&rt->engine) == 0;
    if (idle) {
        number(r);
        r->comm->started = r->seq + 1;
    }
    pthread_mutex_unlock(&rt->mu);
    if (!idle)
        return 0;
    r->start = hs_time_now();
    rt->current = r;
    *st = hs_exec(rt, r);
    rt->current = NULL;
    pthread_mutex_unlock(&rt->engine);
    return 1;
}

static void *progress_main(void *arg)
{
    hs_runtime *rt = arg;
    /* Short sleeps must stay short: the default 50 us slack would stretch
     * every back-off nanosleep. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    pthread_mutex_lock(&rt->engine);
    double idle_t0 = hs_time_now();
    for (;;) {
        hs_comm_request *r = next_request(rt);
        serve(rt);
        if (!r) {
            if (rt->n_active)
                back_off(hs_time_now() - idle_t0);
            continue;
        }
        if (r->stop) {
            pthread_mutex_unlock(&rt->engine);
            hs_progress_complete(rt, r, HS_OK);
            break;
        }
        hs_clear_error();
        r->start = hs_time_now();
        int p2p = r->kind == HS_COLL_SEND || r->kind == HS_COLL_RECV;
        rt->current = p2p ? NULL : r;
        hs_status s = hs_exec(rt, r);
        rt->current = NULL;
        if (s == HS_OK && p2p)
            s = add_active(rt, r);
        if (s != HS_OK || !p2p)
            hs_progress_complete(rt, r, s);
        idle_t0 = hs_time_now();
    }
    return NULL;
}

void hs_progress_submit(hs_runtime *rt, hs_comm_request *r)
{
    pthread_mutex_lock(&rt->mu);
    if (!r->stop)
        number(r);
    r->next = NULL;
    if (rt->tail)
        rt->tail->next = r;
    else
        rt->head = r;
    rt->tail = r;
    pthread_cond_signal(&rt->wake);
    pthread_mutex_unlock(&rt->mu);
}

hs_status hs_progress_start(hs_runtime *rt)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&rt->mu, NULL);
    pthread_mutex_init(&rt->engine, NULL);
    pthread_cond_init(&rt->wake, &ca);
    pthread_cond_init(&rt->done, NULL);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&rt->thread, NULL, progress_main, rt);
    if (e != 0)
        return hs_error(HS_ERR_COMM, "comm: starting the progress thread: %s", strerror(e));
    pthread_setname_np(rt->thread, "hs-comm");
    rt->thread_running = 1;
    return HS_OK;
}

void hs_progress_stop(hs_runtime *rt)
{
    if (!rt->thread_running)
        return;
    hs_comm_request stop = {.stop = 1};
    hs_progress_submit(rt, &stop);
    pthread_join(rt->thread, NULL);
    rt->thread_running = 0;
    for (int i = 0; i < HS_COMM_SCRATCH_SLOTS; i++)
        hs_free(rt->scratch[i].p);
    free(rt->active);
    pthread_cond_destroy(&rt->wake);
    pthread_cond_destroy(&rt->done);
    pthread_mutex_destroy(&rt->engine);
    pthread_mutex_destroy(&rt->mu);
}
