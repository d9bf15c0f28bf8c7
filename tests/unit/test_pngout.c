/* test_pngout.c — indexed PNG, label-map and swatch writers, checked with
 * libpng's simplified reader (tu_png_decode_rgb) and by reading the chunks
 * of the written file byte by byte. */
#include "kmq/alloc_hook.h"
#include "kmq/fsx.h"
#include "kmq/pngout.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

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

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < size);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Finds chunk `type` in a PNG file image; returns its data and length, or
 * NULL. Checks the signature and that chunks stay inside the file. */
static const unsigned char *find_chunk(const unsigned char *png, size_t len, const char *type,
                                       uint32_t *chunk_len)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    ck_assert_uint_ge(len, 8);
    ck_assert_mem_eq(png, sig, 8);
    size_t off = 8;
    while (off + 12 <= len) {
        uint32_t n = be32(png + off);
        ck_assert_uint_le(off + 12 + n, len);
        if (memcmp(png + off + 4, type, 4) == 0) {
            *chunk_len = n;
            return png + off + 8;
        }
        off += 12 + (size_t)n;
    }
    return NULL;
}

/* A deterministic label pattern with every index used, odd runs included. */
static uint8_t label_at(uint32_t x, uint32_t y, size_t k)
{
    uint32_t h = x * 2654435761u ^ (y + 1) * 40503u;
    h ^= h >> 13;
    return (uint8_t)((h + x + y) % k);
}

static void make_palette(uint8_t *pal, size_t k)
{
    for (size_t i = 0; i < k; i++) { /* distinct colours */
        pal[3 * i] = (uint8_t)i;
        pal[3 * i + 1] = (uint8_t)(255 - i);
        pal[3 * i + 2] = (uint8_t)(i * 7 + 3);
    }
}

START_TEST(bit_depth)
{
    ck_assert_uint_eq(kmq_png_bit_depth(1), 1);
    ck_assert_uint_eq(kmq_png_bit_depth(2), 1);
    ck_assert_uint_eq(kmq_png_bit_depth(3), 2);
    ck_assert_uint_eq(kmq_png_bit_depth(4), 2);
    ck_assert_uint_eq(kmq_png_bit_depth(5), 4);
    ck_assert_uint_eq(kmq_png_bit_depth(16), 4);
    ck_assert_uint_eq(kmq_png_bit_depth(17), 8);
    ck_assert_uint_eq(kmq_png_bit_depth(256), 8);
}
END_TEST

/* For each k and several widths (odd ones exercise the packing of the last
 * byte): the file decodes to palette[label] per pixel, its IHDR says
 * palette colour type at the minimal bit depth, its PLTE is exactly the
 * given palette, there is no tRNS, and *bytes is the file size. */
