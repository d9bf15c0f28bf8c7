/* summary_json.c — summary.json (one image), run.json and elbow.csv (one run)
 * (layer L2). The only file that includes <jansson.h>; it opens no image and
 * knows nothing of jobs beyond the plain structs of summary.h. Files are
 * written through fsx (L0), atomically and durably.
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
 *  - Reading is strict on what is documented and ignores unknown fields,
 *    since new fields may be added to schema 1. What is read back is trusted
 *    afterwards (the report looks results up by k and sizes arrays by
 *    KMQ_MAX_K), so every field is checked for presence, type and range:
 *    k and k_effective in 1..KMQ_MAX_K with k_effective <= k and <=
 *    input.unique_colors; results ascending strictly by k and, for an ok
 *    summary, one per config.k entry in the same order (config.k itself
 *    ascending, as the job parser makes it); array lengths agree with their
 *    counts (palette with k_effective, restarts.inertia with restarts.count
 *    >= 1, best within it); counts are integers in 0..2^63 - 1, or in the
 *    range of their C type; width * height == pixels, and an ok summary
 *    knows them; reals are numbers (jansson refuses NaN, infinity and
 *    out-of-range literals, so they are finite), >= 0 where kmq never
 *    writes a negative one, and null only where a non-finite value may have
 *    been written; hex agrees with rgb; file paths are plain names inside
 *    the image's folder; init, identity, hash and elbow.k are values kmq
 *    writes (config.identity may also be absent: summaries written before
 *    it existed have none, and it is read as NULL).
 *    Strings are valid UTF-8 without U+0000 (jansson refuses both). A file
 *    refused is KMQ_E_DECODE with where = its path and a message naming the
 *    field and value ("results[0].k = 9007199254740993 is outside 1..256").
 *    run.json is read the same way (status one of the four, threads >= 0,
 *    started_utc as written, seconds.wall >= 0 or null).
 *
 * run.json (schema 1), keys in this order:
 *   schema, kmq_version, status ("complete" | "failures" | "incomplete" |
 *   "interrupted"),
 *   job_file (string | null), threads, started_utc (string | null),
 *   seconds {wall, images_total (sum of the images' seconds.total)},
 *   totals {images, ok, failed, not_done (pending or stale), pixels (sum
 *           over ok images)},
 *   images [{job, path, rel, dir,
 *            status ("ok" | "error" | "pending" | "stale"),
 *            error (null when ok, else {code, message}),
 *            pixels (null if unknown), k [k of each result],
 *            k_effective [same order], elbow_k (number | null),
 *            seconds (the image's seconds.total)}],
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
#include "kmq/outputs.h"
#include "kmq/utf8.h"
#include "kmq/fsx.h"
#include "kmq/kmeans.h"
#include "kmq/strbuf.h"
#include "kmq/summary.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
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

/* Length (1..4) of the valid UTF-8 sequence at p (kmq/utf8.h), which has
 * `left` bytes, or 0 if the byte at p does not start one. */
static size_t utf8_seq_len(const unsigned char *p, size_t left)
{
    uint32_t cp = 0;
    return kmq_utf8_decode(p, left, &cp);
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
        !put(cfg, "threads", jint(s->threads)) || !put(cfg, "identity", jstr(s->identity)) ||
        !put(cfg, "hash", jstr(s->hash)))
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

/* No lower bound for rd_real. */
#define ANY_REAL (-INFINITY)

/* Reader state: the document's name for messages ("summary", "run.json")
 * and where the first refusal goes. */
typedef struct reader {
    const char *doc;
    kmq_err *err;
} reader;

