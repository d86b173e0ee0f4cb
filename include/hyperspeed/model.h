/* hyperspeed model: decoder-only transformers (GPT-2 style and LLaMA style)
 * with explicit forward and backward passes over a parameter registry.
 *
 * Every parameter is registered once (hs_param_info: name, shape, logical
 * shape and split); its value, gradient and compute copy are reached as
 * tensors through the registry (hs_model_tensor, by entry or by name),
 * never as offsets into storage: how the registry stores them (today one
 * flat buffer per part, so AdamW and the gradient buckets run over long
 * spans) is not part of the API. Activations for a (batch, seq) planned at
 * creation live in one arena: a training step allocates nothing.
 *
 * Placement and precision (hs_model_options): a model lives on the CPU or
 * on a (simulated) NPU, whose HBM then holds every buffer above, and its
 * matmuls take fp32 or a 16-bit compute dtype. With bf16/fp16 compute the
 * matmul inputs are cast: the weights from a low-precision copy of the
 * parameters (refreshed by hs_model_sync_weights, which the optimizer
 * calls after each update), the activations into low-precision twins in
 * the arena; master weights, gradients and everything else stay fp32.
 *
 * Parameter names and shapes (weights are [out, in], as nn.Linear):
 *   GPT-2 style                          LLaMA style
 *   wte [V,C]                            wte [V,C]
 *   wpe [maxT,C]                         -
 *   h.L.ln1.w, h.L.ln1.b [C]             h.L.ln1.w [C]         (RMSNorm)
 *   h.L.attn.qkv.w [3C,C], .b [3C]       h.L.attn.qkv.w [C+2KV,C] (.b [C+2KV] with qkv_bias)
 *   h.L.attn.proj.w [C,C], .b [C]        h.L.attn.proj.w [C,C]
 *   h.L.ln2.w, h.L.ln2.b [C]             h.L.ln2.w [C]
 *   h.L.mlp.fc.w [F,C], .b [F]           h.L.mlp.fc.w [2F,C]   (rows: gate then up)
 *   h.L.mlp.proj.w [C,F], .b [C]         h.L.mlp.proj.w [C,F]
 *   lnf.w, lnf.b [C]                     lnf.w [C]
 *   (head tied to wte)                   lm_head.w [V,C]
 * The qkv output of a token is [q | k | v]: q has NH heads of HD = C/NH, k
 * and v NKV heads each (KV = NKV*HD; GPT-2 always has NKV = NH). Query head
 * h attends with key/value head h / (NH/NKV): grouped-query attention when
 * NKV < NH, multi-query when NKV = 1.
 */
#ifndef HYPERSPEED_MODEL_H
#define HYPERSPEED_MODEL_H

#include "hyperspeed/comm.h"
#include "hyperspeed/core.h"
#include "hyperspeed/npu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_arch {
    HS_ARCH_GPT2 = 0, /* LayerNorm, GELU MLP, learned positions, tied head */
    HS_ARCH_LLAMA = 1 /* RMSNorm, SwiGLU MLP, RoPE, untied head, no biases */
} hs_arch;

typedef struct hs_model_config {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    hs_arch arch;
    int vocab_size; /* V */
    int max_seq;    /* maxT: context length (size of wpe for GPT-2) */
    int n_layer;    /* L */
    int n_head;     /* NH */
    int d_model;    /* C */
    int d_ff;       /* F: MLP hidden width */
    float norm_eps;
    float rope_theta; /* LLaMA only: RoPE base (10000 LLaMA-2, 500000 LLaMA-3, 1e6 Qwen2) */
    float init_std;   /* std of weight init; residual projections use init_std / sqrt(2L) */
    int n_kv_head;    /* NKV: key/value heads, dividing n_head (LLaMA only); 0 means n_head */
    int qkv_bias;     /* LLaMA only: 1 gives the qkv projection a bias (Qwen2), 0 none */
} hs_model_config;

/* Key/value heads of cfg: n_kv_head, or n_head when it is 0. */
HS_API int hs_model_config_kv_heads(const hs_model_config *cfg);

