/* bench/train_step: GPT-2 124M fp32 training step (forward, backward,
 * clipping, AdamW) with hyperspeed on the CPU, and in the same run the same
 * step in PyTorch (bench/train_step_torch.py) under the same OpenBLAS core
 * (--blas-core: the peer sets OPENBLAS_CORETYPE to this process's core
 * before torch loads OpenBLAS) and thread count. One JSON line per shape:
 *   {"bench":"train_step","B":4,"T":64,"hs_tok_s":…,"torch_tok_s":…,"ratio":…,
 *    "hs_mfu":…,"engine_tok_s":…,"engine_ratio":…,"torch_blas_core":"…",…,(machine fields)}
 * hs_tok_s is the plain loop (hs_train_step); engine_tok_s the same step
 * through hs_engine on a world of one process, which is what train_gpt
 * runs (its runtime started by hs_init, as the trainer's).
 * with the machine fields of bench/report.h (cpu, isa, isa_native,
 * blas_core, openblas_coretype_env, openblas_coretype_set_by) and
 * torch_blas_core, the core the peer reported running (null without it).
 * Flags: --steps N (measured, default 5) --warmup N (default 2)
 *        --threads N --no-peer --shapes "4x64,4x256" */
#include "median.h"
#include "report.h"

#include <hyperspeed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HS_SOURCE_DIR
#define HS_SOURCE_DIR "."
#endif

/* Median step seconds of hyperspeed's gpt2-124m at B x T: the plain loop
 * (rt NULL), or the engine on rt's world of one. */
static hs_status hs_step_seconds(hs_runtime *rt, int B, int T, int warmup, int steps, double *sec, double *flops)
{
    hs_model_config cfg;
    hs_model *m = NULL;
    hs_optimizer *o = NULL;
    hs_engine *e = NULL;
    const hs_optimizer_config oc = hs_optimizer_config_default();
    hs_status s = hs_model_config_preset("gpt2-124m", &cfg);
    if (!s && rt) {
        hs_engine_config ec = hs_engine_config_default();
        ec.micro_batch = B;
        ec.seq = T;
        ec.optim = oc;
        if (!(s = hs_engine_new(rt, &cfg, &ec, &e)))
            s = hs_engine_init(e, 1234);
    } else if (!s) {
        if (!(s = hs_model_new(&cfg, B, T, &m)) && !(s = hs_model_init(m, 1234)))
            s = hs_optimizer_new(m, &oc, &o);
    }
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(B * T + 1));
    double *t = malloc(sizeof(double) * (size_t)steps);
    if (!s && (!tok || !t))
        s = hs_error(HS_ERR_OUT_OF_MEMORY, "bench buffers");
    for (int i = 0; !s && i <= B * T; i++)
        tok[i] = (int32_t)(hs_rng_uniform(7, 0, (uint64_t)i) * (float)cfg.vocab_size);
    for (int i = 0; i < warmup + steps && !s; i++) {
        hs_step_stats st;
        hs_engine_stats es;
        s = e ? hs_engine_train_step(e, tok, tok + 1, 3e-4f, &es)
              : hs_train_step(m, o, tok, tok + 1, B, T, 1, 3e-4f, &st);
        if (!s && i >= warmup)
            t[i - warmup] = e ? es.seconds : st.seconds;
    }
    if (!s) {
        *sec = hs_bench_median(t, steps);
        *flops = hs_model_flops_per_step(e ? hs_engine_chunk(e, 0) : m, B, T);
    }
    free(t);
    free(tok);
    hs_engine_free(e);
    hs_optimizer_free(o);
    hs_model_free(m);
    return s;
}

/* Runs the PyTorch peer and returns its tokens/s (0 when it failed). The
 * settings are those a PyTorch user tuning a CPU job would use: passive
 * OpenMP waiting, and glibc malloc kept from returning and re-faulting the
 * large activation buffers every step. */
static double torch_tok_s(int B, int T, int warmup, int steps, int threads, char *json, size_t json_size)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=passive MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184 "
             "MALLOC_TOP_PAD_=1073741824 /usr/bin/python3 %s/bench/train_step_torch.py --batch %d --seq %d "
             "--steps %d --warmup %d --threads %d --blas-core '%s'",
             HS_SOURCE_DIR, B, T, steps, warmup, threads, hs_blas_core_name());
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    json[0] = '\0';
    char line[4096];
    while (fgets(line, sizeof line, p))
        if (line[0] == '{')
            snprintf(json, json_size, "%s", line);
    pclose(p);
    const char *k = strstr(json, "\"torch_tok_s\":");
    return k ? atof(k + strlen("\"torch_tok_s\":")) : 0;
}

