/* HCCL's alpha-beta-gamma cost model (../shared/NPU_FACTS.md, formulas in
 * docs/comm.md): p NPUs, n bytes, alpha per step, beta per byte on a link,
 * gamma per byte reduced. Inside a node HCCL runs its full-mesh algorithm
 * over HCCS; between nodes the cheaper of ring and recursive
 * halving-doubling over RoCE; a group spanning nodes with several NPUs on
 * each runs hierarchically. */
#include "comm/comm_internal.h"

#include <math.h>
#include <stdio.h>

/* Defaults: HCCS 28 GB/s each way per pair, RoCE 200 Gb/s = 25 GB/s per
 * NPU. The latencies are assumptions (NPU_FACTS has none). gamma: a
 * reduction reads two bytes and writes one per byte from HBM at 1.6 TB/s. */
hs_cluster_spec hs_cluster_spec_default(void)
{
    return (hs_cluster_spec){
        .npus_per_node = 8,
        .intra_alpha_s = 5e-6,
        .intra_beta_s = 1.0 / 28e9,
        .inter_alpha_s = 15e-6,
        .inter_beta_s = 1.0 / 25e9,
        .gamma_s = 3.0 / 1.6e12,
    };
}

hs_status hs_cluster_spec_validate(const hs_cluster_spec *s)
{
    if (!s)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "cluster spec: NULL");
    if (s->npus_per_node < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "cluster spec: npus_per_node=%d must be >= 1", s->npus_per_node);
    const double v[5] = {s->intra_alpha_s, s->intra_beta_s, s->inter_alpha_s, s->inter_beta_s, s->gamma_s};
    static const char *const names[5] = {"intra_alpha_s", "intra_beta_s", "inter_alpha_s", "inter_beta_s", "gamma_s"};
    for (int i = 0; i < 5; i++)
        if (!(v[i] >= 0) || !isfinite(v[i]))
            return hs_error(HS_ERR_INVALID_ARGUMENT, "cluster spec: %s=%g must be finite and >= 0", names[i], v[i]);
    return HS_OK;
}

typedef struct link {
    double a, b;
} link;

static double log2i(int p)
{
    int k = 0;
    while ((1 << (k + 1)) <= p)
        k++;
    return k;
}

/* Ring: (p-1) steps of n/p each way. */
static double ring(hs_coll c, int p, double n, link l, double g)
{
    double f = (double)(p - 1) / p * n;
    switch (c) {
    case HS_COLL_REDUCE_SCATTER: return (p - 1) * l.a + f * l.b + f * g;
    case HS_COLL_ALLGATHER: return (p - 1) * l.a + f * l.b;
    default: return 2 * (p - 1) * l.a + 2 * f * l.b + f * g; /* all-reduce */
    }
}

/* Full mesh: one step on all p-1 links at once. */
static double mesh(hs_coll c, int p, double n, link l, double g)
{
    double f = (double)(p - 1) / p * n;
    switch (c) {
    case HS_COLL_REDUCE_SCATTER: return l.a + n / p * l.b + f * g;
    case HS_COLL_ALLGATHER: return l.a + n / p * l.b;
    default: return 2 * l.a + 2 * n / p * l.b + f * g;
    }
}

/* Recursive halving-doubling over the largest power of two q <= p; the
 * other p - q ranks fold in before (their whole vector, reduced) and get
 * the result after. */
static double hd(hs_coll c, int p, double n, link l, double g)
{
    int q = 1 << (int)log2i(p);
    double k = log2i(q), f = (double)(q - 1) / q * n, extra = 0;
    int fold = q != p;
    switch (c) {
    case HS_COLL_REDUCE_SCATTER:
        if (fold)
            extra = l.a + n * l.b + n * g + l.a + n / p * l.b;
        return k * l.a + f * l.b + f * g + extra;
    case HS_COLL_ALLGATHER:
        if (fold)
            extra = l.a + n / p * l.b + l.a + n * l.b;
        return k * l.a + f * l.b + extra;
    default:
        if (fold)
            extra = 2 * l.a + 2 * n * l.b + n * g;
        return 2 * k * l.a + 2 * f * l.b + f * g + extra;
    }
}

static double inter(hs_coll c, int p, double n, link l, double g)
{
    if (p == 1)
        return 0;
    double a = ring(c, p, n, l, g), b = hd(c, p, n, l, g);
    return a < b ? a : b;
}

/* Reduce-scatter, all-gather and all-reduce over k NPUs per node on m
 * nodes: intra-node mesh RS, inter-node RS/AR/AG on n/k, intra-node mesh AG. */
