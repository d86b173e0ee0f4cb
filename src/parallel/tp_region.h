/* The tensor-parallel regions of a model chunk (Megatron's f and g, with
 * sequence parallelism's gathers): where a column-parallel matmul's input
 * enters the region and a row-parallel matmul's partial output leaves it,
 * and their backward. Private to the library: the model's layers call them
 * (src/model/layer_ops.h); the collectives are tp_comm.c's.
 *
 * Without sequence parallelism f is the identity forward and an
 * all-reduce backward, g an all-reduce forward and the identity backward.
 * With it the stream between regions holds each rank's slice of the
 * sequence ([Ns, C], Ns = N / tp): f all-gathers the slices forward and
 * reduce-scatters backward, g reduce-scatters forward and all-gathers
 * backward. */
#ifndef HS_PARALLEL_TP_REGION_H
#define HS_PARALLEL_TP_REGION_H

#include "parallel/tp_comm.h"

/* One chunk's regions: its group and the scratch the model planned. */
typedef struct hs_tp_region {
    hs_comm *comm;    /* the TP group (NULL with tp = 1) */
    hs_npu *npu;      /* the buffers' NPU, NULL the CPU */
    hs_device *dev;   /* their device handle (for the casts) */
    int tp, sp;       /* group size, sequence parallelism */
    int64_t width;    /* C: floats per row */
    hs_dtype compute; /* the matmuls' input dtype */
    float *full;      /* tp > 1: [N,C] a row-parallel partial sum, or a 16-bit slice before its gather */
    float *dfull;     /* tp > 1: [N,C] the whole sequences' gradient (gathered, or a partial sum) */
    float *tmp;       /* sequence parallelism: [N,C] the gather's and reduce-scatter's block scratch */
} hs_tp_region;

/* f: dst [N,C] = the rows of whole sequences in the compute dtype for a
 * column-parallel matmul, from the stream rows x [Ns,C] (gathered under
 * sequence parallelism; without, x cast, or x itself for fp32). A 16-bit
 * compute dtype rounds the rank's slice first and gathers 16-bit rows
 * (half the bytes, as Megatron does; the same values, since rounding
 * commutes with the gather). */
hs_status hs_tp_region_enter(const hs_tp_region *r, void *dst, float *x, int B, int T);

/* Where a column-parallel matmul's backward writes its input gradient
 * [N,C] before hs_tp_region_enter_backward sums it into dst [Ns,C]. */
float *hs_tp_region_col_dinp(const hs_tp_region *r, float *dst);

/* f's backward: dst [Ns,C] = the sum over the group of each rank's
 * partial input gradient (all-reduce in place, or a reduce-scatter of
 * dfull). */
hs_status hs_tp_region_enter_backward(const hs_tp_region *r, float *dst, int B, int T);

/* Where a row-parallel matmul writes its partial output [N,C] before
 * hs_tp_region_exit sums it into out [Ns,C]. */
float *hs_tp_region_row_out(const hs_tp_region *r, float *out);

/* g: out [Ns,C] = the sum over the group of the partial outputs. */
hs_status hs_tp_region_exit(const hs_tp_region *r, float *out, int B, int T);

/* g's backward: *full = the gradient of the partial output [N,C]: dout
 * [Ns,C] itself, or its slices gathered into dfull. */
hs_status hs_tp_region_exit_backward(const hs_tp_region *r, float *dout, int B, int T, float **full);

#endif
