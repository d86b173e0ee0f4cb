/* Levelled logging to stderr, level from HS_LOG_LEVEL. */
#include "hyperspeed/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_level = -1; /* -1: not read from the environment yet */

static hs_log_level level_from_env(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *e = getenv("HS_LOG_LEVEL");
    if (!e || !*e)
        return HS_LOG_WARN;
    for (int i = 0; i < 4; i++)
        if (strcmp(e, names[i]) == 0)
            return (hs_log_level)i;
    if (e[0] >= '0' && e[0] <= '3' && e[1] == '\0')
        return (hs_log_level)(e[0] - '0');
    fprintf(stderr, "[hs WARN] HS_LOG_LEVEL=%s is not error|warn|info|debug|0..3; using warn\n", e);
    return HS_LOG_WARN;
}

hs_log_level hs_log_get_level(void)
{
    if (log_level < 0)
        log_level = (int)level_from_env();
    return (hs_log_level)log_level;
}

void hs_log_set_level(hs_log_level level) { log_level = (int)level; }

void hs_log(hs_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if ((unsigned)level > HS_LOG_DEBUG || (int)level > (int)hs_log_get_level())
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[hs %s] %s\n", tags[level], buf);
}
