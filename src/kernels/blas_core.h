/* Private parts of the OpenBLAS core check (blas_core.c), for the tests. */
#ifndef HS_KERNELS_BLAS_CORE_H
#define HS_KERNELS_BLAS_CORE_H

#include "hyperspeed/kernels.h"

#include <stddef.h>

/* Set by hs_blas_core_reexec to the core it put in OPENBLAS_CORETYPE before
 * re-executing: the restarted process sees it and does not restart again,
 * and reports can tell the variable was set by hyperspeed, not the user.
 * A user's "0" turns the restart off. */
#define HS_BLAS_CORE_REEXEC_ENV "HS_BLAS_CORE_REEXEC"

/* The warning for a weaker core (v->weaker set) into buf (n bytes, NUL
 * terminated, truncated to fit): what runs, why it is slow on this CPU
 * (cpu_name), and which OPENBLAS_CORETYPE fixes it. env is
 * OPENBLAS_CORETYPE's value (NULL: unset) and marker
 * HS_BLAS_CORE_REEXEC's: the advice differs when the user set the variable
 * and when hyperspeed set it and the core is still weaker (an OpenBLAS
 * without the best core's kernels). */
void hs_blas_core_advice(const hs_blas_core_verdict *v, const char *cpu_name, const char *env, const char *marker,
                         char *buf, size_t n);

/* Sets OPENBLAS_CORETYPE and HS_BLAS_CORE_REEXEC to core and execv(exe,
 * argv). Returns only when the exec failed: HS_ERR_IO, with both variables
 * unset again (the caller guarantees they were unset before). */
hs_status hs_blas_core_exec(const char *core, const char *exe, char *const argv[]);

#endif
