/* Watchdog scenario: every rank but the last joins an all-reduce on the
 * world; the last rank skips it and sleeps. With HS_COMM_TIMEOUT=5 the
 * watchdog must end the job with a report (checked by watchdog.sh). */
#include "hyperspeed/comm.h"

#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    hs_runtime *rt;
    hs_status st = hs_init(&argc, &argv, NULL, &rt);
    if (st != HS_OK) {
        fprintf(stderr, "hs_init: %s\n", hs_last_error());
        return 1;
    }
    hs_comm *w = hs_runtime_comm(rt, HS_GROUP_WORLD);
    float x[1000] = {0};
    hs_comm_allreduce(w, x, x, 1000, HS_FP32, HS_REDUCE_SUM); /* #0: everyone */
    if (hs_comm_rank(w) == hs_comm_size(w) - 1)
        sleep(60); /* skips #1 */
    else
        hs_comm_allreduce(w, x, x, 1000, HS_FP32, HS_REDUCE_SUM);
    hs_finalize(rt);
    return 0;
}
