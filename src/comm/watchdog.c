/* The hang watchdog. Every rank keeps a receive posted on a private
 * duplicate of the world communicator; its progress thread answers a query
 * ("group g, sequence s?") with how many collectives its caller has queued
 * and its thread has started on g, and what it queued as number s. A rank
 * whose collective has run past the timeout asks every member of the
 * group, prints which ranks have not arrived (or arrived with a different
 * collective), and aborts the job: the documented end of a hang. */
#include "comm/comm_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { TAG_QUERY = 1, TAG_REPLY = 2 };
enum { R_ISSUED, R_STARTED, R_KIND, R_COUNT, R_DTYPE, R_BUSY, R_N };
#define ANSWER_WAIT_S 3.0

hs_status hs_watchdog_post(hs_runtime *rt)
{
    int rc = MPI_Irecv(rt->query_buf, 2, MPI_UINT64_T, MPI_ANY_SOURCE, TAG_QUERY, rt->ctrl, &rt->query_req);
    return rc == MPI_SUCCESS ? HS_OK : hs_mpi_error(rc, "watchdog MPI_Irecv");
}

void hs_watchdog_cancel(hs_runtime *rt)
{
    if (rt->query_req == MPI_REQUEST_NULL)
        return;
    MPI_Cancel(&rt->query_req);
    MPI_Wait(&rt->query_req, MPI_STATUS_IGNORE);
}

static void answer(hs_runtime *rt, int src)
{
    uint64_t g = rt->query_buf[0], seq = rt->query_buf[1], a[R_N] = {0};
    if (g < HS_GROUP_COUNT) {
        hs_comm *c = rt->comms[g];
        pthread_mutex_lock(&rt->mu);
        a[R_ISSUED] = c->issued;
        a[R_STARTED] = c->started;
        const hs_op_record *h = &c->history[seq % HS_COMM_HISTORY];
        if (seq < c->issued && h->seq == seq) {
            a[R_KIND] = (uint64_t)h->kind + 1;
            a[R_COUNT] = h->count;
            a[R_DTYPE] = (uint64_t)h->dt;
        }
        pthread_mutex_unlock(&rt->mu);
    }
    if (rt->current)
        a[R_BUSY] = 1 + (uint64_t)rt->current->comm->group * HS_COLL_COUNT + (uint64_t)rt->current->kind;
    MPI_Send(a, R_N, MPI_UINT64_T, src, TAG_REPLY, rt->ctrl);
}

void hs_watchdog_serve(hs_runtime *rt)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (rt->query_req == MPI_REQUEST_NULL || MPI_Test(&rt->query_req, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        answer(rt, st.MPI_SOURCE);
        if (hs_watchdog_post(rt) != HS_OK)
            return;
    }
}

/* Asks every other member of c about sequence number seq; replies land in
 * a[m * R_N ..], got[m] says whether member m answered in time. */
