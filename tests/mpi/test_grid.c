/* The process grid on 4 ranks: for tp2, pp2, tp2 x dp2, cp2 x dp2 with
 * ep2, tp4, ... every group's communicator holds exactly the world ranks
 * the grid arithmetic names, in order, and reduces over them, and
 * hs_comm_advance times it on the simulated cluster; the verbose layout
 * print; bad factorisations fail on every rank with a message.
 * The test runs MPI itself and hands hs_init its communicator (adoption),
 * so it can build one runtime after another. */
#include "mpi_check.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct layout {
    int tp, cp, dp, pp, ep;
} layout;

static MPI_Comm world_comm;

static hs_runtime *start(layout l, int verbose, hs_status *st)
{
    hs_runtime_config cfg = hs_runtime_config_default();
    cfg.tp = l.tp;
    cfg.cp = l.cp;
    cfg.dp = l.dp;
    cfg.pp = l.pp;
    cfg.ep = l.ep;
    cfg.verbose = verbose;
    cfg.mpi_comm = &world_comm;
    hs_runtime *rt = NULL;
    *st = hs_init(NULL, NULL, &cfg, &rt);
    return rt;
}

/* hs_comm_advance times the group on the runtime's simulated cluster. */
static void check_advance(hs_runtime *rt, hs_comm *c, hs_npu_stream *st)
{
    const hs_cluster_spec *cl = hs_runtime_cluster(rt);
    int me = hs_runtime_rank(rt, HS_GROUP_WORLD);
    int k = hs_cluster_group_per_node(cl, hs_runtime_grid(rt), hs_comm_group(c), me);
    double want = 0, got = 0, t0 = hs_npu_stream_time(st);
    CHECK_OK(hs_comm_cost(cl, HS_COLL_ALLREDUCE, hs_comm_size(c), k, 1 << 20, &want));
    CHECK_OK(hs_comm_advance(c, st, HS_COLL_ALLREDUCE, 1 << 20, &got));
    CHECK(got == want && hs_npu_stream_time(st) == t0 + want, "%s: advance %g s, cost %g s",
          hs_group_name(hs_comm_group(c)), got, want);
}

static void check_groups(hs_runtime *rt)
{
    const hs_grid *g = hs_runtime_grid(rt);
    int me = hs_runtime_rank(rt, HS_GROUP_WORLD);
    hs_npu_spec spec;
    hs_npu *dev = NULL;
    hs_npu_stream *st = NULL;
    CHECK_OK(hs_npu_spec_preset("test", &spec));
    CHECK_OK(hs_npu_new(&spec, HS_NPU_ESTIMATE, &dev));
    CHECK_OK(hs_npu_stream_new(dev, &st));
    for (int grp = 0; grp < HS_GROUP_COUNT; grp++) {
        hs_comm *c = hs_runtime_comm(rt, (hs_group)grp);
        int p = hs_comm_size(c);
        CHECK(p == hs_grid_group_size(g, (hs_group)grp), "%s size %d", hs_group_name((hs_group)grp), p);
        CHECK(hs_comm_rank(c) == hs_runtime_rank(rt, (hs_group)grp), "%s rank", hs_group_name((hs_group)grp));
        CHECK(hs_comm_group(c) == (hs_group)grp, "group id");
        int32_t *got = malloc((size_t)p * sizeof *got), mine = me;
        int *want = malloc((size_t)p * sizeof *want);
        CHECK_OK(hs_grid_group_ranks(g, (hs_group)grp, me, want));
        CHECK_OK(hs_comm_allgather(c, &mine, got, (size_t)p, HS_INT32));
        int64_t sum = me, want_sum = 0;
        for (int i = 0; i < p; i++) {
            CHECK(got[i] == want[i], "%s member %d is world %d, grid says %d", hs_group_name((hs_group)grp), i,
                  got[i], want[i]);
            want_sum += want[i];
        }
        CHECK_OK(hs_comm_allreduce(c, &sum, &sum, 1, HS_INT64, HS_REDUCE_SUM));
        CHECK(sum == want_sum, "%s sum of world ranks %lld, want %lld", hs_group_name((hs_group)grp),
              (long long)sum, (long long)want_sum);
        check_advance(rt, c, st);
        free(got);
        free(want);
    }
    hs_npu_stream_free(st);
    hs_npu_free(dev);
}

