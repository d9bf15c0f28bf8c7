/* report_detail.c — one image's page, OUT/DIR/index.html (layer L3; see
 * report_page.h).
 *
 * Built from the summary and the files that exist in the image's folder:
 * the facts of the input, the suggested k, the original (thumb.jpg, and
 * with report = full preview.jpg) beside every k's indexed PNG, each a
 * thumbnail (shown at most 200 px high, loading="lazy") that opens the full
 * image; the inertia curve drawn inline (normalised as the collection's:
 * (I - min) / (max - min)), the palettes as coloured strips, a table of
 * every k's numbers, and under report = full the chart files (elbow,
 * restarts, colour scatter). A failed, pending or stale image gets a page
 * that says so. Links go up to the overview and report.css with "../".
 * Serial; no parallel region.
 */
#include "report_page.h"

#include "kmq/outputs.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* width/height attributes of a w x h picture shown within 200 x 200 px,
 * so that the layout does not move as lazy images arrive. */
static void fit_attrs(page *p, uint32_t w, uint32_t h)
{
    if (!w || !h)
        return;
    double f = fmin(1.0, 200.0 / (double)(w > h ? w : h));
    uint32_t fw = (uint32_t)lround(w * f), fh = (uint32_t)lround(h * f);
    page_fmt(p, " width=\"%" PRIu32 "\" height=\"%" PRIu32 "\"", fw ? fw : 1, fh ? fh : 1);
}

/* The palette as one strip, each colour as wide as its pixel share: a
 * gradient of hard stops (a few bytes a colour, no element each). */
static void palette_strip(page *p, const kmq_k_result *r)
{
    uint64_t total = 0, run = 0;
    for (size_t j = 0; r->palette && j < r->k_effective; j++)
        total += r->palette[j].pixels;
    page_raw(p, "<div class=\"pal\" style=\"background:linear-gradient(90deg");
    for (size_t j = 0; r->palette && j < r->k_effective; j++) {
        const uint8_t *c = r->palette[j].rgb;
        run += r->palette[j].pixels;
        page_fmt(p, ",#%02x%02x%02x 0 ", c[0], c[1], c[2]);
        page_num(p, total ? 100.0 * (double)run / (double)total : 100.0, 1);
        page_raw(p, "%");
    }
    page_raw(p, ")\"></div>");
}

static void compare_part(page *p, const char *dir, const kmq_summary *s, kmq_report_mode mode)
{
    page_raw(p, "<section>\n<h3>The original and every k</h3>\n<div class=\"compare\">\n");
    if (page_exists(p, dir, KMQ_THUMB_JPG)) {
        bool big = mode == KMQ_REPORT_FULL && page_exists(p, dir, KMQ_PREVIEW_JPG);
        page_raw(p, "<figure><a href=\"");
        page_raw(p, big ? KMQ_PREVIEW_JPG : KMQ_THUMB_JPG);
        page_raw(p, "\"><img src=\"" KMQ_THUMB_JPG "\" loading=\"lazy\" alt=\"the original\"");
        fit_attrs(p, s->width, s->height); /* as large as the k pictures beside it */
        page_fmt(p, "></a><figcaption><b>original</b> (%s)</figcaption></figure>\n",
                 big ? "preview: open it larger" : "thumbnail");
    }
    for (size_t i = 0; i < s->nresults; i++) {
        const kmq_k_result *r = &s->results[i];
        bool elbow = s->has_elbow && s->elbow_k == r->k;
        page_fmt(p, "<figure%s>", elbow ? " class=\"elbow\"" : "");
        if (r->indexed.path && page_exists(p, dir, r->indexed.path)) {
            page_raw(p, "<a href=\"");
            page_url(p, NULL, r->indexed.path);
            page_raw(p, "\"><img src=\"");
            page_url(p, NULL, r->indexed.path);
            page_fmt(p, "\" loading=\"lazy\" alt=\"quantized to %zu colours\"", r->k);
            fit_attrs(p, s->width, s->height);
            page_raw(p, "></a>");
        }
        page_fmt(p, "<figcaption><b>k = %zu</b>%s", r->k, elbow ? " (elbow)" : "");
        if (r->k_effective != r->k)
            page_fmt(p, ", %zu colours exist", r->k_effective);
        page_raw(p, " \u00b7 ");
        if (r->mse_output > 0) {
            page_num(p, r->psnr_db, 2);
            page_raw(p, " dB");
        } else {
            page_raw(p, "lossless");
        }
        if (r->png_bytes) {
            page_raw(p, " \u00b7 ");
            page_bytes(p, r->png_bytes);
        }
        page_raw(p, "</figcaption></figure>\n");
    }
    page_raw(p, "</div>\n</section>\n");
}

