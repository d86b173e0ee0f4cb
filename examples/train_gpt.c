/* train_gpt: trains a GPT-2 or LLaMA style model on a token file with
 * hyperspeed, printing one progress line per step, validation loss, JSONL
 * metrics, checkpoints, and a text sample at the end.
 *
 *   train_gpt --model gpt2-tiny --steps 300            (built-in corpus)
 *   train_gpt --data DIR --save ckpt --val-every 50    (DIR/train.bin, DIR/val.bin)
 *   train_gpt --resume ckpt --steps 600                (continues exactly)
 *   train_gpt --device npu --npu-preset 910B2 --npu-mode estimate --dtype bf16 --trace t.json
 *                                                      (on the simulated NPU: each step also prints
 *                                                       simulated ms, simulated MFU and the HBM peak)
 *   mpirun -n 2 train_gpt --dp 2 --batch 64            (data parallel: 32 sequences per rank and step)
 *   mpirun -n 4 train_gpt --tp 2 --pp 2 --micro-batches 8 --schedule 1f1b
 *                                                      (tensor x pipeline parallel; --sequence-parallel,
 *                                                       --virtual-stages V with --schedule interleaved)
 *
 * Data parallelism: the runtime starts through hs_init (MPI; a process
 * started without mpirun is a world of one). --batch is the global batch,
 * every rank trains on its slice and the gradients are averaged in
 * buckets during the backward. Rank 0 prints, writes metrics, samples and
 * checkpoints; every rank reports its own errors.
 *
 * Tensor and pipeline parallelism (--tp, --pp; world = tp x dp x pp) run
 * through hs_engine: each rank holds its shards of its stage's layers and
 * the micro-batches of its share of the batch flow through the pipeline
 * schedule. Every rank records its own NPU trace (FILE, FILE.rankR.json).
 * Checkpoints hold the whole model's tensors whatever the layout, so any
 * layout resumes any other's (and a single process's).
 */
#include <hyperspeed.h>

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct args {
    const char *model, *data, *val, *save, *resume, *device, *metrics, *prompt;
    const char *npu_preset, *npu_mode, *dtype, *trace, *recompute, *offload;
    int batch, seq, steps, stop_after, warmup, val_every, val_batches, micro_batches, threads, sample, top_k, save_every;
    int n_layer, n_head, n_kv_head, d_model, d_ff, max_seq, vocab_size, trace_steps;
    int dp, verbose, tp, pp, virtual_stages, sequence_parallel, zero, recompute_layers, overlap_param_gather;
    const char *schedule, *stage_layers;
    int64_t seed;
    float lr, min_lr, weight_decay, grad_clip, temperature, bucket_mb;
} args;

static args default_args(void)
{
    args a = {0};
    a.model = "gpt2-tiny";
    a.device = "cpu";
    a.npu_preset = "910B2";
    a.npu_mode = "execute";
    a.prompt = "The ";
    a.batch = 64;
    a.seq = 64;
    a.steps = 500;
    a.warmup = 30;
    a.val_every = 100;
    a.val_batches = 16;
    a.micro_batches = 1;
    a.sample = 300;
    a.top_k = 20;
    a.seed = 1337;
    a.lr = 6e-3f;
    a.min_lr = 3e-4f;
    a.weight_decay = 0.1f;
    a.grad_clip = 1.0f;
    a.temperature = 0.8f;
    a.bucket_mb = 25.0f;
    a.tp = a.pp = a.virtual_stages = 1;
    a.schedule = "1f1b";
    return a;
}

/* Returns a failed call's status from the enclosing function. */
#define HS_TRY_MAIN(expr)                                                                                             \
    do {                                                                                                               \
        hs_status s_ = (expr);                                                                                         \
        if (s_)                                                                                                        \
            return s_;                                                                                                 \
    } while (0)

/* This process's world rank and the world size, for the messages. */
static int world_rank, world_size = 1;

/* Exit codes: 1 for a failure while running (data, checkpoints, memory),
 * 2 for command-line input that cannot work (flags, presets, sizes). With
 * several ranks each one reports, naming itself. */
static int report(const char *what, hs_status s, int code)
{
    if (world_size > 1)
        fprintf(stderr, "train_gpt: [rank %d] %s: %s (%s)\n", world_rank, what, hs_last_error(), hs_status_str(s));
    else
        fprintf(stderr, "train_gpt: %s: %s (%s)\n", what, hs_last_error(), hs_status_str(s));
    return code;
}
static int fail(const char *what, hs_status s) { return report(what, s, 1); }
static int usage_error(const char *what, hs_status s) { return report(what, s, 2); }