/* A small GPT-2 style default (the gpt2-tiny preset). */
HS_API hs_model_config hs_model_config_default(void);

/* Fills cfg from a preset name (docs/models.md lists their shapes and
 * parameter counts): "gpt2-tiny", "gpt2-124m", "llama-tiny", "llama-tiny-gqa"
 * (4 query heads on 2 key/value heads), "qwen2-tiny" (the same with a qkv
 * bias and Qwen2's theta and eps), "llama2-7b", "llama2-13b",
 * "llama2-70b" (8 key/value heads), "llama3-8b" (8 key/value heads,
 * vocabulary 128256, theta 500000), "qwen2-7b" (4 key/value heads, qkv bias,
 * vocabulary 152064, theta 1e6).
 * Errors: HS_ERR_NOT_FOUND naming the preset and listing the known ones. */
HS_API hs_status hs_model_config_preset(const char *name, hs_model_config *cfg);

/* Names of the presets, NULL-terminated. */
HS_API const char *const *hs_model_preset_names(void);

/* Checks sizes: all positive, n_head divides d_model, n_kv_head (when set)
 * divides n_head, head size even for RoPE, GPT-2 without key/value groups
 * or qkv_bias flag, ... Errors: HS_ERR_INVALID_ARGUMENT with the offending
 * values. */
HS_API hs_status hs_model_config_validate(const hs_model_config *cfg);

/* Writes cfg as a JSON object ({"arch":"gpt2","vocab_size":256,...}) into
 * buf[size], NUL-terminated. Errors: HS_ERR_INVALID_ARGUMENT when it does
 * not fit. */
HS_API hs_status hs_model_config_to_json(const hs_model_config *cfg, char *buf, size_t size);

/* Blocks of rows a tensor's split keeps apart (hs_param_info.segments). */
#define HS_MAX_SEGMENTS 3

/* Which dimension of a registered tensor is split over its group. */
typedef enum hs_split {
    HS_SPLIT_NONE = 0, /* replicated: every rank of the group holds all of it */
    HS_SPLIT_ROWS = 1, /* dim 0 split (column-parallel weights and their biases, the vocabulary) */
    HS_SPLIT_COLS = 2  /* dim 1 split (row-parallel weights) */
} hs_split;

/* The group a split runs over. */
typedef enum hs_split_group {
    HS_SPLIT_TP = 0,      /* tensor parallelism (every split today) */
    HS_SPLIT_EP = 1,      /* expert parallelism: each rank its experts */
    HS_SPLIT_DP_SHARD = 2 /* a ZeRO shard over the data-parallel group */
} hs_split_group;

/* Where a part of a registered tensor (its value, its gradient, its
 * optimizer state) resides. */
typedef enum hs_residency {
    HS_RESIDENT_DEVICE = 0, /* whole, on the model's device */
    HS_RESIDENT_HOST = 1,   /* offloaded to host memory (values and state under HS_OFFLOAD_OPTIMIZER) */
    HS_RESIDENT_SHARD = 2   /* only this rank's shard over the data-parallel group */
} hs_residency;

/* One registered parameter tensor: the shard of a logical tensor this
 * model holds (the whole tensor without tensor parallelism). */
