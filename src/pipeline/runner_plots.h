/* runner_plots.h — the per-image report files (layer L3, private to the
 * runner; not installed).
 */
#ifndef KMQ_RUNNER_PLOTS_H
#define KMQ_RUNNER_PLOTS_H

#include "internal.h"
#include "kmq/error.h"
#include "kmq/image.h"
#include "kmq/job.h"
#include "kmq/kmeans.h"
#include "kmq/labels.h"
#include "kmq/preview.h"
#include "kmq/summary.h"

/* Most distinct colours drawn in a colour-space chart (report = full):
 * enough to show the clusters' shapes, few enough to keep the file near
 * 40 KB. */
#define KMQ_PLOT_SAMPLE 1000
/* Longest side of preview.jpg (report = full), in pixels. */
#define KMQ_PREVIEW_SIDE 512
/* JPEG quality of thumb.jpg (KMQ_THUMB_SIDE in kmq/outputs.h). */
#define KMQ_THUMB_QUALITY 60
/* A sweep of at most this many k values gets a colour-space chart for
 * every k; a longer one only for its elbow (or its middle k). */
#define KMQ_PLOT_ALL_COLOURS_MAX_K 4

/* Writes the report files of one finished image into `dir` (its folder),
 * as `mode` says: none, nothing; light, thumb.jpg (`thumb`, averaged from
 * the histogram pass with longest side KMQ_THUMB_SIDE); full, thumb.jpg
 * and preview.jpg (`preview_pixels`, longest side KMQ_PREVIEW_SIDE),
 * elbow.svg (>= 3 k values), restarts.svg, kK.palette.svg for every k and
 * kK.colors.svg for the featured k values (see runner_plots.c). `thumb`
 * may be NULL under none, `preview_pixels` unless full. `s` must hold the results, with
 * elbow and compression filled; `all` is the image's distinct colours and
 * `labels` their labels for every k of s (index i of s->results is set i).
 * All borrowed. Deterministic: the sample is drawn from a stream keyed by
 * s->seed. No parallel region. Returns KMQ_OK, or the status of the first
 * file that could not be made (KMQ_E_WRITE, KMQ_E_NOMEM, the preview's
 * encode error). */
KMQ_PRIVATE kmq_status kmq__runner_write_plots(const char *dir, kmq_report_mode mode,
                                               const kmq_preview *preview_pixels,
                                               const kmq_preview *thumb, const kmq_summary *s, const kmq_points *all,
                                               kmq_labels *labels, kmq_err *err);

#endif