/* Refuses the document: KMQ_E_DECODE, "not a kmq schema-1 DOC: PROBLEM". */
KMQ_PRINTF(2, 3) static kmq_status refuse(reader *rd, const char *fmt, ...)
{
    char problem[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return kmq_err_set(rd->err, KMQ_E_DECODE, "not a kmq schema-1 %s: %s", rd->doc, problem);
}

/* The full name of a field: "ctx.key", or "key" at the top level. */
typedef struct field_name {
    char s[160];
} field_name;

static field_name name_of(const char *ctx, const char *key)
{
    field_name n;
    snprintf(n.s, sizeof n.s, "%s%s%s", ctx, *ctx ? "." : "", key);
    return n;
}

static kmq_status bad_field(reader *rd, const char *name, const char *problem)
{
    return refuse(rd, "field \"%s\" %s", name, problem);
}

static kmq_status rd_any(reader *rd, const json_t *obj, const char *ctx, const char *key,
                         json_t **out)
{
    *out = json_object_get(obj, key);
    return *out ? KMQ_OK : bad_field(rd, name_of(ctx, key).s, "is missing");
}

static kmq_status rd_typed(reader *rd, const json_t *obj, const char *ctx, const char *key,
                           json_type type, json_t **out)
{
    kmq_status st = rd_any(rd, obj, ctx, key, out);
    if (st == KMQ_OK && json_typeof(*out) != type)
        st = bad_field(rd, name_of(ctx, key).s,
                       type == JSON_OBJECT ? "is not an object" : "is not an array");
    return st;
}

/* The value v of field `name`: an integer in lo..hi, or null (read as 0)
 * when `nullable`. The message names the value and the range. */
static kmq_status check_int(reader *rd, const json_t *v, const char *name, json_int_t lo,
                            json_int_t hi, bool nullable, json_int_t *out)
{
    if (nullable && json_is_null(v)) {
        *out = 0;
        return KMQ_OK;
    }
    if (!json_is_integer(v))
        return bad_field(rd, name, nullable ? "is not an integer or null" : "is not an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        if (hi == INT64_MAX)
            return refuse(rd, "%s = %lld is below %lld", name, (long long)x, (long long)lo);
        return refuse(rd, "%s = %lld is outside %lld..%lld", name, (long long)x, (long long)lo,
                      (long long)hi);
    }
    *out = x;
    return KMQ_OK;
}

/* The value v of field `name`: a number >= lo, or null (a value that was
 * not finite when written; read as NAN) when `nullable`. jansson's parser
 * refuses NaN, infinity and literals beyond the double range, so a number
 * read is finite; it is checked all the same, as it costs nothing. */
static kmq_status check_real(reader *rd, const json_t *v, const char *name, bool nullable,
                             double lo, double *out)
{
    if (nullable && json_is_null(v)) {
        *out = NAN;
        return KMQ_OK;
    }
    if (!json_is_number(v))
        return bad_field(rd, name, nullable ? "is not a number or null" : "is not a number");
    double x = json_number_value(v);
    if (!isfinite(x))
        return bad_field(rd, name, "is not a finite number");
    if (x < lo) /* -0.0 passes a bound of 0: kmq writes it (a zero duration) */
        return refuse(rd, "%s = %.17g is below %g", name, x, lo);
    *out = x;
    return KMQ_OK;
}

static kmq_status rd_int(reader *rd, const json_t *obj, const char *ctx, const char *key,
                         json_int_t lo, json_int_t hi, bool nullable, json_int_t *out)
{
    json_t *v;
    kmq_status st = rd_any(rd, obj, ctx, key, &v);
    return st != KMQ_OK ? st : check_int(rd, v, name_of(ctx, key).s, lo, hi, nullable, out);
}

/* A count: 0..2^63 - 1, the most JSON integers hold. */
static kmq_status rd_u64(reader *rd, const json_t *obj, const char *ctx, const char *key,
                         bool nullable, uint64_t *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, 0, INT64_MAX, nullable, &v);
    if (st == KMQ_OK)
        *out = (uint64_t)v;
    return st;
}

