/* hyperspeed: training-acceleration runtime for transformers.
 * Umbrella header: include this one. */
#ifndef HYPERSPEED_H
#define HYPERSPEED_H

#include "hyperspeed/core.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/npu.h"
#include "hyperspeed/comm.h"
#include "hyperspeed/parallel.h"
#include "hyperspeed/pipeline.h"
#include "hyperspeed/layout.h"
#include "hyperspeed/data.h"
#include "hyperspeed/checkpoint.h"
#include "hyperspeed/model.h"
#include "hyperspeed/options.h"
#include "hyperspeed/train.h"
#include "hyperspeed/engine.h"
#include "hyperspeed/memory.h"

#endif
