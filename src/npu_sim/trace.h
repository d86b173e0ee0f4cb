/* Private trace recorder (Chrome trace JSON, viewable in Perfetto) behind
 * hs_npu_trace_start / hs_npu_trace_stop. Events are buffered in memory
 * and written when the trace stops. Every call is a cheap no-op when no
 * trace is active, so callers need not test hs_npu_tracing first unless
 * building the arguments costs something.
 *
 * Tracks: `process` groups threads (e.g. "npu0" for streams and counters,
 * "npu0 cores" for pipes); `thread` is one row (e.g. "stream0",
 * "aic3.MTE2"). Times are simulated seconds. Names are copied.
 */
#ifndef HS_NPU_SIM_TRACE_H
#define HS_NPU_SIM_TRACE_H

#include "hyperspeed/npu.h"

/* One numeric argument attached to a slice ("cube_util", 0.93). */
typedef struct hs_npu_trace_arg {
    const char *key;
    double value;
} hs_npu_trace_arg;

/* 1 while d records a trace. */
int hs_npu_tracing(const hs_npu *d);

/* A complete slice [start_s, start_s + dur_s) named `name` on the row
 * (process, thread), category "npu". */
void hs_npu_trace_slice(hs_npu *d, const char *process, const char *thread, const char *name, double start_s,
                        double dur_s);

/* The same with a category ("kernel", "copy", "comm", "pipe") and up to
 * HS_NPU_TRACE_MAX_ARGS numeric args (extra ones are dropped). */
#define HS_NPU_TRACE_MAX_ARGS 8
void hs_npu_trace_slice_args(hs_npu *d, const char *process, const char *thread, const char *name,
                             const char *category, double start_s, double dur_s, const hs_npu_trace_arg *args,
                             int nargs);

/* A counter sample (e.g. "HBM in use" in bytes) on the device's process. */
void hs_npu_trace_counter(hs_npu *d, const char *name, double t_s, double value);

#endif
