/* test_image.c — open, normalise and stream images (image_vips.c).
 *
 * Fixtures are made at run time from the bundled photos with the libvips C
 * API (or by hand, for broken and oversized files). References are
 * independent of the module under test wherever possible: libpng's
 * simplified reader, a plain libvips load without our pipeline, or the
 * source pixels a lossless file was written from.
 */
#include "kmq/alloc_hook.h"
#include "kmq/image.h"
#include "kmq/pngout.h"
#include "testutil.h"

#include <vips/vips.h>

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t WHITE[3] = {255, 255, 255};

static void setup(void)
{
    kmq_err err = {0};
    ck_assert_msg(kmq_image_lib_init("test_image", 2, &err) == KMQ_OK, "%s", err.msg);
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < size);
}

static kmq_image_opts opts_for(kmq_image_mode mode, const uint8_t bg[3])
{
    kmq_image_opts opts;
    memset(&opts, 0, sizeof opts);
    memcpy(opts.background, bg, 3);
    opts.max_pixels = 0;
    opts.mode = mode;
    return opts;
}

/* One full pass: returns malloc'd rows (width * height * 3), checking the
 * strip contract on the way (full strips but the last, 0 at the end). */
static uint8_t *read_pass(kmq_image *img)
{
    const kmq_image_info *info = kmq_image_get_info(img);
    uint32_t strip = kmq_image_strip_rows(img);
    ck_assert_uint_ge(strip, 1);
    size_t row_bytes = (size_t)info->width * 3;
    uint8_t *rows = malloc(row_bytes * info->height + 1);
    uint8_t *buf = malloc(row_bytes * strip);
    ck_assert(rows && buf);
    kmq_err err = {0};
    ck_assert_msg(kmq_image_rewind(img, &err) == KMQ_OK, "%s", err.msg);
    uint32_t y = 0;
    for (;;) {
        uint32_t n = 0;
        ck_assert_msg(kmq_image_read_strip(img, buf, &n, &err) == KMQ_OK, "%s", err.msg);
        if (n == 0)
            break;
        ck_assert_uint_le(n, strip);
        ck_assert_uint_le(y + n, info->height);
        if (y + n < info->height)
            ck_assert_uint_eq(n, strip);
        memcpy(rows + (size_t)y * row_bytes, buf, (size_t)n * row_bytes);
        y += n;
    }
    ck_assert_uint_eq(y, info->height);
    uint32_t n = 99;
    ck_assert_int_eq(kmq_image_read_strip(img, buf, &n, &err), KMQ_OK); /* stays at the end */
    ck_assert_uint_eq(n, 0);
    free(buf);
    return rows;
}

/* Opens `path` in `mode`, reads `passes` passes that must be identical, and
 * returns the rows of the first. */
static uint8_t *decode(const char *path, kmq_image_mode mode, const uint8_t bg[3], int passes,
                       kmq_image_info *info)
{
    kmq_image_opts opts = opts_for(mode, bg);
    kmq_image *img = NULL;
    kmq_err err = {0};
    ck_assert_msg(kmq_image_open(path, &opts, &img, &err) == KMQ_OK, "%s: %s", path, err.msg);
    *info = *kmq_image_get_info(img);
    uint8_t *first = read_pass(img);
    for (int p = 1; p < passes; p++) {
        uint8_t *again = read_pass(img);
        ck_assert_msg(memcmp(first, again, (size_t)info->pixels * 3) == 0, "%s: pass %d differs",
                      path, p + 1);
        free(again);
    }
    kmq_image_free(img);
    return first;
}

/* Rows streamed, whole, and auto (two passes each) are identical; returns
 * them. The core property of every input kind. */
static uint8_t *decode_all_modes(const char *path, const uint8_t bg[3], kmq_image_info *info)
{
    kmq_image_info whole_info, auto_info;
    uint8_t *streamed = decode(path, KMQ_IMAGE_STREAM, bg, 2, info);
    uint8_t *whole = decode(path, KMQ_IMAGE_WHOLE, bg, 3, &whole_info);
    uint8_t *automatic = decode(path, KMQ_IMAGE_AUTO, bg, 2, &auto_info);
    size_t bytes = (size_t)info->pixels * 3;
    ck_assert_uint_eq(whole_info.pixels, info->pixels);
    ck_assert_msg(memcmp(streamed, whole, bytes) == 0, "%s: stream != whole", path);
    ck_assert_msg(memcmp(streamed, automatic, bytes) == 0, "%s: stream != auto", path);
    free(whole);
    free(automatic);
    return streamed;
}

/* A plain libvips load (no colour handling, no ICC): interleaved bands. */
static uint8_t *plain_vips(const char *path, int *width, int *height, int *bands)
{
    VipsImage *im = vips_image_new_from_file(path, NULL);
    ck_assert_msg(im != NULL, "%s", vips_error_buffer());
    ck_assert_int_eq(im->BandFmt, VIPS_FORMAT_UCHAR);
    size_t size = 0;
    void *mem = vips_image_write_to_memory(im, &size);
    ck_assert_ptr_nonnull(mem);
    *width = im->Xsize;
    *height = im->Ysize;
    *bands = im->Bands;
    uint8_t *copy = malloc(size);
    memcpy(copy, mem, size);
    g_free(mem);
    g_object_unref(im);
    return copy;
}

