/* Status codes, the thread-local error message, logging level, tensors,
 * allocation and the thread count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperspeed/core.h"

/* main() sets HS_LOG_LEVEL=info before anything reads it; this must be the
 * first test because the library reads the variable once, on first use. */
static void test_log_level_from_env(void **state)
{
    (void)state;
    assert_int_equal(hs_log_get_level(), HS_LOG_INFO);
    hs_log_set_level(HS_LOG_ERROR);
    assert_int_equal(hs_log_get_level(), HS_LOG_ERROR);
    hs_log(HS_LOG_INFO, "not printed at level error");
    hs_log_set_level(HS_LOG_DEBUG);
    assert_int_equal(hs_log_get_level(), HS_LOG_DEBUG);
    hs_log_set_level(HS_LOG_WARN);
    assert_int_equal(hs_log_get_level(), HS_LOG_WARN);
}

/* The library's version is the header's (the build and the header agree). */
static void test_version(void **state)
{
    (void)state;
    int major = -1, minor = -1, patch = -1;
    const char *v = hs_version(&major, &minor, &patch);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", HS_VERSION_MAJOR, HS_VERSION_MINOR, HS_VERSION_PATCH);
    assert_string_equal(v, want);
    assert_int_equal(major, HS_VERSION_MAJOR);
    assert_int_equal(minor, HS_VERSION_MINOR);
    assert_int_equal(patch, HS_VERSION_PATCH);
    assert_string_equal(hs_version(NULL, NULL, NULL), want);
}

static void test_status_names(void **state)
{
    (void)state;
    static const char *const want[HS_STATUS_COUNT] = {
        "HS_OK",        "HS_ERR_INVALID_ARGUMENT", "HS_ERR_SHAPE_MISMATCH", "HS_ERR_DTYPE",
        "HS_ERR_OUT_OF_MEMORY", "HS_ERR_IO",       "HS_ERR_FORMAT",         "HS_ERR_NOT_FOUND",
        "HS_ERR_DEVICE", "HS_ERR_NPU_BUFFER",      "HS_ERR_COMM",           "HS_ERR_INTERNAL",
    };
    for (int s = 0; s < HS_STATUS_COUNT; s++)
        assert_string_equal(hs_status_str((hs_status)s), want[s]);
    assert_non_null(hs_status_str(HS_STATUS_COUNT));
    assert_string_equal(hs_status_str(HS_STATUS_COUNT), "HS_ERR_UNKNOWN_STATUS");
    assert_string_equal(hs_status_str((hs_status)-1), "HS_ERR_UNKNOWN_STATUS");
}

static void test_error_message(void **state)
{
    (void)state;
    hs_clear_error();
    assert_string_equal(hs_last_error(), "");
    assert_int_equal(hs_error(HS_ERR_IO, "open %s: %d", "/x", 2), HS_ERR_IO);
    assert_string_equal(hs_last_error(), "open /x: 2");
    assert_int_equal(hs_error(HS_ERR_COMM, "second"), HS_ERR_COMM);
    assert_string_equal(hs_last_error(), "second");
    hs_clear_error();
    assert_string_equal(hs_last_error(), "");

    /* an over-long message is truncated, never overflows */
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hs_error(HS_ERR_FORMAT, "%s", big);
    size_t len = strlen(hs_last_error());
    assert_true(len > 100 && len < sizeof big - 1);
    hs_clear_error();
}

static void *other_thread(void *arg)
{
    *(int *)arg = hs_last_error()[0] == '\0';
    hs_error(HS_ERR_INTERNAL, "from the other thread");
    return NULL;
}

/* The message is per thread: another thread neither sees nor clobbers it. */
static void test_error_is_thread_local(void **state)
{
    (void)state;
    hs_error(HS_ERR_IO, "main thread");
    int other_was_empty = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &other_was_empty), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(other_was_empty);
    assert_string_equal(hs_last_error(), "main thread");
    hs_clear_error();
}

/* Each bad argument: HS_ERR_INVALID_ARGUMENT, a message, a zeroed struct. */
static void expect_bad_new(hs_dtype dt, int ndim, const int64_t *shape, const char *needle)
{
    hs_tensor t;
    memset(&t, 0x5a, sizeof t);
    hs_clear_error();
    assert_int_equal(hs_tensor_new(&t, dt, ndim, shape), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), needle));
    assert_null(t.data);
    assert_int_equal(t.owns, 0);
    hs_tensor_free(&t); /* safe on the failed struct */
}

static void test_tensor_new_bad_arguments(void **state)
{
    (void)state;
    const int64_t ok[5] = {2, 3, 4, 5, 6};
    const int64_t zero[2] = {4, 0};
    const int64_t negative[3] = {2, -3, 4};
    expect_bad_new(HS_FP32, 0, ok, "rank 0");
    expect_bad_new(HS_FP32, 5, ok, "rank 5");
    expect_bad_new(HS_FP32, -1, ok, "rank -1");
    expect_bad_new(HS_FP32, 2, zero, "size 0");
    expect_bad_new(HS_FP32, 3, negative, "size -3");
    expect_bad_new(HS_DTYPE_COUNT, 2, ok, "dtype");
    expect_bad_new((hs_dtype)-1, 2, ok, "dtype");
    expect_bad_new(HS_FP32, 2, NULL, "NULL");
    assert_int_equal(hs_tensor_new(NULL, HS_FP32, 2, ok), HS_ERR_INVALID_ARGUMENT);
}