/* The peer's "blas_core" as a JSON value ("\"Cooperlake\"", or null). */
static void peer_blas_core(const char *json, char *out, size_t n)
{
    snprintf(out, n, "null");
    const char *k = strstr(json, "\"blas_core\": \"");
    if (!k)
        return;
    k += strlen("\"blas_core\": ");
    const char *end = strchr(k + 1, '"');
    if (end && (size_t)(end - k) + 2 <= n)
        snprintf(out, n, "%.*s", (int)(end - k + 1), k);
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv);
    int steps = 5, warmup = 2, threads = 0, no_peer = 0;
    const char *shapes = "4x64,4x256";
    const hs_option opts[] = {
        {"steps", HS_OPT_INT, &steps, "measured steps"},
        {"warmup", HS_OPT_INT, &warmup, "unmeasured steps first"},
        {"threads", HS_OPT_INT, &threads, "threads for both (0: all cores)"},
        {"no-peer", HS_OPT_FLAG, &no_peer, "skip PyTorch"},
        {"shapes", HS_OPT_STRING, &shapes, "comma-separated BxT list"},
    };
    hs_status s = hs_options_parse(argc, argv, opts, 5);
    hs_runtime *rt = NULL; /* a world of one for the engine's figure */
    if (!s)
        s = hs_init(&argc, &argv, NULL, &rt);
    if (!s && threads > 0)
        s = hs_set_num_threads(threads);
    if (s || steps < 1 || warmup < 0) {
        fprintf(stderr, "bench_train_step: %s\n", s ? hs_last_error() : "--steps must be >= 1");
        hs_options_usage(stderr, "bench_train_step", opts, 5);
        return 2;
    }
    threads = hs_num_threads();
    const double peak = hs_cpu_sgemm_peak_gflops();
    for (const char *p = shapes; p && *p;) {
        int B, T;
        if (sscanf(p, "%dx%d", &B, &T) != 2) {
            fprintf(stderr, "bench_train_step: bad shape list '%s'\n", shapes);
            return 2;
        }
        double sec = 0, flops = 0, esec = 0, eflops;
        if ((s = hs_step_seconds(NULL, B, T, warmup, steps, &sec, &flops)) ||
            (s = hs_step_seconds(rt, B, T, warmup, steps, &esec, &eflops))) {
            fprintf(stderr, "bench_train_step: %s\n", hs_last_error());
            hs_finalize(rt);
            return 1;
        }
        const double hs_tok = B * T / sec, engine_tok = B * T / esec;
        char peer[4096] = "";
        const double torch_tok = no_peer ? 0 : torch_tok_s(B, T, warmup, steps, threads, peer, sizeof peer);
        char torch_core[64];
        peer_blas_core(peer, torch_core, sizeof torch_core);
        printf("{\"bench\":\"train_step\",\"model\":\"gpt2-124m\",\"B\":%d,\"T\":%d,\"threads\":%d,"
               "\"hs_ms_median\":%.1f,\"hs_tok_s\":%.1f,\"torch_tok_s\":%.1f,\"ratio\":%.3f,\"hs_mfu\":%.4f,"
               "\"engine_tok_s\":%.1f,\"engine_ratio\":%.3f,\"sgemm_peak_gflops\":%.1f,\"torch_blas_core\":%s,"
               "\"steps\":%d%s}\n",
               B, T, threads, sec * 1e3, hs_tok, torch_tok, torch_tok > 0 ? hs_tok / torch_tok : 0.0,
               flops / sec / 1e9 / peak, engine_tok, torch_tok > 0 ? engine_tok / torch_tok : 0.0, peak, torch_core,
               steps, hs_bench_machine());
        if (peer[0])
            fprintf(stderr, "peer: %s", peer);
        if (strcmp(torch_core, "null") != 0 &&
            (strlen(torch_core) != strlen(hs_blas_core_name()) + 2 ||
             strncmp(torch_core + 1, hs_blas_core_name(), strlen(hs_blas_core_name())) != 0))
            fprintf(stderr, "bench_train_step: PyTorch ran OpenBLAS core %s, hyperspeed %s: the ratio compares "
                    "different sgemm kernels\n", torch_core, hs_blas_core_name());
        fflush(stdout);
        p = strchr(p, ',');
        if (p)
            p++;
    }
    hs_finalize(rt);
    return 0;
}