/* An odd-sized crop of coffee.png spanning several strips: the source of
 * the generated fixtures. Caller unrefs. */
static VipsImage *coffee_crop(void)
{
    VipsImage *full = vips_image_new_from_file(tu_photo("coffee.png"), NULL);
    ck_assert_ptr_nonnull(full);
    VipsImage *crop = NULL;
    ck_assert_int_eq(vips_crop(full, &crop, 101, 77, 203, 131, NULL), 0);
    VipsImage *copy = vips_image_copy_memory(crop);
    ck_assert_ptr_nonnull(copy);
    g_object_unref(crop);
    g_object_unref(full);
    return copy;
}

static uint8_t *image_bytes(VipsImage *im)
{
    size_t size = 0;
    void *mem = vips_image_write_to_memory(im, &size);
    ck_assert_ptr_nonnull(mem);
    uint8_t *copy = malloc(size);
    memcpy(copy, mem, size);
    g_free(mem);
    return copy;
}

/* im * 257 as 16-bit with interpretation `space` (v * 257 >> 8 == v). */
static VipsImage *to_16bit(VipsImage *im, VipsInterpretation space)
{
    VipsImage *scaled = NULL, *cast = NULL, *out = NULL;
    ck_assert_int_eq(vips_linear1(im, &scaled, 257.0, 0.0, NULL), 0);
    ck_assert_int_eq(vips_cast(scaled, &cast, VIPS_FORMAT_USHORT, NULL), 0);
    ck_assert_int_eq(vips_copy(cast, &out, "interpretation", space, NULL), 0);
    g_object_unref(scaled);
    g_object_unref(cast);
    return out;
}

static void expect_rows(const uint8_t *got, const uint8_t *want, const kmq_image_info *info,
                        const char *what)
{
    for (size_t i = 0; i < (size_t)info->pixels * 3; i++)
        if (got[i] != want[i])
            ck_abort_msg("%s: byte %zu (pixel %zu, %zu) is %u, want %u", what, i,
                         (i / 3) % info->width, (i / 3) / info->width, got[i], want[i]);
}

/* coffee.png: our rows equal libpng's decode exactly; header facts. */
START_TEST(coffee_matches_libpng)
{
    const char *path = tu_photo("coffee.png");
    kmq_image_info info;
    uint8_t *rows = decode_all_modes(path, WHITE, &info);
    uint32_t w = 0, h = 0;
    uint8_t *ref = tu_png_decode_rgb(path, &w, &h);
    ck_assert_ptr_nonnull(ref);
    ck_assert_uint_eq(info.width, w);
    ck_assert_uint_eq(info.height, h);
    ck_assert_uint_eq(info.pixels, (uint64_t)w * h);
    ck_assert_int_eq(info.bands, 3);
    ck_assert_str_eq(info.format, "png");
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(info.bytes, (uint64_t)st.st_size);
    expect_rows(rows, ref, &info, "coffee.png");
    free(ref);
    free(rows);
}
END_TEST

/* china.jpg carries an ICC profile: it must not be applied, so our rows
 * equal a plain libvips decode (what `vips copy` and Pillow give). */
START_TEST(china_jpeg_plain_decode)
{
    const char *path = tu_photo("china.jpg");
    kmq_image_info info;
    uint8_t *rows = decode_all_modes(path, WHITE, &info);
    ck_assert_str_eq(info.format, "jpeg");
    int w, h, bands;
    uint8_t *ref = plain_vips(path, &w, &h, &bands);
    ck_assert_int_eq(bands, 3);
    ck_assert_uint_eq(info.width, (uint32_t)w);
    ck_assert_uint_eq(info.height, (uint32_t)h);
    expect_rows(rows, ref, &info, "china.jpg");
    free(ref);
    free(rows);
}
END_TEST

/* Lossless fixtures written from the coffee crop decode back to exactly
 * the crop's pixels, in every mode. */
static void check_lossless(const char *name, const char *format, int bands)
{
    const char *dir = tu_fresh_dir(name);
    char path[4096];
    VipsImage *crop = coffee_crop();
    uint8_t *want = image_bytes(crop);
    int rc = -1;
    VipsImage *extra = NULL;
    if (strcmp(name, "png8") == 0) {
        path_in(path, sizeof path, dir, "x.png");
        rc = vips_pngsave(crop, path, NULL);
    } else if (strcmp(name, "png16") == 0) {
        path_in(path, sizeof path, dir, "x16.png");
        extra = to_16bit(crop, VIPS_INTERPRETATION_RGB16);
        rc = vips_pngsave(extra, path, NULL);
    } else if (strcmp(name, "tiff_strip") == 0) {
        path_in(path, sizeof path, dir, "x.tif");
        rc = vips_tiffsave(crop, path, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, NULL);
    } else if (strcmp(name, "tiff_tiled") == 0) {
        path_in(path, sizeof path, dir, "x.tiff");
        rc = vips_tiffsave(crop, path, "tile", TRUE, "tile_width", 64, "tile_height", 48, NULL);
    } else if (strcmp(name, "tiff16") == 0) {
        path_in(path, sizeof path, dir, "x16.tif");
        extra = to_16bit(crop, VIPS_INTERPRETATION_RGB16);
        rc = vips_tiffsave(extra, path, NULL);
    } else if (strcmp(name, "webp_lossless") == 0) {
        path_in(path, sizeof path, dir, "x.webp");
        rc = vips_webpsave(crop, path, "lossless", TRUE, NULL);
    } else if (strcmp(name, "vips_native") == 0) {
        path_in(path, sizeof path, dir, "x.v");
        rc = vips_image_write_to_file(crop, path, NULL);
    }
    ck_assert_msg(rc == 0, "cannot write fixture %s: %s", name, vips_error_buffer());

    kmq_image_info info;
    uint8_t *rows = decode_all_modes(path, WHITE, &info);
    ck_assert_str_eq(info.format, format);
    ck_assert_int_eq(info.bands, bands);
    ck_assert_uint_eq(info.width, 203);
    ck_assert_uint_eq(info.height, 131);
    expect_rows(rows, want, &info, name);
    free(rows);
    free(want);
    if (extra)
        g_object_unref(extra);
    g_object_unref(crop);
}

