/* Model configurations: presets and validation. */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/model.h"

#include <stdio.h>
#include <string.h>

typedef struct preset {
    const char *name;
    hs_model_config cfg;
} preset;

/* init_std 0.02 and eps 1e-5 follow GPT-2; rope_theta 10000 follows LLaMA.
 * The real models' shapes are their published configurations (Hugging
 * Face config.json: meta-llama/Llama-2-{7,13,70}b-hf,
 * meta-llama/Meta-Llama-3-8B, Qwen/Qwen2-7B); docs/models.md lists each
 * one's parameter count against the published one. Fields: size (set as a
 * preset is handed out), arch, V, maxT, L, NH, C, F, eps, theta, init_std,
 * NKV (0: NH), qkv_bias. */
static const preset presets[] = {
    {"gpt2-tiny", {0, HS_ARCH_GPT2, 256, 256, 4, 4, 128, 512, 1e-5f, 10000.0f, 0.02f, 0, 0}},
    {"gpt2-124m", {0, HS_ARCH_GPT2, 50257, 1024, 12, 12, 768, 3072, 1e-5f, 10000.0f, 0.02f, 0, 0}},
    {"llama-tiny", {0, HS_ARCH_LLAMA, 256, 256, 4, 4, 128, 352, 1e-5f, 10000.0f, 0.02f, 0, 0}},
    {"llama-tiny-gqa", {0, HS_ARCH_LLAMA, 256, 256, 4, 4, 128, 352, 1e-5f, 10000.0f, 0.02f, 2, 0}},
    {"qwen2-tiny", {0, HS_ARCH_LLAMA, 256, 256, 4, 4, 128, 352, 1e-6f, 1000000.0f, 0.02f, 2, 1}},
    {"llama2-7b", {0, HS_ARCH_LLAMA, 32000, 4096, 32, 32, 4096, 11008, 1e-5f, 10000.0f, 0.02f, 0, 0}},
    {"llama2-13b", {0, HS_ARCH_LLAMA, 32000, 4096, 40, 40, 5120, 13824, 1e-5f, 10000.0f, 0.02f, 0, 0}},
    {"llama2-70b", {0, HS_ARCH_LLAMA, 32000, 4096, 80, 64, 8192, 28672, 1e-5f, 10000.0f, 0.02f, 8, 0}},
    {"llama3-8b", {0, HS_ARCH_LLAMA, 128256, 8192, 32, 32, 4096, 14336, 1e-5f, 500000.0f, 0.02f, 8, 0}},
    {"qwen2-7b", {0, HS_ARCH_LLAMA, 152064, 32768, 28, 28, 3584, 18944, 1e-6f, 1000000.0f, 0.02f, 4, 1}},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

hs_model_config hs_model_config_default(void)
{
    hs_model_config c = presets[0].cfg;
    c.size = sizeof c;
    return c;
}

int hs_model_config_kv_heads(const hs_model_config *c) { return c && c->n_kv_head ? c->n_kv_head : c ? c->n_head : 0; }

const char *const *hs_model_preset_names(void)
{
    static const char *names[N_PRESETS + 1];
    for (int i = 0; i < N_PRESETS; i++)
        names[i] = presets[i].name;
    names[N_PRESETS] = NULL;
    return names;
}

hs_status hs_model_config_preset(const char *name, hs_model_config *cfg)
{
    if (!name || !cfg)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_config_preset: name and cfg must not be NULL");
    for (int i = 0; i < N_PRESETS; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *cfg = presets[i].cfg;
            cfg->size = sizeof *cfg;
            return HS_OK;
        }
    }
    char known[256] = "";
    for (int i = 0; i < N_PRESETS; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, presets[i].name, sizeof known - strlen(known) - 1);
    }
    return hs_error(HS_ERR_NOT_FOUND, "unknown model preset '%s' (known: %s)", name, known);
}