static hs_status parse_args(int argc, char **argv, args *a)
{
    const hs_option opts[] = {
        {"model", HS_OPT_STRING, &a->model, "preset: gpt2-tiny, gpt2-124m, llama-tiny, llama2-7b"},
        {"data", HS_OPT_STRING, &a->data, "token file, or directory with train.bin and val.bin (default: built-in corpus)"},
        {"val", HS_OPT_STRING, &a->val, "validation token file (default: DIR/val.bin, or the --data file)"},
        {"batch", HS_OPT_INT, &a->batch, "global batch: sequences per optimizer step over all data-parallel ranks"},
        {"micro-batches", HS_OPT_INT, &a->micro_batches, "pieces each rank's share of the batch is cut into (gradient accumulation)"},
        {"dp", HS_OPT_INT, &a->dp, "data-parallel ranks (0: world size / (tp x pp); run with mpirun -n N)"},
        {"tp", HS_OPT_INT, &a->tp, "tensor-parallel ranks: heads, MLP width and vocabulary split"},
        {"pp", HS_OPT_INT, &a->pp, "pipeline stages: the layers split into pp stages"},
        {"virtual-stages", HS_OPT_INT, &a->virtual_stages, "chunks of layers per pipeline stage (interleaved schedule)"},
        {"schedule", HS_OPT_STRING, &a->schedule, "pipeline schedule: gpipe, 1f1b, interleaved"},
        {"stage-layers", HS_OPT_STRING, &a->stage_layers, "layers of each pipeline chunk in model order, e.g. 9,3 (default: even)"},
        {"sequence-parallel", HS_OPT_FLAG, &a->sequence_parallel, "norms and residuals on seq/tp positions (needs --tp >= 2)"},
        {"bucket-mb", HS_OPT_FLOAT, &a->bucket_mb, "data parallel: gradient bucket size in MiB"},
        {"zero", HS_OPT_INT, &a->zero, "ZeRO stage over the data-parallel group: 0 (none) or 1 (AdamW's state "
                                       "sharded, gradients reduce-scattered, parameters all-gathered)"},
        {"overlap-param-gather", HS_OPT_FLAG, &a->overlap_param_gather, "ZeRO: the parameters' all-gather runs "
         "under the next forward, each block waiting for its own (needs --zero 1)"},
        {"recompute", HS_OPT_STRING, &a->recompute, "activation recompute: none, selective (attention and activation "
         "functions rebuilt in the backward), full (only each layer's input kept)"},
        {"recompute-layers", HS_OPT_INT, &a->recompute_layers, "recompute only the first N layers of each pipeline "
         "chunk (0: all)"},
        {"offload", HS_OPT_STRING, &a->offload, "host offload, a list: optimizer (fp32 master and AdamW state in "
         "NUMA-local host memory, AdamW on the host), activations (each layer's between its forward and backward); "
         "or none"},
        {"verbose", HS_OPT_FLAG, &a->verbose, "print the process grid at start-up"},
        {"seq", HS_OPT_INT, &a->seq, "tokens per sequence"},
        {"steps", HS_OPT_INT, &a->steps, "optimizer steps in total (sets the LR schedule)"},
        {"stop-after", HS_OPT_INT, &a->stop_after, "stop after this step, as an interrupted run would (0: run all)"},
        {"lr", HS_OPT_FLOAT, &a->lr, "peak learning rate"},
        {"min-lr", HS_OPT_FLOAT, &a->min_lr, "learning rate at the end of the cosine decay"},
        {"warmup", HS_OPT_INT, &a->warmup, "linear warmup steps"},
        {"weight-decay", HS_OPT_FLOAT, &a->weight_decay, "AdamW weight decay (matrices only)"},
        {"grad-clip", HS_OPT_FLOAT, &a->grad_clip, "global gradient-norm clip (0: off)"},
        {"val-every", HS_OPT_INT, &a->val_every, "validate every N steps (0: only at the end)"},
        {"val-batches", HS_OPT_INT, &a->val_batches, "batches per validation pass"},
        {"save", HS_OPT_STRING, &a->save, "checkpoint directory written at the end (and every --save-every)"},
        {"save-every", HS_OPT_INT, &a->save_every, "checkpoint every N steps (0: only at the end)"},
        {"resume", HS_OPT_STRING, &a->resume, "checkpoint directory to continue from"},
        {"threads", HS_OPT_INT, &a->threads, "threads (0: HS_NUM_THREADS or all cores)"},
        {"device", HS_OPT_STRING, &a->device, "device: cpu, or npu (the simulated Ascend NPU)"},
        {"npu-preset", HS_OPT_STRING, &a->npu_preset, "NPU spec preset: 910B2, 910B3, 910B4, 910C, 910A, test"},
        {"npu-mode", HS_OPT_STRING, &a->npu_mode, "NPU mode: execute (real data) or estimate (timing and memory only)"},
        {"dtype", HS_OPT_STRING, &a->dtype, "matmul compute dtype: fp32, bf16, fp16 (default: fp32 on cpu, bf16 on npu)"},
        {"trace", HS_OPT_STRING, &a->trace, "NPU: Chrome trace (Perfetto) of the run written to this file"},
        {"trace-steps", HS_OPT_INT, &a->trace_steps, "NPU: trace only the first N steps (0: the whole run)"},
        {"seed", HS_OPT_I64, &a->seed, "seed of initialisation and sampling"},
        {"metrics", HS_OPT_STRING, &a->metrics, "JSONL file receiving one record per step and validation"},
        {"sample", HS_OPT_INT, &a->sample, "bytes of text to sample at the end (0: none)"},
        {"top-k", HS_OPT_INT, &a->top_k, "top-k of the sampler"},
        {"temperature", HS_OPT_FLOAT, &a->temperature, "temperature of the sampler"},
        {"prompt", HS_OPT_STRING, &a->prompt, "text the sample starts from"},
        {"layers", HS_OPT_INT, &a->n_layer, "override the preset's layer count (transformer blocks)"},
        {"n-head", HS_OPT_INT, &a->n_head, "override the preset's head count"},
        {"n-kv-head", HS_OPT_INT, &a->n_kv_head, "override the preset's key/value head count (LLaMA: GQA, 1 = MQA)"},
        {"d-model", HS_OPT_INT, &a->d_model, "override the preset's width"},
        {"d-ff", HS_OPT_INT, &a->d_ff, "override the preset's MLP width"},
        {"max-seq", HS_OPT_INT, &a->max_seq, "override the preset's context length"},
        {"vocab-size", HS_OPT_INT, &a->vocab_size, "override the preset's vocabulary size"},
    };
    const int n = (int)(sizeof opts / sizeof opts[0]);
    hs_status s = hs_options_parse(argc, argv, opts, n);
    if (s == HS_ERR_NOT_FOUND) { /* --help */
        hs_options_usage(stdout, "train_gpt", opts, n);
        exit(0);
    }
    if (s)
        hs_options_usage(stderr, "train_gpt", opts, n);
    return s;
}

static hs_status build_config(const args *a, hs_model_config *c)
{
    hs_status s = hs_model_config_preset(a->model, c);
    if (s)
        return s;
    int *fields[] = {&c->n_layer, &c->n_head, &c->n_kv_head, &c->d_model, &c->d_ff, &c->max_seq, &c->vocab_size};
    const int overrides[] = {a->n_layer, a->n_head, a->n_kv_head, a->d_model, a->d_ff, a->max_seq, a->vocab_size};
    for (int i = 0; i < 7; i++)
        if (overrides[i] != 0)
            *fields[i] = overrides[i];
    return hs_model_config_validate(c);
}

