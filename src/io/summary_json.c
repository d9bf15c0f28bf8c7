/* summary_json.c — the summary module's shared pieces and summary.json, the
 * record of one image (layer L2). The summary module (this file,
 * summary_run.c for run.json and elbow.csv, summary_read.c and
 * summary_fields.c for reading both documents back, and the private
 * summary_internal.h) is the only one that includes <jansson.h>; it opens no image and knows
 * nothing of jobs beyond the plain structs of summary.h. Files are written through fsx (L0),
 * atomically and durably. Here: jansson's allocator, the UTF-8-repairing
 * string maker, the document builder helpers, dumping, and
 * kmq_summary_write.
 *
 * Documents are built as jansson trees in the key order of docs/design.md
 * (section 6; jansson >= 2.8 keeps insertion order, JSON_PRESERVE_ORDER is a
 * no-op kept for clarity) and dumped with an indent of 2 and a final newline.
 *
 * Numbers.
 *  - Reals are dumped with JSON_REAL_PRECISION(17), i.e. "%.17g": 17
 *    significant digits identify every binary64 value, so write -> read gives
 *    the same bits (0.1 is written 0.10000000000000001). jansson formats and
 *    parses reals independently of LC_NUMERIC (it swaps the locale's decimal
 *    point for '.'), and elbow.csv formats its reals with the same jansson
 *    call, so the CSV and the summaries agree character for character.
 *  - JSON has no NaN or infinity: a non-finite double is written as null and
 *    read back as NAN (so write -> read -> write is still byte-identical).
 *    psnr_db is null whenever mse_output == 0 (lossless); a ratio whose
 *    denominator was 0 (the runner's division gave inf or NaN) is null the
 *    same way. In elbow.csv such a value is an empty field.
 *  - jansson's integers are long long, and its parser refuses larger ones, so
 *    an unsigned field above 2^63 - 1 (in practice only a huge seed) cannot be
 *    written: kmq_summary_write / kmq_run_write return KMQ_E_ARG naming the
 *    field rather than write a file nothing could read back.
 *  - Integers are printed with "%d"-style conversions, which never group
 *    digits or use the locale.
 *
 * Strings. JSON strings are UTF-8, file names are bytes. Bytes of a string
 * that are not valid UTF-8 (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) are each written as U+FFFD. That is lossy for such names, but the
 * resume key is the config hash (a hex string), not the path, and the CSV
 * applies the same replacement so that run-level files rebuilt from
 * summaries match those written by the run. NULL strings are written as null.
 *
 * summary.json, beyond what docs/design.md says:
 *  - input.rel: the path relative to the input root (null if unknown).
 *  - A failed image ("status": "error") still writes the whole input and
 *    config objects; input numbers that are 0 there (width, height, bands,
 *    pixels, unique_colors: not known when the image failed before decoding)
 *    are null. results is [] and elbow.k is null whatever the struct holds.
 *  - results[].files has an entry for each of "indexed", "labels" and
 *    "palette" (the swatch) only when its path is non-NULL; bits_per_pixel
 *    only in "indexed".
 *
 * Memory. jansson allocates through kmq__alloc / kmq__free (installed with
 * json_set_alloc_funcs once, on first use), so allocation-failure sweeps
 * cover it. Both are malloc/free underneath, so a jansson value allocated
 * before the switch is still freed correctly after it; the switch is process-
 * wide, which is harmless because the summary module is the only jansson user
 * in libkmq. jansson's loader drops a byte silently when a buffer cannot
 * grow, so a per-thread flag records any allocation failure inside jansson
 * and the call then fails with KMQ_E_NOMEM whatever jansson returned.
 *
 * Threading: no parallel regions. Functions are reentrant (the only shared
 * state is the once-flag; the failure flag is per thread) and may run in
 * several threads at once on different files.
 */
#include "summary_internal.h"
#include "kmq/utf8.h"
#include "kmq/fsx.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define DUMP_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))

/* ---- jansson allocation ------------------------------------------------ */

static pthread_once_t jansson_once = PTHREAD_ONCE_INIT;
static _Thread_local int jansson_oom; /* an allocation inside jansson failed */

static void *jansson_alloc(size_t size)
{
    void *p = kmq__alloc(size);
    if (!p)
        jansson_oom = 1;
    return p;
}

static void jansson_setup(void)
{
    json_set_alloc_funcs(jansson_alloc, kmq__free);
}

