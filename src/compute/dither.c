/* dither.c — Floyd-Steinberg error diffusion, row by row (layer L1).
 *
 * Includes dither.h and internal.h; no I/O, no parallel region.
 *
 * Numbers: colours and error are integers in 1/128 of a level (a level is
 * one step of 0..255), so the result is the same on every machine. The
 * colour a pixel asks for is its own plus the error it received, clamped to
 * 0..255 levels; the error it passes on is (asked - chosen) * S / 256, with
 * S = strength rounded to 1/256, split 7/16 ahead, 3/16 below-behind, 5/16
 * below, and the remainder (about 1/16, so that no error is lost to
 * rounding) below-ahead. The error a pixel receives is then at most one
 * pixel's worth, 255 * 128 = 32,640 (plus 3 of rounding): it fits int16.
 *
 * Large errors are damped, as pngquant does, so that error does not run
 * along edges and into flat areas as streaks ("worms"): when the error a
 * pixel receives has a squared length above `limit` it is taken at 4/5,
 * and a pixel whose own error is above it passes on 3/4 of the strength.
 *
 * Memory: one row of error for the next row (int16, three channels). The
 * row being scanned reads its error from the same array: position x holds
 * the current row's error until x is visited, the next row's after; the
 * next row's error for the pixel just behind and the one under x wait in
 * two variables until they are complete (the classic one-row scheme).
 *
 * Nearest entry: the palette sorted by red; the search walks out from the
 * asked red both ways and stops once the red difference alone exceeds the
 * best distance, so it is exact (ties: lowest palette index) and usually
 * looks at a few entries instead of all.
 */
#include "kmq/dither.h"

#include "internal.h"

#include <stdbool.h>
#include <math.h>
#include <string.h>

#define DITHER_ONE 128 /* a level, in the error's units */

struct kmq_dither {
    size_t width;
    size_t n;
    int32_t strength; /* 0..256 */
    int64_t limit;    /* squared error above which error is damped (scaled); 0: never */
    uint64_t row;     /* rows done: the scan direction alternates */
    int16_t *err;     /* 3 * width: error for the row being scanned / the next */
    int32_t red[256], green[256], blue[256]; /* palette sorted by red, scaled */
    uint8_t index[256];                      /* palette index of each sorted entry */
};

kmq_status kmq_dither_new(const uint8_t *palette, size_t n, size_t width, double strength,
                          double limit, kmq_dither **out, kmq_err *err)
{
    *out = NULL;
    /* Limits beyond any error (3 * 255^2) are as good as none, and keep
     * the scaled value within int64. */
    if (!palette || n < 1 || n > 256 || width < 1 || !(strength >= 0.0 && strength <= 1.0) ||
        !(limit >= 0.0))
        return kmq_err_set(err, KMQ_E_ARG,
                           "dither needs 1..256 colours, a row, 0..1 strength "
                           "and a limit >= 0");
    if (limit > 3.0 * 255 * 255)
        limit = 0;
    kmq_dither *d = kmq__calloc(1, sizeof *d);
    if (d)
        d->err = kmq__calloc(width, 3 * sizeof *d->err);
    if (!d || !d->err) {
        kmq_dither_free(d);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a %zu-pixel dither row", width);
    }
    d->width = width;
    d->n = n;
    d->strength = (int32_t)lround(strength * 256.0);
    d->limit = (int64_t)llround(limit * DITHER_ONE * DITHER_ONE);

    /* Insertion sort by (red, index): n <= 256, once per k. */
    for (size_t i = 0; i < n; i++) {
        int32_t r = palette[3 * i] * DITHER_ONE;
        size_t j = i;
        while (j > 0 && d->red[j - 1] > r) {
            d->red[j] = d->red[j - 1];
            d->green[j] = d->green[j - 1];
            d->blue[j] = d->blue[j - 1];
            d->index[j] = d->index[j - 1];
            j--;
        }
        d->red[j] = r;
        d->green[j] = palette[3 * i + 1] * DITHER_ONE;
        d->blue[j] = palette[3 * i + 2] * DITHER_ONE;
        d->index[j] = (uint8_t)i;
    }
    *out = d;
    return KMQ_OK;
}

void kmq_dither_free(kmq_dither *d)
{
    if (!d)
        return;
    kmq__free(d->err);
    kmq__free(d);
}

/* Sorted position of the entry nearest to (r, g, b) (scaled). */
static uint64_t distance(const kmq_dither *d, size_t j, int32_t r, int32_t g, int32_t b)
{
    int64_t dr = (int64_t)d->red[j] - r, dg = (int64_t)d->green[j] - g,
            db = (int64_t)d->blue[j] - b;
    return (uint64_t)(dr * dr) + (uint64_t)(dg * dg) + (uint64_t)(db * db);
}

