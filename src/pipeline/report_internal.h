/* report_internal.h — between report.c and report_html.c (layer L3,
 * private; not installed).
 */
#ifndef KMQ_REPORT_INTERNAL_H
#define KMQ_REPORT_INTERNAL_H

#include "internal.h"
#include "kmq/error.h"
#include "kmq/summary.h"

#include <stddef.h>

/* Writes OUT/index.html, the report page, from the run's facts, the jobs'
 * elbows and the images' summaries (all borrowed; images sorted as in
 * run.json). It reads no file; it only checks which of an image's report
 * files (preview.jpg, elbow.svg, restarts.svg, kK.png, kK.palette.svg,
 * kK.colors.svg, ...) exist, and links those. The page is static: no
 * script, no network, relative links only, so it works from file:// and
 * from a copy of OUT. The same inputs and files give the same bytes.
 * Returns KMQ_OK, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__report_write_html(const char *out_root, const kmq_run_info *info,
                                              const kmq_job_elbow *elbows, size_t n_elbows,
                                              const kmq_run_image *images, size_t n, kmq_err *err);

#endif