void kmq__sj_begin(void)
{
    pthread_once(&jansson_once, jansson_setup);
    jansson_oom = 0;
}

bool kmq__sj_oom(void)
{
    return jansson_oom != 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

const char kmq__sj_replacement[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */

size_t kmq__sj_utf8_len(const unsigned char *p, size_t left)
{
    uint32_t cp = 0;
    return kmq_utf8_decode(p, left, &cp);
}

json_t *kmq__sj_str(const char *s)
{
    if (!s)
        return json_null();
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), bad = 0;
    for (size_t i = 0; i < n;) {
        size_t l = kmq__sj_utf8_len(u + i, n - i);
        bad += l == 0;
        i += l ? l : 1;
    }
    if (bad == 0)
        return json_stringn(s, n);
    /* each bad byte (1) becomes 3 bytes; n + 2 * bad cannot overflow for a
     * string that fits in memory, since bad <= n. */
    char *fixed = kmq__alloc(n + 2 * bad);
    if (!fixed)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = kmq__sj_utf8_len(u + i, n - i);
        if (l == 0) {
            memcpy(fixed + o, kmq__sj_replacement, 3);
            o += 3;
            i++;
        } else {
            memcpy(fixed + o, s + i, l);
            o += l;
            i += l;
        }
    }
    json_t *v = json_stringn(fixed, o);
    kmq__free(fixed);
    return v;
}

/* ---- building documents ------------------------------------------------ */

bool kmq__sj_put(json_t *obj, const char *key, json_t *value)
{
    return json_object_set_new(obj, key, value) == 0;
}

bool kmq__sj_push(json_t *arr, json_t *value)
{
    return json_array_append_new(arr, value) == 0;
}

json_t *kmq__sj_put_child(json_t *obj, const char *key, json_t *child)
{
    return kmq__sj_put(obj, key, child) ? child : NULL;
}

json_t *kmq__sj_push_child(json_t *arr, json_t *child)
{
    return kmq__sj_push(arr, child) ? child : NULL;
}

json_t *kmq__sj_real(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *kmq__sj_int(long long v)
{
    return json_integer((json_int_t)v);
}

json_t *kmq__sj_u64(kmq__sj_builder *b, const char *key, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        if (b->st == KMQ_OK)
            b->st = kmq_err_set(b->err, KMQ_E_ARG,
                                "%s = %" PRIu64
                                " exceeds 2^63 - 1, the largest integer kmq writes to JSON",
                                key, v);
        return NULL;
    }
    return json_integer((json_int_t)v);
}

bool kmq__sj_put_u64(kmq__sj_builder *b, json_t *obj, const char *key, uint64_t v)
{
    return kmq__sj_put(obj, key, kmq__sj_u64(b, key, v));
}

bool kmq__sj_put_known(kmq__sj_builder *b, json_t *obj, const char *key, uint64_t v, bool ok)
{
    return kmq__sj_put(obj, key, (ok || v != 0) ? kmq__sj_u64(b, key, v) : json_null());
}

bool kmq__sj_need_array(kmq__sj_builder *b, const void *p, size_t n, const char *what)
{
    if (p || n == 0)
        return true;
    if (b->st == KMQ_OK)
        b->st = kmq_err_set(b->err, KMQ_E_ARG, "%s is NULL but has %zu entries", what, n);
    return false;
}

json_t *kmq__sj_error(const char *code, const char *message)
{
    json_t *e = json_object();
    if (e && kmq__sj_put(e, "code", kmq__sj_str(code)) &&
        kmq__sj_put(e, "message", kmq__sj_str(message)))
        return e;
    json_decref(e);
    return NULL;
}

kmq_status kmq__sj_built(const kmq__sj_builder *b, const json_t *root, const char *what,
                         kmq_err *err)
{
    if (b->st != KMQ_OK)
        return b->st;
    if (!root || kmq__sj_oom())
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory building %s", what);
    return KMQ_OK;
}

/* ---- dumping ----------------------------------------------------------- */

