/* hs-data: text to token files and back (docs/data.md).
 *
 *   hs-data encode INPUT... -o OUT.bin [--val-fraction F --val-out VAL.bin]
 *   hs-data corpus DIR
 *   hs-data info FILE.bin
 *   hs-data decode FILE.bin [--start N --count N]
 *
 * Exit status: 0 success, 1 a library error (its message is printed),
 * 2 a usage error. */
#include "hyperspeed/core.h"
#include "hyperspeed/data.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct command {
    const char *name;
    const char *synopsis; /* what follows "hs-data NAME" in the usage */
    int min_pos, max_pos; /* positional arguments accepted */
    int (*run)(char **pos, int n_pos);
    const hs_option *opts;
    int n_opts;
} command;

static void usage(FILE *f, const command *cmds, int n)
{
    fprintf(f, "usage:\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  hs-data %s %s\n", cmds[i].name, cmds[i].synopsis);
}

static int fail(void)
{
    fprintf(stderr, "hs-data: %s\n", hs_last_error());
    return 1;
}

/* ---------------------------------------------------------------- encode */

static const char *enc_out, *enc_val_out;
static float enc_val_fraction;
static const hs_option encode_opts[] = {
    {"out", HS_OPT_STRING, &enc_out, "training token file to write (also -o)"},
    {"val-fraction", HS_OPT_FLOAT, &enc_val_fraction, "last fraction of the tokens to hold out, in [0, 1)"},
    {"val-out", HS_OPT_STRING, &enc_val_out, "validation token file (needed when --val-fraction > 0)"},
};

static int run_encode(char **pos, int n_pos)
{
    if (!enc_out) {
        fprintf(stderr, "hs-data encode: -o OUT.bin is required\n");
        return 2;
    }
    if ((enc_val_fraction > 0) != (enc_val_out != NULL)) {
        fprintf(stderr, "hs-data encode: --val-fraction > 0 and --val-out go together\n");
        return 2;
    }
    hs_corpus_stats st;
    if (hs_corpus_encode((const char *const *)pos, n_pos, enc_val_fraction, enc_out, enc_val_out, &st))
        return fail();
    printf("%s: %llu tokens", enc_out, (unsigned long long)st.train_tokens);
    if (enc_val_out)
        printf(", %s: %llu tokens", enc_val_out, (unsigned long long)st.val_tokens);
    printf(" (%d input files)\n", st.files);
    return 0;
}

/* ---------------------------------------------------------------- corpus */

static int run_corpus(char **pos, int n_pos)
{
    hs_corpus_stats st;
    if (hs_corpus_build(pos[0], &st))
        return fail();
    printf("%s/%s: %llu tokens, %s/%s: %llu tokens (%d files of %s%s)\n", pos[0], HS_CORPUS_TRAIN_FILE,
           (unsigned long long)st.train_tokens, pos[0], HS_CORPUS_VAL_FILE, (unsigned long long)st.val_tokens, st.files,
           HS_CORPUS_SOURCE_DIR, st.reused ? "; up to date, reused" : "");
    return 0;
}

/* ------------------------------------------------------------------ info */

static int run_info(char **pos, int n_pos)
{
    hs_token_file *f;
    if (hs_token_file_new(pos[0], &f))
        return fail();
    int b = hs_token_file_token_bytes(f);
    uint64_t n = hs_token_file_count(f);
    printf("file:        %s\nformat:      %s version %d\ntoken_bytes: %d (uint%d)\ncount:       %llu\nbytes:       "
           "%llu\n",
           pos[0], HS_TOKENS_MAGIC, HS_TOKENS_VERSION, b, 8 * b, (unsigned long long)n,
           (unsigned long long)(HS_TOKENS_HEADER_BYTES + n * (uint64_t)b));
    hs_token_file_free(f);
    return 0;
}

/* ---------------------------------------------------------------- decode */

static int64_t dec_start, dec_count = -1;
static const hs_option decode_opts[] = {
    {"start", HS_OPT_I64, &dec_start, "first token to decode"},
    {"count", HS_OPT_I64, &dec_count, "tokens to decode (-1: to the end)"},
};

static hs_status decode_range(const hs_token_file *f, uint64_t start, uint64_t count)
{
    enum { CHUNK = 65536 };
    static int32_t tokens[CHUNK];
    static unsigned char text[CHUNK];
    for (uint64_t done = 0; done < count;) {
        size_t k = count - done < CHUNK ? (size_t)(count - done) : CHUNK;
        hs_status s = hs_token_file_read(f, start + done, k, tokens);
        if (!s)
            s = hs_tokenizer_decode(tokens, k, text);
        if (s)
            return s;
        if (fwrite(text, 1, k, stdout) != k)
            return hs_error(HS_ERR_IO, "write to stdout failed");
        done += k;
    }
    return fflush(stdout) == 0 ? HS_OK : hs_error(HS_ERR_IO, "write to stdout failed");
}

