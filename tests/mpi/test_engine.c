/* hs_engine through its C API on the layout of its arguments (--tp T
 * --pp P, the rest of the world data-parallel, --zero Z the ZeRO stage;
 * every DP rank passes the
 * same batch): three steps of a tiny GPT-2 match the whole model trained
 * on each rank alone (loss and global gradient norm), evaluation and
 * generation agree with the whole model's, with data parallelism every
 * bucket's all-reduce starts inside the backward (under a pipeline: in
 * each chunk's last backward, before the schedule ends), and every bad
 * argument fails with a message on every rank (a layout the runtime does
 * not have, a config or a config it holds with a size tag this library
 * does not know, too many micro-batches, sizes, NULLs, a batch that is not
 * whole micro-batches, a sampler argument). With a pipeline and data
 * parallelism, on an estimate-mode NPU: part of the DP all-reduces' time
 * is hidden behind the backward (it would all be exposed if they started
 * after the schedule). The memory estimator gives each rank's bytes as its
 * engine allocates them: within 3 % of the NPU's HBM peak and 5 % of the
 * CPU device's, with every recompute mode. */
#include "mpi_check.h"

#include "hyperspeed/engine.h"
#include "hyperspeed/memory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 4, T = 16, STEPS = 3 };

static hs_model_config tiny(void)
{
    hs_model_config c = hs_model_config_default();
    c.n_layer = 2;
    c.d_model = 32;
    c.d_ff = 64;
    c.max_seq = T;
    return c;
}

/* hs_engine_new with ec fails with `phrase` in the message. */
static void expect_bad(hs_runtime *rt, const hs_model_config *c, const hs_engine_config *ec, const char *phrase)
{
    hs_engine *e = (hs_engine *)ec; /* must come back NULL */
    hs_status s = hs_engine_new(rt, c, ec, &e);
    CHECK(s == HS_ERR_INVALID_ARGUMENT, "got %s", hs_status_str(s));
    CHECK(e == NULL, "engine not reset");
    CHECK(strstr(hs_last_error(), phrase) != NULL, "'%s' lacks '%s'", hs_last_error(), phrase);
}

/* PP x DP on estimate-mode NPUs (no values: a wider model costs nothing)
 * with small buckets: the simulated all-reduces overlap the chunk's last
 * backward. */
static void check_dp_overlap_in_pipeline(hs_runtime *rt, hs_model_config c, hs_engine_config ec)
{
    c.d_model = 256;
    c.d_ff = 1024;
    c.n_layer = 8;
    hs_npu_spec spec;
    hs_npu *npu = NULL;
    CHECK_OK(hs_npu_spec_preset("test", &spec));
    CHECK_OK(hs_npu_new(&spec, HS_NPU_ESTIMATE, &npu));
    ec.model.device = HS_DEVICE_NPU;
    ec.model.npu = npu;
    ec.model.compute = HS_BF16;
    ec.dp.bucket_bytes = 1 << 18;
    hs_engine *e = NULL;
    CHECK_OK(hs_engine_new(rt, &c, &ec, &e));
    int32_t tok[B * T + 1] = {0};
    hs_engine_stats es = {0};
    if (e) {
        CHECK_OK(hs_engine_init(e, 7));
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &es));
    }
    CHECK(es.dp.buckets > 1 && es.dp.sim_comm_s > 0 && es.dp.sim_exposed_s < 0.5 * es.dp.sim_comm_s,
          "%d buckets: %.3g of the all-reduces' %.3g simulated seconds exposed", es.dp.buckets, es.dp.sim_exposed_s,
          es.dp.sim_comm_s);
    hs_engine_free(e);
    hs_npu_free(npu);
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(a); }

/* The memory estimator against what this rank's engine allocates, on an
 * estimate-mode NPU (its HBM peak after a step) and on the CPU (the
 * library's host allocations at their peak, less what was held before):
 * the layout of the arguments with each recompute mode, and with the
 * optimizer offloaded (none and full recompute; the host pool's peak must
 * equal the estimate's host bytes exactly), on a model wide enough that
 * the arena and the kernels' workspace matter. */
