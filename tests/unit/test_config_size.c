/* The config structs' size tags (docs/api.md, "Config structs"): every
 * *_default() and every model preset sets `size`; each entry point that
 * takes a config refuses a struct of size 0 (not made by its *_default)
 * and one of another size (built against another version's header) with
 * HS_ERR_INVALID_ARGUMENT, a message naming the struct, and nothing made.
 * (hs_dp_config and hs_engine_config, whose entry points need MPI groups,
 * are tested in tests/mpi/test_dp.c and test_engine.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "hyperspeed.h"

/* The last call failed with HS_ERR_INVALID_ARGUMENT and a message holding `phrase`. */
static void expect_refused(hs_status s, const char *phrase)
{
    assert_int_equal(s, HS_ERR_INVALID_ARGUMENT);
    if (!strstr(hs_last_error(), phrase))
        fail_msg("'%s' lacks '%s'", hs_last_error(), phrase);
}

/* The sizes a caller of another version would pass: 0 (a zeroed struct)
 * and a few bytes more or less than this build's. */
static void expect_sizes_refused(const char *type, size_t own, hs_status (*call)(size_t size, void *ctx), void *ctx)
{
    char phrase[128];
    snprintf(phrase, sizeof phrase, "%s is not initialised (size 0)", type);
    expect_refused(call(0, ctx), phrase);
    const size_t other[2] = {own + 8, own - 4};
    for (int i = 0; i < 2; i++) {
        snprintf(phrase, sizeof phrase, "%s of %zu bytes, but this library (hyperspeed %s) knows %zu-byte ones", type,
                 other[i], hs_version(NULL, NULL, NULL), own);
        expect_refused(call(other[i], ctx), phrase);
    }
}

static void test_defaults_and_presets_are_tagged(void **state)
{
    (void)state;
    assert_int_equal(hs_model_config_default().size, sizeof(hs_model_config));
    assert_int_equal(hs_model_options_default().size, sizeof(hs_model_options));
    assert_int_equal(hs_model_options_default().shard.size, sizeof(hs_model_shard));
    assert_int_equal(hs_model_shard_default().size, sizeof(hs_model_shard));
    assert_int_equal(hs_optimizer_config_default().size, sizeof(hs_optimizer_config));
    assert_int_equal(hs_dp_config_default().size, sizeof(hs_dp_config));
    assert_int_equal(hs_layout_default().size, sizeof(hs_layout));
    assert_int_equal(hs_runtime_config_default().size, sizeof(hs_runtime_config));
    assert_int_equal(hs_loader_config_default().size, sizeof(hs_loader_config));
    const hs_engine_config ec = hs_engine_config_default();
    assert_int_equal(ec.size, sizeof(hs_engine_config));
    assert_int_equal(ec.layout.size, sizeof(hs_layout));
    assert_int_equal(ec.optim.size, sizeof(hs_optimizer_config));
    for (const char *const *n = hs_model_preset_names(); *n; n++) {
        hs_model_config c;
        memset(&c, 0, sizeof c);
        assert_int_equal(hs_model_config_preset(*n, &c), HS_OK);
        assert_int_equal(c.size, sizeof c);
        assert_int_equal(hs_model_config_validate(&c), HS_OK);
    }
}

static hs_model_config tiny(void)
{
    hs_model_config c = hs_model_config_default();
    c.n_layer = 1;
    c.d_model = 32;
    c.d_ff = 64;
    c.max_seq = 8;
    return c;
}

static hs_status model_with_config_size(size_t size, void *ctx)
{
    hs_model_config c = tiny();
    c.size = size;
    hs_model **m = ctx;
    const hs_status s = hs_model_new(&c, 1, 8, m);
    assert_null(*m);
    return s;
}

static hs_status model_with_options_size(size_t size, void *ctx)
{
    hs_model_config c = tiny();
    hs_model_options o = hs_model_options_default();
    o.size = size;
    hs_model **m = ctx;
    const hs_status s = hs_model_new_ex(&c, 1, 8, &o, m);
    assert_null(*m);
    return s;
}

