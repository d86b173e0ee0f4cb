/* hyperspeed options: a small table-driven parser for "--name value" and
 * "--name=value" command-line flags, shared by the bundled programs. */
#ifndef HYPERSPEED_OPTIONS_H
#define HYPERSPEED_OPTIONS_H

#include <stdio.h>

#include "hyperspeed/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_opt_kind {
    HS_OPT_INT,    /* dest: int* */
    HS_OPT_I64,    /* dest: int64_t* */
    HS_OPT_FLOAT,  /* dest: float* */
    HS_OPT_STRING, /* dest: const char** (points into argv) */
    HS_OPT_FLAG    /* dest: int*, set to 1; takes no value */
} hs_opt_kind;

typedef struct hs_option {
    const char *name; /* without the leading "--" */
    hs_opt_kind kind;
    void *dest;
    const char *help; /* one line for the usage text */
} hs_option;

/* Parses argv[1..argc) against opts[0..n). Every argument must be a known
 * option; values are converted completely ("12x" is an error). dest keeps
 * its value for options not given. "--help" returns HS_ERR_NOT_FOUND with
 * the message "help". Errors: HS_ERR_INVALID_ARGUMENT naming the flag
 * (unknown flag, missing value, malformed number, stray argument). */
HS_API hs_status hs_options_parse(int argc, char **argv, const hs_option *opts, int n);

/* Prints "usage: prog [options]" and one line per option with its current
 * (default) value. */
HS_API void hs_options_usage(FILE *f, const char *prog, const hs_option *opts, int n);

#ifdef __cplusplus
}
#endif
#endif
