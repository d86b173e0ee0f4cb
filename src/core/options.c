/* Table-driven command-line option parsing. */
#include "hyperspeed/options.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const hs_option *find(const hs_option *opts, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static hs_status convert(const hs_option *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case HS_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (*v && !*end && !errno && x >= INT_MIN && x <= INT_MAX) {
            *(int *)o->dest = (int)x;
            return HS_OK;
        }
        break;
    }
    case HS_OPT_I64: {
        long long x = strtoll(v, &end, 10);
        if (*v && !*end && !errno) {
            *(int64_t *)o->dest = x;
            return HS_OK;
        }
        break;
    }
    case HS_OPT_FLOAT: {
        float x = strtof(v, &end);
        if (*v && !*end && !errno) {
            *(float *)o->dest = x;
            return HS_OK;
        }
        break;
    }
    case HS_OPT_STRING:
        *(const char **)o->dest = v;
        return HS_OK;
    case HS_OPT_FLAG:
        break;
    }
    return hs_error(HS_ERR_INVALID_ARGUMENT, "--%s: '%s' is not a valid %s", o->name, v,
                    o->kind == HS_OPT_FLOAT ? "number" : "integer");
}

hs_status hs_options_parse(int argc, char **argv, const hs_option *opts, int n)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "unexpected argument '%s' (options start with --)", a);
        a += 2;
        if (strcmp(a, "help") == 0)
            return hs_error(HS_ERR_NOT_FOUND, "help");
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const hs_option *o = find(opts, n, a, len);
        if (!o)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown flag --%.*s", (int)len, a);
        if (o->kind == HS_OPT_FLAG) {
            if (eq)
                return hs_error(HS_ERR_INVALID_ARGUMENT, "--%s takes no value", o->name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "--%s needs a value", o->name);
        hs_status s = convert(o, v);
        if (s)
            return s;
    }
    return HS_OK;
}

void hs_options_usage(FILE *f, const char *prog, const hs_option *opts, int n)
{
    fprintf(f, "usage: %s [options]\n", prog);
    for (int i = 0; i < n; i++) {
        const hs_option *o = &opts[i];
        char def[64] = "";
        switch (o->kind) {
        case HS_OPT_INT: snprintf(def, sizeof def, "%d", *(int *)o->dest); break;
        case HS_OPT_I64: snprintf(def, sizeof def, "%" PRId64, *(int64_t *)o->dest); break;
        case HS_OPT_FLOAT: snprintf(def, sizeof def, "%g", (double)*(float *)o->dest); break;
        case HS_OPT_STRING: snprintf(def, sizeof def, "%s", *(const char **)o->dest ? *(const char **)o->dest : "-"); break;
        case HS_OPT_FLAG: snprintf(def, sizeof def, "%s", *(int *)o->dest ? "on" : "off"); break;
        }
        fprintf(f, "  --%-16s %s (default: %s)\n", o->name, o->help, def);
    }
}
