/* Waiting for and testing requests. The caller sleeps on the runtime's
 * condition variable; the progress thread signals it on every completion. */
#include "comm/comm_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* Releases a completed request and hands its status to this thread. */
static hs_status release(hs_comm_request **req)
{
    hs_comm_request *r = *req;
    hs_status s = r->status;
    if (s != HS_OK)
        hs_error(s, "%s", r->msg);
    hs_reqset_free(&r->inflight);
    free(r->v);
    free(r);
    *req = NULL;
    return s;
}

hs_status hs_comm_wait(hs_comm_request **req)
{
    if (!req)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_wait: NULL request pointer");
    if (!*req)
        return HS_OK;
    hs_runtime *rt = (*req)->comm->rt;
    pthread_mutex_lock(&rt->mu);
    while (!(*req)->done)
        pthread_cond_wait(&rt->done, &rt->mu);
    pthread_mutex_unlock(&rt->mu);
    return release(req);
}

hs_status hs_comm_test(hs_comm_request **req, int *done)
{
    if (!req || !done)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_test: NULL argument");
    *done = 1;
    if (!*req)
        return HS_OK;
    hs_runtime *rt = (*req)->comm->rt;
    pthread_mutex_lock(&rt->mu);
    *done = (*req)->done;
    pthread_mutex_unlock(&rt->mu);
    return *done ? release(req) : HS_OK;
}

hs_status hs_comm_waitall(hs_comm_request **reqs, size_t n)
{
    if (!reqs && n)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_waitall: NULL array of %zu requests", n);
    hs_status first = HS_OK;
    char msg[HS_COMM_MSG] = "";
    for (size_t i = 0; i < n; i++) {
        hs_status s = hs_comm_wait(&reqs[i]);
        if (s != HS_OK && first == HS_OK) {
            first = s;
            snprintf(msg, sizeof msg, "%s", hs_last_error());
        }
    }
    return first == HS_OK ? HS_OK : hs_error(first, "%s", msg);
}
