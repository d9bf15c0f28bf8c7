/* report_page.h — what the report's pages share (layer L3, private to the
 * report: report_page.c, report_chart.c, report_html.c, report_detail.c).
 *
 * A page is text built in a kmq_strbuf (sticky failure: writers append
 * freely and check once at the end). Every text from a summary goes
 * through page_esc (HTML) or page_json_str (a JSON string inside a
 * script element); every link through page_url (percent-encoded byte by
 * byte), so that names with any bytes still resolve under file://.
 * Numbers are locale-independent (kmq_plot_format_number).
 */
#ifndef KMQ_REPORT_PAGE_H
#define KMQ_REPORT_PAGE_H

#include "internal.h"
#include "kmq/error.h"
#include "kmq/job.h"
#include "kmq/strbuf.h"
#include "kmq/summary.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct page {
    kmq_strbuf buf;
    const char *root; /* output root, for existence checks */
} page;

KMQ_PRIVATE void page_raw(page *p, const char *s);
KMQ_PRIVATE void page_put(page *p, const char *s, size_t n);
/* Integers and trusted strings only (%f would follow the locale). */
KMQ_PRIVATE void page_fmt(page *p, const char *f, ...) KMQ_PRINTF(2, 3);
/* User text, HTML-escaped (text and quoted attributes). */
KMQ_PRIVATE void page_esc(page *p, const char *s);
/* A JSON string literal that is safe inside <script>: '<', '>' and '&'
 * as \u escapes, invalid UTF-8 bytes as U+FFFD. NULL: null. */
KMQ_PRIVATE void page_json_str(page *p, const char *s);
KMQ_PRIVATE void page_num(page *p, double v, int decimals);
/* 1234567 -> "1 234 567" with thin spaces. */
KMQ_PRIVATE void page_count(page *p, uint64_t v);
/* Bytes as B, kB, MB (powers of 1000), the exact count in a tooltip. */
KMQ_PRIVATE void page_bytes(page *p, uint64_t v);
KMQ_PRIVATE void page_seconds(page *p, double s);
/* "1.73 × 10⁸" for inertia. */
KMQ_PRIVATE void page_scientific(page *p, double v);
/* A relative URL "dir/name" (either may be NULL or empty), percent-encoded
 * byte by byte: anything but A-Z a-z 0-9 - . _ ~ / becomes %XX. */
KMQ_PRIVATE void page_url(page *p, const char *dir, const char *name);
/* "../" once per component of dir: from an image folder to the root. */
KMQ_PRIVATE void page_up(page *p, const char *dir);
/* Whether root/dir/name is a regular file. */
KMQ_PRIVATE bool page_exists(page *p, const char *dir, const char *name);

/* The image's name as the report shows it (rel, else path). */
KMQ_PRIVATE const char *page_image_name(const kmq_summary *s);
/* The document head up to and including <body>; `up` is the path from the
 * page to the output root ("" or "../../"), for report.css. */
KMQ_PRIVATE void page_head(page *p, const char *title_text, const char *up_dir);

/* "ok", "error", "pending" or "stale". */
KMQ_PRIVATE const char *page_status(const kmq_summary *s);

/* page_status of a done image whose quality target no k of its list reached. */
#define KMQ_REPORT_TARGET_MISSED "target missed"

/* The result shown for an image in the overview: the elbow's, else the
 * largest k's; NULL without results. */
KMQ_PRIVATE const kmq_k_result *page_shown_result(const kmq_summary *s);

/* Writes the page to root/dir/name (dir may be ""), atomically; clears it. */
KMQ_PRIVATE kmq_status page_write(page *p, const char *dir, const char *name, kmq_err *err);

/* Writes OUT/report.css, the stylesheet every page links. */
KMQ_PRIVATE kmq_status kmq__report_write_css(const char *out_root, kmq_err *err);

/* An inline SVG chart of a curve over k with values in [0, 1]: the line
 * through `mean`, a band between lo and hi when given (NULL: none), the
 * point `mark` (an index, or n and above: none) circled and labelled, k
 * on the x axis. `label` names the y axis (trusted text). n >= 2. */
KMQ_PRIVATE void kmq__report_chart(page *p, const size_t *k, const double *mean, const double *lo,
                                   const double *hi, size_t n, size_t mark, const char *label,
                                   const char *aria);

/* The images fitted on their own palette (ok, palette_mode NULL), sorted
 * by input path (report_palette.c): where a job with a shared palette runs
 * over the same inputs, each image's error shows beside its own palette's. */
typedef struct kmq__own_palettes {
    const kmq_summary **v;
    size_t n;
} kmq__own_palettes;
KMQ_PRIVATE kmq_status kmq__own_palettes_index(const kmq_run_image *images, size_t n,
                                               kmq__own_palettes *own, kmq_err *err);
KMQ_PRIVATE void kmq__own_palettes_clear(kmq__own_palettes *own);
/* The result at k of s's input fitted on its own palette, when s was
 * mapped to a shared or given palette; NULL otherwise. */
KMQ_PRIVATE const kmq_k_result *kmq__own_palette_result(const kmq__own_palettes *own,
                                                        const kmq_summary *s, size_t k);
/* A job with palette = shared (images: the job's): its palette once (the
 * swatch of each k), what it was fitted on, the palette it replaced when
 * the job's images changed, and the mean PSNR under it beside the images'
 * own palettes where both ran. Nothing for other jobs. */
KMQ_PRIVATE void kmq__report_shared_palette(page *p, const kmq_run_image *images, size_t n,
                                            const kmq__own_palettes *own);
/* The detail page of one image, OUT/DIR/index.html. */
KMQ_PRIVATE kmq_status kmq__report_write_detail(const char *out_root, const kmq_run_image *im,
                                                kmq_report_mode mode, const kmq__own_palettes *own,
                                                kmq_err *err);

#endif