START_TEST(png_8bit_rgb)
{
    check_lossless("png8", "png", 3);
}
END_TEST

START_TEST(png_16bit_rgb)
{
    check_lossless("png16", "png", 3);
}
END_TEST

START_TEST(tiff_strip)
{
    check_lossless("tiff_strip", "tiff", 3);
}
END_TEST

START_TEST(tiff_tiled)
{
    check_lossless("tiff_tiled", "tiff", 3);
}
END_TEST

START_TEST(tiff_16bit)
{
    check_lossless("tiff16", "tiff", 3);
}
END_TEST

START_TEST(webp_lossless)
{
    check_lossless("webp_lossless", "webp", 3);
}
END_TEST

START_TEST(vips_native)
{
    check_lossless("vips_native", "vips", 3);
}
END_TEST

/* Palette PNGs at 4 and 8 bits (written by our pngout, checked
 * independently by test_pngout): rows equal libpng's decode. */
START_TEST(png_palette)
{
    const char *dir = tu_fresh_dir("png_palette");
    static const size_t ks[] = {2, 5, 200};
    for (size_t ki = 0; ki < 3; ki++) {
        size_t k = ks[ki];
        char path[4096], name[32];
        snprintf(name, sizeof name, "pal%zu.png", k);
        path_in(path, sizeof path, dir, name);
        uint8_t pal[256 * 3];
        for (size_t i = 0; i < k; i++) {
            pal[3 * i] = (uint8_t)(i * 37);
            pal[3 * i + 1] = (uint8_t)(255 - i);
            pal[3 * i + 2] = (uint8_t)(i * 11 + 5);
        }
        kmq_png *png = NULL;
        kmq_err err = {0};
        const uint32_t width = 77, height = 70;
        ck_assert_int_eq(kmq_png_open_indexed(path, width, height, pal, k, &png, &err), KMQ_OK);
        uint8_t row[77];
        for (uint32_t y = 0; y < height; y++) {
            for (uint32_t x = 0; x < width; x++)
                row[x] = (uint8_t)((x * 7 + y * 3 + x * y) % k);
            ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
        }
        uint64_t bytes = 0;
        ck_assert_int_eq(kmq_png_close(png, &bytes, &err), KMQ_OK);

        kmq_image_info info;
        uint8_t *rows = decode_all_modes(path, WHITE, &info);
        uint32_t w = 0, h = 0;
        uint8_t *ref = tu_png_decode_rgb(path, &w, &h);
        ck_assert_ptr_nonnull(ref);
        ck_assert_str_eq(info.format, "png");
        expect_rows(rows, ref, &info, name);
        free(ref);
        free(rows);
    }
}
END_TEST

/* 8- and 16-bit greyscale: replicated to R = G = B = the grey value. */
START_TEST(greyscale)
{
    const char *dir = tu_fresh_dir("grey");
    VipsImage *crop = coffee_crop();
    VipsImage *grey = NULL;
    ck_assert_int_eq(vips_colourspace(crop, &grey, VIPS_INTERPRETATION_B_W, NULL), 0);
    ck_assert_int_eq(grey->Bands, 1);
    uint8_t *want = image_bytes(grey);
    char path8[4096], path16[4096];
    path_in(path8, sizeof path8, dir, "g8.png");
    path_in(path16, sizeof path16, dir, "g16.png");
    ck_assert_int_eq(vips_pngsave(grey, path8, NULL), 0);
    VipsImage *grey16 = to_16bit(grey, VIPS_INTERPRETATION_GREY16);
    ck_assert_int_eq(vips_pngsave(grey16, path16, NULL), 0);

    const char *paths[2] = {path8, path16};
    for (int i = 0; i < 2; i++) {
        kmq_image_info info;
        uint8_t *rows = decode_all_modes(paths[i], WHITE, &info);
        ck_assert_int_eq(info.bands, 1);
        for (size_t p = 0; p < info.pixels; p++)
            for (int c = 0; c < 3; c++)
                ck_assert_msg(rows[3 * p + (size_t)c] == want[p], "%s pixel %zu channel %d",
                              paths[i], p, c);
        if (i == 0) { /* and libpng agrees */
            uint32_t w = 0, h = 0;
            uint8_t *ref = tu_png_decode_rgb(paths[i], &w, &h);
            expect_rows(rows, ref, &info, "g8.png");
            free(ref);
        }
        free(rows);
    }
    free(want);
    g_object_unref(grey16);
    g_object_unref(grey);
    g_object_unref(crop);
}
END_TEST

