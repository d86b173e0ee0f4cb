/* Two NPUs driven from two threads at once. Each thread trains its own
 * micro LLaMA model (grouped-query attention) on its own simulated NPU in
 * execute mode, then calls a kernel directly on a tensor of that NPU;
 * there is no current device, so each call runs on the device its
 * tensors name. Both runs must equal, bit for bit in
 * losses, gradient norms, final parameters and simulated time, the same
 * training done one after the other on the main thread: nothing one
 * thread does may leak into the other's device. */
#include "gradcheck.h"
#include "npu_fixture.h"

#include "hyperspeed.h"
#include "model_flat.h"

#include <pthread.h>
#include <string.h>

enum { B = 2, T = 16, N = B * T, STEPS = 3, V = 32 };

/* One training run: its inputs (seed) and what it measured. */
typedef struct run {
    uint64_t seed;
    float loss[STEPS], norm[STEPS];
    double sim_s;
    float *params; /* host copy of the final parameters */
    int64_t n_params;
    hs_status status;
} run;

static hs_model_config micro(void)
{
    hs_model_config c = hs_model_config_default();
    c.arch = HS_ARCH_LLAMA;
    c.vocab_size = V;
    c.max_seq = T;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.d_model = 32;
    c.d_ff = 64;
    return c;
}

/* Trains STEPS steps on a fresh execute-mode NPU; fills r. Returns
 * NULL (a pthread start routine); failures land in r->status. */
static void *train(void *arg)
{
    run *r = arg;
    hs_npu_spec spec;
    hs_npu *d = NULL;
    hs_model *m = NULL;
    hs_optimizer *o = NULL;
    hs_model_config c = micro();
    hs_model_options mo = hs_model_options_default();
    hs_optimizer_config oc = hs_optimizer_config_default();
    mo.device = HS_DEVICE_NPU;
    mo.compute = HS_BF16;
    hs_status s = hs_npu_spec_preset("test", &spec);
    if (!s)
        s = hs_npu_new(&spec, HS_NPU_EXECUTE, &d);
    mo.npu = d;
    if (!s)
        s = hs_model_new_ex(&c, B, T, &mo, &m);
    if (!s)
        s = hs_model_init(m, r->seed);
    if (!s)
        s = hs_optimizer_new(m, &oc, &o);
    int32_t x[N], y[N];
    for (int step = 0; step < STEPS && !s; step++) {
        for (int i = 0; i < N; i++) {
            x[i] = (int32_t)((i * 7 + step * 13 + (int)r->seed) % V);
            y[i] = (x[i] * 3 + 1) % V;
        }
        hs_step_stats st;
        s = hs_train_step(m, o, x, y, B, T, 1, 3e-3f, &st);
        r->loss[step] = st.loss;
        r->norm[step] = st.grad_norm;
    }
    /* a kernel called directly on tensors of this NPU: no device to select
     * first, the handle in the tensor is enough */
    float *ones = NULL, host[N];
    if (!s)
        s = hs_npu_malloc(d, sizeof host, (void **)&ones);
    hs_tensor t = hs_on(hs_view1(ones, HS_FP32, N), hs_npu_device(d));
    if (!s)
        s = hs_fill(&t, 1.0f);
    if (!s)
        s = hs_npu_memcpy_d2h(d, NULL, host, ones, sizeof host);
    for (int i = 0; i < N && !s; i++)
        if (host[i] != 1.0f)
            s = hs_error(HS_ERR_INTERNAL, "fill on the NPU of this thread: element %d is %g", i, (double)host[i]);
    hs_npu_free_mem(d, ones);
    if (!s) {
        r->sim_s = hs_npu_stream_time(hs_npu_default_stream(d));
        r->n_params = hs_model_num_params(m);
        r->params = malloc((size_t)r->n_params * sizeof(float));
        s = r->params ? hs_npu_memcpy_d2h(d, NULL, r->params, flat_params(m), (size_t)r->n_params * sizeof(float))
                      : HS_ERR_OUT_OF_MEMORY;
    }
    r->status = s;
    hs_optimizer_free(o);
    hs_model_free(m);
    hs_npu_free(d);
    return NULL;
}

static void same_run(const run *a, const run *b)
{
    assert_int_equal(a->status, HS_OK);
    assert_int_equal(b->status, HS_OK);
    assert_memory_equal(a->loss, b->loss, sizeof a->loss);
    assert_memory_equal(a->norm, b->norm, sizeof a->norm);
    assert_true(a->sim_s == b->sim_s && a->sim_s > 0);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, (size_t)a->n_params * sizeof(float));
}

static void test_two_npus_two_threads(void **state)
{
    (void)state;
    run par[2] = {{.seed = 11}, {.seed = 12}}, seq[2] = {{.seed = 11}, {.seed = 12}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, train, &par[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        train(&seq[i]);
    for (int i = 0; i < 2; i++)
        same_run(&par[i], &seq[i]);
    /* the two seeds trained different models: the runs did not share a device */
    assert_true(memcmp(par[0].loss, par[1].loss, sizeof par[0].loss) != 0);
    for (int i = 0; i < 2; i++) {
        free(par[i].params);
        free(seq[i].params);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_npus_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
