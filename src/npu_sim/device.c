/* NPU device lifetime, its spec and mode. */
#include "npu_sim/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes a device with an empty HBM and a default stream at time 0. */
hs_status hs_npu_new(const hs_npu_spec *spec, hs_npu_mode mode, hs_npu **out)
{
    if (!spec || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_new: NULL argument");
    *out = NULL;
    if (mode != HS_NPU_EXECUTE && mode != HS_NPU_ESTIMATE)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_new: unknown mode %d", (int)mode);
    hs_status st = hs_npu_spec_validate(spec);
    if (st != HS_OK)
        return st;
    hs_npu *d = calloc(1, sizeof *d);
    if (!d)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_new: %zu bytes", sizeof *d);
    d->spec = *spec;
    d->mode = mode;
    hs_npu_hbm_init(&d->hbm, (size_t)spec->hbm_bytes);
    d->default_stream.device = d;
    d->default_stream.handle = (hs_device){HS_DEVICE_NPU, d, &d->default_stream};
    d->next_stream_id = 1;
    const char *tc = getenv("HS_NPU_TIMING_CACHE");
    d->timing_cache = !(tc && strcmp(tc, "0") == 0);
    *out = d;
    return HS_OK;
}

/* Writes an active trace, releases launch state, HBM and the device. */
void hs_npu_free(hs_npu *d)
{
    if (!d)
        return;
    if (d->trace && hs_npu_trace_stop(d) != HS_OK)
        hs_log(HS_LOG_WARN, "NPU %s: trace not written: %s", d->spec.name, hs_last_error());
    if (d->launch_state)
        hs_npu_launch_state_free(d->launch_state);
    hs_npu_hbm_release(&d->hbm);
    free(d);
}

/* The spec the device was made with. */
const hs_npu_spec *hs_npu_spec_of(const hs_npu *d)
{
    return &d->spec;
}

/* Execute or estimate. */
hs_npu_mode hs_npu_mode_of(const hs_npu *d)
{
    return d->mode;
}

/* "npu<index>": the process of the device's stream and counter tracks. */
void hs_npu_process_name(const hs_npu *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "npu%d", d->index);
}

/* Turns the kernel timing cache on or off. */
void hs_npu_set_timing_cache(hs_npu *d, int enabled)
{
    if (d)
        d->timing_cache = enabled != 0;
}

/* Launches served by the timing cache and launches simulated. */
void hs_npu_timing_cache_stats(const hs_npu *d, uint64_t *hits, uint64_t *misses)
{
    if (hits)
        *hits = d ? d->cache_hits : 0;
    if (misses)
        *misses = d ? d->cache_misses : 0;
}
