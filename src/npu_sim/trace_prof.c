/* Reads a trace written by hs_npu_trace_stop back and totals its "kernel"
 * slices per name (hs-npu prof). */
#include "core/json.h"
#include "hyperspeed/npu.h"
#include "core/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Running totals of one kernel; the utilisations are weighted by slice
 * duration over the slices that carry them. */
typedef struct prof_acc {
    hs_npu_kernel_profile p;
    double cube_w, cube_sum, vector_w, vector_sum;
} prof_acc;

/* A NUMBER member of obj as a double, or `dflt` when absent or not a number. */
static double num(const hs_json *obj, const char *key, double dflt)
{
    const hs_json *v = hs_json_get(obj, key);
    return v && v->type == HS_JSON_NUMBER ? strtod(v->str, NULL) : dflt;
}

/* The accumulator for `name`, appended when new; NULL when out of memory. */
static prof_acc *find_or_add(prof_acc **accs, size_t *n, size_t *cap, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strncmp((*accs)[i].p.name, name, sizeof (*accs)[i].p.name - 1))
            return &(*accs)[i];
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        prof_acc *na = realloc(*accs, c * sizeof *na);
        if (!na)
            return NULL;
        *accs = na;
        *cap = c;
    }
    prof_acc *a = &(*accs)[(*n)++];
    memset(a, 0, sizeof *a);
    snprintf(a->p.name, sizeof a->p.name, "%s", name);
    return a;
}

/* Adds one "kernel" slice to its accumulator. */
static void add_slice(prof_acc *a, const hs_json *e)
{
    double dur = num(e, "dur", 0) * 1e-6;
    a->p.count++;
    a->p.seconds += dur;
    const hs_json *args = hs_json_get(e, "args");
    if (!args)
        return;
    a->p.flops += num(args, "flops", 0);
    a->p.hbm_bytes += num(args, "hbm_bytes", 0);
    a->p.l2_bytes += num(args, "l2_bytes", 0);
    double cu = num(args, "cube_util", -1), vu = num(args, "vector_util", -1);
    if (cu >= 0) {
        a->cube_w += dur;
        a->cube_sum += cu * dur;
    }
    if (vu >= 0) {
        a->vector_w += dur;
        a->vector_sum += vu * dur;
    }
}

/* Orders profiles by simulated time, largest first. */
static int by_seconds(const void *x, const void *y)
{
    double a = ((const hs_npu_kernel_profile *)x)->seconds, b = ((const hs_npu_kernel_profile *)y)->seconds;
    return (a < b) - (a > b);
}

/* Totals the "kernel" slices of the parsed trace `root` into *out. */
static hs_status collect(const hs_json *root, const char *path, hs_npu_kernel_profile **out, size_t *count)
{
    const hs_json *events = hs_json_get(root, "traceEvents");
    if (!events || events->type != HS_JSON_ARRAY)
        return hs_error(HS_ERR_FORMAT, "%s: no \"traceEvents\" array", path);
    prof_acc *accs = NULL;
    size_t n = 0, cap = 0;
    for (const hs_json *e = events->child; e; e = e->next) {
        const char *ph = hs_json_string(hs_json_get(e, "ph")), *cat = hs_json_string(hs_json_get(e, "cat"));
        const char *name = hs_json_string(hs_json_get(e, "name"));
        if (!ph || strcmp(ph, "X") || !cat || strcmp(cat, "kernel") || !name)
            continue;
        prof_acc *a = find_or_add(&accs, &n, &cap, name);
        if (!a) {
            free(accs);
            return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: %zu kernel profiles", path, n + 1);
        }
        add_slice(a, e);
    }
    hs_npu_kernel_profile *res = malloc((n ? n : 1) * sizeof *res);
    if (!res) {
        free(accs);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: %zu kernel profiles", path, n);
    }
    for (size_t i = 0; i < n; i++) {
        res[i] = accs[i].p;
        res[i].cube_util = accs[i].cube_w > 0 ? accs[i].cube_sum / accs[i].cube_w : -1;
        res[i].vector_util = accs[i].vector_w > 0 ? accs[i].vector_sum / accs[i].vector_w : -1;
    }
    free(accs);
    qsort(res, n, sizeof *res, by_seconds);
    *out = res;
    *count = n;
    return HS_OK;
}

/* Maps, parses and totals the trace at `path`. */
hs_status hs_npu_trace_profile(const char *path, hs_npu_kernel_profile **out, size_t *count)
{
    if (!path || !out || !count)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_trace_profile: NULL argument");
    hs_mapped_file m;
    hs_status st = hs_file_map(path, &m);
    if (st != HS_OK)
        return st;
    hs_json_doc *doc = NULL;
    st = hs_json_parse((const char *)m.data, (size_t)m.size, &doc);
    if (st == HS_OK)
        st = collect(hs_json_root(doc), path, out, count);
    else {
        char why[512];
        snprintf(why, sizeof why, "%s", hs_last_error());
        st = hs_error(st, "%s: %s", path, why);
    }
    hs_json_free(doc);
    hs_file_unmap(&m);
    return st;
}
