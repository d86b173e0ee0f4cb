/* The DP bucket plan: whole tensors grouped from the end of the flat
 * gradient buffer, the order the backward finishes them. */
#include "parallel/dp_plan.h"

#include "core/try.h"

hs_status hs_dp_plan_buckets(const int64_t *numel, int n_tensors, size_t elem_bytes, size_t bucket_bytes,
                             hs_dp_bucket *out, int *n_buckets)
{
    if (!numel || !out || !n_buckets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "dp buckets: NULL argument");
    if (n_tensors < 1 || elem_bytes == 0 || bucket_bytes == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "dp buckets: n_tensors=%d must be >= 1, elem_bytes=%zu and bucket_bytes=%zu > 0", n_tensors,
                        elem_bytes, bucket_bytes);
    int64_t total = 0;
    for (int i = 0; i < n_tensors; i++) {
        if (numel[i] < 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "dp buckets: tensor %d has %lld elements", i,
                            (long long)numel[i]);
        total += numel[i];
    }
    /* Walk from the last tensor down; `end` is the open bucket's end. */
    const int64_t cap = (int64_t)(bucket_bytes / elem_bytes) > 0 ? (int64_t)(bucket_bytes / elem_bytes) : 1;
    int nb = 0, hi = n_tensors; /* tensors [i + 1, hi) are in the open bucket */
    int64_t end = total, start = total;
    for (int i = n_tensors - 1; i >= 0; i--) {
        if (hi > i + 1 && end - (start - numel[i]) > cap) { /* i does not fit: close the open bucket */
            out[nb++] = (hs_dp_bucket){start, end - start, i + 1, hi - (i + 1)};
            end = start;
            hi = i + 1;
        }
        start -= numel[i];
    }
    out[nb++] = (hs_dp_bucket){start, end - start, 0, hi};
    *n_buckets = nb;
    return HS_OK;
}

hs_status hs_dp_plan(const hs_dp_config *cfg, const int64_t *numel, int n_tensors, hs_dp_bucket *out,
                     int *n_buckets)
{
    if (!cfg->first_alone || n_tensors < 2)
        return hs_dp_plan_buckets(numel, n_tensors, sizeof(float), cfg->bucket_bytes, out, n_buckets);
    HS_TRY(hs_dp_plan_buckets(numel + 1, n_tensors - 1, sizeof(float), cfg->bucket_bytes, out, n_buckets));
    for (int b = 0; b < *n_buckets; b++) {
        out[b].offset += numel[0];
        out[b].first_tensor++;
    }
    out[(*n_buckets)++] = (hs_dp_bucket){0, numel[0], 0, 1};
    return HS_OK;
}