static void check_memory_estimate(hs_runtime *rt, hs_model_config c, hs_engine_config ec)
{
    c.d_model = 128;
    c.d_ff = 512;
    c.n_layer = 4;
    const int world = hs_comm_size(hs_runtime_comm(rt, HS_GROUP_WORLD));
    hs_memory_rank *est = calloc((size_t)world, sizeof *est);
    int32_t tok[B * T + 1] = {0};
    hs_npu_spec spec;
    CHECK_OK(hs_npu_spec_preset("test", &spec));
    static const struct {
        unsigned offload;
        hs_recompute rc;
    } cases[] = {
        {HS_OFFLOAD_NONE, HS_RECOMPUTE_NONE},      {HS_OFFLOAD_NONE, HS_RECOMPUTE_SELECTIVE},
        {HS_OFFLOAD_NONE, HS_RECOMPUTE_FULL},      {HS_OFFLOAD_OPTIMIZER, HS_RECOMPUTE_NONE},
        {HS_OFFLOAD_OPTIMIZER, HS_RECOMPUTE_FULL}, {HS_OFFLOAD_OPTIMIZER | HS_OFFLOAD_ACTIVATIONS, HS_RECOMPUTE_NONE},
    };
    for (int run = 0; est && run < 2 * (int)(sizeof cases / sizeof *cases); run++) { /* each case: CPU, NPU */
        const int dev = run % 2, rc = (int)cases[run / 2].rc;
        const unsigned off = cases[run / 2].offload;
        hs_npu *npu = NULL;
        if (dev)
            CHECK_OK(hs_npu_new(&spec, HS_NPU_ESTIMATE, &npu));
        ec.model.device = dev ? HS_DEVICE_NPU : HS_DEVICE_CPU;
        ec.model.npu = npu;
        ec.model.compute = dev ? HS_BF16 : HS_FP32;
        ec.model.recompute = (hs_recompute)rc;
        ec.model.offload = off;
        CHECK_OK(hs_memory_estimate(&c, &ec, world, dev ? &spec : NULL, est));
        const hs_memory_rank *me = &est[check_rank];
        CHECK(me->rank == check_rank && me->tp_rank == hs_runtime_rank(rt, HS_GROUP_TP) &&
                  me->dp_rank == hs_runtime_rank(rt, HS_GROUP_DP) && me->pp_rank == hs_runtime_rank(rt, HS_GROUP_PP),
              "rank %d estimated as tp %d dp %d pp %d", check_rank, me->tp_rank, me->dp_rank, me->pp_rank);
        const size_t before = hs_host_mem_used(), pool_before = hs_offload_mem_used();
        hs_host_mem_reset_peak();
        hs_offload_mem_reset_peak();
        hs_engine *e = NULL;
        CHECK_OK(hs_engine_new(rt, &c, &ec, &e));
        hs_engine_stats es;
        if (e) {
            CHECK_OK(hs_engine_init(e, 7));
            CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &es));
        }
        const double got = dev ? (double)hs_npu_mem_peak(npu) : (double)(hs_host_mem_peak() - before);
        const size_t pool = hs_offload_mem_peak() - pool_before;
        CHECK(pool == me->host, "%s, offload %u: host pool estimate %zu B, measured %zu B", dev ? "NPU" : "CPU", off,
              me->host, pool);
        /* the CPU's workspace is the comm runtime's scratch, which the first CPU run grows to this layout's
           size and which stays held (in `before`) for the later ones */
        const size_t want = me->device - (!dev && run > 0 ? me->workspace : 0);
        const double tol = dev ? 0.03 : 0.05;
        CHECK(fabs((double)want - got) <= tol * got, "%s, recompute %s, offload %u: estimate %zu B, measured %.0f B",
              dev ? "NPU" : "CPU", hs_recompute_name((hs_recompute)rc), off, want, got);
        if (check_rank == 0)
            printf("memory estimate, %s, recompute %-9s%s: %10zu B, measured %10.0f B (%+.2f%%); host %zu B\n",
                   dev ? "NPU" : "CPU", hs_recompute_name((hs_recompute)rc),
                   off & HS_OFFLOAD_ACTIVATIONS ? ", offload opt+act" : off ? ", offload" : "", want, got,
                   100.0 * ((double)want / got - 1), pool);
        hs_engine_free(e);
        hs_npu_free(npu);
    }
    ec.model.offload = HS_OFFLOAD_NONE;
    free(est);
}

