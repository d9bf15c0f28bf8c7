/* report_html.c — the report's pages: OUT/index.html (the overview),
 * OUT/report.css and one page per image (report_detail.c) (layer L3).
 *
 * Called by report.c after run.json and elbow.csv, with the summaries it
 * already loaded. The pages are built only from those summaries, the run's
 * facts and which files exist in each image folder, so `kmq run` and
 * `kmq report OUT` write the same bytes.
 *
 * The overview stays light at any image count: the run's totals beside
 * each job's collection elbow chart (the mean normalised inertia curve with
 * its p10-p90 band, the elbow circled), the failures (the first
 * FAILURES_LISTED; the table filters the rest), and a table of every image. The
 * table's rows are a compact JSON array in a <script type="application/json">
 * element, drawn a page at a time (50 rows by default) by a small inline
 * script that sorts (click a heading), filters (name or job, and status)
 * and pages them; only the visible page's thumbnails are requested, lazily.
 * So the page weighs the table data plus one page of thumbnails, whatever
 * the count. Without script a <noscript> note points to run.json and
 * elbow.csv. No network, no external resource: relative links only, so it
 * works from file:// and from a copy of OUT.
 *
 * Row fields (in this order): folder URL (percent-encoded byte by byte, as
 * every link), image name, job, width, height, distinct colours, elbow k,
 * the k shown (the elbow's, else the largest), PSNR at that k ("lossless"
 * when exact), its PNG bytes, its ratio to the input, the image's seconds,
 * status, and flags (1: thumb.jpg exists, 2: the image's page exists).
 * Null where a value does not apply.
 *
 * report = none for every image writes no page (and removes the overview
 * and report.css of an earlier run); an image under none gets no page, nor
 * does one that is not ok (its error is on the overview: a failed image's
 * folder holds its summary alone, and a stale one's old page would show
 * results of another configuration).
 * Serial; no parallel region.
 */
#include "report_internal.h"
#include "report_page.h"

#include "kmq/fsx.h"
#include "kmq/outputs.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KMQ_VERSION_STRING
#error "KMQ_VERSION_STRING must be defined by the build"
#endif

/* Failures listed by name on the overview; the table shows them all. */
#define FAILURES_LISTED 20