static hs_status check_args(const args *a)
{
    const int npu = strcmp(a->device, "npu") == 0;
    if (!npu && strcmp(a->device, "cpu") != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown device '%s' (known: cpu, npu)", a->device);
    if (strcmp(a->npu_mode, "execute") != 0 && strcmp(a->npu_mode, "estimate") != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown --npu-mode '%s' (execute or estimate)", a->npu_mode);
    if (!npu && a->trace)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--trace records the NPU's simulated time: it needs --device npu");
    if (a->trace_steps < 0 || (a->trace_steps && !a->trace))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--trace-steps=%d: a step count >= 0, with --trace FILE",
                        a->trace_steps);
    if (npu && strcmp(a->npu_mode, "estimate") == 0 && (a->save || a->resume))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--save and --resume need values: --npu-mode estimate has none");
    if (a->batch < 1 || a->seq < 1 || a->steps < 0 || a->micro_batches < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--batch=%d --seq=%d --micro-batches=%d must be >= 1, --steps=%d >= 0",
                        a->batch, a->seq, a->micro_batches, a->steps);
    if (a->dp < 0 || !(a->bucket_mb > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--dp=%d must be >= 0 (0: the world size) and --bucket-mb=%g > 0",
                        a->dp, (double)a->bucket_mb);
    if (a->recompute_layers < 0 || (a->recompute_layers && (!a->recompute || !strcmp(a->recompute, "none"))))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--recompute-layers=%d: a count >= 0 (0: every layer), with "
                        "--recompute selective or full", a->recompute_layers);
    if (a->stop_after < 0 || a->threads < 0 || a->val_every < 0 || a->val_batches < 1 || a->warmup < 0 || a->save_every < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "--stop-after, --threads, --val-every, --warmup, --save-every must be >= 0 and "
                        "--val-batches >= 1");
    return HS_OK;
}

/* Paths of the training and validation token files: --data FILE (with
 * --val FILE, else validation on the same file), --data DIR (DIR/train.bin,
 * DIR/val.bin), or the built-in corpus cached under $HS_CACHE_DIR (default
 * ~/.cache/hyperspeed). verbose: print what the corpus build did. */
static hs_status data_paths(const args *a, char *train, char *val, size_t n, int verbose)
{
    char dir[1024];
    struct stat sb;
    if (a->data && stat(a->data, &sb) == 0 && S_ISREG(sb.st_mode)) {
        snprintf(train, n, "%s", a->data);
        snprintf(val, n, "%s", a->val ? a->val : a->data);
        return HS_OK;
    }
    if (a->data) {
        snprintf(dir, sizeof dir, "%s", a->data);
    } else {
        const char *cache = getenv("HS_CACHE_DIR"), *home = getenv("HOME");
        if (cache && *cache)
            snprintf(dir, sizeof dir, "%s/corpus", cache);
        else
            snprintf(dir, sizeof dir, "%s/.cache/hyperspeed/corpus", home && *home ? home : "/tmp");
        hs_corpus_stats st;
        hs_status s = hs_corpus_build(dir, &st);
        if (s)
            return s;
        if (verbose)
            printf("corpus: %d license texts from %s -> %" PRIu64 " train / %" PRIu64 " val bytes (%s)\n", st.files,
               HS_CORPUS_SOURCE_DIR, st.train_tokens, st.val_tokens, st.reused ? "cached" : "built");
    }
    snprintf(train, n, "%s/%s", dir, HS_CORPUS_TRAIN_FILE);
    if (a->val)
        snprintf(val, n, "%s", a->val);
    else
        snprintf(val, n, "%s/%s", dir, HS_CORPUS_VAL_FILE);
    return HS_OK;
}

/* Mean loss over the first `batches` batches of the validation file (each
 * rank its slice of every batch, B sequences, averaged over the DP group
 * `dp`, which may be NULL), through the engine's layout. */
static hs_status validate(hs_engine *e, hs_loader *val, hs_comm *dp, int batches, int B, int32_t *x, int32_t *y,
                          float *out)
{
    uint64_t n = hs_loader_pass_batches(val);
    if (n == 0)
        n = 1; /* a short file still gives one (wrapped) batch */
    if ((uint64_t)batches > n)
        batches = (int)n;
    hs_loader_set_position(val, 0);
    double sum = 0;
    for (int i = 0; i < batches; i++) {
        float loss;
        hs_status s = hs_loader_next(val, x, y);
        if (!s)
            s = hs_engine_eval(e, x, y, B, &loss);
        if (s)
            return s;
        sum += loss;
    }
    *out = (float)(sum / batches);
    return dp ? hs_comm_allreduce(dp, out, out, 1, HS_FP32, HS_REDUCE_AVG) : HS_OK;
}

static void print_sample(const int32_t *tok, int n, int vocab)
{
    printf("---- sample ----\n");
    for (int i = 0; i < n; i++) {
        int c = tok[i];
        if (vocab <= 256 && (isprint(c) || c == '\n'))
            putchar(c);
        else if (vocab <= 256)
            printf("\\x%02x", c);
        else
            printf("<%d>", c);
    }
    printf("\n----------------\n");
}

typedef struct run {
    args a;
    hs_runtime *rt;
    hs_comm *world, *dpc; /* dpc: the DP group when it has more than one rank, else NULL */
    int rank, dp, dp_rank;
    int local_batch;      /* this rank's share of the global batch, a->batch / dp */
    hs_engine *engine;    /* the step driver of every layout (one process: world 1) */
    hs_layout layout;
    double bubble, sim_bubble; /* summed measured pipeline bubbles of the steps run */
    hs_engine_stats last;      /* the engine's last step */
    hs_model_config cfg;
    hs_dtype dtype;
    hs_recompute recompute;
    unsigned offload;    /* hs_offload bits */
    hs_npu *npu; /* NULL on the CPU */
    hs_loader *train, *val;
    FILE *metrics;
    int32_t *x, *y;
    int tracing;        /* the NPU trace is recording */
    double sim_seconds; /* summed simulated time of the steps run */
    int sim_steps;
    double sim_comm, sim_exposed; /* summed simulated all-reduce and exposed communication time */
} run;

/* printf on rank 0 only. */
#define say(r, ...)                                                                                                    \
    do {                                                                                                               \
        if ((r)->rank == 0)                                                                                            \
            printf(__VA_ARGS__);                                                                                       \
    } while (0)

/* The exit code of a stage every rank went through, where some may have
 * failed (and reported why): 0 when all succeeded, else the highest code,
 * which a rank that succeeded returns too, saying so, so that every rank
 * stops together instead of waiting for the others in a collective. */
static int together(const run *r, int rc)
{
    if (!r->world || hs_comm_size(r->world) == 1)
        return rc;
    int worst = rc;
    hs_status s = hs_comm_allreduce(r->world, &worst, &worst, 1, HS_INT32, HS_REDUCE_MAX);
    if (s)
        return rc ? rc : fail("agreeing with the other ranks", s);
    if (worst && !rc)
        fprintf(stderr, "train_gpt: [rank %d] stopping: another rank failed (its message says why)\n", world_rank);
    return worst;
}

/* A value for a progress line: "-" when it is NaN (an estimate-mode NPU
 * computes no values). */
static const char *num(char *buf, size_t n, const char *fmt, double v)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
    return buf;
}

/* The same for JSON: null for NaN. */
static const char *jnum(char *buf, size_t n, double v)
{
    return isnan(v) ? "null" : num(buf, n, "%.9g", v);
}


static double mib(size_t bytes) { return (double)bytes / 1048576.0; }

/* The end of an NPU run: simulated step time, MFU, HBM peak, the data
 * parallel communication and, from the trace, the kernels that took the
 * most simulated time. Rank 0 only. */