/* Rank 0 runs hs_init with verbose while its stdout goes to a file. */
static void check_verbose(void)
{
    int me;
    MPI_Comm_rank(world_comm, &me);
    FILE *tmp = me == 0 ? tmpfile() : NULL;
    int saved = -1;
    if (tmp) {
        fflush(stdout);
        saved = dup(1);
        dup2(fileno(tmp), 1);
    }
    hs_status st;
    hs_runtime *rt = start((layout){2, 1, 2, 1, 1}, 1, &st);
    CHECK(st == HS_OK, "verbose init: %s", hs_last_error());
    if (tmp) {
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
        char text[8192] = "";
        rewind(tmp);
        size_t n = fread(text, 1, sizeof text - 1, tmp);
        text[n] = '\0';
        fclose(tmp);
        fputs(text, stdout);
        CHECK(strstr(text, "world 4 = tp 2 x cp 1 x dp 2 x pp 1") != NULL, "grid line missing");
        CHECK(strstr(text, "tp    groups (2 of size 2): [0 1] [2 3]") != NULL, "tp groups missing");
        CHECK(strstr(text, "dp    groups (2 of size 2): [0 2] [1 3]") != NULL, "dp groups missing");
        CHECK(strstr(text, "rank 3: node 0") != NULL, "rank 3 line missing");
    }
    int node, nodes, local, local_size;
    hs_runtime_node(rt, &node, &nodes, &local, &local_size);
    CHECK(nodes == 1 && node == 0 && local == me && local_size == 4, "node %d/%d local %d/%d", node, nodes, local,
          local_size);
    CHECK(hs_runtime_binding(rt)[0] != '\0', "binding line empty");
    CHECK_OK(hs_finalize(rt));
}

static void check_bad(layout l, const char *needle)
{
    hs_status st;
    hs_runtime *rt = start(l, 0, &st);
    CHECK(st == HS_ERR_INVALID_ARGUMENT && rt == NULL, "bad grid tp=%d cp=%d dp=%d pp=%d ep=%d: %s", l.tp, l.cp,
          l.dp, l.pp, l.ep, hs_status_str(st));
    CHECK(strstr(hs_last_error(), needle) != NULL, "message '%s' lacks '%s'", hs_last_error(), needle);
}

int main(int argc, char **argv)
{
    int level;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &level);
    world_comm = MPI_COMM_WORLD;
    MPI_Comm_rank(world_comm, &check_rank);
    static const layout good[] = {
        {2, 1, 0, 1, 1}, {1, 1, 0, 2, 1}, {2, 1, 2, 1, 1}, {4, 1, 0, 1, 1}, {1, 2, 2, 1, 2},
        {2, 2, 1, 1, 1}, {1, 1, 4, 1, 2}, {1, 1, 1, 4, 1}, {2, 1, 1, 2, 1}, {1, 2, 1, 2, 2},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        hs_status st;
        hs_runtime *rt = start(good[i], 0, &st);
        CHECK(st == HS_OK, "layout %zu: %s", i, hs_last_error());
        if (rt) {
            check_groups(rt);
            CHECK_OK(hs_finalize(rt));
        }
    }
    check_verbose();
    check_bad((layout){3, 1, 0, 1, 1}, "tp=3 x cp=1 x pp=1 = 3 does not divide the world size 4");
    check_bad((layout){2, 1, 3, 1, 1}, "= 6 does not equal the world size 4");
    check_bad((layout){1, 1, 4, 1, 3}, "ep=3 does not divide dp=4 x cp=1 = 4");
    check_bad((layout){0, 1, 0, 1, 1}, "must be >= 1");
    int total = check_failures;
    MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_INT, MPI_SUM, world_comm);
    if (check_rank == 0)
        printf("grid: %s (%d failed checks)\n", total ? "FAIL" : "ok", total);
    MPI_Finalize();
    return total != 0;
}