static void test_tensor_new_good(void **state)
{
    (void)state;
    static const struct {
        hs_dtype dt;
        int ndim;
        int64_t shape[4];
        int64_t numel;
    } cases[] = {
        {HS_FP32, 1, {7}, 7},           {HS_BF16, 2, {3, 5}, 15},     {HS_FP16, 3, {2, 3, 4}, 24},
        {HS_INT64, 4, {2, 1, 3, 2}, 12}, {HS_INT8, 1, {1}, 1},         {HS_INT32, 2, {129, 3}, 387},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hs_tensor t;
        assert_int_equal(hs_tensor_new(&t, cases[c].dt, cases[c].ndim, cases[c].shape), HS_OK);
        assert_non_null(t.data);
        assert_int_equal((uintptr_t)t.data % 64, 0);
        assert_int_equal(t.owns, 1);
        assert_null(t.device);
        assert_int_equal(hs_tensor_device_kind(&t), HS_DEVICE_CPU);
        assert_int_equal(t.ndim, cases[c].ndim);
        for (int d = 0; d < HS_MAX_DIMS; d++)
            assert_int_equal(t.shape[d], d < cases[c].ndim ? cases[c].shape[d] : 1);
        assert_int_equal(hs_tensor_numel(&t), cases[c].numel);
        size_t bytes = hs_tensor_nbytes(&t);
        assert_int_equal(bytes, (size_t)cases[c].numel * hs_dtype_size(cases[c].dt));
        const unsigned char *p = t.data;
        for (size_t i = 0; i < bytes; i++)
            assert_int_equal(p[i], 0);
        hs_tensor_free(&t);
        assert_null(t.data);
        assert_int_equal(t.owns, 0);
        hs_tensor_free(&t); /* twice is harmless: the struct was zeroed */
    }
}

static void test_tensor_view(void **state)
{
    (void)state;
    float buf[12] = {0};
    const int64_t shape[2] = {3, 4};
    hs_tensor v;
    assert_int_equal(hs_tensor_view(&v, NULL, HS_FP32, 2, shape), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "NULL"));
    assert_int_equal(hs_tensor_view(&v, buf, HS_FP32, 0, shape), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_tensor_view(&v, buf, HS_FP32, 2, NULL), HS_ERR_INVALID_ARGUMENT);

    assert_int_equal(hs_tensor_view(&v, buf, HS_FP32, 2, shape), HS_OK);
    assert_ptr_equal(v.data, buf);
    assert_int_equal(v.owns, 0);
    assert_int_equal(hs_tensor_numel(&v), 12);
    assert_int_equal(hs_tensor_nbytes(&v), sizeof buf);
    hs_tensor_free(&v); /* would crash or trip ASan if it freed a stack buffer */
    assert_null(v.data);

    /* a view of owned storage: freeing the view leaves the owner intact */
    hs_tensor owner;
    assert_int_equal(hs_tensor_new(&owner, HS_FP32, 2, shape), HS_OK);
    hs_tensor w = hs_view2(owner.data, HS_FP32, 3, 4);
    assert_int_equal(w.owns, 0);
    assert_int_equal(hs_tensor_numel(&w), 12);
    hs_tensor_free(&w);
    ((float *)owner.data)[11] = 1.0f; /* still ours: ASan would flag a use after free */
    hs_tensor_free(&owner);

    hs_tensor v4 = hs_view4(buf, HS_BF16, 1, 2, 3, 2);
    assert_int_equal(hs_tensor_numel(&v4), 12);
    assert_int_equal(hs_tensor_nbytes(&v4), 24);
}

static void test_alloc(void **state)
{
    (void)state;
    for (size_t bytes = 0; bytes < 200; bytes += 37) {
        unsigned char *p = hs_alloc(bytes);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        memset(p, 1, bytes);
        hs_free(p);
    }
    hs_free(NULL);
}

static void test_threads(void **state)
{
    (void)state;
    assert_true(hs_num_threads() >= 1);
    assert_int_equal(hs_set_num_threads(0), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "0"));
    assert_int_equal(hs_set_num_threads(-4), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_set_num_threads(3), HS_OK);
    assert_int_equal(hs_num_threads(), 3);
    assert_int_equal(hs_set_num_threads(1), HS_OK);
    assert_int_equal(hs_num_threads(), 1);

    double t0 = hs_time_now(), t1 = hs_time_now();
    assert_true(t0 > 0.0 && t1 >= t0);
}

int main(void)
{
    setenv("HS_LOG_LEVEL", "info", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_level_from_env),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_error_is_thread_local),
        cmocka_unit_test(test_tensor_new_bad_arguments),
        cmocka_unit_test(test_tensor_new_good),
        cmocka_unit_test(test_tensor_view),
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
