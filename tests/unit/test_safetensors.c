/* safetensors: round trips, writer argument checks, malformed files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed/checkpoint.h"
#include "scratch.h"

static int setup(void **state)
{
    *state = scratch_dir("test_safetensors");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    scratch_free(*state);
    return 0;
}

/* Writes a safetensors file by hand: 8-byte length, header, data. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t n = strlen(header);
    unsigned char *buf = malloc(8 + n + data_len + 1);
    uint64_t len = n;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, header, n);
    if (data_len)
        memcpy(buf + 8 + n, data, data_len);
    assert_int_equal(scratch_write(path, buf, 8 + n + data_len), 0);
    free(buf);
}

static void expect_open_error(const char *path, hs_status want, const char *msg)
{
    hs_safetensors *st = (hs_safetensors *)1;
    hs_status s = hs_safetensors_new(path, &st);
    if (s != want)
        fail_msg("status %s (%s), expected %s", hs_status_str(s), hs_last_error(), hs_status_str(want));
    assert_null(st);
    if (!strstr(hs_last_error(), msg))
        fail_msg("message \"%s\" lacks \"%s\"", hs_last_error(), msg);
}

static void expect_raw_error(const char *dir, const char *header, size_t data_len, hs_status want, const char *msg)
{
    static const unsigned char zeros[256];
    const char *path = scratch_path(dir, "raw.safetensors");
    write_raw(path, header, zeros, data_len);
    expect_open_error(path, want, msg);
}

static void test_round_trip(void **state)
{
    const char *dir = *state;
    const char *path = scratch_path(dir, "rt.safetensors");
    float f32[6] = {1, -2, 3.5f, 4, 5, 6};
    uint16_t bf16[5] = {0x3f80, 0x4000, 0xbf80, 0, 0x7f80};
    int64_t i64 = -1234567890123LL;
    int8_t i8[3] = {-1, 0, 127};
    uint16_t f16 = 0x3c00;
    int32_t i32_dummy = 0;
    const hs_st_tensor in[] = {
        {"i8", HS_INT8, 1, {3}, i8},        {"w.f32", HS_FP32, 2, {2, 3}, f32}, {"bf", HS_BF16, 1, {5}, bf16},
        {"scalar", HS_INT64, 0, {0}, &i64}, {"half", HS_FP16, 2, {1, 1}, &f16}, {"empty", HS_INT32, 1, {0}, &i32_dummy},
    };
    const hs_st_kv meta[] = {{"format", "pt"}, {"note", "h\xc3\xa9llo \"quoted\"\n"}};
    assert_int_equal(hs_safetensors_write(path, in, 6, meta, 2), HS_OK);
    assert_int_equal(scratch_count_entries(dir), 1);

    hs_safetensors *st;
    assert_int_equal(hs_safetensors_new(path, &st), HS_OK);
    assert_int_equal(hs_safetensors_count(st), 6);
    for (int i = 0; i < 6; i++) {
        const hs_st_tensor *t;
        assert_int_equal(hs_safetensors_find(st, in[i].name, &t), HS_OK);
        assert_string_equal(t->name, in[i].name);
        assert_int_equal(t->dtype, in[i].dtype);
        assert_int_equal(t->ndim, in[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            assert_int_equal(t->shape[d], in[i].shape[d]);
            numel *= (size_t)t->shape[d];
        }
        if (numel)
            assert_memory_equal(t->data, in[i].data, numel * hs_dtype_size(t->dtype));
        assert_int_equal((uintptr_t)t->data % hs_dtype_size(t->dtype), 0); /* aligned for direct use */
    }
    assert_non_null(hs_safetensors_tensor(st, 5));
    assert_null(hs_safetensors_tensor(st, 6));
    assert_null(hs_safetensors_tensor(st, -1));
    assert_string_equal(hs_safetensors_metadata(st, "format"), "pt");
    assert_string_equal(hs_safetensors_metadata(st, "note"), "h\xc3\xa9llo \"quoted\"\n");
    assert_null(hs_safetensors_metadata(st, "absent"));
    const hs_st_tensor *t;
    assert_int_equal(hs_safetensors_find(st, "nope", &t), HS_ERR_NOT_FOUND);
    assert_non_null(strstr(hs_last_error(), "has no tensor named nope"));

    /* header length is a multiple of 8 (data section 8-byte aligned) */
    FILE *fp = fopen(path, "rb");
    uint64_t hlen;
    assert_int_equal(fread(&hlen, 8, 1, fp), 1);
    fclose(fp);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(hs_safetensors_file_size(st), 8 + hlen + 24 + 8 + 10 + 2 + 3);

    /* replacing the file is atomic: the open mapping keeps the old contents */
    float other[6] = {0};
    const hs_st_tensor one = {"w.f32", HS_FP32, 2, {2, 3}, other};
    assert_int_equal(hs_safetensors_write(path, &one, 1, NULL, 0), HS_OK);
    assert_int_equal(hs_safetensors_find(st, "w.f32", &t), HS_OK);
    assert_memory_equal(t->data, f32, sizeof f32);
    hs_safetensors_free(st);
    assert_int_equal(hs_safetensors_new(path, &st), HS_OK);
    assert_int_equal(hs_safetensors_count(st), 1);
    assert_null(hs_safetensors_metadata(st, "format"));
    hs_safetensors_free(st);
}

