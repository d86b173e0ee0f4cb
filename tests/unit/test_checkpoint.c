/* Checkpoints: round trip, atomic replacement, every bad input (clear
 * status and message, caller's buffers untouched), unwritable targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed/checkpoint.h"
#include "scratch.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* Four tensors as a trainer would name them; data in one array. */
enum { WTE = 16 * 8, BIAS = 8, TOTAL = 2 * WTE + BIAS + 1 };

typedef struct ckpt {
    float data[TOTAL];
    hs_ckpt_tensor t[4];
} ckpt;

static void ckpt_init(ckpt *c, float base)
{
    for (int i = 0; i < TOTAL; i++)
        c->data[i] = base + (float)i * 0.25f;
    c->t[0] = (hs_ckpt_tensor){"param/wte", 2, {16, 8}, c->data};
    c->t[1] = (hs_ckpt_tensor){"param/h.0.b", 1, {8}, c->data + WTE};
    c->t[2] = (hs_ckpt_tensor){"adam_m/wte", 2, {16, 8}, c->data + WTE + BIAS};
    c->t[3] = (hs_ckpt_tensor){"scale", 0, {0}, c->data + 2 * WTE + BIAS};
}

static hs_ckpt_meta meta_example(int64_t step)
{
    hs_ckpt_meta m = {
        .step = step,
        .seed = 1337,
        .rng_state = {1, UINT64_MAX, 0x0123456789abcdefULL, 42},
        .data_position = 18446744073709551557ULL,
        .model_config = "{\"arch\": \"gpt2\", \"d_model\": 64, \"norm_eps\": 1e-5}",
        .note = "run \"a\" caf\xc3\xa9\n",
    };
    return m;
}

static int setup(void **state)
{
    *state = scratch_dir("test_checkpoint");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    scratch_free(*state);
    return 0;
}

/* "<scratch>/ckpt", in its own buffer (scratch_path's rotate). */
static const char *ckpt_dir(void **state)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/ckpt", (const char *)*state);
    return dir;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    *n = fread(buf, 1, sizeof buf - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

/* Replaces the first `from` in dir/manifest.json with `to`. */
static void edit_manifest(const char *dir, const char *from, const char *to)
{
    const char *path = scratch_path(dir, HS_CKPT_MANIFEST);
    size_t n;
    char *text = read_all(path, &n);
    char *at = strstr(text, from);
    assert_non_null(at);
    static char out[1 << 16];
    size_t head = (size_t)(at - text);
    memcpy(out, text, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
    assert_int_equal(scratch_write(path, out, strlen(out)), 0);
}

/* The data file the manifest names, as "dir/model-....safetensors". */
static const char *data_file(const char *dir)
{
    size_t n;
    char *text = read_all(scratch_path(dir, HS_CKPT_MANIFEST), &n);
    char *at = strstr(text, "\"tensors_file\": \"");
    assert_non_null(at);
    at += strlen("\"tensors_file\": \"");
    static char name[256];
    size_t len = strcspn(at, "\"");
    memcpy(name, at, len);
    name[len] = '\0';
    return scratch_path(dir, name);
}

static void assert_loads(const char *dir, float base, int64_t step)
{
    ckpt want, got;
    ckpt_init(&want, base);
    ckpt_init(&got, -999);
    hs_ckpt_meta m = {0};
    hs_status s = hs_checkpoint_load(dir, got.t, 4, &m);
    if (s)
        fail_msg("load %s: %s", dir, hs_last_error());
    assert_memory_equal(got.data, want.data, sizeof want.data);
    assert_int_equal(m.step, step);
    hs_ckpt_meta_free(&m);
}

static void test_round_trip(void **state)
{
    const char *dir = ckpt_dir(state);
    ckpt c;
    ckpt_init(&c, 1.0f);
    hs_ckpt_meta meta = meta_example(1200);
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &meta), HS_OK);
    assert_int_equal(scratch_count_entries(dir), 2); /* manifest + one data file */

    ckpt got;
    ckpt_init(&got, 0.0f);
    hs_ckpt_meta m;
    memset(&m, 0xab, sizeof m);
    assert_int_equal(hs_checkpoint_load(dir, got.t, 4, &m), HS_OK);
    assert_memory_equal(got.data, c.data, sizeof c.data);
    assert_int_equal(m.step, 1200);
    assert_int_equal(m.seed, 1337);
    assert_memory_equal(m.rng_state, meta.rng_state, sizeof m.rng_state);
    assert_true(m.data_position == meta.data_position);
    assert_string_equal(m.model_config, meta.model_config);
    assert_string_equal(m.note, meta.note);
    hs_ckpt_meta_free(&m);
    assert_null(m.model_config);

    /* a subset, without meta */
    float bias[BIAS] = {0};
    hs_ckpt_tensor one = {"param/h.0.b", 1, {8}, bias};
    assert_int_equal(hs_checkpoint_load(dir, &one, 1, NULL), HS_OK);
    assert_memory_equal(bias, c.data + WTE, sizeof bias);

    /* the manifest is readable JSON with the documented fields */
    size_t n;
    const char *text = read_all(scratch_path(dir, HS_CKPT_MANIFEST), &n);
    assert_non_null(strstr(text, "\"format\": \"hyperspeed-checkpoint\""));
    assert_non_null(strstr(text, "\"version\": 1"));
    assert_non_null(strstr(text, "\"step\": 1200"));
    assert_non_null(strstr(text, "\"name\": \"param/wte\""));
    assert_non_null(strstr(text, "\"model_config\": {\"arch\": \"gpt2\""));

    /* NULL meta on save: zeros and nulls */
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, NULL), HS_OK);
    assert_int_equal(hs_checkpoint_load(dir, got.t, 4, &m), HS_OK);
    assert_int_equal(m.step, 0);
    assert_null(m.model_config);
    assert_null(m.note);
}

