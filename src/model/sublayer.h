/* Sublayer kinds (model_internal.h explains sublayers): each is a
 * descriptor with what the model needs to register, plan and run it. */
#ifndef HS_MODEL_SUBLAYER_H
#define HS_MODEL_SUBLAYER_H

#include "model/model_internal.h"

/* How the model registers one logical parameter tensor: its whole shape and
 * split (model.c turns it into the rank's shard). */
typedef struct reg_spec {
    const char *name;
    int ndim;
    int64_t rows, cols; /* logical */
    hs_split split;
    int segments;        /* row blocks split over TP one by one: rows equally, or as seg_rows */
    int replicated_norm; /* a norm's weight or bias: partial under sequence parallelism */
    int vocab;           /* rows are the vocabulary: padded to equal shards */
    int64_t seg_rows[HS_MAX_SEGMENTS]; /* unequal blocks (qkv with fewer key/value heads); all 0: equal */
} reg_spec;

/* A sublayer's parameters in registry order: norm weight and bias, input
 * projection weight and bias, output projection weight and bias. */
enum { SUB_NORM_W, SUB_NORM_B, SUB_IN_W, SUB_IN_B, SUB_OUT_W, SUB_OUT_B, SUB_PARAMS };

typedef struct sublayer_kind {
    const char *name;  /* "attention", "mlp" */
    const char *group; /* name infix of its projections: "attn", "mlp" */
    const char *in, *out; /* the projections' names: "qkv" / "proj", "fc" / "proj" */
    /* The logical specs of its parameters (names filled in by the model)
     * and which exist for this config. */
    void (*specs)(const hs_model_config *c, reg_spec spec[SUB_PARAMS], int has[SUB_PARAMS]);
    /* Per-rank widths: of the input projection's output (in) and of the
     * core's output (core); log-sum-exp values per token (lse, 0: none);
     * keep_core: the backward reads the fp32 core output (attention), else
     * it may share the scratch. */
    void (*widths)(const hs_model *m, int64_t *in, int64_t *core, int64_t *lse, int *keep_core);
    /* y = x + f(norm(x)) into a->res from x [Ns,C]. */
    hs_status (*forward)(hs_model *m, const sublayer *s, const sublayer_acts *a, const float *x, int B, int T);
    /* The core alone, a->core (and a->lse) from a->in as the forward
     * computes it: what selective recompute reruns before the backward. */
    hs_status (*core)(hs_model *m, const sublayer *s, const sublayer_acts *a, int B, int T);
    /* On entry m->g.dres holds dL/dy; on return dL/dx (the norm's backward
     * adds the branch's share). Reports its gradients ready as they are. */
    hs_status (*backward)(hs_model *m, const sublayer *s, const sublayer_acts *a, const float *x, int B, int T);
} sublayer_kind;

extern const sublayer_kind hs_sublayer_attention, hs_sublayer_mlp;

#endif
