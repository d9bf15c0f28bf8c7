/* plot_svg.c — the report's charts as SVG text (layer L2).
 *
 * Includes plot.h, fsx.h (L0) and internal.h only: no other adapter, no
 * summary, no image. Each chart is built in a growing text buffer whose
 * failure is sticky (appends after a failed one do nothing; the caller
 * checks once), then written with kmq_fsx_write_all.
 *
 * Axes. A linear axis over [lo, hi] gets a "nice" step: the raw step
 * (hi - lo) / target is rounded up to 1, 2 or 5 times a power of ten, and
 * the ends are widened to multiples of the step, so tick labels are short
 * round numbers. Values of 10^4 and more are shown divided by a power of
 * ten that the axis label names ("×10⁹"), so labels stay short.
 *
 * Numbers. printf's %f follows LC_NUMERIC (a comma in many locales), so
 * every number in the output is built from integers: v is rounded to
 * `decimals` places as a long long and printed as integer part '.'
 * fraction. Coordinates use one decimal.
 *
 * No parallel region; no state outside the call.
 */
#include "kmq/plot.h"
#include "kmq/utf8.h"

#include "internal.h"
#include "kmq/fsx.h"
#include "kmq/strbuf.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\""

/* ---- text buffer --------------------------------------------------------- */

static void sb_num(kmq_strbuf *b, double v, int decimals)
{
    char num[40];
    kmq_strbuf_str(b, kmq_plot_format_number(v, decimals, num));
}

/* A coordinate: one decimal is finer than a screen pixel needs. */
static void sb_xy(kmq_strbuf *b, double v)
{
    sb_num(b, v, 1);
}

static void sb_esc(kmq_strbuf *b, const char *s)
{
    char *e = kmq_plot_escape(s);
    if (!e) {
        b->failed = true;
        return;
    }
    kmq_strbuf_str(b, e);
    kmq__free(e);
}

/* ---- escaping and numbers ----------------------------------------------- */

/* Length (1..4) of the UTF-8 sequence at p (`left` bytes) if SVG can carry
 * it, or 0: valid by kmq's one rule (kmq/utf8.h), and not one of XML's
 * non-characters U+FFFE and U+FFFF. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    uint32_t cp = 0;
    size_t n = kmq_utf8_decode(p, left, &cp);
    return n && cp != 0xFFFE && cp != 0xFFFF ? n : 0;
}

char *kmq_plot_escape(const char *s)
{
    static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
    if (!s)
        s = "";
    size_t n = strlen(s);
    /* The longest expansion is 3 bytes of U+FFFD per byte or "&quot;" (6). */
    if (n > (SIZE_MAX - 1) / 6)
        return NULL;
    char *out = kmq__alloc(n * 6 + 1);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(u + i, n - i);
        const char *ent = NULL;
        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            break;
        }
        if (ent) {
            memcpy(out + o, ent, strlen(ent));
            o += strlen(ent);
            i++;
        } else if (l == 0 || (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n')) {
            memcpy(out + o, repl, 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
        }
    }
    out[o] = '\0';
    return out;
}

char *kmq_plot_format_number(double v, int decimals, char *buf)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    if (!isfinite(v)) {
        strcpy(buf, isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf"));
        return buf;
    }
    double a = fabs(v);
    if (a >= 1e15) {
        /* mantissa with 2 decimals and a decimal exponent */
        int e = (int)floor(log10(a));
        double m = a / pow(10.0, e);
        long long mm = llround(m * 100.0);
        if (mm >= 1000) {
            mm = llround(mm / 10.0);
            e++;
        }
        snprintf(buf, 40, "%s%lld.%02llde+%d", v < 0 ? "-" : "", mm / 100, mm % 100, e);
        return buf;
    }
    /* a < 1e15: keep a * 10^decimals below 1e18 < 2^63 */
    while (decimals > 0 && a * pow(10.0, decimals) >= 1e18)
        decimals--;
    long long scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    long long r = llround(a * (double)scale);
    const char *sign = (v < 0 && r != 0) ? "-" : "";
    if (decimals == 0)
        snprintf(buf, 40, "%s%lld", sign, r);
    else
        snprintf(buf, 40, "%s%lld.%0*lld", sign, r / scale, decimals, r % scale);
    return buf;
}