/* Communication volume per step as the comm layer counts it
 * (hs_comm_bytes_sent): ZeRO-1's reduce-scatter and parameter all-gather
 * send what ZeRO-0's all-reduce sends, but for the norm's 8 bytes to each
 * DP peer (with a pipeline whose ends share a tied wte, less: the ends
 * exchange their blocks of its gradient, not all of it); without model
 * parallelism that is the all-reduce's theory, 2 (p - 1) / p x 4 bytes per
 * parameter, plus the embedding's gathered rows ((p - 1) x B x T x (4 C +
 * 4) bytes) and a few scalars. */
static void check_comm_volume(hs_runtime *rt, hs_model_config c, hs_engine_config ec, int tp, int pp)
{
    const int p = hs_runtime_size(rt, HS_GROUP_DP);
    int32_t tok[B * T + 1] = {0};
    uint64_t sent[2];
    int64_t params = 0;
    for (int z = 0; z < 2; z++) {
        ec.zero = z;
        hs_engine *e = NULL;
        CHECK_OK(hs_engine_new(rt, &c, &ec, &e));
        CHECK_OK(hs_engine_init(e, 3));
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, NULL)); /* warm-up */
        const uint64_t before = hs_comm_bytes_sent();
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, NULL));
        sent[z] = hs_comm_bytes_sent() - before;
        params = hs_engine_num_params(e);
        hs_engine_free(e);
    }
    const double diff = (double)sent[1] - (double)sent[0];
    CHECK((diff >= 0 || pp > 1) && diff <= 8.0 * (p - 1), "bytes sent per step: ZeRO-0 %llu, ZeRO-1 %llu",
          (unsigned long long)sent[0], (unsigned long long)sent[1]);
    if (tp == 1 && pp == 1) {
        const double theory = 2.0 * (p - 1) / p * 4.0 * (double)params;
        const double rows = (double)(p - 1) * ec.micro_batch * ec.seq * (4.0 * c.d_model + 4);
        CHECK((double)sent[0] >= theory + rows && (double)sent[0] <= theory + rows + 256,
              "ZeRO-0 sent %llu bytes, the all-reduce's theory %.0f + rows %.0f", (unsigned long long)sent[0],
              theory, rows);
    }
    if (check_rank == 0)
        printf("bytes sent per step and rank: ZeRO-0 %llu, ZeRO-1 %llu (%lld parameters, dp %d)\n",
               (unsigned long long)sent[0], (unsigned long long)sent[1], (long long)params, p);
}

/* ZeRO-1 with the parameters' gather under the next forward: the same
 * losses and norms bit for bit on the CPU; on an estimate-mode NPU without
 * a pipeline, with a model wide enough that the gather takes time (a
 * per-block cast costs a launch more per block), a faster step than with
 * the gather after the update (a pipeline's first stage needs the
 * embedding's bucket, the first gathered, before anything runs). */
static void check_overlap_param_gather(hs_runtime *rt, hs_model_config c, hs_engine_config ec, int pp)
{
    int32_t tok[B * T + 1];
    for (int i = 0; i <= B * T; i++)
        tok[i] = (int32_t)((i * 7 + 3) % c.vocab_size);
    hs_engine_stats st[2][3];
    double sim[2] = {0, 0};
    hs_npu_spec spec;
    CHECK_OK(hs_npu_spec_preset("test", &spec));
    for (int ov = 0; ov < 2; ov++) {
        ec.overlap_param_gather = ov;
        hs_engine *e = NULL;
        CHECK_OK(hs_engine_new(rt, &c, &ec, &e));
        CHECK_OK(hs_engine_init(e, 5));
        for (int k = 0; k < 3; k++)
            CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &st[ov][k]));
        hs_engine_free(e);
        hs_npu *npu = NULL; /* the simulated step, third of three */
        CHECK_OK(hs_npu_new(&spec, HS_NPU_ESTIMATE, &npu));
        hs_engine_config en = ec;
        en.model.device = HS_DEVICE_NPU;
        en.model.npu = npu;
        en.model.compute = HS_BF16;
        hs_model_config wide = c;
        wide.d_model = 256;
        wide.d_ff = 1024;
        wide.vocab_size = 4096;
        CHECK_OK(hs_engine_new(rt, &wide, &en, &e));
        CHECK_OK(hs_engine_init(e, 5));
        hs_engine_stats ns;
        for (int k = 0; k < 3; k++)
            CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &ns));
        sim[ov] = ns.sim_seconds;
        hs_engine_free(e);
        hs_npu_free(npu);
    }
    for (int k = 0; k < 3; k++)
        CHECK(st[0][k].loss == st[1][k].loss && st[0][k].grad_norm == st[1][k].grad_norm,
              "step %d with the gather overlapped: loss %.9g (%.9g), norm %.9g (%.9g)", k, (double)st[1][k].loss,
              (double)st[0][k].loss, st[1][k].grad_norm, st[0][k].grad_norm);
    CHECK(sim[1] < sim[0] || pp > 1, "simulated step %.6f ms overlapped, %.6f ms not", sim[1] * 1e3, sim[0] * 1e3);
    if (check_rank == 0)
        printf("ZeRO-1 simulated step: %.3f ms, %.3f ms with the parameter gather overlapped\n", sim[0] * 1e3,
               sim[1] * 1e3);
}

