/* NPU device: HBM allocator, streams and events, PCIe copies, current
 * device, trace recording and reading back. */
#include "gradcheck.h"
#include "npu_fixture.h"
#include "scratch.h"

#include "core/json.h"
#include "hyperspeed/npu.h"
#include "npu_sim/device.h"
#include "npu_sim/trace.h"

#include <string.h>

/* Execute mode: aligned, zeroed, host-backed; used/peak round to 512. */
static void test_hbm_alloc_free(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    assert_int_equal(hs_npu_mem_capacity(d), 64u << 20);
    void *a, *b;
    assert_int_equal(hs_npu_malloc(d, 1000, &a), HS_OK);
    assert_int_equal(hs_npu_malloc(d, 4096, &b), HS_OK);
    assert_int_equal((uintptr_t)a % 512, 0);
    assert_int_equal((uintptr_t)b % 512, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(((unsigned char *)a)[i], 0);
    memset(a, 7, 1000);
    assert_int_equal(hs_npu_mem_used(d), 1024 + 4096);
    assert_int_equal(hs_npu_free_mem(d, a), HS_OK);
    assert_int_equal(hs_npu_mem_used(d), 4096);
    assert_int_equal(hs_npu_mem_peak(d), 1024 + 4096);
    void *z = &z;
    assert_int_equal(hs_npu_malloc(d, 0, &z), HS_OK);
    assert_null(z);
    assert_int_equal(hs_npu_free_mem(d, NULL), HS_OK);
    hs_npu_free(d); /* frees b */
}

/* Freeing an address the device did not hand out (or twice) is an error. */
static void test_hbm_foreign_free(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    void *a;
    int local;
    assert_int_equal(hs_npu_malloc(d, 100, &a), HS_OK);
    EXPECT_ERR(hs_npu_free_mem(d, &local), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_npu_free_mem(d, (char *)a + 1), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(hs_npu_free_mem(d, a), HS_OK);
    EXPECT_ERR(hs_npu_free_mem(d, a), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "not an allocation"));
    hs_npu_free(d);
}

/* OOM names requested, in use, peak and capacity, in bytes and units. */
static void test_hbm_oom(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    void *a, *b;
    assert_int_equal(hs_npu_malloc(d, 48u << 20, &a), HS_OK);
    EXPECT_ERR(hs_npu_malloc(d, 32u << 20, &b), HS_ERR_OUT_OF_MEMORY);
    const char *m = hs_last_error();
    assert_non_null(strstr(m, "requested 33554432 B (32.00 MiB)"));
    assert_non_null(strstr(m, "in use 50331648 B (48.00 MiB)"));
    assert_non_null(strstr(m, "peak 50331648 B (48.00 MiB)"));
    assert_non_null(strstr(m, "capacity 67108864 B (64.00 MiB)"));
    assert_null(b);
    EXPECT_ERR(hs_npu_malloc(d, SIZE_MAX, &b), HS_ERR_OUT_OF_MEMORY);
    assert_int_equal(hs_npu_mem_used(d), 48u << 20);
    assert_int_equal(hs_npu_free_mem(d, a), HS_OK);
    hs_npu_free(d);
}

/* Estimate mode: 60 GB on a 910B2 without host memory, unique fake
 * addresses that hs_npu_addr_valid still checks. */
static void test_hbm_estimate(void **state)
{
    (void)state;
    hs_npu *d = npu_make("910B2", HS_NPU_ESTIMATE);
    void *p[60];
    for (int i = 0; i < 60; i++) {
        assert_int_equal(hs_npu_malloc(d, (size_t)1 << 30, &p[i]), HS_OK);
        assert_true((uintptr_t)p[i] >= HS_NPU_FAKE_BASE);
        assert_int_equal((uintptr_t)p[i] % 512, 0);
        if (i)
            assert_true(p[i] != p[i - 1]);
    }
    assert_int_equal(hs_npu_mem_used(d), (size_t)60 << 30);
    assert_true(hs_npu_addr_valid(d, (char *)p[7] + 100, 1000));
    assert_false(hs_npu_addr_valid(d, (char *)p[7] + ((size_t)1 << 30) - 10, 20));
    for (int i = 0; i < 60; i += 2)
        assert_int_equal(hs_npu_free_mem(d, p[i]), HS_OK);
    assert_int_equal(hs_npu_mem_used(d), (size_t)30 << 30);
    assert_int_equal(hs_npu_mem_peak(d), (size_t)60 << 30);
    assert_false(hs_npu_addr_valid(d, p[0], 1));
    hs_npu_free(d);
}

/* hs_npu_addr_valid: ranges inside one allocation only. */
static void test_addr_valid(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    char *a, *b;
    assert_int_equal(hs_npu_malloc(d, 1000, (void **)&a), HS_OK);
    assert_int_equal(hs_npu_malloc(d, 64, (void **)&b), HS_OK);
    assert_true(hs_npu_addr_valid(d, a, 1000));
    assert_true(hs_npu_addr_valid(d, a + 999, 1));
    assert_true(hs_npu_addr_valid(d, a + 1000, 0));
    assert_false(hs_npu_addr_valid(d, a, 1001));
    assert_false(hs_npu_addr_valid(d, a + 1000, 1));
    assert_false(hs_npu_addr_valid(d, a - 1, 1));
    assert_true(hs_npu_addr_valid(d, b, 64));
    assert_false(hs_npu_addr_valid(d, b + 32, 64));
    hs_npu_free(d);
}

/* Streams run in order; events order work across streams. */
static void test_streams_events(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    hs_npu_stream *s0 = hs_npu_default_stream(d), *s1;
    hs_npu_event *e;
    assert_int_equal(hs_npu_stream_new(d, &s1), HS_OK);
    assert_int_equal(hs_npu_event_new(d, &e), HS_OK);
    assert_float_equal(hs_npu_stream_advance(s0, "a", "kernel", 2e-3), 0, 0);
    assert_float_equal(hs_npu_stream_advance(s0, "b", "kernel", 1e-3), 2e-3, 1e-15);
    assert_float_equal(hs_npu_stream_time(s0), 3e-3, 1e-15);
    hs_npu_stream_wait(s1, e); /* never recorded: no delay */
    assert_float_equal(hs_npu_stream_advance(s1, "c", "comm", 0.5e-3), 0, 0);
    hs_npu_event_record(e, s0);
    hs_npu_stream_wait(s1, e);
    assert_float_equal(hs_npu_stream_advance(s1, "d", "comm", 1e-3), 3e-3, 1e-15);
    assert_float_equal(hs_npu_stream_time(s1), 4e-3, 1e-15);
    hs_npu_event_record(e, s0); /* s0 at 3 ms, behind s1: waiting does not move s1 back */
    hs_npu_stream_wait(s1, e);
    assert_float_equal(hs_npu_stream_time(s1), 4e-3, 1e-15);
    assert_float_equal(hs_npu_stream_advance(s0, "neg", "kernel", -1), 3e-3, 1e-15);
    assert_float_equal(hs_npu_stream_time(s0), 3e-3, 1e-15);
    hs_npu_stream *s2;
    assert_int_equal(hs_npu_stream_new(d, &s2), HS_OK); /* starts at the default stream's time */
    assert_float_equal(hs_npu_stream_time(s2), 3e-3, 1e-15);
    hs_npu_stream_free(s2);
    hs_npu_stream_free(s0); /* the default stream: ignored */
    hs_npu_event_free(e);
    hs_npu_stream_free(s1);
    hs_npu_free(d);
}

/* Copies take latency + bytes / pcie_bw and move the data in execute mode. */
static void test_memcpy(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    const hs_npu_spec *sp = hs_npu_spec_of(d);
    float host[256], back[256];
    for (int i = 0; i < 256; i++)
        host[i] = (float)i;
    void *dev;
    assert_int_equal(hs_npu_malloc(d, sizeof host, &dev), HS_OK);
    assert_int_equal(hs_npu_memcpy_h2d(d, NULL, dev, host, sizeof host), HS_OK);
    double one = sp->pcie_latency_s + sizeof host / sp->pcie_bw;
    assert_float_equal(hs_npu_stream_time(hs_npu_default_stream(d)), one, 1e-15);
    hs_npu_stream *s;
    assert_int_equal(hs_npu_stream_new(d, &s), HS_OK);
    assert_int_equal(hs_npu_memcpy_d2h(d, s, back, dev, sizeof back), HS_OK);
    assert_memory_equal(host, back, sizeof host);
    assert_float_equal(hs_npu_stream_time(s), 2 * one, 1e-15);
    EXPECT_ERR(hs_npu_memcpy_h2d(d, NULL, dev, host, sizeof host + 1), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "not inside one live allocation"));
    EXPECT_ERR(hs_npu_memcpy_d2h(d, NULL, back, (char *)dev + 4, sizeof back), HS_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(hs_npu_memcpy_d2h(d, NULL, back, host, 4), HS_ERR_INVALID_ARGUMENT);
    hs_npu *other = npu_make("test", HS_NPU_EXECUTE);
    EXPECT_ERR(hs_npu_memcpy_h2d(other, s, dev, host, 4), HS_ERR_INVALID_ARGUMENT);
    hs_npu_free(other);
    hs_npu_stream_free(s);
    hs_npu_free(d);
}

/* Estimate mode copies only account: 1 GiB at 100 GB/s... on the test chip
 * 64 MiB is the HBM, so copy 48 MiB. */
static void test_memcpy_estimate(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    void *dev;
    size_t n = (size_t)48 << 20;
    assert_int_equal(hs_npu_malloc(d, n, &dev), HS_OK);
    assert_int_equal(hs_npu_memcpy_h2d(d, NULL, dev, NULL, n), HS_OK);
    const hs_npu_spec *sp = hs_npu_spec_of(d);
    assert_float_equal(hs_npu_stream_time(hs_npu_default_stream(d)), sp->pcie_latency_s + n / sp->pcie_bw, 1e-12);
    hs_npu_free(d);
}

/* Device handles: an NPU's (its default stream) and a stream's; the NPU
 * and stream behind each; which count as the same device. */
static void test_device_handles(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE), *e = npu_make("test", HS_NPU_ESTIMATE);
    hs_npu_stream *s;
    assert_int_equal(hs_npu_stream_new(d, &s), HS_OK);
    hs_device *dd = hs_npu_device(d), *ds = hs_npu_stream_device(s), *de = hs_npu_device(e);
    assert_int_equal(hs_device_kind_of(dd), HS_DEVICE_NPU);
    assert_int_equal(hs_device_kind_of(NULL), HS_DEVICE_CPU);
    assert_ptr_equal(hs_device_npu(dd), d);
    assert_ptr_equal(hs_device_stream(dd), hs_npu_default_stream(d));
    assert_ptr_equal(hs_device_npu(ds), d);
    assert_ptr_equal(hs_device_stream(ds), s);
    assert_ptr_equal(hs_npu_device(d), dd); /* one handle per stream, for the device's life */
    assert_null(hs_device_npu(NULL));
    assert_null(hs_device_stream(NULL));
    assert_null(hs_npu_device(NULL));
    assert_true(hs_device_same(dd, ds));  /* two streams of one NPU */
    assert_false(hs_device_same(dd, de)); /* two NPUs */
    assert_false(hs_device_same(dd, NULL));
    assert_true(hs_device_same(NULL, NULL));
    hs_tensor t = hs_on(hs_view1((void *)dd, HS_FP32, 1), ds);
    assert_ptr_equal(t.device, ds);
    assert_int_equal(hs_tensor_device_kind(&t), HS_DEVICE_NPU);
    hs_npu_stream_free(s);
    hs_npu_free(d);
    hs_npu_free(e);
}