/* Flattening follows round(a*c + (1-a)*bg) within 1, per channel. */
static void expect_flattened(const uint8_t *rows, const uint8_t *rgba, size_t pixels,
                             const uint8_t bg[3], const char *what)
{
    for (size_t p = 0; p < pixels; p++) {
        double a = rgba[4 * p + 3] / 255.0;
        for (int c = 0; c < 3; c++) {
            double want = a * rgba[4 * p + (size_t)c] + (1.0 - a) * bg[c];
            double got = rows[3 * p + (size_t)c];
            ck_assert_msg(got >= want - 1.0 && got <= want + 1.0,
                          "%s: pixel %zu channel %d: got %.0f, want %.2f (alpha %u)", what, p, c,
                          got, want, rgba[4 * p + 3]);
        }
    }
}

/* chelsea_alpha.png onto white and onto black: identical where alpha is
 * 255, different where it is 0, both match the formula within 1. */
START_TEST(alpha_flatten)
{
    const char *path = tu_photo("chelsea_alpha.png");
    const uint8_t black[3] = {0, 0, 0};
    kmq_image_info info;
    uint8_t *on_white = decode_all_modes(path, WHITE, &info);
    uint8_t *on_black = decode_all_modes(path, black, &info);
    ck_assert_int_eq(info.bands, 4);
    uint32_t w = 0, h = 0;
    uint8_t *rgba = tu_png_decode_rgba(path, &w, &h);
    ck_assert_ptr_nonnull(rgba);
    ck_assert_uint_eq(w, info.width);
    size_t opaque = 0, transparent = 0, partial = 0;
    for (size_t p = 0; p < info.pixels; p++) {
        uint8_t a = rgba[4 * p + 3];
        if (a == 255) {
            opaque++;
            ck_assert_mem_eq(on_white + 3 * p, on_black + 3 * p, 3);
            ck_assert_mem_eq(on_white + 3 * p, rgba + 4 * p, 3);
        } else if (a == 0) {
            transparent++;
            ck_assert_mem_eq(on_white + 3 * p, WHITE, 3);
            ck_assert_mem_eq(on_black + 3 * p, black, 3);
        } else {
            partial++;
        }
    }
    ck_assert_uint_gt(opaque, 0);
    ck_assert_uint_gt(transparent + partial, 0);
    expect_flattened(on_white, rgba, info.pixels, WHITE, "onto white");
    expect_flattened(on_black, rgba, info.pixels, black, "onto black");
    free(rgba);
    free(on_white);
    free(on_black);
}
END_TEST

/* 16-bit RGBA PNG (colour and alpha * 257, alpha a gradient): alpha is
 * brought to the 8-bit scale before flattening, so the result matches the
 * formula on the 8-bit values within 1, on a non-grey background. */
START_TEST(alpha_16bit)
{
    const char *dir = tu_fresh_dir("alpha16");
    VipsImage *crop = coffee_crop();
    VipsImage *ramp = NULL, *ramp8 = NULL, *rgba = NULL;
    /* alpha = x * 255 / (width - 1): 0 at the left edge, 255 at the right */
    ck_assert_int_eq(vips_xyz(&ramp, crop->Xsize, crop->Ysize, NULL), 0);
    VipsImage *x = NULL, *scaled = NULL;
    ck_assert_int_eq(vips_extract_band(ramp, &x, 0, NULL), 0);
    ck_assert_int_eq(vips_linear1(x, &scaled, 255.0 / (crop->Xsize - 1), 0.0, NULL), 0);
    ck_assert_int_eq(vips_cast_uchar(scaled, &ramp8, NULL), 0);
    VipsImage *parts[2] = {crop, ramp8};
    ck_assert_int_eq(vips_bandjoin(parts, &rgba, 2, NULL), 0);
    VipsImage *rgba_mem = vips_image_copy_memory(rgba);
    uint8_t *want_rgba = image_bytes(rgba_mem);
    VipsImage *rgba16 = to_16bit(rgba_mem, VIPS_INTERPRETATION_RGB16);
    char path[4096];
    path_in(path, sizeof path, dir, "rgba16.png");
    ck_assert_msg(vips_pngsave(rgba16, path, NULL) == 0, "%s", vips_error_buffer());

    const uint8_t bg[3] = {10, 200, 30};
    kmq_image_info info;
    uint8_t *rows = decode_all_modes(path, bg, &info);
    ck_assert_int_eq(info.bands, 4);
    expect_flattened(rows, want_rgba, info.pixels, bg, "16-bit RGBA");
    /* Left edge fully transparent: exactly the background. */
    ck_assert_mem_eq(rows, bg, 3);
    free(rows);
    free(want_rgba);
    g_object_unref(rgba16);
    g_object_unref(rgba_mem);
    g_object_unref(rgba);
    g_object_unref(parts[1]);
    g_object_unref(scaled);
    g_object_unref(x);
    g_object_unref(ramp);
    g_object_unref(crop);
}
END_TEST