hs_status hs_model_config_validate(const hs_model_config *c)
{
    if (!c)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "model config is NULL");
    HS_TRY(HS_CHECK_SIZE(c, hs_model_config));
    if (c->arch != HS_ARCH_GPT2 && c->arch != HS_ARCH_LLAMA)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown architecture %d", (int)c->arch);
    const struct {
        const char *name;
        int value;
    } sizes[] = {{"vocab_size", c->vocab_size}, {"max_seq", c->max_seq}, {"n_layer", c->n_layer},
                 {"n_head", c->n_head},         {"d_model", c->d_model}, {"d_ff", c->d_ff}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value <= 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s=%d: sizes must be positive", sizes[i].name, sizes[i].value);
    if (c->d_model % c->n_head != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "n_head=%d does not divide d_model=%d", c->n_head, c->d_model);
    if (c->n_kv_head < 0 || c->qkv_bias < 0 || c->qkv_bias > 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "n_kv_head=%d must be >= 0 (0: n_head) and qkv_bias=%d 0 or 1",
                        c->n_kv_head, c->qkv_bias);
    if (c->n_kv_head && c->n_head % c->n_kv_head != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "n_kv_head=%d does not divide n_head=%d: each key/value "
                        "head serves an equal group of query "
                        "heads",
                        c->n_kv_head, c->n_head);
    if (c->arch == HS_ARCH_GPT2 && ((c->n_kv_head && c->n_kv_head != c->n_head) || c->qkv_bias))
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "GPT-2 models have as many key/value heads as query heads "
                        "and always a qkv bias: "
                        "n_kv_head=%d, qkv_bias=%d apply to LLaMA-style models",
                        c->n_kv_head, c->qkv_bias);
    if (c->arch == HS_ARCH_LLAMA && (c->d_model / c->n_head) % 2 != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "RoPE needs an even head size; d_model/n_head = %d",
                        c->d_model / c->n_head);
    if (!(c->norm_eps > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "norm_eps=%g must be positive", (double)c->norm_eps);
    if (c->arch == HS_ARCH_LLAMA && !(c->rope_theta > 1))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "rope_theta=%g must be > 1", (double)c->rope_theta);
    if (!(c->init_std > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "init_std=%g must be positive", (double)c->init_std);
    return HS_OK;
}

hs_status hs_model_config_to_json(const hs_model_config *c, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     "{\"arch\":\"%s\",\"vocab_size\":%d,\"max_seq\":%d,\"n_layer\":%"
                     "d,\"n_head\":%d,"
                     "\"d_model\":%d,\"d_ff\":%d,\"norm_eps\":%.9g,\"rope_theta\":%."
                     "9g,\"init_std\":%.9g,"
                     "\"n_kv_head\":%d,\"qkv_bias\":%d}",
                     c->arch == HS_ARCH_GPT2 ? "gpt2" : "llama", c->vocab_size, c->max_seq, c->n_layer, c->n_head,
                     c->d_model, c->d_ff, (double)c->norm_eps, (double)c->rope_theta, (double)c->init_std,
                     hs_model_config_kv_heads(c), c->qkv_bias);
    if (n < 0 || (size_t)n >= size)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "model config JSON needs %d bytes, buffer has %zu", n, size);
    return HS_OK;
}

static const char *const recompute_names[] = {"none", "selective", "full"};

const char *hs_recompute_name(hs_recompute r)
{
    return r >= HS_RECOMPUTE_NONE && r <= HS_RECOMPUTE_FULL ? recompute_names[r] : "?";
}

hs_status hs_recompute_parse(const char *name, hs_recompute *out)
{
    for (int i = 0; name && out && i < 3; i++)
        if (strcmp(name, recompute_names[i]) == 0) {
            *out = (hs_recompute)i;
            return HS_OK;
        }
    return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown recompute mode '%s' (known: none, selective, full)",
                    name ? name : "(null)");
}

static const char *const offload_names[] = {"optimizer", "params", "activations"};

hs_status hs_offload_parse(const char *list, unsigned *out)
{
    if (!list || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_offload_parse: NULL argument");
    unsigned bits = 0;
    if (strcmp(list, "none") != 0) {
        for (const char *at = list;; at++) {
            const size_t len = strcspn(at, ",");
            int known = 0;
            for (int i = 0; i < 3; i++)
                if (len == strlen(offload_names[i]) && strncmp(at, offload_names[i], len) == 0) {
                    bits |= 1u << i;
                    known = 1;
                }
            if (!known)
                return hs_error(HS_ERR_INVALID_ARGUMENT,
                                "unknown offload item '%.*s' in '%s' (known: optimizer, params, activations; or none)",
                                (int)len, at, list);
            at += len;
            if (!*at)
                break;
        }
    }
    *out = bits;
    return HS_OK;
}

const char *hs_offload_name(unsigned bits, char *buf, size_t n)
{
    if (!buf || !n)
        return buf;
    buf[0] = '\0';
    for (int i = 0; i < 3; i++)
        if (bits & (1u << i))
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? "," : "", offload_names[i]);
    if (!buf[0])
        snprintf(buf, n, "none");
    return buf;
}
