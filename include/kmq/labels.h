/* labels.h — colour -> label lookup, and mapping RGB rows to labels for
 * several k at once (layer L1).
 *
 * After a fit, every distinct colour's label is known (the fit's labels,
 * or kmq_kmeans_assign when the fit saw a sample).
 * A kmq_labels combines the histogram's colour index with one label array
 * per k, so the map pass turns each pixel into its label for every k of the
 * job with one table lookup plus one byte load per k.
 */
#ifndef KMQ_LABELS_H
#define KMQ_LABELS_H

#include "kmq/error.h"
#include "kmq/hist.h"
#include "kmq/hist_rgba.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kmq_labels kmq_labels;

/* A lookup over finished histogram `h` (borrowed: it must outlive the
 * result) for `nk` label sets. Returns KMQ_OK or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_labels_new(const kmq_hist *h, size_t nk, kmq_labels **out,
                                         kmq_err *err);

/* The same over an RGBA histogram: kmq_labels_map_row then reads RGBA rows
 * (4 bytes a pixel). */
KMQ_MUST_CHECK kmq_status kmq_labels_new_rgba(const kmq_hist_rgba *h, size_t nk, kmq_labels **out,
                                              kmq_err *err);

void kmq_labels_free(kmq_labels *lab);

/* Label array of set `i` (kmq_hist_size(h) bytes, one per distinct colour in
 * key order), to be filled by the caller, e.g. with a fit's labels.
 * Owned by lab. */
uint8_t *kmq_labels_set(kmq_labels *lab, size_t i);

/* Maps one row of `width` RGB pixels (RGBA over an RGBA histogram) to
 * labels: out_rows[i][x] is the label of pixel x in set i. Every pixel
 * colour must have been counted in the histogram; otherwise returns
 * KMQ_E_INTERNAL (the image changed between passes). Kernel: no parallel region; safe to call from
 * one concurrently with disjoint outputs. */
KMQ_MUST_CHECK kmq_status kmq_labels_map_row(const kmq_labels *lab, const uint8_t *rgb,
                                             size_t width, uint8_t *const *out_rows, kmq_err *err);

#endif