typedef struct hs_param_info {
    const char *name;           /* e.g. "h.0.attn.qkv.w"; owned by the model */
    int ndim;
    int64_t shape[HS_MAX_DIMS]; /* of the shard held */
    int64_t offset;             /* the entry's first element in the registry's order: entry i spans
                                   [offset, offset + numel) (gradient-ready ranges, bucket plans) */
    int64_t numel;
    int decay;                  /* 1: AdamW applies weight decay (matrices, embeddings) */
    int logical_id;             /* index in the whole model's registry: the tensor's RNG stream */
    int64_t logical_shape[HS_MAX_DIMS]; /* the whole tensor's shape, trailing 1s (vectors [n,1,1,1]; the
                                           real vocabulary; experts [E, rows, cols]) */
    hs_split split;
    hs_split_group split_group;
    hs_residency value_at, grad_at, state_at; /* where the value, gradient and optimizer state reside */
    int segments;               /* HS_SPLIT_ROWS: the rows are this many blocks, each split over TP
                                   (qkv 3: q | k | v; LLaMA's mlp.fc.w 2: gate | up), else 1 */
    int64_t segment_rows[HS_MAX_SEGMENTS]; /* the logical rows of each block (q: C, k and v: KV each) */
    int tp_partial;             /* 1: each TP rank's backward leaves a partial sum (its sequence slice's,
                                   under sequence parallelism): hs_model_tp_reduce_grads sums them */
    int norm_owner;             /* 1: this rank counts the tensor in the global gradient norm (0 for a
                                   replica on TP ranks other than 0, and for the tied head's copy of wte
                                   on the last pipeline stage) */
    int tied_copy;              /* 1: the last pipeline stage's copy of the first stage's wte (tied head) */
    int tied;                   /* 1: the weight a tied head shares with the embedding (GPT-2's wte), on
                                   the chunk with the embedding and on a last stage's copy alike */
    int head_weight;            /* 1: the head's output projection here: lm_head.w, or a tied head's wte */
} hs_param_info;

typedef struct hs_model hs_model;

/* The part of the model one rank holds (docs/parallelism.md).
 *
 * Tensor parallelism (Megatron-LM): attention is split by heads (qkv
 * column-parallel, each rank its heads' q, k and v rows; the output
 * projection row-parallel), the MLP column -> row (GPT-2's fc / LLaMA's
 * gate and up rows, then the projection's columns), the vocabulary of the
 * embedding and the head by rows (padded to a multiple of tp; the padding
 * rows are never a token and never a logit), norms and the row-parallel
 * biases replicated. Each row-parallel output is all-reduced over the TP
 * group. With sequence parallelism the norms and residuals work on a
 * slice of T/tp positions of every sequence instead: entering a TP region
 * all-gathers the sequence, leaving it reduce-scatters.
 *
 * Pipeline parallelism: the model holds the layers [first_layer,
 * first_layer + n_layers) (a chunk); the embedding when first_layer = 0,
 * the final norm and the head when the chunk ends with the last layer. A
 * GPT-2 chunk with the head but not the embedding holds a copy of wte for
 * the tied head (tied_copy), kept equal to the first chunk's by summing
 * their gradients. `slots` activation sets let that many micro-batches'
 * forwards precede their backwards (hs_model_set_slot). */
typedef struct hs_model_shard {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    int tp;                /* tensor-parallel size (1: none) */
    int tp_rank;           /* this rank's index in the TP group, 0 .. tp - 1 */
    hs_comm *tp_comm;      /* the TP group (borrowed). NULL for tp > 1 builds and initialises the
                              shard but its forward fails (no collectives) */
    int sequence_parallel; /* 1: norms and residuals on T/tp positions (tp >= 2, T a multiple of tp) */
    int first_layer;       /* the chunk's first layer */
    int n_layers;          /* its layer count; 0: every layer from first_layer on */
    int slots;             /* activation sets (>= 1) */
    int master_sharded;    /* 1 (ZeRO-1 with a 16-bit compute copy, set by the engine): the fp32 master
                              is the DP-sharded optimizer's; the model holds the compute copy and fp32
                              copies of what its kernels read in fp32, and no whole fp32 values */
} hs_model_shard;

/* The whole model: tp 1, layers 0 .. n_layer - 1, one activation set. */
HS_API hs_model_shard hs_model_shard_default(void);

/* Activation recompute (docs/memory.md): which activations of a layer's
 * forward are kept for its backward and which are rebuilt there.
 *  NONE:      all of them are kept.
 *  SELECTIVE: the cores' outputs are not kept (attention's output and
 *             log-sum-exp values, the MLP's GELU / SwiGLU output, and their
 *             16-bit twins): the backward reruns attention and the
 *             activation function from the kept projections (Megatron's
 *             selective recompute).
 *  FULL:      only the layer's input (the previous layer's output) is
 *             kept: the backward reruns the layer's whole forward first,
 *             its tensor-parallel collectives included.
 * Either way the rebuilt values equal the forward's bit for bit, so the
 * gradients and the losses do too; what changes is the arena's size and
 * the backward's time. */