/* ---- axes --------------------------------------------------------------- */

typedef struct axis {
    double lo, hi, step; /* display units: value / 10^exp10 */
    int decimals;        /* of the tick labels */
    int exp10;           /* values are shown divided by 10^exp10 (0 or >= 4) */
    double p0, p1;       /* pixel positions of lo and hi */
} axis;

/* Lays out a nice axis covering [vmin, vmax] with about `target` ticks. */
static void nice_axis(axis *a, double vmin, double vmax, int target, bool from_zero,
                      bool integer_steps, double p0, double p1)
{
    if (from_zero && vmin > 0)
        vmin = 0;
    double m = fmax(fabs(vmin), fabs(vmax));
    a->exp10 = (!integer_steps && m >= 1e4) ? (int)floor(log10(m)) : 0;
    double scale = pow(10.0, a->exp10);
    vmin /= scale;
    vmax /= scale;
    if (!(vmax > vmin)) {
        double pad = integer_steps ? 1.0 : (vmin != 0 ? fabs(vmin) * 0.05 : 0.5);
        vmin -= pad;
        vmax += pad;
        if (from_zero && vmin < 0 && vmax > 0 && vmin + pad >= 0)
            vmin = 0;
    }
    double raw = (vmax - vmin) / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double step = (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * mag;
    if (integer_steps && step < 1.0)
        step = 1.0;
    a->step = step;
    a->lo = floor(vmin / step + 1e-9) * step;
    a->hi = ceil(vmax / step - 1e-9) * step;
    if (!(a->hi > a->lo))
        a->hi = a->lo + step;
    a->decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    a->p0 = p0;
    a->p1 = p1;
}

static double axis_px(const axis *a, double v)
{
    double t = (v / pow(10.0, a->exp10) - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

static size_t axis_ticks(const axis *a)
{
    return (size_t)llround((a->hi - a->lo) / a->step) + 1;
}

static double axis_tick(const axis *a, size_t i)
{
    return a->lo + (double)i * a->step; /* no accumulated rounding */
}

/* "×10" and e in superscript digits into out[40]. */
static const char *power_of_ten(int e, char out[40])
{
    static const char *const sup[10] = {"\u2070", "\u00b9", "\u00b2", "\u00b3", "\u2074",
                                        "\u2075", "\u2076", "\u2077", "\u2078", "\u2079"};
    char digits[16];
    snprintf(digits, sizeof digits, "%d", e);
    strcpy(out, "\u00d710");
    for (const char *d = digits; *d; d++)
        strcat(out, *d == '-' ? "\u207b" : sup[*d - '0']);
    return out;
}

/* ", ×10⁹" for a scaled axis, "" otherwise, into out[48]. */
static const char *axis_scale_note(const axis *a, char out[48])
{
    char p[40];
    out[0] = '\0';
    if (a->exp10 != 0)
        snprintf(out, 48, ", %s", power_of_ten(a->exp10, p));
    return out;
}

/* Gridlines, tick marks and labels of a y axis spanning x0..x1. */
static void draw_y_axis(kmq_strbuf *b, const axis *ya, double x0, double x1)
{
    size_t nt = axis_ticks(ya);
    for (size_t i = 0; i < nt; i++) {
        double t = axis_tick(ya, i);
        double y = axis_px(ya, t * pow(10.0, ya->exp10));
        kmq_strbuf_str(b, "<line class=\"grid\" x1=\"");
        sb_xy(b, x0);
        kmq_strbuf_str(b, "\" x2=\"");
        sb_xy(b, x1);
        kmq_strbuf_str(b, "\" y1=\"");
        sb_xy(b, y);
        kmq_strbuf_str(b, "\" y2=\"");
        sb_xy(b, y);
        kmq_strbuf_str(b, "\" stroke=\"#e3e3e3\"/>\n<text class=\"tick-label\" x=\"");
        sb_xy(b, x0 - 6);
        kmq_strbuf_str(b, "\" y=\"");
        sb_xy(b, y + 4);
        kmq_strbuf_str(b, "\" text-anchor=\"end\">");
        sb_num(b, t, ya->decimals);
        kmq_strbuf_str(b, "</text>\n");
    }
}

/* Tick marks and labels of an x axis at height y (labels only if asked). */
static void draw_x_axis(kmq_strbuf *b, const axis *xa, double y, bool labels)
{
    size_t nt = axis_ticks(xa);
    for (size_t i = 0; i < nt; i++) {
        double t = axis_tick(xa, i);
        double x = axis_px(xa, t * pow(10.0, xa->exp10));
        kmq_strbuf_str(b, "<line x1=\"");
        sb_xy(b, x);
        kmq_strbuf_str(b, "\" x2=\"");
        sb_xy(b, x);
        kmq_strbuf_str(b, "\" y1=\"");
        sb_xy(b, y);
        kmq_strbuf_str(b, "\" y2=\"");
        sb_xy(b, y + 5);
        kmq_strbuf_str(b, "\" stroke=\"#555\"/>\n");
        if (labels) {
            kmq_strbuf_str(b, "<text class=\"tick-label\" x=\"");
            sb_xy(b, x);
            kmq_strbuf_str(b, "\" y=\"");
            sb_xy(b, y + 18);
            kmq_strbuf_str(b, "\" text-anchor=\"middle\">");
            sb_num(b, t, xa->decimals);
            kmq_strbuf_str(b, "</text>\n");
        }
    }
}

static void draw_frame(kmq_strbuf *b, double x0, double y0, double x1, double y1)
{
    kmq_strbuf_str(b, "<rect x=\"");
    sb_xy(b, x0);
    kmq_strbuf_str(b, "\" y=\"");
    sb_xy(b, y0);
    kmq_strbuf_str(b, "\" width=\"");
    sb_xy(b, x1 - x0);
    kmq_strbuf_str(b, "\" height=\"");
    sb_xy(b, y1 - y0);
    kmq_strbuf_str(b, "\" fill=\"none\" stroke=\"#555\"/>\n");
}

/* A text element; `anchor` is start, middle or end; `cls` a class name. */
static void draw_text(kmq_strbuf *b, double x, double y, const char *anchor, const char *cls,
                      const char *extra, const char *text)
{
    kmq_strbuf_fmt(b, "<text class=\"%s\" x=\"", cls);
    sb_xy(b, x);
    kmq_strbuf_str(b, "\" y=\"");
    sb_xy(b, y);
    kmq_strbuf_fmt(b, "\" text-anchor=\"%s\"%s%s>", anchor, extra[0] ? " " : "", extra);
    sb_esc(b, text);
    kmq_strbuf_str(b, "</text>\n");
}

static void svg_begin(kmq_strbuf *b, int w, int h, const char *title)
{
    kmq_strbuf_fmt(b,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
                   "height=\"%d\" viewBox=\"0 0 %d %d\" " FONT " font-size=\"12\" fill=\"#222\">\n",
                   w, h, w, h);
    kmq_strbuf_str(b, "<title>");
    sb_esc(b, title ? title : "");
    kmq_strbuf_fmt(b, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    if (title && title[0])
        draw_text(b, 12, 20, "start", "title", "font-size=\"14\" font-weight=\"bold\"", title);
}

static kmq_status svg_finish(kmq_strbuf *b, const char *path, kmq_err *err)
{
    kmq_strbuf_str(b, "</svg>\n");
    kmq_status st;
    if (b->failed)
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory drawing %s", path);
    else
        st = kmq_fsx_write_all(path, b->data, b->len, false, err);
    kmq_strbuf_clear(b);
    memset(b, 0, sizeof *b);
    return st;
}

static void hex_colour(const uint8_t *rgb, char out[8])
{
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

/* ---- elbow chart -------------------------------------------------------- */

/* One panel's polyline and dots; non-finite values are skipped. */
static void draw_series(kmq_strbuf *b, const axis *xa, const axis *ya, const size_t *k,
                        const double *v, size_t n, const char *colour, const char *what,
                        const char *unit, int decimals)
{
    kmq_strbuf_fmt(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (!first)
            kmq_strbuf_str(b, " ");
        first = false;
        sb_xy(b, axis_px(xa, (double)k[i]));
        kmq_strbuf_str(b, ",");
        sb_xy(b, axis_px(ya, v[i]));
    }
    kmq_strbuf_str(b, "\"/>\n");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        kmq_strbuf_str(b, "<circle cx=\"");
        sb_xy(b, axis_px(xa, (double)k[i]));
        kmq_strbuf_str(b, "\" cy=\"");
        sb_xy(b, axis_px(ya, v[i]));
        kmq_strbuf_fmt(b, "\" r=\"3\" fill=\"%s\"><title>k = %zu: %s ", colour, k[i], what);
        sb_num(b, v[i], decimals);
        kmq_strbuf_fmt(b, "%s</title></circle>\n", unit);
    }
}

kmq_status kmq_plot_elbow(const char *path, const char *title, const size_t *k,
                          const double *inertia, const double *psnr_db, size_t n,
                          size_t elbow_index, kmq_err *err)
{
    if (!path || !k || !inertia || !psnr_db || n == 0)
        return kmq_err_set(err, KMQ_E_ARG, "elbow chart needs at least one point");
    if (elbow_index != KMQ_PLOT_NONE && elbow_index >= n)
        return kmq_err_set(err, KMQ_E_ARG, "elbow index %zu is beyond the %zu points", elbow_index,
                           n);
    double imin = INFINITY, imax = -INFINITY, pmin = INFINITY, pmax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && k[i] <= k[i - 1])
            return kmq_err_set(err, KMQ_E_ARG, "k values are not ascending at point %zu", i);
        if (!isfinite(inertia[i]))
            return kmq_err_set(err, KMQ_E_ARG, "inertia at k = %zu is not finite", k[i]);
        imin = fmin(imin, inertia[i]);
        imax = fmax(imax, inertia[i]);
        if (isfinite(psnr_db[i])) {
            pmin = fmin(pmin, psnr_db[i]);
            pmax = fmax(pmax, psnr_db[i]);
        }
    }
    enum { W = 640, H = 470, L = 84, R = 620 };
    const double top0 = 58, top1 = 228, bot0 = 272, bot1 = 412;
    kmq_strbuf b = {0};
    axis xa, ya, pa;
    char note[48];
    nice_axis(&xa, (double)k[0], (double)k[n - 1], n <= 16 ? (int)n : 8, false, true, L + 12,
              R - 12);
    if (k[n - 1] - k[0] + 1 <= 16 && k[n - 1] > k[0]) {
        xa.step = 1; /* every k of a short sweep gets its tick */
        xa.lo = (double)k[0];
        xa.hi = (double)k[n - 1];
    }
    nice_axis(&ya, imin, imax, 5, true, false, top1, top0);
    bool have_psnr = pmin <= pmax;
    nice_axis(&pa, have_psnr ? pmin : 0, have_psnr ? pmax : 1, 4, false, false, bot1, bot0);

    svg_begin(&b, W, H, title);
    char label[160];
    snprintf(label, sizeof label, "inertia (sum of squared RGB distances, 0\u2013255 scale%s)",
             axis_scale_note(&ya, note));
    draw_text(&b, L, top0 - 8, "start", "axis-label", "", label);
    draw_y_axis(&b, &ya, L, R);
    draw_frame(&b, L, top0, R, top1);
    draw_x_axis(&b, &xa, top1, false);
    draw_text(&b, L, bot0 - 8, "start", "axis-label", "", "PSNR of the written image (dB)");
    if (have_psnr)
        draw_y_axis(&b, &pa, L, R);
    else
        draw_text(&b, (L + R) / 2.0, (bot0 + bot1) / 2, "middle", "note", "",
                  "lossless at every k (PSNR infinite)");
    draw_frame(&b, L, bot0, R, bot1);
    draw_x_axis(&b, &xa, bot1, true);
    draw_text(&b, (L + R) / 2.0, bot1 + 40, "middle", "axis-label", "", "k (number of colours)");

    if (elbow_index != KMQ_PLOT_NONE) {
        double x = axis_px(&xa, (double)k[elbow_index]);
        kmq_strbuf_str(&b, "<g class=\"elbow-marker\" stroke=\"#d62728\">\n<line x1=\"");
        sb_xy(&b, x);
        kmq_strbuf_str(&b, "\" x2=\"");
        sb_xy(&b, x);
        kmq_strbuf_fmt(&b,
                       "\" y1=\"%d\" y2=\"%d\" stroke-dasharray=\"5 4\" stroke-width=\"1.5\"/>\n",
                       (int)top0, (int)bot1);
        kmq_strbuf_str(&b, "<circle cx=\"");
        sb_xy(&b, x);
        kmq_strbuf_str(&b, "\" cy=\"");
        sb_xy(&b, axis_px(&ya, inertia[elbow_index]));
        kmq_strbuf_str(&b, "\" r=\"8\" fill=\"none\" stroke-width=\"2.5\"/>\n");
        if (isfinite(psnr_db[elbow_index])) {
            kmq_strbuf_str(&b, "<circle cx=\"");
            sb_xy(&b, x);
            kmq_strbuf_str(&b, "\" cy=\"");
            sb_xy(&b, axis_px(&pa, psnr_db[elbow_index]));
            kmq_strbuf_str(&b, "\" r=\"8\" fill=\"none\" stroke-width=\"2.5\"/>\n");
        }
        kmq_strbuf_str(&b, "</g>\n");
        snprintf(label, sizeof label, "elbow: k = %zu", k[elbow_index]);
        bool right = x < (L + R) / 2.0;
        draw_text(&b, right ? x + 8 : x - 8, top0 + 16, right ? "start" : "end", "elbow-label",
                  "fill=\"#d62728\" font-weight=\"bold\"", label);
    }
    draw_series(&b, &xa, &ya, k, inertia, n, "#1f77b4", "inertia", "", 0);
    if (have_psnr)
        draw_series(&b, &xa, &pa, k, psnr_db, n, "#2ca02c", "PSNR", " dB", 2);
    return svg_finish(&b, path, err);
}

/* ---- restart costs ------------------------------------------------------ */

/* Percent above the best; the best is 0 and a 0-inertia best makes every
 * other restart "infinitely" worse, drawn at the axis end. */
static double rel_pct(double v, double best)
{
    if (v <= best)
        return 0.0;
    return best > 0 ? (v - best) / best * 100.0 : INFINITY;
}

kmq_status kmq_plot_restarts(const char *path, const char *title, const kmq_plot_strip *strips,
                             size_t n, kmq_err *err)
{
    if (!path || !strips || n == 0)
        return kmq_err_set(err, KMQ_E_ARG, "restart chart needs at least one k");
    double rmax = 0;
    for (size_t i = 0; i < n; i++) {
        const kmq_plot_strip *s = &strips[i];
        if (!s->inertia || s->n == 0 || s->best >= s->n)
            return kmq_err_set(err, KMQ_E_ARG, "restart strip %zu has no values or a bad best", i);
        for (size_t j = 0; j < s->n; j++) {
            if (!isfinite(s->inertia[j]))
                return kmq_err_set(err, KMQ_E_ARG, "restart %zu of k = %zu is not finite", j, s->k);
            double r = rel_pct(s->inertia[j], s->inertia[s->best]);
            if (isfinite(r))
                rmax = fmax(rmax, r);
        }
    }
    enum { W = 640, L = 70, R = 470, ROW = 20 };
    const double top = 70;
    double bottom = top + ROW * (double)n;
    int h = (int)bottom + 56;
    kmq_strbuf b = {0};
    axis xa;
    nice_axis(&xa, 0, rmax > 0 ? rmax : 1, 5, true, false, L + 8, R - 8);
    svg_begin(&b, W, h, title);
    /* legend */
    kmq_strbuf_str(&b,
                   "<g class=\"legend\">\n"
                   "<circle cx=\"18\" cy=\"40\" r=\"5\" fill=\"#2ca02c\" stroke=\"#145214\"/>\n"
                   "<text x=\"28\" y=\"44\">best restart (kept)</text>\n"
                   "<rect x=\"163\" y=\"35\" width=\"10\" height=\"10\" fill=\"#d62728\"/>\n"
                   "<text x=\"179\" y=\"44\">worst restart</text>\n"
                   "<circle cx=\"293\" cy=\"40\" r=\"4\" fill=\"#7f7f7f\" fill-opacity=\"0.6\"/>\n"
                   "<text x=\"302\" y=\"44\">other restarts</text>\n</g>\n");
    draw_text(&b, R + 8, top - 6, "start", "axis-label", "", "best inertia");
    kmq_strbuf_fmt(&b, "<text class=\"axis-label\" x=\"%d\" y=\"", L - 8);
    sb_xy(&b, top - 6);
    kmq_strbuf_str(&b, "\" text-anchor=\"end\">k</text>\n");
    /* vertical gridlines at the ticks */
    size_t nt = axis_ticks(&xa);
    for (size_t t = 0; t < nt; t++) {
        double x = axis_px(&xa, axis_tick(&xa, t) * pow(10.0, xa.exp10));
        kmq_strbuf_str(&b, "<line class=\"grid\" x1=\"");
        sb_xy(&b, x);
        kmq_strbuf_str(&b, "\" x2=\"");
        sb_xy(&b, x);
        kmq_strbuf_str(&b, "\" y1=\"");
        sb_xy(&b, top);
        kmq_strbuf_str(&b, "\" y2=\"");
        sb_xy(&b, bottom);
        kmq_strbuf_str(&b, "\" stroke=\"#e3e3e3\"/>\n");
    }
    for (size_t i = 0; i < n; i++) {
        const kmq_plot_strip *s = &strips[i];
        double y = top + ROW * ((double)i + 0.5);
        double best = s->inertia[s->best];
        size_t worst = s->best;
        for (size_t j = 0; j < s->n; j++)
            if (s->inertia[j] > s->inertia[worst])
                worst = j;
        char num[40], label[96];
        snprintf(label, sizeof label, "%zu", s->k);
        draw_text(&b, L - 8, y + 4, "end", "tick-label", "", label);
        kmq_strbuf_fmt(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"", L, R);
        sb_xy(&b, y);
        kmq_strbuf_str(&b, "\" y2=\"");
        sb_xy(&b, y);
        kmq_strbuf_str(&b, "\" stroke=\"#cfcfcf\"/>\n");
        for (int pass = 0; pass < 3; pass++) { /* others, then worst, then best on top */
            for (size_t j = 0; j < s->n; j++) {
                bool is_best = j == s->best, is_worst = j == worst && !is_best;
                if ((is_best ? 2 : is_worst ? 1 : 0) != pass)
                    continue;
                double r = rel_pct(s->inertia[j], best);
                double x = isfinite(r) ? axis_px(&xa, r) : xa.p1;
                if (is_worst) {
                    kmq_strbuf_str(&b, "<rect class=\"worst\" x=\"");
                    sb_xy(&b, x - 5);
                    kmq_strbuf_str(&b, "\" y=\"");
                    sb_xy(&b, y - 5);
                    kmq_strbuf_str(&b, "\" width=\"10\" height=\"10\" fill=\"#d62728\">");
                } else {
                    kmq_strbuf_str(&b, is_best ? "<circle class=\"best\" cx=\"" : "<circle cx=\"");
                    sb_xy(&b, x);
                    kmq_strbuf_str(&b, "\" cy=\"");
                    sb_xy(&b, y);
                    kmq_strbuf_str(&b, is_best
                                           ? "\" r=\"5\" fill=\"#2ca02c\" stroke=\"#145214\">"
                                           : "\" r=\"4\" fill=\"#7f7f7f\" fill-opacity=\"0.6\">");
                }
                kmq_strbuf_fmt(&b, "<title>k = %zu, restart %zu: inertia ", s->k, j);
                kmq_strbuf_str(&b, kmq_plot_format_number(s->inertia[j], 0, num));
                kmq_strbuf_str(&b, " (+");
                kmq_strbuf_str(&b, kmq_plot_format_number(r, 3, num));
                kmq_strbuf_str(&b, is_worst ? " %, worst)</title></rect>\n"
                                            : (is_best ? " %, best)</title></circle>\n"
                                                       : " %)</title></circle>\n"));
            }
        }
        /* best inertia, 4 significant digits with a power of ten */
        int e = best > 0 ? (int)floor(log10(best)) : 0;
        char mant[40], pw[40];
        if (e >= 4 || e <= -3)
            snprintf(label, sizeof label, "%s%s",
                     kmq_plot_format_number(best / pow(10.0, e), 3, mant), power_of_ten(e, pw));
        else
            snprintf(label, sizeof label, "%s", kmq_plot_format_number(best, e < 0 ? 4 : 1, mant));
        draw_text(&b, R + 8, y + 4, "start", "value-label", "", label);
    }
    draw_frame(&b, L, top, R, bottom);
    draw_x_axis(&b, &xa, bottom, true);
    draw_text(&b, (L + R) / 2.0, bottom + 40, "middle", "axis-label", "",
              "inertia above the best restart of the same k (%)");
    return svg_finish(&b, path, err);
}

/* ---- colour space ------------------------------------------------------- */

kmq_status kmq_plot_rgb_projections(const char *path, const char *title, const uint8_t *rgb,
                                    const uint8_t *labels, size_t n, const uint8_t *palette,
                                    size_t m, kmq_err *err)
{
    if (!path || (n > 0 && (!rgb || !labels)) || !palette || m == 0 || m > 256)
        return kmq_err_set(err, KMQ_E_ARG, "colour-space chart needs points and 1..256 colours");
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= m)
            return kmq_err_set(err, KMQ_E_ARG, "point %zu has label %u, beyond %zu colours", i,
                               labels[i], m);
    enum { W = 870, H = 330, SIDE = 230, GAP = 60, L = 54, TOP = 44 };
    static const int pairs[3][2] = {{0, 1}, {1, 2}, {0, 2}}; /* R-G, G-B, R-B */
    static const char *const names[3] = {"R", "G", "B"};
    kmq_strbuf b = {0};
    svg_begin(&b, W, H, title);
    char label[64], hex[8];
    uint16_t(*drawn)[SIDE + 1] = kmq__calloc(SIDE + 1, sizeof *drawn);
    if (!drawn) {
        kmq_strbuf_clear(&b);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory drawing a colour-space chart");
    }
    for (int p = 0; p < 3; p++) {
        int cx = pairs[p][0], cy = pairs[p][1];
        double x0 = L + p * (SIDE + GAP), y0 = TOP;
        axis xa, ya;
        nice_axis(&xa, 0, 250, 5, true, true, x0, x0 + SIDE * 250.0 / 255.0);
        nice_axis(&ya, 0, 250, 5, true, true, y0 + SIDE, y0 + SIDE - SIDE * 250.0 / 255.0);
        kmq_strbuf_str(&b, "<rect x=\"");
        sb_xy(&b, x0);
        kmq_strbuf_str(&b, "\" y=\"");
        sb_xy(&b, y0);
        kmq_strbuf_fmt(&b, "\" width=\"%d\" height=\"%d\" fill=\"#f2f2f2\"/>\n", SIDE, SIDE);
        draw_y_axis(&b, &ya, x0, x0 + SIDE);
        draw_x_axis(&b, &xa, y0 + SIDE, true);
        /* One path per cluster: a 2 px square per point, on whole pixels,
         * drawn once per pixel and cluster (`drawn` holds the last cluster
         * + 1 that drew each pixel), which keeps the file small. */
        memset(drawn, 0, (SIDE + 1) * sizeof *drawn);
        for (size_t c = 0; c < m; c++) {
            bool any = false;
            for (size_t i = 0; i < n; i++) {
                if (labels[i] != c)
                    continue;
                int gx = (int)lround(SIDE * rgb[3 * i + (size_t)cx] / 255.0);
                int gy = (int)lround(SIDE * rgb[3 * i + (size_t)cy] / 255.0);
                uint16_t *cell = &drawn[gy][gx];
                if (*cell == c + 1)
                    continue;
                *cell = (uint16_t)(c + 1);
                if (!any) {
                    hex_colour(palette + 3 * c, hex);
                    kmq_strbuf_fmt(&b,
                                   "<path fill=\"%s\" stroke=\"#000\" stroke-opacity=\"0.25\" "
                                   "stroke-width=\"0.3\" d=\"",
                                   hex);
                    any = true;
                }
                kmq_strbuf_fmt(&b, "M%d %dh2v2h-2z", (int)x0 + gx - 1, (int)y0 + SIDE - gy - 1);
            }
            if (any)
                kmq_strbuf_str(&b, "\"/>\n");
        }
        for (size_t c = 0; c < m; c++) {
            hex_colour(palette + 3 * c, hex);
            kmq_strbuf_str(&b, "<circle class=\"centre\" cx=\"");
            sb_xy(&b, x0 + SIDE * palette[3 * c + (size_t)cx] / 255.0);
            kmq_strbuf_str(&b, "\" cy=\"");
            sb_xy(&b, y0 + SIDE - SIDE * palette[3 * c + (size_t)cy] / 255.0);
            kmq_strbuf_fmt(&b,
                           "\" r=\"6\" fill=\"%s\" stroke=\"#000\" stroke-width=\"1.5\">"
                           "<title>colour %zu: %s</title></circle>\n",
                           hex, c, hex);
        }
        draw_frame(&b, x0, y0, x0 + SIDE, y0 + SIDE);
        snprintf(label, sizeof label, "%s (0\u2013255)", names[cx]);
        draw_text(&b, x0 + SIDE / 2.0, y0 + SIDE + 38, "middle", "axis-label", "", label);
        snprintf(label, sizeof label, "%s (0\u2013255)", names[cy]);
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %d %d)\"", (int)x0 - 38,
                 (int)(y0 + SIDE / 2));
        draw_text(&b, x0 - 38, y0 + SIDE / 2.0, "middle", "axis-label", rot, label);
    }
    kmq__free(drawn);
    return svg_finish(&b, path, err);
}