/* Offload refusals, on every rank and before anything is allocated:
 * host memory too small for the offloaded state (an NPU spec whose host
 * share is 1 MiB: the message gives the bytes needed and available), and
 * parameter offload without ZeRO-3. */
static void check_offload_refusals(hs_runtime *rt, hs_model_config c, hs_engine_config ec)
{
    hs_npu_spec spec;
    hs_npu *npu = NULL;
    CHECK_OK(hs_npu_spec_preset("test", &spec));
    spec.host_bytes = 1 << 20;
    CHECK_OK(hs_npu_new(&spec, HS_NPU_ESTIMATE, &npu));
    ec.model.device = HS_DEVICE_NPU;
    ec.model.npu = npu;
    ec.model.compute = HS_BF16;
    ec.model.offload = HS_OFFLOAD_OPTIMIZER;
    c.d_model = 128; /* 16 B per parameter over 1 MiB */
    c.d_ff = 512;
    const size_t pool = hs_offload_mem_used(), host = hs_host_mem_used();
    hs_engine *e = (hs_engine *)&ec;
    CHECK(hs_engine_new(rt, &c, &ec, &e) == HS_ERR_OUT_OF_MEMORY && !e, "offload past the host share accepted");
    CHECK(strstr(hs_last_error(), "host offload (optimizer) needs") && strstr(hs_last_error(), "but the NPU spec gives") &&
              strstr(hs_last_error(), "(1048576 B); nothing was allocated"),
          "host-memory message: %s", hs_last_error());
    CHECK(hs_npu_mem_used(npu) == 0 && hs_offload_mem_used() == pool && hs_host_mem_used() == host,
          "a refused engine left %zu B of HBM, %zu B of pool, %zu B of host memory", hs_npu_mem_used(npu),
          hs_offload_mem_used() - pool, hs_host_mem_used() - host);
    ec.model.offload = HS_OFFLOAD_PARAMS;
    CHECK(hs_engine_new(rt, &c, &ec, &e) == HS_ERR_INVALID_ARGUMENT && !e, "params offload without ZeRO-3 accepted");
    CHECK(strstr(hs_last_error(), "offload of params") && strstr(hs_last_error(), "needs zero=3"),
          "params-offload message: %s", hs_last_error());
    hs_npu_free(npu);
}