/* A CMYK TIFF (made with libvips' CMYK profile, or by formula when lcms is
 * missing): converts to 3-band sRGB close to the original colours. */
START_TEST(cmyk)
{
    const char *dir = tu_fresh_dir("cmyk");
    VipsImage *crop = coffee_crop();
    VipsImage *c = NULL;
    if (vips_icc_export(crop, &c, "output_profile", "cmyk", NULL) != 0) {
        vips_error_clear();
        VipsImage *inv = NULL, *k = NULL, *joined = NULL;
        ck_assert_int_eq(vips_invert(crop, &inv, NULL), 0);
        ck_assert_int_eq(vips_black(&k, crop->Xsize, crop->Ysize, NULL), 0);
        VipsImage *k8 = NULL;
        ck_assert_int_eq(vips_cast_uchar(k, &k8, NULL), 0);
        VipsImage *parts[2] = {inv, k8};
        ck_assert_int_eq(vips_bandjoin(parts, &joined, 2, NULL), 0);
        ck_assert_int_eq(vips_copy(joined, &c, "interpretation", VIPS_INTERPRETATION_CMYK, NULL),
                         0);
        g_object_unref(inv);
        g_object_unref(k);
        g_object_unref(k8);
        g_object_unref(joined);
    }
    char path[4096];
    path_in(path, sizeof path, dir, "cmyk.tif");
    ck_assert_msg(vips_tiffsave(c, path, NULL) == 0, "%s", vips_error_buffer());

    kmq_image_info info;
    uint8_t *rows = decode_all_modes(path, WHITE, &info);
    ck_assert_int_eq(info.bands, 4);
    ck_assert_str_eq(info.format, "tiff");
    uint8_t *orig = image_bytes(crop);
    double diff = 0.0;
    for (size_t i = 0; i < (size_t)info.pixels * 3; i++)
        diff += abs((int)rows[i] - (int)orig[i]);
    diff /= (double)info.pixels * 3;
    ck_assert_msg(diff < 40.0, "mean abs difference %.1f from the RGB original", diff);
    free(orig);
    free(rows);
    g_object_unref(c);
    g_object_unref(crop);
}
END_TEST

/* Opening and reading the image a second time from the middle of a pass:
 * the rewind starts over and gives the same rows. */
START_TEST(rewind_mid_pass)
{
    const char *path = tu_photo("astronaut.png");
    static const kmq_image_mode modes[] = {KMQ_IMAGE_STREAM, KMQ_IMAGE_WHOLE};
    for (int m = 0; m < 2; m++) {
        kmq_image_opts opts = opts_for(modes[m], WHITE);
        kmq_image *img = NULL;
        kmq_err err = {0};
        ck_assert_int_eq(kmq_image_open(path, &opts, &img, &err), KMQ_OK);
        const kmq_image_info *info = kmq_image_get_info(img);
        uint8_t *buf = malloc((size_t)info->width * 3 * kmq_image_strip_rows(img));
        uint32_t n = 0;
        ck_assert_int_eq(kmq_image_read_strip(img, buf, &n, &err), KMQ_E_ARG); /* no rewind */
        ck_assert_ptr_nonnull(strstr(err.msg, "rewind"));
        kmq_err_clear(&err);
        ck_assert_int_eq(kmq_image_rewind(img, &err), KMQ_OK);
        ck_assert_int_eq(kmq_image_read_strip(img, buf, &n, &err), KMQ_OK);
        ck_assert_int_eq(kmq_image_read_strip(img, buf, &n, &err), KMQ_OK);
        uint8_t *full = read_pass(img);
        uint8_t *again = read_pass(img);
        ck_assert_mem_eq(full, again, (size_t)info->pixels * 3);
        uint32_t w = 0, h = 0;
        uint8_t *ref = tu_png_decode_rgb(path, &w, &h);
        expect_rows(full, ref, info, "astronaut.png");
        free(ref);
        free(full);
        free(again);
        free(buf);
        kmq_image_free(img);
    }
    kmq_image_free(NULL);
}
END_TEST

/* Whole mode (and auto, for a small image) decodes once: with the file
 * deleted after the first pass, later passes still give the same rows from
 * memory, while stream mode has to reopen it and reports it missing. */
START_TEST(whole_decodes_once)
{
    const char *dir = tu_fresh_dir("whole_once");
    char path[4096];
    path_in(path, sizeof path, dir, "copy.png");
    size_t len = 0;
    unsigned char *data = tu_read_file(tu_photo("coffee.png"), &len);
    static const kmq_image_mode modes[] = {KMQ_IMAGE_WHOLE, KMQ_IMAGE_AUTO, KMQ_IMAGE_STREAM};
    for (int m = 0; m < 3; m++) {
        tu_write_file(path, data, len);
        kmq_image_opts opts = opts_for(modes[m], WHITE);
        kmq_image *img = NULL;
        kmq_err err = {0};
        ck_assert_int_eq(kmq_image_open(path, &opts, &img, &err), KMQ_OK);
        uint8_t *first = read_pass(img);
        ck_assert_int_eq(unlink(path), 0);
        if (modes[m] != KMQ_IMAGE_STREAM) {
            uint8_t *second = read_pass(img);
            ck_assert_mem_eq(first, second, (size_t)600 * 400 * 3);
            free(second);
        } else {
            ck_assert_int_eq(kmq_image_rewind(img, &err), KMQ_E_NOT_FOUND);
        }
        free(first);
        kmq_image_free(img);
    }
    free(data);
}
END_TEST