static int npu_summary(run *r, double flops, double peak)
{
    const args *a = &r->a;
    const hs_npu_spec *sp = hs_npu_spec_of(r->npu);
    printf("---- NPU summary: %s, %s mode, %s compute ----\n", sp->name, a->npu_mode, hs_dtype_name(r->dtype));
    if (r->sim_steps > 0) {
        const double step = r->sim_seconds / r->sim_steps;
        printf("simulated step time %.3f ms (mean of %d steps) | simulated MFU %.1f%% of %.1f TFLOP/s | "
               "%.0f simulated tok/s\n",
               step * 1e3, r->sim_steps, flops / step / peak * 100, peak / 1e12,
               (double)a->batch * a->seq / step);
    }
    if (r->dp > 1 && r->sim_steps > 0) {
        const double comm = r->sim_comm / r->sim_steps, exposed = r->sim_exposed / r->sim_steps;
        printf("data parallel: %d NPUs, %d gradient buckets of <= %g MiB | simulated all-reduce %.3f ms per step on "
               "the comm stream, exposed %.3f ms (%.1f%% overlapped with the backward)\n",
               r->dp, r->last.dp.buckets, (double)a->bucket_mb, comm * 1e3, exposed * 1e3,
               comm > 0 ? 100 * (1 - exposed / comm) : 100.0);
    }
    if (a->pp > 1 && r->sim_steps > 0)
        printf("pipeline: %d stages, %s, %d micro-batches | simulated bubble of rank 0 %.3f (mean of %d steps), "
               "theory %.3f\n", a->pp, hs_pp_schedule_name(r->layout.schedule), a->micro_batches,
               r->sim_bubble / r->sim_steps, r->sim_steps, r->last.bubble_theory);
    printf("HBM peak %.1f MiB of %.1f MiB (%.1f%%)\n", mib(hs_npu_mem_peak(r->npu)),
           mib(hs_npu_mem_capacity(r->npu)),
           100.0 * (double)hs_npu_mem_peak(r->npu) / (double)hs_npu_mem_capacity(r->npu));
    uint64_t hits, misses;
    hs_npu_timing_cache_stats(r->npu, &hits, &misses);
    printf("kernel launches: %" PRIu64 " simulated, %" PRIu64 " replayed from the timing cache\n", misses, hits);
    if (!a->trace) {
        printf("top kernels: run with --trace FILE to record them\n");
        return 0;
    }
    hs_status s = r->tracing ? hs_npu_trace_stop(r->npu) : HS_OK;
    r->tracing = 0;
    hs_npu_kernel_profile *k = NULL;
    size_t n = 0;
    if (s || (s = hs_npu_trace_profile(a->trace, &k, &n)))
        return fail("trace", s);
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += k[i].seconds;
    if (a->trace_steps > 0)
        printf("top kernels by simulated time (first %d steps, from the trace):\n", a->trace_steps);
    else
        printf("top kernels by simulated time (whole run, from the trace):\n");
    printf("  %-28s %7s %11s %6s %7s %8s\n", "kernel", "count", "time ms", "share", "cube", "TFLOP/s");
    for (size_t i = 0; i < n && i < 10; i++) {
        char cube[16];
        printf("  %-28s %7" PRId64 " %11.3f %5.1f%% %7s %8.2f\n", k[i].name, k[i].count, k[i].seconds * 1e3,
               total > 0 ? 100 * k[i].seconds / total : 0.0,
               k[i].cube_util < 0 ? "-" : num(cube, sizeof cube, "%.1f%%", 100 * k[i].cube_util),
               k[i].seconds > 0 ? k[i].flops / k[i].seconds / 1e12 : 0.0);
    }
    free(k);
    printf("trace: %s (open in https://ui.perfetto.dev; hs-npu prof %s)\n", a->trace, a->trace);
    return 0;
}

/* With tensor or pipeline parallelism, rank 0 prints the layout and a
 * line per rank: its coordinates, layers, parameters and device memory
 * (gathered from every rank). */
static hs_status layout_banner(const run *r)
{
    const args *a = &r->a;
    hs_model_memory mm;
    HS_TRY_MAIN(hs_engine_memory(r->engine, &mm));
    const hs_model_shard *sh = hs_model_shard_of(hs_engine_chunk(r->engine, 0));
    const int nc = hs_engine_num_chunks(r->engine);
    const hs_model_shard *last = hs_model_shard_of(hs_engine_chunk(r->engine, nc - 1));
    int64_t mine[5] = {hs_engine_num_params(r->engine),
                       (int64_t)(mm.weights + mm.gradients + mm.optimizer + mm.activations), sh->first_layer,
                       last->first_layer + last->n_layers - 1, nc};
    int64_t *all = malloc(sizeof mine * (size_t)world_size);
    if (!all)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "banner");
    hs_status s = hs_comm_allgather(r->world, mine, all, 5 * (size_t)world_size, HS_INT64);
    if (!s) {
        say(r, "layout: tp %d x dp %d x pp %d%s | schedule %s, %d virtual stages, %d micro-batches, bubble theory "
            "%.3f\n", a->tp, r->dp, a->pp, a->sequence_parallel ? " (sequence parallel)" : "",
            a->pp > 1 ? hs_pp_schedule_name(r->layout.schedule) : "-", a->virtual_stages, a->micro_batches,
            a->pp > 1 ? hs_pp_bubble_theory(r->layout.schedule, a->pp, a->micro_batches, a->virtual_stages) : 0.0);
        const hs_grid *g = hs_runtime_grid(r->rt);
        for (int k = 0; k < world_size; k++) {
            const int64_t *v = all + 5 * k;
            say(r, "  rank %d (tp %d, dp %d, pp %d): layers %" PRId64 "..%" PRId64 " in %" PRId64 " chunk(s), %" PRId64
                " parameters, %.1f MiB (weights, gradients, AdamW, activations)\n", k,
                hs_grid_group_rank(g, HS_GROUP_TP, k), hs_grid_group_rank(g, HS_GROUP_DP, k),
                hs_grid_group_rank(g, HS_GROUP_PP, k), v[2], v[3], v[4], v[0], (double)v[1] / 1048576.0);
        }
    }
    free(all);
    return s;
}

