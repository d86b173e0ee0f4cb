/* LD_PRELOAD shim for tests/integration/blas_core.sh: OpenBLAS seems to
 * have picked its SSE "Prescott" kernels while OPENBLAS_CORETYPE is unset
 * (as 0.3.21 does on some AVX-512 Xeons), and reports its real core once
 * the variable is set. So hs_blas_core_reexec's restart runs for real on a
 * machine whose OpenBLAS picks the right core. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

char *openblas_get_corename(void);

char *openblas_get_corename(void)
{
    static char prescott[] = "Prescott", unknown[] = "Unknown";
    if (!getenv("OPENBLAS_CORETYPE"))
        return prescott;
    char *(*real)(void) = (char *(*)(void))dlsym(RTLD_NEXT, "openblas_get_corename");
    return real ? real() : unknown;
}
