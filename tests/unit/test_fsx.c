/* test_fsx.c — atomic writes, reading, output folders and safe paths. */
#include "kmq/alloc_hook.h"
#include "kmq/fsx.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* dir "/" name in one of 8 rotating static buffers. */
static const char *path_in(const char *dir, const char *name)
{
    static char buf[8][4096];
    static int next = 0;
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < sizeof tmp);
    char *out = buf[next++ % 8];
    memcpy(out, tmp, (size_t)n + 1);
    return out;
}

/* Entries of a folder, excluding . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int count_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, KMQ_FSX_TMP_PREFIX, strlen(KMQ_FSX_TMP_PREFIX)) == 0)
            n++;
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Before commit the final name is absent and one temporary sits beside it;
 * after commit the file is there, complete, mode 0644, and no temporary. */
START_TEST(commit_is_atomic)
{
    const char *dir = tu_fresh_dir("fsx_commit");
    const char *final = path_in(dir, "out.txt");
    umask(022);
    kmq_err err = {0};
    kmq_fsx_file f = {0};
    ck_assert_int_eq(kmq_fsx_create(final, &f, &err), KMQ_OK);
    ck_assert_ptr_nonnull(f.fp);
    ck_assert_str_eq(f.final_path, final);
    ck_assert_ptr_nonnull(strstr(f.tmp_path, KMQ_FSX_TMP_PREFIX "out.txt."));
    ck_assert_int_eq(fputs("hello", f.fp) >= 0, 1);
    ck_assert(!exists(final));
    ck_assert_int_eq(count_temporaries(dir), 1);
    ck_assert_int_eq(count_entries(dir), 1);

    ck_assert_int_eq(kmq_fsx_commit(&f, true, &err), KMQ_OK);
    ck_assert_ptr_null(f.fp);
    ck_assert_ptr_null(f.tmp_path);
    ck_assert_ptr_null(f.final_path);
    size_t len = 0;
    unsigned char *data = tu_read_file(final, &len);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(data, "hello", 5);
    free(data);
    struct stat st;
    ck_assert_int_eq(stat(final, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(count_temporaries(dir), 0);
    ck_assert_int_eq(count_entries(dir), 1);
}
END_TEST

/* Two temporaries for the same final name do not collide, and committing
 * over an existing file replaces it. */
START_TEST(commit_replaces)
{
    const char *dir = tu_fresh_dir("fsx_replace");
    const char *final = path_in(dir, "a.bin");
    tu_write_file(final, "old", 3);
    kmq_err err = {0};
    kmq_fsx_file f1 = {0}, f2 = {0};
    ck_assert_int_eq(kmq_fsx_create(final, &f1, &err), KMQ_OK);
    ck_assert_int_eq(kmq_fsx_create(final, &f2, &err), KMQ_OK);
    ck_assert_str_ne(f1.tmp_path, f2.tmp_path);
    fputs("one", f1.fp);
    fputs("second", f2.fp);
    ck_assert_int_eq(kmq_fsx_commit(&f1, false, &err), KMQ_OK);
    ck_assert_int_eq(kmq_fsx_commit(&f2, false, &err), KMQ_OK);
    size_t len = 0;
    unsigned char *data = tu_read_file(final, &len);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(data, "second", 6);
    free(data);
    ck_assert_int_eq(count_entries(dir), 1);
}
END_TEST

START_TEST(abort_leaves_nothing)
{
    const char *dir = tu_fresh_dir("fsx_abort");
    const char *final = path_in(dir, "gone.txt");
    kmq_err err = {0};
    kmq_fsx_file f = {0};
    ck_assert_int_eq(kmq_fsx_create(final, &f, &err), KMQ_OK);
    fputs("partial", f.fp);
    kmq_fsx_abort(&f);
    ck_assert_ptr_null(f.fp);
    ck_assert_int_eq(count_entries(dir), 0);
    kmq_fsx_abort(&f); /* safe on a cleared file */
    ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

START_TEST(write_all_roundtrip)
{
    const char *dir = tu_fresh_dir("fsx_write_all");
    const char *final = path_in(dir, "data.json");
    kmq_err err = {0};
    ck_assert_int_eq(kmq_fsx_write_all(final, "{}\n", 3, true, &err), KMQ_OK);
    ck_assert_int_eq(kmq_fsx_write_all(final, "[1]\n", 4, false, &err), KMQ_OK);
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(kmq_fsx_read_all(final, 100, &data, &len, &err), KMQ_OK);
    ck_assert_uint_eq(len, 4);
    ck_assert_str_eq(data, "[1]\n");
    free(data);
    ck_assert_int_eq(kmq_fsx_write_all(path_in(dir, "empty"), "", 0, false, &err), KMQ_OK);
    ck_assert_int_eq(kmq_fsx_read_all(path_in(dir, "empty"), 100, &data, &len, &err), KMQ_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(data, "");
    free(data);
    ck_assert_int_eq(count_temporaries(dir), 0);
}
END_TEST

/* Failures: the folder is missing (create), the final name is a non-empty
 * folder (rename at commit). Both KMQ_E_WRITE naming the path, no leftovers. */
START_TEST(write_failures_leave_nothing)
{
    const char *dir = tu_fresh_dir("fsx_fail");
    kmq_err err = {0};
    const char *missing = path_in(dir, "nope/x.txt");
    ck_assert_int_eq(kmq_fsx_write_all(missing, "x", 1, false, &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope"));
    ck_assert_ptr_nonnull(strstr(err.msg, "No such file"));

    const char *blocker = path_in(dir, "taken");
    ck_assert_int_eq(mkdir(blocker, 0755), 0);
    tu_write_file(path_in(blocker, "inside"), "y", 1);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_write_all(blocker, "x", 1, true, &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "taken"));
    ck_assert_int_eq(count_temporaries(dir), 0);
    ck_assert_int_eq(count_entries(dir), 1); /* just the blocker */

    kmq_err_clear(&err);
    kmq_fsx_file f = {0};
    ck_assert_int_eq(kmq_fsx_create(path_in(dir, "trailing/"), &f, &err), KMQ_E_WRITE);
    ck_assert_ptr_null(f.fp);
}
END_TEST

/* A write that does not fit a 64 KiB tmpfs: KMQ_E_WRITE from commit (or the
 * write) with the system's message, and neither file nor temporary left.
 * Needs root for mount; skipped cleanly otherwise. */
START_TEST(full_disk)
{
    const char *dir = tu_fresh_dir("fsx_full");
    char mnt[4096];
    snprintf(mnt, sizeof mnt, "%s", dir);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        fprintf(stderr, "full_disk: skipped (cannot mount a tmpfs: %s)\n", strerror(errno));
        return;
    }
    size_t big = 1 << 20;
    char *data = malloc(big);
    ck_assert_ptr_nonnull(data);
    memset(data, 'z', big);
    kmq_err err = {0};
    const char *final = path_in(mnt, "big.bin");
    kmq_status status = kmq_fsx_write_all(final, data, big, false, &err);
    int entries = count_entries(mnt);
    bool final_exists = exists(final);

    /* A small file still fits, through create + commit. */
    kmq_err err2 = {0};
    kmq_status small = kmq_fsx_write_all(path_in(mnt, "small.txt"), "ok", 2, true, &err2);
    int entries_after = count_entries(mnt);
    umount(mnt);
    free(data);

    ck_assert_int_eq(status, KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "No space left"));
    ck_assert_ptr_nonnull(strstr(err.msg, "big.bin"));
    ck_assert(!final_exists);
    ck_assert_int_eq(entries, 0);
    ck_assert_int_eq(small, KMQ_OK);
    ck_assert_int_eq(entries_after, 1);
}
END_TEST

START_TEST(read_all_errors)
{
    const char *dir = tu_fresh_dir("fsx_read");
    kmq_err err = {0};
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(kmq_fsx_read_all(path_in(dir, "missing"), 10, &data, &len, &err),
                     KMQ_E_NOT_FOUND);
    ck_assert_ptr_null(data);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_read_all(dir, 10, &data, &len, &err), KMQ_E_UNREADABLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "folder"));
    tu_write_file(path_in(dir, "ten"), "0123456789", 10);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_read_all(path_in(dir, "ten"), 9, &data, &len, &err), KMQ_E_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "10 bytes"));
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_read_all(path_in(dir, "ten"), 10, &data, &len, &err), KMQ_OK);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(data, "0123456789");
    free(data);
}
END_TEST

