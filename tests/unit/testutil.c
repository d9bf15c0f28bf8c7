/* testutil.c — helpers shared by the Check unit tests. */
#include "testutil.h"

#include <check.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

kmq_hist *tu_hist_of(const uint8_t *rgb, size_t npix)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *h = NULL;
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_add_rgb(h, rgb, npix, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK);
    return h;
}

kmq_hist *tu_photo_hist(const char *name)
{
    uint32_t w, h;
    uint8_t *rgb = tu_png_decode_rgb(tu_photo(name), &w, &h);
    ck_assert_msg(rgb != NULL, "cannot decode %s", name);
    kmq_hist *hist = tu_hist_of(rgb, (size_t)w * h);
    free(rgb);
    return hist;
}

void tu_rm_rf(const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        ck_abort_msg("cannot remove %s", path);
}

const char *tu_fresh_dir(const char *name)
{
    static char path[4096];
    mkdir(KMQ_TEST_TMP, 0755);
    snprintf(path, sizeof path, "%s/%s", KMQ_TEST_TMP, name);
    tu_rm_rf(path);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    return path;
}

const char *tu_photo(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", KMQ_PHOTOS, name);
    return path;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_msg(fp != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    buf[size] = 0;
    *len = (size_t)size;
    return buf;
}

static uint8_t *png_decode(const char *path, png_uint_32 format, uint32_t *width, uint32_t *height)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path))
        return NULL;
    image.format = format;
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!pixels || !png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        free(pixels);
        png_image_free(&image);
        return NULL;
    }
    *width = image.width;
    *height = image.height;
    return pixels;
}

uint8_t *tu_png_decode_rgb(const char *path, uint32_t *width, uint32_t *height)
{
    return png_decode(path, PNG_FORMAT_RGB, width, height);
}

uint8_t *tu_png_decode_rgba(const char *path, uint32_t *width, uint32_t *height)
{
    return png_decode(path, PNG_FORMAT_RGBA, width, height);
}

void tu_add_cases(Suite *s, const tu_case *cases, size_t n, double timeout_s, SFun setup)
{
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(cases[i].name);
        if (setup)
            tcase_add_checked_fixture(tc, setup, NULL);
        if (timeout_s > 0)
            tcase_set_timeout(tc, timeout_s);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

size_t tu_nearest_centre(const uint8_t *px, const double *centres, size_t k, double *d2)
{
    size_t best = 0;
    double bd = 0;
    for (size_t j = 0; j < k; j++) {
        double dr = px[0] - centres[3 * j], dg = px[1] - centres[3 * j + 1],
               db = px[2] - centres[3 * j + 2];
        double d = dr * dr + dg * dg + db * db;
        if (j == 0 || d < bd) {
            bd = d;
            best = j;
        }
    }
    *d2 = bd;
    return best;
}
