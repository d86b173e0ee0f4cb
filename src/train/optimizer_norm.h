/* The gradient norm's share of a registry range (private to the step
 * driver): the pipeline's tied embedding is exchanged between the first
 * and the last stage while the rest of the norm is computed, so the step
 * sums the squares outside the range first and those inside it once the
 * exchange has landed. */
#ifndef HS_TRAIN_OPTIMIZER_NORM_H
#define HS_TRAIN_OPTIMIZER_NORM_H

#include "hyperspeed/train.h"

/* *sumsq = the sum of squares (in double) of the gradients o's rank owns
 * for the norm (hs_param_info.norm_owner) inside [begin, end) of the
 * registry's offsets (inside = 1), or outside it (inside = 0); the two add
 * up to hs_optimizer_grad_sumsq. Allocates nothing. Errors: the kernel's. */
hs_status hs_optimizer_grad_sumsq_part(hs_optimizer *o, int64_t begin, int64_t end, int inside, double *sumsq);

#endif