static bool same_job(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static void totals_part(page *p, const kmq_run_info *info, const kmq_run_image *images, size_t n)
{
    size_t ok = 0, failed = 0;
    double images_s = 0;
    uint64_t pixels = 0;
    for (size_t i = 0; i < n; i++) {
        const kmq_summary *s = images[i].summary;
        ok += s->ok;
        failed += strcmp(page_status(s), "error") == 0;
        images_s += s->total_s;
        if (s->ok)
            pixels += s->pixels;
    }
    page_raw(p, "<section id=\"run\">\n<h2>Run</h2>\n<div class=\"totals\">");
    page_fmt(p, "<div><b>%zu</b><span>images</span></div>", n);
    page_fmt(p, "<div><b class=\"good\">%zu</b><span>ok</span></div>", ok);
    page_fmt(p, "<div><b class=\"%s\">%zu</b><span>failed</span></div>", failed ? "bad" : "",
             failed);
    if (n - ok - failed)
        page_fmt(p, "<div><b class=\"bad\">%zu</b><span>not done</span></div>", n - ok - failed);
    page_raw(p, "<div><b>");
    page_seconds(p, info->wall_s);
    if (info->sessions > 1)
        page_fmt(p, "</b><span>wall time, %u sessions</span></div>", info->sessions);
    else
        page_raw(p, "</b><span>wall time</span></div>");
    page_raw(p, "<div><b>");
    page_seconds(p, images_s);
    page_raw(p, "</b><span>time in images</span></div><div><b>");
    page_count(p, pixels);
    page_fmt(p, "</b><span>pixels</span></div><div><b class=\"%s\">",
             strcmp(info->status ? info->status : "", "complete") == 0 ? "good" : "bad");
    page_esc(p, info->status ? info->status : "unknown");
    page_raw(p, "</b><span>status</span></div></div>\n<p class=\"muted\">The numbers of every "
                "image and k: <a href=\"" KMQ_RUN_JSON "\">run.json</a>, <a href=\"" KMQ_ELBOW_CSV
                "\">elbow.csv</a>.</p>\n");
    const kmq_run_shards *sh = info->shards;
    if (sh && (sh->nmissing > 0 || sh->nrunning > 0)) {
        if (sh->nrunning > 0)
            page_fmt(p, "<p>%zu of %u shards are running now.</p>\n", sh->nrunning,
                     (unsigned)sh->count);
        if (sh->nmissing > 0) {
            page_fmt(p,
                     "<p class=\"bad\">%zu of %u shards must run again; their images are "
                     "pending:</p>\n<ul>\n",
                     sh->nmissing, (unsigned)sh->count);
            for (size_t i = 0; i < sh->nmissing; i++) {
                page_fmt(p, "<li>shard %u: ", (unsigned)sh->missing[i]);
                page_esc(p, sh->why && sh->why[i] ? sh->why[i] : "");
                page_raw(p, "</li>\n");
            }
            page_raw(p, "</ul>\n");
        }
        if (sh->rerun) {
            page_raw(p, "<p>Re-run them with:</p>\n<pre>");
            page_esc(p, sh->rerun);
            page_raw(p, "</pre>\n");
        }
    }
    page_raw(p, "</section>\n");
}

/* Whether the image has a page of its own (written just before). */
static bool has_page(page *p, const kmq_run_image *im, kmq_report_mode mode)
{
    return mode != KMQ_REPORT_NONE && page_exists(p, im->dir, KMQ_INDEX_HTML);
}

static void failures_part(page *p, const kmq_run_image *images, const kmq_report_mode *modes,
                          size_t n)
{
    size_t failed = 0, not_done = 0, missed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *st = page_status(images[i].summary);
        failed += strcmp(st, "error") == 0;
        not_done += strcmp(st, "pending") == 0 || strcmp(st, "stale") == 0;
        missed += strcmp(st, KMQ_REPORT_TARGET_MISSED) == 0;
    }
    if (failed == 0 && not_done == 0 && missed == 0)
        return;
    page_fmt(p, "<section id=\"failures\">\n<h2 class=\"bad\">Failures (%zu)</h2>\n", failed);
    if (missed)
        page_fmt(p,
                 "<p>%zu image%s reached %s quality target (target_psnr) with any k of the "
                 "list: the largest k is written (status <i>" KMQ_REPORT_TARGET_MISSED
                 "</i> in the table).</p>\n",
                 missed, missed == 1 ? " never" : "s never", missed == 1 ? "its" : "their");
    if (not_done)
        page_fmt(p,
                 "<p>%zu image%s not done for the current configuration (pending or stale): "
                 "the next <code>kmq run</code> does %s.</p>\n",
                 not_done, not_done == 1 ? " is" : "s are", not_done == 1 ? "it" : "them");
    if (failed) {
        page_raw(p, "<div class=\"scroll\"><table class=\"failures\">\n<tr><th>image</th>"
                    "<th>job</th><th>code</th><th>message</th></tr>\n");
        size_t listed = 0;
        for (size_t i = 0; i < n && listed < FAILURES_LISTED; i++) {
            const kmq_summary *s = images[i].summary;
            if (strcmp(page_status(s), "error") != 0)
                continue;
            listed++;
            page_raw(p, "<tr><td>");
            bool link = has_page(p, &images[i], modes[i]);
            if (link) {
                page_raw(p, "<a href=\"");
                page_url(p, images[i].dir, KMQ_INDEX_HTML);
                page_raw(p, "\">");
            }
            page_esc(p, s->path ? s->path : page_image_name(s));
            page_raw(p, link ? "</a></td><td>" : "</td><td>");
            page_esc(p, s->job);
            page_raw(p, "</td><td class=\"bad\"><code>");
            page_esc(p, s->error_code);
            page_raw(p, "</code></td><td>");
            page_esc(p, s->error_message);
            page_raw(p, "</td></tr>\n");
        }
        page_raw(p, "</table></div>\n");
        if (failed > listed)
            page_fmt(p, "<p>%zu more: choose the status <b>error</b> in the table below.</p>\n",
                     failed - listed);
    }
    page_raw(p, "</section>\n");
}

