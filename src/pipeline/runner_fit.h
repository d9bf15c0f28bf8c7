/* runner_fit.h — fitting one image's k values, with or without a quality
 * target (private to the runner module, runner_fit.c; runner_image.c
 * calls it between the histogram and the map pass). */
#ifndef KMQ_RUNNER_FIT_H
#define KMQ_RUNNER_FIT_H

#include "internal.h"
#include "kmq/kmeans.h"
#include "kmq/labels.h"
#include "kmq/summary.h"
#include "runner_colour.h"
#include "runner_internal.h"

/* What fitting one k of an image needs (kmq__run_image's state, borrowed). */
typedef struct kmq__fit_env {
    const kmq_job_spec *spec;
    uint64_t seed;
    const kmq__job_palette *jp;
    const kmq_points *all; /* every distinct colour */
    kmq_space space;
    const kmq_points *fit_all;              /* every point fitted: all, or its OKLab grid points */
    const kmq_points *fit_pts;              /* what the fit sees: fit_all, or a sample of it */
    const kmq_kmeans_prepared *prep_all;    /* fit_all prepared (not for RGBA colours) */
    const kmq_kmeans_prepared *prep_sample; /* the sample prepared, or NULL */
    const kmq__colours *colours;            /* the grid of space = oklab; RGBA or not */
    kmq_labels *labels;                     /* the image's label sets */
    uint64_t pixels;
    const kmq_run_opts *opts;
    kmq_progress *prog;
    double t_run;
} kmq__fit_env;

/* Fits k = spec->k[i] (or maps to the given palette's), labels every
 * distinct colour into `labels` and fills `r`. The fit of a k does not
 * depend on which other k are fitted: its restarts draw from (seed, k, r).
 * Driver. */
KMQ_PRIVATE kmq_status kmq__fit_k(const kmq__fit_env *e, size_t i, uint8_t *labels, kmq_k_result *r,
                                  kmq_err *err);

/* The quality target: the smallest k of the list whose written image
 * reaches spec->target_psnr into s->results[0] and label set 0, s->tried
 * and s->target_reached filled (runner_fit.c says how). Driver. */
KMQ_PRIVATE kmq_status kmq__search_target(const kmq__fit_env *e, kmq_summary *s, kmq_err *err);

#endif
