/* parity_dump: trains a preset for a few steps with hyperspeed and writes
 * what tests/python/test_torch_parity.py needs to replay the run in
 * PyTorch: initial weights, the batches, step-0 activations, and per-step
 * losses and gradient norms (see that script's docstring for the layout). */
#include <hyperspeed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
    const char *model, *out;
    int steps, batch, seq;
    int64_t seed;
    float lr;
} opts;

static int die(const char *what, hs_status s)
{
    fprintf(stderr, "parity_dump: %s: %s (%s)\n", what, hs_last_error(), hs_status_str(s));
    return 1;
}

static hs_status write_params(const char *path, hs_model *m)
{
    const int n = hs_model_num_tensors(m);
    hs_st_tensor *t = calloc((size_t)n, sizeof *t);
    if (!t)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "tensor table");
    hs_status s = HS_OK;
    for (int i = 0; i < n && !s; i++) {
        const hs_param_info *p = hs_model_param(m, i);
        hs_tensor v;
        s = hs_model_tensor(m, i, HS_PARAM_VALUE, &v);
        t[i] = (hs_st_tensor){p->name, HS_FP32, p->ndim, {p->shape[0], p->shape[1], 1, 1}, v.data};
    }
    if (!s)
        s = hs_safetensors_write(path, t, n, NULL, 0);
    free(t);
    return s;
}

static hs_status write_acts(const char *path, hs_model *m, int n_layer)
{
    enum { MAX_ACTS = 64 };
    hs_st_tensor t[MAX_ACTS];
    char names[MAX_ACTS][32];
    hs_tensor v;
    int n = 0;
    if (n_layer + 3 > MAX_ACTS)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "too many layers to dump");
    for (int i = -1; i <= n_layer; i++) {
        if (i < 0)
            snprintf(names[n], sizeof names[n], "embed");
        else if (i == n_layer)
            snprintf(names[n], sizeof names[n], "lnf");
        else
            snprintf(names[n], sizeof names[n], "h.%d.out", i);
        hs_status s = hs_model_activation(m, names[n], &v);
        if (s)
            return s;
        t[n] = (hs_st_tensor){names[n], HS_FP32, 3, {v.shape[0], v.shape[1], v.shape[2], 1}, v.data};
        n++;
    }
    hs_status s = hs_model_logits(m, &v);
    if (s)
        return s;
    t[n++] = (hs_st_tensor){"logits", HS_FP32, 3, {v.shape[0], v.shape[1], v.shape[2], 1}, v.data};
    return hs_safetensors_write(path, t, n, NULL, 0);
}

