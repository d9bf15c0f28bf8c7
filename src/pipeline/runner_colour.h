/* runner_colour.h — the colour side of one image (private to the runner
 * module, runner_colour.c): OKLab values of its colours for the colour
 * difference every summary reports, the OKLab grid a space = oklab fit
 * runs on, and what alpha = keep needs (compositing for the pictures, the
 * RGBA palette and error). Nothing here is visible outside libkmq. */
#ifndef KMQ_RUNNER_COLOUR_H
#define KMQ_RUNNER_COLOUR_H

#include "internal.h"
#include "kmq/job.h"
#include "kmq/kmeans.h"
#include "kmq/par.h"
#include "kmq/summary.h"

#include <stdbool.h>
#include <stdint.h>

/* An image's distinct colours as the colour code sees them. Zero-initialise;
 * kmq__colours_free frees. */
typedef struct kmq__colours {
    bool rgba;             /* keys are 0xRRGGBBAA (alpha kept), else 0xRRGGBB */
    uint8_t background[3]; /* what RGBA colours are composited onto, for ΔE */
    float *lab;            /* OKLab of every colour (3 each; RGBA: composited) */
    /* space = oklab: the grid points the fit sees (kmq/oklab.h), each
     * colour's grid point, and one label per grid point. */
    uint32_t *grid_keys;
    uint64_t *grid_weights;
    uint32_t *grid_of;
    uint8_t *grid_labels;
} kmq__colours;

KMQ_PRIVATE void kmq__colours_free(kmq__colours *c);

/* Fills c->lab and, with space = oklab (never for RGBA), the grid: colours
 * on one grid point become one point with their weights summed, *grid
 * viewing them. c->rgba and c->background are the caller's. Driver (a
 * parallel loop over the colours, each written by one thread). Returns
 * KMQ_OK or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__colours_prepare(kmq__colours *c, const kmq_points *all, kmq_space space,
                                            const kmq_par *par, kmq_points *grid, kmq_err *err);

/* The written image's colour difference into r->delta_e_mean and
 * r->delta_e_p95 (labels: one per colour; r->palette filled). Returns
 * KMQ_OK or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__colour_difference(const kmq__colours *c, const kmq_points *all,
                                              const uint8_t *labels, uint64_t pixels,
                                              kmq_k_result *r, kmq_err *err);

/* An RGBA fit's palette and error (alpha = keep): each premultiplied
 * centre back to a straight RGBA entry, and r->mse_output, r->psnr_db over
 * RGBA as docs/design.md §19 defines them, exact per distinct colour. */
KMQ_PRIVATE void kmq__rgba_palette_and_error(const kmq_points *all, const kmq_fit *fit,
                                             const uint8_t *labels, uint64_t pixels,
                                             kmq_k_result *r);

/* `npix` RGBA pixels composited onto `background` into RGB (for the
 * report's pictures and the palette swatch). */
KMQ_PRIVATE void kmq__composite_rgba(const uint8_t *rgba, size_t npix, const uint8_t background[3],
                                     uint8_t *rgb);

#endif