START_TEST(indexed_roundtrip)
{
    static const size_t ks[] = {1, 2, 3, 4, 5, 16, 17, 256};
    static const uint32_t widths[] = {1, 7, 13, 64};
    const uint32_t height = 9;
    const char *dir = tu_fresh_dir("png_roundtrip");
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            size_t k = ks[ki];
            uint32_t width = widths[wi];
            uint8_t pal[256 * 3];
            make_palette(pal, k);
            char path[4096], name[64];
            snprintf(name, sizeof name, "k%zu_w%u.png", k, width);
            path_in(path, sizeof path, dir, name);

            kmq_err err = {0};
            kmq_png *png = NULL;
            ck_assert_int_eq(kmq_png_open_indexed(path, width, height, pal, k, &png, &err), KMQ_OK);
            uint8_t row[64];
            for (uint32_t y = 0; y < height; y++) {
                for (uint32_t x = 0; x < width; x++)
                    row[x] = label_at(x, y, k);
                ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
            }
            uint64_t bytes = 0;
            ck_assert_int_eq(kmq_png_close(png, &bytes, &err), KMQ_OK);

            uint32_t w = 0, h = 0;
            uint8_t *rgb = tu_png_decode_rgb(path, &w, &h);
            ck_assert_ptr_nonnull(rgb);
            ck_assert_uint_eq(w, width);
            ck_assert_uint_eq(h, height);
            for (uint32_t y = 0; y < height; y++)
                for (uint32_t x = 0; x < width; x++) {
                    const uint8_t *px = rgb + 3 * ((size_t)y * width + x);
                    const uint8_t *want = pal + 3 * label_at(x, y, k);
                    ck_assert_msg(memcmp(px, want, 3) == 0, "k=%zu w=%u pixel (%u,%u) differs", k,
                                  width, x, y);
                }
            free(rgb);

            size_t len = 0;
            unsigned char *file = tu_read_file(path, &len);
            ck_assert_uint_eq(len, bytes);
            uint32_t n = 0;
            const unsigned char *ihdr = find_chunk(file, len, "IHDR", &n);
            ck_assert_ptr_nonnull(ihdr);
            ck_assert_uint_eq(n, 13);
            ck_assert_uint_eq(be32(ihdr), width);
            ck_assert_uint_eq(be32(ihdr + 4), height);
            ck_assert_uint_eq(ihdr[8], kmq_png_bit_depth(k)); /* bit depth */
            ck_assert_uint_eq(ihdr[9], 3);                    /* palette colour type */
            ck_assert_uint_eq(ihdr[12], 0);                   /* not interlaced */
            const unsigned char *plte = find_chunk(file, len, "PLTE", &n);
            ck_assert_ptr_nonnull(plte);
            ck_assert_uint_eq(n, 3 * k);
            ck_assert_mem_eq(plte, pal, 3 * k);
            ck_assert_ptr_null(find_chunk(file, len, "tRNS", &n));
            free(file);
        }
    }
    ck_assert_int_eq(count_entries(dir), 8 * 4); /* no temporaries */
}
END_TEST

START_TEST(grey_roundtrip)
{
    const char *dir = tu_fresh_dir("png_grey");
    char path[4096];
    path_in(path, sizeof path, dir, "labels.png");
    const uint32_t width = 257, height = 5;
    kmq_err err = {0};
    kmq_png *png = NULL;
    ck_assert_int_eq(kmq_png_open_grey(path, width, height, &png, &err), KMQ_OK);
    uint8_t row[257];
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++)
            row[x] = (uint8_t)(x + y);
        ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
    }
    uint64_t bytes = 0;
    ck_assert_int_eq(kmq_png_close(png, &bytes, &err), KMQ_OK);
    uint32_t w = 0, h = 0;
    uint8_t *rgb = tu_png_decode_rgb(path, &w, &h);
    ck_assert_ptr_nonnull(rgb);
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++)
            for (int c = 0; c < 3; c++)
                ck_assert_uint_eq(rgb[3 * ((size_t)y * width + x) + (size_t)c], (x + y) & 255);
    free(rgb);
    size_t len = 0;
    unsigned char *file = tu_read_file(path, &len);
    ck_assert_uint_eq(len, bytes);
    uint32_t n = 0;
    const unsigned char *ihdr = find_chunk(file, len, "IHDR", &n);
    ck_assert_uint_eq(ihdr[8], 8); /* 8-bit */
    ck_assert_uint_eq(ihdr[9], 0); /* greyscale */
    ck_assert_ptr_null(find_chunk(file, len, "PLTE", &n));
    free(file);
}
END_TEST

/* Decodes a swatch and returns each colour's run width, in order. */
static void swatch_widths(const char *path, const uint8_t *pal, size_t k, uint32_t *widths)
{
    uint32_t w = 0, h = 0;
    uint8_t *rgb = tu_png_decode_rgb(path, &w, &h);
    ck_assert_ptr_nonnull(rgb);
    ck_assert_uint_eq(w, 256);
    ck_assert_uint_eq(h, 32);
    for (uint32_t y = 1; y < h; y++) /* every row is the same bar */
        ck_assert_mem_eq(rgb + (size_t)y * w * 3, rgb, (size_t)w * 3);
    size_t colour = 0;
    memset(widths, 0, k * sizeof *widths);
    for (uint32_t x = 0; x < w; x++) {
        while (colour < k && memcmp(rgb + 3 * x, pal + 3 * colour, 3) != 0)
            colour++;
        ck_assert_msg(colour < k, "column %u is not the next palette colour", x);
        widths[colour]++;
    }
    free(rgb);
}

/* Widths follow the pixel shares (within one pixel of the exact share of
 * the columns left after everyone's 1 px), every colour at least 1 px. */
