/* summary_json.c — summary.json (one image), run.json and elbow.csv (one run)
 * (layer L2). The only file that includes <jansson.h>; it opens no image and
 * knows nothing of jobs beyond the plain structs of summary.h. Files are
 * written through fsx (L0), atomically and durably.
 *
 * Documents are built as jansson trees in the key order of DESIGN §5
 * (jansson >= 2.8 keeps insertion order; JSON_PRESERVE_ORDER is a no-op kept
 * for clarity) and dumped with an indent of 2 and a final newline.
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
 *    psnr_db is null whenever mse_output == 0 (lossless, DESIGN §5); a ratio
 *    whose denominator was 0 (the runner's division gave inf or NaN) is null
 *    the same way. In elbow.csv such a value is an empty field.
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
 * summary.json, beyond DESIGN §5:
 *  - input.rel: the path relative to the input root (null if unknown).
 *  - A failed image ("status": "error") still writes the whole input and
 *    config objects; input numbers that are 0 there (width, height, bands,
 *    pixels, unique_colors: not known when the image failed before decoding)
 *    are null. results is [] and elbow.k is null whatever the struct holds.
 *  - results[].files has an entry for each of "indexed", "labels" and
 *    "palette" (the swatch) only when its path is non-NULL; bits_per_pixel
 *    only in "indexed".
 *  - Reading is strict on what is documented (every field present, with its
 *    type; array lengths agree with their counts; hex agrees with rgb) and
 *    ignores unknown fields, since new fields may be added to schema 1.
 *
 * run.json (schema 1), keys in this order:
 *   schema, kmq_version, status ("complete" | "failures" | "interrupted"),
 *   job_file (string | null), threads, started_utc (string | null),
 *   seconds {wall, images_total (sum of the images' seconds.total)},
 *   totals {images, ok, failed, pixels (sum over ok images)},
 *   images [{job, path, rel, dir, status ("ok" | "error"),
 *            error (null | {code, message}), pixels (null if unknown),
 *            k [k of each result], k_effective [same order], elbow_k (number |
 *            null), seconds (the image's seconds.total)}],
 *   jobs [{name, images, ok, failed}] in order of first appearance; through
 *   kmq_run_write_with_elbows each job also has elbow (null | {method
 *   "kneedle-mean-normalised", k (number | null), images, k_values}), the
 *   collection-level suggestion computed by the report (report.c).
 *
 * elbow.csv: header "job,image,k,inertia,mse,psnr_db,iterations,seconds",
 * then one row per (ok image, result) in the order given; image = rel (path
 * when rel is NULL); seconds = fit + map of that k; psnr_db empty when
 * lossless. Fields holding a comma, a double quote, CR or LF are quoted as in
 * RFC 4180 (quotes doubled); a job or image starting with = + - @ TAB or CR
 * gets a leading "'" so that spreadsheets do not take it for a formula
 * (run.json keeps the name as it is); lines end in "\n" (not RFC 4180's
 * CRLF: the file is for Unix tools and every CSV reader accepts it).
 *
 * Memory. jansson allocates through kmq__alloc / kmq__free (installed with
 * json_set_alloc_funcs once, on first use), so allocation-failure sweeps
 * cover it. Both are malloc/free underneath, so a jansson value allocated
 * before the switch is still freed correctly after it; the switch is process-
 * wide, which is harmless because this is the only jansson user in libkmq.
 * jansson's loader drops a byte silently when a buffer cannot grow, so a
 * per-thread flag records any allocation failure inside jansson and the call
 * then fails with KMQ_E_NOMEM whatever jansson returned.
 *
 * Threading: no parallel regions. Functions are reentrant (the only shared
 * state is the once-flag; the failure flag is per thread) and may run in
 * several threads at once on different files.
 */
#include "internal.h"
#include "kmq/fsx.h"
#include "kmq/strbuf.h"
#include "kmq/summary.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef KMQ_VERSION_STRING
#error "KMQ_VERSION_STRING must be defined by the build"
#endif

#define RUN_SCHEMA 1
/* Largest summary.json read back: 255 k values with 256 palette entries each
 * take about 8 MB, so this leaves a wide margin. */
#define SUMMARY_MAX_BYTES ((size_t)64 << 20)
#define DUMP_FLAGS        (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
#define NUMBER_FLAGS      (JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

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

