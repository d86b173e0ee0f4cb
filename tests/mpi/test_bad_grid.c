/* A factorisation that does not multiply to the world size: hs_init
 * (which starts MPI itself here) returns HS_ERR_INVALID_ARGUMENT with a
 * message on every rank, finalises MPI and does not hang. */
#include "hyperspeed/comm.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    hs_runtime_config cfg = hs_runtime_config_default();
    cfg.tp = 3;
    hs_runtime *rt = NULL;
    hs_status st = hs_init(&argc, &argv, &cfg, &rt);
    const char *msg = hs_last_error();
    int ok = st == HS_ERR_INVALID_ARGUMENT && rt == NULL && strstr(msg, "does not divide the world size") != NULL;
    printf("hs_init with tp=3: %s: %s -> %s\n", hs_status_str(st), msg, ok ? "ok" : "FAIL");
    return !ok;
}
