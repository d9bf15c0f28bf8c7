/* preview.h — a small downscaled copy of an image, built from its rows as
 * they stream by (layer L1).
 *
 * The report shows each input beside its results; decoding the input a
 * third time just for that costs as much as a pass on a large image, so
 * the preview is averaged from the rows of the histogram pass instead.
 * Each preview pixel is the mean of a block of f x f input pixels (f the
 * smallest factor that brings the longest side within max_side); for large
 * blocks the mean is taken over an evenly spaced grid of at most 4 x 4 of
 * the block's pixels. Pure computation; no parallel region.
 */
#ifndef KMQ_PREVIEW_H
#define KMQ_PREVIEW_H

#include "kmq/error.h"

#include <stdint.h>

typedef struct kmq_preview kmq_preview;

/* A preview of a width x height image whose longest side becomes at most
 * max_side (>= 1). Returns KMQ_OK, KMQ_E_ARG or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_preview_new(uint32_t width, uint32_t height, uint32_t max_side,
                                          kmq_preview **out, kmq_err *err);

void kmq_preview_free(kmq_preview *p);

/* The size kmq_preview_new gives a width x height image within max_side
 * (all >= 1), without making one. */
void kmq_preview_size(uint32_t width, uint32_t height, uint32_t max_side, uint32_t *pw,
                      uint32_t *ph);

/* Feeds the next `rows` rows of interleaved 8-bit RGB (width * 3 bytes a
 * row), top to bottom. Rows past the last are ignored. */
void kmq_preview_add_rows(kmq_preview *p, const uint8_t *rgb, uint32_t rows);

/* The preview (interleaved RGB, owned by p) and its size; complete once
 * every row was added. */
const uint8_t *kmq_preview_pixels(const kmq_preview *p, uint32_t *width, uint32_t *height);

#endif
