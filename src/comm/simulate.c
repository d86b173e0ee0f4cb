/* The cost model applied: advancing an NPU comm stream by a collective's
 * simulated time, and a group's shape in the simulated cluster. */
#include "comm/comm_internal.h"

#include <stdio.h>

int hs_cluster_group_per_node(const hs_cluster_spec *s, const hs_grid *g, hs_group grp, int rank)
{
    int color = hs_grid_color(g, grp, rank), node = rank / s->npus_per_node, n = 0;
    for (int r = 0; r < g->world; r++)
        n += hs_grid_color(g, grp, r) == color && r / s->npus_per_node == node;
    return n;
}

hs_status hs_comm_simulate(hs_npu_stream *stream, const char *name, const hs_cluster_spec *s, hs_coll c, int p,
                           int per_node, double n, double *seconds)
{
    if (!stream || !name)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_simulate: NULL %s", stream ? "name" : "stream");
    double t;
    HS_TRY(hs_comm_cost(s, c, p, per_node, n, &t));
    hs_npu_stream_advance(stream, name, "comm", t);
    if (seconds)
        *seconds = t;
    return HS_OK;
}

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

hs_status hs_comm_advance(hs_comm *c, hs_npu_stream *stream, hs_coll coll, double n, double *seconds)
{
    if (!c)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_advance: NULL comm");
    char name[64];
    snprintf(name, sizeof name, "%s %s", hs_coll_name(coll), hs_group_name(c->group));
    /* A group split unevenly over nodes is timed as the even shape nearest it. */
    int per_node = gcd(c->sim_per_node, c->size);
    return hs_comm_simulate(stream, name, &c->rt->cfg.cluster, coll, c->size, per_node, n, seconds);
}
