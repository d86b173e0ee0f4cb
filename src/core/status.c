/* Status names and the thread-local error message. */
#include "hyperspeed/core.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char tls_error[1024];

static const char *const status_names[HS_STATUS_COUNT] = {
    [HS_OK] = "HS_OK",
    [HS_ERR_INVALID_ARGUMENT] = "HS_ERR_INVALID_ARGUMENT",
    [HS_ERR_SHAPE_MISMATCH] = "HS_ERR_SHAPE_MISMATCH",
    [HS_ERR_DTYPE] = "HS_ERR_DTYPE",
    [HS_ERR_OUT_OF_MEMORY] = "HS_ERR_OUT_OF_MEMORY",
    [HS_ERR_IO] = "HS_ERR_IO",
    [HS_ERR_FORMAT] = "HS_ERR_FORMAT",
    [HS_ERR_NOT_FOUND] = "HS_ERR_NOT_FOUND",
    [HS_ERR_DEVICE] = "HS_ERR_DEVICE",
    [HS_ERR_NPU_BUFFER] = "HS_ERR_NPU_BUFFER",
    [HS_ERR_COMM] = "HS_ERR_COMM",
    [HS_ERR_INTERNAL] = "HS_ERR_INTERNAL",
};

const char *hs_status_str(hs_status s)
{
    if ((unsigned)s >= HS_STATUS_COUNT)
        return "HS_ERR_UNKNOWN_STATUS";
    return status_names[s];
}

const char *hs_last_error(void) { return tls_error; }

void hs_clear_error(void) { tls_error[0] = '\0'; }

hs_status hs_error(hs_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    hs_log(HS_LOG_DEBUG, "%s: %s", hs_status_str(s), tls_error);
    return s;
}