static void test_empty_file_of_tensors(void **state)
{
    const char *path = scratch_path(*state, "none.safetensors");
    assert_int_equal(hs_safetensors_write(path, NULL, 0, NULL, 0), HS_OK);
    hs_safetensors *st;
    assert_int_equal(hs_safetensors_new(path, &st), HS_OK);
    assert_int_equal(hs_safetensors_count(st), 0);
    hs_safetensors_free(st);
}

static void expect_write_error(const char *dir, const hs_st_tensor *t, int n, const hs_st_kv *kv, int n_kv,
                               hs_status want, const char *msg)
{
    hs_status s = hs_safetensors_write(scratch_path(dir, "w.safetensors"), t, n, kv, n_kv);
    if (s != want)
        fail_msg("status %s (%s), expected %s", hs_status_str(s), hs_last_error(), hs_status_str(want));
    if (!strstr(hs_last_error(), msg))
        fail_msg("message \"%s\" lacks \"%s\"", hs_last_error(), msg);
    assert_int_equal(scratch_count_entries(dir), 0);
}

static void test_writer_errors(void **state)
{
    const char *dir = *state;
    float x[4] = {0};
    const hs_st_tensor dup[] = {{"a", HS_FP32, 1, {4}, x}, {"b", HS_FP32, 1, {4}, x}, {"a", HS_FP32, 1, {1}, x}};
    expect_write_error(dir, dup, 3, NULL, 0, HS_ERR_INVALID_ARGUMENT, "two tensors are named a");
    const hs_st_tensor empty[] = {{"", HS_FP32, 1, {4}, x}};
    expect_write_error(dir, empty, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "NULL or empty name");
    const hs_st_tensor reserved[] = {{"__metadata__", HS_FP32, 1, {4}, x}};
    expect_write_error(dir, reserved, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "reserved");
    const hs_st_tensor dtype[] = {{"a", HS_DTYPE_COUNT, 1, {4}, x}};
    expect_write_error(dir, dtype, 1, NULL, 0, HS_ERR_DTYPE, "invalid dtype");
    const hs_st_tensor rank[] = {{"a", HS_FP32, 5, {4}, x}};
    expect_write_error(dir, rank, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "ndim 5");
    const hs_st_tensor neg[] = {{"a", HS_FP32, 2, {4, -1}, x}};
    expect_write_error(dir, neg, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "size -1 in dim 1");
    const hs_st_tensor null_data[] = {{"a", HS_FP32, 1, {4}, NULL}};
    expect_write_error(dir, null_data, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "NULL data");
    const hs_st_tensor huge[] = {{"a", HS_FP32, 4, {1 << 30, 1 << 30, 1 << 30, 1}, x}};
    expect_write_error(dir, huge, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "too large");
    const hs_st_tensor utf8[] = {{"bad\xff", HS_FP32, 1, {4}, x}};
    expect_write_error(dir, utf8, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    const hs_st_tensor ok[] = {{"a", HS_FP32, 1, {4}, x}};
    const hs_st_kv kv[] = {{"k", "1"}, {"k", "2"}};
    expect_write_error(dir, ok, 1, kv, 2, HS_ERR_INVALID_ARGUMENT, "two metadata entries have the key k");
    const hs_st_kv null_kv[] = {{"k", NULL}};
    expect_write_error(dir, ok, 1, null_kv, 1, HS_ERR_INVALID_ARGUMENT, "NULL key or value");
    expect_write_error(dir, NULL, 1, NULL, 0, HS_ERR_INVALID_ARGUMENT, "NULL path, tensors");
    assert_int_equal(hs_safetensors_write("/nonexistent-dir/a.safetensors", ok, 1, NULL, 0), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "No such file or directory"));
}