/* The banner: model, global batch and its split, device. */
static void banner(const run *r, double peak)
{
    const args *a = &r->a;
    hs_model_memory whole; /* the whole model's count (a layout's ranks each hold a part: layout_banner) */
    const int64_t params = hs_model_memory_plan(&r->cfg, 1, 1, NULL, &whole) ? 0 : whole.params;
    const int mb = r->local_batch / a->micro_batches;
    char split[160] = "";
    if (r->dp > 1)
        snprintf(split, sizeof split, " = %d DP ranks x %d micro-batches x %d", r->dp, a->micro_batches, mb);
    else
        snprintf(split, sizeof split, " (%d micro-batches of %d)", a->micro_batches, mb);
    if (r->npu) {
        const hs_npu_spec *sp = hs_npu_spec_of(r->npu);
        say(r, "model %s: %" PRId64 " parameters, %d layers, d_model %d | batch %d x seq %d%s | "
            "NPU %s (%s mode): %d cube + %d vector cores, %.1f TFLOP/s %s, HBM %.0f MiB\n",
            a->model, params, r->cfg.n_layer, r->cfg.d_model, a->batch, a->seq, split, sp->name, a->npu_mode, sp->cube_cores, sp->vector_cores, peak / 1e12, hs_dtype_name(r->dtype),
            mib(hs_npu_mem_capacity(r->npu)));
    } else {
        say(r, "model %s: %" PRId64 " parameters, %d layers, d_model %d | batch %d x seq %d%s | "
            "%d threads | sgemm peak %.0f GFLOP/s (OpenBLAS %s)%s\n",
            a->model, params, r->cfg.n_layer, r->cfg.d_model, a->batch, a->seq, split, hs_num_threads(), peak / 1e9, hs_blas_core_name(), r->dtype == HS_FP32 ? "" : " | bf16 compute");
    }
    if (r->dp > 1)
        say(r, "data parallel: %d ranks, micro-batch %d per rank, gradient buckets of <= %g MiB%s%s\n", r->dp, mb,
            (double)a->bucket_mb, a->zero ? " | ZeRO-1: AdamW state sharded, gradients reduce-scattered" : "",
            a->zero && a->overlap_param_gather ? ", parameters gathered under the next forward" : "");
    if (r->recompute != HS_RECOMPUTE_NONE)
        say(r, "activation recompute: %s, %s\n", hs_recompute_name(r->recompute),
            r->recompute == HS_RECOMPUTE_FULL ? "each layer's input kept, its forward rerun in the backward"
                                              : "attention and the activation functions rerun in the backward");
    if (r->recompute != HS_RECOMPUTE_NONE && a->recompute_layers)
        say(r, "  on the first %d layers of each pipeline chunk\n", a->recompute_layers);
    if (r->offload & HS_OFFLOAD_OPTIMIZER)
        say(r, "host offload: optimizer (fp32 master, AdamW m and v%s in NUMA-local host memory; AdamW on the "
            "host)\n", r->npu ? ", the gradients' copy" : "");
    if (r->offload & HS_OFFLOAD_ACTIVATIONS)
        say(r, "host offload: activations (each layer's to the host after its forward, back before its backward; "
            "3 layers' on the device)\n");
    hs_status s;
    if ((a->tp > 1 || a->pp > 1) && (s = layout_banner(r)))
        fail("banner", s);
}

/* The metrics fields of a pipeline step (malloc'd; NULL when out of
 * memory): the bubble, the theory, and this rank's forward and backward
 * times per micro-batch in schedule order ("fwd_ms", "bwd_ms"; simulated
 * on the NPU). */
static char *op_times_json(const run *r, double bubble)
{
    const hs_engine_op_time *t;
    const int n = hs_engine_op_times(r->engine, &t);
    const size_t cap = 96 + (size_t)n * 16;
    char *j = malloc(cap);
    if (!j)
        return NULL;
    size_t at = (size_t)snprintf(j, cap, ",\"bubble\":%.6f,\"bubble_theory\":%.6f", bubble, r->last.bubble_theory);
    for (int pass = 0; pass < 2; pass++) {
        at += (size_t)snprintf(j + at, cap - at, ",\"%s_ms\":[", pass ? "bwd" : "fwd");
        const char *sep = "";
        for (int i = 0; i < n; i++)
            if (t[i].op.backward == pass) {
                const double ms = (r->npu ? t[i].sim_end_s - t[i].sim_start_s : t[i].end_s - t[i].start_s) * 1e3;
                at += (size_t)snprintf(j + at, cap - at, "%s%.3f", sep, ms);
                sep = ",";
            }
        at += (size_t)snprintf(j + at, cap - at, "]");
    }
    return j;
}

/* One step's progress line and metrics record (rank 0). flops and peak
 * are per rank. */
static void report_step(run *r, int64_t step, const hs_engine_stats *ss, double flops, double peak)
{
    const args *a = &r->a;
    char lb[32], nb[32], jl[32], jn[32], dpl[96] = "", dpj[128] = "", ppl[96] = "";
    num(lb, sizeof lb, "%.4f", ss->loss);
    num(nb, sizeof nb, "%6.3f", ss->grad_norm);
    char *ppj = NULL; /* pipeline: the bubble and rank 0's per-micro-batch times for the metrics */
    if (r->layout.pp > 1) { /* rank 0's (the first stage's) measured bubble */
        const double b = r->npu ? r->last.sim_bubble : r->last.bubble;
        snprintf(ppl, sizeof ppl, " | %sbubble %.3f (theory %.3f)", r->npu ? "sim " : "", b, r->last.bubble_theory);
        ppj = op_times_json(r, b);
    }
    if (r->npu) {
        const double sim = ss->sim_seconds, mfu = flops / sim / peak;
        const size_t hbm = hs_npu_mem_peak(r->npu);
        if (r->dp > 1) {
            snprintf(dpl, sizeof dpl, " | sim comm %.3f ms, exposed %.3f ms", ss->dp.sim_comm_s * 1e3,
                     ss->dp.sim_exposed_s * 1e3);
            snprintf(dpj, sizeof dpj, ",\"sim_comm_ms\":%.6f,\"sim_comm_exposed_ms\":%.6f", ss->dp.sim_comm_s * 1e3,
                     ss->dp.sim_exposed_s * 1e3);
        }
        say(r, "step %5" PRId64 "/%d | loss %s | lr %.2e | norm %s | wall %7.1f ms | sim %9.3f ms | "
            "sim MFU %4.1f%% | HBM peak %.1f MiB%s%s\n",
            step + 1, a->steps, lb, (double)ss->lr, nb, ss->seconds * 1e3, sim * 1e3, mfu * 100, mib(hbm), dpl, ppl);
        if (r->metrics)
            fprintf(r->metrics,
                    "{\"step\":%" PRId64 ",\"loss\":%s,\"lr\":%.9g,\"grad_norm\":%s,\"ms\":%.3f,\"sim_ms\":%.6f,"
                    "\"sim_mfu\":%.5f,\"hbm_peak\":%zu%s%s}\n",
                    step + 1, jnum(jl, sizeof jl, ss->loss), (double)ss->lr, jnum(jn, sizeof jn, ss->grad_norm),
                    ss->seconds * 1e3, sim * 1e3, mfu, hbm, dpj, ppj ? ppj : "");
        free(ppj);
        return;
    }
    const double tok_s = (double)a->batch * a->seq / ss->seconds, mfu = flops / ss->seconds / peak;
    if (r->dp > 1) {
        snprintf(dpl, sizeof dpl, " | comm wait %.1f ms", ss->dp.wait_s * 1e3);
        snprintf(dpj, sizeof dpj, ",\"comm_wait_ms\":%.3f", ss->dp.wait_s * 1e3);
    }
    say(r, "step %5" PRId64 "/%d | loss %.4f | lr %.2e | norm %6.3f | %7.1f ms | %8.0f tok/s | MFU %4.1f%%%s%s\n",
        step + 1, a->steps, (double)ss->loss, (double)ss->lr, ss->grad_norm, ss->seconds * 1e3, tok_s, mfu * 100,
        dpl, ppl);
    if (r->metrics)
        fprintf(r->metrics,
                "{\"step\":%" PRId64 ",\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"ms\":%.3f,\"tok_s\":%.1f,"
                "\"mfu\":%.5f%s%s}\n",
                step + 1, (double)ss->loss, (double)ss->lr, ss->grad_norm, ss->seconds * 1e3, tok_s, mfu, dpj,
                ppj ? ppj : "");
    free(ppj);
}

