/* preview.c — downscaled copy of a streamed image by block means (layer L1).
 *
 * Rows arrive top to bottom. A row is added to the running sums of its
 * block row if it is one of the sampled rows of that block (every row for
 * small factors; an evenly spaced subset of at most SAMPLES rows, and as
 * many columns, for large ones, which bounds the cost on gigapixel inputs
 * to about 16 additions per preview pixel and channel). When the last row
 * of a block row has gone by, the sums become one row of means.
 * Includes internal.h only; no OpenMP, no I/O.
 */
#include "kmq/preview.h"

#include "internal.h"

#include <string.h>

#define SAMPLES 4u

struct kmq_preview {
    uint32_t width, height; /* input */
    uint32_t factor;        /* block side in input pixels */
    uint32_t step;          /* stride between sampled rows/columns of a block */
    uint32_t pw, ph;        /* preview size */
    uint32_t next_row;      /* input rows seen */
    uint64_t *sums;         /* pw * 3 */
    uint32_t *counts;       /* pw: samples added per block of the current block row */
    uint8_t *pixels;        /* pw * ph * 3 */
};

kmq_status kmq_preview_new(uint32_t width, uint32_t height, uint32_t max_side, kmq_preview **out,
                           kmq_err *err)
{
    if (width == 0 || height == 0 || max_side == 0)
        return kmq_err_set(err, KMQ_E_ARG, "a preview of %u x %u within %u pixels is empty", width,
                           height, max_side);
    uint32_t longest = width > height ? width : height;
    uint32_t factor = (uint32_t)(((uint64_t)longest + max_side - 1) / max_side);
    kmq_preview *p = kmq__calloc(1, sizeof *p);
    if (!p)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a preview");
    p->width = width;
    p->height = height;
    p->factor = factor;
    p->step = factor > SAMPLES ? factor / SAMPLES : 1;
    p->pw = (uint32_t)(((uint64_t)width + factor - 1) / factor);
    p->ph = (uint32_t)(((uint64_t)height + factor - 1) / factor);
    p->sums = kmq__calloc((size_t)p->pw * 3, sizeof *p->sums);
    p->counts = kmq__calloc(p->pw, sizeof *p->counts);
    p->pixels = kmq__calloc((size_t)p->pw * p->ph, 3);
    if (!p->sums || !p->counts || !p->pixels) {
        kmq_preview_free(p);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a %u x %u preview", p->pw, p->ph);
    }
    *out = p;
    return KMQ_OK;
}

void kmq_preview_size(uint32_t width, uint32_t height, uint32_t max_side, uint32_t *pw,
                      uint32_t *ph)
{
    uint32_t longest = width > height ? width : height;
    uint64_t factor = max_side ? ((uint64_t)longest + max_side - 1) / max_side : 1;
    if (factor == 0)
        factor = 1;
    *pw = (uint32_t)(((uint64_t)width + factor - 1) / factor);
    *ph = (uint32_t)(((uint64_t)height + factor - 1) / factor);
}

void kmq_preview_free(kmq_preview *p)
{
    if (!p)
        return;
    kmq__free(p->sums);
    kmq__free(p->counts);
    kmq__free(p->pixels);
    kmq__free(p);
}

/* Sampled rows and columns of a block: offsets 0, step, 2 step, ... below
 * the block's side, at most SAMPLES of them. */
static int sampled(uint32_t offset, uint32_t step)
{
    return offset % step == 0 && offset / step < SAMPLES;
}

static void add_row(kmq_preview *p, const uint8_t *row)
{
    uint32_t f = p->factor, step = p->step;
    for (uint32_t bx = 0; bx < p->pw; bx++) {
        uint32_t x0 = bx * f;
        uint32_t x1 = x0 + f < p->width ? x0 + f : p->width;
        uint64_t *s = p->sums + 3 * (size_t)bx;
        uint32_t n = 0;
        for (uint32_t x = x0; x < x1; x += step) {
            if ((x - x0) / step >= SAMPLES)
                break;
            const uint8_t *px = row + 3 * (size_t)x;
            s[0] += px[0];
            s[1] += px[1];
            s[2] += px[2];
            n++;
        }
        p->counts[bx] += n;
    }
}

static void emit_block_row(kmq_preview *p, uint32_t by)
{
    uint8_t *out = p->pixels + (size_t)by * p->pw * 3;
    for (uint32_t bx = 0; bx < p->pw; bx++) {
        uint64_t n = p->counts[bx] ? p->counts[bx] : 1;
        for (int c = 0; c < 3; c++)
            out[3 * bx + (uint32_t)c] = (uint8_t)((p->sums[3 * bx + (uint32_t)c] + n / 2) / n);
    }
    memset(p->sums, 0, (size_t)p->pw * 3 * sizeof *p->sums);
    memset(p->counts, 0, (size_t)p->pw * sizeof *p->counts);
}

void kmq_preview_add_rows(kmq_preview *p, const uint8_t *rgb, uint32_t rows)
{
    size_t row_bytes = (size_t)p->width * 3;
    for (uint32_t i = 0; i < rows && p->next_row < p->height; i++) {
        uint32_t y = p->next_row++;
        uint32_t by = y / p->factor, offset = y % p->factor;
        if (sampled(offset, p->step))
            add_row(p, rgb + i * row_bytes);
        if (offset == p->factor - 1 || y == p->height - 1)
            emit_block_row(p, by);
    }
}

const uint8_t *kmq_preview_pixels(const kmq_preview *p, uint32_t *width, uint32_t *height)
{
    *width = p->pw;
    *height = p->ph;
    return p->pixels;
}
