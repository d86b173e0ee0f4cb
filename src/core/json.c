/* Strict JSON parser (recursive descent into an arena) and JSON writer. */
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- arena */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct hs_json_doc {
    chunk *chunks;
    hs_json *root;
};

static void *arena_alloc(hs_json_doc *doc, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk *c = doc->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = doc->chunks;
        c->used = 0;
        c->cap = cap;
        doc->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void hs_json_free(hs_json_doc *doc)
{
    if (!doc)
        return;
    for (chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

const hs_json *hs_json_root(const hs_json_doc *doc) { return doc->root; }

/* ----------------------------------------------------------------- UTF-8 */

int hs_json_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t extra;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return 0;
        }
        if (n - i <= extra)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= extra; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += extra + 1;
    }
    return 1;
}

/* ---------------------------------------------------------------- parser */

typedef struct parser {
    const char *text, *p, *end;
    hs_json_doc *doc;
    int depth;
} parser;

static hs_status fail(const parser *ps, const char *what)
{
    return hs_error(HS_ERR_FORMAT, "JSON at byte %zu: %s", (size_t)(ps->p - ps->text), what);
}

static hs_status oom(void) { return hs_error(HS_ERR_OUT_OF_MEMORY, "JSON parser: out of memory"); }

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Reads \uXXXX (and its low surrogate) at ps->p, just past the 'u'. */
static hs_status parse_unicode_escape(parser *ps, unsigned *cp)
{
    if (ps->end - ps->p < 4 || !hex4(ps->p, cp))
        return fail(ps, "\\u must be followed by 4 hex digits");
    ps->p += 4;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return fail(ps, "unpaired low surrogate in \\u escape");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        unsigned lo;
        if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || !hex4(ps->p + 2, &lo) || lo < 0xDC00 ||
            lo > 0xDFFF)
            return fail(ps, "high surrogate in \\u escape is not followed by a low surrogate");
        ps->p += 6;
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (*cp == 0)
        return fail(ps, "\\u0000 is not allowed in strings");
    return HS_OK;
}

/* Parses a string starting at the opening quote into arena storage. */
static hs_status parse_string(parser *ps, const char **out, size_t *out_len)
{
    const char *start = ++ps->p;
    const char *q = start;
    while (q < ps->end && *q != '"')
        q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end)
        return fail(ps, "unterminated string");
    char *buf = arena_alloc(ps->doc, (size_t)(q - start) + 1);
    if (!buf)
        return oom();
    char *o = buf;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20)
            return fail(ps, "raw control character in string (escape it)");
        if (c != '\\') {
            *o++ = (char)c;
            ps->p++;
            continue;
        }
        char e = ps->p[1];
        ps->p += 2;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            *o++ = to[k - from];
        } else if (e == 'u') {
            unsigned cp;
            hs_status s = parse_unicode_escape(ps, &cp);
            if (s)
                return s;
            o = put_utf8(o, cp);
        } else {
            ps->p -= 2;
            return fail(ps, "invalid escape sequence in string");
        }
    }
    ps->p++;
    *o = '\0';
    if (!hs_json_utf8_valid(buf, (size_t)(o - buf)))
        return fail(ps, "string is not valid UTF-8");
    *out = buf;
    *out_len = (size_t)(o - buf);
    return HS_OK;
}

static int is_digit(const parser *ps) { return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9'; }

static hs_status parse_number(parser *ps, hs_json *v)
{
    const char *start = ps->p;
    if (*ps->p == '-')
        ps->p++;
    if (!is_digit(ps))
        return fail(ps, "expected a digit in number");
    if (*ps->p == '0') {
        ps->p++;
        if (is_digit(ps))
            return fail(ps, "leading zeros are not allowed in numbers");
    }
    while (is_digit(ps))
        ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (!is_digit(ps))
            return fail(ps, "expected a digit after the decimal point");
        while (is_digit(ps))
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (!is_digit(ps))
            return fail(ps, "expected a digit in the exponent");
        while (is_digit(ps))
            ps->p++;
    }
    size_t n = (size_t)(ps->p - start);
    char *lit = arena_alloc(ps->doc, n + 1);
    if (!lit)
        return oom();
    memcpy(lit, start, n);
    lit[n] = '\0';
    v->type = HS_JSON_NUMBER;
    v->str = lit;
    v->len = n;
    return HS_OK;
}