static void test_save_replaces_and_cleans(void **state)
{
    const char *dir = ckpt_dir(state);
    ckpt a, b;
    ckpt_init(&a, 1.0f);
    ckpt_init(&b, 2.0f);
    hs_ckpt_meta ma = meta_example(100), mb = meta_example(200);
    assert_int_equal(hs_checkpoint_save(dir, a.t, 4, &ma), HS_OK);
    char old_data[4096];
    snprintf(old_data, sizeof old_data, "%s", data_file(dir));
    /* leftovers of crashed saves */
    assert_int_equal(scratch_write(scratch_path(dir, "model-00000000deadbeef.safetensors"), "x", 1), 0);
    assert_int_equal(scratch_write(scratch_path(dir, "manifest.json.tmp.Ab12Cd"), "{", 1), 0);
    assert_int_equal(scratch_write(scratch_path(dir, "user-notes.txt"), "keep", 4), 0);
    assert_loads(dir, 1.0f, 100); /* leftovers do not disturb loading */
    assert_int_equal(hs_checkpoint_save(dir, b.t, 4, &mb), HS_OK);
    assert_loads(dir, 2.0f, 200);
    struct stat sb;
    assert_int_equal(stat(old_data, &sb), -1); /* the old data file is gone */
    assert_int_equal(scratch_count_entries(dir), 3); /* manifest, data, user-notes.txt */
}

static void test_interrupted_save_keeps_old(void **state)
{
    const char *dir = ckpt_dir(state);
    ckpt a, b;
    ckpt_init(&a, 1.0f);
    ckpt_init(&b, 2.0f);
    hs_ckpt_meta ma = meta_example(100);
    assert_int_equal(hs_checkpoint_save(dir, a.t, 4, &ma), HS_OK);
    /* a save that died after writing its data file, before its manifest:
     * what is on disk is the old manifest, the old data and a new data
     * file that nothing names */
    const hs_st_tensor st = {"param/wte", HS_FP32, 2, {16, 8}, b.data};
    assert_int_equal(hs_safetensors_write(scratch_path(dir, "model-1111111111111111.safetensors"), &st, 1, NULL, 0),
                     HS_OK);
    assert_int_equal(scratch_write(scratch_path(dir, "manifest.json.tmp.zzzzzz"), "{\"format\"", 9), 0);
    assert_loads(dir, 1.0f, 100);
}

