/* pngout.h — indexed PNG, label-map and palette-swatch writers (layer L2;
 * hides libpng).
 *
 * An indexed PNG is written row by row while the image streams; its palette
 * is exactly the colours given (libvips cannot save a palette it did not
 * compute itself), at the smallest bit depth (1/2/4/8) that holds them.
 * Files go through fsx: temporary name, rename on close. No parallel regions.
 */
#ifndef KMQ_PNGOUT_H
#define KMQ_PNGOUT_H

#include "kmq/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kmq_png kmq_png;

/* Smallest PNG palette bit depth (1, 2, 4, 8) for `ncolors` (1..256). */
unsigned kmq_png_bit_depth(size_t ncolors);

/* Starts an indexed PNG at `path`: width x height, palette of `ncolors`
 * (1..256) RGB triples from `palette_rgb` (copied). Returns KMQ_OK,
 * KMQ_E_ARG, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_png_open_indexed(const char *path, uint32_t width, uint32_t height,
                                               const uint8_t *palette_rgb, size_t ncolors,
                                               kmq_png **out, kmq_err *err);

/* kmq_png_open_indexed with an alpha per palette entry (`alpha`, ncolors
 * bytes, copied): a tRNS chunk up to the last entry that is not opaque. */
KMQ_MUST_CHECK kmq_status kmq_png_open_indexed_rgba(const char *path, uint32_t width,
                                                    uint32_t height, const uint8_t *palette_rgb,
                                                    const uint8_t *alpha, size_t ncolors,
                                                    kmq_png **out, kmq_err *err);

/* Starts an 8-bit greyscale PNG (a label map: pixel value = label). */
KMQ_MUST_CHECK kmq_status kmq_png_open_grey(const char *path, uint32_t width, uint32_t height,
                                            kmq_png **out, kmq_err *err);

/* Appends one row of `width` bytes: palette indices (< ncolors) or grey
 * values. Returns KMQ_OK, KMQ_E_ARG (index out of range, too many rows) or
 * KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_png_write_row(kmq_png *png, const uint8_t *row, kmq_err *err);

/* Stages the compressed output of up to `rows` rows in memory instead of
 * writing it as it comes: kmq_png_write_row then does no I/O, so different
 * writers can encode the rows of one strip on different threads (one writer
 * is never used by two threads at once), and kmq_png_flush writes what was
 * staged afterwards, on one thread. Call once, after open. Returns KMQ_OK,
 * KMQ_E_ARG or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_png_stage(kmq_png *png, uint32_t rows, kmq_err *err);

/* Writes the staged bytes to the file (a no-op without staging). Writing a
 * row past `rows` staged rows without a flush is KMQ_E_ARG. Returns KMQ_OK
 * or KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_png_flush(kmq_png *png, kmq_err *err);

/* Finishes the file (all rows must have been written), renames it into place,
 * sets *bytes to its size and frees png (also on failure, after removing the
 * temporary file). Returns KMQ_OK, KMQ_E_ARG (rows missing) or KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_png_close(kmq_png *png, uint64_t *bytes, kmq_err *err);

/* Abandons the file: removes the temporary file, frees png. NULL is a no-op. */
void kmq_png_abort(kmq_png *png);

/* Writes a palette swatch: one horizontal bar, each colour's width
 * proportional to its pixel share (every colour at least 1 pixel wide),
 * as an RGB PNG. Returns KMQ_OK, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_png_write_swatch(const char *path, const uint8_t *palette_rgb,
                                               const uint64_t *pixels, size_t ncolors,
                                               uint64_t *bytes, kmq_err *err);

#endif