START_TEST(swatch_shares)
{
    const char *dir = tu_fresh_dir("png_swatch");
    char path[4096];
    path_in(path, sizeof path, dir, "k4.palette.png");
    uint8_t pal[256 * 3];
    make_palette(pal, 256);
    uint64_t pixels[256] = {700, 0, 299, 1};
    kmq_err err = {0};
    uint64_t bytes = 0;
    ck_assert_int_eq(kmq_png_write_swatch(path, pal, pixels, 4, &bytes, &err), KMQ_OK);
    ck_assert_uint_gt(bytes, 0);
    uint32_t widths[256];
    swatch_widths(path, pal, 4, widths);
    uint32_t sum = 0;
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_ge(widths[i], 1);
        double exact = 1.0 + 252.0 * (double)pixels[i] / 1000.0;
        ck_assert_double_eq_tol((double)widths[i], exact, 1.0);
        sum += widths[i];
    }
    ck_assert_uint_eq(sum, 256);

    /* 256 colours: one column each, even with zero shares. */
    for (size_t i = 0; i < 256; i++)
        pixels[i] = i == 0 ? 1000000 : 0;
    ck_assert_int_eq(kmq_png_write_swatch(path, pal, pixels, 256, &bytes, &err), KMQ_OK);
    swatch_widths(path, pal, 256, widths);
    for (size_t i = 0; i < 256; i++)
        ck_assert_uint_eq(widths[i], 1);

    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_png_write_swatch(path, pal, pixels, 0, &bytes, &err), KMQ_E_ARG);
    ck_assert_int_eq(count_entries(dir), 1);
}
END_TEST

/* Out-of-range index and extra rows: KMQ_E_ARG naming the problem; abort
 * then leaves neither the file nor a temporary. */
START_TEST(bad_rows)
{
    const char *dir = tu_fresh_dir("png_bad_rows");
    char path[4096];
    path_in(path, sizeof path, dir, "k3.png");
    uint8_t pal[9] = {0, 0, 0, 128, 128, 128, 255, 255, 255};
    kmq_err err = {0};
    kmq_png *png = NULL;
    ck_assert_int_eq(kmq_png_open_indexed(path, 4, 1, pal, 3, &png, &err), KMQ_OK);
    const uint8_t bad[4] = {0, 1, 3, 2};
    ck_assert_int_eq(kmq_png_write_row(png, bad, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "index 3"));
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    const uint8_t good[4] = {0, 1, 2, 2};
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_png_write_row(png, good, &err), KMQ_OK);
    ck_assert_int_eq(kmq_png_write_row(png, good, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "past the last row"));
    kmq_png_abort(png);
    ck_assert_int_eq(count_entries(dir), 0);
    kmq_png_abort(NULL);
}
END_TEST

START_TEST(close_with_missing_rows)
{
    const char *dir = tu_fresh_dir("png_missing_rows");
    char path[4096];
    path_in(path, sizeof path, dir, "k2.png");
    uint8_t pal[6] = {0, 0, 0, 255, 255, 255};
    kmq_err err = {0};
    kmq_png *png = NULL;
    ck_assert_int_eq(kmq_png_open_indexed(path, 5, 3, pal, 2, &png, &err), KMQ_OK);
    const uint8_t row[5] = {0, 1, 0, 1, 1};
    ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
    uint64_t bytes = 12345;
    ck_assert_int_eq(kmq_png_close(png, &bytes, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "only 1 of 3 rows"));
    ck_assert_uint_eq(bytes, 12345);
    ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

START_TEST(abort_leaves_nothing)
{
    const char *dir = tu_fresh_dir("png_abort");
    char path[4096];
    path_in(path, sizeof path, dir, "k16.png");
    uint8_t pal[48];
    make_palette(pal, 16);
    kmq_err err = {0};
    kmq_png *png = NULL;
    ck_assert_int_eq(kmq_png_open_indexed(path, 3, 10, pal, 16, &png, &err), KMQ_OK);
    const uint8_t row[3] = {15, 0, 7};
    ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
    ck_assert_int_eq(count_entries(dir), 1); /* the temporary */
    kmq_png_abort(png);
    ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

START_TEST(bad_arguments)
{
    const char *dir = tu_fresh_dir("png_args");
    char path[4096];
    path_in(path, sizeof path, dir, "x.png");
    uint8_t pal[257 * 3] = {0};
    kmq_png *png = NULL;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_png_open_indexed(path, 4, 4, pal, 0, &png, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "0 colours"));
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_png_open_indexed(path, 4, 4, pal, 257, &png, &err), KMQ_E_ARG);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_png_open_indexed(path, 0, 4, pal, 2, &png, &err), KMQ_E_ARG);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_png_open_grey(path, 4, 0, &png, &err), KMQ_E_ARG);
    ck_assert_ptr_null(png);
    path_in(path, sizeof path, dir, "no/such/folder/x.png");
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_png_open_grey(path, 4, 4, &png, &err), KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "folder"));
    ck_assert_ptr_null(png);
    ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