static void write_floats(FILE *f, const char *key, const double *x, int n)
{
    fprintf(f, "\"%s\":[", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", x[i]);
    fprintf(f, "]");
}

static hs_status write_run(const char *path, hs_model *m, const hs_optimizer_config *oc, float lr,
                           const double *losses, const double *norms, int steps)
{
    char config[512];
    hs_status s = hs_model_config_to_json(hs_model_config_of(m), config, sizeof config);
    if (s)
        return s;
    FILE *f = fopen(path, "w");
    if (!f)
        return hs_error(HS_ERR_IO, "cannot write %s", path);
    fprintf(f, "{\"config\":%s,\"optimizer\":{\"lr\":%.9g,\"beta1\":%.9g,\"beta2\":%.9g,\"eps\":%.9g,"
               "\"weight_decay\":%.9g,\"grad_clip\":%.9g},\"decay\":[",
            config, (double)lr, (double)oc->beta1, (double)oc->beta2, (double)oc->eps, (double)oc->weight_decay,
            (double)oc->grad_clip);
    for (int i = 0, first = 1; i < hs_model_num_tensors(m); i++) {
        if (hs_model_param(m, i)->decay) {
            fprintf(f, "%s\"%s\"", first ? "" : ",", hs_model_param(m, i)->name);
            first = 0;
        }
    }
    fprintf(f, "],");
    write_floats(f, "losses", losses, steps);
    fprintf(f, ",");
    write_floats(f, "grad_norms", norms, steps);
    fprintf(f, "}\n");
    return fclose(f) == 0 ? HS_OK : hs_error(HS_ERR_IO, "cannot write %s", path);
}

int main(int argc, char **argv)
{
    opts o = {"gpt2-tiny", NULL, 10, 4, 32, 1234, 1e-3f};
    const hs_option table[] = {
        {"model", HS_OPT_STRING, &o.model, "preset"}, {"out", HS_OPT_STRING, &o.out, "output directory"},
        {"steps", HS_OPT_INT, &o.steps, "steps"},     {"batch", HS_OPT_INT, &o.batch, "batch"},
        {"seq", HS_OPT_INT, &o.seq, "sequence length"}, {"seed", HS_OPT_I64, &o.seed, "seed"},
        {"lr", HS_OPT_FLOAT, &o.lr, "learning rate"},
    };
    hs_status s = hs_options_parse(argc, argv, table, 7);
    if (s || !o.out || o.steps < 1 || o.steps > 1000)
        return die("arguments", s ? s : hs_error(HS_ERR_INVALID_ARGUMENT, "--out is required, 1 <= --steps <= 1000"));

    hs_model_config cfg;
    hs_model *m;
    hs_optimizer *opt;
    hs_optimizer_config oc = hs_optimizer_config_default();
    if ((s = hs_model_config_preset(o.model, &cfg)) || (s = hs_model_new(&cfg, o.batch, o.seq, &m)))
        return die("model", s);
    hs_model_init(m, (uint64_t)o.seed);
    if ((s = hs_optimizer_new(m, &oc, &opt)))
        return die("optimizer", s);

    /* Batches: token i of the run is a pure function of (seed, i). */
    const size_t per = (size_t)o.batch * o.seq, total = per * (size_t)o.steps;
    int32_t *tok = malloc(total * sizeof *tok), *tgt = malloc(total * sizeof *tgt);
    double *losses = malloc((size_t)o.steps * sizeof *losses), *norms = malloc((size_t)o.steps * sizeof *norms);
    if (!tok || !tgt || !losses || !norms)
        return die("buffers", hs_error(HS_ERR_OUT_OF_MEMORY, "batch buffers"));
    for (size_t i = 0; i < total; i++) {
        tok[i] = (int32_t)(hs_rng_uniform((uint64_t)o.seed, 1000, i) * (float)cfg.vocab_size);
        tgt[i] = (int32_t)(hs_rng_uniform((uint64_t)o.seed, 1001, i) * (float)cfg.vocab_size);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/init.safetensors", o.out);
    if ((s = write_params(path, m)))
        return die("init.safetensors", s);
    const hs_st_tensor batches[2] = {{"tokens", HS_INT32, 3, {o.steps, o.batch, o.seq, 1}, tok},
                                     {"targets", HS_INT32, 3, {o.steps, o.batch, o.seq, 1}, tgt}};
    snprintf(path, sizeof path, "%s/batches.safetensors", o.out);
    if ((s = hs_safetensors_write(path, batches, 2, NULL, 0)))
        return die("batches.safetensors", s);

    for (int step = 0; step < o.steps; step++) {
        float loss;
        hs_model_zero_grad(m);
        if ((s = hs_model_forward(m, tok + step * per, tgt + step * per, o.batch, o.seq, &loss)))
            return die("forward", s);
        if (step == 0) {
            snprintf(path, sizeof path, "%s/acts.safetensors", o.out);
            if ((s = write_acts(path, m, cfg.n_layer)))
                return die("acts.safetensors", s);
        }
        if ((s = hs_model_backward(m, 1.0f)) || (s = hs_optimizer_step(opt, o.lr, &norms[step])))
            return die("backward/update", s);
        losses[step] = loss;
    }
    snprintf(path, sizeof path, "%s/run.json", o.out);
    if ((s = write_run(path, m, &oc, o.lr, losses, norms, o.steps)))
        return die("run.json", s);
    free(tok);
    free(tgt);
    free(losses);
    free(norms);
    hs_optimizer_free(opt);
    hs_model_free(m);
    return 0;
}