/* The text sample after training (rank 0). */
static int sample(run *r)
{
    const args *a = &r->a;
    const int no_values = r->npu && hs_npu_mode_of(r->npu) == HS_NPU_ESTIMATE;
    if (a->sample <= 0) /* every rank takes part (a layout's pipeline), rank 0 prints */
        return 0;
    if (no_values) {
        say(r, "sample: none (--npu-mode estimate computes no values)\n");
        return 0;
    }
    int np = (int)strlen(a->prompt);
    if (np == 0 || r->cfg.vocab_size < 256)
        return fail("sample", hs_error(HS_ERR_INVALID_ARGUMENT, "sampling needs a non-empty --prompt and a "
                                                                "byte-level vocabulary"));
    int32_t *out = malloc(sizeof *out * (size_t)(np + a->sample));
    if (!out)
        return fail("sample", hs_error(HS_ERR_OUT_OF_MEMORY, "sample buffer"));
    hs_tokenizer_encode(a->prompt, (size_t)np, out);
    hs_status s = hs_engine_generate(r->engine, out, np, a->sample, a->top_k, a->temperature, (uint64_t)a->seed, out);
    if (!s && r->rank == 0)
        print_sample(out, np + a->sample, r->cfg.vocab_size);
    free(out);
    return s ? fail("sample", s) : 0;
}

/* Rank 0 writes the checkpoint (the parameters are the same on every DP
 * rank; it assembles every rank's shards into the whole model's tensors);
 * every rank learns whether it worked. Returns an exit code. */
static int save(run *r, hs_train_state *st, int64_t step)
{
    st->data_position = hs_loader_position(r->train);
    hs_status s = hs_engine_save(r->engine, r->a.save, st); /* every rank: rank 0 assembles */
    int rc = together(r, s ? fail("save", s) : 0);
    if (!rc)
        say(r, "saved checkpoint to %s at step %" PRId64 "\n", r->a.save, step);
    return rc;
}

/* One optimizer step on this rank's share x, y of the global batch. */
static hs_status train_step(run *r, float lr, hs_engine_stats *es)
{
    HS_TRY_MAIN(hs_engine_train_step(r->engine, r->x, r->y, lr, es));
    r->last = *es;
    r->bubble += es->bubble;
    r->sim_bubble += es->sim_bubble;
    return HS_OK;
}

static int train(run *r)
{
    const args *a = &r->a;
    const int B = r->local_batch, T = a->seq, mb = B / a->micro_batches;
    hs_status s;
    int rc;
    hs_train_state st = {(uint64_t)a->seed, 0};
    if (a->resume) { /* every rank reads the same checkpoint */
        s = hs_engine_load(r->engine, a->resume, &st);
        if ((rc = together(r, s ? fail("resume", s) : 0)))
            return rc;
        hs_loader_set_position(r->train, st.data_position);
        say(r, "resumed from %s at step %" PRId64 "\n", a->resume, hs_engine_steps(r->engine));
    }
    double flops = 0; /* per rank */
    for (int c = 0; c < hs_engine_num_chunks(r->engine); c++)
        flops += hs_model_flops_per_step(hs_engine_chunk(r->engine, c), B, T);
    const double peak = r->npu ? hs_npu_peak_flops(hs_npu_spec_of(r->npu), r->dtype)
                               : hs_cpu_sgemm_peak_gflops() * 1e9; /* FLOP/s */
    banner(r, peak);
    hs_lr_schedule sched = {a->lr, a->min_lr, a->warmup, a->steps};
    float val_loss = -1;
    const int64_t end = a->stop_after > 0 && a->stop_after < a->steps ? a->stop_after : a->steps;
    const int64_t first = hs_engine_steps(r->engine);
    for (int64_t step = first; step < end; step++) {
        hs_engine_stats ss;
        char lb[32], jl[32];
        s = hs_loader_next(r->train, r->x, r->y);
        if ((rc = together(r, s ? fail("data", s) : 0)))
            return rc;
        if ((s = train_step(r, hs_lr_at(&sched, step), &ss)))
            return fail("train step", s);
        if (r->npu) {
            r->sim_seconds += ss.sim_seconds;
            r->sim_steps++;
            r->sim_comm += ss.dp.sim_comm_s;
            r->sim_exposed += ss.dp.sim_exposed_s;
        }
        report_step(r, step, &ss, flops, peak);
        if (r->tracing && a->trace_steps > 0 && step + 1 - first >= a->trace_steps) {
            if ((s = hs_npu_trace_stop(r->npu)))
                return fail("trace", s);
            r->tracing = 0;
        }
        const int last = step + 1 == end;
        if (last || (a->val_every && (step + 1) % a->val_every == 0)) {
            if ((s = validate(r->engine, r->val, r->dpc, a->val_batches, mb, r->x, r->y, &val_loss)))
                return fail("validation", s);
            say(r, "step %5" PRId64 " | val loss %s\n", step + 1, num(lb, sizeof lb, "%.4f", val_loss));
            if (r->metrics)
                fprintf(r->metrics, "{\"step\":%" PRId64 ",\"val_loss\":%s}\n", step + 1,
                        jnum(jl, sizeof jl, val_loss));
        }
        if (a->save && (last || (a->save_every && (step + 1) % a->save_every == 0)) && (rc = save(r, &st, step + 1)))
            return rc;
    }
    if (val_loss >= 0)
        say(r, "final validation loss %.4f nats/%s\n", (double)val_loss,
            r->cfg.vocab_size == HS_BYTE_VOCAB_SIZE ? "byte" : "token");
    if ((rc = sample(r)))
        return rc;
    return r->npu && r->rank == 0 ? npu_summary(r, flops, peak) : 0;
}

static double gib(size_t bytes) { return (double)bytes / 1073741824.0; }