static void jobs_part(page *p, const kmq_job_elbow *elbows, size_t n_elbows,
                      const kmq_run_image *images, size_t n, const kmq__own_palettes *own)
{
    page_raw(p,
             "<section id=\"jobs\">\n<h2>The collection\u2019s elbow</h2>\n<div class=\"jobs\">\n");
    for (size_t i = 0; i < n;) {
        const char *job = images[i].summary->job;
        size_t j = i, jok = 0;
        while (j < n && same_job(images[j].summary->job, job))
            jok += images[j++].summary->ok;
        const kmq_job_elbow *e = NULL;
        for (size_t x = 0; x < n_elbows && !e; x++)
            if (same_job(elbows[x].job, job))
                e = &elbows[x];
        page_raw(p, "<div class=\"job\"><h3>job ");
        page_esc(p, job ? job : "");
        page_fmt(p, "</h3><p>%zu image%s, %zu ok. ", j - i, j - i == 1 ? "" : "s", jok);
        if (e && e->found)
            page_fmt(p,
                     "Suggested k: <b>%zu</b>, the elbow (Kneedle) of the mean normalised "
                     "inertia of %zu image%s; the band spans their 10th to 90th percentile.",
                     e->k, e->images, e->images == 1 ? "" : "s");
        else if (e && e->nk < 3)
            page_raw(p, "No suggestion: it needs at least 3 k values common to the images.");
        else
            page_raw(p, "No suggestion: the mean curve has no elbow.");
        page_raw(p, "</p>\n");
        kmq__report_shared_palette(p, images + i, j - i, own);
        if (e && e->ncurve >= 2) {
            size_t mark = e->ncurve;
            for (size_t x = 0; e->found && x < e->ncurve; x++)
                if (e->curve_k[x] == e->k)
                    mark = x;
            kmq__report_chart(p, e->curve_k, e->curve_mean, e->curve_p10, e->curve_p90, e->ncurve,
                              mark, "normalised inertia",
                              "mean normalised inertia against k with its 10th to 90th "
                              "percentile band, the elbow circled");
        }
        page_raw(p, "</div>\n");
        i = j;
    }
    page_raw(p, "</div>\n</section>\n");
}

static void json_real(page *p, double v, int decimals)
{
    if (!isfinite(v))
        page_raw(p, "null");
    else
        page_num(p, v, decimals);
}

/* The table's rows as JSON (see the top of the file). */
static void rows_part(page *p, const kmq_run_image *images, const kmq_report_mode *modes, size_t n)
{
    page_raw(p, "<script type=\"application/json\" id=\"kmq-rows\">[");
    for (size_t i = 0; i < n; i++) {
        const kmq_summary *s = images[i].summary;
        const kmq_k_result *r = page_shown_result(s);
        page_raw(p, i ? ",\n[\"" : "\n[\"");
        page_url(p, images[i].dir, NULL);
        page_raw(p, "\",");
        page_json_str(p, page_image_name(s));
        page_raw(p, ",");
        page_json_str(p, s->job);
        if (s->ok)
            page_fmt(p, ",%" PRIu32 ",%" PRIu32 ",%" PRIu64 ",", s->width, s->height,
                     s->unique_colors);
        else
            page_raw(p, ",null,null,null,");
        if (s->ok && s->has_elbow)
            page_fmt(p, "%zu,", s->elbow_k);
        else
            page_raw(p, "null,");
        if (r) {
            page_fmt(p, "%zu,", r->k);
            if (r->mse_output > 0)
                json_real(p, r->psnr_db, 2);
            else
                page_raw(p, "\"lossless\"");
            if (r->png_bytes) {
                page_fmt(p, ",%" PRIu64 ",", r->png_bytes);
                json_real(p, r->ratio_vs_input, 2);
            } else {
                page_raw(p, ",null,null");
            }
        } else {
            page_raw(p, "null,null,null,null");
        }
        page_raw(p, ",");
        json_real(p, s->total_s, 3);
        page_fmt(p, ",\"%s\",", page_status(s));
        bool thumb =
            modes[i] != KMQ_REPORT_NONE && s->ok && page_exists(p, images[i].dir, KMQ_THUMB_JPG);
        page_fmt(p, "%d]", (thumb ? 1 : 0) | (has_page(p, &images[i], modes[i]) ? 2 : 0));
    }
    page_raw(p, "\n]</script>\n");
}