/* Reads a whole file into a malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

/* Counts events of phase `ph` (and name, when given) in the array. */
static int count_events(const hs_json *events, const char *ph, const char *name)
{
    int n = 0;
    for (const hs_json *e = events->child; e; e = e->next)
        if (!strcmp(hs_json_string(hs_json_get(e, "ph")), ph) &&
            (!name || !strcmp(hs_json_string(hs_json_get(e, "name")), name)))
            n++;
    return n;
}

/* Records a little of everything into path. */
static void record_trace(hs_npu *d, const char *path)
{
    assert_int_equal(hs_npu_trace_start(d, path), HS_OK);
    assert_true(hs_npu_tracing(d));
    EXPECT_ERR(hs_npu_trace_start(d, path), HS_ERR_INVALID_ARGUMENT);
    float host[64] = {0};
    void *dev;
    assert_int_equal(hs_npu_malloc(d, sizeof host, &dev), HS_OK);
    assert_int_equal(hs_npu_memcpy_h2d(d, NULL, dev, host, sizeof host), HS_OK);
    hs_npu_stream *s = hs_npu_default_stream(d);
    const hs_npu_trace_arg args[] = {{"cube_util", 0.5}, {"hbm_bytes", 1e6}, {"flops", 2e9}};
    for (int i = 0; i < 2; i++) {
        double t = hs_npu_stream_advance_args(s, "matmul", "kernel", 1e-3, args, 3);
        hs_npu_trace_slice(d, "npu0 cores", "aic0.CUBE", "mmad", t, 0.5e-3);
    }
    const hs_npu_trace_arg vargs[] = {{"vector_util", 0.25}};
    hs_npu_stream_advance_args(s, "gelu \"fast\"", "kernel", 3e-3, vargs, 1);
    hs_npu_trace_counter(d, "HBM in use", 1.0, 512);
    assert_int_equal(hs_npu_free_mem(d, dev), HS_OK);
    assert_int_equal(hs_npu_trace_stop(d), HS_OK);
    assert_false(hs_npu_tracing(d));
}

