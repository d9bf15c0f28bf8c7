/* hist.h — distinct-colour histogram (layer L1).
 *
 * Built from RGB rows in one streaming pass; afterwards it holds the distinct
 * colours in Morton (Z-curve) order of (r, g, b) with their pixel counts,
 * and answers "index of this colour" in O(1) for the map pass. Morton order
 * keeps colours that are close in RGB close in the list, which k-means
 * uses to prune runs of points. Memory is bounded by the
 * colour space (a 2^24-entry table, 64 MiB) plus 12 bytes per distinct colour,
 * independent of the number of pixels; up to 2^21 pixels it is instead 4
 * bytes a pixel (a sorted list, 8 bytes a pixel while finishing), which
 * spares small images the cost of faulting in the table.
 *
 * Not thread-safe: one hist belongs to one pipeline; it opens no parallel
 * region.
 */
#ifndef KMQ_HIST_H
#define KMQ_HIST_H

#include "kmq/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Number of distinct 8-bit RGB colours: the hard cap of every histogram. */
#define KMQ_HIST_MAX_COLORS ((size_t)1 << 24)

typedef struct kmq_hist kmq_hist;

/* Creates an empty histogram. Returns KMQ_OK or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_hist_new(kmq_hist **out, kmq_err *err);

/* Tells h how many pixels will be added in all, where that is known (an
 * image's width x height). Above 2^21 the table counts from the start
 * instead of the first 2^21 pixels being listed and then moved into it.
 * Only before the first pixel; a wrong figure costs only speed or memory.
 * Returns KMQ_OK or KMQ_E_NOMEM (the histogram is then unchanged). */
KMQ_MUST_CHECK kmq_status kmq_hist_expect(kmq_hist *h, uint64_t pixels, kmq_err *err);

/* Frees h; NULL is a no-op. */
void kmq_hist_free(kmq_hist *h);

/* Counts `npix` pixels of interleaved 8-bit RGB (3 bytes each). Only before
 * kmq_hist_finish. Returns KMQ_OK, KMQ_E_NOMEM (the histogram is then
 * unusable: free it) or KMQ_E_ARG (already finished). */
KMQ_MUST_CHECK kmq_status kmq_hist_add_rgb(kmq_hist *h, const uint8_t *rgb, size_t npix,
                                           kmq_err *err);

/* Counts `count` pixels of the one colour `key` (0xRRGGBB) at once, exactly
 * as `count` calls with that pixel would: for histograms of pre-counted
 * data, and for tests of counts beyond UINT32_MAX without feeding 4e9
 * pixels. Only before kmq_hist_finish. Returns KMQ_OK, KMQ_E_NOMEM (the
 * histogram is unchanged) or KMQ_E_ARG (already finished, key above 24 bits,
 * the total pixel count would overflow 64 bits). */
KMQ_MUST_CHECK kmq_status kmq_hist_add_color(kmq_hist *h, uint32_t key, uint64_t count,
                                             kmq_err *err);

/* Ends counting: sorts the distinct colours in Morton order and builds the index.
 * Returns KMQ_OK or KMQ_E_NOMEM. Idempotent. */
KMQ_MUST_CHECK kmq_status kmq_hist_finish(kmq_hist *h, kmq_err *err);

/* After finish: number of distinct colours. */
size_t kmq_hist_size(const kmq_hist *h);

/* After finish: keys (0xRRGGBB) in Morton order of (r, g, b): bits r7 g7 b7
 * r6 ... g0 b0 ascending. kmq_hist_size() of them. Owned by h. */
const uint32_t *kmq_hist_keys(const kmq_hist *h);

/* After finish: pixel count of each key, parallel to kmq_hist_keys(). Owned by h. */
const uint64_t *kmq_hist_weights(const kmq_hist *h);

/* Total pixels added. */
uint64_t kmq_hist_pixels(const kmq_hist *h);

/* After finish: position of `key` in kmq_hist_keys(), or UINT32_MAX if the
 * colour never occurred. Safe to call from several threads at once. */
uint32_t kmq_hist_index(const kmq_hist *h, uint32_t key);

/* After finish: out[i] = index of the colour of pixel i of `npix`
 * interleaved 8-bit RGB pixels, UINT32_MAX for a colour never counted. For
 * the tight loop of the map pass. Returns false if some colour was never
 * counted (or the histogram is not finished: then out is untouched). Safe
 * to call from several threads at once. */
bool kmq_hist_index_rgb(const kmq_hist *h, const uint8_t *rgb, size_t npix, uint32_t *out);

#endif