/* A lower strip height groups the rows differently and changes nothing
 * else: the same rows in every mode, at least one row a strip, never more
 * than the height chosen at open. */
START_TEST(limit_strip_rows)
{
    const char *path = tu_photo("coffee.png");
    static const kmq_image_mode modes[] = {KMQ_IMAGE_STREAM, KMQ_IMAGE_WHOLE};
    for (int m = 0; m < 2; m++) {
        kmq_image_opts opts = opts_for(modes[m], WHITE);
        kmq_image *img = NULL;
        kmq_err err = {0};
        ck_assert_int_eq(kmq_image_open(path, &opts, &img, &err), KMQ_OK);
        uint32_t full = kmq_image_strip_rows(img);
        uint8_t *ref = read_pass(img);
        kmq_image_free(img);
        static const uint32_t limits[] = {7, 1, 0, 100000};
        for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
            img = NULL;
            ck_assert_int_eq(kmq_image_open(path, &opts, &img, &err), KMQ_OK);
            uint32_t want = limits[i] < 1 ? 1 : limits[i] < full ? limits[i] : full;
            ck_assert_uint_eq(kmq_image_limit_strip_rows(img, limits[i]), want);
            ck_assert_uint_eq(kmq_image_strip_rows(img), want);
            uint8_t *rows = read_pass(img); /* checks every strip is `want` rows but the last */
            ck_assert_mem_eq(rows, ref, (size_t)600 * 400 * 3);
            uint8_t *again = read_pass(img);
            ck_assert_mem_eq(again, ref, (size_t)600 * 400 * 3);
            free(again);
            free(rows);
            kmq_image_free(img);
        }
        free(ref);
    }
}
END_TEST

/* Expects kmq_image_open(path) to fail with `code` and `substring`. */
static void expect_open_error(const char *path, uint64_t max_pixels, kmq_status code,
                              const char *substring)
{
    kmq_image_opts opts = opts_for(KMQ_IMAGE_AUTO, WHITE);
    opts.max_pixels = max_pixels;
    kmq_image *img = NULL;
    kmq_err err = {0};
    kmq_status status = kmq_image_open(path, &opts, &img, &err);
    ck_assert_msg(status == code, "%s: status %s (%s), want %s", path, kmq_status_name(status),
                  err.msg, kmq_status_name(code));
    ck_assert_ptr_null(img);
    ck_assert_msg(strstr(err.msg, substring) != NULL, "%s: message \"%s\" lacks \"%s\"", path,
                  err.msg, substring);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_int_eq(vips_error_buffer()[0], '\0'); /* libvips' log was taken and cleared */
}

/* Expects open to succeed and the pass to fail with KMQ_E_DECODE. */
static void expect_pass_error(const char *path, kmq_image_mode mode, const char *substring)
{
    kmq_image_opts opts = opts_for(mode, WHITE);
    kmq_image *img = NULL;
    kmq_err err = {0};
    ck_assert_msg(kmq_image_open(path, &opts, &img, &err) == KMQ_OK, "%s", err.msg);
    const kmq_image_info *info = kmq_image_get_info(img);
    uint8_t *buf = malloc((size_t)info->width * 3 * kmq_image_strip_rows(img));
    kmq_status status = kmq_image_rewind(img, &err);
    uint32_t rows = 0, total = 0;
    while (status == KMQ_OK) {
        status = kmq_image_read_strip(img, buf, &rows, &err);
        if (status == KMQ_OK && rows == 0)
            break;
        total += rows;
    }
    ck_assert_msg(status == KMQ_E_DECODE, "%s: pass ended with %s after %u of %u rows (%s)", path,
                  kmq_status_name(status), total, info->height, err.msg);
    ck_assert_uint_lt(total, info->height);
    ck_assert_msg(strstr(err.msg, substring) != NULL, "%s: message \"%s\" lacks \"%s\"", path,
                  err.msg, substring);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    /* The pass stays failed until a rewind. */
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_image_read_strip(img, buf, &rows, &err), KMQ_E_DECODE);
    free(buf);
    kmq_image_free(img);
}

START_TEST(error_not_found)
{
    const char *dir = tu_fresh_dir("err_missing");
    char path[4096];
    path_in(path, sizeof path, dir, "missing.png");
    expect_open_error(path, 0, KMQ_E_NOT_FOUND, "not found");
    path_in(path, sizeof path, dir, "no/folder.png");
    expect_open_error(path, 0, KMQ_E_NOT_FOUND, "not found");
}
END_TEST

START_TEST(error_folder)
{
    const char *dir = tu_fresh_dir("err_folder");
    char path[4096];
    path_in(path, sizeof path, dir, "x.png");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    expect_open_error(path, 0, KMQ_E_UNREADABLE, "folder");
}
END_TEST