START_TEST(mkdirs_creates)
{
    const char *dir = tu_fresh_dir("fsx_mkdirs");
    char root[4096];
    snprintf(root, sizeof root, "%s/out/run", dir);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "job/a/b.png", &err), KMQ_OK);
    struct stat st;
    ck_assert_int_eq(stat(path_in(root, "job/a/b.png"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "job/a/b.png", &err), KMQ_OK); /* idempotent */
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "", &err), KMQ_OK);
    ck_assert_int_eq(kmq_fsx_mkdirs(root, NULL, &err), KMQ_OK);
}
END_TEST

/* A symlink planted in the output tree (to a folder outside it) is refused,
 * and nothing is created through it; so are a file in place of a folder
 * and a '..' component. */
START_TEST(mkdirs_refuses_symlink)
{
    const char *dir = tu_fresh_dir("fsx_symlink");
    char root[4096], outside[4096];
    snprintf(root, sizeof root, "%s/root", dir);
    snprintf(outside, sizeof outside, "%s/outside", dir);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    ck_assert_int_eq(mkdir(path_in(root, "job"), 0755), 0);
    ck_assert_int_eq(symlink(outside, path_in(root, "job/img")), 0);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "job/img/sub", &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "symlink"));
    ck_assert_ptr_nonnull(strstr(err.msg, "'img'"));
    ck_assert_int_eq(count_entries(outside), 0);

    /* Also as the very first component and as the last one. */
    ck_assert_int_eq(symlink(outside, path_in(root, "link")), 0);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "link", &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "symlink"));
    ck_assert_int_eq(count_entries(outside), 0);

    tu_write_file(path_in(root, "file"), "x", 1);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "file/sub", &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a folder"));

    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_fsx_mkdirs(root, "job/../../escape", &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, ".."));
    ck_assert(!exists(path_in(dir, "escape")));
}
END_TEST

