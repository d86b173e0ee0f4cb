/* bench/npu_sim: what the NPU model costs in host wall-clock time.
 *
 * Case "gpt2-tiny": one training step (forward, backward, clipping, AdamW)
 * of gpt2-tiny at B x T, median wall time of --steps steps after --warmup
 * steps, on
 *   - the CPU device (fp32, this process's threads),
 *   - the simulated 910B2 in execute mode (bf16 compute, real data),
 *   - the simulated 910B2 in estimate mode (same instruction stream, no
 *     data), with the kernel timing cache (the default) and without it.
 * Case "llama2-7b-4layers": llama2-7b cut to 4 layers at B=1, T=4096 in
 * estimate mode on one 910B2: wall time of the first step (every distinct
 * kernel simulated once) and the median of the next ones, with the
 * simulated step time and HBM peak.
 * One JSON line per case:
 *   {"bench":"npu_sim","case":"gpt2-tiny","B":..,"T":..,"cpu_ms":..,"execute_ms":..,
 *    "estimate_ms":..,"estimate_uncached_ms":..,"execute_over_cpu":..,"execute_over_estimate":..,"sim_ms":..}
 *   {"bench":"npu_sim","case":"llama2-7b-4layers",...,"estimate_first_step_s":..,"estimate_step_s":..,
 *    "sim_step_ms":..,"hbm_peak_gib":..}
 * each ending with the machine fields of bench/report.h (cpu, isa,
 * isa_native, blas_core, ...).
 * Flags: --batch --seq (gpt2-tiny, default 16 x 64) --steps (5) --warmup (1) --no-llama */
#include "median.h"
#include "report.h"

#include <hyperspeed.h>

#include <stdio.h>
#include <stdlib.h>

/* Where a run happens and what it measured. */
typedef struct target {
    hs_device_kind device;
    hs_npu_mode mode;
    int cache;
    double first_s, median_s; /* wall seconds: first step, median of the measured ones */
    double sim_s;             /* simulated seconds of the last step (NPU) */
    size_t hbm_peak;
} target;

/* Trains `warmup + steps` steps of cfg at B x T on t's device. */
static hs_status run(const hs_model_config *cfg, int B, int T, int warmup, int steps, target *t)
{
    hs_npu *npu = NULL;
    hs_model *m = NULL;
    hs_optimizer *o = NULL;
    hs_status s = HS_OK;
    hs_model_options mo = hs_model_options_default();
    if (t->device == HS_DEVICE_NPU) {
        hs_npu_spec spec;
        if ((s = hs_npu_spec_preset("910B2", &spec)) || (s = hs_npu_new(&spec, t->mode, &npu)))
            return s;
        hs_npu_set_timing_cache(npu, t->cache);
        mo.device = HS_DEVICE_NPU;
        mo.npu = npu;
        mo.compute = HS_BF16;
    }
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(B * T + 1));
    double *wall = malloc(sizeof(double) * (size_t)steps);
    hs_optimizer_config oc = hs_optimizer_config_default();
    if (!tok || !wall)
        s = hs_error(HS_ERR_OUT_OF_MEMORY, "bench_npu_sim: token buffers");
    if (!s)
        s = hs_model_new_ex(cfg, B, T, &mo, &m);
    if (!s)
        s = hs_model_init(m, 1234);
    if (!s)
        s = hs_optimizer_new(m, &oc, &o);
    for (int i = 0; !s && i <= B * T; i++)
        tok[i] = (int32_t)(hs_rng_uniform(7, 0, (uint64_t)i) * (float)cfg->vocab_size);
    for (int i = 0; !s && i < warmup + steps; i++) {
        hs_step_stats st;
        const double sim0 = npu ? hs_npu_stream_time(hs_npu_default_stream(npu)) : 0;
        s = hs_train_step(m, o, tok, tok + 1, B, T, 1, 1e-4f, &st);
        if (i == 0)
            t->first_s = st.seconds;
        if (i >= warmup)
            wall[i - warmup] = st.seconds;
        if (npu)
            t->sim_s = hs_npu_stream_time(hs_npu_default_stream(npu)) - sim0;
    }
    if (!s) {
        t->median_s = hs_bench_median(wall, steps);
        t->hbm_peak = npu ? hs_npu_mem_peak(npu) : 0;
    }
    free(wall);
    free(tok);
    hs_optimizer_free(o);
    hs_model_free(m);
    hs_npu_free(npu);
    return s;
}