static void ask_group(hs_runtime *rt, hs_comm *c, uint64_t seq, uint64_t *a, int *got)
{
    int p = c->size;
    MPI_Request *req = calloc((size_t)p, sizeof *req);
    uint64_t q[2] = {(uint64_t)c->group, seq};
    for (int m = 0; m < p; m++) {
        got[m] = m == c->rank;
        if (!req || m == c->rank) {
            if (req)
                req[m] = MPI_REQUEST_NULL;
            continue;
        }
        MPI_Send(q, 2, MPI_UINT64_T, c->world_ranks[m], TAG_QUERY, rt->ctrl);
        MPI_Irecv(a + (size_t)m * R_N, R_N, MPI_UINT64_T, c->world_ranks[m], TAG_REPLY, rt->ctrl, &req[m]);
    }
    double end = hs_time_now() + ANSWER_WAIT_S;
    for (int pending = p - 1; req && pending > 0 && hs_time_now() < end;) {
        pending = 0;
        for (int m = 0; m < p; m++) {
            int flag = 1;
            if (req[m] != MPI_REQUEST_NULL)
                MPI_Test(&req[m], &flag, MPI_STATUS_IGNORE);
            got[m] |= flag && m != c->rank && req[m] == MPI_REQUEST_NULL;
            pending += !flag;
        }
        hs_watchdog_serve(rt); /* the others' watchdogs may be asking us */
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    free(req);
}

/* The report, built in a fixed buffer. */
typedef struct report {
    char s[4096];
    size_t n;
} report;

static void add(report *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(report *b, const char *fmt, ...)
{
    if (b->n >= sizeof b->s)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n += (size_t)k;
}

enum { NOT_ARRIVED, MISMATCH, QUEUED, NO_ANSWER, ARRIVED };

/* Where member m stands on collective r, from its reply x. */
static int classify(const hs_comm_request *r, const uint64_t *x, int answered)
{
    if (!answered)
        return NO_ANSWER;
    if (x[R_ISSUED] <= r->seq)
        return NOT_ARRIVED;
    if (x[R_KIND] &&
        (x[R_KIND] - 1 != (uint64_t)r->kind || x[R_COUNT] != r->count || x[R_DTYPE] != (uint64_t)r->dt))
        return MISMATCH;
    return x[R_STARTED] <= r->seq ? QUEUED : ARRIVED;
}

static void describe(report *b, int kind, const uint64_t *x, hs_group g)
{
    if (kind == NOT_ARRIVED)
        add(b, " [has queued %llu on %s]", (unsigned long long)x[R_ISSUED], hs_group_name(g));
    if (kind == MISMATCH)
        add(b, " [%s of %llu %s]", hs_coll_name((hs_coll)(x[R_KIND] - 1)), (unsigned long long)x[R_COUNT],
            hs_dtype_name((hs_dtype)x[R_DTYPE]));
    if (kind == QUEUED && x[R_BUSY])
        add(b, " [busy with %s on %s]", hs_coll_name((hs_coll)((x[R_BUSY] - 1) % HS_COLL_COUNT)),
            hs_group_name((hs_group)((x[R_BUSY] - 1) / HS_COLL_COUNT)));
}

static void report_collective(hs_runtime *rt, const hs_comm_request *r, report *b)
{
    static const char *const head[ARRIVED] = {
        [NOT_ARRIVED] = "  ranks that have not arrived:",
        [MISMATCH] = "  ranks that arrived with a different collective:",
        [QUEUED] = "  ranks that queued it but are busy with an earlier operation:",
        [NO_ANSWER] = "  ranks that did not answer (counted as not arrived):",
    };
    hs_comm *c = r->comm;
    int p = c->size;
    uint64_t *a = calloc((size_t)p * R_N, sizeof *a);
    int *got = calloc((size_t)p, sizeof *got);
    if (!a || !got) {
        add(b, "  (out of memory asking the group who has arrived)\n");
        free(a);
        free(got);
        return;
    }
    ask_group(rt, c, r->seq, a, got);
    int missing = 0;
    for (int kind = 0; kind < ARRIVED; kind++) {
        int any = 0;
        for (int m = 0; m < p; m++) {
            const uint64_t *x = a + (size_t)m * R_N;
            if (m == c->rank || classify(r, x, got[m]) != kind)
                continue;
            add(b, "%s %d (world %d)", any++ ? "," : head[kind], m, c->world_ranks[m]);
            describe(b, kind, x, c->group);
        }
        if (any)
            add(b, "\n");
        missing += any;
    }
    if (!missing)
        add(b, "  every rank has arrived: the transport itself is stuck\n");
    free(a);
    free(got);
}

void hs_watchdog_fire(hs_runtime *rt, const hs_comm_request *r)
{
    report b = {.n = 0};
    hs_comm *c = r->comm;
    add(&b,
        "[hs watchdog] world rank %d: %s #%llu on group %s (size %d, %zu x %s = %zu B) has not completed after "
        "%.0f s (HS_COMM_TIMEOUT)\n",
        rt->world_rank, hs_coll_name(r->kind), (unsigned long long)r->seq, hs_group_name(c->group), c->size, r->count,
        hs_dtype_name(r->dt), r->count * hs_dtype_size(r->dt), rt->timeout_s);
    if (r->kind == HS_COLL_SEND || r->kind == HS_COLL_RECV)
        add(&b, "  ranks that have not arrived: %d (world %d) has not posted the matching %s (tag %d)\n", r->peer,
            c->world_ranks[r->peer], r->kind == HS_COLL_SEND ? "recv" : "send", r->tag);
    else
        report_collective(rt, r, &b);
    add(&b, "[hs watchdog] ending the job\n");
    fputs(b.s, stderr);
    fflush(stderr);
    MPI_Abort(rt->world, 3);
    _exit(3); /* MPI_Abort does not return */
}
