/* The tensors a checkpoint holds for each registry entry (train/state.c):
 * the value and AdamW's two moments, as named kinds "param", "adam_m",
 * "adam_v". Shared by the single-process and the sharded checkpoints. */
#ifndef HS_TRAIN_STATE_TENSORS_H
#define HS_TRAIN_STATE_TENSORS_H

#include "hyperspeed/train.h"

#define HS_STATE_KINDS 3

extern const char *const hs_state_kind_names[HS_STATE_KINDS];

/* Kind k (0 value, 1 adam_m, 2 adam_v) of registry entry i, on the model's
 * device. Errors: those of hs_model_tensor / hs_optimizer_state. */
hs_status hs_state_tensor(hs_model *m, hs_optimizer *o, int k, int i, hs_tensor *t);

/* Copies entry i's kind k between the device and host[numel] (to_host 1:
 * down). Host memory on the CPU is copied with memcpy. */
hs_status hs_state_copy(hs_model *m, hs_optimizer *o, int k, int i, float *host, int to_host);

#endif
