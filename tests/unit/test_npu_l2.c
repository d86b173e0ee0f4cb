/* The L2 model's host-side machinery: the worker thread that applies a
 * launch's accesses beside the kernels (l2_pipe.c) gives the same launch
 * stats as applying them on the kernel thread, in estimate and execute
 * mode; the memo of repeated reads (l2_repeat.c) gives the same split as
 * walking the lines; a timed pass whose accesses are not the census's is
 * an internal error, not a wrong time, and the device goes on working. */
#include "npu_fixture.h"

#include "hyperspeed/npu.h"
#include "npu_sim/launch.h"

#include <string.h>

#define ROWS 32
#define COLS 256 /* floats per row of the matrix: 1 KiB, two L2 lines */

typedef struct tile_args {
    float *gm, *out;
    int variant; /* 0: reads, repeats, overlaps, writes; 1: the repeat as two halves; 2: census differs */
} tile_args;

/* Each block reads a 32 x 64 tile of the matrix twice, an overlapping
 * tile, writes a tile of out and reads it back (variant 1 makes the
 * second read as two 16-row halves; variant 2 reads elsewhere in the
 * timed pass than in the census). */
static hs_status k_tiles(hs_npu_kblock *blk, void *arg)
{
    tile_args *a = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    const int b = hs_npu_kblock_idx(blk);
    hs_npu_local ub, back;
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, ROWS * 64, &ub);
    hs_npu_alloc(v, HS_BUF_UB, HS_FP32, ROWS * 64, &back);
    const float *tile = a->gm + (b % 2) * 64;
    hs_npu_copy_in(ub, 64, tile, COLS, ROWS, 64);
    if (a->variant == 1) {
        hs_npu_copy_in(ub, 64, tile, COLS, ROWS / 2, 64);
        hs_npu_copy_in(ub, 64, tile + ROWS / 2 * COLS, COLS, ROWS / 2, 64);
    } else {
        hs_npu_copy_in(ub, 64, tile, COLS, ROWS, 64);
    }
    const int shift = a->variant == 2 && !blk->census ? 64 : 0;
    hs_npu_copy_in(ub, 64, a->gm + 32 + shift, COLS, ROWS, 64);
    hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_MTE3, 0);
    hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_MTE3, 0);
    hs_npu_copy_out(a->out + b * 64, COLS, ub, 64, ROWS, 64);
    hs_npu_copy_in(back, 64, a->out + b * 64, COLS, ROWS, 64);
    return hs_npu_core_status(v);
}

/* The stats of one 3-block launch of variant on d, with `threads` host
 * threads (2: the worker applies the accesses; 1: the kernel thread). */
static hs_npu_launch_stats launch(hs_npu *d, int threads, int variant, hs_status want)
{
    assert_int_equal(hs_set_num_threads(threads), HS_OK);
    tile_args a = {npu_up(d, NULL, ROWS * COLS), npu_up(d, NULL, ROWS * COLS), variant};
    hs_npu_set_timing_cache(d, 0);
    hs_status got = hs_npu_launch(d, NULL, "tiles", HS_NPU_LAUNCH_VECTOR, 3, k_tiles, &a);
    if (got != want)
        print_error("launch: %s\n", hs_last_error());
    assert_int_equal(got, want);
    const hs_npu_launch_stats ls = hs_npu_last_launch(d);
    npu_down(d, NULL, a.gm, ROWS * COLS);
    npu_down(d, NULL, a.out, ROWS * COLS);
    return ls;
}

static void assert_same_stats(hs_npu_launch_stats x, hs_npu_launch_stats y)
{
    assert_int_equal(x.cycles, y.cycles);
    assert_int_equal(x.hbm_bytes, y.hbm_bytes);
    assert_int_equal(x.l2_bytes, y.l2_bytes);
    assert_memory_equal(x.pipe_busy, y.pipe_busy, sizeof x.pipe_busy);
}

static void test_worker_matches_kernel_thread(void **state)
{
    (void)state;
    const hs_npu_mode modes[2] = {HS_NPU_ESTIMATE, HS_NPU_EXECUTE};
    for (int m = 0; m < 2; m++) {
        hs_npu *d = npu_make("test", modes[m]);
        const hs_npu_launch_stats on_worker = launch(d, 2, 0, HS_OK);
        const hs_npu_launch_stats inline_ = launch(d, 1, 0, HS_OK);
        assert_same_stats(on_worker, inline_);
        assert_true(on_worker.l2_bytes > 0 && on_worker.hbm_bytes > 0);
        hs_npu_free(d);
    }
    assert_int_equal(hs_set_num_threads(2), HS_OK);
}

/* A repeated read answered by the memo splits its bytes as walking the
 * same lines again (two halves are not a repeat, so they are walked). */
static void test_repeat_memo_matches_walk(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    const hs_npu_launch_stats memo = launch(d, 2, 0, HS_OK), walked = launch(d, 2, 1, HS_OK);
    assert_int_equal(memo.hbm_bytes, walked.hbm_bytes);
    assert_int_equal(memo.l2_bytes, walked.l2_bytes);
    hs_npu_free(d);
}

/* In estimate mode the worker computes the timed pass's splits from the
 * census's accesses: a timed pass that reads elsewhere is refused with a
 * message, and the next launch on the device works. */
static void test_timed_pass_must_repeat_census(void **state)
{
    (void)state;
    hs_npu *d = npu_make("test", HS_NPU_ESTIMATE);
    launch(d, 2, 2, HS_ERR_INTERNAL);
    assert_non_null(strstr(hs_last_error(), "is not the census's"));
    const hs_npu_launch_stats after = launch(d, 2, 0, HS_OK), ref = launch(d, 1, 0, HS_OK);
    assert_same_stats(after, ref);
    hs_npu_free(d);
    assert_int_equal(hs_set_num_threads(2), HS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_matches_kernel_thread),
        cmocka_unit_test(test_repeat_memo_matches_walk),
        cmocka_unit_test(test_timed_pass_must_repeat_census),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
