/* report_html.c — OUT/index.html, the page people look at (layer L3).
 *
 * Called by report.c after run.json and elbow.csv, with the summaries it
 * already loaded. The page is built only from those summaries, the run's
 * facts and which files exist in each image folder, so `kmq run` and
 * `kmq report OUT` write the same bytes.
 *
 * Layout: a summary table (images, ok, failed, times), the jobs with their
 * collection-level elbow, every failure with its code and message, an index
 * of images; then one section per image: the preview beside the elbow and
 * restart charts and the colour-space charts that exist, the suggestion,
 * and one card per k (the quantized image, its palette, PSNR, MSE, inertia,
 * sizes and compression ratios). A failed image gets a section too, with
 * its error.
 *
 * Safety: every text from a summary (paths come from users) is HTML-escaped
 * by kmq_plot_escape; every link is percent-encoded byte by byte (anything
 * but A-Z a-z 0-9 - . _ ~ /), so names with spaces, '%', '#', '?', quotes or
 * non-ASCII bytes still resolve under file://. No script, no external
 * resource: the stylesheet is inline.
 *
 * Numbers are formatted with kmq_plot_format_number (locale-independent).
 * Serial; no parallel region.
 */
#include "report_internal.h"

#include "kmq/outputs.h"
#include "kmq/fsx.h"
#include "kmq/strbuf.h"
#include "kmq/plot.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef KMQ_VERSION_STRING
#error "KMQ_VERSION_STRING must be defined by the build"
#endif

/* ---- text buffer (sticky failure) ------------------------------------- */

typedef struct page {
    kmq_strbuf buf;
    const char *root; /* output root, for existence checks */
    /* The images fitted on their own palette, sorted by input path: where a
     * job with a shared palette runs over the same inputs, each image's
     * error shows beside its own palette's. */
    const kmq_summary **own;
    size_t nown;
} page;

static void put(page *p, const char *s, size_t n)
{
    kmq_strbuf_put(&p->buf, s, n);
}

static void raw(page *p, const char *s)
{
    kmq_strbuf_str(&p->buf, s);
}

/* Integers and trusted strings only (%f would follow the locale). */
__attribute__((format(printf, 2, 3))) static void fmt(page *p, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    kmq_strbuf_vfmt(&p->buf, f, ap);
    va_end(ap);
}

/* User text, HTML-escaped. */
static void esc(page *p, const char *s)
{
    char *e = kmq_plot_escape(s);
    if (!e) {
        p->buf.failed = true;
        return;
    }
    raw(p, e);
    kmq__free(e);
}

static void num(page *p, double v, int decimals)
{
    char b[40];
    raw(p, kmq_plot_format_number(v, decimals, b));
}

/* 1234567 -> "1 234 567" with thin spaces: readable, locale-free. */
static void count(page *p, uint64_t v)
{
    char digits[32], out[96];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) {
            memcpy(out + o, "\u2009", 3);
            o += 3;
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    raw(p, out);
}

/* Bytes as B, kB, MB (powers of 1000) with the exact count in a tooltip. */
static void bytes(page *p, uint64_t v)
{
    fmt(p, "<span title=\"%" PRIu64 " bytes\">", v);
    if (v < 1000) {
        fmt(p, "%" PRIu64 " B", v);
    } else if (v < 1000000) {
        num(p, (double)v / 1e3, 1);
        raw(p, " kB");
    } else {
        num(p, (double)v / 1e6, v < 100000000 ? 2 : 1);
        raw(p, " MB");
    }
    raw(p, "</span>");
}

