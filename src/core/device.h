/* The device handle (hyperspeed/core.h hs_device): what kernels read to
 * know where to run. The NPU layer embeds one in each of its streams
 * (src/npu_sim/device.h); the CPU is NULL. */
#ifndef HS_CORE_DEVICE_H
#define HS_CORE_DEVICE_H

#include "hyperspeed/core.h"

struct hs_npu;
struct hs_npu_stream;

struct hs_device {
    hs_device_kind kind;
    struct hs_npu *npu;           /* HS_DEVICE_NPU: the NPU */
    struct hs_npu_stream *stream; /* and the stream work on this handle goes on */
};

#endif