kmq_status kmq__sj_dump(const json_t *root, const char *what, char **text, size_t *len,
                        kmq_err *err)
{
    /* Dumping a valid tree fails only when jansson cannot allocate (its loop
     * check keeps a small table of open containers). */
    size_t need = json_dumpb(root, NULL, 0, DUMP_FLAGS);
    char *buf = need ? kmq__alloc(need + 1) : NULL;
    if (!buf || json_dumpb(root, buf, need, DUMP_FLAGS) != need || kmq__sj_oom()) {
        kmq__free(buf);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory formatting %s", what);
    }
    buf[need] = '\n';
    *text = buf;
    *len = need + 1;
    return KMQ_OK;
}

/* ---- summary.json ------------------------------------------------------ */

static bool build_file(kmq__sj_builder *b, json_t *files, const char *key, const kmq_file_info *f,
                       bool with_bpp)
{
    if (!f->path)
        return true;
    json_t *o = kmq__sj_put_child(files, key, json_object());
    return o && kmq__sj_put(o, "path", kmq__sj_str(f->path)) &&
           kmq__sj_put_u64(b, o, "bytes", f->bytes) &&
           (!with_bpp || kmq__sj_put(o, "bits_per_pixel", kmq__sj_int(f->bits_per_pixel)));
}

/* "target": what the quality search chose and every k it fitted. */
static bool build_target(kmq__sj_builder *b, json_t *root, const kmq_summary *s)
{
    json_t *t = kmq__sj_put_child(root, "target", json_object());
    if (!t || !kmq__sj_need_array(b, s->results, s->nresults, "results") ||
        !kmq__sj_need_array(b, s->tried, s->ntried, "target tried") ||
        !kmq__sj_put(t, "psnr_db", kmq__sj_real(s->target_psnr)) ||
        !kmq__sj_put(t, "k", kmq__sj_u64(b, "target k", s->results[0].k)) ||
        !kmq__sj_put(t, "reached", json_boolean(s->target_reached)))
        return false;
    json_t *tried = kmq__sj_put_child(t, "fitted", json_array());
    if (!tried)
        return false;
    for (size_t i = 0; i < s->ntried; i++) {
        const kmq_target_try *f = &s->tried[i];
        json_t *o = kmq__sj_push_child(tried, json_object());
        if (!o || !kmq__sj_put(o, "k", kmq__sj_u64(b, "k", f->k)) ||
            !kmq__sj_put(o, "mse_output", kmq__sj_real(f->mse_output)) ||
            !kmq__sj_put(o, "psnr_db", f->mse_output == 0 ? json_null() : kmq__sj_real(f->psnr_db)))
            return false;
    }
    return true;
}