static void charts_part(page *p, const char *dir, const kmq_summary *s, kmq_report_mode mode)
{
    enum { MAXK = 256 };
    size_t k[MAXK], n = s->nresults < MAXK ? s->nresults : MAXK, mark = MAXK;
    double v[MAXK], lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        k[i] = s->results[i].k;
        lo = fmin(lo, s->results[i].inertia);
        hi = fmax(hi, s->results[i].inertia);
        if (s->has_elbow && s->elbow_k == k[i])
            mark = i;
    }
    page_raw(p, "<section>\n<h3>Inertia against k</h3>\n<div class=\"charts\">\n");
    if (n >= 2) {
        for (size_t i = 0; i < n; i++)
            v[i] = hi > lo ? (s->results[i].inertia - lo) / (hi - lo) : 0.0;
        page_raw(p, "<div>");
        kmq__report_chart(p, k, v, NULL, NULL, n, mark, "normalised inertia",
                          "inertia against k, normalised to 0..1, the elbow circled");
        page_raw(p, "</div>\n");
    } else {
        page_raw(p, "<p class=\"muted\">One k: no curve.</p>\n");
    }
    static const char *const files[][2] = {{KMQ_ELBOW_SVG, "inertia and PSNR against k"},
                                           {KMQ_RESTARTS_SVG, "every restart's inertia per k"}};
    for (size_t c = 0; mode == KMQ_REPORT_FULL && c < 2; c++) {
        if (!page_exists(p, dir, files[c][0]))
            continue;
        page_raw(p, "<div><a href=\"");
        page_raw(p, files[c][0]);
        page_raw(p, "\"><img src=\"");
        page_raw(p, files[c][0]);
        page_fmt(p, "\" loading=\"lazy\" alt=\"%s\"></a></div>\n", files[c][1]);
    }
    for (size_t i = 0; mode == KMQ_REPORT_FULL && i < s->nresults; i++) {
        char name[KMQ_K_NAME_MAX];
        kmq_k_file_name(s->results[i].k, KMQ_K_COLORS_SVG, name);
        if (!page_exists(p, dir, name))
            continue;
        page_raw(p, "<div><a href=\"");
        page_raw(p, name);
        page_raw(p, "\"><img src=\"");
        page_raw(p, name);
        page_fmt(p,
                 "\" loading=\"lazy\" alt=\"colour sample in RGB space for k = %zu\"></a></div>\n",
                 s->results[i].k);
    }
    page_raw(p, "</div>\n</section>\n");
}

