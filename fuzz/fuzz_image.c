/* fuzz_image.c — libFuzzer target for the image loading path: the bytes
 * are written to a temporary file, opened with kmq_image_open (a small
 * max_pixels, so a fuzzed header cannot make libvips allocate much) and read
 * in two full passes, as the runner does (histogram, then map).
 *
 * Checked: a successful open reports width * height = pixels within
 * max_pixels; a pass either fails with an error message or delivers exactly
 * `height` rows; both passes agree byte for byte (a hash of the rows), in
 * streamed and in whole-image mode (the first input byte picks the mode).
 * libvips is started once (LLVMFuzzerInitialize) with its cache off.
 */
#include "kmq/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_PIXELS ((uint64_t)1 << 16)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char image_path[64];

static void remove_file(void)
{
    unlink(image_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    kmq_err err = {0};
    if (kmq_image_lib_init((*argv)[0], 1, &err) != KMQ_OK) {
        fprintf(stderr, "fuzz_image: %s\n", err.msg);
        abort();
    }
    (void)argc;
    snprintf(image_path, sizeof image_path, "/tmp/kmq-fuzz-image-XXXXXX");
    int fd = mkstemp(image_path);
    if (fd < 0)
        abort();
    close(fd);
    atexit(remove_file);
    return 0;
}

/* One pass: 0 and the FNV-1a hash of the rows in *hash, or -1 on a clean
 * error. */
static int read_pass(kmq_image *img, uint8_t *buf, uint64_t *hash)
{
    kmq_err err = {0};
    const kmq_image_info *info = kmq_image_get_info(img);
    if (kmq_image_rewind(img, &err) != KMQ_OK)
        return err.msg[0] ? -1 : (__builtin_trap(), -1);
    uint64_t h = 1469598103934665603u, rows_seen = 0;
    for (;;) {
        uint32_t rows = 0;
        if (kmq_image_read_strip(img, buf, &rows, &err) != KMQ_OK) {
            if (!err.msg[0])
                __builtin_trap();
            return -1;
        }
        if (rows == 0)
            break;
        size_t n = (size_t)rows * info->width * 3;
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211u;
        rows_seen += rows;
        if (rows_seen > info->height)
            __builtin_trap();
    }
    if (rows_seen != info->height)
        __builtin_trap();
    *hash = h;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(image_path, "wb");
    if (!f)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    kmq_image_opts opts = {.background = {255, 255, 255},
                           .max_pixels = FUZZ_MAX_PIXELS,
                           .mode = size > 0 && (data[0] & 1) ? KMQ_IMAGE_WHOLE : KMQ_IMAGE_STREAM};
    kmq_image *img = NULL;
    kmq_err err = {0};
    if (kmq_image_open(image_path, &opts, &img, &err) != KMQ_OK) {
        if (err.code == KMQ_OK || !err.msg[0])
            __builtin_trap();
        return 0;
    }
    const kmq_image_info *info = kmq_image_get_info(img);
    if (info->pixels != (uint64_t)info->width * info->height || info->pixels == 0 ||
        info->pixels > FUZZ_MAX_PIXELS)
        __builtin_trap();
    uint8_t *buf = malloc((size_t)kmq_image_strip_rows(img) * info->width * 3);
    if (buf) {
        uint64_t first = 0, second = 0;
        if (read_pass(img, buf, &first) == 0 && read_pass(img, buf, &second) == 0 &&
            first != second)
            __builtin_trap();
    }
    free(buf);
    kmq_image_free(img);
    return 0;
}