/* Called at the start of every public function. */
static void jansson_begin(void)
{
    pthread_once(&jansson_once, jansson_setup);
    jansson_oom = 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

static const char replacement_char[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */

/* Length (1..4) of the valid UTF-8 sequence at p, which has `left` bytes, or
 * 0 if the byte at p does not start one. */
static size_t utf8_seq_len(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0; /* overlong or beyond Unicode */
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0; /* surrogates are not characters */
    return n;
}

/* A JSON string for s (null for NULL), invalid bytes replaced by U+FFFD.
 * NULL on allocation failure. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), bad = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq_len(u + i, n - i);
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
        size_t l = utf8_seq_len(u + i, n - i);
        if (l == 0) {
            memcpy(fixed + o, replacement_char, 3);
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

/* Builder state: a failure is either out of memory (st stays KMQ_OK) or a
 * value JSON cannot hold (st = KMQ_E_ARG, message already set). */
typedef struct builder {
    kmq_err *err;
    kmq_status st;
} builder;

/* Attaches value (taken over, even on failure; NULL is a failure). */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return json_object_set_new(obj, key, value) == 0;
}

static bool push(json_t *arr, json_t *value)
{
    return json_array_append_new(arr, value) == 0;
}

/* Attaches a new container and returns it (borrowed), or NULL. */
static json_t *put_child(json_t *obj, const char *key, json_t *child)
{
    return put(obj, key, child) ? child : NULL;
}

static json_t *push_child(json_t *arr, json_t *child)
{
    return push(arr, child) ? child : NULL;
}

static json_t *jreal(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *jint(long long v)
{
    return json_integer((json_int_t)v);
}

static json_t *ju64(builder *b, const char *key, uint64_t v)
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

static bool put_u64(builder *b, json_t *obj, const char *key, uint64_t v)
{
    return put(obj, key, ju64(b, key, v));
}

/* A number when known; null for 0 in a failed image's summary. */
static bool put_known(builder *b, json_t *obj, const char *key, uint64_t v, bool ok)
{
    return put(obj, key, (ok || v != 0) ? ju64(b, key, v) : json_null());
}

/* NULL with a positive count is a caller bug; refuse instead of crashing. */
static bool need_array(builder *b, const void *p, size_t n, const char *what)
{
    if (p || n == 0)
        return true;
    if (b->st == KMQ_OK)
        b->st = kmq_err_set(b->err, KMQ_E_ARG, "%s is NULL but has %zu entries", what, n);
    return false;
}

static json_t *jerror(const char *code, const char *message)
{
    json_t *e = json_object();
    if (e && put(e, "code", jstr(code)) && put(e, "message", jstr(message)))
        return e;
    json_decref(e);
    return NULL;
}

static bool build_file(builder *b, json_t *files, const char *key, const kmq_file_info *f,
                       bool with_bpp)
{
    if (!f->path)
        return true;
    json_t *o = put_child(files, key, json_object());
    return o && put(o, "path", jstr(f->path)) && put_u64(b, o, "bytes", f->bytes) &&
           (!with_bpp || put(o, "bits_per_pixel", jint(f->bits_per_pixel)));
}

static bool build_result(builder *b, json_t *results, const kmq_k_result *r)
{
    json_t *o = push_child(results, json_object());
    if (!o)
        return false;
    bool lossless = r->mse_output == 0.0;
    if (!(put_u64(b, o, "k", r->k) && put_u64(b, o, "k_effective", r->k_effective) &&
          put(o, "inertia", jreal(r->inertia)) && put(o, "mse", jreal(r->mse)) &&
          put(o, "mse_output", jreal(r->mse_output)) &&
          put(o, "psnr_db", lossless ? json_null() : jreal(r->psnr_db)) &&
          put(o, "iterations", jint(r->iterations)) &&
          put(o, "converged", json_boolean(r->converged))))
        return false;

    if (r->restarts < 0) {
        if (b->st == KMQ_OK)
            b->st = kmq_err_set(b->err, KMQ_E_ARG, "restarts = %d is negative", r->restarts);
        return false;
    }
    json_t *rs = put_child(o, "restarts", json_object());
    if (!rs || !put(rs, "count", jint(r->restarts)) || !put(rs, "best", jint(r->best_restart)))
        return false;
    json_t *ri = put_child(rs, "inertia", json_array());
    if (!ri || !need_array(b, r->restart_inertia, (size_t)r->restarts, "restart_inertia"))
        return false;
    for (int i = 0; i < r->restarts; i++)
        if (!push(ri, jreal(r->restart_inertia[i])))
            return false;

    json_t *pal = put_child(o, "palette", json_array());
    if (!pal || !need_array(b, r->palette, r->k_effective, "palette"))
        return false;
    for (size_t i = 0; i < r->k_effective; i++) {
        const kmq_palette_entry *e = &r->palette[i];
        char hex[8];
        snprintf(hex, sizeof hex, "#%02x%02x%02x", e->rgb[0], e->rgb[1], e->rgb[2]);
        json_t *eo = push_child(pal, json_object());
        json_t *rgb = eo ? put_child(eo, "rgb", json_array()) : NULL;
        if (!rgb || !push(rgb, jint(e->rgb[0])) || !push(rgb, jint(e->rgb[1])) ||
            !push(rgb, jint(e->rgb[2])) || !put(eo, "hex", json_string(hex)) ||
            !put_u64(b, eo, "pixels", e->pixels))
            return false;
    }

    json_t *files = put_child(o, "files", json_object());
    if (!files || !build_file(b, files, "indexed", &r->indexed, true) ||
        !build_file(b, files, "labels", &r->labels, false) ||
        !build_file(b, files, "palette", &r->swatch, false))
        return false;

    json_t *c = put_child(o, "compression", json_object());
    if (!c || !put_u64(b, c, "raw_bytes", r->raw_bytes) ||
        !put_u64(b, c, "packed_bytes", r->packed_bytes) ||
        !put_u64(b, c, "png_bytes", r->png_bytes) ||
        !put(c, "ratio_vs_raw", jreal(r->ratio_vs_raw)) ||
        !put(c, "ratio_vs_input", jreal(r->ratio_vs_input)))
        return false;

    json_t *sec = put_child(o, "seconds", json_object());
    return sec && put(sec, "fit", jreal(r->fit_s)) && put(sec, "map", jreal(r->map_s));
}

/* The summary document, or NULL (b->st says KMQ_E_ARG, else out of memory). */
static json_t *build_summary(builder *b, const kmq_summary *s)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    if (!put(root, "schema", jint(KMQ_SUMMARY_SCHEMA)) ||
        !put(root, "kmq_version", json_string(KMQ_VERSION_STRING)) ||
        !put(root, "status", json_string(s->ok ? "ok" : "error")) ||
        !put(root, "error", s->ok ? json_null() : jerror(s->error_code, s->error_message)))
        goto fail;

    json_t *in = put_child(root, "input", json_object());
    if (!in || !put(in, "path", jstr(s->path)) || !put(in, "rel", jstr(s->rel)) ||
        !put_u64(b, in, "bytes", s->bytes) || !put(in, "format", jstr(s->format)) ||
        !put_known(b, in, "width", s->width, s->ok) ||
        !put_known(b, in, "height", s->height, s->ok) ||
        !put(in, "bands", (s->ok || s->bands != 0) ? jint(s->bands) : json_null()) ||
        !put_known(b, in, "pixels", s->pixels, s->ok) ||
        !put_known(b, in, "unique_colors", s->unique_colors, s->ok))
        goto fail;

    json_t *cfg = put_child(root, "config", json_object());
    json_t *ks = cfg && put(cfg, "job", jstr(s->job)) ? put_child(cfg, "k", json_array()) : NULL;
    if (!ks || !need_array(b, s->k, s->nk, "config k"))
        goto fail;
    for (size_t i = 0; i < s->nk; i++)
        if (!push(ks, ju64(b, "k", s->k[i])))
            goto fail;
    if (!put(cfg, "restarts", jint(s->restarts)) || !put(cfg, "max_iter", jint(s->max_iter)) ||
        !put(cfg, "tol", jreal(s->tol)) || !put(cfg, "init", jstr(s->init)) ||
        !put_u64(b, cfg, "seed", s->seed) || !put_u64(b, cfg, "sample", s->sample) ||
        !put(cfg, "threads", jint(s->threads)) || !put(cfg, "hash", jstr(s->hash)))
        goto fail;

    json_t *results = put_child(root, "results", json_array());
    if (!results)
        goto fail;
    if (s->ok) {
        if (!need_array(b, s->results, s->nresults, "results"))
            goto fail;
        for (size_t i = 0; i < s->nresults; i++)
            if (!build_result(b, results, &s->results[i]))
                goto fail;
    }

    json_t *elbow = put_child(root, "elbow", json_object());
    if (!elbow || !put(elbow, "method", json_string("kneedle")) ||
        !put(elbow, "k", s->ok && s->has_elbow ? ju64(b, "elbow k", s->elbow_k) : json_null()))
        goto fail;

    json_t *sec = put_child(root, "seconds", json_object());
    if (!sec || !put(sec, "histogram", jreal(s->histogram_s)) ||
        !put(sec, "total", jreal(s->total_s)))
        goto fail;
    return root;

fail:
    json_decref(root);
    return NULL;
}

/* Dumps root into a new buffer (kmq__free) with a final newline. */
static kmq_status dump_doc(const json_t *root, const char *what, char **text, size_t *len,
                           kmq_err *err)
{
    /* Dumping a valid tree fails only when jansson cannot allocate (its loop
     * check keeps a small table of open containers). */
    size_t need = json_dumpb(root, NULL, 0, DUMP_FLAGS);
    char *buf = need ? kmq__alloc(need + 1) : NULL;
    if (!buf || json_dumpb(root, buf, need, DUMP_FLAGS) != need || jansson_oom) {
        kmq__free(buf);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory formatting %s", what);
    }
    buf[need] = '\n';
    *text = buf;
    *len = need + 1;
    return KMQ_OK;
}

static kmq_status built(const builder *b, const json_t *root, const char *what, kmq_err *err)
{
    if (b->st != KMQ_OK)
        return b->st;
    if (!root || jansson_oom)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory building %s", what);
    return KMQ_OK;
}

kmq_status kmq_summary_write(const char *path, const kmq_summary *s, kmq_err *err)
{
    kmq_status st;
    builder b = {err, KMQ_OK};
    json_t *root = NULL;
    char *text = NULL;
    size_t len = 0;

    jansson_begin();
    root = build_summary(&b, s);
    if ((st = built(&b, root, "summary.json", err)) != KMQ_OK)
        goto done;
    if ((st = dump_doc(root, "summary.json", &text, &len, err)) != KMQ_OK)
        goto done;
    st = kmq_fsx_write_all(path, text, len, true, err);

done:
    json_decref(root);
    kmq__free(text);
    return st;
}

/* ---- reading summaries -------------------------------------------------- */

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((st = (expr)) != KMQ_OK)                                                               \
            goto done;                                                                             \
    } while (0)

