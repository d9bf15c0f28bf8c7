/* labels.c — colour -> label lookup for the map pass (layer L1).
 *
 * Includes labels.h and hist.h (same layer) and internal.h; no I/O.
 *
 * A kmq_labels borrows the finished histogram's colour -> index lookup and owns
 * one uint8 label per distinct colour for each of the nk label sets, stored
 * set after set. Mapping a pixel is one table lookup (its colour's index)
 * plus one byte load per set, so a row is labelled for every k of a job at
 * once while the image streams.
 *
 * Threading: no parallel region. kmq_labels_map_row only reads the lookup,
 * so callers may run it from several threads on disjoint rows.
 */
#include "kmq/labels.h"

#include "internal.h"
#include "kmq/hist_rgba.h"

#include <inttypes.h>

struct kmq_labels {
    const kmq_hist *hist;       /* borrowed, finished: colour -> index; or */
    const kmq_hist_rgba *hist4; /* the same for RGBA rows (4 bytes a pixel) */
    size_t ncolors;
    size_t nk;
    uint8_t *sets; /* nk * ncolors, set after set */
};

static kmq_status labels_new(const kmq_hist *h, const kmq_hist_rgba *h4, size_t ncolors, size_t nk,
                             kmq_labels **out, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_labels *lab = kmq__calloc(1, sizeof *lab);
    if (!lab) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a label lookup");
        goto done;
    }
    lab->hist = h;
    lab->hist4 = h4;
    lab->ncolors = ncolors;
    lab->nk = nk;
    lab->sets = kmq__calloc(nk, lab->ncolors);
    if (!lab->sets) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu label sets of %zu colours", nk,
                         lab->ncolors);
        goto done;
    }
    *out = lab;
    lab = NULL;
done:
    kmq_labels_free(lab);
    return st;
}

kmq_status kmq_labels_new(const kmq_hist *h, size_t nk, kmq_labels **out, kmq_err *err)
{
    if (!h || !out || !kmq_hist_keys(h))
        return kmq_err_set(err, KMQ_E_ARG, "labels need a finished histogram");
    return labels_new(h, NULL, kmq_hist_size(h), nk, out, err);
}

kmq_status kmq_labels_new_rgba(const kmq_hist_rgba *h, size_t nk, kmq_labels **out, kmq_err *err)
{
    if (!h || !out || !kmq_hist_rgba_keys(h))
        return kmq_err_set(err, KMQ_E_ARG, "labels need a finished histogram");
    return labels_new(NULL, h, kmq_hist_rgba_size(h), nk, out, err);
}

void kmq_labels_free(kmq_labels *lab)
{
    if (!lab)
        return;
    kmq__free(lab->sets);
    kmq__free(lab);
}

uint8_t *kmq_labels_set(kmq_labels *lab, size_t i)
{
    if (i >= lab->nk)
        return NULL;
    return lab->sets + i * lab->ncolors;
}

kmq_status kmq_labels_map_row(const kmq_labels *lab, const uint8_t *rgb, size_t width,
                              uint8_t *const *out_rows, kmq_err *err)
{
    if (width == 0)
        return KMQ_OK;
    if (!rgb || (lab->nk > 0 && !out_rows))
        return kmq_err_set(err, KMQ_E_ARG, "label mapping needs a row and output rows");
    const size_t n = lab->ncolors, nk = lab->nk, bpp = lab->hist4 ? 4 : 3;
    const uint8_t *sets = lab->sets;
    /* Blocks of pixels: first every colour's index (the one random access
     * into the 64 MiB table), then one set at a time, so each set's labels
     * stay in cache and the output pointer is loaded once per block. */
    enum { BLOCK = 512 };
    uint32_t ixs[BLOCK];
    for (size_t x0 = 0; x0 < width; x0 += BLOCK) {
        size_t len = width - x0 < BLOCK ? width - x0 : BLOCK;
        const uint8_t *px = rgb + bpp * x0;
        if (lab->hist4 ? !kmq_hist_rgba_index(lab->hist4, px, len, ixs)
                       : !kmq_hist_index_rgb(lab->hist, px, len, ixs)) {
            size_t j = 0;
            while (ixs[j] != UINT32_MAX)
                j++;
            const uint8_t *c = px + bpp * j;
            uint32_t key = (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
            return kmq_err_set(err, KMQ_E_INTERNAL,
                               "pixel %zu has colour #%06" PRIx32 "%s that the histogram never "
                               "counted (the image changed between passes)",
                               x0 + j, key, bpp == 4 ? " with its alpha" : "");
        }
        for (size_t i = 0; i < nk; i++) {
            const uint8_t *set = sets + i * n;
            uint8_t *out = out_rows[i] + x0;
            for (size_t j = 0; j < len; j++)
                out[j] = set[ixs[j]];
        }
    }
    return KMQ_OK;
}
