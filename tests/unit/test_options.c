/* Command-line option parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed/options.h"

#include <string.h>

typedef struct flags {
    int steps, verbose;
    int64_t seed;
    float lr;
    const char *model;
} flags;

static hs_status parse(flags *f, int argc, const char **argv)
{
    const hs_option opts[] = {
        {"steps", HS_OPT_INT, &f->steps, "steps"},   {"seed", HS_OPT_I64, &f->seed, "seed"},
        {"lr", HS_OPT_FLOAT, &f->lr, "lr"},          {"model", HS_OPT_STRING, &f->model, "model"},
        {"verbose", HS_OPT_FLAG, &f->verbose, "v"},
    };
    return hs_options_parse(argc, (char **)argv, opts, 5);
}

static void test_parses_forms(void **state)
{
    (void)state;
    flags f = {10, 0, 1, 0.5f, "gpt2-tiny"};
    const char *argv[] = {"prog", "--steps", "20", "--lr=3e-4", "--model", "llama-tiny", "--verbose", "--seed=-7"};
    assert_int_equal(parse(&f, 8, argv), HS_OK);
    assert_int_equal(f.steps, 20);
    assert_float_equal(f.lr, 3e-4f, 1e-10f);
    assert_string_equal(f.model, "llama-tiny");
    assert_int_equal(f.verbose, 1);
    assert_int_equal(f.seed, -7);
}

static void expect_error(const char **argv, int argc, hs_status want, const char *msg)
{
    flags f = {10, 0, 1, 0.5f, "gpt2-tiny"};
    assert_int_equal(parse(&f, argc, argv), want);
    assert_non_null(strstr(hs_last_error(), msg));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error((const char *[]){"p", "--bogus", "1"}, 3, HS_ERR_INVALID_ARGUMENT, "unknown flag --bogus");
    expect_error((const char *[]){"p", "--steps"}, 2, HS_ERR_INVALID_ARGUMENT, "--steps needs a value");
    expect_error((const char *[]){"p", "--steps", "12x"}, 3, HS_ERR_INVALID_ARGUMENT, "'12x' is not a valid integer");
    expect_error((const char *[]){"p", "--steps", "99999999999"}, 3, HS_ERR_INVALID_ARGUMENT, "not a valid");
    expect_error((const char *[]){"p", "--lr", ""}, 3, HS_ERR_INVALID_ARGUMENT, "not a valid number");
    expect_error((const char *[]){"p", "stray"}, 2, HS_ERR_INVALID_ARGUMENT, "unexpected argument 'stray'");
    expect_error((const char *[]){"p", "--verbose=1"}, 2, HS_ERR_INVALID_ARGUMENT, "takes no value");
    expect_error((const char *[]){"p", "--help"}, 2, HS_ERR_NOT_FOUND, "help");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_forms),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