static kmq_status bad_field(kmq_err *err, const char *ctx, const char *key, const char *problem)
{
    return kmq_err_set(err, KMQ_E_DECODE, "not a kmq schema-1 summary: field \"%s%s%s\" %s", ctx,
                       *ctx ? "." : "", key, problem);
}

static kmq_status rd_any(const json_t *obj, const char *ctx, const char *key, json_t **out,
                         kmq_err *err)
{
    *out = json_object_get(obj, key);
    return *out ? KMQ_OK : bad_field(err, ctx, key, "is missing");
}

static kmq_status rd_typed(const json_t *obj, const char *ctx, const char *key, json_type type,
                           json_t **out, kmq_err *err)
{
    kmq_status st = rd_any(obj, ctx, key, out, err);
    if (st == KMQ_OK && json_typeof(*out) != type)
        st = bad_field(err, ctx, key, type == JSON_OBJECT ? "is not an object" : "is not an array");
    return st;
}

/* An integer in [lo, hi]; null reads as 0 when `nullable`. */
static kmq_status rd_int(const json_t *obj, const char *ctx, const char *key, json_int_t lo,
                         json_int_t hi, bool nullable, json_int_t *out, kmq_err *err)
{
    json_t *v;
    kmq_status st = rd_any(obj, ctx, key, &v, err);
    if (st != KMQ_OK)
        return st;
    if (nullable && json_is_null(v)) {
        *out = 0;
        return KMQ_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char what[96];
        snprintf(what, sizeof what, "is not an integer in [%lld, %lld]%s", (long long)lo,
                 (long long)hi, nullable ? " or null" : "");
        return bad_field(err, ctx, key, what);
    }
    *out = json_integer_value(v);
    return KMQ_OK;
}

static kmq_status rd_u64(const json_t *obj, const char *ctx, const char *key, bool nullable,
                         uint64_t *out, kmq_err *err)
{
    json_int_t v = 0;
    kmq_status st = rd_int(obj, ctx, key, 0, INT64_MAX, nullable, &v, err);
    if (st == KMQ_OK)
        *out = (uint64_t)v;
    return st;
}

static kmq_status rd_size(const json_t *obj, const char *ctx, const char *key, size_t *out,
                          kmq_err *err)
{
    json_int_t v = 0;
    json_int_t hi = SIZE_MAX < (uint64_t)INT64_MAX ? (json_int_t)SIZE_MAX : INT64_MAX;
    kmq_status st = rd_int(obj, ctx, key, 0, hi, false, &v, err);
    if (st == KMQ_OK)
        *out = (size_t)v;
    return st;
}

static kmq_status rd_i32(const json_t *obj, const char *ctx, const char *key, bool nullable,
                         int *out, kmq_err *err)
{
    json_int_t v = 0;
    kmq_status st = rd_int(obj, ctx, key, INT_MIN, INT_MAX, nullable, &v, err);
    if (st == KMQ_OK)
        *out = (int)v;
    return st;
}

