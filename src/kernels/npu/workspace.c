/* The largest transient workspace of a training step's NPU kernels (see
 * npu_kernels.h): what the memory plan adds to the persistent buffers. */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/device.h"

static size_t hbm_round(size_t bytes) { return (bytes + HS_NPU_HBM_ALIGN - 1) / HS_NPU_HBM_ALIGN * HS_NPU_HBM_ALIGN; }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

hs_status hs_npu_step_workspace(hs_npu *npu, const hs_npu_step_shapes *s, size_t *bytes)
{
    const hs_attention_call call = {NULL, NULL, s->B, s->T, s->NH, s->NKV, s->HD, 1};
    int64_t fwd, bwd;
    HS_TRY(hs_npu_attention_workspace(npu, &call, &fwd, &bwd));
    size_t w = max_size((size_t)fwd, (size_t)bwd);
    w = max_size(w, hs_npu_matmul_bwd_workspace(s->B * s->T, s->max_oc, s->compute));
    w = max_size(w, hs_npu_norm_bwd_workspace(npu, s->Ns, s->C, s->norm_sums));
    if (s->rope)
        w = max_size(w, hs_npu_rope_workspace(s->T, s->HD));
    *bytes = hbm_round(w);
    return HS_OK;
}
