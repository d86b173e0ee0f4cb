/* The start-up layout print (hs_runtime_config.verbose): the grid, which
 * world ranks form each group, and each rank's node and binding. Rank 0
 * prints; the others send it their host name and binding. */
#include "comm/comm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS_SHOWN 16
#define LINE 160

static void print_groups(const hs_grid *g, hs_group grp)
{
    int size = hs_grid_group_size(g, grp), shown = 0, total = g->world / size;
    int *ranks = malloc((size_t)size * sizeof *ranks);
    if (!ranks)
        return;
    printf("[hs] %-5s groups (%d of size %d):", hs_group_name(grp), total, size);
    for (int r = 0; r < g->world && shown < MAX_GROUPS_SHOWN; r++) {
        if (hs_grid_group_rank(g, grp, r) != 0)
            continue;
        hs_grid_group_ranks(g, grp, r, ranks);
        printf(" [");
        for (int i = 0; i < size; i++)
            printf(i ? " %d" : "%d", ranks[i]);
        printf("]");
        shown++;
    }
    printf(shown < total ? " ...\n" : "\n");
    free(ranks);
}

hs_status hs_layout_print(hs_runtime *rt)
{
    int world = rt->grid.world, me = rt->world_rank;
    char mine[2 * LINE], host[MPI_MAX_PROCESSOR_NAME] = "";
    int hlen = 0;
    MPI_Get_processor_name(host, &hlen);
    snprintf(mine, sizeof mine, "%.*s: %s", LINE - 8, host, rt->binding);
    char *all = me == 0 ? malloc((size_t)world * sizeof mine) : NULL;
    if (me == 0 && !all)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "comm: layout table");
    int rc = MPI_Gather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine, MPI_CHAR, 0, rt->world);
    if (rc != MPI_SUCCESS) {
        free(all);
        return hs_mpi_error(rc, "MPI_Gather (layout)");
    }
    if (me != 0)
        return HS_OK;
    const hs_grid *g = &rt->grid;
    printf("[hs] grid: world %d = tp %d x cp %d x dp %d x pp %d (ep %d over dp x cp), ranks ordered tp-cp-dp-pp, "
           "%d node%s\n",
           world, g->tp, g->cp, g->dp, g->pp, g->ep, rt->nodes, rt->nodes == 1 ? "" : "s");
    for (int grp = HS_GROUP_TP; grp < HS_GROUP_COUNT; grp++)
        print_groups(g, (hs_group)grp);
    for (int r = 0; r < world; r++)
        printf("[hs] rank %d: node %d (%s); tp %d cp %d dp %d pp %d ep %d\n", r, rt->node_of[r],
               all + (size_t)r * sizeof mine, hs_grid_group_rank(g, HS_GROUP_TP, r),
               hs_grid_group_rank(g, HS_GROUP_CP, r), hs_grid_group_rank(g, HS_GROUP_DP, r),
               hs_grid_group_rank(g, HS_GROUP_PP, r), hs_grid_group_rank(g, HS_GROUP_EP, r));
    fflush(stdout);
    free(all);
    return HS_OK;
}