/* A k value: lo..hi with hi <= KMQ_MAX_K, so it fits any size_t. */
static kmq_status rd_k(reader *rd, const json_t *obj, const char *ctx, const char *key,
                       json_int_t lo, json_int_t hi, size_t *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, lo, hi, false, &v);
    if (st == KMQ_OK)
        *out = (size_t)v;
    return st;
}

static kmq_status rd_i32(reader *rd, const json_t *obj, const char *ctx, const char *key, int lo,
                         int hi, bool nullable, int *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, lo, hi, nullable, &v);
    if (st == KMQ_OK)
        *out = (int)v;
    return st;
}

static kmq_status rd_u32(reader *rd, const json_t *obj, const char *ctx, const char *key,
                         bool nullable, uint32_t *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, 0, UINT32_MAX, nullable, &v);
    if (st == KMQ_OK)
        *out = (uint32_t)v;
    return st;
}

static kmq_status rd_real(reader *rd, const json_t *obj, const char *ctx, const char *key,
                          bool nullable, double lo, double *out)
{
    json_t *v;
    kmq_status st = rd_any(rd, obj, ctx, key, &v);
    return st != KMQ_OK ? st : check_real(rd, v, name_of(ctx, key).s, nullable, lo, out);
}

static kmq_status rd_bool(reader *rd, const json_t *obj, const char *ctx, const char *key,
                          bool *out)
{
    json_t *v;
    kmq_status st = rd_any(rd, obj, ctx, key, &v);
    if (st != KMQ_OK)
        return st;
    if (!json_is_boolean(v))
        return bad_field(rd, name_of(ctx, key).s, "is not true or false");
    *out = json_is_true(v);
    return KMQ_OK;
}

/* A string (new copy in *out) or, when `nullable`, null (*out = NULL).
 * jansson refuses strings that are not UTF-8 or hold U+0000, so the copy
 * is valid UTF-8 and no NUL cuts it short. */
static kmq_status rd_str(reader *rd, const json_t *obj, const char *ctx, const char *key,
                         bool nullable, char **out)
{
    json_t *v;
    kmq_status st = rd_any(rd, obj, ctx, key, &v);
    if (st != KMQ_OK)
        return st;
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return KMQ_OK;
    }
    if (!json_is_string(v))
        return bad_field(rd, name_of(ctx, key).s,
                         nullable ? "is not a string or null" : "is not a string");
    *out = kmq__strdup(json_string_value(v));
    return *out ? KMQ_OK : kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a %s", rd->doc);
}

/* An array of exactly `n` entries, n taken from a count field. */
static kmq_status rd_array_n(reader *rd, const json_t *obj, const char *ctx, const char *key,
                             size_t n, const char *count_name, json_t **out)
{
    kmq_status st = rd_typed(rd, obj, ctx, key, JSON_ARRAY, out);
    if (st == KMQ_OK && json_array_size(*out) != n) {
        char what[128];
        snprintf(what, sizeof what, "has %zu entries but %s is %zu", json_array_size(*out),
                 count_name, n);
        st = bad_field(rd, name_of(ctx, key).s, what);
    }
    return st;
}

/* An array of at most `max` entries (checked before anything is allocated
 * for them). */
static kmq_status rd_array_max(reader *rd, const json_t *obj, const char *ctx, const char *key,
                               size_t max, const char *why, json_t **out)
{
    kmq_status st = rd_typed(rd, obj, ctx, key, JSON_ARRAY, out);
    if (st == KMQ_OK && json_array_size(*out) > max)
        st = refuse(rd, "%s has %zu entries, more than %zu (%s)", name_of(ctx, key).s,
                    json_array_size(*out), max, why);
    return st;
}

/* Whether name is a file directly inside the image's folder, as the runner
 * names them ("k8.png"): the report links and stats these paths, so none
 * may point elsewhere. */