static void numbers_part(page *p, const char *dir, const kmq_summary *s,
                         const kmq__own_palettes *own)
{
    page_raw(p, "<section>\n<h3>Every k</h3>\n<div class=\"scroll\"><table>\n<tr><th class=\"n\">k"
                "</th><th>palette (widths by pixel share)</th><th class=\"n\">PSNR</th>"
                "<th class=\"n\" title=\"OKLab distance \u00d7 100 per pixel, mean and 95th "
                "percentile\">\u0394E<sub>OK</sub> mean / p95</th><th class=\"n\">MSE</th><th "
                "class=\"n\">inertia</th><th class=\"n\">iterations"
                "</th><th class=\"n\">PNG</th><th class=\"n\">vs input</th><th class=\"n\">time"
                "</th><th>files</th></tr>\n");
    for (size_t i = 0; i < s->nresults; i++) {
        const kmq_k_result *r = &s->results[i];
        page_fmt(p, "<tr><td class=\"n\">%zu</td><td class=\"pal-cell\">", r->k);
        palette_strip(p, r);
        page_raw(p, "</td><td class=\"n\">");
        if (r->mse_output > 0) {
            page_num(p, r->psnr_db, 2);
            page_raw(p, " dB");
        } else {
            page_raw(p, "lossless");
        }
        const kmq_k_result *mine = kmq__own_palette_result(own, s, r->k);
        if (mine && mine->mse_output > 0) { /* the same input on its own palette */
            page_raw(p, "<br><small>own palette ");
            page_num(p, mine->psnr_db, 2);
            page_raw(p, " dB</small>");
        }
        page_raw(p, "</td><td class=\"n\">");
        if (isfinite(r->delta_e_mean)) {
            page_num(p, r->delta_e_mean, 2);
            page_raw(p, " / ");
            page_num(p, r->delta_e_p95, 2);
        } else {
            page_raw(p, "\u2013"); /* a summary of a kmq before it */
        }
        page_raw(p, "</td><td class=\"n\">");
        page_num(p, r->mse, 1);
        page_raw(p, "</td><td class=\"n\">");
        page_scientific(p, r->inertia);
        page_fmt(p, "</td><td class=\"n\">%d%s</td><td class=\"n\">", r->iterations,
                 r->converged ? "" : " (max)");
        if (r->png_bytes) {
            page_bytes(p, r->png_bytes);
            page_fmt(p, ", %d bpp", r->indexed.bits_per_pixel);
        } else {
            page_raw(p, "\u2013");
        }
        page_raw(p, "</td><td class=\"n\">");
        if (r->png_bytes) {
            page_num(p, r->ratio_vs_input, 2);
            page_raw(p, "\u00d7");
        } else {
            page_raw(p, "\u2013");
        }
        page_raw(p, "</td><td class=\"n\">");
        page_seconds(p, r->fit_s + r->map_s);
        page_raw(p, "</td><td>");
        const kmq_file_info *more[2] = {&r->labels, &r->swatch};
        static const char *const what[2] = {"label map", "palette PNG"};
        for (size_t f = 0; f < 2; f++) {
            if (!more[f]->path || !page_exists(p, dir, more[f]->path))
                continue;
            page_raw(p, "<a href=\"");
            page_url(p, NULL, more[f]->path);
            page_fmt(p, "\">%s</a> ", what[f]);
        }
        page_raw(p, "</td></tr>\n");
    }
    page_raw(p, "</table></div>\n</section>\n");
}

/* What the quality search chose, and the k before it that missed. */
static void target_line(page *p, const kmq_summary *s)
{
    const kmq_k_result *r = &s->results[0];
    page_fmt(p, "Quality target %g dB: ", s->target_psnr);
    if (s->target_reached) {
        page_fmt(p, "<b>k = %zu</b> is the smallest k of the list that reaches it (", r->k);
        if (r->mse_output > 0) {
            page_num(p, r->psnr_db, 2);
            page_raw(p, " dB");
        } else {
            page_raw(p, "lossless");
        }
        page_raw(p, ")");
        for (size_t i = s->ntried; i-- > 0;)
            if (s->tried[i].k < r->k) {
                page_fmt(p, "; k = %zu gives ", s->tried[i].k);
                page_num(p, s->tried[i].psnr_db, 2);
                page_raw(p, " dB");
                break;
            }
    } else {
        page_fmt(p, "<b class=\"bad\">not reached</b>; the largest k, %zu, gives ", r->k);
        page_num(p, r->psnr_db, 2);
        page_raw(p, " dB and is written");
    }
    page_fmt(p, ". %zu k fitted in the search.", s->ntried);
}

