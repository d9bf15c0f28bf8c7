/* plot.h — the report's charts as standalone SVG files (layer L2).
 *
 * Pure formatting: every function takes plain arrays, lays out axes with
 * "nice" tick steps (1, 2 or 5 times a power of ten), tick labels, axis
 * labels with units and a title, and writes one SVG 1.1 document atomically
 * (kmq_fsx_write_all, not fsynced: charts can be redrawn). Nothing here
 * knows images, jobs or summaries.
 *
 * Text. Titles and labels are UTF-8; bytes that are not valid UTF-8 and
 * control characters become U+FFFD, and & < > " ' are written as entities,
 * so any file name is safe in a title. Numbers are formatted with integer
 * arithmetic and '.' as the decimal point whatever LC_NUMERIC says.
 *
 * Determinism: the same data give the same bytes. No parallel region; the
 * functions are reentrant.
 */
#ifndef KMQ_PLOT_H
#define KMQ_PLOT_H

#include "kmq/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No point is marked" for kmq_plot_elbow's elbow_index. */
#define KMQ_PLOT_NONE SIZE_MAX

/* Writes the elbow chart: two panels sharing the k axis, inertia against k
 * (top) and PSNR in dB against k (bottom), the point at elbow_index marked
 * in both with a dashed line (KMQ_PLOT_NONE: no mark). `k` (ascending),
 * `inertia` and `psnr_db` have n entries each, borrowed; a PSNR that is not
 * finite (lossless result) is left out of its panel. `title` may be NULL.
 * Returns KMQ_OK, KMQ_E_ARG (n == 0, a NULL array, k not ascending,
 * elbow_index >= n), KMQ_E_NOMEM or KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_plot_elbow(const char *path, const char *title, const size_t *k,
                                         const double *inertia, const double *psnr_db, size_t n,
                                         size_t elbow_index, kmq_err *err);

/* One row of the restart-cost chart: every restart's inertia for one k. */
typedef struct kmq_plot_strip {
    size_t k;
    const double *inertia; /* n values, borrowed */
    size_t n;
    size_t best; /* index of the restart that was kept */
} kmq_plot_strip;

/* Writes the restart-cost chart: one strip per k, each restart a dot at its
 * inertia relative to the best restart of that k (percent above the best,
 * one shared axis), the best restart and the worst one marked, and the best
 * inertia printed beside the strip. `strips` (n of them) is borrowed.
 * Returns KMQ_OK, KMQ_E_ARG (n == 0, a strip without values, best out of
 * range, a non-finite inertia), KMQ_E_NOMEM or KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_plot_restarts(const char *path, const char *title,
                                            const kmq_plot_strip *strips, size_t n, kmq_err *err);

/* Writes three 2-D projections of colours in RGB space (R-G, G-B, R-B,
 * axes 0-255): point i at rgb[3i..3i+2], filled with the colour
 * palette[3 * labels[i]] of its cluster; the m palette colours are drawn
 * on top as larger outlined markers. All arrays borrowed: rgb and labels
 * have n entries, palette m (1..256). Returns KMQ_OK, KMQ_E_ARG (m == 0 or
 * above 256, a label >= m, a NULL array), KMQ_E_NOMEM or KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_plot_rgb_projections(const char *path, const char *title,
                                                   const uint8_t *rgb, const uint8_t *labels,
                                                   size_t n, const uint8_t *palette, size_t m,
                                                   kmq_err *err);

/* Writes palette swatches as one bar on a 0-100 % axis: each of the m
 * colours (rgb[3i..3i+2]) gets a width proportional to its pixel count,
 * widest first (ties: palette order), labelled with its hex code where it
 * is wide enough and with a tooltip always. Returns KMQ_OK, KMQ_E_ARG
 * (m == 0, NULL arrays, all counts 0), KMQ_E_NOMEM or KMQ_E_WRITE. */
KMQ_MUST_CHECK kmq_status kmq_plot_palette(const char *path, const char *title, const uint8_t *rgb,
                                           const uint64_t *pixels, size_t m, kmq_err *err);

/* Escapes UTF-8 text for XML and HTML, in text and in quoted attributes:
 * & < > " ' become entities; invalid UTF-8 bytes and control characters
 * other than tab and newline become U+FFFD. NULL is treated as "". Returns
 * a new string (free with free()) or NULL when out of memory. */
char *kmq_plot_escape(const char *s);

/* Formats v with `decimals` (0..9) digits after a '.', independently of the
 * locale, into buf (at least 40 bytes); a value that is not finite or whose
 * magnitude is 1e15 or more is written with 3 significant digits and an
 * exponent ("1.23e+17"), also locale-independently. Returns buf. */
char *kmq_plot_format_number(double v, int decimals, char *buf);

#endif