static int failed(const char *what, hs_status s)
{
    fprintf(stderr, "bench_npu_sim: %s: %s (%s)\n", what, hs_last_error(), hs_status_str(s));
    return 1;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv);
    int B = 16, T = 64, steps = 5, warmup = 1, no_llama = 0;
    const hs_option opts[] = {
        {"batch", HS_OPT_INT, &B, "gpt2-tiny batch"},
        {"seq", HS_OPT_INT, &T, "gpt2-tiny sequence length"},
        {"steps", HS_OPT_INT, &steps, "measured steps"},
        {"warmup", HS_OPT_INT, &warmup, "unmeasured steps first"},
        {"no-llama", HS_OPT_FLAG, &no_llama, "skip the llama2-7b case"},
    };
    hs_status s = hs_options_parse(argc, argv, opts, 5);
    if (s || steps < 1 || warmup < 0 || B < 1 || T < 1) {
        fprintf(stderr, "bench_npu_sim: %s\n", s ? hs_last_error() : "bad --steps/--warmup/--batch/--seq");
        hs_options_usage(stderr, "bench_npu_sim", opts, 5);
        return 2;
    }
    hs_model_config cfg;
    if ((s = hs_model_config_preset("gpt2-tiny", &cfg)))
        return failed("gpt2-tiny", s);
    target cpu = {HS_DEVICE_CPU, HS_NPU_EXECUTE, 1, 0, 0, 0, 0};
    target exe = {HS_DEVICE_NPU, HS_NPU_EXECUTE, 1, 0, 0, 0, 0};
    target est = {HS_DEVICE_NPU, HS_NPU_ESTIMATE, 1, 0, 0, 0, 0};
    target raw = {HS_DEVICE_NPU, HS_NPU_ESTIMATE, 0, 0, 0, 0, 0};
    if ((s = run(&cfg, B, T, warmup, steps, &cpu)) || (s = run(&cfg, B, T, warmup, steps, &exe)) ||
        (s = run(&cfg, B, T, warmup, steps, &est)) || (s = run(&cfg, B, T, warmup, steps, &raw)))
        return failed("gpt2-tiny", s);
    printf("{\"bench\":\"npu_sim\",\"case\":\"gpt2-tiny\",\"B\":%d,\"T\":%d,\"threads\":%d,\"cpu_ms\":%.3f,"
           "\"execute_ms\":%.3f,\"estimate_ms\":%.4f,\"estimate_uncached_ms\":%.3f,\"execute_over_cpu\":%.2f,"
           "\"execute_over_estimate\":%.1f,\"sim_ms\":%.4f,\"steps\":%d%s}\n",
           B, T, hs_num_threads(), cpu.median_s * 1e3, exe.median_s * 1e3, est.median_s * 1e3, raw.median_s * 1e3,
           exe.median_s / cpu.median_s, exe.median_s / est.median_s, exe.sim_s * 1e3, steps, hs_bench_machine());
    fflush(stdout);
    if (no_llama)
        return 0;
    if ((s = hs_model_config_preset("llama2-7b", &cfg)))
        return failed("llama2-7b", s);
    cfg.n_layer = 4;
    target big = {HS_DEVICE_NPU, HS_NPU_ESTIMATE, 1, 0, 0, 0, 0};
    if ((s = run(&cfg, 1, 4096, 1, steps, &big)))
        return failed("llama2-7b --layers 4", s);
    printf("{\"bench\":\"npu_sim\",\"case\":\"llama2-7b-4layers\",\"B\":1,\"T\":4096,\"estimate_first_step_s\":%.3f,"
           "\"estimate_step_s\":%.4f,\"sim_step_ms\":%.3f,\"hbm_peak_gib\":%.2f,\"steps\":%d%s}\n",
           big.first_s, big.median_s, big.sim_s * 1e3, (double)big.hbm_peak / (1u << 30), steps, hs_bench_machine());
    return 0;
}