static double reduction_family(const hs_cluster_spec *s, hs_coll c, int p, int k, double n)
{
    link in = {s->intra_alpha_s, s->intra_beta_s}, out = {s->inter_alpha_s, s->inter_beta_s};
    int m = p / k;
    double g = s->gamma_s;
    if (p == 1)
        return 0;
    if (m == 1)
        return mesh(c, p, n, in, g);
    if (k == 1)
        return inter(c, p, n, out, g);
    switch (c) {
    case HS_COLL_REDUCE_SCATTER: return mesh(c, k, n, in, g) + inter(c, m, n / k, out, g);
    case HS_COLL_ALLGATHER: return inter(c, m, n / k, out, g) + mesh(c, k, n, in, g);
    default:
        return mesh(HS_COLL_REDUCE_SCATTER, k, n, in, g) + inter(HS_COLL_ALLREDUCE, m, n / k, out, g) +
               mesh(HS_COLL_ALLGATHER, k, n, in, g);
    }
}

static hs_status check_shape(const char *fn, const hs_cluster_spec *s, int p, int per_node, double *seconds)
{
    HS_TRY(hs_cluster_spec_validate(s));
    if (!seconds)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL output", fn);
    if (p < 1 || per_node < 1 || per_node > p || p % per_node != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: per_node=%d must divide the group size p=%d", fn, per_node, p);
    return HS_OK;
}

/* One step of a pairwise exchange between NPUs i and j. */
static link pair_link(const hs_cluster_spec *s, int per_node, int i, int j)
{
    if (i / per_node == j / per_node)
        return (link){s->intra_alpha_s, s->intra_beta_s};
    return (link){s->inter_alpha_s, s->inter_beta_s};
}

/* Pairwise all-to-all-v: sum over k of the slowest pair (i, i+k). */
static double pairwise(const hs_cluster_spec *s, int p, int per_node, const double *bytes, double uniform)
{
    double t = 0;
    for (int k = 1; k < p; k++) {
        double a = 0, b = 0;
        for (int i = 0; i < p; i++) {
            int j = (i + k) % p;
            link l = pair_link(s, per_node, i, j);
            double n = bytes ? bytes[(size_t)i * p + j] : uniform;
            a = l.a > a ? l.a : a;
            b = n * l.b > b ? n * l.b : b;
        }
        t += a + b;
    }
    return t;
}

hs_status hs_comm_cost_alltoallv(const hs_cluster_spec *s, int p, int per_node, const double *bytes, double *seconds)
{
    HS_TRY(check_shape("hs_comm_cost_alltoallv", s, p, per_node, seconds));
    if (!bytes)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_cost_alltoallv: NULL byte matrix");
    for (size_t i = 0; i < (size_t)p * (size_t)p; i++)
        if (!(bytes[i] >= 0) || !isfinite(bytes[i]))
            return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_cost_alltoallv: bytes[%zu]=%g", i, bytes[i]);
    *seconds = pairwise(s, p, per_node, bytes, 0);
    return HS_OK;
}

hs_status hs_comm_cost(const hs_cluster_spec *s, hs_coll c, int p, int per_node, double n, double *seconds)
{
    HS_TRY(check_shape("hs_comm_cost", s, p, per_node, seconds));
    if (!(n >= 0) || !isfinite(n))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_cost: bytes n=%g must be finite and >= 0", n);
    int one_node = per_node == p;
    link in = {s->intra_alpha_s, s->intra_beta_s}, out = {s->inter_alpha_s, s->inter_beta_s};
    switch (c) {
    case HS_COLL_ALLREDUCE:
    case HS_COLL_REDUCE_SCATTER:
    case HS_COLL_ALLGATHER: *seconds = reduction_family(s, c, p, per_node, n); break;
    /* scatter then all-gather; a scatter moves what an all-gather does */
    case HS_COLL_BROADCAST: *seconds = 2 * reduction_family(s, HS_COLL_ALLGATHER, p, per_node, n); break;
    case HS_COLL_ALLTOALL:
        *seconds = p == 1 ? 0 : one_node ? in.a + n / p * in.b : pairwise(s, p, per_node, NULL, n / p);
        break;
    case HS_COLL_SEND:
    case HS_COLL_RECV: *seconds = one_node ? in.a + n * in.b : out.a + n * out.b; break;
    case HS_COLL_BARRIER:
        /* one mesh step in a node; else gather in the node, dissemination
         * between nodes, release in the node */
        if (p == 1 || one_node)
            *seconds = p == 1 ? 0 : in.a;
        else
            *seconds = (per_node > 1 ? 2 * in.a : 0) + ceil(log2((double)p / per_node)) * out.a;
        break;
    default:
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_comm_cost: %s needs hs_comm_cost_alltoallv", hs_coll_name(c));
    }
    return HS_OK;
}