/* Where rank w's memory goes, as the memory plan counts it (rank 0 prints). */
static void memory_breakdown(run *r, const hs_memory_rank *w, size_t cap)
{
    const int off = (r->offload & HS_OFFLOAD_OPTIMIZER) != 0;
    say(r, "  weights          %9.2f GiB  %s\n", gib(w->weights),
        off ? (r->dtype == HS_FP32 ? "fp32 copy for the kernels (master on the host)"
                                   : "16-bit copy + fp32 norms, biases, embeddings (master on the host)")
            : (r->dtype == HS_FP32 ? "fp32 master" : "fp32 master + 16-bit copy for the matmuls"));
    say(r, "  gradients        %9.2f GiB  fp32\n", gib(w->gradients));
    say(r, "  optimizer state  %9.2f GiB  AdamW m and v, fp32%s%s\n", gib(w->optimizer),
        r->a.zero && r->dp > 1 ? ", this rank's ZeRO-1 shard" : "", off ? ": on the host" : "");
    say(r, "  activations      %9.2f GiB  %d micro-batch(es) in flight x %.2f + %.2f shared, recompute %s\n",
        gib(w->activations), w->in_flight, gib(w->act_per_micro_batch), gib(w->act_shared),
        hs_recompute_name(r->recompute));
    say(r, "  workspace        %9.2f GiB  %s\n", gib(w->workspace),
        r->npu ? "largest kernel workspace" : "the collectives' scratch");
    say(r, "  communication    %9.2f GiB  pipeline and data-parallel buffers\n", gib(w->comm));
    if (w->host)
        say(r, "  (host pool       %9.2f GiB  offloaded state: not in the total)\n", gib(w->host));
    say(r, "  total            %9.2f GiB  = %.2fx the capacity (%" PRId64 " parameters)\n", gib(w->device),
        (double)w->device / (double)cap, w->params);
}

/* The run's memory plan (hs_memory_estimate: every rank's bytes, computed
 * alike on every rank) before anything is allocated: rank 0 prints the
 * fullest rank's figure; on the NPU a run that does not fit its HBM is
 * refused on every rank with where that rank's memory would go. */
static int memory_plan(run *r, const hs_engine_config *ec)
{
    const int world = hs_comm_size(r->world);
    hs_memory_rank *m = calloc((size_t)world, sizeof *m);
    if (!m)
        return fail("memory plan", hs_error(HS_ERR_OUT_OF_MEMORY, "%d ranks' plans", world));
    hs_status s = hs_memory_estimate(&r->cfg, ec, world, r->npu ? hs_npu_spec_of(r->npu) : NULL, m);
    if (s) {
        free(m);
        return s == HS_ERR_INVALID_ARGUMENT || s == HS_ERR_DTYPE ? usage_error("layout", s) : fail("memory plan", s);
    }
    int worst = 0;
    for (int i = 1; i < world; i++)
        worst = m[i].device > m[worst].device ? i : worst;
    const hs_memory_rank w = m[worst];
    free(m);
    if (r->offload)
        say(r, "host offload pool: %.2f GiB on the fullest rank (%d)%s\n", gib(w.host), worst,
            r->npu && w.host > (size_t)hs_npu_spec_of(r->npu)->host_bytes ? ": more than one NPU's host share" : "");
    if (!r->npu) {
        say(r, "memory plan: %.1f MiB on the fullest rank (%d) of %d\n", (double)w.device / 1048576.0, worst, world);
        return 0;
    }
    const size_t cap = hs_npu_mem_capacity(r->npu);
    const char *name = hs_npu_spec_of(r->npu)->name;
    if (w.device <= cap) {
        say(r, "memory plan: %.2f GiB of the %s's %.2f GiB HBM on the fullest rank (%d) of %d (%.0f%%)\n",
            gib(w.device), name, gib(cap), worst, world, 100.0 * (double)w.device / (double)cap);
        return 0;
    }
    fail("memory plan", hs_error(HS_ERR_OUT_OF_MEMORY, "NPU %s HBM out of memory: the memory plan needs %.2f GiB on "
                                                       "rank %d, the device has %.2f GiB",
                                 name, gib(w.device), worst, gib(cap)));
    say(r, "model %s does not fit the %s's %.1f GiB of HBM (micro-batch %d x seq %d, %s compute); rank %d:\n",
        r->a.model, name, gib(cap), ec->micro_batch, ec->seq, hs_dtype_name(r->dtype), worst);
    memory_breakdown(r, &w, cap);
    return 1;
}

/* --device npu: this rank's own device, current on this thread; rank 0
 * records the trace if asked. */
static int setup_npu(run *r)
{
    const args *a = &r->a;
    hs_npu_spec spec;
    hs_status s = hs_npu_spec_preset(a->npu_preset, &spec);
    if (s)
        return usage_error("--npu-preset", s);
    const hs_npu_mode mode = strcmp(a->npu_mode, "estimate") == 0 ? HS_NPU_ESTIMATE : HS_NPU_EXECUTE;
    if ((s = hs_npu_new(&spec, mode, &r->npu)))
        return fail("npu", s);
    r->tracing = a->trace != NULL;
    char path[1100];
    if (r->rank == 0 || !a->trace) /* rank r > 0: FILE.rankR.json beside FILE */
        snprintf(path, sizeof path, "%s", a->trace ? a->trace : "");
    else
        snprintf(path, sizeof path, "%s.rank%d.json", a->trace, r->rank);
    if (r->tracing && (s = hs_npu_trace_start(r->npu, path)))
        return fail("trace", s);
    return 0;
}

/* "9,3" -> out = {9, 3, 0, ...} (at most n counts, each a positive integer). */
static hs_status parse_counts(const char *text, int *out, int n)
{
    const char *p = text;
    for (int k = 0; *p; k++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || k >= n || (*end && *end != ','))
            return hs_error(HS_ERR_INVALID_ARGUMENT, "'%s': comma-separated layer counts >= 1 (at most %d)", text, n);
        out[k] = (int)v;
        p = *end ? end + 1 : end;
    }
    return HS_OK;
}

/* The runtime and the layout: world = tp x dp x pp (--dp 0 derives dp),
 * the global batch split evenly into dp x micro-batches, the layout's
 * rules (hs_layout_check). Every rank checks the same numbers, so a bad
 * combination stops every rank with the same message. */
static int setup_parallel(run *r, int *argc, char ***argv)
{
    const args *a = &r->a;
    hs_runtime_config rc = hs_runtime_config_default();
    rc.dp = a->dp;
    rc.tp = a->tp;
    rc.pp = a->pp;
    rc.verbose = a->verbose;
    hs_status s = hs_init(argc, argv, &rc, &r->rt);
    if (s)
        return usage_error("layout (--tp x --dp x --pp must be the number of MPI ranks, mpirun -n N)", s);
    r->world = hs_runtime_comm(r->rt, HS_GROUP_WORLD);
    r->rank = world_rank = hs_runtime_rank(r->rt, HS_GROUP_WORLD);
    world_size = hs_runtime_size(r->rt, HS_GROUP_WORLD);
    r->dp = hs_runtime_size(r->rt, HS_GROUP_DP);
    r->dp_rank = hs_runtime_rank(r->rt, HS_GROUP_DP);
    r->dpc = r->dp > 1 ? hs_runtime_comm(r->rt, HS_GROUP_DP) : NULL;
    if (a->batch % (r->dp * a->micro_batches) != 0)
        return usage_error("configuration",
                           hs_error(HS_ERR_INVALID_ARGUMENT,
                                    "--dp=%d x --micro-batches=%d = %d does not divide --batch=%d (the global batch "
                                    "is split over the data-parallel ranks, each share into micro-batches)",
                                    r->dp, a->micro_batches, r->dp * a->micro_batches, a->batch));
    r->local_batch = a->batch / r->dp;
    r->layout = hs_layout_default();
    r->layout.tp = a->tp;
    r->layout.pp = a->pp;
    r->layout.sequence_parallel = a->sequence_parallel;
    r->layout.virtual_stages = a->virtual_stages;
    r->layout.micro_batches = a->micro_batches;
    r->layout.seq = a->seq;
    if ((s = hs_pp_schedule_parse(a->schedule, &r->layout.schedule)))
        return usage_error("--schedule", s);
    if (a->stage_layers && (s = parse_counts(a->stage_layers, r->layout.chunk_layers, 64)))
        return usage_error("--stage-layers", s);
    hs_layout_plan plan; /* the engine checks its own layout (tp or pp > 1) */
    if (a->tp == 1 && a->pp == 1 && (s = hs_layout_check(&r->cfg, &r->layout, &plan)))
        return usage_error("layout", s);
    return 0;
}

