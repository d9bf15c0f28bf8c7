/* hist_rgba.h — distinct-colour histogram of RGBA pixels (layer L1).
 *
 * The RGBA counterpart of kmq/hist.h, for images whose alpha is kept
 * (job key alpha = keep). A key is the straight (not premultiplied) colour
 * 0xRRGGBBAA, except that every fully transparent pixel is key 0: whatever
 * its RGB, it shows nothing. With up to 2^32 keys a dense table is out of
 * the question, so the counts live in an open-addressing hash table whose
 * size follows the distinct colours (12-byte slots, at most half full, plus
 * 12 bytes a colour once listed), never the colour space. Keys are listed ascending.
 *
 * Not thread-safe while counting; after finish the read-only getters and
 * lookups are safe from several threads at once. No parallel region.
 */
#ifndef KMQ_HIST_RGBA_H
#define KMQ_HIST_RGBA_H

#include "kmq/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kmq_hist_rgba kmq_hist_rgba;

/* The key of one RGBA pixel: 0xRRGGBBAA, or 0 when its alpha is 0. */
static inline uint32_t kmq_rgba_key(const uint8_t px[4])
{
    return px[3] ? (uint32_t)px[0] << 24 | (uint32_t)px[1] << 16 | (uint32_t)px[2] << 8 | px[3]
                 : 0u;
}

/* Creates an empty histogram. Returns KMQ_OK or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_hist_rgba_new(kmq_hist_rgba **out, kmq_err *err);

/* Frees h; NULL is a no-op. */
void kmq_hist_rgba_free(kmq_hist_rgba *h);

/* Counts `npix` pixels of interleaved 8-bit RGBA (4 bytes each). Only
 * before finish. Returns KMQ_OK, KMQ_E_NOMEM (the histogram is then
 * unusable: free it) or KMQ_E_ARG (already finished). */
KMQ_MUST_CHECK kmq_status kmq_hist_rgba_add(kmq_hist_rgba *h, const uint8_t *rgba, size_t npix,
                                            kmq_err *err);

/* Ends counting: lists the keys ascending with their counts. Returns KMQ_OK
 * or KMQ_E_NOMEM. Idempotent. */
KMQ_MUST_CHECK kmq_status kmq_hist_rgba_finish(kmq_hist_rgba *h, kmq_err *err);

/* After finish: the distinct keys, ascending, and their pixel counts
 * (kmq_hist_rgba_size of each). Owned by h. */
size_t kmq_hist_rgba_size(const kmq_hist_rgba *h);
const uint32_t *kmq_hist_rgba_keys(const kmq_hist_rgba *h);
const uint64_t *kmq_hist_rgba_weights(const kmq_hist_rgba *h);

/* Total pixels added. */
uint64_t kmq_hist_rgba_pixels(const kmq_hist_rgba *h);

/* After finish: out[i] = position in kmq_hist_rgba_keys of the key of pixel
 * i of `npix` RGBA pixels, UINT32_MAX for one never counted. Returns false
 * when some pixel was never counted (or h is not finished). */
bool kmq_hist_rgba_index(const kmq_hist_rgba *h, const uint8_t *rgba, size_t npix, uint32_t *out);

#endif