static kmq_status rd_u32(const json_t *obj, const char *ctx, const char *key, bool nullable,
                         uint32_t *out, kmq_err *err)
{
    json_int_t v = 0;
    kmq_status st = rd_int(obj, ctx, key, 0, UINT32_MAX, nullable, &v, err);
    if (st == KMQ_OK)
        *out = (uint32_t)v;
    return st;
}

/* Any number; null (a non-finite value when written) reads as NAN. */
static kmq_status rd_real(const json_t *obj, const char *ctx, const char *key, double *out,
                          kmq_err *err)
{
    json_t *v;
    kmq_status st = rd_any(obj, ctx, key, &v, err);
    if (st != KMQ_OK)
        return st;
    if (json_is_null(v))
        *out = NAN;
    else if (json_is_number(v))
        *out = json_number_value(v);
    else
        return bad_field(err, ctx, key, "is not a number or null");
    return KMQ_OK;
}

static kmq_status rd_bool(const json_t *obj, const char *ctx, const char *key, bool *out,
                          kmq_err *err)
{
    json_t *v;
    kmq_status st = rd_any(obj, ctx, key, &v, err);
    if (st != KMQ_OK)
        return st;
    if (!json_is_boolean(v))
        return bad_field(err, ctx, key, "is not true or false");
    *out = json_is_true(v);
    return KMQ_OK;
}

/* A string (new copy in *out) or, when `nullable`, null (*out = NULL). */
static kmq_status rd_str(const json_t *obj, const char *ctx, const char *key, bool nullable,
                         char **out, kmq_err *err)
{
    json_t *v;
    kmq_status st = rd_any(obj, ctx, key, &v, err);
    if (st != KMQ_OK)
        return st;
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return KMQ_OK;
    }
    if (!json_is_string(v))
        return bad_field(err, ctx, key, nullable ? "is not a string or null" : "is not a string");
    *out = kmq__strdup(json_string_value(v));
    return *out ? KMQ_OK : kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading a summary");
}

/* An array of exactly `n` entries, n taken from a count field. */
static kmq_status rd_array_n(const json_t *obj, const char *ctx, const char *key, size_t n,
                             const char *count_name, json_t **out, kmq_err *err)
{
    kmq_status st = rd_typed(obj, ctx, key, JSON_ARRAY, out, err);
    if (st == KMQ_OK && json_array_size(*out) != n) {
        char what[128];
        snprintf(what, sizeof what, "has %zu entries but %s is %zu", json_array_size(*out),
                 count_name, n);
        st = bad_field(err, ctx, key, what);
    }
    return st;
}

static kmq_status parse_file(const json_t *files, const char *ctx, const char *key, bool with_bpp,
                             kmq_file_info *f, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char sub[96];
    json_t *o = json_object_get(files, key);
    if (!o)
        return KMQ_OK; /* not written */
    if (!json_is_object(o))
        return bad_field(err, ctx, key, "is not an object");
    snprintf(sub, sizeof sub, "%s.%s", ctx, key);
    TRY(rd_str(o, sub, "path", false, &f->path, err));
    TRY(rd_u64(o, sub, "bytes", false, &f->bytes, err));
    if (with_bpp)
        TRY(rd_i32(o, sub, "bits_per_pixel", false, &f->bits_per_pixel, err));
done:
    return st;
}

static kmq_status parse_result(const json_t *o, size_t index, kmq_k_result *r, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char ctx[64], sub[96];
    json_t *v, *arr;
    snprintf(ctx, sizeof ctx, "results[%zu]", index);

    TRY(rd_size(o, ctx, "k", &r->k, err));
    TRY(rd_size(o, ctx, "k_effective", &r->k_effective, err));
    TRY(rd_real(o, ctx, "inertia", &r->inertia, err));
    TRY(rd_real(o, ctx, "mse", &r->mse, err));
    TRY(rd_real(o, ctx, "mse_output", &r->mse_output, err));
    TRY(rd_real(o, ctx, "psnr_db", &r->psnr_db, err));
    TRY(rd_i32(o, ctx, "iterations", false, &r->iterations, err));
    TRY(rd_bool(o, ctx, "converged", &r->converged, err));

    TRY(rd_typed(o, ctx, "restarts", JSON_OBJECT, &v, err));
    snprintf(sub, sizeof sub, "%s.restarts", ctx);
    json_int_t count;
    TRY(rd_int(v, sub, "count", 0, INT_MAX, false, &count, err));
    r->restarts = (int)count;
    TRY(rd_i32(v, sub, "best", false, &r->best_restart, err));
    TRY(rd_array_n(v, sub, "inertia", (size_t)count, "restarts.count", &arr, err));
    r->restart_inertia = kmq__calloc((size_t)count, sizeof *r->restart_inertia);
    if (!r->restart_inertia) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < (size_t)count; i++) {
        json_t *x = json_array_get(arr, i);
        if (json_is_null(x)) {
            r->restart_inertia[i] = NAN;
        } else if (json_is_number(x)) {
            r->restart_inertia[i] = json_number_value(x);
        } else {
            char key[48];
            snprintf(key, sizeof key, "inertia[%zu]", i);
            st = bad_field(err, sub, key, "is not a number or null");
            goto done;
        }
    }

    TRY(rd_array_n(o, ctx, "palette", r->k_effective, "k_effective", &arr, err));
    r->palette = kmq__calloc(r->k_effective, sizeof *r->palette);
    if (!r->palette) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < r->k_effective; i++) {
        kmq_palette_entry *e = &r->palette[i];
        json_t *eo = json_array_get(arr, i), *rgb, *hex;
        char pctx[96], want[8];
        snprintf(pctx, sizeof pctx, "%s.palette[%zu]", ctx, i);
        if (!json_is_object(eo)) {
            st = kmq_err_set(err, KMQ_E_DECODE,
                             "not a kmq schema-1 summary: field \"%s\" is not an object", pctx);
            goto done;
        }
        TRY(rd_array_n(eo, pctx, "rgb", 3, "3", &rgb, err));
        for (size_t c = 0; c < 3; c++) {
            json_t *x = json_array_get(rgb, c);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255) {
                st = bad_field(err, pctx, "rgb", "is not three integers in [0, 255]");
                goto done;
            }
            e->rgb[c] = (uint8_t)json_integer_value(x);
        }
        TRY(rd_any(eo, pctx, "hex", &hex, err));
        snprintf(want, sizeof want, "#%02x%02x%02x", e->rgb[0], e->rgb[1], e->rgb[2]);
        if (!json_is_string(hex) || strcmp(json_string_value(hex), want) != 0) {
            char what[64];
            snprintf(what, sizeof what, "is not \"%s\", the colour of rgb", want);
            st = bad_field(err, pctx, "hex", what);
            goto done;
        }
        TRY(rd_u64(eo, pctx, "pixels", false, &e->pixels, err));
    }

    TRY(rd_typed(o, ctx, "files", JSON_OBJECT, &v, err));
    snprintf(sub, sizeof sub, "%s.files", ctx);
    TRY(parse_file(v, sub, "indexed", true, &r->indexed, err));
    TRY(parse_file(v, sub, "labels", false, &r->labels, err));
    TRY(parse_file(v, sub, "palette", false, &r->swatch, err));

    TRY(rd_typed(o, ctx, "compression", JSON_OBJECT, &v, err));
    snprintf(sub, sizeof sub, "%s.compression", ctx);
    TRY(rd_u64(v, sub, "raw_bytes", false, &r->raw_bytes, err));
    TRY(rd_u64(v, sub, "packed_bytes", false, &r->packed_bytes, err));
    TRY(rd_u64(v, sub, "png_bytes", false, &r->png_bytes, err));
    TRY(rd_real(v, sub, "ratio_vs_raw", &r->ratio_vs_raw, err));
    TRY(rd_real(v, sub, "ratio_vs_input", &r->ratio_vs_input, err));

    TRY(rd_typed(o, ctx, "seconds", JSON_OBJECT, &v, err));
    snprintf(sub, sizeof sub, "%s.seconds", ctx);
    TRY(rd_real(v, sub, "fit", &r->fit_s, err));
    TRY(rd_real(v, sub, "map", &r->map_s, err));
