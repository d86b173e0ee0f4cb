/* NPU spec presets, validation and derived peaks. Every number comes from
 * /work/shared/NPU_FACTS.md or is a documented modelling choice; the table
 * in docs/npu_model.md gives each one's source tag ([H]/[M]/[U]). */
#include "hyperspeed/npu.h"

#include <stdio.h>
#include <string.h>

#define KIB ((int64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* The 910B-class AI core (arch C220): buffers, per-core rates, cube and
 * vector widths, instruction latencies, launch and PCIe costs. Chip-level
 * fields (cores, clock, L2, HBM) are left for the preset to fill. */
static hs_npu_spec c220_core(void)
{
    hs_npu_spec s = {
        .l1_bytes = 512 * KIB,
        .l0a_bytes = 64 * KIB,
        .l0b_bytes = 64 * KIB,
        .l0c_bytes = 128 * KIB,
        .bias_table_bytes = 1 * KIB,
        .fixpipe_bytes = 7 * KIB,
        .ub_bytes = 192 * KIB,
        .ddr_rate = 32,
        .l2_read_rate = 110,
        .l2_write_rate = 86,
        .l1_to_l0_rate = 512,
        .ub_to_l2_rate = 64,
        .fixpipe_rate = 128,
        .cube_m = 16,
        .cube_k = 16,
        .cube_n = 16,
        .vector_bytes = 256,
        .lat_mte2 = 200,
        .lat_mte1 = 20,
        .lat_cube = 10,
        .lat_fixpipe = 30,
        .lat_vector = 10,
        .lat_mte3 = 100,
        .lat_scalar = 1,
        .launch_overhead_s = 5e-6,
        .pcie_bw = 24e9,
        .pcie_latency_s = 5e-6,
        .host_bytes = 128 * GIB,
        .host_bw = 90e9,
    };
    return s;
}

/* A C220-core chip with the given cores, clock, HBM and L2. */
static hs_npu_spec c220_chip(const char *name, int cube, int vector, double freq_hz, int64_t hbm, double hbm_bw,
                             int64_t l2)
{
    hs_npu_spec s = c220_core();
    snprintf(s.name, sizeof s.name, "%s", name);
    s.cube_cores = cube;
    s.vector_cores = vector;
    s.freq_hz = freq_hz;
    s.hbm_bytes = hbm;
    s.hbm_bw = hbm_bw;
    s.l2_bytes = l2;
    return s;
}

/* Ascend 910 (A): 32 unified AI cores (cube and vector in one core, so
 * vector_cores is 0) with the first Da Vinci generation's larger L1, L0C
 * and UB. */
static hs_npu_spec preset_910a(void)
{
    hs_npu_spec s = c220_chip("910A", 32, 0, 1.0e9, 32 * GIB, 1.2e12, 32 * MIB);
    s.l1_bytes = 1024 * KIB;
    s.l0c_bytes = 256 * KIB;
    s.ub_bytes = 256 * KIB;
    return s;
}

/* A small chip for tests, with a small host share. */
static hs_npu_spec preset_test(void)
{
    hs_npu_spec s = c220_chip("test", 2, 4, 1.0e9, 64 * MIB, 100e9, 4 * MIB);
    s.host_bytes = 256 * MIB;
    s.host_bw = 10e9;
    return s;
}

static const char *const preset_names[] = {"910B2", "910B3", "910B4", "910C", "910A", "test", NULL};

/* Lists the known preset names. */
const char *const *hs_npu_preset_names(void)
{
    return preset_names;
}

