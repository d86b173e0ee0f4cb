/* Private JSON support for the files hyperspeed writes and reads back
 * (checkpoint manifests, safetensors headers): a small writer and a strict
 * RFC 8259 parser.
 *
 * The parser accepts exactly RFC 8259 JSON: no comments, no trailing
 * commas, no leading zeros, no NaN/Infinity, strings must be valid UTF-8
 * without raw control characters, \u escapes must pair surrogates. Two
 * limits keep hostile input cheap: HS_JSON_MAX_BYTES of text and
 * HS_JSON_MAX_DEPTH levels of nesting. "\u0000" is rejected so every
 * string is a C string. Duplicate object keys are kept (lookup returns the
 * first); callers that care check names themselves. Every failure is
 * HS_ERR_FORMAT with the byte offset of the problem.
 */
#ifndef HS_CORE_JSON_H
#define HS_CORE_JSON_H

#include "hyperspeed/core.h"

#include <stddef.h>
#include <stdint.h>

#define HS_JSON_MAX_BYTES ((size_t)100 * 1000 * 1000)
#define HS_JSON_MAX_DEPTH 64

typedef enum hs_json_type {
    HS_JSON_NULL = 0,
    HS_JSON_BOOL,
    HS_JSON_NUMBER,
    HS_JSON_STRING,
    HS_JSON_ARRAY,
    HS_JSON_OBJECT
} hs_json_type;

/* One parsed value. Children of arrays and objects form a list through
 * `next`; object members carry their key. All storage belongs to the
 * hs_json_doc. */
typedef struct hs_json {
    hs_json_type type;
    const char *key;       /* member name inside an object, else NULL */
    const char *str;       /* STRING: decoded text; NUMBER: its literal text */
    size_t len;            /* bytes of str */
    int boolean;           /* BOOL */
    size_t count;          /* ARRAY/OBJECT: number of children */
    struct hs_json *child; /* ARRAY/OBJECT: first child */
    struct hs_json *next;  /* next sibling */
    const char *src;       /* where the value starts in the parsed text */
    size_t src_len;        /* how many bytes of the text it spans */
} hs_json;

typedef struct hs_json_doc hs_json_doc;

/* Parses `len` bytes of `text` (need not be NUL-terminated; the text must
 * outlive the doc, since hs_json.src points into it). Leading and trailing
 * whitespace is allowed, nothing else after the value.
 * Errors: HS_ERR_FORMAT ("JSON at byte 17: expected ':' after object key"),
 * HS_ERR_OUT_OF_MEMORY. Release with hs_json_free. */
hs_status hs_json_parse(const char *text, size_t len, hs_json_doc **out);
void hs_json_free(hs_json_doc *doc);
const hs_json *hs_json_root(const hs_json_doc *doc);

/* Member `key` of an object; NULL when v is not an object or lacks it. */
const hs_json *hs_json_get(const hs_json *v, const char *key);
/* The string of a STRING value, NULL for any other type. */
const char *hs_json_string(const hs_json *v);
/* Exact integer readers: 1 when v is a NUMBER written as an integer
 * (no fraction or exponent) that fits the type, else 0 (out untouched). */
int hs_json_u64(const hs_json *v, uint64_t *out);
int hs_json_i64(const hs_json *v, int64_t *out);

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int hs_json_utf8_valid(const char *s, size_t n);

/* ---------------------------------------------------------------- writer */

/* Builds JSON text in a growing buffer. Calls never fail on their own: the
 * first error (out of memory, a string that is not UTF-8) is kept and
 * returned by hs_jw_finish. Keys and values are placed by the writer
 * (commas, colons; with `pretty`, newlines and two-space indents). */
typedef struct hs_jw {
    char *buf;
    size_t len, cap;
    int depth;
    int need_comma; /* a value or key already sits in the open container */
    int after_key;  /* the next value completes a member */
    int flat;       /* inside an array that stays on one line */
    int pretty;
    hs_status status;
} hs_jw;

void hs_jw_init(hs_jw *w, int pretty);
void hs_jw_object_begin(hs_jw *w);
void hs_jw_object_end(hs_jw *w);
void hs_jw_array_begin(hs_jw *w);
void hs_jw_array_end(hs_jw *w);
/* An array that stays on one line even when pretty ("[2, 3]"): for short
 * arrays of scalars only; close it with hs_jw_array_end. */
void hs_jw_array_begin_flat(hs_jw *w);
void hs_jw_key(hs_jw *w, const char *key);
void hs_jw_string(hs_jw *w, const char *s);
void hs_jw_u64(hs_jw *w, uint64_t v);
void hs_jw_i64(hs_jw *w, int64_t v);
void hs_jw_null(hs_jw *w);
/* Inserts `json`, which the caller has already validated, verbatim. */
void hs_jw_raw(hs_jw *w, const char *json);

/* Hands over the NUL-terminated text (free() it) and its length, or returns
 * the first error (HS_ERR_OUT_OF_MEMORY, HS_ERR_INVALID_ARGUMENT) and frees
 * the buffer. Either way the writer is spent. */
hs_status hs_jw_finish(hs_jw *w, char **text, size_t *len);

#endif
