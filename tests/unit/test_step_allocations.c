/* A training step allocates nothing in the steady state (DESIGN.md: the
 * activations live in an arena planned once, kernels keep their scratch):
 * after two warm-up steps, further hs_train_step calls, and further
 * hs_engine_train_step calls of an engine on a world of one process (the
 * trainer's step driver), make no malloc, calloc or realloc call at all. The test binary interposes the C
 * allocator (glibc's __libc_* entry points underneath) and counts the
 * calls made while counting is on. Under AddressSanitizer, which owns the
 * allocator itself, the test is skipped. */
#include "gradcheck.h"

#include "hyperspeed.h"

#include <stdatomic.h>
#include <string.h>

#ifndef __SANITIZE_ADDRESS__

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static atomic_int counting, calls;

void *malloc(size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&calls, 1);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&calls, 1);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&calls, 1);
    return __libc_realloc(p, n);
}

static hs_model_config micro(hs_arch arch)
{
    hs_model_config c = hs_model_config_default();
    c.arch = arch;
    c.vocab_size = 32;
    c.max_seq = 16;
    c.n_layer = 2;
    c.n_head = 4;
    c.d_model = 32;
    c.d_ff = 64;
    return c;
}

enum { B = 2, T = 16, N = B * T };

static hs_runtime *world_of_one; /* hs_init of this process alone, for the engine */

/* One training step: hs_train_step of m, or (e not NULL) the engine's. */
static void one_step(hs_model *m, hs_optimizer *opt, hs_engine *e, const int32_t *x, const int32_t *y)
{
    hs_step_stats st;
    hs_engine_stats es;
    assert_int_equal(e ? hs_engine_train_step(e, x, y, 1e-3f, &es) : hs_train_step(m, opt, x, y, B, T, 2, 1e-3f, &st),
                     HS_OK);
}

/* Allocator calls made by `steps` training steps of cfg on the CPU after
 * two warm-up steps, through hs_train_step or (engine 1) hs_engine. */
static int step_allocations(hs_model_config cfg, hs_dtype compute, int engine, int steps)
{
    hs_model_options o = hs_model_options_default();
    o.compute = compute;
    hs_model *m = NULL;
    hs_optimizer *opt = NULL;
    hs_engine *e = NULL;
    hs_optimizer_config oc = hs_optimizer_config_default();
    if (engine) {
        hs_engine_config ec = hs_engine_config_default();
        ec.layout.micro_batches = 2;
        ec.micro_batch = B / 2;
        ec.seq = T;
        ec.model = o;
        assert_int_equal(hs_engine_new(world_of_one, &cfg, &ec, &e), HS_OK);
        assert_int_equal(hs_engine_init(e, 3), HS_OK);
    } else {
        assert_int_equal(hs_model_new_ex(&cfg, B, T, &o, &m), HS_OK);
        assert_int_equal(hs_model_init(m, 3), HS_OK);
        assert_int_equal(hs_optimizer_new(m, &oc, &opt), HS_OK);
    }
    int32_t x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = (i * 7 + 1) % cfg.vocab_size;
        y[i] = (i * 3 + 2) % cfg.vocab_size;
    }
    for (int s = 0; s < 2; s++)
        one_step(m, opt, e, x, y);
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
    for (int s = 0; s < steps; s++)
        one_step(m, opt, e, x, y);
    atomic_store(&counting, 0);
    hs_engine_free(e);
    hs_optimizer_free(opt);
    hs_model_free(m);
    return atomic_load(&calls);
}

#endif

static void test_no_allocations_in_a_step(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    skip();
#else
    atomic_store(&calls, 0); /* the counter sees the allocator */
    atomic_store(&counting, 1);
    void *volatile probe = malloc(16); /* volatile: the pair is not optimised away */
    free(probe);
    atomic_store(&counting, 0);
    assert_int_equal(atomic_load(&calls), 1);
    hs_model_config gqa = micro(HS_ARCH_LLAMA);
    gqa.n_kv_head = 2;
    gqa.qkv_bias = 1;
    const struct {
        hs_model_config cfg;
        hs_dtype compute;
    } cases[] = {{micro(HS_ARCH_GPT2), HS_FP32}, {micro(HS_ARCH_LLAMA), HS_FP32}, {gqa, HS_BF16}};
    for (int engine = 0; engine < 2; engine++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const int n = step_allocations(cases[i].cfg, cases[i].compute, engine, 3);
            if (n != 0)
                fail_msg("case %zu%s: %d allocator calls in 3 steady-state steps", i, engine ? " (engine)" : "", n);
        }
#endif
}

int main(void)
{
#ifndef __SANITIZE_ADDRESS__
    if (hs_init(NULL, NULL, NULL, &world_of_one) != HS_OK) {
        fprintf(stderr, "test_step_allocations: %s\n", hs_last_error());
        return 1;
    }
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_allocations_in_a_step),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
#ifndef __SANITIZE_ADDRESS__
    hs_finalize(world_of_one);
#endif
    return failed;
}