START_TEST(error_permission)
{
    if (geteuid() == 0) {
        fprintf(stderr, "error_permission: skipped (root ignores file permissions)\n");
        return;
    }
    const char *dir = tu_fresh_dir("err_perm");
    char path[4096];
    path_in(path, sizeof path, dir, "locked.png");
    size_t len = 0;
    unsigned char *data = tu_read_file(tu_photo("coffee.png"), &len);
    tu_write_file(path, data, len);
    free(data);
    ck_assert_int_eq(chmod(path, 0), 0);
    expect_open_error(path, 0, KMQ_E_UNREADABLE, "Permission denied");
}
END_TEST

START_TEST(error_empty)
{
    const char *dir = tu_fresh_dir("err_empty");
    char path[4096];
    path_in(path, sizeof path, dir, "empty.jpg");
    tu_write_file(path, "", 0);
    expect_open_error(path, 0, KMQ_E_DECODE, "file is empty (0 bytes)");
}
END_TEST

START_TEST(error_not_an_image)
{
    const char *dir = tu_fresh_dir("err_random");
    char path[4096];
    path_in(path, sizeof path, dir, "noise.jpg");
    unsigned char noise[4096];
    uint32_t state = 7;
    for (size_t i = 0; i < sizeof noise; i++) {
        state = state * 1103515245u + 12345u;
        noise[i] = (unsigned char)(state >> 23);
    }
    tu_write_file(path, noise, sizeof noise);
    expect_open_error(path, 0, KMQ_E_UNSUPPORTED, "not an image format libvips can read");
    path_in(path, sizeof path, dir, "text.png");
    tu_write_file(path, "hello, world\n", 13);
    expect_open_error(path, 0, KMQ_E_UNSUPPORTED, "the file is text");
}
END_TEST

/* The first half of a file: header fine, the pass fails with
 * KMQ_E_DECODE (never grey rows), streamed and whole. */
static void check_truncated(const char *photo, const char *name, const char *substring)
{
    const char *dir = tu_fresh_dir(name);
    char path[4096];
    path_in(path, sizeof path, dir, name);
    size_t len = 0;
    unsigned char *data = tu_read_file(tu_photo(photo), &len);
    tu_write_file(path, data, len / 2);
    free(data);
    expect_pass_error(path, KMQ_IMAGE_STREAM, substring);
    expect_pass_error(path, KMQ_IMAGE_WHOLE, substring);
}

START_TEST(error_truncated_jpeg)
{
    check_truncated("china.jpg", "half.jpg", "cannot decode the image: VipsJpeg: Premature end");
}
END_TEST

START_TEST(error_truncated_png)
{
    check_truncated("coffee.png", "half.png", "cannot decode the image");
}
END_TEST

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static size_t put_chunk(unsigned char *out, const char *type, const unsigned char *data,
                        uint32_t len)
{
    out[0] = (unsigned char)(len >> 24);
    out[1] = (unsigned char)(len >> 16);
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
    memcpy(out + 4, type, 4);
    if (len > 0)
        memcpy(out + 8, data, len);
    uint32_t crc = crc32_of(out + 4, 4 + (size_t)len);
    out[8 + len] = (unsigned char)(crc >> 24);
    out[9 + len] = (unsigned char)(crc >> 16);
    out[10 + len] = (unsigned char)(crc >> 8);
    out[11 + len] = (unsigned char)crc;
    return 12 + (size_t)len;
}

/* A valid PNG header claiming 100000 x 100000 in a 60-byte file: refused
 * at open, from the header alone, with the numbers in the message. */
START_TEST(error_too_large)
{
    const char *dir = tu_fresh_dir("err_huge");
    char path[4096];
    path_in(path, sizeof path, dir, "bomb.png");
    unsigned char file[128];
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    const unsigned char ihdr[13] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0};
    const unsigned char idat[8] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    size_t n = 0;
    memcpy(file, sig, 8);
    n = 8;
    n += put_chunk(file + n, "IHDR", ihdr, 13);
    n += put_chunk(file + n, "IDAT", idat, 8);
    n += put_chunk(file + n, "IEND", NULL, 0);
    tu_write_file(path, file, n);
    expect_open_error(path, 1000000000, KMQ_E_TOO_LARGE,
                      "image is 100000 x 100000 = 1.0e10 pixels, max_pixels is 1.0e9");

    /* A real image over a small limit, and exactly at it. */
    expect_open_error(tu_photo("coffee.png"), 239999, KMQ_E_TOO_LARGE,
                      "image is 600 x 400 = 2.4e5 pixels, max_pixels is 2.4e5");
    kmq_image_opts opts = opts_for(KMQ_IMAGE_AUTO, WHITE);
    opts.max_pixels = 240000;
    kmq_image *img = NULL;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_image_open(tu_photo("coffee.png"), &opts, &img, &err), KMQ_OK);
    kmq_image_free(img);
}
END_TEST

/* Saving RGB pixels (the report's preview): a lossless format reads back
 * exactly, a lossy one keeps the size and 3 bands, a name without a known
 * extension is refused, and nothing but the files is left behind. */