static bool build_result(kmq__sj_builder *b, json_t *results, const kmq_k_result *r)
{
    json_t *o = kmq__sj_push_child(results, json_object());
    if (!o)
        return false;
    bool lossless = r->mse_output == 0.0;
    if (!(kmq__sj_put_u64(b, o, "k", r->k) &&
          kmq__sj_put_u64(b, o, "k_effective", r->k_effective) &&
          kmq__sj_put(o, "inertia", kmq__sj_real(r->inertia)) &&
          kmq__sj_put(o, "mse", kmq__sj_real(r->mse)) &&
          kmq__sj_put(o, "mse_output", kmq__sj_real(r->mse_output)) &&
          kmq__sj_put(o, "psnr_db", lossless ? json_null() : kmq__sj_real(r->psnr_db)) &&
          kmq__sj_put(o, "delta_e_mean", kmq__sj_real(r->delta_e_mean)) &&
          kmq__sj_put(o, "delta_e_p95", kmq__sj_real(r->delta_e_p95)) &&
          kmq__sj_put(o, "iterations", kmq__sj_int(r->iterations)) &&
          kmq__sj_put(o, "converged", json_boolean(r->converged))))
        return false;

    if (r->restarts < 0) {
        if (b->st == KMQ_OK)
            b->st = kmq_err_set(b->err, KMQ_E_ARG, "restarts = %d is negative", r->restarts);
        return false;
    }
    json_t *rs = kmq__sj_put_child(o, "restarts", json_object());
    if (!rs || !kmq__sj_put(rs, "count", kmq__sj_int(r->restarts)) ||
        !kmq__sj_put(rs, "best", kmq__sj_int(r->best_restart)))
        return false;
    json_t *ri = kmq__sj_put_child(rs, "inertia", json_array());
    if (!ri || !kmq__sj_need_array(b, r->restart_inertia, (size_t)r->restarts, "restart_inertia"))
        return false;
    for (int i = 0; i < r->restarts; i++)
        if (!kmq__sj_push(ri, kmq__sj_real(r->restart_inertia[i])))
            return false;

    json_t *pal = kmq__sj_put_child(o, "palette", json_array());
    if (!pal || !kmq__sj_need_array(b, r->palette, r->k_effective, "palette"))
        return false;
    for (size_t i = 0; i < r->k_effective; i++) {
        const kmq_palette_entry *e = &r->palette[i];
        char hex[8];
        snprintf(hex, sizeof hex, "#%02x%02x%02x", e->rgb[0], e->rgb[1], e->rgb[2]);
        json_t *eo = kmq__sj_push_child(pal, json_object());
        json_t *rgb = eo ? kmq__sj_put_child(eo, "rgb", json_array()) : NULL;
        if (!rgb || !kmq__sj_push(rgb, kmq__sj_int(e->rgb[0])) ||
            !kmq__sj_push(rgb, kmq__sj_int(e->rgb[1])) ||
            !kmq__sj_push(rgb, kmq__sj_int(e->rgb[2])) ||
            !kmq__sj_put(eo, "hex", json_string(hex)) ||
            (r->alpha && !kmq__sj_put(eo, "alpha", kmq__sj_int(e->alpha))) ||
            !kmq__sj_put_u64(b, eo, "pixels", e->pixels))
            return false;
    }

    json_t *files = kmq__sj_put_child(o, "files", json_object());
    if (!files || !build_file(b, files, "indexed", &r->indexed, true) ||
        !build_file(b, files, "labels", &r->labels, false) ||
        !build_file(b, files, "palette", &r->swatch, false))
        return false;

    json_t *c = kmq__sj_put_child(o, "compression", json_object());
    if (!c || !kmq__sj_put_u64(b, c, "raw_bytes", r->raw_bytes) ||
        !kmq__sj_put_u64(b, c, "packed_bytes", r->packed_bytes) ||
        !kmq__sj_put_u64(b, c, "png_bytes", r->png_bytes) ||
        !kmq__sj_put(c, "ratio_vs_raw", kmq__sj_real(r->ratio_vs_raw)) ||
        !kmq__sj_put(c, "ratio_vs_input", kmq__sj_real(r->ratio_vs_input)))
        return false;

    json_t *sec = kmq__sj_put_child(o, "seconds", json_object());
    return sec && kmq__sj_put(sec, "fit", kmq__sj_real(r->fit_s)) &&
           kmq__sj_put(sec, "map", kmq__sj_real(r->map_s));
}

