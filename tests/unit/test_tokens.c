/* Token files (round trips, bad files), the byte tokenizer, corpora. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hyperspeed/data.h"
#include "scratch.h"

#include <sys/stat.h>

static int setup(void **state)
{
    *state = scratch_dir("test_tokens");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    scratch_free(*state);
    return 0;
}

static void expect_open_error(const char *path, hs_status want, const char *msg)
{
    hs_token_file *f = (hs_token_file *)1;
    assert_int_equal(hs_token_file_new(path, &f), want);
    assert_null(f);
    if (!strstr(hs_last_error(), msg))
        fail_msg("message \"%s\" lacks \"%s\"", hs_last_error(), msg);
}

static void test_round_trip(void **state)
{
    const char *dir = *state;
    int32_t tokens[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        tokens[i] = (i * 7919) % 65536;
    for (int bytes = 2; bytes <= 4; bytes += 2) {
        const char *path = scratch_path(dir, bytes == 2 ? "u16.bin" : "u32.bin");
        if (bytes == 4)
            tokens[999] = INT32_MAX;
        assert_int_equal(hs_token_file_write(path, tokens, 1000, bytes), HS_OK);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, HS_TOKENS_HEADER_BYTES + 1000 * bytes);
        hs_token_file *f;
        assert_int_equal(hs_token_file_new(path, &f), HS_OK);
        assert_int_equal(hs_token_file_count(f), 1000);
        assert_int_equal(hs_token_file_token_bytes(f), bytes);
        assert_int_equal(hs_token_file_get(f, 17), (uint32_t)tokens[17]);
        assert_int_equal(hs_token_file_get(f, 999), (uint32_t)tokens[999]);
        assert_int_equal(hs_token_file_read(f, 0, 1000, back), HS_OK);
        assert_memory_equal(back, tokens, sizeof tokens);
        assert_int_equal(hs_token_file_read(f, 990, 10, back), HS_OK);
        assert_memory_equal(back, tokens + 990, 10 * sizeof *back);
        assert_int_equal(hs_token_file_read(f, 1000, 0, back), HS_OK);
        assert_int_equal(hs_token_file_read(f, 995, 6, back), HS_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(hs_last_error(), "[995, 1001) is past the end of a file of 1000 tokens"));
        hs_token_file_free(f);
    }
    /* the documented header, byte for byte */
    FILE *fp = fopen(scratch_path(dir, "u16.bin"), "rb");
    unsigned char h[32];
    assert_int_equal(fread(h, 1, 32, fp), 32);
    fclose(fp);
    const unsigned char want[32] = {'H', 'S', 'T', 'O', 'K', 'E', 'N', 'S', 1, 0, 0, 0, 2, 0, 0, 0, 0xe8, 3};
    assert_memory_equal(h, want, 32);
}

static void test_writer_streams_and_replaces(void **state)
{
    const char *dir = *state;
    const char *path = scratch_path(dir, "stream.bin");
    int32_t one[3] = {1, 2, 3};
    assert_int_equal(hs_token_file_write(path, one, 3, 2), HS_OK);
    hs_token_writer *w;
    assert_int_equal(hs_token_writer_new(path, 4, &w), HS_OK);
    int32_t chunk[5000];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 5000; i++)
            chunk[i] = k * 5000 + i;
        assert_int_equal(hs_token_writer_append(w, chunk, 5000), HS_OK);
    }
    assert_int_equal(hs_token_writer_count(w), 15000);
    /* nothing visible until commit: the old file is still there */
    hs_token_file *f;
    assert_int_equal(hs_token_file_new(path, &f), HS_OK);
    assert_int_equal(hs_token_file_count(f), 3);
    hs_token_file_free(f);
    assert_int_equal(hs_token_writer_commit(w), HS_OK);
    assert_int_equal(hs_token_file_new(path, &f), HS_OK);
    assert_int_equal(hs_token_file_count(f), 15000);
    assert_int_equal(hs_token_file_get(f, 12345), 12345);
    hs_token_file_free(f);
    assert_int_equal(scratch_count_entries(dir), 1); /* no temp files left */
}

static void test_writer_errors(void **state)
{
    const char *dir = *state;
    const char *path = scratch_path(dir, "bad.bin");
    hs_token_writer *w = (hs_token_writer *)1;
    assert_int_equal(hs_token_writer_new(path, 3, &w), HS_ERR_INVALID_ARGUMENT);
    assert_null(w);
    assert_non_null(strstr(hs_last_error(), "token_bytes is 3"));
    int32_t big[2] = {5, 70000};
    assert_int_equal(hs_token_file_write(path, big, 2, 2), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "token 70000 at index 1"));
    int32_t neg[1] = {-1};
    assert_int_equal(hs_token_file_write(path, neg, 1, 4), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(scratch_count_entries(dir), 0); /* aborted writes leave nothing */
    assert_int_equal(hs_token_writer_new("/nonexistent-dir/x.bin", 2, &w), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "/nonexistent-dir/x.bin"));
    assert_non_null(strstr(hs_last_error(), "No such file or directory"));
    assert_int_equal(hs_token_writer_new(path, 2, &w), HS_OK);
    hs_token_writer_abort(w);
    assert_int_equal(scratch_count_entries(dir), 0);
}