/* Fills buffers and meta with sentinels, expects the load to fail with
 * `want` and `msg`, and checks that nothing was touched. */
static void expect_load_error(const char *dir, hs_ckpt_tensor *extra, hs_status want, const char *msg)
{
    ckpt got;
    ckpt_init(&got, 777.0f);
    ckpt sentinel = got;
    float extra_data[64];
    for (int i = 0; i < 64; i++)
        extra_data[i] = 555.0f;
    hs_ckpt_tensor req[5];
    memcpy(req, got.t, sizeof got.t);
    int n = 4;
    if (extra) {
        req[n] = *extra;
        req[n++].data = extra_data;
    }
    hs_ckpt_meta m = {.step = -5, .seed = 9, .model_config = "sentinel", .note = "sentinel"};
    hs_status s = hs_checkpoint_load(dir, req, n, &m);
    if (s != want)
        fail_msg("status %s (%s), expected %s", hs_status_str(s), hs_last_error(), hs_status_str(want));
    if (!strstr(hs_last_error(), msg))
        fail_msg("message \"%s\" lacks \"%s\"", hs_last_error(), msg);
    assert_memory_equal(got.data, sentinel.data, sizeof got.data);
    for (int i = 0; i < 64; i++)
        assert_true(extra_data[i] == 555.0f);
    assert_int_equal(m.step, -5);
    assert_int_equal(m.seed, 9);
    assert_string_equal(m.model_config, "sentinel");
    assert_string_equal(m.note, "sentinel");
}

static void save_example(const char *dir)
{
    ckpt c;
    ckpt_init(&c, 1.0f);
    hs_ckpt_meta meta = meta_example(7);
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &meta), HS_OK);
}

static void test_missing_dir_and_manifest(void **state)
{
    const char *dir = ckpt_dir(state);
    expect_load_error(dir, NULL, HS_ERR_IO, "checkpoint directory");
    expect_load_error(dir, NULL, HS_ERR_IO, "No such file or directory");
    assert_int_equal(mkdir(dir, 0755), 0);
    expect_load_error(dir, NULL, HS_ERR_IO, "has no manifest.json: not a checkpoint");
    save_example(dir);
    assert_int_equal(remove(scratch_path(dir, HS_CKPT_MANIFEST)), 0);
    expect_load_error(dir, NULL, HS_ERR_IO, "has no manifest.json");
    assert_int_equal(scratch_write(scratch_path(*state, "file"), "x", 1), 0);
    expect_load_error(scratch_path(*state, "file"), NULL, HS_ERR_IO, "is not a directory");
}

static void test_truncated_or_missing_data(void **state)
{
    const char *dir = ckpt_dir(state);
    save_example(dir);
    const char *data = data_file(dir);
    struct stat sb;
    assert_int_equal(stat(data, &sb), 0);
    assert_int_equal(truncate(data, sb.st_size - 16), 0);
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "but the manifest records");
    assert_int_equal(remove(data_file(dir)), 0);
    expect_load_error(dir, NULL, HS_ERR_IO, "No such file or directory");
}

static void test_bad_manifests(void **state)
{
    const char *dir = ckpt_dir(state);
    save_example(dir);
    edit_manifest(dir, "hyperspeed-checkpoint", "other-format");
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "format is \"other-format\", expected \"hyperspeed-checkpoint\"");
    save_example(dir);
    edit_manifest(dir, "\"version\": 1", "\"version\": 2");
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "checkpoint version 2; this library reads version 1");
    save_example(dir);
    edit_manifest(dir, "\"step\": 7,", "\"step\": 7");
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "manifest.json: JSON at byte");
    save_example(dir);
    edit_manifest(dir, "\"step\": 7", "\"step\": \"7\"");
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "\"step\", \"seed\" or \"data_position\"");
    save_example(dir);
    edit_manifest(dir, "\"tensors_file\": \"", "\"tensors_file\": \"../");
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "not a plain file name");
    save_example(dir);
    edit_manifest(dir, "\"bytes\": ", "\"bytes\": 1");
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "but the manifest records");
    /* a data file from another save under the right name and size */
    save_example(dir);
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", data_file(dir));
    char other[4096];
    snprintf(other, sizeof other, "%s/other", (const char *)*state);
    save_example(other);
    assert_int_equal(rename(data_file(other), keep), 0);
    expect_load_error(dir, NULL, HS_ERR_FORMAT, "has checkpoint id");
}