/* Fills *out with the named preset. */
hs_status hs_npu_spec_preset(const char *name, hs_npu_spec *out)
{
    if (!name || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_spec_preset: NULL argument");
    if (!strcmp(name, "910B2"))
        *out = c220_chip("910B2", 24, 48, 1.8e9, 64 * GIB, 1.6e12, 192 * MIB);
    else if (!strcmp(name, "910B3"))
        *out = c220_chip("910B3", 20, 40, 1.8e9, 64 * GIB, 1.6e12, 192 * MIB);
    else if (!strcmp(name, "910B4"))
        *out = c220_chip("910B4", 20, 40, 1.5e9, 32 * GIB, 0.8e12, 96 * MIB);
    else if (!strcmp(name, "910C"))
        *out = c220_chip("910C", 24, 48, 1.85e9, 64 * GIB, 1.6e12, 192 * MIB);
    else if (!strcmp(name, "910A"))
        *out = preset_910a();
    else if (!strcmp(name, "test"))
        *out = preset_test();
    else {
        char known[128] = "";
        for (const char *const *n = preset_names; *n; n++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", n == preset_names ? "" : ", ", *n);
        return hs_error(HS_ERR_NOT_FOUND, "unknown NPU preset '%s' (known: %s)", name, known);
    }
    return HS_OK;
}

#define REQUIRE(cond, field)                                                                                           \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            return hs_error(HS_ERR_INVALID_ARGUMENT, "NPU spec '%s': %s must be positive", s->name, field);           \
    } while (0)

/* Checks that every count, size, rate and clock is positive. */
hs_status hs_npu_spec_validate(const hs_npu_spec *s)
{
    if (!s)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_spec_validate: NULL spec");
    REQUIRE(s->cube_cores > 0, "cube_cores");
    if (s->vector_cores < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "NPU spec '%s': vector_cores must not be negative", s->name);
    REQUIRE(s->freq_hz > 0, "freq_hz");
    REQUIRE(s->l1_bytes > 0, "l1_bytes");
    REQUIRE(s->l0a_bytes > 0, "l0a_bytes");
    REQUIRE(s->l0b_bytes > 0, "l0b_bytes");
    REQUIRE(s->l0c_bytes > 0, "l0c_bytes");
    REQUIRE(s->bias_table_bytes > 0, "bias_table_bytes");
    REQUIRE(s->fixpipe_bytes > 0, "fixpipe_bytes");
    REQUIRE(s->ub_bytes > 0, "ub_bytes");
    REQUIRE(s->l2_bytes > 0, "l2_bytes");
    REQUIRE(s->hbm_bytes > 0, "hbm_bytes");
    REQUIRE(s->hbm_bw > 0, "hbm_bw");
    REQUIRE(s->ddr_rate > 0, "ddr_rate");
    REQUIRE(s->l2_read_rate > 0, "l2_read_rate");
    REQUIRE(s->l2_write_rate > 0, "l2_write_rate");
    REQUIRE(s->l1_to_l0_rate > 0, "l1_to_l0_rate");
    REQUIRE(s->ub_to_l2_rate > 0, "ub_to_l2_rate");
    REQUIRE(s->fixpipe_rate > 0, "fixpipe_rate");
    REQUIRE(s->cube_m > 0, "cube_m");
    REQUIRE(s->cube_k > 0, "cube_k");
    REQUIRE(s->cube_n > 0, "cube_n");
    REQUIRE(s->vector_bytes > 0, "vector_bytes");
    REQUIRE(s->lat_mte2 > 0, "lat_mte2");
    REQUIRE(s->lat_mte1 > 0, "lat_mte1");
    REQUIRE(s->lat_cube > 0, "lat_cube");
    REQUIRE(s->lat_fixpipe > 0, "lat_fixpipe");
    REQUIRE(s->lat_vector > 0, "lat_vector");
    REQUIRE(s->lat_mte3 > 0, "lat_mte3");
    REQUIRE(s->lat_scalar > 0, "lat_scalar");
    REQUIRE(s->launch_overhead_s > 0, "launch_overhead_s");
    REQUIRE(s->pcie_bw > 0, "pcie_bw");
    REQUIRE(s->pcie_latency_s > 0, "pcie_latency_s");
    REQUIRE(s->host_bytes > 0, "host_bytes");
    REQUIRE(s->host_bw > 0, "host_bw");
    return HS_OK;
}

/* Cube peak: cores * m*k*n MACs * 2 FLOP * clock; int8 twice that. */
double hs_npu_peak_flops(const hs_npu_spec *s, hs_dtype dt)
{
    double fp16 = (double)s->cube_cores * s->cube_m * s->cube_k * s->cube_n * 2.0 * s->freq_hz;
    if (dt == HS_FP16 || dt == HS_BF16)
        return fp16;
    if (dt == HS_INT8)
        return 2.0 * fp16;
    return 0;
}

/* Vector peak: vector units * bytes per repeat * clock; on a chip without
 * separate vector cores (910A) each AI core has one vector unit. */
double hs_npu_vector_bytes_per_s(const hs_npu_spec *s)
{
    int units = s->vector_cores > 0 ? s->vector_cores : s->cube_cores;
    return (double)units * s->vector_bytes * s->freq_hz;
}
