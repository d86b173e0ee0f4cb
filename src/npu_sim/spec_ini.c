/* Loads a CANN-style platform .ini (Ascend910B*.ini layout: [SoCInfo],
 * [AICoreSpec], [AICoreMemoryRates], ... with key=value lines) over a base
 * spec. Keys are matched by name whatever their section; ones the model
 * has no field for are logged and ignored. */
#include "hyperspeed/npu.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum field_kind { F_INT, F_I64, F_DOUBLE } field_kind;

/* One recognised key: where it lands in hs_npu_spec and the factor from
 * the file's unit to the spec's (MHz -> Hz, GB/s -> B/s). */
typedef struct ini_key {
    const char *key;
    field_kind kind;
    size_t offset;
    double scale;
} ini_key;

#define K(name, kind, field, scale) {name, kind, offsetof(hs_npu_spec, field), scale}

static const ini_key keys[] = {
    K("ai_core_cnt", F_INT, cube_cores, 1),       K("cube_core_cnt", F_INT, cube_cores, 1),
    K("vector_core_cnt", F_INT, vector_cores, 1), K("ai_core_freq", F_DOUBLE, freq_hz, 1e6),
    K("cube_freq", F_DOUBLE, freq_hz, 1e6),       K("l0_a_size", F_I64, l0a_bytes, 1),
    K("l0_b_size", F_I64, l0b_bytes, 1),          K("l0_c_size", F_I64, l0c_bytes, 1),
    K("l1_size", F_I64, l1_bytes, 1),             K("ub_size", F_I64, ub_bytes, 1),
    K("bt_size", F_I64, bias_table_bytes, 1),     K("l2_size", F_I64, l2_bytes, 1),
    K("memory_size", F_I64, hbm_bytes, 1),        K("hbm_bandwidth", F_DOUBLE, hbm_bw, 1e9),
    K("ddr_rate", F_DOUBLE, ddr_rate, 1),         K("l2_read_rate", F_DOUBLE, l2_read_rate, 1),
    K("l2_write_rate", F_DOUBLE, l2_write_rate, 1), K("l1_to_l0_a_rate", F_DOUBLE, l1_to_l0_rate, 1),
    K("ub_to_l2_rate", F_DOUBLE, ub_to_l2_rate, 1), K("cube_m_size", F_INT, cube_m, 1),
    K("cube_k_size", F_INT, cube_k, 1),           K("cube_n_size", F_INT, cube_n, 1),
    K("host_memory_size", F_I64, host_bytes, 1),  K("host_bandwidth", F_DOUBLE, host_bw, 1e9),
};

/* Strips leading and trailing whitespace in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Stores `value` (text) into the field `k` describes. HS_ERR_FORMAT for
 * text that is not a finite non-negative number, or not an integer (or
 * out of range) for integer fields. */
static hs_status set_field(hs_npu_spec *s, const ini_key *k, const char *value, const char *path, int line)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    int bad = end == value || *end != '\0' || errno == ERANGE || !isfinite(v) || v < 0;
    double scaled = v * k->scale;
    if (!bad && k->kind != F_DOUBLE)
        bad = scaled != floor(scaled) || scaled > (k->kind == F_INT ? 2147483647.0 : 9.2e18);
    if (bad)
        return hs_error(HS_ERR_FORMAT, "%s:%d: key '%s': '%s' is not a valid non-negative %s", path, line, k->key, value,
                        k->kind == F_DOUBLE ? "number" : "integer");
    char *field = (char *)s + k->offset;
    if (k->kind == F_INT)
        *(int *)field = (int)scaled;
    else if (k->kind == F_I64)
        *(int64_t *)field = (int64_t)scaled;
    else
        *(double *)field = scaled;
    return HS_OK;
}

/* Applies one non-blank, non-comment line (a section header or key=value). */
static hs_status apply_line(hs_npu_spec *s, char *text, const char *path, int line)
{
    if (text[0] == '[') {
        if (text[strlen(text) - 1] != ']')
            return hs_error(HS_ERR_FORMAT, "%s:%d: section header '%s' lacks its closing ']'", path, line, text);
        return HS_OK;
    }
    char *eq = strchr(text, '=');
    if (!eq)
        return hs_error(HS_ERR_FORMAT, "%s:%d: expected key=value, got '%s'", path, line, text);
    *eq = '\0';
    char *key = trim(text), *value = trim(eq + 1);
    if (!*key)
        return hs_error(HS_ERR_FORMAT, "%s:%d: key=value line without a key", path, line);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(keys[i].key, key))
            return set_field(s, &keys[i], value, path, line);
    hs_log(HS_LOG_INFO, "%s:%d: key '%s' ignored (no NPU model field)", path, line, key);
    return HS_OK;
}

/* The file name without directories and extension, as the spec's name. */
static void name_from_path(char *dst, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int n = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(dst, cap, "%.*s", n, base);
}

/* Reads the .ini at `path` over `base` (NULL: the 910B2 preset). */
hs_status hs_npu_spec_load_ini(const char *path, const hs_npu_spec *base, hs_npu_spec *out)
{
    if (!path || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_spec_load_ini: NULL argument");
    hs_npu_spec s;
    if (base)
        s = *base;
    else if (hs_npu_spec_preset("910B2", &s) != HS_OK)
        return HS_ERR_INTERNAL;
    FILE *f = fopen(path, "r");
    if (!f)
        return hs_error(HS_ERR_IO, "open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0;
    hs_status st = HS_OK;
    for (int line = 1; st == HS_OK && getline(&buf, &cap, f) >= 0; line++) {
        char *text = trim(buf);
        if (*text && *text != '#' && *text != ';')
            st = apply_line(&s, text, path, line);
    }
    if (st == HS_OK && ferror(f))
        st = hs_error(HS_ERR_IO, "read %s: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    if (st != HS_OK)
        return st;
    name_from_path(s.name, sizeof s.name, path);
    st = hs_npu_spec_validate(&s);
    if (st != HS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", hs_last_error());
        return hs_error(st, "%s: %s", path, why);
    }
    *out = s;
    return HS_OK;
}