typedef enum hs_recompute {
    HS_RECOMPUTE_NONE = 0,
    HS_RECOMPUTE_SELECTIVE = 1,
    HS_RECOMPUTE_FULL = 2
} hs_recompute;

/* Host offload (docs/memory.md): what lives in a host memory pool (NUMA-
 * local, libnuma) instead of on the model's device; a bit set.
 *  OPTIMIZER:   the fp32 master weights (the registry's values) and AdamW's
 *               m and v, with a host copy of the gradients on the NPU; AdamW
 *               runs on the host and the compute copy goes back to the
 *               device after each step. The device keeps the compute-dtype
 *               weights, the gradients, and fp32 copies of the tensors the
 *               kernels read in fp32 (norm weights, biases, embeddings).
 *  PARAMS:      ZeRO-3 parameter shards (needs ZeRO stage 3; not in this
 *               build: refused).
 *  ACTIVATIONS: each layer's kept activations go to the host after its
 *               forward and come back before its backward; the device
 *               holds 3 layers' of each micro-batch in
 *               flight. Not with recompute. */
typedef enum hs_offload {
    HS_OFFLOAD_NONE = 0,
    HS_OFFLOAD_OPTIMIZER = 1,
    HS_OFFLOAD_PARAMS = 2,
    HS_OFFLOAD_ACTIVATIONS = 4
} hs_offload;

/* Where a model lives, what its matmuls take, which part of it is here,
 * which activations it keeps, what it offloads to the host. */
typedef struct hs_model_options {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    hs_device_kind device; /* HS_DEVICE_CPU, or HS_DEVICE_NPU: every buffer in npu's HBM */
    hs_npu *npu;           /* the device for HS_DEVICE_NPU (borrowed: free it after the model) */
    hs_dtype compute;      /* dtype of the matmul inputs: HS_FP32, HS_BF16 or HS_FP16 */
    hs_model_shard shard;  /* hs_model_shard_default(): the whole model */
    hs_recompute recompute; /* HS_RECOMPUTE_NONE (the default), _SELECTIVE or _FULL */
    int recompute_layers;   /* how many of the chunk's layers recompute, its first ones (Megatron's
                               "block" method); 0: all of them. At most the chunk's layer count */
    unsigned offload;       /* hs_offload bits: HS_OFFLOAD_NONE (the default), HS_OFFLOAD_OPTIMIZER,
                               HS_OFFLOAD_ACTIVATIONS */
} hs_model_options;

/* "none", "selective", "full" ("?" for another value). */
HS_API const char *hs_recompute_name(hs_recompute r);

/* The mode called name ("none", "selective", "full") into *out. Errors:
 * HS_ERR_INVALID_ARGUMENT naming the choices. */
HS_API hs_status hs_recompute_parse(const char *name, hs_recompute *out);

/* The offload bits of a comma-separated list ("optimizer",
 * "optimizer,params", "none", ...) into *out. Errors:
 * HS_ERR_INVALID_ARGUMENT naming the unknown item and the known ones. */
HS_API hs_status hs_offload_parse(const char *list, unsigned *out);

/* The bits as the list hs_offload_parse reads ("none" for 0) into buf of
 * n bytes; returns buf. */
HS_API const char *hs_offload_name(unsigned bits, char *buf, size_t n);

/* CPU, no NPU, fp32 compute, the whole model: what hs_model_new builds. */
HS_API hs_model_options hs_model_options_default(void);