static hs_status parse_literal(parser *ps, hs_json *v)
{
    static const struct {
        const char *word;
        hs_json_type type;
        int boolean;
    } words[] = {{"true", HS_JSON_BOOL, 1}, {"false", HS_JSON_BOOL, 0}, {"null", HS_JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, words[i].word, n) == 0) {
            ps->p += n;
            v->type = words[i].type;
            v->boolean = words[i].boolean;
            return HS_OK;
        }
    }
    return fail(ps, "unexpected character (expected a value)");
}

static hs_status parse_value(parser *ps, hs_json **out);

/* Arrays and objects: `close` is ']' or '}'; objects read "key": first. */
static hs_status parse_container(parser *ps, hs_json *v, char close)
{
    if (++ps->depth > HS_JSON_MAX_DEPTH)
        return fail(ps, "nesting is deeper than the limit of 64 levels");
    v->type = close == '}' ? HS_JSON_OBJECT : HS_JSON_ARRAY;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return HS_OK;
    }
    hs_json **tail = &v->child;
    for (;;) {
        const char *key = NULL;
        size_t key_len;
        skip_ws(ps);
        if (close == '}') {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a string key in object");
            hs_status s = parse_string(ps, &key, &key_len);
            if (s)
                return s;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':' after object key");
            ps->p++;
        }
        hs_status s = parse_value(ps, tail);
        if (s)
            return s;
        (*tail)->key = key;
        tail = &(*tail)->next;
        v->count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return HS_OK;
        }
        return fail(ps, close == '}' ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
    }
}

static hs_status parse_value(parser *ps, hs_json **out)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input (expected a value)");
    hs_json *v = arena_alloc(ps->doc, sizeof *v);
    if (!v)
        return oom();
    memset(v, 0, sizeof *v);
    *out = v;
    v->src = ps->p;
    hs_status s;
    char c = *ps->p;
    if (c == '{' || c == '[') {
        s = parse_container(ps, v, c == '{' ? '}' : ']');
    } else if (c == '"') {
        v->type = HS_JSON_STRING;
        s = parse_string(ps, &v->str, &v->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        s = parse_number(ps, v);
    } else {
        s = parse_literal(ps, v);
    }
    v->src_len = (size_t)(ps->p - v->src);
    return s;
}

hs_status hs_json_parse(const char *text, size_t len, hs_json_doc **out)
{
    *out = NULL;
    if (len > HS_JSON_MAX_BYTES)
        return hs_error(HS_ERR_FORMAT, "JSON text of %zu bytes exceeds the limit of %zu bytes", len,
                        HS_JSON_MAX_BYTES);
    hs_json_doc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return oom();
    parser ps = {text, text, text + len, doc, 0};
    hs_status s = parse_value(&ps, &doc->root);
    if (!s) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            s = fail(&ps, "unexpected text after the JSON value");
    }
    if (s) {
        hs_json_free(doc);
        return s;
    }
    *out = doc;
    return HS_OK;
}

/* -------------------------------------------------------------- accessors */