/* One step of the walk out from the start: false once entry j's red
 * difference alone exceeds the best distance (entries are sorted by red, so
 * none further on can be nearer); else keeps j when it is nearer, or as near
 * with a lower palette index. */
static bool closer(const kmq_dither *d, size_t j, int32_t r, int32_t g, int32_t b, uint64_t *best,
                   size_t *found)
{
    int64_t dr1 = (int64_t)d->red[j] - r;
    uint64_t dr = (uint64_t)(dr1 * dr1);
    if (dr > *best)
        return false;
    int64_t dg = (int64_t)d->green[j] - g, db = (int64_t)d->blue[j] - b;
    uint64_t dist = dr + (uint64_t)(dg * dg) + (uint64_t)(db * db);
    if (dist < *best || (dist == *best && d->index[j] < d->index[*found])) {
        *best = dist;
        *found = j;
    }
    return true;
}

/* `hint`: a sorted position to start from (the previous pixel's entry, most
 * often the answer or near it): its distance bounds the walk from the start,
 * and the answer is the same whatever the hint. */
static size_t nearest(const kmq_dither *d, size_t hint, int32_t r, int32_t g, int32_t b)
{
    size_t lo = 0, hi = d->n; /* first entry with red >= r */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->red[mid] < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Distances <= 3 * 32,640^2 < 2^32. */
    uint64_t best = distance(d, hint, r, g, b);
    size_t found = hint;
    for (size_t j = lo; j < d->n && closer(d, j, r, g, b, &best, &found); j++)
        ;
    for (size_t j = lo; j-- > 0 && closer(d, j, r, g, b, &best, &found);)
        ;
    return found;
}

static int32_t clamp_level(int32_t v)
{
    return v < 0 ? 0 : v > 255 * DITHER_ONE ? 255 * DITHER_ONE : v;
}

void kmq_dither_row(kmq_dither *d, const uint8_t *rgb, uint8_t *out)
{
    const size_t w = d->width;
    const int forward = (d->row & 1) == 0;
    int16_t *e = d->err;
    int32_t carry[3] = {0, 0, 0};     /* 7/16 for the pixel ahead */
    int32_t pend_prev[3] = {0, 0, 0}; /* next row, the pixel behind: waits for its 3/16 */
    int32_t pend_cur[3] = {0, 0, 0};  /* next row, this pixel: its 1/16 so far */
    size_t j = 0;                     /* sorted position of the last entry chosen */
    for (size_t i = 0; i < w; i++) {
        size_t x = forward ? i : w - 1 - i;
        int32_t want[3], got[3];
        int64_t g2 = 0;
        for (int c = 0; c < 3; c++) {
            got[c] = e[3 * x + (size_t)c] + carry[c];
            g2 += (int64_t)got[c] * got[c];
        }
        if (d->limit && g2 > d->limit)
            for (int c = 0; c < 3; c++)
                got[c] = got[c] * 4 / 5;
        for (int c = 0; c < 3; c++)
            want[c] = clamp_level(rgb[3 * x + (size_t)c] * DITHER_ONE + got[c]);
        j = nearest(d, j, want[0], want[1], want[2]);
        out[x] = d->index[j];
        const int32_t chosen[3] = {d->red[j], d->green[j], d->blue[j]};
        int64_t q2 = 0;
        for (int c = 0; c < 3; c++)
            q2 += (int64_t)(want[c] - chosen[c]) * (want[c] - chosen[c]);
        int32_t st = d->strength;
        if (d->limit && q2 > d->limit)
            st = st * 3 / 4;
        for (int c = 0; c < 3; c++) {
            int32_t s = (want[c] - chosen[c]) * st / 256;
            int32_t d7 = s * 7 / 16, d3 = s * 3 / 16, d5 = s * 5 / 16;
            int32_t d1 = s - d7 - d3 - d5;
            if (i > 0) {
                size_t behind = forward ? x - 1 : x + 1;
                e[3 * behind + (size_t)c] = (int16_t)(pend_prev[c] + d3);
            }
            pend_prev[c] = pend_cur[c] + d5;
            pend_cur[c] = d1;
            carry[c] = d7;
        }
    }
    size_t last = forward ? w - 1 : 0;
    for (int c = 0; c < 3; c++)
        e[3 * last + (size_t)c] = (int16_t)pend_prev[c];
    d->row++;
}
