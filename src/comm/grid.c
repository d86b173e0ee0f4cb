/* The process grid: world = TP x CP x DP x PP, ranks ordered tp-cp-dp-pp
 * (TP innermost), with EP folded over DATA = DP x CP. Pure arithmetic: the
 * MPI split in runtime.c and the layout print use the same colours and keys. */
#include "comm/comm_internal.h"

static const char *const group_names[HS_GROUP_COUNT] = {"world", "tp", "cp", "dp", "pp", "data", "ep", "edp"};

const char *hs_group_name(hs_group g)
{
    return (unsigned)g < HS_GROUP_COUNT ? group_names[g] : "invalid";
}

hs_status hs_grid_make(int world, int tp, int cp, int dp, int pp, int ep, hs_grid *out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "grid: NULL output");
    if (world < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "grid: world size %d must be >= 1", world);
    if (tp < 1 || cp < 1 || pp < 1 || ep < 1 || dp < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "grid: tp=%d cp=%d pp=%d ep=%d must be >= 1 and dp=%d >= 0 (0 derives it)", tp, cp, pp, ep,
                        dp);
    long long inner = (long long)tp * cp * pp;
    if (dp == 0) {
        if (world % inner != 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT,
                            "grid: tp=%d x cp=%d x pp=%d = %lld does not divide the world size %d", tp, cp, pp,
                            inner, world);
        dp = (int)(world / inner);
    }
    if (inner * dp != world)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "grid: tp=%d x cp=%d x dp=%d x pp=%d = %lld does not equal the world size %d", tp, cp, dp,
                        pp, inner * dp, world);
    if ((dp * cp) % ep != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "grid: ep=%d does not divide dp=%d x cp=%d = %d", ep, dp, cp,
                        dp * cp);
    *out = (hs_grid){.world = world, .tp = tp, .cp = cp, .dp = dp, .pp = pp, .ep = ep};
    return HS_OK;
}

int hs_grid_group_size(const hs_grid *g, hs_group grp)
{
    switch (grp) {
    case HS_GROUP_WORLD: return g->world;
    case HS_GROUP_TP: return g->tp;
    case HS_GROUP_CP: return g->cp;
    case HS_GROUP_DP: return g->dp;
    case HS_GROUP_PP: return g->pp;
    case HS_GROUP_DATA: return g->dp * g->cp;
    case HS_GROUP_EP: return g->ep;
    case HS_GROUP_EDP: return g->dp * g->cp / g->ep;
    default: return 1;
    }
}

/* Coordinates of a world rank. */
typedef struct coords {
    int t, c, d, p, data;
} coords;

static coords coords_of(const hs_grid *g, int r)
{
    coords k;
    k.t = r % g->tp;
    k.c = (r / g->tp) % g->cp;
    k.d = (r / (g->tp * g->cp)) % g->dp;
    k.p = r / (g->tp * g->cp * g->dp);
    k.data = k.c + g->cp * k.d;
    return k;
}

int hs_grid_group_rank(const hs_grid *g, hs_group grp, int rank)
{
    coords k = coords_of(g, rank);
    switch (grp) {
    case HS_GROUP_WORLD: return rank;
    case HS_GROUP_TP: return k.t;
    case HS_GROUP_CP: return k.c;
    case HS_GROUP_DP: return k.d;
    case HS_GROUP_PP: return k.p;
    case HS_GROUP_DATA: return k.data;
    case HS_GROUP_EP: return k.data % g->ep;
    case HS_GROUP_EDP: return k.data / g->ep;
    default: return 0;
    }
}

/* Ranks with equal colour form one group: the colour numbers the
 * coordinates the group does not run over. */
int hs_grid_color(const hs_grid *g, hs_group grp, int rank)
{
    coords k = coords_of(g, rank);
    switch (grp) {
    case HS_GROUP_TP: return rank / g->tp;
    case HS_GROUP_CP: return k.t + g->tp * (k.d + g->dp * k.p);
    case HS_GROUP_DP: return k.t + g->tp * (k.c + g->cp * k.p);
    case HS_GROUP_PP: return rank % (g->tp * g->cp * g->dp);
    case HS_GROUP_DATA: return k.t + g->tp * k.p;
    case HS_GROUP_EP: return k.t + g->tp * (k.p + g->pp * (k.data / g->ep));
    case HS_GROUP_EDP: return k.t + g->tp * (k.p + g->pp * (k.data % g->ep));
    default: return 0;
    }
}

hs_status hs_grid_group_ranks(const hs_grid *g, hs_group grp, int rank, int *ranks)
{
    if (!g || !ranks)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "grid group ranks: NULL argument");
    if ((unsigned)grp >= HS_GROUP_COUNT)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "grid group ranks: group %d out of range", (int)grp);
    if (rank < 0 || rank >= g->world)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "grid group ranks: rank %d outside the world of %d", rank,
                        g->world);
    int color = hs_grid_color(g, grp, rank);
    for (int r = 0; r < g->world; r++)
        if (hs_grid_color(g, grp, r) == color)
            ranks[hs_grid_group_rank(g, grp, r)] = r;
    return HS_OK;
}
