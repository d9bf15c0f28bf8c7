/* testutil.h — helpers shared by the Check unit tests. */
#ifndef KMQ_TESTUTIL_H
#define KMQ_TESTUTIL_H

#include "kmq/hist.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh empty folder under KMQ_TEST_TMP named after `name` (removed first
 * if it exists). Returns a static buffer valid until the next call. */
const char *tu_fresh_dir(const char *name);

/* Path of a bundled photo: KMQ_PHOTOS "/" name. Static buffer. */
const char *tu_photo(const char *name);

/* Removes a tree (rm -rf). */
void tu_rm_rf(const char *path);

/* Writes `len` bytes to `path` (plain, non-atomic), aborting the test on failure. */
void tu_write_file(const char *path, const void *data, size_t len);

/* Reads a whole file into a malloc'd buffer; *len gets its size. NULL if missing. */
unsigned char *tu_read_file(const char *path, size_t *len);

/* Decodes an 8-bit PNG with libpng's simplified API to RGB (3 bytes a
 * pixel), independent of kmq and libvips. Returns malloc'd pixels or NULL. */
uint8_t *tu_png_decode_rgb(const char *path, uint32_t *width, uint32_t *height);

/* A finished histogram of npix interleaved RGB pixels (fails the test on
 * any error). Free with kmq_hist_free. */
kmq_hist *tu_hist_of(const uint8_t *rgb, size_t npix);

/* The finished histogram of bundled photo `name` (an 8-bit PNG of
 * data/photos; fails the test if it cannot be read). */
kmq_hist *tu_photo_hist(const char *name);

/* The same with PNG_FORMAT_RGBA (4 bytes a pixel, straight alpha). */
uint8_t *tu_png_decode_rgba(const char *path, uint32_t *width, uint32_t *height);

/* Reference nearest centre: index of the centre (k of them, 3 doubles each)
 * nearest to the RGB pixel, the lowest index on ties; *d2 gets the squared
 * distance. Plain brute force, independent of the engine. */
size_t tu_nearest_centre(const uint8_t *px, const double *centres, size_t k, double *d2);

/* One test of a suite: its TCase name and function. */
typedef struct tu_case {
    const char *name;
    const TTest *test;
} tu_case;

/* Adds one TCase per case to `s` (one TCase per behaviour, docs/design.md), each
 * with a timeout of `timeout_s` seconds (0: Check's default) and the
 * checked fixture `setup` (NULL: none). */
void tu_add_cases(Suite *s, const tu_case *cases, size_t n, double timeout_s, SFun setup);

/* Runs `s` with Check's defaults (each test forked), frees it, and returns
 * the exit status for main. */
int tu_run_suite(Suite *s);

#endif