/* The summary document, or NULL (b->st says KMQ_E_ARG, else out of memory). */
static json_t *build_summary(kmq__sj_builder *b, const kmq_summary *s)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    if (!kmq__sj_put(root, "schema", kmq__sj_int(KMQ_SUMMARY_SCHEMA)) ||
        !kmq__sj_put(root, "kmq_version", json_string(KMQ_VERSION_STRING)) ||
        !kmq__sj_put(root, "status", json_string(s->ok ? "ok" : "error")) ||
        !kmq__sj_put(root, "error",
                     s->ok ? json_null() : kmq__sj_error(s->error_code, s->error_message)))
        goto fail;

    json_t *in = kmq__sj_put_child(root, "input", json_object());
    if (!in || !kmq__sj_put(in, "path", kmq__sj_str(s->path)) ||
        !kmq__sj_put(in, "rel", kmq__sj_str(s->rel)) ||
        !kmq__sj_put_u64(b, in, "bytes", s->bytes) ||
        !kmq__sj_put(in, "format", kmq__sj_str(s->format)) ||
        !kmq__sj_put_known(b, in, "width", s->width, s->ok) ||
        !kmq__sj_put_known(b, in, "height", s->height, s->ok) ||
        !kmq__sj_put(in, "bands", (s->ok || s->bands != 0) ? kmq__sj_int(s->bands) : json_null()) ||
        !kmq__sj_put(in, "alpha",
                     s->alpha_channel >= 0 && (s->ok || s->bands != 0)
                         ? json_boolean(s->alpha_channel == 1)
                         : json_null()) ||
        !kmq__sj_put_known(b, in, "pixels", s->pixels, s->ok) ||
        !kmq__sj_put_known(b, in, "unique_colors", s->unique_colors, s->ok))
        goto fail;

    json_t *cfg = kmq__sj_put_child(root, "config", json_object());
    json_t *ks = cfg && kmq__sj_put(cfg, "job", kmq__sj_str(s->job))
                     ? kmq__sj_put_child(cfg, "k", json_array())
                     : NULL;
    if (!ks || !kmq__sj_need_array(b, s->k, s->nk, "config k"))
        goto fail;
    for (size_t i = 0; i < s->nk; i++)
        if (!kmq__sj_push(ks, kmq__sj_u64(b, "k", s->k[i])))
            goto fail;
    if (!kmq__sj_put(cfg, "restarts", kmq__sj_int(s->restarts)) ||
        !kmq__sj_put(cfg, "max_iter", kmq__sj_int(s->max_iter)) ||
        !kmq__sj_put(cfg, "tol", kmq__sj_real(s->tol)) ||
        !kmq__sj_put(cfg, "init", kmq__sj_str(s->init)) ||
        !kmq__sj_put_u64(b, cfg, "seed", s->seed) ||
        !kmq__sj_put_u64(b, cfg, "sample", s->sample) ||
        !kmq__sj_put(cfg, "threads", kmq__sj_int(s->threads)) ||
        !kmq__sj_put(cfg, "identity", kmq__sj_str(s->identity)) ||
        !kmq__sj_put(cfg, "hash", kmq__sj_str(s->hash)))
        goto fail;
    /* Written only when used: summaries of jobs without dither stay as they were. */
    if (s->alpha && !kmq__sj_put(cfg, "alpha", kmq__sj_str(s->alpha)))
        goto fail;
    if (s->space && !kmq__sj_put(cfg, "space", kmq__sj_str(s->space)))
        goto fail;
    if (s->dither && (!kmq__sj_put(cfg, "dither", kmq__sj_str(s->dither)) ||
                      !kmq__sj_put(cfg, "dither_strength", kmq__sj_real(s->dither_strength))))
        goto fail;
    /* Likewise only when not the default (light). */
    if (s->report && !kmq__sj_put(cfg, "report", kmq__sj_str(s->report)))
        goto fail;
    if (s->target_psnr > 0 && !kmq__sj_put(cfg, "target_psnr", kmq__sj_real(s->target_psnr)))
        goto fail;
    if (s->ok && s->target_psnr > 0 && !build_target(b, root, s))
        goto fail;

    if (s->palette_mode) {
        json_t *pal = kmq__sj_put_child(root, "palette", json_object());
        if (!pal || !kmq__sj_put(pal, "mode", kmq__sj_str(s->palette_mode)) ||
            !kmq__sj_put(pal, "hash", kmq__sj_str(s->palette_hash)))
            goto fail;
    }

    json_t *results = kmq__sj_put_child(root, "results", json_array());
    if (!results)
        goto fail;
    if (s->ok) {
        if (!kmq__sj_need_array(b, s->results, s->nresults, "results"))
            goto fail;
        for (size_t i = 0; i < s->nresults; i++)
            if (!build_result(b, results, &s->results[i]))
                goto fail;
    }

    json_t *elbow = kmq__sj_put_child(root, "elbow", json_object());
    if (!elbow || !kmq__sj_put(elbow, "method", json_string("kneedle")) ||
        !kmq__sj_put(elbow, "k",
                     s->ok && s->has_elbow ? kmq__sj_u64(b, "elbow k", s->elbow_k) : json_null()))
        goto fail;

    json_t *sec = kmq__sj_put_child(root, "seconds", json_object());
    if (!sec || !kmq__sj_put(sec, "histogram", kmq__sj_real(s->histogram_s)) ||
        !kmq__sj_put(sec, "total", kmq__sj_real(s->total_s)))
        goto fail;
    return root;

fail:
    json_decref(root);
    return NULL;
}

kmq_status kmq_summary_write(const char *path, const kmq_summary *s, kmq_err *err)
{
    kmq_status st;
    kmq__sj_builder b = {err, KMQ_OK};
    json_t *root = NULL;
    char *text = NULL;
    size_t len = 0;

    kmq__sj_begin();
    root = build_summary(&b, s);
    if ((st = kmq__sj_built(&b, root, "summary.json", err)) != KMQ_OK)
        goto done;
    if ((st = kmq__sj_dump(root, "summary.json", &text, &len, err)) != KMQ_OK)
        goto done;
    st = kmq_fsx_write_all(path, text, len, true, err);

done:
    json_decref(root);
    kmq__free(text);
    return st;
}