done:
    return st;
}

/* Fills s (zeroed by the caller; partly filled on failure, for clearing). */
static kmq_status parse_summary(const json_t *root, kmq_summary *s, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    json_t *v, *o;
    char *status = NULL, *version = NULL, *method = NULL;

    if (!json_is_object(root)) {
        st = kmq_err_set(err, KMQ_E_DECODE, "not a kmq summary: the document is not an object");
        goto done;
    }
    TRY(rd_any(root, "", "schema", &v, err));
    if (!json_is_integer(v) || json_integer_value(v) != KMQ_SUMMARY_SCHEMA) {
        char got[64];
        if (json_is_integer(v))
            snprintf(got, sizeof got, "%lld", (long long)json_integer_value(v));
        else
            snprintf(got, sizeof got, "of JSON type %d", (int)json_typeof(v));
        st = kmq_err_set(err, KMQ_E_DECODE,
                         "summary schema %s is not supported; this kmq reads schema %d", got,
                         KMQ_SUMMARY_SCHEMA);
        goto done;
    }
    TRY(rd_str(root, "", "kmq_version", false, &version, err));
    TRY(rd_str(root, "", "status", false, &status, err));
    if (strcmp(status, "ok") == 0) {
        s->ok = true;
    } else if (strcmp(status, "error") == 0) {
        s->ok = false;
    } else {
        st = bad_field(err, "", "status", "is neither \"ok\" nor \"error\"");
        goto done;
    }
    TRY(rd_any(root, "", "error", &v, err));
    if (s->ok && !json_is_null(v)) {
        st = bad_field(err, "", "error", "is not null although status is \"ok\"");
        goto done;
    }
    if (!s->ok) {
        if (!json_is_object(v)) {
            st = bad_field(err, "", "error", "is not an object although status is \"error\"");
            goto done;
        }
        TRY(rd_str(v, "error", "code", true, &s->error_code, err));
        TRY(rd_str(v, "error", "message", true, &s->error_message, err));
    }

    TRY(rd_typed(root, "", "input", JSON_OBJECT, &o, err));
    TRY(rd_str(o, "input", "path", true, &s->path, err));
    TRY(rd_str(o, "input", "rel", true, &s->rel, err));
    TRY(rd_u64(o, "input", "bytes", false, &s->bytes, err));
    TRY(rd_str(o, "input", "format", true, &s->format, err));
    TRY(rd_u32(o, "input", "width", true, &s->width, err));
    TRY(rd_u32(o, "input", "height", true, &s->height, err));
    TRY(rd_i32(o, "input", "bands", true, &s->bands, err));
    TRY(rd_u64(o, "input", "pixels", true, &s->pixels, err));
    TRY(rd_u64(o, "input", "unique_colors", true, &s->unique_colors, err));

    TRY(rd_typed(root, "", "config", JSON_OBJECT, &o, err));
    TRY(rd_str(o, "config", "job", true, &s->job, err));
    TRY(rd_typed(o, "config", "k", JSON_ARRAY, &v, err));
    s->k = kmq__calloc(json_array_size(v), sizeof *s->k);
    if (!s->k) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0) {
            st = bad_field(err, "config", "k", "is not a list of integers >= 0");
            goto done;
        }
        s->k[i] = (size_t)json_integer_value(x);
    }
    s->nk = json_array_size(v);
    TRY(rd_i32(o, "config", "restarts", false, &s->restarts, err));
    TRY(rd_i32(o, "config", "max_iter", false, &s->max_iter, err));
    TRY(rd_real(o, "config", "tol", &s->tol, err));
    TRY(rd_str(o, "config", "init", true, &s->init, err));
    TRY(rd_u64(o, "config", "seed", false, &s->seed, err));
    TRY(rd_u64(o, "config", "sample", false, &s->sample, err));
    TRY(rd_i32(o, "config", "threads", false, &s->threads, err));
    TRY(rd_str(o, "config", "hash", true, &s->hash, err));

    TRY(rd_typed(root, "", "results", JSON_ARRAY, &v, err));
    size_t n = json_array_size(v);
    if (!s->ok && n != 0) {
        st = bad_field(err, "", "results", "is not empty although status is \"error\"");
        goto done;
    }
    s->results = kmq__calloc(n, sizeof *s->results);
    if (!s->results) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    s->nresults = n;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(v, i);
        if (!json_is_object(r)) {
            st = kmq_err_set(err, KMQ_E_DECODE,
                             "not a kmq schema-1 summary: field \"results[%zu]\" is not an object",
                             i);
            goto done;
        }
        TRY(parse_result(r, i, &s->results[i], err));
    }

    TRY(rd_typed(root, "", "elbow", JSON_OBJECT, &o, err));
    TRY(rd_str(o, "elbow", "method", false, &method, err));
    TRY(rd_any(o, "elbow", "k", &v, err));
    if (!json_is_null(v)) {
        TRY(rd_size(o, "elbow", "k", &s->elbow_k, err));
        s->has_elbow = true;
    }

    TRY(rd_typed(root, "", "seconds", JSON_OBJECT, &o, err));
    TRY(rd_real(o, "seconds", "histogram", &s->histogram_s, err));
    TRY(rd_real(o, "seconds", "total", &s->total_s, err));