static void expect_safe(const char *in, const char *want)
{
    char *got = kmq_fsx_safe_relpath(in);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strcmp(got, want) == 0, "safe_relpath(\"%s\") = \"%s\", want \"%s\"", in, got,
                  want);
    free(got);
}

START_TEST(safe_relpath_cases)
{
    expect_safe("photos/cat.jpg", "photos/cat.jpg");
    expect_safe("a/../b", "a/%2E./b");
    expect_safe("..", "%2E.");
    expect_safe("../../etc/passwd", "%2E./%2E./etc/passwd");
    expect_safe("/abs/x", "abs/x");
    expect_safe("a//b/./c/", "a/b/c");
    expect_safe(".hidden", "%2Ehidden");
    expect_safe("dir/.git/x", "dir/%2Egit/x");
    expect_safe("new\nline", "new%0Aline");
    expect_safe("tab\there\x7f", "tab%09here%7F");
    expect_safe("100%.png", "100%25.png");
    expect_safe("my photo (1).png", "my photo (1).png");
    expect_safe("\xc3\xbcmlaut.png", "\xc3\xbcmlaut.png");                       /* ümlaut kept */
    expect_safe("\xe6\x97\xa5\xe6\x9c\xac.jpg", "\xe6\x97\xa5\xe6\x9c\xac.jpg"); /* 日本 */
    expect_safe("bad\xff\xfe.png", "bad%FF%FE.png");                             /* invalid bytes */
    expect_safe("cut\xc3", "cut%C3");                             /* truncated sequence */
    expect_safe("over\xc0\xaflong", "over%C0%AFlong");            /* overlong '/' */
    expect_safe("rtl\xe2\x80\xaegpj.exe", "rtl%E2%80%AEgpj.exe"); /* bidi override */
    expect_safe("", "");
    expect_safe(".", "");
    expect_safe("name.", "name.");
    /* Distinct inputs stay distinct. */
    char *a = kmq_fsx_safe_relpath("%2E.");
    char *b = kmq_fsx_safe_relpath("..");
    ck_assert_str_ne(a, b);
    free(a);
    free(b);
}
END_TEST

/* A name of at most 255 bytes can need three times as many once escaped:
 * such a component is cut and ends in "%~" and 16 hex digits of a hash of
 * its bytes, so it still fits in a folder name and stays distinct. */
