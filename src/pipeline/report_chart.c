/* report_chart.c — the small inline SVG charts of the report pages (layer
 * L3; see report_page.h): a curve over k with values in [0, 1], an
 * optional band, one marked point. Inline, so a page costs no request per
 * chart; integer coordinates, so a chart stays near 2 KB. The k axis is
 * linear in k, as Kneedle reads it; k labels that would touch their left
 * neighbour are left out (the last k is always labelled). Serial.
 */
#include "report_page.h"

#include <math.h>
#include <stdio.h>

enum { W = 600, H = 250, L = 56, R = 584, T = 16, B = 206 };

static int px(double k, double k0, double k1)
{
    return k1 > k0 ? (int)lround(L + (R - L) * (k - k0) / (k1 - k0)) : (L + R) / 2;
}

static int py(double v)
{
    if (!isfinite(v))
        v = 0;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (int)lround(B - (B - T) * v);
}

/* Approximate width of a label of `chars` digits at font size 12. */
static int label_width(size_t k)
{
    int digits = k >= 100 ? 3 : k >= 10 ? 2 : 1;
    return 8 * digits;
}

void kmq__report_chart(page *p, const size_t *k, const double *mean, const double *lo,
                       const double *hi, size_t n, size_t mark, const char *label,
                       const char *aria)
{
    if (n < 2)
        return;
    double k0 = (double)k[0], k1 = (double)k[n - 1];
    /* Colours, fonts and anchors come from report.css (.chart ...). */
    page_fmt(p, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", W, H);
    page_esc(p, aria);
    page_fmt(p, "\"><rect class=\"bg\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
                "<path class=\"grid\" d=\"", L, T, R - L, B - T);
    for (int i = 0; i <= 4; i++)
        page_fmt(p, "M%d %dH%d", L, py(i / 4.0), R);
    page_raw(p, "\"/><g class=\"yl\">");
    for (int i = 0; i <= 4; i++)
        page_fmt(p, "<text x=\"%d\" y=\"%d\">%s</text>", L - 6, py(i / 4.0) + 4,
                 (const char *const[]){"0", "0.25", "0.5", "0.75", "1"}[i]);
    page_raw(p, "</g>");
    if (lo && hi) {
        page_raw(p, "<polygon class=\"band\" points=\"");
        for (size_t i = 0; i < n; i++)
            page_fmt(p, "%s%d,%d", i ? " " : "", px((double)k[i], k0, k1), py(hi[i]));
        for (size_t i = n; i-- > 0;)
            page_fmt(p, " %d,%d", px((double)k[i], k0, k1), py(lo[i]));
        page_raw(p, "\"/>");
    }
    page_raw(p, "<polyline class=\"line\" points=\"");
    for (size_t i = 0; i < n; i++)
        page_fmt(p, "%s%d,%d", i ? " " : "", px((double)k[i], k0, k1), py(mean[i]));
    /* A dot per k: a zero-length segment with round caps. */
    page_raw(p, "\"/><path class=\"dots\" d=\"");
    for (size_t i = 0; i < n; i++)
        page_fmt(p, "M%d %dh0", px((double)k[i], k0, k1), py(mean[i]));
    page_raw(p, "\"/>");
    /* k labels: kept when clear of the previous one; the last k always. */
    int last_right = -1000;
    int last_x = px((double)k[n - 1], k0, k1), last_half = label_width(k[n - 1]) / 2 + 4;
    kmq_strbuf ticks = {0};
    page_raw(p, "<g class=\"xl\">");
    for (size_t i = 0; i < n; i++) {
        int x = px((double)k[i], k0, k1), half = label_width(k[i]) / 2 + 4;
        bool is_last = i + 1 == n;
        if (!is_last && (x - half < last_right || x + half > last_x - last_half))
            continue;
        page_fmt(p, "<text x=\"%d\" y=\"%d\">%zu</text>", x, B + 17, k[i]);
        kmq_strbuf_fmt(&ticks, "M%d %dv4", x, B);
        last_right = x + half;
    }
    page_raw(p, "</g><path class=\"tick\" d=\"");
    if (ticks.failed)
        p->buf.failed = true;
    else if (ticks.len)
        page_put(p, ticks.data, ticks.len);
    kmq_strbuf_clear(&ticks);
    page_fmt(p, "\"/><text class=\"axis\" x=\"%d\" y=\"%d\">k</text>", (L + R) / 2, B + 36);
    page_fmt(p, "<text class=\"axis\" x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\">",
             (T + B) / 2, (T + B) / 2);
    page_esc(p, label);
    page_raw(p, "</text>");
    if (mark < n) {
        int x = px((double)k[mark], k0, k1), y = py(mean[mark]);
        /* The label sits right of the point, or left of it near the right
         * edge; above it unless that leaves the plot. */
        bool left = x > R - 110;
        int ty = y - 12 < T + 12 ? y + 22 : y - 12;
        page_fmt(p,
                 "<circle class=\"mark\" cx=\"%d\" cy=\"%d\" r=\"7\"/><text class=\"mark\" "
                 "x=\"%d\" y=\"%d\"%s>elbow k = %zu</text>",
                 x, y, left ? x - 10 : x + 10, ty, left ? " text-anchor=\"end\"" : "", k[mark]);
    }
    page_raw(p, "</svg>\n");
}
