/* Node locality (MPI_COMM_TYPE_SHARED) and rank-to-core binding (hwloc). */
#include "comm/comm_internal.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hs_status hs_topo_nodes(hs_runtime *rt)
{
    MPI_Comm node;
    int rc = MPI_Comm_split_type(rt->world, MPI_COMM_TYPE_SHARED, rt->world_rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS)
        return hs_mpi_error(rc, "MPI_Comm_split_type");
    MPI_Comm_rank(node, &rt->local_rank);
    MPI_Comm_size(node, &rt->local_size);
    int leader = rt->world_rank, world = rt->grid.world;
    rc = MPI_Allreduce(MPI_IN_PLACE, &leader, 1, MPI_INT, MPI_MIN, node);
    MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS)
        return hs_mpi_error(rc, "MPI_Allreduce (node leader)");
    int *leaders = malloc((size_t)world * sizeof *leaders);
    rt->node_of = malloc((size_t)world * sizeof *rt->node_of);
    if (!leaders || !rt->node_of) {
        free(leaders);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: node table of %d ranks", world);
    }
    rc = MPI_Allgather(&leader, 1, MPI_INT, leaders, 1, MPI_INT, rt->world);
    if (rc != MPI_SUCCESS) {
        free(leaders);
        return hs_mpi_error(rc, "MPI_Allgather (node leaders)");
    }
    /* A node's number: how many nodes have a lower leader. Leaders are
     * their own node's first rank, so counting leaders below it works. */
    rt->nodes = 0;
    for (int r = 0; r < world; r++) {
        int below = 0;
        for (int l = 0; l < world; l++)
            below += leaders[l] == l && l < leaders[r];
        rt->node_of[r] = below;
        rt->nodes += leaders[r] == r;
    }
    rt->node = rt->node_of[rt->world_rank];
    free(leaders);
    return HS_OK;
}

/* Kernel threads follow the binding unless HS_NUM_THREADS says otherwise. */
static void set_threads(int n)
{
    const char *e = getenv("HS_NUM_THREADS");
    if (!(e && *e))
        hs_set_num_threads(n > 0 ? n : 1);
}

/* Binds the process (all its threads) to an equal share of the node's
 * cores: local rank i gets cores [i*k, (i+1)*k), k = cores / ranks on the
 * node. With more ranks than cores nothing is bound. */
void hs_topo_bind(hs_runtime *rt)
{
    const char *env = getenv("HS_BIND");
    if (!rt->cfg.bind || (env && strcmp(env, "none") == 0)) {
        snprintf(rt->binding, sizeof rt->binding, "not bound (%s)", rt->cfg.bind ? "HS_BIND=none" : "bind = 0");
        return;
    }
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0) {
        snprintf(rt->binding, sizeof rt->binding, "not bound (hwloc could not read the topology)");
        hs_log(HS_LOG_WARN, "rank %d: %s", rt->world_rank, rt->binding);
        return;
    }
    int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (cores < rt->local_size) {
        snprintf(rt->binding, sizeof rt->binding, "not bound (%d ranks on this node share %d cores)", rt->local_size,
                 cores);
        hs_log(HS_LOG_INFO, "rank %d: %s", rt->world_rank, rt->binding);
        set_threads(1);
        hwloc_topology_destroy(topo);
        return;
    }
    int k = cores / rt->local_size;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    for (int i = rt->local_rank * k; set && i < (rt->local_rank + 1) * k; i++)
        hwloc_bitmap_or(set, set, hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)i)->cpuset);
    if (set && hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0) {
        char pus[96];
        hwloc_bitmap_list_snprintf(pus, sizeof pus, set);
        snprintf(rt->binding, sizeof rt->binding, "bound to cores %d-%d (PUs %s)", rt->local_rank * k,
                 (rt->local_rank + 1) * k - 1, pus);
        set_threads(hwloc_bitmap_weight(set));
    } else {
        snprintf(rt->binding, sizeof rt->binding, "not bound (hwloc_set_cpubind failed)");
        hs_log(HS_LOG_WARN, "rank %d: %s", rt->world_rank, rt->binding);
    }
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
}