/* A file that does not fit a 64 KiB tmpfs: KMQ_E_WRITE from write_row or
 * close, nothing left behind. Needs root for mount; skipped otherwise. */
START_TEST(full_disk)
{
    const char *dir = tu_fresh_dir("png_full");
    if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        fprintf(stderr, "full_disk: skipped (cannot mount a tmpfs: %s)\n", strerror(errno));
        return;
    }
    char path[4096];
    path_in(path, sizeof path, dir, "noise.png");
    uint8_t pal[768];
    make_palette(pal, 256);
    kmq_err err = {0};
    kmq_png *png = NULL;
    kmq_status status = kmq_png_open_indexed(path, 512, 512, pal, 256, &png, &err);
    uint32_t state = 12345;
    uint8_t row[512];
    for (uint32_t y = 0; y < 512 && status == KMQ_OK; y++) {
        for (uint32_t x = 0; x < 512; x++) { /* incompressible */
            state = state * 1664525u + 1013904223u;
            row[x] = (uint8_t)(state >> 24);
        }
        status = kmq_png_write_row(png, row, &err);
    }
    uint64_t bytes = 0;
    if (status == KMQ_OK) {
        status = kmq_png_close(png, &bytes, &err);
    } else {
        kmq_png_abort(png);
    }
    int left = count_entries(dir);
    umount(dir);
    ck_assert_int_eq(status, KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err.msg, "No space left"));
    ck_assert_int_eq(left, 0);
}
END_TEST

/* Writes a small indexed PNG end to end; on failure aborts. */
static kmq_status write_small(const char *path, kmq_err *err)
{
    uint8_t pal[15];
    make_palette(pal, 5);
    kmq_png *png = NULL;
    kmq_status status = kmq_png_open_indexed(path, 13, 40, pal, 5, &png, err);
    if (status != KMQ_OK)
        return status;
    uint8_t row[13];
    for (uint32_t y = 0; y < 40; y++) {
        for (uint32_t x = 0; x < 13; x++)
            row[x] = label_at(x, y, 5);
        status = kmq_png_write_row(png, row, err);
        if (status != KMQ_OK) {
            kmq_png_abort(png);
            return status;
        }
    }
    uint64_t bytes = 0;
    return kmq_png_close(png, &bytes, err);
}

/* Allocation N fails, N = 0.. until the whole open/write/close succeeds
 * (libpng's and zlib's allocations go through the hook too): each failure
 * is KMQ_E_NOMEM with nothing left in the folder; ASan checks leaks. The
 * swatch writer gets the same sweep. */