/* Creates a model for micro-batches of up to `batch` sequences of up to
 * `seq` tokens: registers parameters, allocates their values, gradients
 * and compute copy and plans the activation arena. Parameters are zero
 * until hs_model_init or a checkpoint load. Same as hs_model_new_ex with
 * the default options (CPU, fp32).
 * Errors: HS_ERR_INVALID_ARGUMENT (config, batch < 1, seq < 1 or
 * seq > max_seq), HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_model_new(const hs_model_config *cfg, int batch, int seq, hs_model **out);

/* hs_model_new on the device and with the compute dtype of *opts (NULL:
 * the defaults). On the NPU the parameters, gradients, the low-precision
 * weight copy and the activation arena are allocated with hs_npu_malloc
 * (estimate mode: counted, never touched on the host), and its kernels run
 * on the NPU's default stream (hs_model_device), from whichever thread
 * calls the model. Compute dtypes: the CPU's
 * matmul takes fp32 or bf16, the NPU's cube bf16 or fp16.
 * Errors: those of hs_model_new; HS_ERR_INVALID_ARGUMENT (an unknown
 * device, HS_DEVICE_NPU without npu); HS_ERR_DTYPE (a compute dtype the
 * device's matmul does not take: fp32 on the NPU, fp16 on the CPU,
 * anything but fp32/bf16/fp16); HS_ERR_OUT_OF_MEMORY with the HBM figures
 * when the model does not fit the device. */
HS_API hs_status hs_model_new_ex(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                                 hs_model **out);
HS_API void hs_model_free(hs_model *m);

/* Device memory of a model and its AdamW optimizer, in bytes. */
typedef struct hs_model_memory {
    int64_t params;     /* parameters (elements, not bytes) */
    size_t weights;     /* fp32 master parameters + the compute-dtype copy (16-bit compute) */
    size_t gradients;   /* fp32, one per parameter */
    size_t optimizer;   /* AdamW's two fp32 moments */
    size_t activations; /* the activation arena of one micro-batch (incl. the 16-bit twins, tokens, targets) */
    size_t workspace;   /* the largest transient buffer a kernel of a step allocates (estimated, see docs/model.md) */
    size_t host;        /* the host offload pool: the optimizer's fp32 master, moments and (NPU) gradient copy;
                           the offloaded activations of every set */
} hs_model_memory;

/* What hs_model_new_ex(cfg, batch, seq, opts) and hs_optimizer_new would
 * allocate on the device, computed without allocating anything (for a
 * model too large for its device). Errors: those of hs_model_new_ex's
 * checks, HS_ERR_OUT_OF_MEMORY (host memory for the registry). */
HS_API hs_status hs_model_memory_plan(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                                      hs_model_memory *out);

/* Initialises every parameter from (seed, tensor id, element index) with
 * the counter-based RNG: weights N(0, init_std^2) (residual projections
 * scaled by 1/sqrt(2L)), biases 0, norm weights 1; then refreshes the
 * compute-dtype copy. On the NPU the weights are generated on the host in
 * chunks and copied over PCIe (estimate mode: only the copies' time), the
 * constants filled on the device. Errors: from the device (copies, fills). */
HS_API hs_status hs_model_init(hs_model *m, uint64_t seed);

/* Refreshes the compute-dtype copy of the parameters from the fp32 master
 * weights (a no-op for fp32 compute; under optimizer offload an upload of
 * the host master into the device's compute copy and its fp32 copies of
 * norm weights, biases and embeddings). Call it after changing parameters
 * through hs_model_tensor; hs_model_init, hs_optimizer_step and
 * hs_train_load do. Errors: from the cast kernel. */
HS_API hs_status hs_model_sync_weights(hs_model *m);

/* The model's device handle (NULL: the CPU; else its NPU's default
 * stream: tensors placed on it with hs_on run kernels there), its NPU
 * (NULL on the CPU) and its compute dtype. */
HS_API hs_device *hs_model_device(const hs_model *m);
HS_API hs_npu *hs_model_npu(const hs_model *m);
HS_API hs_dtype hs_model_compute_dtype(const hs_model *m);

HS_API const hs_model_config *hs_model_config_of(const hs_model *m);
HS_API int64_t hs_model_num_params(const hs_model *m);
HS_API int hs_model_num_tensors(const hs_model *m);
/* Registry entry i (0 <= i < num_tensors); NULL when out of range. */
HS_API const hs_param_info *hs_model_param(const hs_model *m, int i);
/* The parts of a registered tensor: its fp32 value (the master weights),
 * its fp32 gradient, and the copy the matmuls read in the compute dtype
 * (the value itself for fp32 compute). */
