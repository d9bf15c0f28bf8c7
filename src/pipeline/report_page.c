/* report_page.c — the text helpers and the stylesheet every report page
 * shares (layer L3; see report_page.h). Serial; no parallel region.
 */
#include "report_page.h"

#include "kmq/fsx.h"
#include "kmq/outputs.h"
#include "kmq/plot.h"
#include "kmq/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void page_put(page *p, const char *s, size_t n)
{
    kmq_strbuf_put(&p->buf, s, n);
}

void page_raw(page *p, const char *s)
{
    kmq_strbuf_str(&p->buf, s);
}

void page_fmt(page *p, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    kmq_strbuf_vfmt(&p->buf, f, ap);
    va_end(ap);
}

void page_esc(page *p, const char *s)
{
    char *e = kmq_plot_escape(s);
    if (!e) {
        p->buf.failed = true;
        return;
    }
    page_raw(p, e);
    kmq__free(e);
}

void page_json_str(page *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        page_raw(p, "null");
        return;
    }
    page_put(p, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t l = kmq_utf8_decode(u + i, n - i, &cp);
        if (l == 0) {
            page_raw(p, "\\ufffd");
            i++;
            continue;
        }
        if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 || cp == 0x2029) {
            char e[7] = {
                '\\',         'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
                hex[cp & 15], 0};
            page_raw(p, e);
        } else if (cp == '"' || cp == '\\') {
            char e[3] = {'\\', (char)cp, 0};
            page_raw(p, e);
        } else {
            page_put(p, s + i, l);
        }
        i += l;
    }
    page_put(p, "\"", 1);
}

void page_num(page *p, double v, int decimals)
{
    char b[40];
    page_raw(p, kmq_plot_format_number(v, decimals, b));
}

void page_count(page *p, uint64_t v)
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
    page_raw(p, out);
}

void page_bytes(page *p, uint64_t v)
{
    page_fmt(p, "<span title=\"%" PRIu64 " bytes\">", v);
    if (v < 1000) {
        page_fmt(p, "%" PRIu64 " B", v);
    } else if (v < 1000000) {
        page_num(p, (double)v / 1e3, 1);
        page_raw(p, " kB");
    } else {
        page_num(p, (double)v / 1e6, v < 100000000 ? 2 : 1);
        page_raw(p, " MB");
    }
    page_raw(p, "</span>");
}

