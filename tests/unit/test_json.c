/* The private JSON parser (strict: what it accepts and rejects) and writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json.h"

#include <stdlib.h>
#include <string.h>

static hs_json_doc *parse_ok(const char *text)
{
    hs_json_doc *doc = NULL;
    hs_status s = hs_json_parse(text, strlen(text), &doc);
    if (s)
        fail_msg("rejected %s: %s", text, hs_last_error());
    return doc;
}

static void reject(const char *text, const char *msg)
{
    hs_json_doc *doc = (hs_json_doc *)1;
    hs_status s = hs_json_parse(text, strlen(text), &doc);
    if (s != HS_ERR_FORMAT)
        fail_msg("accepted %s", text);
    assert_null(doc);
    if (!strstr(hs_last_error(), msg))
        fail_msg("%s: message \"%s\" lacks \"%s\"", text, hs_last_error(), msg);
}

static void test_accepts_values(void **state)
{
    (void)state;
    hs_json_doc *doc = parse_ok(" {\"a\": [1, -2.5e3, 0, true, false, null], \"b\": {}, \"c\": [], \"d\": \"x\"} \n");
    const hs_json *root = hs_json_root(doc);
    assert_int_equal(root->type, HS_JSON_OBJECT);
    assert_int_equal(root->count, 4);
    const hs_json *a = hs_json_get(root, "a");
    assert_int_equal(a->type, HS_JSON_ARRAY);
    assert_int_equal(a->count, 6);
    assert_string_equal(a->child->next->str, "-2.5e3");
    assert_int_equal(a->child->next->next->next->type, HS_JSON_BOOL);
    assert_int_equal(a->child->next->next->next->boolean, 1);
    assert_int_equal(a->child->next->next->next->next->next->type, HS_JSON_NULL);
    assert_int_equal(hs_json_get(root, "b")->count, 0);
    assert_string_equal(hs_json_string(hs_json_get(root, "d")), "x");
    assert_null(hs_json_get(root, "zz"));
    assert_null(hs_json_string(a));
    /* spans: the source text of a value, for passing JSON through */
    assert_int_equal(a->src_len, strlen("[1, -2.5e3, 0, true, false, null]"));
    assert_memory_equal(a->src, "[1, -2.5e3, 0, true, false, null]", a->src_len);
    hs_json_free(doc);

    doc = parse_ok("\"only a string\"");
    assert_string_equal(hs_json_string(hs_json_root(doc)), "only a string");
    hs_json_free(doc);
}

static void test_string_escapes(void **state)
{
    (void)state;
    hs_json_doc *doc =
        parse_ok("[\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\", \"\xc3\xa9\"]");
    const hs_json *v = hs_json_root(doc)->child;
    assert_string_equal(v->str, "q\" b\\ s/ \b\f\n\r\t");
    assert_string_equal(v->next->str, "\xc3\xa9\xe2\x82\xac");
    assert_string_equal(v->next->next->str, "\xf0\x9f\x98\x80");
    assert_int_equal(v->next->next->len, 4);
    assert_string_equal(v->next->next->next->str, "\xc3\xa9");
    hs_json_free(doc);
}

static void test_integers(void **state)
{
    (void)state;
    hs_json_doc *doc = parse_ok("[18446744073709551615, 18446744073709551616, -9223372036854775808, "
                                "9223372036854775808, 1.0, 1e3, -1, 0]");
    const hs_json *v = hs_json_root(doc)->child;
    uint64_t u = 0;
    int64_t i = 0;
    assert_true(hs_json_u64(v, &u));
    assert_true(u == UINT64_MAX);
    assert_false(hs_json_u64(v->next, &u)); /* overflow */
    assert_true(hs_json_i64(v->next->next, &i));
    assert_true(i == INT64_MIN);
    assert_false(hs_json_i64(v->next->next->next, &i)); /* INT64_MAX + 1 */
    assert_false(hs_json_u64(v->next->next->next->next, &u)); /* fraction */
    assert_false(hs_json_u64(v->next->next->next->next->next, &u)); /* exponent */
    assert_false(hs_json_u64(v->next->next->next->next->next->next, &u)); /* negative */
    assert_true(hs_json_i64(v->next->next->next->next->next->next, &i));
    assert_int_equal(i, -1);
    assert_true(hs_json_u64(v->next->next->next->next->next->next->next, &u));
    assert_int_equal(u, 0);
    assert_false(hs_json_u64(hs_json_root(doc), &u)); /* not a number */
    hs_json_free(doc);
}

static void test_rejects(void **state)
{
    (void)state;
    reject("", "unexpected end of input");
    reject("   ", "unexpected end of input");
    reject("[1, 2,]", "expected a value");
    reject("{\"a\": 1,}", "expected a string key");
    reject("{\"a\" 1}", "expected ':'");
    reject("{a: 1}", "expected a string key");
    reject("[1 2]", "expected ',' or ']'");
    reject("{\"a\": 1 \"b\": 2}", "expected ',' or '}'");
    reject("[01]", "leading zeros");
    reject("[1.]", "after the decimal point");
    reject("[.5]", "expected a value");
    reject("[-]", "expected a digit");
    reject("[1e]", "exponent");
    reject("[NaN]", "expected a value");
    reject("[Infinity]", "expected a value");
    reject("['x']", "expected a value");
    reject("[tru]", "expected a value");
    reject("\"abc", "unterminated string");
    reject("\"a\tb\"", "control character");
    reject("\"\\x\"", "invalid escape");
    reject("\"\\u12\"", "4 hex digits");
    reject("\"\\ud83d\"", "low surrogate");
    reject("\"\\ude00\"", "unpaired low surrogate");
    reject("\"\\u0000\"", "\\u0000");
    reject("\"\xc3\"", "UTF-8");
    reject("\"\xc0\xaf\"", "UTF-8");       /* overlong '/' */
    reject("\"\xed\xa0\x80\"", "UTF-8");   /* encoded surrogate */
    reject("\"\xf4\x90\x80\x80\"", "UTF-8"); /* above U+10FFFF */
    reject("{} {}", "unexpected text after");
    reject("[1] x", "unexpected text after");
    reject("/* c */ 1", "expected a value");
}