static hs_status model_with_shard_size(size_t size, void *ctx)
{
    hs_model_config c = tiny();
    hs_model_options o = hs_model_options_default();
    o.shard.size = size;
    hs_model **m = ctx;
    const hs_status s = hs_model_new_ex(&c, 1, 8, &o, m);
    assert_null(*m);
    return s;
}

static void test_model_configs(void **state)
{
    (void)state;
    hs_model *m = (hs_model *)&m; /* must come back NULL */
    expect_sizes_refused("hs_model_config", sizeof(hs_model_config), model_with_config_size, &m);
    expect_sizes_refused("hs_model_options", sizeof(hs_model_options), model_with_options_size, &m);
    expect_sizes_refused("hs_model_shard", sizeof(hs_model_shard), model_with_shard_size, &m);
    hs_model_config c = tiny();
    c.size = 0;
    expect_refused(hs_model_config_validate(&c), "start from hs_model_config_default() or hs_model_config_preset()");
}

static hs_status optimizer_with_size(size_t size, void *ctx)
{
    hs_optimizer_config oc = hs_optimizer_config_default();
    oc.size = size;
    hs_optimizer *o = (hs_optimizer *)&o;
    const hs_status s = hs_optimizer_new(ctx, &oc, &o);
    assert_null(o);
    return s;
}

static void test_optimizer_config(void **state)
{
    (void)state;
    const hs_model_config c = tiny();
    hs_model *m;
    assert_int_equal(hs_model_new(&c, 1, 8, &m), HS_OK);
    expect_sizes_refused("hs_optimizer_config", sizeof(hs_optimizer_config), optimizer_with_size, m);
    hs_model_free(m);
}

static hs_status layout_with_size(size_t size, void *ctx)
{
    (void)ctx;
    const hs_model_config c = tiny();
    hs_layout l = hs_layout_default();
    l.size = size;
    hs_layout_plan plan;
    return hs_layout_check(&c, &l, &plan);
}

static hs_status layout_with_model_config_size(size_t size, void *ctx)
{
    (void)ctx;
    hs_model_config c = tiny();
    c.size = size;
    const hs_layout l = hs_layout_default();
    hs_layout_plan plan;
    return hs_layout_check(&c, &l, &plan);
}

static void test_layout(void **state)
{
    (void)state;
    expect_sizes_refused("hs_layout", sizeof(hs_layout), layout_with_size, NULL);
    expect_sizes_refused("hs_model_config", sizeof(hs_model_config), layout_with_model_config_size, NULL);
}

/* hs_init checks the size before it starts MPI: nothing starts here. */
static hs_status runtime_with_size(size_t size, void *ctx)
{
    (void)ctx;
    hs_runtime_config rc = hs_runtime_config_default();
    rc.size = size;
    hs_runtime *rt = (hs_runtime *)&rt;
    const hs_status s = hs_init(NULL, NULL, &rc, &rt);
    assert_null(rt);
    return s;
}

static hs_status loader_with_size(size_t size, void *ctx)
{
    (void)ctx;
    hs_loader_config lc = hs_loader_config_default();
    lc.size = size;
    hs_loader *l = (hs_loader *)&l;
    const hs_status s = hs_loader_new("/nonexistent/tokens.bin", &lc, &l);
    assert_null(l);
    return s;
}

static void test_runtime_and_loader(void **state)
{
    (void)state;
    expect_sizes_refused("hs_runtime_config", sizeof(hs_runtime_config), runtime_with_size, NULL);
    expect_sizes_refused("hs_loader_config", sizeof(hs_loader_config), loader_with_size, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_presets_are_tagged),
        cmocka_unit_test(test_model_configs),
        cmocka_unit_test(test_optimizer_config),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_runtime_and_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