void page_seconds(page *p, double s)
{
    if (!isfinite(s)) {
        page_raw(p, "\u2013");
        return;
    }
    if (s >= 3600) {
        /* Hours as a double: a run file may claim any duration, and an int
         * would overflow. */
        page_fmt(p, "%.0f h %02d min", floor(s / 3600), (int)fmod(s / 60, 60));
    } else if (s >= 60) {
        page_fmt(p, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    } else {
        page_num(p, s, s < 10 ? 2 : 1);
        page_raw(p, " s");
    }
}

void page_scientific(page *p, double v)
{
    static const char *const sup[10] = {"\u2070", "\u00b9", "\u00b2", "\u00b3", "\u2074",
                                        "\u2075", "\u2076", "\u2077", "\u2078", "\u2079"};
    if (!(v > 0) || !isfinite(v) || (v >= 0.01 && v < 1e5)) {
        page_num(p, v, v >= 100 ? 0 : 2);
        return;
    }
    int e = (int)floor(log10(v));
    page_num(p, v / pow(10.0, e), 2);
    page_raw(p, "\u2009\u00d7\u200910");
    char d[16];
    snprintf(d, sizeof d, "%d", e);
    for (const char *c = d; *c; c++)
        page_raw(p, *c == '-' ? "\u207b" : sup[*c - '0']);
}

void page_url(page *p, const char *dir, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *parts[2] = {dir, name};
    for (int k = 0; k < 2; k++) {
        const unsigned char *s = (const unsigned char *)(parts[k] ? parts[k] : "");
        if (k == 1 && dir && dir[0] && name && name[0])
            page_put(p, "/", 1);
        for (; *s; s++) {
            bool plain = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                         (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' ||
                         *s == '~' || *s == '/';
            if (plain) {
                page_put(p, (const char *)s, 1);
            } else {
                char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};
                page_put(p, e, 3);
            }
        }
    }
}

void page_up(page *p, const char *dir)
{
    if (!dir || !dir[0])
        return;
    page_raw(p, "../");
    for (const char *c = dir; *c; c++)
        if (*c == '/' && c[1])
            page_raw(p, "../");
}

bool page_exists(page *p, const char *dir, const char *name)
{
    char *d = dir && dir[0] ? kmq_fsx_join(p->root, dir) : kmq__strdup(p->root);
    char *f = d ? kmq_fsx_join(d, name) : NULL;
    struct stat sb;
    bool yes = f && stat(f, &sb) == 0 && S_ISREG(sb.st_mode);
    if (!d || !f)
        p->buf.failed = true;
    kmq__free(d);
    kmq__free(f);
    return yes;
}

const char *page_image_name(const kmq_summary *s)
{
    return s->rel ? s->rel : (s->path ? s->path : "(unknown)");
}

const char *page_status(const kmq_summary *s)
{
    if (s->ok)
        return s->target_psnr > 0 && !s->target_reached ? KMQ_REPORT_TARGET_MISSED : "ok";
    if (s->error_code &&
        (strcmp(s->error_code, KMQ_RUN_PENDING) == 0 || strcmp(s->error_code, KMQ_RUN_STALE) == 0))
        return s->error_code;
    return "error";
}

const kmq_k_result *page_shown_result(const kmq_summary *s)
{
    if (!s->ok || s->nresults == 0 || !s->results)
        return NULL;
    if (s->has_elbow)
        for (size_t i = 0; i < s->nresults; i++)
            if (s->results[i].k == s->elbow_k)
                return &s->results[i];
    return &s->results[s->nresults - 1];
}

void page_head(page *p, const char *title_text, const char *up_dir)
{
    page_raw(p, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<title>");
    page_esc(p, title_text);
    page_raw(p, "</title>\n<link rel=\"stylesheet\" href=\"");
    page_up(p, up_dir);
    page_raw(p, KMQ_REPORT_CSS "\">\n</head>\n<body>\n");
}

kmq_status page_write(page *p, const char *dir, const char *name, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char *d = dir && dir[0] ? kmq_fsx_join(p->root, dir) : kmq__strdup(p->root);
    char *path = d ? kmq_fsx_join(d, name) : NULL;
    if (!path || p->buf.failed)
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory formatting %s", name);
    else
        st = kmq_fsx_write_all(path, p->buf.data, p->buf.len, false, err);
    kmq__free(d);
    kmq__free(path);
    kmq_strbuf_clear(&p->buf);
    return st;
}

/* One stylesheet for the overview and the detail pages. Text never sits on
 * top of other text: long names wrap anywhere, numbers do not wrap, wide
 * tables scroll inside their box. */
static const char css[] =
    ":root{--fg:#1d232a;--muted:#5b6570;--line:#d9dee3;--bg:#f6f7f9;--accent:#d62728;"
    "--ok:#2c7a3f;--link:#1f5fa8}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',"
    "sans-serif;color:var(--fg);background:var(--bg)}\n"
    "header{background:#1d232a;color:#fff;padding:14px 24px}\n"
    "header h1{margin:0;font-size:22px;overflow-wrap:anywhere}\n"
    "header p{margin:4px 0 0;color:#c9d1d9;font-size:14px;overflow-wrap:anywhere}\n"
    "header a{color:#9cc3f5}\n"
    "main{max-width:1360px;margin:0 auto;padding:4px 16px 32px}\n"
    "section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;"
    "margin:14px 0}\n"
    "h2{margin:0 0 8px;font-size:19px;overflow-wrap:anywhere}\n"
    "h3{font-size:16px;margin:14px 0 6px}\n"
    "a{color:var(--link)}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums}\n"
    "th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid var(--line);"
    "vertical-align:middle}\n"
    "th{color:var(--muted);font-weight:600;font-size:13px}\n"
    "td.n,th.n{text-align:right;white-space:nowrap}\n"
    "td.name{overflow-wrap:anywhere;min-width:9em}\n"
    ".totals{display:flex;flex-wrap:wrap;gap:8px 28px;margin:4px 0 8px}\n"
    ".totals div{min-width:6em}.totals b{display:block;font-size:21px}\n"
    ".totals span{color:var(--muted);font-size:13px}\n"
    ".bad{color:var(--accent)}.good{color:var(--ok)}\n"
    ".muted{color:var(--muted)}\n"
    ".top{display:flex;flex-wrap:wrap;gap:0 14px}\n"
    ".top>section{flex:1 1 460px;min-width:0}\n"
    ".jobs{display:flex;flex-wrap:wrap;gap:16px}\n"
    ".job{flex:1 1 380px;max-width:640px}.job p{margin:4px 0}\n"
    "svg.chart{display:block;width:100%;max-width:520px;height:auto;font-size:12px;"
    "font-family:system-ui,'DejaVu Sans',sans-serif}\n"
    ".chart .bg{fill:#fafbfc;stroke:#d9dee3}.chart .grid{stroke:#e3e7eb}\n"
    ".chart text{fill:#5b6570}.chart .yl text{text-anchor:end}"
    ".chart .xl text,.chart text.axis{text-anchor:middle}.chart text.axis{fill:#1d232a}\n"
    ".chart .band{fill:#d62728;fill-opacity:.16}.chart .line{fill:none;stroke:#1f5fa8;"
    "stroke-width:2}.chart .dots{stroke:#1f5fa8;stroke-width:7;stroke-linecap:round}\n"
    ".chart .tick{stroke:#5b6570}.chart circle.mark{fill:none;stroke:#d62728;stroke-width:2.5}"
    ".chart text.mark{fill:#d62728;font-weight:bold}\n"
    ".controls{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin:6px 0 10px}\n"
    ".controls input[type=search]{font:inherit;padding:4px 8px;min-width:14em}\n"
    ".controls select,.controls button,.pager button{font:inherit;padding:3px 10px}\n"
    "#images th[data-col]{cursor:pointer;white-space:nowrap}\n"
    "#images th[aria-sort=ascending]::after{content:' \\25B2'}\n"
    "#images th[aria-sort=descending]::after{content:' \\25BC'}\n"
    "td.thumb{width:108px;height:76px}\n"
    "td.thumb img{display:block;max-width:100px;max-height:70px;width:auto;height:auto;"
    "border:1px solid var(--line);border-radius:3px}\n"
    ".pager{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-top:10px}\n"
    ".status-ok{color:var(--ok)}.status-error{color:var(--accent);font-weight:600}\n"
    ".status-pending,.status-stale{color:#9a6700;font-weight:600}\n"
    ".failures td{overflow-wrap:anywhere}\n"
    ".meta{color:var(--muted);margin:0 0 10px;font-size:14px;overflow-wrap:anywhere}\n"
    ".suggest{margin:10px 0;padding:8px 12px;background:#fdf0f0;"
    "border-left:4px solid var(--accent);border-radius:4px}\n"
    ".compare{display:grid;grid-template-columns:repeat(auto-fill,minmax(214px,1fr));"
    "gap:12px}\n"
    ".compare figure{margin:0;padding:6px;border:1px solid var(--line);border-radius:6px;"
    "background:#fff}\n"
    ".compare figure.elbow{border:2px solid var(--accent)}\n"
    ".compare img{display:block;width:100%;height:auto;max-height:200px;object-fit:contain}\n"
    ".compare figcaption{font-size:13px;color:var(--muted);margin-top:4px;"
    "overflow-wrap:anywhere}\n"
    ".compare figcaption b{color:var(--fg)}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}\n"
    ".charts>*{flex:1 1 380px;max-width:660px}\n"
    ".charts img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px}\n"
    ".pal{height:18px;border:1px solid var(--line);border-radius:3px;min-width:120px}\n"
    "td.pal-cell{min-width:140px;width:30%}\n"
    "footer{color:var(--muted);font-size:13px;text-align:center;margin:20px 12px}\n";

kmq_status kmq__report_write_css(const char *out_root, kmq_err *err)
{
    page p = {.root = out_root};
    page_put(&p, css, sizeof css - 1);
    return page_write(&p, "", KMQ_REPORT_CSS, err);
}