START_TEST(safe_relpath_long_names)
{
    char e85[86], e86[87], ascii[256], a[256], b[256], want[300];
    memset(e85, 0xe9, 85);
    e85[85] = '\0';
    memset(e86, 0xe9, 86);
    e86[86] = '\0';
    memset(ascii, 'x', 255);
    ascii[255] = '\0';
    memset(a, 0xe9, 250);
    memcpy(a + 250, "1.png", 6);
    memcpy(b, a, sizeof b);
    b[250] = '2';

    /* 255 bytes once escaped, or plain ASCII of 255 bytes: unchanged. */
    want[0] = '\0';
    for (int i = 0; i < 85; i++)
        strcat(want, "%E9");
    expect_safe(e85, want);
    expect_safe(ascii, ascii);

    const char *cut_inputs[] = {e86, a, b};
    char *cut[3];
    for (int i = 0; i < 3; i++) {
        cut[i] = kmq_fsx_safe_relpath(cut_inputs[i]);
        ck_assert_ptr_nonnull(cut[i]);
        size_t len = strlen(cut[i]);
        ck_assert_uint_le(len, 255);
        ck_assert_uint_gt(len, 18);
        const char *tail = cut[i] + len - 18;
        ck_assert_msg(tail[0] == '%' && tail[1] == '~', "no hash suffix in \"%s\"", cut[i]);
        for (int j = 2; j < 18; j++)
            ck_assert(strchr("0123456789abcdef", tail[j]) != NULL);
        /* Whole escapes before the suffix. */
        ck_assert_int_eq(strncmp(cut[i], want, (size_t)(tail - cut[i])), 0);
        ck_assert_uint_eq((size_t)(tail - cut[i]) % 3, 0);
    }
    ck_assert_str_ne(cut[1], cut[2]);
    ck_assert_str_ne(cut[0], cut[1]);
    /* The same cut in a deeper path, and a path of two long components. */
    char path[600], deep_want[600];
    snprintf(path, sizeof path, "dir/%s/%s", a, b);
    char *deep = kmq_fsx_safe_relpath(path);
    ck_assert_ptr_nonnull(deep);
    snprintf(deep_want, sizeof deep_want, "dir/%s/%s", cut[1], cut[2]);
    ck_assert_str_eq(deep, deep_want);
    free(deep);
    for (int i = 0; i < 3; i++)
        free(cut[i]);
}
END_TEST

START_TEST(join_cases)
{
    const char *cases[][3] = {
        {"a", "b", "a/b"}, {"a/", "b", "a/b"}, {"a//", "/b", "a/b"},       {"", "b", "b"},
        {"/", "b", "/b"},  {"a", "", "a"},     {"/x/y", "z/w", "/x/y/z/w"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = kmq_fsx_join(cases[i][0], cases[i][1]);
        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, cases[i][2]);
        free(got);
    }
}
END_TEST

/* Every allocation of write_all, read_all, mkdirs and safe_relpath can
 * fail: each failure is a clean KMQ_E_NOMEM (or NULL), leaves no file or
 * temporary, and ASan sees no leak. */
START_TEST(alloc_failure_sweep)
{
    const char *dir = tu_fresh_dir("fsx_alloc");
    const char *final = path_in(dir, "f.txt");
    kmq_status status = KMQ_E_NOMEM;
    long n;
    for (n = 0; n < 100 && status != KMQ_OK; n++) {
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        status = kmq_fsx_write_all(final, "abc", 3, false, &err);
        kmq_alloc_fail_after(-1);
        if (status != KMQ_OK) {
            ck_assert_int_eq(status, KMQ_E_NOMEM);
            ck_assert_int_eq(count_entries(dir), 0);
        }
    }
    ck_assert_int_eq(status, KMQ_OK);
    ck_assert_int_gt(n, 1);

    status = KMQ_E_NOMEM;
    for (n = 0; n < 100 && status != KMQ_OK; n++) {
        kmq_err err = {0};
        char *data = NULL;
        size_t len = 0;
        kmq_alloc_fail_after(n);
        status = kmq_fsx_read_all(final, 100, &data, &len, &err);
        kmq_alloc_fail_after(-1);
        if (status == KMQ_OK)
            free(data);
        else
            ck_assert_int_eq(status, KMQ_E_NOMEM);
    }
    ck_assert_int_eq(status, KMQ_OK);

    status = KMQ_E_NOMEM;
    for (n = 0; n < 100 && status != KMQ_OK; n++) {
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        status = kmq_fsx_mkdirs(path_in(dir, "r"), "a/b", &err);
        kmq_alloc_fail_after(-1);
        if (status != KMQ_OK)
            ck_assert_int_eq(status, KMQ_E_NOMEM);
    }
    ck_assert_int_eq(status, KMQ_OK);

    kmq_alloc_fail_after(0);
    ck_assert_ptr_null(kmq_fsx_safe_relpath("x"));
    kmq_alloc_fail_after(0);
    ck_assert_ptr_null(kmq_fsx_join("a", "b"));
    kmq_alloc_fail_after(-1);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"commit_is_atomic", commit_is_atomic},
        {"commit_replaces", commit_replaces},
        {"abort_leaves_nothing", abort_leaves_nothing},
        {"write_all_roundtrip", write_all_roundtrip},
        {"write_failures_leave_nothing", write_failures_leave_nothing},
        {"full_disk", full_disk},
        {"read_all_errors", read_all_errors},
        {"mkdirs_creates", mkdirs_creates},
        {"mkdirs_refuses_symlink", mkdirs_refuses_symlink},
        {"safe_relpath_cases", safe_relpath_cases},
        {"safe_relpath_long_names", safe_relpath_long_names},
        {"join_cases", join_cases},
        {"alloc_failure_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("fsx");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