done:
    kmq__free(status);
    kmq__free(version);
    kmq__free(method);
    return st;
}

/* Reads and parses a JSON file of at most SUMMARY_MAX_BYTES into *root
 * (caller decrefs). `what` names the document in messages. */
static kmq_status load_json_file(const char *path, const char *what, json_t **root, kmq_err *err)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    jansson_begin();
    kmq_status st = kmq_fsx_read_all(path, SUMMARY_MAX_BYTES, &text, &len, err);
    if (st != KMQ_OK)
        return st;
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    kmq__free(text);
    if (jansson_oom) {
        json_decref(*root);
        *root = NULL;
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory parsing %s", path);
    }
    if (!*root)
        return kmq_err_set(err, KMQ_E_DECODE, "not a kmq %s: invalid JSON at line %d: %s", what,
                           jerr.line, jerr.text);
    return KMQ_OK;
}

kmq_status kmq_summary_read(const char *path, kmq_summary *out, kmq_err *err)
{
    kmq_status st;
    json_t *root = NULL;
    kmq_summary s = {0};

    if ((st = load_json_file(path, "summary", &root, err)) != KMQ_OK)
        goto done;
    if ((st = parse_summary(root, &s, err)) != KMQ_OK)
        goto done;
    *out = s;
    memset(&s, 0, sizeof s);

done:
    if (st == KMQ_E_DECODE)
        kmq_err_where(err, "%s", path);
    kmq_summary_clear(&s);
    json_decref(root);
    return st;
}

static void file_info_clear(kmq_file_info *f)
{
    kmq__free(f->path);
    f->path = NULL;
}

void kmq_summary_clear(kmq_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->results && i < s->nresults; i++) {
        kmq_k_result *r = &s->results[i];
        kmq__free(r->restart_inertia);
        kmq__free(r->palette);
        file_info_clear(&r->indexed);
        file_info_clear(&r->labels);
        file_info_clear(&r->swatch);
    }
    kmq__free(s->results);
    kmq__free(s->error_code);
    kmq__free(s->error_message);
    kmq__free(s->path);
    kmq__free(s->rel);
    kmq__free(s->format);
    kmq__free(s->job);
    kmq__free(s->k);
    kmq__free(s->init);
    kmq__free(s->hash);
    memset(s, 0, sizeof *s);
}

/* ---- run.json ----------------------------------------------------------- */

typedef struct job_count {
    const char *name; /* borrowed from a summary; NULL: no job (kmq quantize) */
    size_t images, ok, failed;
} job_count;