/* The table's script: sort, filter, page (see the top of the file). */
static const char table_script[] =
    "<script>\n(function(){\n"
    "var R=JSON.parse(document.getElementById('kmq-rows').textContent);\n"
    "R.forEach(function(r,i){r.push(i);});\n"
    "var $=function(id){return document.getElementById(id);};\n"
    "var body=document.querySelector('#images tbody'),q=$('filter'),st=$('status'),"
    "sz=$('size');\n"
    "var col=-1,dir=1,page=0,view=R;\n"
    "function esc(s){return String(s).replace(/[&<>\"']/g,function(c){return '&#'+"
    "c.charCodeAt(0)+';';});}\n"
    "function num(v,d){return v==null?'\\u2013':Number(v).toFixed(d);}\n"
    "function group(v){return v==null?'\\u2013':String(v).replace(/\\B(?=(\\d{3})+(?!\\d))/g,"
    "'\\u2009');}\n"
    "function bytes(v){if(v==null)return '\\u2013';if(v<1e3)return v+' B';if(v<1e6)"
    "return (v/1e3).toFixed(1)+' kB';return (v/1e6).toFixed(2)+' MB';}\n"
    "function secs(v){if(v==null)return '\\u2013';if(v<60)return v.toFixed(v<10?2:1)+' s';"
    "return Math.floor(v/60)+' min '+String(Math.floor(v%60)).padStart(2,'0')+' s';}\n"
    "function key(r,c){var v=r[c];if(c==3)return r[3]==null?null:r[3]*r[4];"
    "if(v==='lossless')return Infinity;if(typeof v==='string')return v.toLowerCase();"
    "return v;}\n"
    "function cmp(a,b){var x=key(a,col),y=key(b,col);if(x==null||y==null)"
    "return x==null&&y==null?a[14]-b[14]:(x==null?1:-1);"
    "return x<y?-dir:x>y?dir:a[14]-b[14];}\n"
    "function apply(){var t=q.value.toLowerCase(),s=st.value;"
    "view=R.filter(function(r){return (!s||r[12]===s||(s==='not ok'&&r[12]!=='ok'))&&"
    "(!t||r[1].toLowerCase().indexOf(t)>=0||(r[2]||'').toLowerCase().indexOf(t)>=0);});"
    "if(col>=0)view.sort(cmp);page=0;draw();}\n"
    "function thumb(r){var w=r[3],h=r[4],f=Math.ceil(Math.max(w,h)/200),tw=Math.ceil(w/f),"
    "th=Math.ceil(h/f),g=Math.min(1,100/tw,70/th);"
    "return '<img src=\"'+r[0]+'/thumb.jpg\" loading=\"lazy\" alt=\"\" width=\"'+"
    "Math.max(1,Math.round(tw*g))+'\" height=\"'+Math.max(1,Math.round(th*g))+'\">';}\n"
    "function link(r,html){return r[13]&2?'<a href=\"'+r[0]+'/index.html\">'+html+'</a>':"
    "html;}\n"
    "function draw(){var n=+sz.value,pages=Math.max(1,Math.ceil(view.length/n));"
    "if(page>=pages)page=pages-1;var h=[];"
    "view.slice(page*n,page*n+n).forEach(function(r){var at=r[7]!=null&&r[7]!==r[6]?"
    "' <span class=\"muted\">(k = '+r[7]+')</span>':'';"
    "h.push('<tr><td class=\"thumb\">'+(r[13]&1?link(r,thumb(r)):'')+'</td>'+"
    "'<td class=\"name\">'+link(r,esc(r[1]))+'<br><span class=\"muted\">'+esc(r[2]||'')+"
    "'</span></td><td class=\"n\">'+(r[3]==null?'\\u2013':r[3]+' \\u00d7 '+r[4])+"
    "'</td><td class=\"n\">'+group(r[5])+'</td><td class=\"n\">'+(r[6]==null?'\\u2013':r[6])+"
    "'</td><td class=\"n\">'+(r[8]==='lossless'?'lossless':r[8]==null?'\\u2013':"
    "num(r[8],2)+' dB')+at+'</td><td class=\"n\">'+bytes(r[9])+'</td><td class=\"n\">'+"
    "(r[10]==null?'\\u2013':num(r[10],2)+'\\u00d7')+'</td><td class=\"n\">'+secs(r[11])+"
    "'</td><td class=\"status-'+r[12]+'\">'+r[12]+'</td></tr>');});\n"
    "body.innerHTML=h.join('');"
    "$('count').textContent=view.length+' of '+R.length+' images';"
    "$('page').textContent='page '+(page+1)+' of '+pages;"
    "$('prev').disabled=page===0;$('next').disabled=page>=pages-1;}\n"
    "document.querySelectorAll('#images th[data-col]').forEach(function(th){"
    "th.tabIndex=0;function go(){var c=+th.dataset.col;dir=col===c?-dir:1;col=c;"
    "document.querySelectorAll('#images th[data-col]').forEach(function(o){"
    "o.removeAttribute('aria-sort');});"
    "th.setAttribute('aria-sort',dir>0?'ascending':'descending');apply();}"
    "th.addEventListener('click',go);th.addEventListener('keydown',function(e){"
    "if(e.key==='Enter')go();});});\n"
    "q.addEventListener('input',apply);st.addEventListener('change',apply);"
    "sz.addEventListener('change',function(){page=0;draw();});\n"
    "$('prev').addEventListener('click',function(){page--;draw();});"
    "$('next').addEventListener('click',function(){page++;draw();});\n"
    "apply();\n})();\n</script>\n";