static int run_decode(char **pos, int n_pos)
{
    if (dec_start < 0 || dec_count < -1) {
        fprintf(stderr, "hs-data decode: --start must be >= 0 and --count >= -1\n");
        return 2;
    }
    hs_token_file *f;
    if (hs_token_file_new(pos[0], &f))
        return fail();
    uint64_t n = hs_token_file_count(f), start = (uint64_t)dec_start;
    uint64_t count = dec_count < 0 ? (start < n ? n - start : 0) : (uint64_t)dec_count;
    hs_status s;
    if (start > n)
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "--start %llu is past the end of %s (%llu tokens)",
                     (unsigned long long)start, pos[0], (unsigned long long)n);
    else if (count > n - start)
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "--start %llu --count %llu runs past the end of %s (%llu tokens)",
                     (unsigned long long)start, (unsigned long long)count, pos[0], (unsigned long long)n);
    else
        s = decode_range(f, start, count);
    hs_token_file_free(f);
    return s ? fail() : 0;
}

/* ------------------------------------------------------------------ main */

static const command commands[] = {
    {"encode", "INPUT... -o OUT.bin [--val-fraction F --val-out VAL.bin]", 1, 1 << 30, run_encode, encode_opts, 3},
    {"corpus", "DIR        (the built-in corpus into DIR/train.bin, DIR/val.bin)", 1, 1, run_corpus, NULL, 0},
    {"info", "FILE.bin", 1, 1, run_info, NULL, 0},
    {"decode", "FILE.bin [--start N --count N]   (text to stdout)", 1, 1, run_decode, decode_opts, 2},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static int value_flag(const command *c, const char *arg)
{
    size_t len = strcspn(arg + 2, "=");
    for (int i = 0; i < c->n_opts; i++)
        if (strlen(c->opts[i].name) == len && strncmp(c->opts[i].name, arg + 2, len) == 0)
            return c->opts[i].kind != HS_OPT_FLAG && !arg[2 + len];
    return 0;
}

/* Splits args into positionals and the "--flag [value]" list that
 * hs_options_parse reads ("-o X" becomes "--out X"), parses the flags and
 * runs the command. */
static int dispatch(const command *c, int argc, char **argv)
{
    char **pos = calloc((size_t)argc + 1, sizeof *pos), **flags = calloc((size_t)argc + 2, sizeof *flags);
    static char out_flag[] = "--out";
    if (!pos || !flags) {
        free(pos);
        free(flags);
        fprintf(stderr, "hs-data: out of memory\n");
        return 1;
    }
    int n_pos = 0, n_flags = 1;
    flags[0] = argv[0];
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        int takes_value = strncmp(a, "--", 2) == 0 && value_flag(c, a);
        if (strcmp(a, "-o") == 0 && strcmp(c->name, "encode") == 0) {
            a = out_flag;
            takes_value = 1;
        }
        if (a[0] == '-' && a[1]) {
            flags[n_flags++] = a;
            if (takes_value && i + 1 < argc)
                flags[n_flags++] = argv[++i];
        } else {
            pos[n_pos++] = a;
        }
    }
    int rc;
    hs_status s = hs_options_parse(n_flags, flags, c->opts, c->n_opts);
    if (s == HS_ERR_NOT_FOUND) { /* --help */
        printf("hs-data %s %s\n", c->name, c->synopsis);
        if (c->n_opts) {
            char prog[64];
            snprintf(prog, sizeof prog, "hs-data %s", c->name);
            hs_options_usage(stdout, prog, c->opts, c->n_opts);
        }
        rc = 0;
    } else if (s || n_pos < c->min_pos || n_pos > c->max_pos) {
        fprintf(stderr, "hs-data %s: %s\n", c->name, s ? hs_last_error() : "wrong number of arguments");
        rc = 2;
    } else {
        rc = c->run(pos, n_pos); /* 2: it printed what was wrong */
    }
    if (rc == 2)
        fprintf(stderr, "usage: hs-data %s %s\n", c->name, c->synopsis);
    free(pos);
    free(flags);
    return rc;
}

int main(int argc, char **argv)
{
    hs_blas_core_reexec(argc, argv); /* the best OpenBLAS kernels for this CPU (docs/training.md) */
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        usage(stdout, commands, N_COMMANDS);
        return 0;
    }
    for (int i = 0; argc >= 2 && i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return dispatch(&commands[i], argc - 1, argv + 1);
    if (argc < 2)
        fprintf(stderr, "hs-data: missing command\n");
    else
        fprintf(stderr, "hs-data: unknown command '%s'\n", argv[1]);
    usage(stderr, commands, N_COMMANDS);
    return 2;
}