static bool same_job(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* "ok", "error", or for an image without a current result the code the
 * report gave its placeholder ("pending", "stale"). */
static const char *image_status(const kmq_summary *s)
{
    if (s->ok)
        return "ok";
    if (s->error_code && (strcmp(s->error_code, KMQ_RUN_PENDING) == 0 ||
                          strcmp(s->error_code, KMQ_RUN_STALE) == 0))
        return s->error_code;
    return "error";
}

static bool build_run_image(builder *b, json_t *images, const kmq_run_image *im)
{
    const kmq_summary *s = im->summary;
    json_t *o = push_child(images, json_object());
    if (!o || !put(o, "job", jstr(s->job)) || !put(o, "path", jstr(s->path)) ||
        !put(o, "rel", jstr(s->rel)) || !put(o, "dir", jstr(im->dir)) ||
        !put(o, "status", json_string(image_status(s))) ||
        !put(o, "error", s->ok ? json_null() : jerror(s->error_code, s->error_message)) ||
        !put_known(b, o, "pixels", s->pixels, s->ok))
        return false;
    json_t *ks = put_child(o, "k", json_array());
    json_t *keff = ks ? put_child(o, "k_effective", json_array()) : NULL;
    if (!keff)
        return false;
    if (s->ok) {
        if (!need_array(b, s->results, s->nresults, "results"))
            return false;
        for (size_t i = 0; i < s->nresults; i++)
            if (!push(ks, ju64(b, "k", s->results[i].k)) ||
                !push(keff, ju64(b, "k_effective", s->results[i].k_effective)))
                return false;
    }
    return put(o, "elbow_k",
               s->ok && s->has_elbow ? ju64(b, "elbow_k", s->elbow_k) : json_null()) &&
           put(o, "seconds", jreal(s->total_s));
}

/* A job's "elbow": null without an entry, else {method, k (or null),
 * images, k_values}. */
static json_t *build_job_elbow(builder *b, const kmq_job_elbow *elbows, size_t n_elbows,
                               const char *job)
{
    const kmq_job_elbow *e = NULL;
    for (size_t i = 0; i < n_elbows && !e; i++)
        if (same_job(elbows[i].job, job))
            e = &elbows[i];
    if (!e)
        return json_null();
    json_t *o = json_object();
    if (!o || !put(o, "method", json_string("kneedle-mean-normalised")) ||
        !put(o, "k", e->found ? ju64(b, "elbow.k", e->k) : json_null()) ||
        !put_u64(b, o, "images", e->images) || !put_u64(b, o, "k_values", e->nk)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *build_run(builder *b, const kmq_run_info *info, const kmq_job_elbow *elbows,
                         size_t n_elbows, const kmq_run_image *images, size_t n, job_count *jobs)
{
    size_t njobs = 0, nok = 0, nfailed = 0;
    uint64_t pixels = 0;
    double images_s = 0.0;
    json_t *root = json_object();
    if (!root)
        return NULL;

    for (size_t i = 0; i < n; i++) {
        const kmq_summary *s = images[i].summary;
        if (!s) {
            b->st = kmq_err_set(b->err, KMQ_E_ARG, "image %zu of the run has no summary", i);
            goto fail;
        }
        /* Images come sorted by job, so the match is almost always the last. */
        size_t j = njobs;
        while (j > 0 && !same_job(jobs[j - 1].name, s->job))
            j--;
        if (j == 0) {
            jobs[njobs].name = s->job;
            j = ++njobs;
        }
        jobs[j - 1].images++;
        if (s->ok) {
            jobs[j - 1].ok++;
            nok++;
            if (pixels > (uint64_t)INT64_MAX - s->pixels) {
                b->st = kmq_err_set(b->err, KMQ_E_ARG,
                                    "the run's pixel total exceeds 2^63 - 1, the largest "
                                    "integer kmq writes to JSON");
                goto fail;
            }
            pixels += s->pixels;
        } else if (strcmp(image_status(s), "error") == 0) {
            jobs[j - 1].failed++;
            nfailed++;
        }
        images_s += s->total_s; /* serial, in the given order: deterministic */
    }

    if (!put(root, "schema", jint(RUN_SCHEMA)) ||
        !put(root, "kmq_version", json_string(KMQ_VERSION_STRING)) ||
        !put(root, "status", jstr(info->status)) || !put(root, "job_file", jstr(info->job_file)) ||
        !put(root, "threads", jint(info->threads)) ||
        !put(root, "started_utc", jstr(info->started_utc)))
        goto fail;
    json_t *sec = put_child(root, "seconds", json_object());
    if (!sec || !put(sec, "wall", jreal(info->wall_s)) ||
        !put(sec, "images_total", jreal(images_s)))
        goto fail;
    json_t *tot = put_child(root, "totals", json_object());
    if (!tot || !put_u64(b, tot, "images", n) || !put_u64(b, tot, "ok", nok) ||
        !put_u64(b, tot, "failed", nfailed) ||
        !put_u64(b, tot, "not_done", n - nok - nfailed) || !put_u64(b, tot, "pixels", pixels))
        goto fail;
    json_t *arr = put_child(root, "images", json_array());
    if (!arr)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (!build_run_image(b, arr, &images[i]))
            goto fail;
    arr = put_child(root, "jobs", json_array());
    if (!arr)
        goto fail;
    for (size_t j = 0; j < njobs; j++) {
        json_t *o = push_child(arr, json_object());
        if (!o || !put(o, "name", jstr(jobs[j].name)) || !put_u64(b, o, "images", jobs[j].images) ||
            !put_u64(b, o, "ok", jobs[j].ok) || !put_u64(b, o, "failed", jobs[j].failed))
            goto fail;
        if (elbows && !put(o, "elbow", build_job_elbow(b, elbows, n_elbows, jobs[j].name)))
            goto fail;
    }
    return root;

fail:
    json_decref(root);
    return NULL;
}

/* ---- elbow.csv ---------------------------------------------------------- */

/* One CSV field: UTF-8 repaired as in JSON strings, quoted (RFC 4180) when
 * it holds a comma, a double quote, CR or LF, and led by an apostrophe when
 * it starts with = + - @ TAB or CR: a spreadsheet would run a file named
 * "=HYPERLINK(...).png" as a formula, and shows "'=..." as the text. */
static void tb_csv_field(kmq_strbuf *tb, const char *s)
{
    if (!s)
        return;
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    if (quote)
        kmq_strbuf_put(tb, "\"", 1);
    if (s[0] && strchr("=+-@\t\r", s[0]))
        kmq_strbuf_put(tb, "'", 1);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq_len(u + i, n - i);
        if (l == 0) {
            kmq_strbuf_put(tb, replacement_char, 3);
            i++;
        } else if (s[i] == '"') {
            kmq_strbuf_put(tb, "\"\"", 2);
            i++;
        } else {
            kmq_strbuf_put(tb, s + i, l);
            i += l;
        }
    }
    if (quote)
        kmq_strbuf_put(tb, "\"", 1);
}

/* A real formatted exactly as in the JSON documents (jansson, %.17g,
 * locale-independent); nothing (an empty field) when not finite. */
static void tb_real(kmq_strbuf *tb, json_t *scratch, double x)
{
    char num[64];
    if (!isfinite(x))
        return;
    json_real_set(scratch, x);
    size_t n = json_dumpb(scratch, num, sizeof num, NUMBER_FLAGS);
    if (n == 0 || n > sizeof num) {
        tb->failed = true;
        return;
    }
    kmq_strbuf_put(tb, num, n);
}

static kmq_status build_csv(const kmq_run_image *images, size_t n, char **text, size_t *len,
                            kmq_err *err)
{
    kmq_strbuf tb = {0};
    json_t *scratch = json_real(0.0);
    char num[48];

    if (!scratch)
        tb.failed = true;
    kmq_strbuf_str(&tb, "job,image,k,inertia,mse,psnr_db,iterations,seconds\n");
    for (size_t i = 0; i < n && !tb.failed; i++) {
        const kmq_summary *s = images[i].summary;
        if (!s->ok)
            continue;
        for (size_t j = 0; j < s->nresults; j++) {
            const kmq_k_result *r = &s->results[j];
            tb_csv_field(&tb, s->job);
            kmq_strbuf_put(&tb, ",", 1);
            tb_csv_field(&tb, s->rel ? s->rel : s->path);
            snprintf(num, sizeof num, ",%zu,", r->k);
            kmq_strbuf_str(&tb, num);
            tb_real(&tb, scratch, r->inertia);
            kmq_strbuf_put(&tb, ",", 1);
            tb_real(&tb, scratch, r->mse);
            kmq_strbuf_put(&tb, ",", 1);
            if (r->mse_output != 0.0)
                tb_real(&tb, scratch, r->psnr_db);
            snprintf(num, sizeof num, ",%d,", r->iterations);
            kmq_strbuf_str(&tb, num);
            tb_real(&tb, scratch, r->fit_s + r->map_s);
            kmq_strbuf_put(&tb, "\n", 1);
        }
    }
    json_decref(scratch);
    if (tb.failed || jansson_oom) {
        kmq_strbuf_clear(&tb);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory formatting elbow.csv");
    }
    *text = tb.data;
    *len = tb.len;
    return KMQ_OK;
}

kmq_status kmq_run_write(const char *out_root, const kmq_run_info *info,
                         const kmq_run_image *images, size_t n, kmq_err *err)
{
    return kmq_run_write_with_elbows(out_root, info, NULL, 0, images, n, err);
}

kmq_status kmq_run_write_with_elbows(const char *out_root, const kmq_run_info *info,
                                     const kmq_job_elbow *elbows, size_t n_elbows,
                                     const kmq_run_image *images, size_t n, kmq_err *err)
{
    kmq_status st;
    builder b = {err, KMQ_OK};
    job_count *jobs = NULL;
    json_t *root = NULL;
    char *run_text = NULL, *csv_text = NULL, *run_path = NULL, *csv_path = NULL;
    size_t run_len = 0, csv_len = 0;

    jansson_begin();
    if (n > 0 && !images) {
        st = kmq_err_set(err, KMQ_E_ARG, "the run has %zu images but no image array", n);
        goto done;
    }
    jobs = kmq__calloc(n ? n : 1, sizeof *jobs);
    if (!jobs) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory building run.json");
        goto done;
    }
    root = build_run(&b, info, elbows, n_elbows, images, n, jobs);
    if ((st = built(&b, root, "run.json", err)) != KMQ_OK)
        goto done;
    /* Both documents are formatted before either is written, so a failure
     * here leaves the previous pair in place. */
    if ((st = dump_doc(root, "run.json", &run_text, &run_len, err)) != KMQ_OK)
        goto done;
    if ((st = build_csv(images, n, &csv_text, &csv_len, err)) != KMQ_OK)
        goto done;
    run_path = kmq_fsx_join(out_root, "run.json");
    csv_path = kmq_fsx_join(out_root, "elbow.csv");
    if (!run_path || !csv_path) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory building output paths");
        goto done;
    }
    if ((st = kmq_fsx_write_all(run_path, run_text, run_len, true, err)) != KMQ_OK)
        goto done;
    st = kmq_fsx_write_all(csv_path, csv_text, csv_len, true, err);

done:
    json_decref(root);
    kmq__free(jobs);
    kmq__free(run_text);
    kmq__free(csv_text);
    kmq__free(run_path);
    kmq__free(csv_path);
    return st;
}

