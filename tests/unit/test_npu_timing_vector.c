/* Simulated timing of the vector kernels: RMSNorm over 16 M fp32 elements
 * (4096 rows of 4096) on a 910B2 in estimate mode is HBM-bound, its launch
 * (kernel time plus launch overhead) within 10 % of
 *     bytes / hbm_bw,  bytes = 4 (N C (read x) + N C (write out) + C (read w) + N (write rstd))
 *                            = 134,250,496 B,  / 1.6 TB/s = 83.9 us.
 */
#include "gradcheck.h"

#include "hyperspeed/kernels.h"
#include "hyperspeed/npu.h"

static void test_rmsnorm_hbm_bound(void **state)
{
    (void)state;
    const int64_t N = 4096, C = 4096;
    hs_npu_spec s;
    hs_npu *d;
    assert_int_equal(hs_npu_spec_preset("910B2", &s), HS_OK);
    assert_int_equal(hs_npu_new(&s, HS_NPU_ESTIMATE, &d), HS_OK);
    void *x, *out, *w, *rstd;
    assert_int_equal(hs_npu_malloc(d, (size_t)(N * C) * 4, &x), HS_OK);
    assert_int_equal(hs_npu_malloc(d, (size_t)(N * C) * 4, &out), HS_OK);
    assert_int_equal(hs_npu_malloc(d, (size_t)C * 4, &w), HS_OK);
    assert_int_equal(hs_npu_malloc(d, (size_t)N * 4, &rstd), HS_OK);
    hs_tensor tx = hs_view2(x, HS_FP32, N, C), to = hs_view2(out, HS_FP32, N, C), tw = hs_view1(w, HS_FP32, C);
    hs_tensor tr = hs_view1(rstd, HS_FP32, N);
    tx.device = to.device = tw.device = tr.device = hs_npu_device(d);
    assert_int_equal(hs_rmsnorm_forward(&to, &tr, &tx, &tw, 1e-5f), HS_OK);
    const hs_npu_launch_stats ls = hs_npu_last_launch(d);
    const double bytes = 4.0 * (double)(2 * N * C + C + N), bound = bytes / s.hbm_bw;
    fprintf(stderr, "rmsnorm 4096x4096 on 910B2: %.2f us simulated (%.2f us kernel + %.2f us launch), "
                    "bytes / hbm_bw = %.0f B / %.2g B/s = %.2f us, ratio %.3f; HBM %.0f B, L2 %.0f B\n",
            ls.seconds * 1e6, (double)ls.cycles / s.freq_hz * 1e6, s.launch_overhead_s * 1e6, bytes, s.hbm_bw,
            bound * 1e6, ls.seconds / bound, (double)ls.hbm_bytes, (double)ls.l2_bytes);
    assert_true(ls.seconds >= 0.9 * bound);
    assert_true(ls.seconds <= 1.1 * bound);
    hs_npu_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_hbm_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