static void table_part(page *p)
{
    page_raw(
        p,
        "<section id=\"images-section\">\n<h2>Images</h2>\n<div class=\"controls\">"
        "<input type=\"search\" id=\"filter\" placeholder=\"filter by name or job\" "
        "aria-label=\"filter by name or job\"><label>status <select id=\"status\">"
        "<option value=\"\">any</option><option>ok</option><option>not ok</option>"
        "<option>error</option><option>pending</option><option>stale</option>"
        "<option>" KMQ_REPORT_TARGET_MISSED "</option></select></label>"
        "<label>rows per page <select id=\"size\"><option>25</option><option selected>50</option>"
        "<option>100</option><option>200</option></select></label><span id=\"count\" "
        "class=\"muted\"></span></div>\n<noscript><p>The table needs JavaScript. Without it: "
        "<a href=\"" KMQ_RUN_JSON "\">run.json</a> and <a href=\"" KMQ_ELBOW_CSV
        "\">elbow.csv</a> hold the same numbers, and each image's folder holds its page "
        "(index.html).</p></noscript>\n<div class=\"scroll\"><table id=\"images\">\n<thead><tr>"
        "<th>thumbnail</th><th data-col=\"1\">image</th><th class=\"n\" data-col=\"3\">size</th>"
        "<th class=\"n\" data-col=\"5\">colours</th><th class=\"n\" data-col=\"6\">elbow k</th>"
        "<th class=\"n\" data-col=\"8\" title=\"at the elbow k, else at the largest k\">PSNR"
        "</th><th class=\"n\" data-col=\"9\" title=\"the indexed PNG at the elbow k, else at "
        "the largest k\">PNG</th><th class=\"n\" data-col=\"10\" title=\"input bytes / PNG "
        "bytes\">vs input</th><th class=\"n\" data-col=\"11\" title=\"the image's time, "
        "decoding included\">time</th><th data-col=\"12\">status</th></tr></thead>\n<tbody>"
        "</tbody>\n</table></div>\n<div class=\"pager\"><button id=\"prev\" type=\"button\">"
        "\u2190 previous</button><span id=\"page\"></span><button id=\"next\" type=\"button\">"
        "next \u2192</button></div>\n</section>\n");
}