/* ---- reading run.json back ---------------------------------------------- */

void kmq_run_facts_clear(kmq_run_facts *f)
{
    if (!f)
        return;
    kmq__free(f->status);
    kmq__free(f->job_file);
    kmq__free(f->started_utc);
    memset(f, 0, sizeof *f);
}

/* A string or null member of a run.json; `nullable` says whether null is
 * allowed. */
static kmq_status run_str(const json_t *root, const char *key, bool nullable, char **out,
                          kmq_err *err)
{
    json_t *v = json_object_get(root, key);
    if (v && nullable && json_is_null(v)) {
        *out = NULL;
        return KMQ_OK;
    }
    if (!v || !json_is_string(v))
        return kmq_err_set(err, KMQ_E_DECODE,
                           "not a kmq schema-1 run.json: field \"%s\" is "
                           "missing or not a string",
                           key);
    *out = kmq__strdup(json_string_value(v));
    return *out ? KMQ_OK : kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading run.json");
}

kmq_status kmq_run_info_read(const char *path, kmq_run_facts *out, kmq_err *err)
{
    kmq_status st;
    json_t *root = NULL;
    kmq_run_facts f = {0};

    if ((st = load_json_file(path, "run.json", &root, err)) != KMQ_OK)
        goto done;
    json_t *schema = json_object_get(root, "schema");
    json_t *threads = json_object_get(root, "threads");
    json_t *sec = json_object_get(root, "seconds");
    json_t *wall = sec ? json_object_get(sec, "wall") : NULL;
    if (!json_is_integer(schema) || json_integer_value(schema) != RUN_SCHEMA) {
        st = kmq_err_set(err, KMQ_E_DECODE, "not a kmq run.json: \"schema\" is not %d", RUN_SCHEMA);
        goto done;
    }
    if (!json_is_integer(threads) || json_integer_value(threads) < 0 ||
        json_integer_value(threads) > INT_MAX || !(json_is_number(wall) || json_is_null(wall))) {
        st = kmq_err_set(err, KMQ_E_DECODE,
                         "not a kmq schema-1 run.json: \"threads\" or \"seconds.wall\" is "
                         "missing or has the wrong type");
        goto done;
    }
    f.threads = (int)json_integer_value(threads);
    f.wall_s = json_is_null(wall) ? NAN : json_number_value(wall);
    if ((st = run_str(root, "status", false, &f.status, err)) != KMQ_OK ||
        (st = run_str(root, "job_file", true, &f.job_file, err)) != KMQ_OK ||
        (st = run_str(root, "started_utc", true, &f.started_utc, err)) != KMQ_OK)
        goto done;
    *out = f;
    memset(&f, 0, sizeof f);

done:
    if (st == KMQ_E_DECODE)
        kmq_err_where(err, "%s", path);
    kmq_run_facts_clear(&f);
    json_decref(root);
    return st;
}