static void test_truncated_and_short(void **state)
{
    const char *dir = *state;
    const char *path = scratch_path(dir, "t.safetensors");
    float x[16] = {0};
    const hs_st_tensor t[] = {{"a", HS_FP32, 1, {16}, x}};
    assert_int_equal(hs_safetensors_write(path, t, 1, NULL, 0), HS_OK);
    FILE *fp = fopen(path, "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_int_equal(scratch_write(path, buf, n - 4), 0);
    expect_open_error(path, HS_ERR_FORMAT, "outside the 60-byte data section");
    assert_int_equal(scratch_write(path, buf, 20), 0);
    expect_open_error(path, HS_ERR_FORMAT, "runs past the end of the 20-byte file");
    assert_int_equal(scratch_write(path, buf, 5), 0);
    expect_open_error(path, HS_ERR_FORMAT, "5 bytes, too short for the 8-byte header length");
    assert_int_equal(scratch_write(path, buf, 0), 0);
    expect_open_error(path, HS_ERR_FORMAT, "0 bytes, too short");
    expect_open_error(scratch_path(dir, "missing.safetensors"), HS_ERR_IO, "No such file or directory");
}

static void test_malformed_headers(void **state)
{
    const char *dir = *state;
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\"", 0, HS_ERR_FORMAT, "JSON at byte");
    expect_raw_error(dir, "[]", 0, HS_ERR_FORMAT, "not a JSON object");
    expect_raw_error(dir, "{\"a\": 1}", 0, HS_ERR_FORMAT, "tensor a: entry is not an object");
    expect_raw_error(dir, "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, HS_ERR_FORMAT,
                     "\"dtype\" is missing");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8, HS_ERR_DTYPE,
                     "tensor a has dtype F64");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, HS_ERR_FORMAT,
                     "\"shape\" is missing");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, HS_ERR_FORMAT,
                     "non-negative integer");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4, HS_ERR_FORMAT,
                     "non-negative integer");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
                     HS_ERR_FORMAT, "5 dimensions");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, HS_ERR_FORMAT, "\"data_offsets\" is not");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, HS_ERR_FORMAT,
                     "\"data_offsets\" is not");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 4, HS_ERR_FORMAT,
                     "data_offsets [0, 8] are outside the 4-byte data section");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4, HS_ERR_FORMAT,
                     "outside");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 8, HS_ERR_FORMAT,
                     "span 4 bytes, but its dtype and shape need 8");
    expect_raw_error(dir,
                     "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                     " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                     8, HS_ERR_FORMAT, "overlap");
    expect_raw_error(dir,
                     "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                     " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                     12, HS_ERR_FORMAT, "data bytes [4, 8) before tensor b belong to no tensor");
    expect_raw_error(dir, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 12, HS_ERR_FORMAT,
                     "the tensors cover 4 bytes of a 12-byte data section");
    expect_raw_error(dir,
                     "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                     " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                     8, HS_ERR_FORMAT, "two tensors are named a");
    expect_raw_error(dir, "{\"__metadata__\": {\"k\": 1}}", 0, HS_ERR_FORMAT, "value for key k is not a string");
    expect_raw_error(dir, "{\"__metadata__\": []}", 0, HS_ERR_FORMAT, "__metadata__ is not an object");
    expect_raw_error(dir, "{\"__metadata__\": {}, \"__metadata__\": {}}", 0, HS_ERR_FORMAT, "two __metadata__");
    /* a well-formed hand-written file with padding spaces is accepted */
    const char *path = scratch_path(dir, "raw.safetensors");
    float v[2] = {1, 2};
    write_raw(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}    ", v, 8);
    hs_safetensors *st;
    assert_int_equal(hs_safetensors_new(path, &st), HS_OK);
    const hs_st_tensor *t;
    assert_int_equal(hs_safetensors_find(st, "x", &t), HS_OK);
    assert_memory_equal(t->data, v, 8);
    hs_safetensors_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_of_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_headers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