/* The trace parses as JSON with metadata, slices and counters. */
static void test_trace_written(void **state)
{
    (void)state;
    char *dir = scratch_dir("npu_trace");
    assert_non_null(dir);
    const char *path = scratch_path(dir, "t.json");
    hs_npu *d = npu_make("test", HS_NPU_EXECUTE);
    record_trace(d, path);
    size_t len;
    char *text = slurp(path, &len);
    hs_json_doc *doc;
    assert_int_equal(hs_json_parse(text, len, &doc), HS_OK);
    const hs_json *events = hs_json_get(hs_json_root(doc), "traceEvents");
    assert_non_null(events);
    assert_int_equal(events->type, HS_JSON_ARRAY);
    assert_int_equal(count_events(events, "X", "matmul"), 2);
    assert_int_equal(count_events(events, "X", "mmad"), 2);
    assert_int_equal(count_events(events, "X", "gelu \"fast\""), 1);
    assert_int_equal(count_events(events, "X", "memcpy_h2d"), 1);
    assert_int_equal(count_events(events, "C", "HBM in use"), 4); /* start, malloc, free, explicit */
    assert_int_equal(count_events(events, "M", "process_name"), 2);
    assert_int_equal(count_events(events, "M", "thread_name"), 2);
    for (const hs_json *e = events->child; e; e = e->next) {
        if (strcmp(hs_json_string(hs_json_get(e, "name")), "matmul"))
            continue;
        const hs_json *a = hs_json_get(e, "args");
        assert_non_null(a);
        assert_float_equal(strtod(hs_json_get(a, "flops")->str, NULL), 2e9, 0);
        assert_string_equal(hs_json_string(hs_json_get(e, "cat")), "kernel");
        assert_float_equal(strtod(hs_json_get(e, "dur")->str, NULL), 1000, 1e-6); /* microseconds */
    }
    hs_json_free(doc);
    free(text);
    hs_npu_free(d);
    scratch_free(dir);
}