/* ---- palette ------------------------------------------------------------ */

kmq_status kmq_plot_palette(const char *path, const char *title, const uint8_t *rgb,
                            const uint64_t *pixels, size_t m, kmq_err *err)
{
    if (!path || !rgb || !pixels || m == 0 || m > 256)
        return kmq_err_set(err, KMQ_E_ARG, "palette chart needs 1..256 colours");
    double total = 0;
    for (size_t i = 0; i < m; i++)
        total += (double)pixels[i];
    if (!(total > 0))
        return kmq_err_set(err, KMQ_E_ARG, "palette chart: every colour has 0 pixels");
    size_t order[256];
    for (size_t i = 0; i < m; i++)
        order[i] = i;
    for (size_t i = 1; i < m; i++) { /* insertion sort, stable: widest first */
        size_t v = order[i], j = i;
        while (j > 0 && pixels[order[j - 1]] < pixels[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    enum { W = 320, H = 102, L = 12, R = 308, Y0 = 30, Y1 = 62 };
    kmq_strbuf b = {0};
    svg_begin(&b, W, H, title);
    axis xa;
    nice_axis(&xa, 0, 100, 5, true, true, L, R);
    double x = L;
    char hex[8], num[40];
    for (size_t i = 0; i < m; i++) {
        const uint8_t *c = rgb + 3 * order[i];
        double share = (double)pixels[order[i]] / total;
        double w = share * (R - L);
        hex_colour(c, hex);
        kmq_strbuf_str(&b, "<rect x=\"");
        sb_xy(&b, x);
        kmq_strbuf_fmt(&b, "\" y=\"%d\" width=\"", Y0);
        sb_xy(&b, w);
        kmq_strbuf_fmt(&b, "\" height=\"%d\" fill=\"%s\"><title>%s: %" PRIu64 " pixels, ", Y1 - Y0,
                       hex, hex, pixels[order[i]]);
        kmq_strbuf_str(&b, kmq_plot_format_number(share * 100.0, 2, num));
        kmq_strbuf_str(&b, " %</title></rect>\n");
        if (w >= 58) {
            /* Rec. 601 luma decides dark or light text */
            double luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
            char extra[32];
            snprintf(extra, sizeof extra, "fill=\"%s\"", luma > 140 ? "#000" : "#fff");
            draw_text(&b, x + w / 2, (Y0 + Y1) / 2.0 + 4, "middle", "swatch-label", extra, hex);
        }
        x += w;
    }
    draw_frame(&b, L, Y0, R, Y1);
    draw_x_axis(&b, &xa, Y1, true);
    draw_text(&b, (L + R) / 2.0, H - 4, "middle", "axis-label", "", "pixel share (%)");
    return svg_finish(&b, path, err);
}