static void test_bad_files(void **state)
{
    const char *dir = *state;
    const char *path = scratch_path(dir, "t.bin");
    int32_t tokens[100] = {0};
    assert_int_equal(hs_token_file_write(path, tokens, 100, 2), HS_OK);
    FILE *fp = fopen(path, "rb");
    unsigned char good[232];
    assert_int_equal(fread(good, 1, sizeof good, fp), 232);
    fclose(fp);

    const char *bad = scratch_path(dir, "bad.bin");
    expect_open_error(scratch_path(dir, "missing.bin"), HS_ERR_IO, "missing.bin: No such file or directory");
    assert_int_equal(scratch_write(bad, good, 0), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "0 bytes is shorter than the 32-byte token file header");
    assert_int_equal(scratch_write(bad, good, 20), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "20 bytes is shorter");
    assert_int_equal(scratch_write(bad, good, 231), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "truncated: header says 100 tokens of 2 bytes, 232 bytes with the header, "
                                          "but the file has 231 bytes");
    unsigned char more[233];
    memcpy(more, good, 232);
    more[232] = 0;
    assert_int_equal(scratch_write(bad, more, 233), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "trailing bytes");

    unsigned char h[232];
    memcpy(h, good, 232);
    h[0] = 'X';
    assert_int_equal(scratch_write(bad, h, 232), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "not a token file");
    memcpy(h, good, 232);
    h[8] = 2;
    assert_int_equal(scratch_write(bad, h, 232), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "version 2");
    memcpy(h, good, 232);
    h[12] = 3;
    assert_int_equal(scratch_write(bad, h, 232), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "3 bytes per token");
    memcpy(h, good, 232);
    h[24] = 1;
    assert_int_equal(scratch_write(bad, h, 232), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "reserved");
    memcpy(h, good, 232);
    memset(h + 16, 0xff, 8); /* count so large that count * bytes overflows */
    assert_int_equal(scratch_write(bad, h, 232), 0);
    expect_open_error(bad, HS_ERR_FORMAT, "over 2^64");
    expect_open_error(dir, HS_ERR_IO, "not a regular file");

    /* an empty token file (header, no tokens) is valid */
    assert_int_equal(hs_token_file_write(bad, NULL, 0, 2), HS_OK);
    hs_token_file *f;
    assert_int_equal(hs_token_file_new(bad, &f), HS_OK);
    assert_int_equal(hs_token_file_count(f), 0);
    hs_token_file_free(f);
}

static void test_u32_token_above_int32(void **state)
{
    const char *path = scratch_path(*state, "big.bin");
    unsigned char file[40] = {'H', 'S', 'T', 'O', 'K', 'E', 'N', 'S', 1, 0, 0, 0, 4, 0, 0, 0, 2};
    memset(file + 36, 0xff, 4); /* token 1 = 0xffffffff */
    assert_int_equal(scratch_write(path, file, 40), 0);
    hs_token_file *f;
    assert_int_equal(hs_token_file_new(path, &f), HS_OK);
    assert_int_equal(hs_token_file_get(f, 1), UINT32_MAX);
    int32_t out[2];
    assert_int_equal(hs_token_file_read(f, 0, 2, out), HS_ERR_FORMAT);
    assert_non_null(strstr(hs_last_error(), "token 4294967295 at position 1 does not fit int32"));
    hs_token_file_free(f);
}

static void test_tokenizer(void **state)
{
    (void)state;
    const char text[] = "h\xc3\xa9llo\n\0\xff";
    int32_t tokens[sizeof text];
    hs_tokenizer_encode(text, sizeof text, tokens);
    assert_int_equal(tokens[0], 'h');
    assert_int_equal(tokens[1], 0xc3);
    assert_int_equal(tokens[8], 0xff);
    char back[sizeof text];
    assert_int_equal(hs_tokenizer_decode(tokens, sizeof text, back), HS_OK);
    assert_memory_equal(back, text, sizeof text);
    tokens[3] = 256;
    assert_int_equal(hs_tokenizer_decode(tokens, sizeof text, back), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "token 256 at index 3"));
    tokens[3] = -1;
    assert_int_equal(hs_tokenizer_decode(tokens, sizeof text, back), HS_ERR_INVALID_ARGUMENT);
}

/* Reads a whole token file back as text. */
static size_t read_text(const char *path, char *buf, size_t cap)
{
    hs_token_file *f;
    assert_int_equal(hs_token_file_new(path, &f), HS_OK);
    size_t n = (size_t)hs_token_file_count(f);
    assert_true(n <= cap);
    int32_t *t = malloc(n * sizeof *t + 1);
    assert_int_equal(hs_token_file_read(f, 0, n, t), HS_OK);
    assert_int_equal(hs_tokenizer_decode(t, n, buf), HS_OK);
    free(t);
    hs_token_file_free(f);
    return n;
}