const hs_json *hs_json_get(const hs_json *v, const char *key)
{
    if (!v || v->type != HS_JSON_OBJECT)
        return NULL;
    for (const hs_json *c = v->child; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

const char *hs_json_string(const hs_json *v) { return v && v->type == HS_JSON_STRING ? v->str : NULL; }

/* Magnitude of an integer literal's digits; 0 on fraction/exponent/overflow. */
static int digits_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

int hs_json_u64(const hs_json *v, uint64_t *out)
{
    return v && v->type == HS_JSON_NUMBER && digits_u64(v->str, out);
}

int hs_json_i64(const hs_json *v, int64_t *out)
{
    uint64_t mag;
    if (!v || v->type != HS_JSON_NUMBER)
        return 0;
    int neg = v->str[0] == '-';
    if (!digits_u64(v->str + neg, &mag) || mag > (uint64_t)INT64_MAX + (uint64_t)neg)
        return 0;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 1;
}

/* ---------------------------------------------------------------- writer */

void hs_jw_init(hs_jw *w, int pretty)
{
    memset(w, 0, sizeof *w);
    w->pretty = pretty;
}

static void put(hs_jw *w, const char *s, size_t n)
{
    if (w->status)
        return;
    if (w->cap - w->len < n + 1) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->status = hs_error(HS_ERR_OUT_OF_MEMORY, "JSON writer: out of memory at %zu bytes", cap);
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void puts_(hs_jw *w, const char *s) { put(w, s, strlen(s)); }

static void newline(hs_jw *w)
{
    if (!w->pretty)
        return;
    puts_(w, "\n");
    for (int i = 0; i < w->depth; i++)
        puts_(w, "  ");
}

/* Separator before a key, or before a value that is not a member's value. */
static void before_item(hs_jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->need_comma)
        puts_(w, w->flat && w->pretty ? ", " : ",");
    if (w->depth > 0 && !w->flat)
        newline(w);
}

static void open_(hs_jw *w, const char *bracket)
{
    before_item(w);
    puts_(w, bracket);
    w->depth++;
    w->need_comma = 0;
}

static void close_(hs_jw *w, const char *bracket)
{
    w->depth--;
    if (w->need_comma && !w->flat)
        newline(w);
    w->flat = 0;
    puts_(w, bracket);
    w->need_comma = 1;
}

void hs_jw_object_begin(hs_jw *w) { open_(w, "{"); }
void hs_jw_object_end(hs_jw *w) { close_(w, "}"); }
void hs_jw_array_begin(hs_jw *w) { open_(w, "["); }
void hs_jw_array_end(hs_jw *w) { close_(w, "]"); }

void hs_jw_array_begin_flat(hs_jw *w)
{
    open_(w, "[");
    w->flat = 1;
}

static void put_quoted(hs_jw *w, const char *s)
{
    size_t n = strlen(s);
    if (!w->status && !hs_json_utf8_valid(s, n))
        w->status = hs_error(HS_ERR_INVALID_ARGUMENT, "JSON writer: string \"%.40s\" is not valid UTF-8", s);
    puts_(w, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *rep = NULL;
        switch (c) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        case '\b': rep = "\\b"; break;
        case '\f': rep = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                rep = esc;
            }
        }
        if (rep)
            puts_(w, rep);
        else
            put(w, s + i, 1);
    }
    puts_(w, "\"");
}

void hs_jw_key(hs_jw *w, const char *key)
{
    before_item(w);
    put_quoted(w, key);
    puts_(w, w->pretty ? ": " : ":");
    w->after_key = 1;
}

static void scalar(hs_jw *w, const char *text)
{
    before_item(w);
    puts_(w, text);
    w->need_comma = 1;
}

void hs_jw_string(hs_jw *w, const char *s)
{
    before_item(w);
    put_quoted(w, s);
    w->need_comma = 1;
}

void hs_jw_u64(hs_jw *w, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    scalar(w, b);
}

void hs_jw_i64(hs_jw *w, int64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)v);
    scalar(w, b);
}

void hs_jw_null(hs_jw *w) { scalar(w, "null"); }
void hs_jw_raw(hs_jw *w, const char *json) { scalar(w, json); }

hs_status hs_jw_finish(hs_jw *w, char **text, size_t *len)
{
    if (!w->status && !w->buf)
        puts_(w, "");
    hs_status s = w->status;
    if (s) {
        free(w->buf);
        *text = NULL;
        *len = 0;
    } else {
        *text = w->buf;
        *len = w->len;
    }
    w->buf = NULL;
    w->len = w->cap = 0;
    return s;
}