typedef enum hs_param_part {
    HS_PARAM_VALUE = 0,
    HS_PARAM_GRAD = 1,
    HS_PARAM_COMPUTE = 2
} hs_param_part;

/* Registry entry i's part as a tensor of the entry's shape on the model's
 * device (a view: the model owns the storage); under optimizer offload the
 * value is the host master (device NULL; data NULL on an estimate-mode
 * NPU, which only counts it). Errors: HS_ERR_NOT_FOUND
 * (no entry i), HS_ERR_INVALID_ARGUMENT (NULL, an unknown part). */
HS_API hs_status hs_model_tensor(const hs_model *m, int i, hs_param_part part, hs_tensor *out);
/* The same by registry name ("h.0.attn.qkv.w"). Errors: HS_ERR_NOT_FOUND
 * naming the unknown name, HS_ERR_INVALID_ARGUMENT. */
HS_API hs_status hs_model_tensor_by_name(const hs_model *m, const char *name, hs_param_part part, hs_tensor *out);


/* Registry entry by name; NULL when unknown. */
HS_API const hs_param_info *hs_model_param_by_name(const hs_model *m, const char *name);

/* Forward pass over tokens[B*T] (int32, row-major [B,T], host memory).
 * With targets (same shape; -1 ignores a position) also computes the mean
 * loss over the non-ignored positions into *loss (may be NULL otherwise).
 * B <= planned batch, T <= planned seq. A CPU model borrows `tokens` until
 * the next forward: keep them alive for hs_model_backward (an NPU model
 * copies tokens and targets to the device and reads the per-position
 * losses back; in estimate mode *loss is NaN). Errors:
 * HS_ERR_INVALID_ARGUMENT (sizes, a token or target outside the
 * vocabulary), and the kernels' errors. */
HS_API hs_status hs_model_forward(hs_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                                  float *loss);

/* Backward pass of the last forward (which must have had targets):
 * ACCUMULATES parameter gradients into the gradient buffer, scaled by
 * `loss_scale` (1 for a plain step; 1/k to average k micro-batches).
 * Errors: HS_ERR_INVALID_ARGUMENT when no forward with targets preceded. */
HS_API hs_status hs_model_backward(hs_model *m, float loss_scale);

/* ---- chunks of a pipeline, shards of tensor parallelism ----
 * hs_engine builds them (hs_model_options.shard) and drives them through
 * the library's private stage interface (src/model/model_stage.h). */


/* The shard the model was built with (n_layers filled in). */
HS_API const hs_model_shard *hs_model_shard_of(const hs_model *m);
/* 1 when the chunk holds the embedding (first_layer 0) / the final norm
 * and head (its last layer is the model's). */
HS_API int hs_model_has_embedding(const hs_model *m);
HS_API int hs_model_has_head(const hs_model *m);


/* ---- layer hooks ----
 * The model calls its hooks around every block of the chunk: the
 * embedding, each transformer layer, the head; before and after its
 * forward and before and after its backward. They are how features that
 * are not the model's own attach to it (plain C, so the model knows
 * nothing of who listens): data parallelism starts its gradient buckets
 * after each block's backward, and the memory features to come (ZeRO-3
 * gathering a layer's parameters before it runs, recomputation, offload)
 * act before and after. The layer code never knows which are on. */
typedef enum hs_layer_event {
    HS_BEFORE_FORWARD = 0,
    HS_AFTER_FORWARD = 1,
    HS_BEFORE_BACKWARD = 2,
    HS_AFTER_BACKWARD = 3
} hs_layer_event;

/* hs_layer_info.layer of the embedding and of the head (the final norm and
 * the output projection); transformer layers are 0 .. n_layer - 1, the
 * whole model's numbering. */
#define HS_LAYER_EMBEDDING (-1)
#define HS_LAYER_HEAD (-2)