kmq_status kmq__report_write_detail(const char *out_root, const kmq_run_image *im,
                                    kmq_report_mode mode, const kmq__own_palettes *own,
                                    kmq_err *err)
{
    page pg = {.root = out_root}, *p = &pg;
    const kmq_summary *s = im->summary;
    const char *dir = im->dir;
    const char *name = page_image_name(s);
    char *title = kmq__asprintf("%s \u2013 kmq report", name);
    if (!title)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    page_head(p, title, dir);
    kmq__free(title);
    page_raw(p, "<header><h1>");
    page_esc(p, name);
    page_raw(p, "</h1><p><a href=\"");
    page_up(p, dir);
    page_raw(p, KMQ_INDEX_HTML "\">\u2190 all images</a> \u00b7 job ");
    page_esc(p, s->job);
    page_raw(p, "</p></header>\n<main>\n<section>\n<p class=\"meta\">");
    if (!s->ok) {
        page_fmt(p, "<span class=\"status-%s\">%s: <code>", page_status(s), page_status(s));
        page_esc(p, s->error_code);
        page_raw(p, "</code> \u2013 ");
        page_esc(p, s->error_message);
        page_raw(p, "</span><br>input: ");
        page_esc(p, s->path);
        if (page_exists(p, dir, KMQ_SUMMARY_JSON))
            page_raw(p, " \u00b7 <a href=\"" KMQ_SUMMARY_JSON "\">summary.json</a>");
        page_raw(p, "</p>\n</section>\n");
    } else {
        page_fmt(p, "%" PRIu32 " \u00d7 %" PRIu32 " px \u00b7 ", s->width, s->height);
        page_count(p, s->unique_colors);
        page_raw(p, " distinct colours \u00b7 ");
        page_esc(p, s->format);
        page_raw(p, ", ");
        page_bytes(p, s->bytes);
        page_raw(p, " \u00b7 ");
        page_seconds(p, s->total_s);
        page_fmt(p, " \u00b7 %d restarts per k, seed %" PRIu64, s->restarts, s->seed);
        if (s->dither)
            page_fmt(p, " \u00b7 dithered (%s, strength %g)", s->dither, s->dither_strength);
        if (s->space)
            page_raw(p, " \u00b7 fitted in OKLab");
        if (s->alpha && strcmp(s->alpha, "keep") == 0)
            page_raw(p, " \u00b7 alpha kept (RGBA palette, errors over RGBA)");
        else if (s->alpha)
            page_raw(p, " \u00b7 alpha flattened onto the background");
        if (s->palette_mode) {
            page_raw(p, " \u00b7 palette ");
            page_esc(p, s->palette_mode);
            page_raw(p, " <code>");
            page_esc(p, s->palette_hash);
            page_raw(p, "</code>");
        }
        page_raw(p, "<br>input: ");
        page_esc(p, s->path);
        page_raw(p, " \u00b7 <a href=\"" KMQ_SUMMARY_JSON "\">summary.json</a></p>\n"
                    "<p class=\"suggest\">");
        if (s->target_psnr > 0)
            target_line(p, s);
        else if (s->has_elbow)
            page_fmt(p, "Suggested k: <b>%zu</b> \u2013 the elbow of the inertia curve (Kneedle).",
                     s->elbow_k);
        else if (s->nresults < 3)
            page_raw(p, "No suggestion: the elbow needs at least 3 k values.");
        else
            page_raw(p, "No elbow: the inertia curve has no clear knee over these k values.");
        page_raw(p, "</p>\n</section>\n");
        compare_part(p, dir, s, mode);
        charts_part(p, dir, s, mode);
        numbers_part(p, dir, s, own);
    }
    page_raw(p, "</main>\n<footer>Written by kmq from summary.json; <code>kmq report "
                "OUTDIR</code> rebuilds it.</footer>\n</body>\n</html>\n");
    return page_write(p, dir, KMQ_INDEX_HTML, err);
}