/* Removes root/name when it is a regular file (an earlier run's page). */
static void remove_file(const char *root, const char *dir, const char *name)
{
    char *d = dir && dir[0] ? kmq_fsx_join(root, dir) : kmq__strdup(root);
    char *f = d ? kmq_fsx_join(d, name) : NULL;
    struct stat sb;
    if (f && lstat(f, &sb) == 0 && S_ISREG(sb.st_mode))
        unlink(f);
    kmq__free(d);
    kmq__free(f);
}

/* Whether the image's folder holds its summary.json: a page goes only
 * beside one (a pending image has none, and the folder of an image a
 * signal stopped stays empty). */
static bool has_summary(const char *root, const char *dir)
{
    char *d = kmq_fsx_join(root, dir);
    char *f = d ? kmq_fsx_join(d, KMQ_SUMMARY_JSON) : NULL;
    struct stat sb;
    bool yes = f && lstat(f, &sb) == 0 && S_ISREG(sb.st_mode);
    kmq__free(d);
    kmq__free(f);
    return yes;
}

kmq_status kmq__report_write_html(const char *out_root, const kmq_run_info *info,
                                  const kmq_job_elbow *elbows, size_t n_elbows,
                                  const kmq_run_image *images, const kmq_report_mode *modes,
                                  size_t n, kmq_err *err)
{
    bool any = n == 0; /* an empty run still gets a page that says so */
    for (size_t i = 0; i < n; i++)
        any |= modes[i] != KMQ_REPORT_NONE;
    if (!any) {
        remove_file(out_root, "", KMQ_INDEX_HTML);
        remove_file(out_root, "", KMQ_REPORT_CSS);
        for (size_t i = 0; i < n; i++)
            remove_file(out_root, images[i].dir, KMQ_INDEX_HTML);
        return KMQ_OK;
    }
    kmq__own_palettes own = {0};
    kmq_status st = kmq__own_palettes_index(images, n, &own, err);
    if (st == KMQ_OK)
        st = kmq__report_write_css(out_root, err);
    /* One image's page at a time: memory stays that of the table. */
    for (size_t i = 0; i < n && st == KMQ_OK; i++) {
        if (!has_summary(out_root, images[i].dir))
            continue;
        if (modes[i] == KMQ_REPORT_NONE || !images[i].summary->ok)
            remove_file(out_root, images[i].dir, KMQ_INDEX_HTML);
        else
            st = kmq__report_write_detail(out_root, &images[i], modes[i], &own, err);
    }
    if (st != KMQ_OK) {
        kmq__own_palettes_clear(&own);
        return st;
    }
    page pg = {.root = out_root}, *p = &pg;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += images[i].summary->ok;
    char title[96];
    snprintf(title, sizeof title, "kmq report \u2013 %zu image%s, %zu not ok", n, n == 1 ? "" : "s",
             n - ok);
    page_head(p, title, "");
    page_raw(
        p,
        "<header><h1>kmq report</h1><p>k-means colour quantization \u00b7 kmq " KMQ_VERSION_STRING);
    if (info->job_file) {
        page_raw(p, " \u00b7 job file ");
        page_esc(p, info->job_file);
    }
    if (info->started_utc) {
        page_raw(p, " \u00b7 started ");
        page_esc(p, info->started_utc);
    }
    if (info->threads > 0)
        page_fmt(p, " \u00b7 %d thread%s", info->threads, info->threads == 1 ? "" : "s");
    page_raw(p, "</p></header>\n<main>\n");
    /* The run and the collection's elbow side by side when there is room,
     * so that the table starts within the first screen. */
    page_raw(p, "<div class=\"top\">\n");
    totals_part(p, info, images, n);
    jobs_part(p, elbows, n_elbows, images, n, &own);
    kmq__own_palettes_clear(&own);
    page_raw(p, "</div>\n");
    failures_part(p, images, modes, n);
    table_part(p);
    page_raw(p, "</main>\n<footer>Written by kmq " KMQ_VERSION_STRING
                " from the summary.json files under this folder; <code>kmq report "
                "OUTDIR</code> rebuilds it.</footer>\n");
    rows_part(p, images, modes, n);
    page_raw(p, table_script);
    page_raw(p, "</body>\n</html>\n");
    return page_write(p, "", KMQ_INDEX_HTML, err);
}