static void test_corpus_encode(void **state)
{
    const char *dir = *state;
    char src[4096];
    snprintf(src, sizeof src, "%s/src", dir);
    assert_int_equal(mkdir(src, 0755), 0);
    assert_int_equal(scratch_write(scratch_path(src, "b.txt"), "BBBB", 4), 0);
    assert_int_equal(scratch_write(scratch_path(src, "a.txt"), "AAAA", 4), 0);
    assert_int_equal(scratch_write(scratch_path(src, "C.txt"), "CC", 2), 0); /* 'C' < 'a' in byte order */
    assert_int_equal(mkdir(scratch_path(src, "sub"), 0755), 0);                /* skipped */
    assert_int_equal(scratch_write(scratch_path(dir, "extra.txt"), "0123456789", 10), 0);
    char target[4096];
    snprintf(target, sizeof target, "%s/extra.txt", dir);
    assert_int_equal(symlink(target, scratch_path(src, "link")), 0); /* followed */

    char train[4096], val[4096];
    snprintf(train, sizeof train, "%s/train.bin", dir);
    snprintf(val, sizeof val, "%s/val.bin", dir);
    const char *inputs[] = {src, target};
    hs_corpus_stats st;
    assert_int_equal(hs_corpus_encode(inputs, 2, 0.25, train, val, &st), HS_OK);
    /* files: CC AAAA BBBB 0123456789 (the second input is the file "link"
     * already reached: skipped). Each file keeps its first
     * size - floor(size/4) tokens for training: CC | AAA+A | BBB+B |
     * 01234567+89. */
    assert_int_equal(st.files, 4);
    assert_int_equal(st.train_tokens, 16);
    assert_int_equal(st.val_tokens, 4);
    assert_int_equal(st.reused, 0);
    char text[64];
    size_t n = read_text(train, text, sizeof text);
    assert_int_equal(n, 16);
    assert_memory_equal(text, "CCAAABBB01234567", 16);
    n = read_text(val, text, sizeof text);
    assert_int_equal(n, 4);
    assert_memory_equal(text, "AB89", 4);

    /* fraction 0: no validation file needed */
    assert_int_equal(hs_corpus_encode(inputs + 1, 1, 0.0, train, NULL, &st), HS_OK);
    assert_int_equal(st.train_tokens, 10);
    assert_int_equal(st.val_tokens, 0);
}

static void test_corpus_errors(void **state)
{
    const char *dir = *state;
    const char *train = scratch_path(dir, "t.bin");
    const char *missing[] = {scratch_path(dir, "nope")};
    assert_int_equal(hs_corpus_encode(missing, 1, 0.0, train, NULL, NULL), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "nope: No such file or directory"));
    const char *devnull[] = {"/dev/null"};
    assert_int_equal(hs_corpus_encode(devnull, 1, 0.0, train, NULL, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "neither a regular file nor a directory"));
    const char *ok[] = {dir};
    assert_int_equal(hs_corpus_encode(ok, 1, 1.0, train, train, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "outside [0, 1)"));
    assert_int_equal(hs_corpus_encode(ok, 1, 0.5, train, NULL, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(hs_last_error(), "needs a validation output path"));
    assert_int_equal(hs_corpus_encode(ok, 0, 0.0, train, NULL, NULL), HS_ERR_INVALID_ARGUMENT);
    assert_int_equal(scratch_count_entries(dir), 0);
}

static void test_builtin_corpus(void **state)
{
    struct stat sb;
    if (stat(HS_CORPUS_SOURCE_DIR, &sb) != 0)
        skip();
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/cache/corpus", (const char *)*state);
    hs_corpus_stats a, b;
    assert_int_equal(hs_corpus_build(cache, &a), HS_OK);
    assert_int_equal(a.reused, 0);
    assert_true(a.files > 0);
    uint64_t total = a.train_tokens + a.val_tokens;
    assert_true(total > 10000);
    /* each file gives floor(n * 0.1) of its n tokens: about a tenth in all */
    assert_true(a.val_tokens <= total / 10 && a.val_tokens + (uint64_t)a.files >= total / 10);
    assert_int_equal(hs_corpus_build(cache, &b), HS_OK);
    assert_int_equal(b.reused, 1);
    assert_int_equal(b.train_tokens, a.train_tokens);
    hs_token_file *f;
    assert_int_equal(hs_token_file_new(scratch_path(cache, HS_CORPUS_VAL_FILE), &f), HS_OK);
    assert_int_equal(hs_token_file_count(f), a.val_tokens);
    hs_token_file_free(f);
    /* a damaged cache is rebuilt */
    assert_int_equal(scratch_write(scratch_path(cache, HS_CORPUS_TRAIN_FILE), "junk", 4), 0);
    assert_int_equal(hs_corpus_build(cache, &b), HS_OK);
    assert_int_equal(b.reused, 0);
    assert_int_equal(b.train_tokens, a.train_tokens);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_streams_and_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_u32_token_above_int32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokenizer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corpus_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corpus_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_corpus, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
