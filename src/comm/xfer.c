/* MPI transfers of any size: a buffer goes as messages of at most 1 GiB
 * (MPI counts are int), all with one tag, which MPI keeps in order. */
#include "comm/comm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE ((size_t)1 << 30)

static uint64_t sent_bytes; /* every send's bytes: hs_comm_bytes_sent */

uint64_t hs_comm_bytes_sent(void) { return __atomic_load_n(&sent_bytes, __ATOMIC_RELAXED); }

hs_status hs_mpi_error(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    return hs_error(HS_ERR_COMM, "%s: %s", what, text);
}

static hs_status reserve(hs_reqset *s, size_t more)
{
    if ((size_t)s->n + more <= (size_t)s->cap)
        return HS_OK;
    int cap = s->cap ? s->cap : 8;
    while ((size_t)cap < (size_t)s->n + more)
        cap *= 2;
    MPI_Request *r = realloc(s->r, (size_t)cap * sizeof *r);
    if (!r)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: %d MPI requests", cap);
    s->r = r;
    s->cap = cap;
    return HS_OK;
}

static hs_status post(hs_reqset *s, void *buf, size_t bytes, int peer, int tag, MPI_Comm comm, int is_send)
{
    size_t pieces = bytes ? (bytes + PIECE - 1) / PIECE : 1;
    hs_status st = reserve(s, pieces);
    if (st != HS_OK)
        return st;
    if (is_send)
        __atomic_add_fetch(&sent_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
    for (size_t k = 0; k < pieces; k++) {
        size_t off = k * PIECE, len = bytes - off < PIECE ? bytes - off : PIECE;
        char *p = (char *)buf + off;
        int rc = is_send ? MPI_Isend(p, (int)len, MPI_BYTE, peer, tag, comm, &s->r[s->n])
                         : MPI_Irecv(p, (int)len, MPI_BYTE, peer, tag, comm, &s->r[s->n]);
        if (rc != MPI_SUCCESS)
            return hs_mpi_error(rc, is_send ? "MPI_Isend" : "MPI_Irecv");
        s->n++;
    }
    return HS_OK;
}

hs_status hs_reqset_isend(hs_reqset *s, const void *buf, size_t bytes, int peer, int tag, MPI_Comm comm)
{
    return post(s, (void *)buf, bytes, peer, tag, comm, 1);
}

hs_status hs_reqset_irecv(hs_reqset *s, void *buf, size_t bytes, int peer, int tag, MPI_Comm comm)
{
    return post(s, buf, bytes, peer, tag, comm, 0);
}

MPI_Request *hs_reqset_slot(hs_reqset *s)
{
    if (reserve(s, 1) != HS_OK)
        return NULL;
    s->r[s->n] = MPI_REQUEST_NULL;
    return &s->r[s->n++];
}

void hs_reqset_free(hs_reqset *s)
{
    free(s->r);
    *s = (hs_reqset){0};
}

hs_status hs_exchange(hs_runtime *rt, hs_reqset *s, MPI_Comm comm, const void *sbuf, size_t sbytes, int to,
                      void *rbuf, size_t rbytes, int from, int tag, const hs_copy *also)
{
    HS_TRY(hs_reqset_irecv(s, rbuf, rbytes, from, tag, comm));
    HS_TRY(hs_reqset_isend(s, sbuf, sbytes, to, tag, comm));
    if (also && also->bytes && also->dst != also->src)
        memmove(also->dst, also->src, also->bytes);
    return hs_progress_wait(rt, s);
}