START_TEST(preview)
{
    const char *dir = tu_fresh_dir("preview");
    char out[4096];
    uint32_t w = 37, h = 21;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(rgb);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        rgb[i] = (uint8_t)(i * 7 % 253);
    kmq_err err = {0};

    path_in(out, sizeof out, dir, "exact.png");
    ck_assert_msg(kmq_image_save_rgb(out, rgb, w, h, &err) == KMQ_OK, "%s", err.msg);
    uint32_t rw = 0, rh = 0;
    uint8_t *back = tu_png_decode_rgb(out, &rw, &rh);
    ck_assert_ptr_nonnull(back);
    ck_assert_uint_eq(rw, w);
    ck_assert_uint_eq(rh, h);
    ck_assert_int_eq(memcmp(back, rgb, (size_t)w * h * 3), 0);
    free(back);

    path_in(out, sizeof out, dir, "lossy.jpg");
    ck_assert_int_eq(kmq_image_save_rgb(out, rgb, w, h, &err), KMQ_OK);
    VipsImage *im = vips_image_new_from_file(out, NULL);
    ck_assert_ptr_nonnull(im);
    ck_assert_int_eq(im->Xsize, (int)w);
    ck_assert_int_eq(im->Ysize, (int)h);
    ck_assert_int_eq(im->Bands, 3);
    g_object_unref(im);

    path_in(out, sizeof out, dir, "noext");
    ck_assert_int_eq(kmq_image_save_rgb(out, rgb, w, h, &err), KMQ_E_ARG);
    free(rgb);

    DIR *d = opendir(dir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            entries++;
        else
            ck_assert(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
    closedir(d);
    ck_assert_int_eq(entries, 2);
}
END_TEST

/* Allocation N fails, N = 0.. until open + two passes succeed, in stream
 * and whole modes: each failure is KMQ_E_NOMEM and frees everything (ASan
 * checks leaks; libvips' own allocations are not hooked). */
START_TEST(alloc_failure_sweep)
{
    static const kmq_image_mode modes[] = {KMQ_IMAGE_STREAM, KMQ_IMAGE_WHOLE};
    for (int m = 0; m < 2; m++) {
        kmq_image_opts opts = opts_for(modes[m], WHITE);
        kmq_status status = KMQ_E_NOMEM;
        long n;
        for (n = 0; n < 100 && status != KMQ_OK; n++) {
            kmq_err err = {0};
            kmq_image *img = NULL;
            uint8_t *buf = NULL;
            kmq_alloc_fail_after(n);
            status = kmq_image_open(tu_photo("china.jpg"), &opts, &img, &err);
            for (int pass = 0; pass < 2 && status == KMQ_OK; pass++) {
                status = kmq_image_rewind(img, &err);
                if (!buf && status == KMQ_OK)
                    buf = malloc(640 * 3 * kmq_image_strip_rows(img));
                uint32_t rows = 1;
                while (status == KMQ_OK && rows > 0)
                    status = kmq_image_read_strip(img, buf, &rows, &err);
            }
            kmq_alloc_fail_after(-1);
            if (status != KMQ_OK) {
                ck_assert_msg(status == KMQ_E_NOMEM, "N=%ld: %s", n, err.msg);
                ck_assert(err.msg[0] != '\0');
            }
            kmq_image_free(img);
            free(buf);
        }
        ck_assert_int_eq(status, KMQ_OK);
        ck_assert_int_gt(n, 1);
    }
}
END_TEST

/* Shutdown before any init (a CLI leaving on a usage error) is a no-op, init
 * twice is fine, and a second shutdown is a no-op. Runs last and without
 * the fixture: libvips cannot restart after shutdown in one process. */
START_TEST(lib_lifecycle)
{
    kmq_image_lib_shutdown();
    kmq_err err = {0};
    ck_assert_int_eq(kmq_image_lib_init("test_image", 1, &err), KMQ_OK);
    ck_assert_int_eq(kmq_image_lib_init("test_image", 3, &err), KMQ_OK);
    ck_assert_int_eq(vips_concurrency_get(), 3);
    ck_assert_int_eq(vips_cache_get_max(), 0);
    kmq_image_lib_shutdown();
    kmq_image_lib_shutdown();
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"coffee_matches_libpng", coffee_matches_libpng},
        {"china_jpeg_plain_decode", china_jpeg_plain_decode},
        {"png_8bit_rgb", png_8bit_rgb},
        {"png_16bit_rgb", png_16bit_rgb},
        {"png_palette", png_palette},
        {"greyscale", greyscale},
        {"tiff_strip", tiff_strip},
        {"tiff_tiled", tiff_tiled},
        {"tiff_16bit", tiff_16bit},
        {"webp_lossless", webp_lossless},
        {"vips_native", vips_native},
        {"cmyk", cmyk},
        {"alpha_flatten", alpha_flatten},
        {"alpha_16bit", alpha_16bit},
        {"rewind_mid_pass", rewind_mid_pass},
        {"whole_decodes_once", whole_decodes_once},
        {"limit_strip_rows", limit_strip_rows},
        {"error_not_found", error_not_found},
        {"error_folder", error_folder},
        {"error_permission", error_permission},
        {"error_empty", error_empty},
        {"error_not_an_image", error_not_an_image},
        {"error_truncated_jpeg", error_truncated_jpeg},
        {"error_truncated_png", error_truncated_png},
        {"error_too_large", error_too_large},
        {"preview", preview},
        {"alloc_failure_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("image");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 120, setup);
    /* Starts and stops libvips itself: no fixture. */
    TCase *tc = tcase_create("lib_lifecycle");
    tcase_add_test(tc, lib_lifecycle);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