/* Token files: rank 0 prepares them first (building the corpus cache if
 * needed), then the others find them ready. Each rank's loader serves its
 * slice of every global batch. */
static int setup_data(run *r)
{
    const args *a = &r->a;
    char train_path[1100], val_path[1100];
    hs_status s = r->rank == 0 ? data_paths(a, train_path, val_path, sizeof train_path, 1) : HS_OK;
    int rc = together(r, s ? fail("data", s) : 0);
    if (rc)
        return rc;
    if (r->rank != 0 && (s = data_paths(a, train_path, val_path, sizeof train_path, 0)))
        return fail("data", s);
    hs_loader_config lc = hs_loader_config_default();
    lc.batch = a->batch;
    lc.seq = a->seq;
    lc.rank = r->dp_rank;
    lc.world = r->dp;
    if ((s = hs_loader_new(train_path, &lc, &r->train)))
        return fail("training data", s);
    lc.batch = a->batch / a->micro_batches; /* the single-rank run's validation batch, split the same way */
    if ((s = hs_loader_new(val_path, &lc, &r->val)))
        return fail("validation data", s);
    return 0;
}

/* This rank's engine (its chunks of the model, their optimizers and DP
 * reducers), initialised, after the memory plan said it fits. */
static int setup_engine(run *r, const hs_model_options *mo, const hs_optimizer_config *oc, int mb)
{
    const args *a = &r->a;
    hs_engine_config ec = hs_engine_config_default();
    ec.layout = r->layout;
    ec.micro_batch = mb;
    ec.seq = a->seq;
    ec.model = *mo;
    ec.optim = *oc;
    ec.dp.bucket_bytes = (size_t)((double)a->bucket_mb * 1048576.0);
    ec.zero = a->zero;
    ec.overlap_param_gather = a->overlap_param_gather;
    const int planned = memory_plan(r, &ec);
    if (planned)
        return planned;
    hs_status s = hs_engine_new(r->rt, &r->cfg, &ec, &r->engine);
    if (s)
        return s == HS_ERR_INVALID_ARGUMENT || s == HS_ERR_DTYPE ? usage_error("layout", s) : fail("engine", s);
    if ((s = hs_engine_init(r->engine, (uint64_t)a->seed)))
        return fail("model init", s);
    return 0;
}

/* This rank's engine, batch buffers and (rank 0) metrics file. */
static int setup_model(run *r)
{
    const args *a = &r->a;
    const int on_npu = r->npu != NULL;
    const int T = a->seq, mb = r->local_batch / a->micro_batches;
    hs_model_options mo = hs_model_options_default();
    mo.device = on_npu ? HS_DEVICE_NPU : HS_DEVICE_CPU;
    mo.npu = r->npu;
    mo.compute = r->dtype;
    mo.recompute = r->recompute;
    mo.recompute_layers = a->recompute_layers;
    mo.offload = r->offload;
    hs_optimizer_config oc = hs_optimizer_config_default();
    oc.weight_decay = a->weight_decay;
    oc.grad_clip = a->grad_clip;
    const int rc = setup_engine(r, &mo, &oc, mb);
    if (rc)
        return rc;
    r->x = malloc(sizeof(int32_t) * (size_t)r->local_batch * T);
    r->y = malloc(sizeof(int32_t) * (size_t)r->local_batch * T);
    if (!r->x || !r->y)
        return fail("batch buffers", hs_error(HS_ERR_OUT_OF_MEMORY, "batch buffers"));
    if (r->rank == 0 && a->metrics && !(r->metrics = fopen(a->metrics, a->resume ? "a" : "w")))
        return fail("metrics", hs_error(HS_ERR_IO, "cannot open %s for writing", a->metrics));
    return 0;
}

static int setup_and_train(run *r, int *argc, char ***argv)
{
    const args *a = &r->a;
    hs_status s;
    if ((s = check_args(a)) || (s = build_config(a, &r->cfg)))
        return usage_error("configuration", s);
    const int on_npu = strcmp(a->device, "npu") == 0;
    r->dtype = on_npu ? HS_BF16 : HS_FP32;
    if (a->dtype && (s = hs_dtype_parse(a->dtype, &r->dtype)))
        return usage_error("--dtype", s);
    if (a->recompute && (s = hs_recompute_parse(a->recompute, &r->recompute)))
        return usage_error("--recompute", s);
    if (a->offload && (s = hs_offload_parse(a->offload, &r->offload)))
        return usage_error("--offload", s);
    int rc;
    if ((rc = setup_parallel(r, argc, argv)))
        return rc;
    if (a->threads > 0 && (s = hs_set_num_threads(a->threads)))
        return usage_error("threads", s);
    if ((rc = together(r, on_npu ? setup_npu(r) : 0)) || (rc = together(r, setup_data(r))) ||
        (rc = together(r, setup_model(r))))
        return rc;
    return train(r);
}

int main(int argc, char **argv)
{
    /* First: when OpenBLAS picked weak kernels for this CPU, restart with
     * the best ones (OPENBLAS_CORETYPE); before MPI_Init, so a rank under
     * mpirun stays the same process. */
    hs_blas_core_reexec(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    run r = {0};
    r.a = default_args();
    hs_status s = parse_args(argc, argv, &r.a);
    if (s)
        return usage_error("arguments", s);
    int rc = setup_and_train(&r, &argc, &argv);
    if (r.metrics)
        fclose(r.metrics);
    free(r.x);
    free(r.y);
    hs_engine_free(r.engine);
    hs_npu_free(r.npu);
    hs_loader_free(r.train);
    hs_loader_free(r.val);
    if ((s = hs_finalize(r.rt)) && !rc)
        rc = fail("finalize", s);
    return rc;
}