static bool plain_file_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static kmq_status parse_file(reader *rd, const json_t *files, const char *ctx, const char *key,
                             bool with_bpp, kmq_file_info *f)
{
    kmq_status st = KMQ_OK;
    char sub[96];
    json_t *o = json_object_get(files, key);
    if (!o)
        return KMQ_OK; /* not written */
    if (!json_is_object(o))
        return bad_field(rd, name_of(ctx, key).s, "is not an object");
    snprintf(sub, sizeof sub, "%s.%s", ctx, key);
    TRY(rd_str(rd, o, sub, "path", false, &f->path));
    if (!plain_file_name(f->path)) {
        st = bad_field(rd, name_of(sub, "path").s, "is not a file name inside the image's folder");
        goto done;
    }
    TRY(rd_u64(rd, o, sub, "bytes", false, &f->bytes));
    if (with_bpp) {
        /* An indexed PNG has 1, 2, 4 or 8 bits per pixel. */
        TRY(rd_i32(rd, o, sub, "bits_per_pixel", 1, 8, false, &f->bits_per_pixel));
        if ((f->bits_per_pixel & (f->bits_per_pixel - 1)) != 0)
            st = refuse(rd, "%s.bits_per_pixel = %d is not 1, 2, 4 or 8", sub, f->bits_per_pixel);
    }
done:
    return st;
}

/* results[index] into r; s holds what is already read (input, config, the
 * results before this one), against which k and the counts are checked.
 * The caller matches the k values with config.k afterwards. */