static void seconds(page *p, double s)
{
    if (!isfinite(s)) {
        raw(p, "\u2013");
        return;
    }
    if (s >= 3600) {
        fmt(p, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
    } else if (s >= 60) {
        fmt(p, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    } else {
        num(p, s, s < 10 ? 2 : 1);
        raw(p, " s");
    }
}

/* A value and a power of ten ("1.73 × 10⁸") for inertia. */
static void scientific(page *p, double v)
{
    static const char *const sup[10] = {"\u2070", "\u00b9", "\u00b2", "\u00b3", "\u2074",
                                        "\u2075", "\u2076", "\u2077", "\u2078", "\u2079"};
    if (!(v > 0) || !isfinite(v) || (v >= 0.01 && v < 1e5)) {
        num(p, v, v >= 100 ? 0 : 2);
        return;
    }
    int e = (int)floor(log10(v));
    num(p, v / pow(10.0, e), 2);
    raw(p, "\u2009\u00d7\u200910");
    char d[16];
    snprintf(d, sizeof d, "%d", e);
    for (const char *c = d; *c; c++)
        raw(p, *c == '-' ? "\u207b" : sup[*c - '0']);
}

/* A relative URL: "dir/name" percent-encoded byte by byte, then escaped
 * for an attribute (a no-op after encoding, kept for clarity). */
static void url(page *p, const char *dir, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *parts[2] = {dir, name};
    for (int k = 0; k < 2; k++) {
        const unsigned char *s = (const unsigned char *)(parts[k] ? parts[k] : "");
        if (k == 1 && dir && dir[0])
            put(p, "/", 1);
        for (; *s; s++) {
            bool plain = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                         (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' ||
                         *s == '~' || *s == '/';
            if (plain) {
                put(p, (const char *)s, 1);
            } else {
                char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};
                put(p, e, 3);
            }
        }
    }
}

/* Whether root/dir/name is a regular file. */
static bool exists(page *p, const char *dir, const char *name)
{
    char *d = kmq_fsx_join(p->root, dir);
    char *f = d ? kmq_fsx_join(d, name) : NULL;
    struct stat sb;
    bool yes = f && stat(f, &sb) == 0 && S_ISREG(sb.st_mode);
    if (!d || !f)
        p->buf.failed = true;
    kmq__free(d);
    kmq__free(f);
    return yes;
}

/* ---- page parts ------------------------------------------------------- */

static const char style[] =
    "<style>\n"
    ":root{--fg:#1d232a;--muted:#5b6570;--line:#d9dee3;--bg:#f6f7f9;--accent:#d62728;"
    "--ok:#2c7a3f}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',"
    "sans-serif;color:var(--fg);background:var(--bg)}\n"
    "header{background:#1d232a;color:#fff;padding:18px 32px}\n"
    "header h1{margin:0;font-size:24px}header p{margin:4px 0 0;color:#c9d1d9;font-size:14px}\n"
    "main{max-width:1320px;margin:0 auto;padding:8px 32px 40px}\n"
    "section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;"
    "margin:18px 0}\n"
    "h2{margin:0 0 8px;font-size:20px;word-break:break-all}h2 small{font-weight:normal;"
    "color:var(--muted);font-size:14px;margin-left:8px}\n"
    "h3{font-size:16px;margin:16px 0 6px}\n"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums}\n"
    "th,td{text-align:left;padding:4px 12px 4px 0;border-bottom:1px solid var(--line);"
    "vertical-align:top}\n"
    "th{color:var(--muted);font-weight:600;font-size:13px}\n"
    "td.n,th.n{text-align:right}\n"
    ".totals td{font-size:22px;font-weight:600;padding-right:32px;border:0}\n"
    ".totals th{border:0;padding-right:32px}\n"
    ".bad{color:var(--accent)}.good{color:var(--ok)}\n"
    ".meta{color:var(--muted);margin:0 0 12px;font-size:14px}\n"
    ".overview{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}\n"
    "figure{margin:0}figcaption{font-size:13px;color:var(--muted)}\n"
    ".overview img{display:block;border:1px solid var(--line);border-radius:4px;"
    "max-width:100%;height:auto}\n"
    ".orig img{max-width:380px;max-height:380px;width:auto}\n"
    ".suggest{font-size:17px;margin:12px 0;padding:8px 12px;background:#fdf0f0;"
    "border-left:4px solid var(--accent);border-radius:4px}\n"
    ".ks{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:14px;"
    "margin-top:14px}\n"
    ".k{border:1px solid var(--line);border-radius:6px;padding:8px;background:#fff}\n"
    ".k.elbow{border:2px solid var(--accent);box-shadow:0 0 0 3px #f7d4d4}\n"
    ".k h4{margin:2px 0 6px;font-size:15px}.k h4 .tag{background:var(--accent);color:#fff;"
    "border-radius:10px;padding:1px 8px;font-size:12px;margin-left:6px}\n"
    ".k img.q{display:block;width:100%;height:auto;border-radius:3px;"
    "image-rendering:pixelated}\n"
    ".k img.pal{display:block;width:100%;height:auto;margin:6px 0}\n"
    ".k table{width:100%;font-size:13px}.k td{padding:2px 6px 2px 0}\n"
    ".overview .colors img{max-width:100%}\n"
    "nav ol{columns:3 260px;margin:6px 0;padding-left:22px}\n"
    "footer{color:var(--muted);font-size:13px;text-align:center;margin:24px 0}\n"
    "a{color:#1f5fa8}\n"
    "</style>\n";

static const kmq_job_elbow *job_elbow(const kmq_job_elbow *e, size_t n, const char *job)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = e[i].job, *b = job;
        if ((a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0)
            return &e[i];
    }
    return NULL;
}

