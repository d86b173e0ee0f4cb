/* hs_init / hs_finalize: MPI start-up (or adoption), the grid and one pair
 * of communicators per group, node locality, binding, the progress thread. */
#include "core/config_size.h"
#include "comm/comm_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_S 300.0

hs_runtime_config hs_runtime_config_default(void)
{
    return (hs_runtime_config){
        .size = sizeof(hs_runtime_config), .tp = 1, .cp = 1, .dp = 0, .pp = 1, .ep = 1,
        .mpi_comm = NULL, .verbose = 0, .bind = 1, .timeout_s = 0,
        .algo = HS_ALGO_AUTO, .cluster = hs_cluster_spec_default(),
    };
}

static double timeout_from(const hs_runtime_config *cfg)
{
    if (cfg->timeout_s > 0)
        return cfg->timeout_s;
    const char *e = getenv("HS_COMM_TIMEOUT");
    if (e && *e) {
        char *end;
        double t = strtod(e, &end);
        if (*end == '\0' && t > 0 && isfinite(t))
            return t;
        hs_log(HS_LOG_WARN, "HS_COMM_TIMEOUT=%s is not a positive number of seconds; using %.0f", e,
               DEFAULT_TIMEOUT_S);
    }
    return DEFAULT_TIMEOUT_S;
}

static hs_status check_config(const hs_runtime_config *cfg)
{
    if (!(cfg->timeout_s >= 0) || !isfinite(cfg->timeout_s))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_init: timeout_s=%g must be >= 0 (0: HS_COMM_TIMEOUT or 300)",
                        cfg->timeout_s);
    if ((unsigned)cfg->algo > HS_ALGO_HALVING_DOUBLING)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_init: unknown algorithm %d", (int)cfg->algo);
    return hs_cluster_spec_validate(&cfg->cluster);
}

/* Starts MPI, or takes the caller's communicator, and duplicates it. */
static hs_status start_mpi(hs_runtime *rt, int *argc, char ***argv)
{
    int inited = 0, finalized = 0, level = 0, rc;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return hs_error(HS_ERR_COMM, "hs_init: MPI has been finalised and cannot be started again in this process");
    if (rt->cfg.mpi_comm && !inited)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_init: mpi_comm is set but MPI is not initialised");
    if (!inited) {
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &level);
        if (rc != MPI_SUCCESS)
            return hs_mpi_error(rc, "MPI_Init_thread");
        rt->owns_mpi = 1;
    }
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_SERIALIZED)
        return hs_error(HS_ERR_COMM,
                        "hs_init: MPI gives thread level %d; the progress thread needs MPI_THREAD_SERIALIZED", level);
    MPI_Comm base = rt->cfg.mpi_comm ? *(MPI_Comm *)rt->cfg.mpi_comm : MPI_COMM_WORLD;
    if ((rc = MPI_Comm_dup(base, &rt->world)) != MPI_SUCCESS)
        return hs_mpi_error(rc, "MPI_Comm_dup");
    MPI_Comm_set_errhandler(rt->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(rt->world, &rt->world_rank);
    if ((rc = MPI_Comm_dup(rt->world, &rt->ctrl)) != MPI_SUCCESS)
        return hs_mpi_error(rc, "MPI_Comm_dup");
    return HS_OK;
}