static kmq_status parse_result(reader *rd, const json_t *o, size_t index, const kmq_summary *s,
                               kmq_k_result *r)
{
    kmq_status st = KMQ_OK;
    char ctx[64], sub[96];
    json_t *v, *arr;
    snprintf(ctx, sizeof ctx, "results[%zu]", index);

    TRY(rd_k(rd, o, ctx, "k", 1, KMQ_MAX_K, &r->k));
    if (index > 0 && r->k <= s->results[index - 1].k) {
        st = refuse(rd, "%s.k = %zu is not above results[%zu].k = %zu (results ascend by k)", ctx,
                    r->k, index - 1, s->results[index - 1].k);
        goto done;
    }
    TRY(rd_k(rd, o, ctx, "k_effective", 1, KMQ_MAX_K, &r->k_effective));
    if (r->k_effective > r->k) {
        st = refuse(rd, "%s.k_effective = %zu exceeds %s.k = %zu", ctx, r->k_effective, ctx, r->k);
        goto done;
    }
    if (r->k_effective > s->unique_colors) {
        st = refuse(rd, "%s.k_effective = %zu exceeds input.unique_colors = %" PRIu64, ctx,
                    r->k_effective, s->unique_colors);
        goto done;
    }
    TRY(rd_real(rd, o, ctx, "inertia", false, 0.0, &r->inertia));
    TRY(rd_real(rd, o, ctx, "mse", false, 0.0, &r->mse));
    TRY(rd_real(rd, o, ctx, "mse_output", false, 0.0, &r->mse_output));
    TRY(rd_real(rd, o, ctx, "psnr_db", true, ANY_REAL, &r->psnr_db));
    TRY(rd_i32(rd, o, ctx, "iterations", 0, INT_MAX, false, &r->iterations));
    TRY(rd_bool(rd, o, ctx, "converged", &r->converged));

    TRY(rd_typed(rd, o, ctx, "restarts", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.restarts", ctx);
    TRY(rd_i32(rd, v, sub, "count", 1, INT_MAX, false, &r->restarts));
    TRY(rd_i32(rd, v, sub, "best", 0, r->restarts - 1, false, &r->best_restart));
    /* The array's length is checked before anything is allocated for it,
     * so a huge count in a small file costs nothing. */
    TRY(rd_array_n(rd, v, sub, "inertia", (size_t)r->restarts, "restarts.count", &arr));
    r->restart_inertia = kmq__calloc((size_t)r->restarts, sizeof *r->restart_inertia);
    if (!r->restart_inertia) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < (size_t)r->restarts; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.inertia[%zu]", sub, i);
        TRY(check_real(rd, json_array_get(arr, i), name, true, 0.0, &r->restart_inertia[i]));
    }

    TRY(rd_array_n(rd, o, ctx, "palette", r->k_effective, "k_effective", &arr));
    r->palette = kmq__calloc(r->k_effective, sizeof *r->palette);
    if (!r->palette) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < r->k_effective; i++) {
        kmq_palette_entry *e = &r->palette[i];
        json_t *eo = json_array_get(arr, i), *rgb, *hex;
        char pctx[96], want[8];
        snprintf(pctx, sizeof pctx, "%s.palette[%zu]", ctx, i);
        if (!json_is_object(eo)) {
            st = bad_field(rd, pctx, "is not an object");
            goto done;
        }
        TRY(rd_array_n(rd, eo, pctx, "rgb", 3, "3", &rgb));
        for (size_t c = 0; c < 3; c++) {
            json_t *x = json_array_get(rgb, c);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255) {
                st = bad_field(rd, name_of(pctx, "rgb").s, "is not three integers in [0, 255]");
                goto done;
            }
            e->rgb[c] = (uint8_t)json_integer_value(x);
        }
        TRY(rd_any(rd, eo, pctx, "hex", &hex));
        snprintf(want, sizeof want, "#%02x%02x%02x", e->rgb[0], e->rgb[1], e->rgb[2]);
        if (!json_is_string(hex) || strcmp(json_string_value(hex), want) != 0) {
            char what[64];
            snprintf(what, sizeof what, "is not \"%s\", the colour of rgb", want);
            st = bad_field(rd, name_of(pctx, "hex").s, what);
            goto done;
        }
        TRY(rd_u64(rd, eo, pctx, "pixels", false, &e->pixels));
        if (e->pixels > s->pixels) {
            st = refuse(rd, "%s.pixels = %" PRIu64 " exceeds input.pixels = %" PRIu64, pctx,
                        e->pixels, s->pixels);
            goto done;
        }
    }

    TRY(rd_typed(rd, o, ctx, "files", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.files", ctx);
    TRY(parse_file(rd, v, sub, "indexed", true, &r->indexed));
    TRY(parse_file(rd, v, sub, "labels", false, &r->labels));
    TRY(parse_file(rd, v, sub, "palette", false, &r->swatch));

    TRY(rd_typed(rd, o, ctx, "compression", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.compression", ctx);
    TRY(rd_u64(rd, v, sub, "raw_bytes", false, &r->raw_bytes));
    TRY(rd_u64(rd, v, sub, "packed_bytes", false, &r->packed_bytes));
    TRY(rd_u64(rd, v, sub, "png_bytes", false, &r->png_bytes));
    TRY(rd_real(rd, v, sub, "ratio_vs_raw", true, 0.0, &r->ratio_vs_raw));
    TRY(rd_real(rd, v, sub, "ratio_vs_input", true, 0.0, &r->ratio_vs_input));

    TRY(rd_typed(rd, o, ctx, "seconds", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.seconds", ctx);
    TRY(rd_real(rd, v, sub, "fit", true, 0.0, &r->fit_s));
    TRY(rd_real(rd, v, sub, "map", true, 0.0, &r->map_s));
done:
    return st;
}

/* Whether s is a config hash as the runner writes it: 16 lowercase hex
 * digits. */
static bool is_config_hash(const char *s)
{
    size_t n = strlen(s);
    return n == 16 && strspn(s, "0123456789abcdef") == n;
}

/* input: every field, then the facts they must agree on. */
static kmq_status parse_input(reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *o;
    TRY(rd_typed(rd, root, "", "input", JSON_OBJECT, &o));
    TRY(rd_str(rd, o, "input", "path", true, &s->path));
    TRY(rd_str(rd, o, "input", "rel", true, &s->rel));
    TRY(rd_u64(rd, o, "input", "bytes", false, &s->bytes));
    TRY(rd_str(rd, o, "input", "format", true, &s->format));
    TRY(rd_u32(rd, o, "input", "width", true, &s->width));
    TRY(rd_u32(rd, o, "input", "height", true, &s->height));
    TRY(rd_i32(rd, o, "input", "bands", 0, INT_MAX, true, &s->bands));
    TRY(rd_u64(rd, o, "input", "pixels", true, &s->pixels));
    TRY(rd_u64(rd, o, "input", "unique_colors", true, &s->unique_colors));

    /* A done image was decoded, so all of these are known. */
    const struct {
        const char *key;
        uint64_t value;
    } known[] = {{"width", s->width},
                 {"height", s->height},
                 {"bands", (uint64_t)s->bands},
                 {"pixels", s->pixels},
                 {"unique_colors", s->unique_colors}};
    for (size_t i = 0; s->ok && i < sizeof known / sizeof known[0]; i++)
        if (known[i].value == 0) {
            st = refuse(rd, "input.%s is 0 or null although status is \"ok\"", known[i].key);
            goto done;
        }
    /* Both factors are below 2^32, so the product cannot wrap. Unknown
     * (null) sizes read as 0 on both sides. */
    uint64_t product = (uint64_t)s->width * s->height;
    if (product != s->pixels) {
        st = refuse(rd,
                    "input.pixels = %" PRIu64 " is not input.width x input.height = %" PRIu32
                    " x %" PRIu32 " = %" PRIu64,
                    s->pixels, s->width, s->height, product);
        goto done;
    }
    if (s->unique_colors > s->pixels) {
        st = refuse(rd, "input.unique_colors = %" PRIu64 " exceeds input.pixels = %" PRIu64,
                    s->unique_colors, s->pixels);
        goto done;
    }
    if (s->unique_colors > ((uint64_t)1 << 24)) {
        st = refuse(rd,
                    "input.unique_colors = %" PRIu64 " exceeds 16777216, the number of RGB colours",
                    s->unique_colors);
        goto done;
    }
done:
    return st;
}

/* config: every field; k is the job's k list (ascending, distinct, in
 * 1..KMQ_MAX_K), as the job file's parser makes it. */
static kmq_status parse_config(reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *o, *v;
    TRY(rd_typed(rd, root, "", "config", JSON_OBJECT, &o));
    TRY(rd_str(rd, o, "config", "job", true, &s->job));
    TRY(rd_array_max(rd, o, "config", "k", KMQ_MAX_K, "one per distinct k", &v));
    s->k = kmq__calloc(json_array_size(v), sizeof *s->k);
    if (!s->k) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        char name[32];
        json_int_t k = 0;
        snprintf(name, sizeof name, "config.k[%zu]", i);
        TRY(check_int(rd, json_array_get(v, i), name, 1, KMQ_MAX_K, false, &k));
        s->k[i] = (size_t)k;
        if (i > 0 && s->k[i] <= s->k[i - 1]) {
            st = refuse(rd, "%s = %zu is not above config.k[%zu] = %zu (the k list ascends)", name,
                        s->k[i], i - 1, s->k[i - 1]);
            goto done;
        }
    }
    s->nk = json_array_size(v);
    TRY(rd_i32(rd, o, "config", "restarts", 1, INT_MAX, false, &s->restarts));
    TRY(rd_i32(rd, o, "config", "max_iter", 1, INT_MAX, false, &s->max_iter));
    TRY(rd_real(rd, o, "config", "tol", false, 0.0, &s->tol));
    TRY(rd_str(rd, o, "config", "init", true, &s->init));
    if (s->init && strcmp(s->init, "kmeans++") != 0 && strcmp(s->init, "random") != 0) {
        st = bad_field(rd, "config.init", "is neither \"kmeans++\" nor \"random\"");
        goto done;
    }
    TRY(rd_u64(rd, o, "config", "seed", false, &s->seed));
    TRY(rd_u64(rd, o, "config", "sample", false, &s->sample));
    TRY(rd_i32(rd, o, "config", "threads", 0, INT_MAX, false, &s->threads));
    /* Summaries written before the identity key have no such field. */
    if (json_object_get(o, "identity")) {
        TRY(rd_str(rd, o, "config", "identity", true, &s->identity));
        if (s->identity && strcmp(s->identity, "quick") != 0 &&
            strcmp(s->identity, "content") != 0) {
            st = bad_field(rd, "config.identity", "is neither \"quick\" nor \"content\"");
            goto done;
        }
    }
    TRY(rd_str(rd, o, "config", "hash", true, &s->hash));
    if (s->hash && !is_config_hash(s->hash))
        st = bad_field(rd, "config.hash", "is not 16 lowercase hex digits");
done:
    return st;
}

/* Fills s (zeroed by the caller; partly filled on failure, for clearing). */
static kmq_status parse_summary(reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *v, *o;
    char *status = NULL, *version = NULL, *method = NULL;

    if (!json_is_object(root)) {
        st = kmq_err_set(rd->err, KMQ_E_DECODE, "not a kmq summary: the document is not an object");
        goto done;
    }
    TRY(rd_any(rd, root, "", "schema", &v));
    if (!json_is_integer(v) || json_integer_value(v) != KMQ_SUMMARY_SCHEMA) {
        char got[64];
        if (json_is_integer(v))
            snprintf(got, sizeof got, "%lld", (long long)json_integer_value(v));
        else
            snprintf(got, sizeof got, "of JSON type %d", (int)json_typeof(v));
        st = kmq_err_set(rd->err, KMQ_E_DECODE,
                         "summary schema %s is not supported; this kmq reads schema %d", got,
                         KMQ_SUMMARY_SCHEMA);
        goto done;
    }
    TRY(rd_str(rd, root, "", "kmq_version", false, &version));
    TRY(rd_str(rd, root, "", "status", false, &status));
    if (strcmp(status, "ok") == 0) {
        s->ok = true;
    } else if (strcmp(status, "error") == 0) {
        s->ok = false;
    } else {
        st = bad_field(rd, "status", "is neither \"ok\" nor \"error\"");
        goto done;
    }
    TRY(rd_any(rd, root, "", "error", &v));
    if (s->ok && !json_is_null(v)) {
        st = bad_field(rd, "error", "is not null although status is \"ok\"");
        goto done;
    }
    if (!s->ok) {
        if (!json_is_object(v)) {
            st = bad_field(rd, "error", "is not an object although status is \"error\"");
            goto done;
        }
        TRY(rd_str(rd, v, "error", "code", true, &s->error_code));
        TRY(rd_str(rd, v, "error", "message", true, &s->error_message));
    }

    TRY(parse_input(rd, root, s));
    TRY(parse_config(rd, root, s));

    /* One result per k of the job, in the same (ascending) order, for a
     * done image; none for a failed one. */
    TRY(rd_array_max(rd, root, "", "results", KMQ_MAX_K, "one per k", &v));
    size_t n = json_array_size(v);
    if (!s->ok && n != 0) {
        st = bad_field(rd, "results", "is not empty although status is \"error\"");
        goto done;
    }
    if (s->ok && n != s->nk) {
        st =
            refuse(rd, "results has %zu entries but config.k has %zu (one result per k)", n, s->nk);
        goto done;
    }
    if (s->ok && n == 0) {
        st = bad_field(rd, "results", "is empty although status is \"ok\"");
        goto done;
    }
    s->results = kmq__calloc(n, sizeof *s->results);
    if (!s->results) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    s->nresults = n;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(v, i);
        if (!json_is_object(r)) {
            char name[32];
            snprintf(name, sizeof name, "results[%zu]", i);
            st = bad_field(rd, name, "is not an object");
            goto done;
        }
        TRY(parse_result(rd, r, i, s, &s->results[i]));
    }
    for (size_t i = 0; i < n; i++)
        if (s->results[i].k != s->k[i]) { /* n == nk here */
            st = refuse(rd, "results[%zu].k = %zu is not config.k[%zu] = %zu", i, s->results[i].k,
                        i, s->k[i]);
            goto done;
        }

    TRY(rd_typed(rd, root, "", "elbow", JSON_OBJECT, &o));
    TRY(rd_str(rd, o, "elbow", "method", false, &method));
    TRY(rd_any(rd, o, "elbow", "k", &v));
    if (!json_is_null(v)) {
        TRY(rd_k(rd, o, "elbow", "k", 1, KMQ_MAX_K, &s->elbow_k));
        bool found = false;
        for (size_t i = 0; i < s->nresults; i++)
            found |= s->results[i].k == s->elbow_k;
        if (!found) {
            st = refuse(rd, "elbow.k = %zu is not the k of any result", s->elbow_k);
            goto done;
        }
        s->has_elbow = true;
    }

    TRY(rd_typed(rd, root, "", "seconds", JSON_OBJECT, &o));
    TRY(rd_real(rd, o, "seconds", "histogram", true, 0.0, &s->histogram_s));
    TRY(rd_real(rd, o, "seconds", "total", true, 0.0, &s->total_s));
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
    reader rd = {"summary", err};

    if ((st = load_json_file(path, "summary", &root, err)) != KMQ_OK)
        goto done;
    if ((st = parse_summary(&rd, root, &s)) != KMQ_OK)
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
    kmq__free(s->identity);
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
    run_path = kmq_fsx_join(out_root, KMQ_RUN_JSON);
    csv_path = kmq_fsx_join(out_root, KMQ_ELBOW_CSV);
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

/* Whether s is a UTC time as the runner writes it, "YYYY-MM-DDTHH:MM:SSZ". */
static bool is_utc_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    return true;
}

kmq_status kmq_run_info_read(const char *path, kmq_run_facts *out, kmq_err *err)
{
    kmq_status st;
    json_t *root = NULL, *v;
    kmq_run_facts f = {0};
    reader rd = {"run.json", err};

    if ((st = load_json_file(path, "run.json", &root, err)) != KMQ_OK)
        goto done;
    if (!json_is_object(root)) {
        st = refuse(&rd, "the document is not an object");
        goto done;
    }
    TRY(rd_any(&rd, root, "", "schema", &v));
    if (!json_is_integer(v) || json_integer_value(v) != RUN_SCHEMA) {
        st = kmq_err_set(err, KMQ_E_DECODE, "not a kmq run.json: \"schema\" is not %d", RUN_SCHEMA);
        goto done;
    }
    TRY(rd_str(&rd, root, "", "status", false, &f.status));
    if (strcmp(f.status, "complete") != 0 && strcmp(f.status, "failures") != 0 &&
        strcmp(f.status, "incomplete") != 0 && strcmp(f.status, "interrupted") != 0) {
        st = bad_field(&rd, "status",
                       "is not \"complete\", \"failures\", \"incomplete\" or \"interrupted\"");
        goto done;
    }
    TRY(rd_str(&rd, root, "", "job_file", true, &f.job_file));
    TRY(rd_i32(&rd, root, "", "threads", 0, INT_MAX, false, &f.threads));
    TRY(rd_str(&rd, root, "", "started_utc", true, &f.started_utc));
    if (f.started_utc && !is_utc_time(f.started_utc)) {
        st = bad_field(&rd, "started_utc", "is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        goto done;
    }
    TRY(rd_typed(&rd, root, "", "seconds", JSON_OBJECT, &v));
    TRY(rd_real(&rd, v, "seconds", "wall", true, 0.0, &f.wall_s));
    *out = f;
    memset(&f, 0, sizeof f);

done:
    if (st == KMQ_E_DECODE)
        kmq_err_where(err, "%s", path);
    kmq_run_facts_clear(&f);
    json_decref(root);
    return st;
}