/* What a hook is told. After a backward, [grad_begin, grad_end) is the
 * registry range (hs_param_info.offset order) whose gradients now hold
 * everything this backward contributes to them: nothing later in the
 * backward writes there. The ranges of one backward are disjoint, cover
 * every parameter the chunk holds once and come in the order the backward
 * produces them, the reverse of the registry: the head (its norm and, if
 * untied, its weight), the layers L-1 .. 0, and last the embedding (wte,
 * wpe, whose wte also receives a tied head's gradient) - or, with the
 * embedding deferred (hs_model_defer_embedding_grad), the embedding right
 * after the head (first on a chunk without the head). A last pipeline stage's copy of a tied wte is reported as
 * the embedding, at the end. On the NPU the kernels that wrote them have
 * been issued on the model's stream. Other events have an empty range. */
typedef struct hs_layer_info {
    hs_layer_event event;
    int layer;
    int64_t grad_begin, grad_end;
    int64_t param_begin, param_end; /* before a forward: the registry range of the block's parameters (the
                                       head's: its norm and weight, and a last stage's tied copy of wte) */
} hs_layer_info;

/* A hook; a status other than HS_OK stops the pass and is returned by it. */
typedef hs_status (*hs_layer_hook_fn)(void *ctx, hs_model *m, const hs_layer_info *info);

/* Adds fn (called with ctx, after the hooks added before it) for the
 * following passes; hs_model_remove_hook takes it away again. Errors:
 * HS_ERR_INVALID_ARGUMENT (NULL), HS_ERR_OUT_OF_MEMORY; removing a hook
 * the model does not have is HS_ERR_NOT_FOUND. */
HS_API hs_status hs_model_add_hook(hs_model *m, hs_layer_hook_fn fn, void *ctx);
HS_API hs_status hs_model_remove_hook(hs_model *m, hs_layer_hook_fn fn, void *ctx);


/* Sets every gradient to zero (hs_fill on the model's device). */
HS_API hs_status hs_model_zero_grad(hs_model *m);

/* Logits [B,T,V] of the last forward without targets (read-only view, on
 * the model's device). */
HS_API hs_status hs_model_logits(hs_model *m, hs_tensor *out);

/* A named activation of the last forward, as a read-only fp32 view on the
 * model's device: "embed" ([B,T,C], the block input), "h.L.out" ([B,T,C],
 * the residual stream after block L), "lnf" ([B,T,C]). Errors:
 * HS_ERR_NOT_FOUND. */
HS_API hs_status hs_model_activation(hs_model *m, const char *name, hs_tensor *out);

/* Floating-point operations of one training step (forward + backward) on
 * B x T tokens: 6 * (non-embedding params + head) * B*T plus attention's
 * 12 * L * B * T^2 * C / 2 (causal). Used for MFU. */
HS_API double hs_model_flops_per_step(const hs_model *m, int B, int T);

/* Draws a token from softmax(logits[0 .. V) / temperature) restricted to
 * the k largest logits (1 <= k <= V), with u a uniform in [0, 1): the
 * sampler of hs_model_generate and hs_engine_generate. idx and prob are
 * scratch of k entries each. */
HS_API int32_t hs_sample_top_k(const float *logits, int V, int k, float temperature, float u, int32_t *idx,
                               float *prob);

/* Generates n_new tokens after prompt[0..n_prompt) (n_prompt >= 1) by
 * top-k sampling (top_k in 1..V; temperature > 0) with the counter-based
 * RNG (seed, draw index): the same arguments give the same text. Uses a
 * sliding window of the planned seq length. out receives
 * n_prompt + n_new tokens (the prompt first). Overwrites the activations
 * of the last forward. An NPU model reads each step's last logits row
 * back. Errors: HS_ERR_INVALID_ARGUMENT; HS_ERR_DEVICE on an
 * estimate-mode NPU (no values to sample from). */
HS_API hs_status hs_model_generate(hs_model *m, const int32_t *prompt, int n_prompt, int n_new, int top_k,
                                   float temperature, uint64_t seed, int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