static const char *image_name(const kmq_summary *s)
{
    return s->rel ? s->rel : (s->path ? s->path : "(unknown)");
}

/* ---- shared palettes beside the images' own -------------------------- */

static int by_path(const void *a, const void *b)
{
    const kmq_summary *x = *(const kmq_summary *const *)a, *y = *(const kmq_summary *const *)b;
    return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

/* Every ok image fitted on its own palette, sorted by input path. */
static void index_own_palettes(page *p, const kmq_run_image *images, size_t n)
{
    const kmq_summary **own = kmq__calloc(n ? n : 1, sizeof *own);
    if (!own) {
        p->buf.failed = true;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (images[i].summary->ok && !images[i].summary->palette_mode && images[i].summary->path)
            own[m++] = images[i].summary;
    qsort(own, m, sizeof *own, by_path);
    p->own = own;
    p->nown = m;
}

/* The result at k of the same input fitted on its own palette, or NULL. */
static const kmq_k_result *own_palette_result(const page *p, const kmq_summary *s, size_t k)
{
    if (!s->palette_mode || !s->path || !p->nown)
        return NULL;
    const kmq_summary **hit = bsearch(&s, p->own, p->nown, sizeof *p->own, by_path);
    if (!hit)
        return NULL;
    while (hit > p->own && by_path(hit - 1, &s) == 0)
        hit--; /* the same input in several jobs: the first */
    for (; hit < p->own + p->nown && by_path(hit, &s) == 0; hit++)
        for (size_t r = 0; r < (*hit)->nresults; r++)
            if ((*hit)->results[r].k == k)
                return &(*hit)->results[r];
    return NULL;
}

/* A job with palette = shared: its palette, once, beside the job's row
 * (the swatch of each k from JOB/_palette/, or _palette/ for quantize),
 * what it was fitted on, the palette it replaced when the job's images
 * changed, and, where the same inputs were also fitted on their own
 * palettes, the mean PSNR of both. */
static void shared_palette_row(page *p, const kmq_run_image *images, size_t n)
{
    const kmq_summary *s = NULL;
    for (size_t i = 0; i < n && !s; i++)
        if (images[i].summary->ok && images[i].summary->palette_mode &&
            strcmp(images[i].summary->palette_mode, "shared") == 0)
            s = images[i].summary;
    if (!s)
        return;
    char *job_dir = kmq_fsx_join(s->job, "_palette");
    if (!job_dir) {
        p->buf.failed = true;
        return;
    }
    raw(p, "<tr><td colspan=\"5\">shared palette <code>");
    esc(p, s->palette_hash);
    raw(p, "</code>:");
    const char *dir = job_dir;
    for (size_t r = 0; r < s->nresults; r++) {
        char name[64];
        snprintf(name, sizeof name, "k%zu.palette.png", s->results[r].k);
        dir = exists(p, job_dir, name) ? job_dir : "_palette";
        fmt(p, " k = %zu <img alt=\"shared palette k = %zu\" height=\"16\" src=\"", s->results[r].k,
            s->results[r].k);
        url(p, dir, name);
        raw(p, "\">");
    }
    if (s->nresults) {
        char name[64];
        snprintf(name, sizeof name, "k%zu.palette.json", s->results[0].k);
        char *d = kmq_fsx_join(p->root, dir);
        char *path = d ? kmq_fsx_join(d, name) : NULL;
        kmq_palette *pal = kmq__alloc(sizeof *pal);
        kmq_err ignored = {0};
        if (path && pal && kmq_palette_load(path, pal, &ignored) == KMQ_OK &&
            strcmp(pal->hash, s->palette_hash) == 0) {
            fmt(p, "<br>fitted once on the union of %zu image%s", pal->images,
                pal->images == 1 ? "" : "s");
            if (pal->replaces[0]) {
                fmt(p, "; <b>refitted</b>: the job's images or keys changed since the palette "
                       "<code>%s</code> of %zu image%s, so every image was mapped again",
                    pal->replaces, pal->replaces_images, pal->replaces_images == 1 ? "" : "s");
            }
        }
        kmq__free(pal);
        kmq__free(path);
        kmq__free(d);
    }
    for (size_t r = 0; r < s->nresults; r++) {
        size_t k = s->results[r].k, both = 0;
        double shared_db = 0, own_db = 0;
        for (size_t i = 0; i < n; i++) {
            const kmq_summary *t = images[i].summary;
            const kmq_k_result *own = t->ok ? own_palette_result(p, t, k) : NULL;
            for (size_t q = 0; own && q < t->nresults; q++)
                if (t->results[q].k == k && t->results[q].mse_output > 0 && own->mse_output > 0) {
                    shared_db += t->results[q].psnr_db;
                    own_db += own->psnr_db;
                    both++;
                }
        }
        if (!both)
            continue;
        fmt(p, "<br>k = %zu, mean PSNR over the %zu image%s also fitted on their own palette: "
               "shared ", k, both, both == 1 ? "" : "s");
        num(p, shared_db / (double)both, 2);
        raw(p, " dB, own ");
        num(p, own_db / (double)both, 2);
        raw(p, " dB");
    }
    raw(p, "</td></tr>\n");
    kmq__free(job_dir);
}

/* The shards of a job array that must run again, and the line that does
 * it (run.json "shards"). */
static void shards_part(page *p, const kmq_run_shards *sh)
{
    if (!sh || (sh->nmissing == 0 && sh->nrunning == 0))
        return;
    raw(p, "<div class=\"shards\">\n");
    if (sh->nrunning > 0)
        fmt(p, "<p>%zu of %u shards are running now.</p>\n", sh->nrunning, (unsigned)sh->count);
    if (sh->nmissing > 0) {
        fmt(p, "<p class=\"bad\">%zu of %u shards must run again; their images are pending:</p>\n"
               "<ul>\n", sh->nmissing, (unsigned)sh->count);
        for (size_t i = 0; i < sh->nmissing; i++) {
            fmt(p, "<li>shard %u: ", (unsigned)sh->missing[i]);
            esc(p, sh->why && sh->why[i] ? sh->why[i] : "");
            raw(p, "</li>\n");
        }
        raw(p, "</ul>\n");
    }
    if (sh->rerun) {
        raw(p, "<p>Re-run them with:</p>\n<pre>");
        esc(p, sh->rerun);
        raw(p, "</pre>\n");
    }
    raw(p, "</div>\n");
}

static void summary_part(page *p, const kmq_run_info *info, const kmq_job_elbow *elbows,
                         size_t n_elbows, const kmq_run_image *images, size_t n)
{
    size_t ok = 0;
    double images_s = 0;
    uint64_t pixels = 0;
    for (size_t i = 0; i < n; i++) {
        ok += images[i].summary->ok;
        images_s += images[i].summary->total_s;
        if (images[i].summary->ok)
            pixels += images[i].summary->pixels;
    }
    raw(p, "<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"totals\">\n<tr>"
           "<th>images</th><th>ok</th><th>failed</th><th>total time</th>"
           "<th>time in images</th><th>pixels</th><th>status</th></tr>\n<tr>");
    fmt(p, "<td>%zu</td><td class=\"good\">%zu</td><td class=\"%s\">%zu</td><td>", n, ok,
        n - ok ? "bad" : "", n - ok);
    seconds(p, info->wall_s);
    raw(p, "</td><td>");
    seconds(p, images_s);
    raw(p, "</td><td>");
    count(p, pixels);
    fmt(p, "</td><td class=\"%s\">",
        strcmp(info->status ? info->status : "", "complete") == 0 ? "good" : "bad");
    esc(p, info->status ? info->status : "unknown");
    raw(p, "</td></tr>\n</table>\n");
    shards_part(p, info->shards);

    /* jobs and their collection-level suggestion */
    raw(p, "<h3>Jobs</h3>\n<table>\n<tr><th>job</th><th class=\"n\">images</th>"
           "<th class=\"n\">ok</th><th class=\"n\">failed</th><th>suggested k for the "
           "collection</th></tr>\n");
    for (size_t i = 0; i < n;) {
        const char *job = images[i].summary->job;
        size_t j = i, jok = 0;
        while (j < n && ((job == NULL || images[j].summary->job == NULL)
                             ? job == images[j].summary->job
                             : strcmp(job, images[j].summary->job) == 0)) {
            jok += images[j].summary->ok;
            j++;
        }
        raw(p, "<tr><td>");
        esc(p, job ? job : "");
        fmt(p, "</td><td class=\"n\">%zu</td><td class=\"n\">%zu</td><td class=\"n\">%zu</td><td>",
            j - i, jok, j - i - jok);
        const kmq_job_elbow *e = job_elbow(elbows, n_elbows, job);
        if (e && e->found)
            fmt(p,
                "<b>k = %zu</b> (Kneedle on the mean normalised inertia curve of %zu "
                "image%s, %zu k values)",
                e->k, e->images, e->images == 1 ? "" : "s", e->nk);
        else if (e && e->nk < 3)
            raw(p, "none (needs at least 3 k values common to the images)");
        else
            raw(p, "none (no elbow in the mean curve)");
        raw(p, "</td></tr>\n");
        shared_palette_row(p, images + i, j - i);
        i = j;
    }
    raw(p, "</table>\n");

    fmt(p, "<h3>Failures (%zu)</h3>\n", n - ok);
    if (ok == n) {
        raw(p, "<p>No image failed.</p>\n");
    } else {
        raw(p, "<table class=\"failures\">\n<tr><th>image</th><th>job</th><th>code</th>"
               "<th>message</th></tr>\n");
        for (size_t i = 0; i < n; i++) {
            const kmq_summary *s = images[i].summary;
            if (s->ok)
                continue;
            fmt(p, "<tr><td><a href=\"#img-%zu\">", i + 1);
            esc(p, s->path ? s->path : image_name(s));
            raw(p, "</a></td><td>");
            esc(p, s->job);
            raw(p, "</td><td class=\"bad\"><code>");
            esc(p, s->error_code);
            raw(p, "</code></td><td>");
            esc(p, s->error_message);
            raw(p, "</td></tr>\n");
        }
        raw(p, "</table>\n");
    }

    raw(p, "<nav>\n<h3>Images</h3>\n<ol>\n");
    for (size_t i = 0; i < n; i++) {
        const kmq_summary *s = images[i].summary;
        fmt(p, "<li><a href=\"#img-%zu\">", i + 1);
        esc(p, image_name(s));
        raw(p, "</a>");
        if (!s->ok)
            raw(p, " <span class=\"bad\">failed</span>");
        else if (s->has_elbow)
            fmt(p, " \u2013 elbow k = %zu", s->elbow_k);
        raw(p, "</li>\n");
    }
    raw(p, "</ol>\n</nav>\n</section>\n");
}

static void k_card(page *p, const char *dir, const kmq_summary *s, const kmq_k_result *r)
{
    bool elbow = s->has_elbow && s->elbow_k == r->k;
    fmt(p, "<figure class=\"k%s\">", elbow ? " elbow" : "");
    fmt(p, "<h4>k = %zu", r->k);
    if (r->k_effective != r->k)
        fmt(p, " <small>(%zu colours exist)</small>", r->k_effective);
    if (elbow)
        raw(p, "<span class=\"tag\">elbow</span>");
    raw(p, "</h4>\n");
    if (r->indexed.path && exists(p, dir, r->indexed.path)) {
        raw(p, "<a href=\"");
        url(p, dir, r->indexed.path);
        raw(p, "\"><img class=\"q\" src=\"");
        url(p, dir, r->indexed.path);
        fmt(p, "\" alt=\"quantized to %zu colours\"", r->k);
        if (s->width && s->height)
            fmt(p, " width=\"%" PRIu32 "\" height=\"%" PRIu32 "\"", s->width, s->height);
        raw(p, "></a>\n");
    }
    char name[64];
    kmq_k_file_name(r->k, KMQ_K_PALETTE_SVG, name);
    if (exists(p, dir, name)) {
        raw(p, "<img class=\"pal\" src=\"");
        url(p, dir, name);
        fmt(p, "\" alt=\"palette of k = %zu, widths by pixel share\">\n", r->k);
    }
    raw(p, "<table>\n<tr><td>PSNR</td><td class=\"n\">");
    if (r->mse_output > 0) {
        num(p, r->psnr_db, 2);
        raw(p, " dB");
    } else {
        raw(p, "lossless");
    }
    raw(p, "</td><td>MSE</td><td class=\"n\">");
    num(p, r->mse, 1);
    const kmq_k_result *own = own_palette_result(p, s, r->k);
    if (own && own->mse_output > 0) { /* same input, same k, fitted on its own palette */
        raw(p, "</td></tr>\n<tr><td>own palette</td><td class=\"n\">");
        num(p, own->psnr_db, 2);
        raw(p, " dB</td><td>MSE</td><td class=\"n\">");
        num(p, own->mse, 1);
    }
    raw(p, "</td></tr>\n<tr><td>inertia</td><td class=\"n\">");
    scientific(p, r->inertia);
    fmt(p, "</td><td>iterations</td><td class=\"n\">%d%s</td></tr>\n", r->iterations,
        r->converged ? "" : " (max)");
    raw(p, "<tr><td>PNG</td><td class=\"n\">");
    bytes(p, r->png_bytes);
    if (r->indexed.path)
        fmt(p, ", %d bpp", r->indexed.bits_per_pixel);
    raw(p, "</td><td>packed</td><td class=\"n\">");
    bytes(p, r->packed_bytes);
    raw(p, "</td></tr>\n<tr><td>vs raw</td><td class=\"n\">");
    if (r->png_bytes) {
        num(p, r->ratio_vs_raw, 1);
        raw(p, "\u00d7");
    } else {
        raw(p, "\u2013");
    }
    raw(p, "</td><td>vs input</td><td class=\"n\">");
    if (r->png_bytes) {
        num(p, r->ratio_vs_input, 2);
        raw(p, "\u00d7");
    } else {
        raw(p, "\u2013");
    }
    raw(p, "</td></tr>\n<tr><td>time</td><td class=\"n\">");
    seconds(p, r->fit_s + r->map_s);
    fmt(p, "</td><td>restarts</td><td class=\"n\">%d</td></tr>\n</table>\n", r->restarts);
    if (r->labels.path && exists(p, dir, r->labels.path)) {
        raw(p, "<a href=\"");
        url(p, dir, r->labels.path);
        raw(p, "\">label map</a> ");
    }
    if (r->swatch.path && exists(p, dir, r->swatch.path)) {
        raw(p, "<a href=\"");
        url(p, dir, r->swatch.path);
        raw(p, "\">palette PNG</a>");
    }
    raw(p, "</figure>\n");
}

static void image_part(page *p, size_t index, const kmq_run_image *im)
{
    const kmq_summary *s = im->summary;
    const char *dir = im->dir;
    fmt(p, "<section class=\"image\" id=\"img-%zu\">\n<h2>", index + 1);
    esc(p, image_name(s));
    raw(p, "<small>job ");
    esc(p, s->job);
    raw(p, "</small></h2>\n<p class=\"meta\">");
    if (!s->ok) {
        raw(p, "<span class=\"bad\">failed: <code>");
        esc(p, s->error_code);
        raw(p, "</code> \u2013 ");
        esc(p, s->error_message);
        raw(p, "</span><br>");
        esc(p, s->path);
        raw(p, "</p>\n</section>\n");
        return;
    }
    fmt(p, "%" PRIu32 " \u00d7 %" PRIu32 " px \u00b7 ", s->width, s->height);
    count(p, s->unique_colors);
    raw(p, " distinct colours \u00b7 ");
    esc(p, s->format);
    raw(p, ", ");
    bytes(p, s->bytes);
    raw(p, " \u00b7 ");
    seconds(p, s->total_s);
    fmt(p, " \u00b7 %d restarts per k, seed %" PRIu64, s->restarts, s->seed);
    if (s->dither) /* only when used: pages of jobs without it stay as they were */
        fmt(p, " \u00b7 dithered (%s, strength %g)", s->dither, s->dither_strength);
    raw(p, " \u00b7 <a href=\"");
    url(p, dir, KMQ_SUMMARY_JSON);
    raw(p, "\">summary.json</a></p>\n");

    raw(p, "<div class=\"suggest\">");
    if (s->has_elbow)
        fmt(p, "Suggested k: <b>%zu</b> \u2013 the elbow of the inertia curve (Kneedle).",
            s->elbow_k);
    else if (s->nresults < 3)
        raw(p, "No suggestion: the elbow needs at least 3 k values.");
    else
        raw(p, "No elbow found: the inertia curve has no clear knee over these k values.");
    raw(p, "</div>\n<div class=\"overview\">\n");
    if (exists(p, dir, KMQ_PREVIEW_JPG)) {
        raw(p, "<figure class=\"orig\"><a href=\"");
        url(p, dir, KMQ_PREVIEW_JPG);
        raw(p, "\"><img src=\"");
        url(p, dir, KMQ_PREVIEW_JPG);
        raw(p, "\" alt=\"original (downscaled preview)\"></a><figcaption>original "
               "(preview; input: ");
        esc(p, s->path);
        raw(p, ")</figcaption></figure>\n");
    }
    static const char *const charts[][2] = {{KMQ_ELBOW_SVG, "inertia and PSNR against k"},
                                            {KMQ_RESTARTS_SVG, "every restart's inertia per k"}};
    for (size_t c = 0; c < 2; c++) {
        if (!exists(p, dir, charts[c][0]))
            continue;
        raw(p, "<figure><a href=\"");
        url(p, dir, charts[c][0]);
        raw(p, "\"><img src=\"");
        url(p, dir, charts[c][0]);
        fmt(p, "\" alt=\"%s\"></a></figure>\n", charts[c][1]);
    }
    for (size_t i = 0; i < s->nresults; i++) {
        char name[64];
        kmq_k_file_name(s->results[i].k, KMQ_K_COLORS_SVG, name);
        if (!exists(p, dir, name))
            continue;
        raw(p, "<figure class=\"colors\"><a href=\"");
        url(p, dir, name);
        raw(p, "\"><img src=\"");
        url(p, dir, name);
        fmt(p, "\" alt=\"colour sample in RGB space for k = %zu\"></a></figure>\n",
            s->results[i].k);
    }
    raw(p, "</div>\n<div class=\"ks\">\n");
    for (size_t i = 0; i < s->nresults; i++)
        k_card(p, dir, s, &s->results[i]);
    raw(p, "</div>\n</section>\n");
}

kmq_status kmq__report_write_html(const char *out_root, const kmq_run_info *info,
                                  const kmq_job_elbow *elbows, size_t n_elbows,
                                  const kmq_run_image *images, size_t n, kmq_err *err)
{
    page p = {.root = out_root};
    char *path = kmq_fsx_join(out_root, KMQ_INDEX_HTML);
    kmq_status st = KMQ_OK;
    if (!path) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += images[i].summary->ok;
    raw(&p, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    fmt(&p, "<title>kmq report \u2013 %zu image%s, %zu failed</title>\n", n, n == 1 ? "" : "s",
        n - ok);
    raw(&p, style);
    raw(&p, "</head>\n<body>\n<header><h1>kmq report</h1><p>k-means colour quantization "
            "\u00b7 kmq " KMQ_VERSION_STRING);
    if (info->job_file) {
        raw(&p, " \u00b7 job file ");
        esc(&p, info->job_file);
    }
    if (info->started_utc) {
        raw(&p, " \u00b7 started ");
        esc(&p, info->started_utc);
    }
    if (info->threads > 0)
        fmt(&p, " \u00b7 %d thread%s", info->threads, info->threads == 1 ? "" : "s");
    raw(&p, "</p></header>\n<main>\n");
    index_own_palettes(&p, images, n);
    summary_part(&p, info, elbows, n_elbows, images, n);
    for (size_t i = 0; i < n; i++)
        image_part(&p, i, &images[i]);
    raw(&p, "</main>\n<footer>Written by kmq " KMQ_VERSION_STRING
            " from the summary.json files under this folder; <code>kmq report "
            "OUTDIR</code> rebuilds it. Static page: no script, no network.</footer>\n"
            "</body>\n</html>\n");
    if (p.buf.failed) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory formatting index.html");
        goto done;
    }
    st = kmq_fsx_write_all(path, p.buf.data, p.buf.len, false, err);
done:
    kmq_strbuf_clear(&p.buf);
    kmq__free(p.own);
    kmq__free(path);
    return st;
}