static void test_mis_shaped_and_missing_tensors(void **state)
{
    const char *dir = ckpt_dir(state);
    save_example(dir);
    hs_ckpt_tensor wrong = {"param/wte", 2, {8, 16}, NULL};
    expect_load_error(dir, &wrong, HS_ERR_SHAPE_MISMATCH, "tensor param/wte has shape [16, 8], expected [8, 16]");
    hs_ckpt_tensor rank = {"param/h.0.b", 2, {8, 1}, NULL};
    expect_load_error(dir, &rank, HS_ERR_SHAPE_MISMATCH, "tensor param/h.0.b has shape [8], expected [8, 1]");
    hs_ckpt_tensor scalar = {"scale", 1, {1}, NULL};
    expect_load_error(dir, &scalar, HS_ERR_SHAPE_MISMATCH, "shape [], expected [1]");
    hs_ckpt_tensor missing = {"adam_v/wte", 2, {16, 8}, NULL};
    expect_load_error(dir, &missing, HS_ERR_NOT_FOUND, "has no tensor adam_v/wte");
}

static void test_save_argument_errors(void **state)
{
    const char *dir = ckpt_dir(state);
    ckpt c;
    ckpt_init(&c, 1.0f);
    hs_ckpt_meta m = meta_example(1);
    m.model_config = "{\"arch\": ";
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &m), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "model_config is not valid JSON"));
    m.model_config = "[1, 2]";
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &m), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "model_config is not a JSON object"));
    m.model_config = NULL;
    c.t[1].name = "param/wte";
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &m), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "two tensors are named param/wte"));
    c.t[1].name = NULL;
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &m), HS_ERR_INVALID_ARGUMENT);
    m.note = "\xff";
    c.t[1].name = "param/h.0.b";
    assert_int_equal(hs_checkpoint_save(dir, c.t, 4, &m), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "not valid UTF-8"));
    struct stat sb;
    assert_true(stat(scratch_path(dir, HS_CKPT_MANIFEST), &sb) != 0); /* nothing was committed */
}

/* Runs a save under a file-size limit, so writes fail with EFBIG even for
 * root, and checks that it fails with HS_ERR_IO and that the checkpoint
 * from before still loads with nothing left behind. */
static void save_over_limit(const char *dir, const hs_ckpt_tensor *t, int n, const hs_ckpt_meta *m, rlim_t limit)
{
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = limit;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    hs_status s = hs_checkpoint_save(dir, t, n, m);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(s, HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "File too large"));
    assert_loads(dir, 1.0f, 7);
    assert_int_equal(scratch_count_entries(dir), 2);
}

static void test_unwritable_keeps_previous(void **state)
{
    const char *dir = ckpt_dir(state);
    save_example(dir);

    /* the data file cannot be written */
    static float big[1 << 14];
    hs_ckpt_tensor t = {"param/big", 1, {1 << 14}, big};
    save_over_limit(dir, &t, 1, NULL, 16384);

    /* the data file can, the manifest cannot (a huge note) */
    static char note[40000];
    memset(note, 'n', sizeof note - 1);
    hs_ckpt_meta m = {.step = 8, .note = note};
    ckpt c;
    ckpt_init(&c, 3.0f);
    save_over_limit(dir, c.t, 4, &m, 16384);

    /* a path under a regular file */
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/sub", data_file(dir));
    assert_int_equal(hs_checkpoint_save(bad, c.t, 4, NULL), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "mkdir"));

    /* a read-only directory (permissions do not stop root) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0555), 0);
        assert_int_equal(hs_checkpoint_save(dir, c.t, 4, NULL), HS_ERR_IO);
        assert_non_null(strstr(hs_last_error(), "Permission denied"));
        assert_int_equal(chmod(dir, 0755), 0);
        assert_loads(dir, 1.0f, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_replaces_and_cleans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_save_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir_and_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_or_missing_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_manifests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mis_shaped_and_missing_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_argument_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_keeps_previous, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
