/* Argument checks shared by the kernel entry points. Each returns HS_OK or
 * records a message naming the op and the argument, so entry points read
 * as a list of preconditions followed by one dispatch. */
#ifndef HS_KERNELS_CHECK_H
#define HS_KERNELS_CHECK_H

#include "hyperspeed/core.h"

/* t must be non-NULL with data, on the CPU, of dtype dt, with rank ndim and,
 * for each i < ndim where dims[i] >= 0, shape[i] == dims[i]. */
hs_status hs_check_tensor(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                          const int64_t *dims);
/* As hs_check_tensor, but t may be NULL (an optional gradient or bias). */
hs_status hs_check_optional(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                            const int64_t *dims);

/* The same checks for ops with bodies on several devices: t must be on
 * `device` (the device of the op's first tensor: the CPU, or the same NPU),
 * else HS_ERR_DEVICE naming both. hs_check_tensor is
 * hs_check_tensor_on(..., NULL). */
hs_status hs_check_tensor_on(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                             const int64_t *dims, const hs_device *device);
hs_status hs_check_optional_on(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                               const int64_t *dims, const hs_device *device);
/* a and b have the same numel (any rank). */
hs_status hs_check_same_numel(const char *op, const char *an, const hs_tensor *a, const char *bn, const hs_tensor *b);

/* Shorthand for the dims argument: HS_DIMS(N, C) -> (const int64_t[]){N, C}. -1 means any. */
#define HS_DIMS(...) ((const int64_t[]){__VA_ARGS__})

#endif