int main(int argc, char **argv)
{
    hs_runtime_config rc = hs_runtime_config_default();
    int zero = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tp") == 0)
            rc.tp = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--pp") == 0)
            rc.pp = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--zero") == 0)
            zero = atoi(argv[i + 1]);
    }
    const int m = rc.pp > 1 ? 2 : 1; /* micro-batches */
    hs_runtime *rt = NULL;
    if (hs_init(&argc, &argv, &rc, &rt) != HS_OK) {
        fprintf(stderr, "test_engine: %s\n", hs_last_error());
        return 1;
    }
    hs_comm *world = hs_runtime_comm(rt, HS_GROUP_WORLD);
    check_rank = hs_comm_rank(world);
    const hs_model_config c = tiny();

    hs_engine_config ec = hs_engine_config_default();
    ec.layout.tp = rc.tp;
    ec.layout.pp = rc.pp;
    ec.layout.micro_batches = m;
    ec.micro_batch = B / m;
    ec.seq = T;
    ec.zero = zero;
    const int dp = hs_comm_size(world) / (rc.tp * rc.pp);
    hs_engine_config bad = ec;
    bad.layout.tp = rc.tp + 1;
    char phrase[96];
    snprintf(phrase, sizeof phrase, "but the runtime's grid has tp=%d pp=%d", rc.tp, rc.pp);
    expect_bad(rt, &c, &bad, phrase);
    bad = ec; /* the size tags: a struct not from its *_default, one from another version's header */
    bad.size = 0;
    expect_bad(rt, &c, &bad, "hs_engine_config is not initialised (size 0): start from hs_engine_config_default()");
    bad = ec;
    bad.size += 8;
    snprintf(phrase, sizeof phrase, "hs_engine_config of %zu bytes, but this library", sizeof bad + 8);
    expect_bad(rt, &c, &bad, phrase);
    bad = ec;
    bad.layout.size = 0;
    expect_bad(rt, &c, &bad, "hs_layout is not initialised");
    bad = ec;
    bad.model.shard.size = 4;
    expect_bad(rt, &c, &bad, "hs_model_shard of 4 bytes");
    bad = ec;
    bad.optim.size = 0;
    expect_bad(rt, &c, &bad, "hs_optimizer_config is not initialised");
    bad = ec;
    bad.dp.size = 0;
    expect_bad(rt, &c, &bad, "hs_dp_config is not initialised");
    bad = ec;
    bad.zero = 2;
    expect_bad(rt, &c, &bad, "zero=2; this build has ZeRO stages 0 (none) and 1");
    bad = ec;
    bad.micro_batch = 0;
    expect_bad(rt, &c, &bad, "micro_batch=0 and seq=16 must be >= 1");
    bad = ec;
    bad.layout.micro_batches = 300;
    expect_bad(rt, &c, &bad, "at most 256 micro-batches");
    if (rc.tp > 1) {
        bad = ec;
        bad.layout.sequence_parallel = 1;
        bad.seq = 15;
        snprintf(phrase, sizeof phrase, "seq=15 is not a multiple of tp=%d", rc.tp);
        expect_bad(rt, &c, &bad, phrase);
    }

    hs_engine *e = NULL;
    CHECK_OK(hs_engine_new(rt, &c, &ec, &e));
    hs_model *whole = NULL;
    hs_optimizer *opt = NULL;
    hs_optimizer_config oc = hs_optimizer_config_default();
    CHECK_OK(hs_model_new(&c, B, T, &whole));
    CHECK_OK(hs_optimizer_new(whole, &oc, &opt));
    if (!e || !whole || !opt) {
        fprintf(stderr, "test_engine: setup failed: %s\n", hs_last_error());
        return 1;
    }
    CHECK_OK(hs_engine_init(e, 7));
    CHECK_OK(hs_model_init(whole, 7));
    CHECK(hs_engine_num_chunks(e) == 1 && (rc.tp > 1 || rc.pp > 1 ? hs_engine_num_params(e) < hs_model_num_params(whole)
                                                                  : hs_engine_num_params(e) == hs_model_num_params(whole)),
          "shard sizes");

    int32_t tok[B * T + 1];
    for (int i = 0; i <= B * T; i++)
        tok[i] = (i * 37 + 11) % c.vocab_size;
    for (int step = 0; step < STEPS; step++) {
        hs_engine_stats es;
        hs_step_stats ss;
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &es));
        CHECK_OK(hs_train_step(whole, opt, tok, tok + 1, B, T, m, 1e-3f, &ss)); /* the same micro-batches */
        CHECK(close_to(es.loss, ss.loss, 1e-6), "step %d: loss %.9g, whole model %.9g", step, (double)es.loss,
              (double)ss.loss);
        CHECK(close_to(es.grad_norm, ss.grad_norm, 1e-5), "step %d: norm %.9g, whole model %.9g", step,
              es.grad_norm, ss.grad_norm);
        CHECK((es.bubble_theory == 0) == (rc.pp == 1) && es.busy_s > 0, "step %d: bubble %g, busy %g", step,
              es.bubble_theory, es.busy_s);
        CHECK(dp == 1 || (es.dp.buckets > 0 && es.dp.early == es.dp.buckets),
              "step %d: %d of %d DP buckets started in the backward", step, es.dp.early, es.dp.buckets);
    }
    CHECK(hs_engine_steps(e) == STEPS, "steps %lld", (long long)hs_engine_steps(e));
    const hs_engine_op_time *times;
    CHECK(hs_engine_op_times(e, &times) == 2 * m && !times[0].op.backward && times[2 * m - 1].op.backward, "op times");

    float le, lw;
    CHECK_OK(hs_engine_eval(e, tok, tok + 1, B, &le));
    CHECK_OK(hs_model_forward(whole, tok, tok + 1, B, T, &lw));
    CHECK(close_to(le, lw, 1e-6), "eval %.9g, whole model %.9g", (double)le, (double)lw);
    int32_t ge[T], gw[T];
    CHECK_OK(hs_engine_generate(e, tok, 4, T - 4, 5, 0.8f, 3, ge));
    CHECK_OK(hs_model_generate(whole, tok, 4, T - 4, 5, 0.8f, 3, gw));
    CHECK(memcmp(ge, gw, sizeof ge) == 0, "the engine samples another text");

    CHECK(hs_engine_eval(e, tok, tok + 1, B + 1, &le) == HS_ERR_INVALID_ARGUMENT, "eval of 5 sequences");
    snprintf(phrase, sizeof phrase, "batch 5 is not a multiple of the micro-batch %d", B / m);
    CHECK(strstr(hs_last_error(), phrase) != NULL, "%s", hs_last_error());
    CHECK(hs_engine_train_step(e, NULL, tok, 1e-3f, NULL) == HS_ERR_INVALID_ARGUMENT, "NULL tokens");
    CHECK(hs_engine_train_step(e, tok, tok + 1, -1.0f, NULL) == HS_ERR_INVALID_ARGUMENT, "negative lr");
    CHECK(hs_engine_generate(e, tok, 4, 2, 0, 0.8f, 3, ge) == HS_ERR_INVALID_ARGUMENT, "top_k 0");
    CHECK(hs_engine_save(e, NULL, NULL) == HS_ERR_INVALID_ARGUMENT, "save without a directory");
    if (zero && dp > 1) { /* a ZeRO-1 checkpoint (the moments gathered whole) resumes the same step bit for bit */
        char dir[128];
        snprintf(dir, sizeof dir, "/tmp/hs_test_engine_zero_ckpt_tp%d_pp%d", rc.tp, rc.pp);
        hs_train_state st0 = {7, 0}, st1 = {0, 0};
        hs_engine_stats a1, a2;
        CHECK_OK(hs_engine_save(e, dir, &st0));
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &a1));
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, NULL));
        CHECK_OK(hs_engine_load(e, dir, &st1));
        CHECK_OK(hs_engine_train_step(e, tok, tok + 1, 1e-3f, &a2));
        CHECK(st1.seed == 7 && a1.loss == a2.loss && a1.grad_norm == a2.grad_norm,
              "ZeRO-1 resume: loss %.9g then %.9g, norm %.9g then %.9g", (double)a1.loss, (double)a2.loss,
              a1.grad_norm, a2.grad_norm);
    }
    hs_train_state st;
    CHECK(hs_engine_load(e, "/nonexistent/checkpoint", &st) != HS_OK, "loading a missing checkpoint");

    hs_optimizer_free(opt);
    hs_model_free(whole);
    hs_engine_free(e);
    if (rc.pp > 1 && dp > 1)
        check_dp_overlap_in_pipeline(rt, c, ec);
    check_memory_estimate(rt, c, ec);
    check_offload_refusals(rt, c, ec);
    if (zero && dp > 1) {
        check_comm_volume(rt, c, ec, rc.tp, rc.pp);
        check_overlap_param_gather(rt, c, ec, rc.pp);
    }
    const int total = hs_mpi_test_total(world);
    hs_finalize(rt);
    if (check_rank == 0)
        printf("test_engine: %s (%d failed checks)\n", total ? "FAILED" : "passed", total);
    return total ? 1 : 0;
}