/* n nested arrays: "[[...]]" */
static char *nested(int n)
{
    char *t = malloc(2 * (size_t)n + 1);
    memset(t, '[', (size_t)n);
    memset(t + n, ']', (size_t)n);
    t[2 * n] = '\0';
    return t;
}

static void test_depth_and_size_limits(void **state)
{
    (void)state;
    char *deep = nested(HS_JSON_MAX_DEPTH + 1);
    reject(deep, "deeper than the limit");
    free(deep);
    deep = nested(HS_JSON_MAX_DEPTH);
    hs_json_free(parse_ok(deep));
    free(deep);
    hs_json_doc *doc = (hs_json_doc *)1;
    assert_int_equal(hs_json_parse("1", HS_JSON_MAX_BYTES + 1, &doc), HS_ERR_FORMAT);
    assert_null(doc);
    assert_non_null(strstr(hs_last_error(), "exceeds the limit"));
}

static void test_parse_stops_at_length(void **state)
{
    (void)state;
    hs_json_doc *doc;
    assert_int_equal(hs_json_parse("[1]garbage", 3, &doc), HS_OK);
    assert_int_equal(hs_json_root(doc)->count, 1);
    hs_json_free(doc);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    for (int pretty = 0; pretty <= 1; pretty++) {
        hs_jw w;
        hs_jw_init(&w, pretty);
        hs_jw_object_begin(&w);
        hs_jw_key(&w, "s");
        hs_jw_string(&w, "a\"b\\c\n\x01\xc3\xa9");
        hs_jw_key(&w, "n");
        hs_jw_array_begin(&w);
        hs_jw_u64(&w, UINT64_MAX);
        hs_jw_i64(&w, INT64_MIN);
        hs_jw_null(&w);
        hs_jw_array_end(&w);
        hs_jw_key(&w, "e");
        hs_jw_array_begin(&w);
        hs_jw_array_end(&w);
        hs_jw_key(&w, "o");
        hs_jw_object_begin(&w);
        hs_jw_object_end(&w);
        hs_jw_key(&w, "raw");
        hs_jw_raw(&w, "{\"x\":[1,2]}");
        hs_jw_key(&w, "flat");
        hs_jw_array_begin_flat(&w);
        hs_jw_u64(&w, 2);
        hs_jw_u64(&w, 3);
        hs_jw_array_end(&w);
        hs_jw_key(&w, "after");
        hs_jw_array_begin(&w);
        hs_jw_u64(&w, 4);
        hs_jw_array_end(&w);
        hs_jw_object_end(&w);
        char *text;
        size_t len;
        assert_int_equal(hs_jw_finish(&w, &text, &len), HS_OK);
        assert_int_equal(strlen(text), len);
        if (!pretty)
            assert_string_equal(text, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\",\"n\":[18446744073709551615,"
                                      "-9223372036854775808,null],\"e\":[],\"o\":{},\"raw\":{\"x\":[1,2]},"
                                      "\"flat\":[2,3],\"after\":[4]}");
        else
            assert_string_equal(strstr(text, "\"raw\""),
                                "\"raw\": {\"x\":[1,2]},\n  \"flat\": [2, 3],\n  \"after\": [\n    4\n  ]\n}");
        hs_json_doc *doc = parse_ok(text);
        const hs_json *root = hs_json_root(doc);
        assert_string_equal(hs_json_string(hs_json_get(root, "s")), "a\"b\\c\n\x01\xc3\xa9");
        uint64_t u;
        int64_t i;
        assert_true(hs_json_u64(hs_json_get(root, "n")->child, &u) && u == UINT64_MAX);
        assert_true(hs_json_i64(hs_json_get(root, "n")->child->next, &i) && i == INT64_MIN);
        assert_int_equal(hs_json_get(hs_json_get(root, "raw"), "x")->count, 2);
        hs_json_free(doc);
        free(text);
    }
}

static void test_writer_rejects_bad_utf8(void **state)
{
    (void)state;
    hs_jw w;
    hs_jw_init(&w, 0);
    hs_jw_array_begin(&w);
    hs_jw_string(&w, "ok");
    hs_jw_string(&w, "bad \xff");
    hs_jw_array_end(&w);
    char *text = (char *)1;
    size_t len;
    assert_int_equal(hs_jw_finish(&w, &text, &len), HS_ERR_INVALID_ARGUMENT);
    assert_null(text);
    assert_non_null(strstr(hs_last_error(), "not valid UTF-8"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_values),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_depth_and_size_limits),
        cmocka_unit_test(test_parse_stops_at_length),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_rejects_bad_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
