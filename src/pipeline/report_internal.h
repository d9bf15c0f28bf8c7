/* report_internal.h — between report.c and report_html.c (layer L3,
 * private; not installed).
 */
#ifndef KMQ_REPORT_INTERNAL_H
#define KMQ_REPORT_INTERNAL_H

#include "internal.h"
#include "kmq/error.h"
#include "kmq/job.h"
#include "kmq/summary.h"

#include <stddef.h>

/* Writes the report's pages from the run's facts, the jobs' elbows and the
 * images' summaries (all borrowed; images sorted as in run.json, modes[i]
 * what the report draws for image i): OUT/report.css, OUT/DIR/index.html
 * for each image whose mode is not none and whose folder exists, then
 * OUT/index.html, the overview (report_html.c). When every image's mode
 * is none, it writes nothing and removes those pages of an earlier run.
 * It reads no file; it only checks which of an image's report files exist,
 * and links those. No network: relative links only, so the pages work from
 * file:// and from a copy of OUT. The same inputs and files give the same
 * bytes. Returns KMQ_OK, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__report_write_html(const char *out_root, const kmq_run_info *info,
                                              const kmq_job_elbow *elbows, size_t n_elbows,
                                              const kmq_run_image *images,
                                              const kmq_report_mode *modes, size_t n,
                                              kmq_err *err);

#endif
