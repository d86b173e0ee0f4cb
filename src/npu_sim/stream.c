/* Streams with simulated clocks, events, and host<->device copies over
 * the PCIe model. */
#include "npu_sim/device.h"
#include "npu_sim/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A new stream whose clock starts at the default stream's current time. */
hs_status hs_npu_stream_new(hs_npu *d, hs_npu_stream **out)
{
    if (!d || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_stream_new: NULL argument");
    hs_npu_stream *s = calloc(1, sizeof *s);
    if (!s)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_stream_new: %zu bytes", sizeof *s);
    s->device = d;
    s->handle = (hs_device){HS_DEVICE_NPU, d, s};
    s->clock = d->default_stream.clock;
    s->id = d->next_stream_id++;
    *out = s;
    return HS_OK;
}

/* Frees a stream made by hs_npu_stream_new (the default stream, owned by
 * its device, and NULL are ignored). */
void hs_npu_stream_free(hs_npu_stream *s)
{
    if (!s || s == &s->device->default_stream)
        return;
    free(s);
}

/* The device handle of stream s. */
hs_device *hs_npu_stream_device(hs_npu_stream *s)
{
    return s ? &s->handle : NULL;
}

/* The device handle of d's default stream. */
hs_device *hs_npu_device(hs_npu *d)
{
    return d ? &d->default_stream.handle : NULL;
}

hs_npu *hs_device_npu(const hs_device *dev)
{
    return dev && dev->kind == HS_DEVICE_NPU ? dev->npu : NULL;
}

hs_npu_stream *hs_device_stream(const hs_device *dev)
{
    return dev && dev->kind == HS_DEVICE_NPU ? dev->stream : NULL;
}

/* The device's default stream. */
hs_npu_stream *hs_npu_default_stream(hs_npu *d)
{
    return &d->default_stream;
}

/* When the stream's next work may start, in simulated seconds. */
double hs_npu_stream_time(const hs_npu_stream *s)
{
    return s->clock;
}

/* A new, unrecorded event. */
hs_status hs_npu_event_new(hs_npu *d, hs_npu_event **out)
{
    if (!d || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_event_new: NULL argument");
    hs_npu_event *e = calloc(1, sizeof *e);
    if (!e)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_event_new: %zu bytes", sizeof *e);
    e->device = d;
    *out = e;
    return HS_OK;
}

/* Frees an event (NULL is fine). */
void hs_npu_event_free(hs_npu_event *e)
{
    free(e);
}

/* Captures the stream's clock: the end of everything queued on it so far. */
void hs_npu_event_record(hs_npu_event *e, hs_npu_stream *s)
{
    e->time = s->clock;
    e->recorded = 1;
}

/* The stream's next work starts no earlier than the event (an event never
 * recorded does not delay it). */
void hs_npu_stream_wait(hs_npu_stream *s, const hs_npu_event *e)
{
    if (e->recorded && e->time > s->clock)
        s->clock = e->time;
}

/* Advances s by `seconds` (negative or NaN counts as 0), records a slice
 * with args on the row ("npu<index>", "stream<id>"), returns the start. */
double hs_npu_stream_advance_args(hs_npu_stream *s, const char *name, const char *category, double seconds,
                                  const hs_npu_trace_arg *args, int nargs)
{
    double start = s->clock;
    if (!(seconds > 0))
        seconds = 0;
    s->clock = start + seconds;
    if (hs_npu_tracing(s->device)) {
        char process[32], thread[32];
        hs_npu_process_name(s->device, process, sizeof process);
        snprintf(thread, sizeof thread, "stream%d", s->id);
        hs_npu_trace_slice_args(s->device, process, thread, name, category, start, seconds, args, nargs);
    }
    return start;
}

/* hs_npu_stream_advance_args without args. */
double hs_npu_stream_advance(hs_npu_stream *s, const char *name, const char *category, double seconds)
{
    return hs_npu_stream_advance_args(s, name, category, seconds, NULL, 0);
}

/* Checks a copy's arguments: the stream belongs to d, the device range is
 * inside one live allocation, the host pointer is set in execute mode. */
static hs_status check_copy(const char *fn, hs_npu *d, hs_npu_stream **s, const void *dev, const void *host,
                            size_t bytes)
{
    if (!d)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL device", fn);
    if (!*s)
        *s = &d->default_stream;
    if ((*s)->device != d)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: the stream belongs to another device", fn);
    if (bytes == 0)
        return HS_OK;
    if (!hs_npu_addr_valid(d, dev, bytes))
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "%s: device range [%p, +%zu B) is not inside one live allocation of NPU %s", fn, dev, bytes,
                        d->spec.name);
    if (!host && d->mode == HS_NPU_EXECUTE)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: NULL host pointer", fn);
    return HS_OK;
}

/* Accounts one PCIe transfer: latency + bytes / bandwidth on stream s. */
static void account_copy(hs_npu *d, hs_npu_stream *s, const char *name, size_t bytes)
{
    hs_npu_trace_arg arg = {"bytes", (double)bytes};
    hs_npu_stream_advance_args(s, name, "copy", d->spec.pcie_latency_s + (double)bytes / d->spec.pcie_bw, &arg, 1);
}

/* Host -> device copy. */
hs_status hs_npu_memcpy_h2d(hs_npu *d, hs_npu_stream *s, void *dst, const void *src, size_t bytes)
{
    hs_status st = check_copy("hs_npu_memcpy_h2d", d, &s, dst, src, bytes);
    if (st != HS_OK)
        return st;
    if (d->mode == HS_NPU_EXECUTE && bytes)
        memcpy(dst, src, bytes);
    account_copy(d, s, "memcpy_h2d", bytes);
    return HS_OK;
}

/* Device -> host copy. */
hs_status hs_npu_memcpy_d2h(hs_npu *d, hs_npu_stream *s, void *dst, const void *src, size_t bytes)
{
    hs_status st = check_copy("hs_npu_memcpy_d2h", d, &s, src, dst, bytes);
    if (st != HS_OK)
        return st;
    if (d->mode == HS_NPU_EXECUTE && bytes)
        memcpy(dst, src, bytes);
    account_copy(d, s, "memcpy_d2h", bytes);
    return HS_OK;
}