/* hs_npu_trace_profile totals kernel slices and their args. */
static void test_trace_profile(void **state)
{
    (void)state;
    char *dir = scratch_dir("npu_trace");
    assert_non_null(dir);
    const char *path = scratch_path(dir, "t.json");
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    record_trace(d, path);
    hs_npu_kernel_profile *k;
    size_t n;
    assert_int_equal(hs_npu_trace_profile(path, &k, &n), HS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(k[0].name, "gelu \"fast\""); /* most time first */
    assert_int_equal(k[0].count, 1);
    assert_float_equal(k[0].vector_util, 0.25, 1e-12);
    assert_float_equal(k[0].cube_util, -1, 0);
    assert_string_equal(k[1].name, "matmul");
    assert_int_equal(k[1].count, 2);
    assert_float_equal(k[1].seconds, 2e-3, 1e-12);
    assert_float_equal(k[1].flops, 4e9, 0);
    assert_float_equal(k[1].hbm_bytes, 2e6, 0);
    assert_float_equal(k[1].cube_util, 0.5, 1e-12);
    assert_float_equal(k[1].vector_util, -1, 0);
    free(k);
    const char *bad = scratch_path(dir, "bad.json");
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("{\"traceEvents\": 3}", f);
    fclose(f);
    EXPECT_ERR(hs_npu_trace_profile(bad, &k, &n), HS_ERR_FORMAT);
    f = fopen(bad, "w");
    assert_non_null(f);
    fclose(f);
    EXPECT_ERR(hs_npu_trace_profile(bad, &k, &n), HS_ERR_FORMAT);
    EXPECT_ERR(hs_npu_trace_profile(scratch_path(dir, "none.json"), &k, &n), HS_ERR_IO);
    hs_npu_free(d);
    scratch_free(dir);
}

/* A trace path that cannot be created fails at start; stop without a
 * trace does nothing; hs_npu_free writes a trace still recording. */
static void test_trace_io(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    EXPECT_ERR(hs_npu_trace_start(d, "/nonexistent/dir/t.json"), HS_ERR_IO);
    assert_false(hs_npu_tracing(d));
    assert_int_equal(hs_npu_trace_stop(d), HS_OK);
    char *dir = scratch_dir("npu_trace");
    assert_non_null(dir);
    const char *path = scratch_path(dir, "auto.json");
    assert_int_equal(hs_npu_trace_start(d, path), HS_OK);
    hs_npu_stream_advance(hs_npu_default_stream(d), "k", "kernel", 1e-6);
    hs_npu_free(d);
    hs_npu_kernel_profile *k;
    size_t n;
    assert_int_equal(hs_npu_trace_profile(path, &k, &n), HS_OK);
    assert_int_equal(n, 1);
    free(k);
    scratch_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hbm_alloc_free),  cmocka_unit_test(test_hbm_foreign_free),
        cmocka_unit_test(test_hbm_oom),         cmocka_unit_test(test_hbm_estimate),
        cmocka_unit_test(test_addr_valid),      cmocka_unit_test(test_streams_events),
        cmocka_unit_test(test_memcpy),          cmocka_unit_test(test_memcpy_estimate),
        cmocka_unit_test(test_device_handles),         cmocka_unit_test(test_trace_written),
        cmocka_unit_test(test_trace_profile),   cmocka_unit_test(test_trace_io),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
