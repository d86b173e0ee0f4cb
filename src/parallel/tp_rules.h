/* The tensor-parallel rules of a model config, shared by hs_layout_check
 * and the model's shard check. */
#ifndef HS_PARALLEL_TP_RULES_H
#define HS_PARALLEL_TP_RULES_H

#include "hyperspeed/model.h"

/* tp must divide n_head, the key/value heads and d_ff: attention is split
 * by heads (a rank holds whole key/value heads and the query heads that
 * read them) and the MLP by its hidden width. Errors: HS_ERR_INVALID_ARGUMENT
 * naming the rule broken and the tp values that would do. */
hs_status hs_tp_check_heads(const hs_model_config *c, int tp);

#endif
