/* Pipeline schedules (include/hyperspeed/pipeline.h): each rank's ordered
 * forward and backward operations.
 *
 * Interleaved order (Megatron-LM's): a rank's forward passes run over
 * k = 0 .. m v - 1 with
 *     chunk(k) = (k / p) mod v,   micro(k) = (k / (p v)) p + k mod p
 * (rounds of p micro-batches through each chunk in turn) and its backward
 * passes the same with the chunks reversed. The rank first runs
 *     warm-up = min(m v, (p - rank - 1) * 2 + (v - 1) p)
 * forwards, then one forward and one backward in turn, then the remaining
 * backwards. With v = 1 this is 1F1B (warm-up p - rank - 1). */
#include "hyperspeed/pipeline.h"

#include <string.h>

static const char *const names[] = {"gpipe", "1f1b", "interleaved"};

const char *hs_pp_schedule_name(hs_pp_schedule s)
{
    return s >= HS_PP_GPIPE && s <= HS_PP_INTERLEAVED ? names[s] : "?";
}

hs_status hs_pp_schedule_parse(const char *name, hs_pp_schedule *out)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (hs_pp_schedule)i;
            return HS_OK;
        }
    return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown pipeline schedule '%s' (known: gpipe, 1f1b, interleaved)",
                    name ? name : "(null)");
}

hs_status hs_pp_schedule_check(hs_pp_schedule s, int stages, int micro_batches, int virtual_stages)
{
    if (s < HS_PP_GPIPE || s > HS_PP_INTERLEAVED)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "pipeline schedule %d is not gpipe, 1f1b or interleaved", (int)s);
    if (stages < 1 || micro_batches < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "pipeline: %d stages and %d micro-batches (both must be >= 1)", stages,
                        micro_batches);
    if (s != HS_PP_INTERLEAVED && virtual_stages != 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "pipeline: %d virtual stages need the interleaved schedule (%s has one chunk per rank)",
                        virtual_stages, names[s]);
    if (s == HS_PP_1F1B && micro_batches < stages)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "1f1b with %d micro-batches on %d stages: it needs at least as many micro-batches as stages "
                        "(raise --micro-batches or use --schedule gpipe)",
                        micro_batches, stages);
    if (s == HS_PP_INTERLEAVED && virtual_stages < 2)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "interleaved schedule with %d virtual stages (it needs >= 2)",
                        virtual_stages);
    if (s == HS_PP_INTERLEAVED && micro_batches % stages != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "interleaved schedule with %d micro-batches on %d stages: the micro-batches must be a multiple "
                        "of the stages",
                        micro_batches, stages);
    return HS_OK;
}

/* The k-th forward (backward) of an interleaved rank. */
static hs_pp_op interleaved_op(int k, int p, int v, int backward)
{
    const int c = (k / p) % v;
    return (hs_pp_op){backward, (k / (p * v)) * p + k % p, backward ? v - 1 - c : c};
}

hs_status hs_pp_schedule_ops(hs_pp_schedule s, int stages, int micro_batches, int virtual_stages, int rank,
                             hs_pp_op *ops, int cap, int *count)
{
    hs_status st = hs_pp_schedule_check(s, stages, micro_batches, virtual_stages);
    if (st != HS_OK)
        return st;
    const int p = stages, m = micro_batches, v = virtual_stages, total = m * v;
    if (rank < 0 || rank >= p)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "pipeline rank %d outside 0..%d", rank, p - 1);
    if (!ops || !count || cap < 2 * total)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "pipeline schedule: room for %d operations given, %d needed", cap,
                        2 * total);
    int n = 0;
    if (s == HS_PP_GPIPE) {
        for (int i = 0; i < m; i++)
            ops[n++] = (hs_pp_op){0, i, 0};
        for (int i = 0; i < m; i++)
            ops[n++] = (hs_pp_op){1, i, 0};
        *count = n;
        return HS_OK;
    }
    int warm = (p - rank - 1) * 2 + (v - 1) * p;
    if (v == 1)
        warm = p - rank - 1;
    warm = warm < total ? warm : total;
    int f = 0, b = 0;
    while (f < warm)
        ops[n++] = interleaved_op(f++, p, v, 0);
    while (f < total) {
        ops[n++] = interleaved_op(f++, p, v, 0);
        ops[n++] = interleaved_op(b++, p, v, 1);
    }
    while (b < total)
        ops[n++] = interleaved_op(b++, p, v, 1);
    *count = n;
    return HS_OK;
}

double hs_pp_bubble_theory(hs_pp_schedule s, int stages, int micro_batches, int virtual_stages)
{
    if (stages <= 1 || micro_batches < 1)
        return 0.0;
    const double v = s == HS_PP_INTERLEAVED && virtual_stages > 1 ? virtual_stages : 1;
    return (stages - 1) / (v * micro_batches);
}