static hs_status make_comm(hs_runtime *rt, hs_group g)
{
    hs_comm *c = calloc(1, sizeof *c);
    if (!c)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: group %s", hs_group_name(g));
    rt->comms[g] = c;
    c->rt = rt;
    c->group = g;
    c->algo = rt->cfg.algo;
    c->coll = c->p2p = MPI_COMM_NULL;
    const hs_grid *grid = &rt->grid;
    int me = rt->world_rank;
    int rc = MPI_Comm_split(rt->world, hs_grid_color(grid, g, me), hs_grid_group_rank(grid, g, me), &c->p2p);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_dup(c->p2p, &c->coll);
    if (rc != MPI_SUCCESS)
        return hs_mpi_error(rc, "MPI_Comm_split");
    MPI_Comm_set_errhandler(c->p2p, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(c->coll, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->p2p, &c->rank);
    MPI_Comm_size(c->p2p, &c->size);
    c->world_ranks = malloc((size_t)c->size * sizeof *c->world_ranks);
    if (!c->world_ranks)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: group %s of %d ranks", hs_group_name(g), c->size);
    HS_TRY(hs_grid_group_ranks(grid, g, me, c->world_ranks));
    if (c->size != hs_grid_group_size(grid, g) || c->world_ranks[c->rank] != me)
        return hs_error(HS_ERR_INTERNAL, "comm: MPI_Comm_split gave group %s rank %d of %d, the grid says %d of %d",
                        hs_group_name(g), c->rank, c->size, hs_grid_group_rank(grid, g, me),
                        hs_grid_group_size(grid, g));
    for (int i = 0; i < c->size; i++) {
        int first = 1;
        for (int j = 0; j < i; j++)
            first &= rt->node_of[c->world_ranks[j]] != rt->node_of[c->world_ranks[i]];
        c->nodes += first;
    }
    c->sim_per_node = hs_cluster_group_per_node(&rt->cfg.cluster, grid, g, me);
    return HS_OK;
}

static void free_comm(hs_comm *c)
{
    if (!c)
        return;
    if (c->coll != MPI_COMM_NULL)
        MPI_Comm_free(&c->coll);
    if (c->p2p != MPI_COMM_NULL)
        MPI_Comm_free(&c->p2p);
    free(c->world_ranks);
    free(c);
}

/* Releases everything; finalises MPI if we started it. */
static hs_status teardown(hs_runtime *rt)
{
    hs_progress_stop(rt);
    hs_watchdog_cancel(rt);
    for (int g = 0; g < HS_GROUP_COUNT; g++)
        free_comm(rt->comms[g]);
    if (rt->ctrl != MPI_COMM_NULL)
        MPI_Comm_free(&rt->ctrl);
    if (rt->world != MPI_COMM_NULL)
        MPI_Comm_free(&rt->world);
    free(rt->node_of);
    int rc = rt->owns_mpi ? MPI_Finalize() : MPI_SUCCESS;
    free(rt);
    return rc == MPI_SUCCESS ? HS_OK : hs_mpi_error(rc, "MPI_Finalize");
}

static hs_status build(hs_runtime *rt, int *argc, char ***argv)
{
    HS_TRY(start_mpi(rt, argc, argv));
    int world = 0;
    MPI_Comm_size(rt->world, &world);
    const hs_runtime_config *k = &rt->cfg;
    HS_TRY(hs_grid_make(world, k->tp, k->cp, k->dp, k->pp, k->ep, &rt->grid));
    HS_TRY(hs_topo_nodes(rt));
    for (int g = 0; g < HS_GROUP_COUNT; g++)
        HS_TRY(make_comm(rt, (hs_group)g));
    hs_topo_bind(rt);
    rt->timeout_s = timeout_from(k);
    int verbose = k->verbose;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &verbose, 1, MPI_INT, MPI_MAX, rt->world);
    if (rc != MPI_SUCCESS)
        return hs_mpi_error(rc, "MPI_Allreduce");
    if (verbose)
        HS_TRY(hs_layout_print(rt));
    HS_TRY(hs_watchdog_post(rt));
    return hs_progress_start(rt);
}

hs_status hs_init(int *argc, char ***argv, const hs_runtime_config *config, hs_runtime **out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_init: NULL output");
    *out = NULL;
    if (config)
        HS_TRY(HS_CHECK_SIZE(config, hs_runtime_config));
    hs_runtime_config cfg = config ? *config : hs_runtime_config_default();
    HS_TRY(check_config(&cfg));
    hs_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_init: runtime");
    rt->cfg = cfg;
    rt->world = rt->ctrl = MPI_COMM_NULL;
    rt->query_req = MPI_REQUEST_NULL;
    hs_status st = build(rt, argc, argv);
    if (st != HS_OK) {
        /* keep the first failure's message */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hs_last_error());
        teardown(rt);
        return hs_error(st, "%s", msg);
    }
    *out = rt;
    return HS_OK;
}

hs_status hs_finalize(hs_runtime *rt)
{
    return rt ? teardown(rt) : HS_OK;
}

hs_comm *hs_runtime_comm(const hs_runtime *rt, hs_group g)
{
    return rt && (unsigned)g < HS_GROUP_COUNT ? rt->comms[g] : NULL;
}

const hs_grid *hs_runtime_grid(const hs_runtime *rt)
{
    return &rt->grid;
}

int hs_runtime_rank(const hs_runtime *rt, hs_group g)
{
    return hs_grid_group_rank(&rt->grid, g, rt->world_rank);
}

int hs_runtime_size(const hs_runtime *rt, hs_group g)
{
    return hs_grid_group_size(&rt->grid, g);
}

void hs_runtime_node(const hs_runtime *rt, int *node, int *nodes, int *local_rank, int *local_size)
{
    if (node)
        *node = rt->node;
    if (nodes)
        *nodes = rt->nodes;
    if (local_rank)
        *local_rank = rt->local_rank;
    if (local_size)
        *local_size = rt->local_size;
}

const char *hs_runtime_binding(const hs_runtime *rt)
{
    return rt->binding;
}

const hs_cluster_spec *hs_runtime_cluster(const hs_runtime *rt)
{
    return &rt->cfg.cluster;
}