START_TEST(alloc_failure_sweep)
{
    const char *dir = tu_fresh_dir("png_alloc");
    char path[4096];
    path_in(path, sizeof path, dir, "k5.png");
    kmq_status status = KMQ_E_NOMEM;
    long n;
    for (n = 0; n < 1000 && status != KMQ_OK; n++) {
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        status = write_small(path, &err);
        kmq_alloc_fail_after(-1);
        if (status != KMQ_OK) {
            ck_assert_msg(status == KMQ_E_NOMEM, "N=%ld: status %d: %s", n, status, err.msg);
            ck_assert_int_eq(count_entries(dir), 0);
        }
    }
    ck_assert_int_eq(status, KMQ_OK);
    ck_assert_int_gt(n, 5); /* kmq, fsx, libpng and zlib allocations were all swept */
    uint32_t w = 0, h = 0;
    uint8_t *rgb = tu_png_decode_rgb(path, &w, &h);
    ck_assert_ptr_nonnull(rgb);
    free(rgb);

    path_in(path, sizeof path, dir, "sw.png");
    uint8_t pal[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint64_t pixels[3] = {5, 6, 7};
    status = KMQ_E_NOMEM;
    for (n = 0; n < 1000 && status != KMQ_OK; n++) {
        kmq_err err = {0};
        uint64_t bytes = 0;
        kmq_alloc_fail_after(n);
        status = kmq_png_write_swatch(path, pal, pixels, 3, &bytes, &err);
        kmq_alloc_fail_after(-1);
        if (status != KMQ_OK) {
            ck_assert_int_eq(status, KMQ_E_NOMEM);
            ck_assert_int_eq(count_entries(dir), 1);
        }
    }
    ck_assert_int_eq(status, KMQ_OK);
}
END_TEST

/* Staged writing (rows compressed into memory, flushed every few rows)
 * gives the same file bytes as writing straight through, for every bit
 * depth and however many rows go between flushes (the map pass sizes its
 * strips from a memory budget); a row past the staged limit without a
 * flush is refused. */
static void write_image(const char *path, size_t k, uint32_t w, uint32_t h, uint32_t stage_rows)
{
    uint8_t pal[256 * 3];
    make_palette(pal, k);
    kmq_png *png = NULL;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_png_open_indexed(path, w, h, pal, k, &png, &err), KMQ_OK);
    if (stage_rows)
        ck_assert_int_eq(kmq_png_stage(png, stage_rows, &err), KMQ_OK);
    uint8_t *row = malloc(w);
    ck_assert_ptr_nonnull(row);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++)
            row[x] = label_at(x, y, k);
        ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
        if (stage_rows && (y + 1) % stage_rows == 0)
            ck_assert_int_eq(kmq_png_flush(png, &err), KMQ_OK);
    }
    free(row);
    uint64_t bytes = 0;
    ck_assert_int_eq(kmq_png_close(png, &bytes, &err), KMQ_OK);
}

START_TEST(staged_equals_direct)
{
    const char *dir = tu_fresh_dir("pngout-staged");
    size_t ks[] = {2, 4, 16, 256};
    uint32_t strips[] = {1, 7, 32};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        char direct[4096], staged[4096];
        path_in(direct, sizeof direct, dir, "direct.png");
        path_in(staged, sizeof staged, dir, "staged.png");
        write_image(direct, ks[i], 517, 301, 0);
        size_t n1 = 0;
        unsigned char *a = tu_read_file(direct, &n1);
        for (size_t j = 0; j < sizeof strips / sizeof strips[0]; j++) {
            write_image(staged, ks[i], 517, 301, strips[j]);
            size_t n2 = 0;
            unsigned char *b = tu_read_file(staged, &n2);
            ck_assert_uint_eq(n1, n2);
            ck_assert_int_eq(memcmp(a, b, n1), 0);
            free(b);
        }
        free(a);
    }
    /* More rows than staged without a flush: refused, not overflowed. */
    char path[4096];
    path_in(path, sizeof path, dir, "limit.png");
    uint8_t pal[6] = {0, 0, 0, 255, 255, 255}, row[8] = {0};
    kmq_png *png = NULL;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_png_open_indexed(path, 8, 4, pal, 2, &png, &err), KMQ_OK);
    ck_assert_int_eq(kmq_png_stage(png, 2, &err), KMQ_OK);
    ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
    ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_OK);
    ck_assert_int_eq(kmq_png_write_row(png, row, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "without a flush"));
    kmq_png_abort(png);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"bit_depth", bit_depth},
        {"indexed_roundtrip", indexed_roundtrip},
        {"grey_roundtrip", grey_roundtrip},
        {"swatch_shares", swatch_shares},
        {"bad_rows", bad_rows},
        {"close_with_missing_rows", close_with_missing_rows},
        {"abort_leaves_nothing", abort_leaves_nothing},
        {"bad_arguments", bad_arguments},
        {"full_disk", full_disk},
        {"alloc_failure_sweep", alloc_failure_sweep},
        {"staged_equals_direct", staged_equals_direct},
    };
    Suite *s = suite_create("pngout");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
