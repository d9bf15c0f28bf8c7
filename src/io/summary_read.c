/* summary_read.c — reading summary.json and run.json back into the plain
 * structs of summary.h, and freeing what was read (layer L2, part of the
 * summary module: one of its files that may include <jansson.h>; it
 * opens no image and writes no file). Files are read through fsx (L0), at
 * most 64 MiB each; numbers and strings are as summary_json.c writes them,
 * and each field is read through the checked accessors of summary_fields.c.
 *
 * Reading is strict on what is documented and ignores unknown fields, since
 * new fields may be added to schema 1. What is read back is trusted
 * afterwards (the report looks results up by k and sizes arrays by
 * KMQ_MAX_K), so every field is checked for presence, type and range: k and
 * k_effective in 1..KMQ_MAX_K with k_effective <= k and <=
 * input.unique_colors; results ascending strictly by k and, for an ok
 * summary, one per config.k entry in the same order (config.k itself
 * ascending, as the job parser makes it); array lengths agree with their
 * counts (palette with k_effective, restarts.inertia with restarts.count >=
 * 1, best within it); counts are integers in 0..2^63 - 1, or in the range of
 * their C type; width * height == pixels, and an ok summary knows them;
 * reals are numbers (jansson refuses NaN, infinity and out-of-range
 * literals, so they are finite), >= 0 where kmq never writes a negative one,
 * and null (read as NAN) only where a non-finite value may have been
 * written; hex agrees with rgb; file paths are plain names inside the
 * image's folder; init, identity, hash and elbow.k are values kmq writes
 * (config.identity may also be absent: summaries written before it existed
 * have none, and it is read as NULL). Strings are valid UTF-8 without U+0000
 * (jansson refuses both). A file refused is KMQ_E_DECODE with where = its
 * path and a message naming the field and value ("results[0].k =
 * 9007199254740993 is outside 1..256").
 *
 * run.json is read the same way, for the run-level facts only (status one
 * of the four, threads >= 0, started_utc as written, seconds.wall >= 0 or
 * null).
 *
 * Threading: no parallel regions; reentrant, and may run in several threads
 * at once on different files (summary_json.c says why).
 */
#include "summary_internal.h"
#include "kmq/fsx.h"
#include "kmq/kmeans.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Largest summary.json read back: 255 k values with 256 palette entries each
 * take about 8 MB, so this leaves a wide margin. */
#define SUMMARY_MAX_BYTES ((size_t)64 << 20)

/* ---- reading summaries -------------------------------------------------- */

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((st = (expr)) != KMQ_OK)                                                               \
            goto done;                                                                             \
    } while (0)

/* No lower bound for kmq__sj_rd_real. */
#define ANY_REAL (-INFINITY)

/* Whether name is a file directly inside the image's folder, as the runner
 * names them ("k8.png"): the report links and stats these paths, so none
 * may point elsewhere. */
static bool plain_file_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static kmq_status parse_file(kmq__sj_reader *rd, const json_t *files, const char *ctx,
                             const char *key, bool with_bpp, kmq_file_info *f)
{
    kmq_status st = KMQ_OK;
    char sub[96];
    json_t *o = json_object_get(files, key);
    if (!o)
        return KMQ_OK; /* not written */
    if (!json_is_object(o))
        return kmq__sj_bad_field(rd, kmq__sj_name_of(ctx, key).s, "is not an object");
    snprintf(sub, sizeof sub, "%s.%s", ctx, key);
    TRY(kmq__sj_rd_str(rd, o, sub, "path", false, &f->path));
    if (!plain_file_name(f->path)) {
        st = kmq__sj_bad_field(rd, kmq__sj_name_of(sub, "path").s,
                               "is not a file name inside the image's folder");
        goto done;
    }
    TRY(kmq__sj_rd_u64(rd, o, sub, "bytes", false, &f->bytes));
    if (with_bpp) {
        /* An indexed PNG has 1, 2, 4 or 8 bits per pixel. */
        TRY(kmq__sj_rd_i32(rd, o, sub, "bits_per_pixel", 1, 8, false, &f->bits_per_pixel));
        if ((f->bits_per_pixel & (f->bits_per_pixel - 1)) != 0)
            st = kmq__sj_refuse(rd, "%s.bits_per_pixel = %d is not 1, 2, 4 or 8", sub,
                                f->bits_per_pixel);
    }
done:
    return st;
}

/* results[index] into r; s holds what is already read (input, config, the
 * results before this one), against which k and the counts are checked.
 * The caller matches the k values with config.k afterwards. */
static kmq_status parse_result(kmq__sj_reader *rd, const json_t *o, size_t index,
                               const kmq_summary *s, kmq_k_result *r)
{
    kmq_status st = KMQ_OK;
    char ctx[64], sub[96];
    json_t *v, *arr;
    snprintf(ctx, sizeof ctx, "results[%zu]", index);

    TRY(kmq__sj_rd_k(rd, o, ctx, "k", 1, KMQ_MAX_K, &r->k));
    if (index > 0 && r->k <= s->results[index - 1].k) {
        st =
            kmq__sj_refuse(rd, "%s.k = %zu is not above results[%zu].k = %zu (results ascend by k)",
                           ctx, r->k, index - 1, s->results[index - 1].k);
        goto done;
    }
    TRY(kmq__sj_rd_k(rd, o, ctx, "k_effective", 1, KMQ_MAX_K, &r->k_effective));
    if (r->k_effective > r->k) {
        st = kmq__sj_refuse(rd, "%s.k_effective = %zu exceeds %s.k = %zu", ctx, r->k_effective, ctx,
                            r->k);
        goto done;
    }
    if (r->k_effective > s->unique_colors) {
        st = kmq__sj_refuse(rd, "%s.k_effective = %zu exceeds input.unique_colors = %" PRIu64, ctx,
                            r->k_effective, s->unique_colors);
        goto done;
    }
    TRY(kmq__sj_rd_real(rd, o, ctx, "inertia", false, 0.0, &r->inertia));
    TRY(kmq__sj_rd_real(rd, o, ctx, "mse", false, 0.0, &r->mse));
    TRY(kmq__sj_rd_real(rd, o, ctx, "mse_output", false, 0.0, &r->mse_output));
    TRY(kmq__sj_rd_real(rd, o, ctx, "psnr_db", true, ANY_REAL, &r->psnr_db));
    /* Summaries written before the colour difference have none: NAN. */
    r->delta_e_mean = r->delta_e_p95 = NAN;
    if (json_object_get(o, "delta_e_mean")) {
        TRY(kmq__sj_rd_real(rd, o, ctx, "delta_e_mean", false, 0.0, &r->delta_e_mean));
        TRY(kmq__sj_rd_real(rd, o, ctx, "delta_e_p95", false, 0.0, &r->delta_e_p95));
    }
    TRY(kmq__sj_rd_i32(rd, o, ctx, "iterations", 0, INT_MAX, false, &r->iterations));
    TRY(kmq__sj_rd_bool(rd, o, ctx, "converged", &r->converged));

    TRY(kmq__sj_rd_typed(rd, o, ctx, "restarts", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.restarts", ctx);
    TRY(kmq__sj_rd_i32(rd, v, sub, "count", 1, INT_MAX, false, &r->restarts));
    TRY(kmq__sj_rd_i32(rd, v, sub, "best", 0, r->restarts - 1, false, &r->best_restart));
    /* The array's length is checked before anything is allocated for it,
     * so a huge count in a small file costs nothing. */
    TRY(kmq__sj_rd_array_n(rd, v, sub, "inertia", (size_t)r->restarts, "restarts.count", &arr));
    r->restart_inertia = kmq__calloc((size_t)r->restarts, sizeof *r->restart_inertia);
    if (!r->restart_inertia) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < (size_t)r->restarts; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.inertia[%zu]", sub, i);
        TRY(kmq__sj_check_real(rd, json_array_get(arr, i), name, true, 0.0,
                               &r->restart_inertia[i]));
    }

    TRY(kmq__sj_rd_array_n(rd, o, ctx, "palette", r->k_effective, "k_effective", &arr));
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
            st = kmq__sj_bad_field(rd, pctx, "is not an object");
            goto done;
        }
        TRY(kmq__sj_rd_array_n(rd, eo, pctx, "rgb", 3, "3", &rgb));
        for (size_t c = 0; c < 3; c++) {
            json_t *x = json_array_get(rgb, c);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255) {
                st = kmq__sj_bad_field(rd, kmq__sj_name_of(pctx, "rgb").s,
                                       "is not three integers in [0, 255]");
                goto done;
            }
            e->rgb[c] = (uint8_t)json_integer_value(x);
        }
        TRY(kmq__sj_rd_any(rd, eo, pctx, "hex", &hex));
        snprintf(want, sizeof want, "#%02x%02x%02x", e->rgb[0], e->rgb[1], e->rgb[2]);
        if (!json_is_string(hex) || strcmp(json_string_value(hex), want) != 0) {
            char what[64];
            snprintf(what, sizeof what, "is not \"%s\", the colour of rgb", want);
            st = kmq__sj_bad_field(rd, kmq__sj_name_of(pctx, "hex").s, what);
            goto done;
        }
        e->alpha = 255;
        if (json_object_get(eo, "alpha")) {
            json_int_t a = 0;
            TRY(kmq__sj_check_int(rd, json_object_get(eo, "alpha"),
                                  kmq__sj_name_of(pctx, "alpha").s, 0, 255, false, &a));
            e->alpha = (uint8_t)a;
            r->alpha = true;
        }
        TRY(kmq__sj_rd_u64(rd, eo, pctx, "pixels", false, &e->pixels));
        if (e->pixels > s->pixels) {
            st = kmq__sj_refuse(rd, "%s.pixels = %" PRIu64 " exceeds input.pixels = %" PRIu64, pctx,
                                e->pixels, s->pixels);
            goto done;
        }
    }

    TRY(kmq__sj_rd_typed(rd, o, ctx, "files", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.files", ctx);
    TRY(parse_file(rd, v, sub, "indexed", true, &r->indexed));
    TRY(parse_file(rd, v, sub, "labels", false, &r->labels));
    TRY(parse_file(rd, v, sub, "palette", false, &r->swatch));

    TRY(kmq__sj_rd_typed(rd, o, ctx, "compression", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.compression", ctx);
    TRY(kmq__sj_rd_u64(rd, v, sub, "raw_bytes", false, &r->raw_bytes));
    TRY(kmq__sj_rd_u64(rd, v, sub, "packed_bytes", false, &r->packed_bytes));
    TRY(kmq__sj_rd_u64(rd, v, sub, "png_bytes", false, &r->png_bytes));
    TRY(kmq__sj_rd_real(rd, v, sub, "ratio_vs_raw", true, 0.0, &r->ratio_vs_raw));
    TRY(kmq__sj_rd_real(rd, v, sub, "ratio_vs_input", true, 0.0, &r->ratio_vs_input));

    TRY(kmq__sj_rd_typed(rd, o, ctx, "seconds", JSON_OBJECT, &v));
    snprintf(sub, sizeof sub, "%s.seconds", ctx);
    TRY(kmq__sj_rd_real(rd, v, sub, "fit", true, 0.0, &r->fit_s));
    TRY(kmq__sj_rd_real(rd, v, sub, "map", true, 0.0, &r->map_s));
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
static kmq_status parse_input(kmq__sj_reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *o;
    TRY(kmq__sj_rd_typed(rd, root, "", "input", JSON_OBJECT, &o));
    TRY(kmq__sj_rd_str(rd, o, "input", "path", true, &s->path));
    TRY(kmq__sj_rd_str(rd, o, "input", "rel", true, &s->rel));
    TRY(kmq__sj_rd_u64(rd, o, "input", "bytes", false, &s->bytes));
    TRY(kmq__sj_rd_str(rd, o, "input", "format", true, &s->format));
    TRY(kmq__sj_rd_u32(rd, o, "input", "width", true, &s->width));
    TRY(kmq__sj_rd_u32(rd, o, "input", "height", true, &s->height));
    TRY(kmq__sj_rd_i32(rd, o, "input", "bands", 0, INT_MAX, true, &s->bands));
    /* Summaries written before input.alpha have none: not known. */
    s->alpha_channel = -1;
    json_t *alpha = json_object_get(o, "alpha");
    if (alpha && !json_is_null(alpha)) {
        if (!json_is_boolean(alpha)) {
            st = kmq__sj_bad_field(rd, "input.alpha", "is not true, false or null");
            goto done;
        }
        s->alpha_channel = json_is_true(alpha) ? 1 : 0;
    }
    TRY(kmq__sj_rd_u64(rd, o, "input", "pixels", true, &s->pixels));
    TRY(kmq__sj_rd_u64(rd, o, "input", "unique_colors", true, &s->unique_colors));

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
            st =
                kmq__sj_refuse(rd, "input.%s is 0 or null although status is \"ok\"", known[i].key);
            goto done;
        }
    /* Both factors are below 2^32, so the product cannot wrap. Unknown
     * (null) sizes read as 0 on both sides. */
    uint64_t product = (uint64_t)s->width * s->height;
    if (product != s->pixels) {
        st =
            kmq__sj_refuse(rd,
                           "input.pixels = %" PRIu64 " is not input.width x input.height = %" PRIu32
                           " x %" PRIu32 " = %" PRIu64,
                           s->pixels, s->width, s->height, product);
        goto done;
    }
    if (s->unique_colors > s->pixels) {
        st = kmq__sj_refuse(rd, "input.unique_colors = %" PRIu64 " exceeds input.pixels = %" PRIu64,
                            s->unique_colors, s->pixels);
        goto done;
    }
    if (s->unique_colors > ((uint64_t)1 << 24)) {
        st = kmq__sj_refuse(
            rd, "input.unique_colors = %" PRIu64 " exceeds 16777216, the number of RGB colours",
            s->unique_colors);
        goto done;
    }
done:
    return st;
}

/* config: every field; k is the job's k list (ascending, distinct, in
 * 1..KMQ_MAX_K), as the job file's parser makes it. */
static kmq_status parse_config(kmq__sj_reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *o, *v;
    TRY(kmq__sj_rd_typed(rd, root, "", "config", JSON_OBJECT, &o));
    TRY(kmq__sj_rd_str(rd, o, "config", "job", true, &s->job));
    TRY(kmq__sj_rd_array_max(rd, o, "config", "k", KMQ_MAX_K, "one per distinct k", &v));
    s->k = kmq__calloc(json_array_size(v), sizeof *s->k);
    if (!s->k) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        char name[32];
        json_int_t k = 0;
        snprintf(name, sizeof name, "config.k[%zu]", i);
        TRY(kmq__sj_check_int(rd, json_array_get(v, i), name, 1, KMQ_MAX_K, false, &k));
        s->k[i] = (size_t)k;
        if (i > 0 && s->k[i] <= s->k[i - 1]) {
            st =
                kmq__sj_refuse(rd, "%s = %zu is not above config.k[%zu] = %zu (the k list ascends)",
                               name, s->k[i], i - 1, s->k[i - 1]);
            goto done;
        }
    }
    s->nk = json_array_size(v);
    TRY(kmq__sj_rd_i32(rd, o, "config", "restarts", 1, INT_MAX, false, &s->restarts));
    TRY(kmq__sj_rd_i32(rd, o, "config", "max_iter", 1, INT_MAX, false, &s->max_iter));
    TRY(kmq__sj_rd_real(rd, o, "config", "tol", false, 0.0, &s->tol));
    TRY(kmq__sj_rd_str(rd, o, "config", "init", true, &s->init));
    if (s->init && strcmp(s->init, "kmeans++") != 0 && strcmp(s->init, "random") != 0) {
        st = kmq__sj_bad_field(rd, "config.init", "is neither \"kmeans++\" nor \"random\"");
        goto done;
    }
    TRY(kmq__sj_rd_u64(rd, o, "config", "seed", false, &s->seed));
    TRY(kmq__sj_rd_u64(rd, o, "config", "sample", false, &s->sample));
    TRY(kmq__sj_rd_i32(rd, o, "config", "threads", 0, INT_MAX, false, &s->threads));
    /* Summaries written before the identity key have no such field. */
    if (json_object_get(o, "identity")) {
        TRY(kmq__sj_rd_str(rd, o, "config", "identity", true, &s->identity));
        if (s->identity && strcmp(s->identity, "quick") != 0 &&
            strcmp(s->identity, "content") != 0) {
            st = kmq__sj_bad_field(rd, "config.identity", "is neither \"quick\" nor \"content\"");
            goto done;
        }
    }
    TRY(kmq__sj_rd_str(rd, o, "config", "hash", true, &s->hash));
    if (s->hash && !is_config_hash(s->hash)) {
        st = kmq__sj_bad_field(rd, "config.hash", "is not 16 lowercase hex digits");
        goto done;
    }
    /* Present only when the job dithers. */
    if (json_object_get(o, "dither")) {
        TRY(kmq__sj_rd_str(rd, o, "config", "dither", false, &s->dither));
        if (strcmp(s->dither, "floyd-steinberg") != 0) {
            st = kmq__sj_bad_field(rd, "config.dither", "is not \"floyd-steinberg\"");
            goto done;
        }
        TRY(kmq__sj_rd_real(rd, o, "config", "dither_strength", false, 0.0, &s->dither_strength));
        if (s->dither_strength > 1.0) {
            st = kmq__sj_bad_field(rd, "config.dither_strength", "is above 1");
            goto done;
        }
    }
    /* Present only for a file with alpha. */
    if (json_object_get(o, "alpha")) {
        TRY(kmq__sj_rd_str(rd, o, "config", "alpha", false, &s->alpha));
        if (strcmp(s->alpha, "keep") != 0 && strcmp(s->alpha, "flatten") != 0) {
            st = kmq__sj_bad_field(rd, "config.alpha", "is neither \"keep\" nor \"flatten\"");
            goto done;
        }
    }
    /* Present only with space = oklab. */
    if (json_object_get(o, "space")) {
        TRY(kmq__sj_rd_str(rd, o, "config", "space", false, &s->space));
        if (strcmp(s->space, "oklab") != 0) {
            st = kmq__sj_bad_field(rd, "config.space", "is not \"oklab\"");
            goto done;
        }
    }
    /* Present only when not light (the default). */
    if (json_object_get(o, "report")) {
        TRY(kmq__sj_rd_str(rd, o, "config", "report", false, &s->report));
        if (strcmp(s->report, "full") != 0 && strcmp(s->report, "none") != 0) {
            st = kmq__sj_bad_field(rd, "config.report", "is neither \"full\" nor \"none\"");
            goto done;
        }
    }
    /* Present only with a quality target. */
    if (json_object_get(o, "target_psnr")) {
        TRY(kmq__sj_rd_real(rd, o, "config", "target_psnr", false, 0.0, &s->target_psnr));
        if (s->target_psnr < 1 || s->target_psnr > 200)
            st = kmq__sj_bad_field(rd, "config.target_psnr", "is outside 1..200");
    }
done:
    return st;
}

static bool in_k_list(const kmq_summary *s, size_t k)
{
    for (size_t i = 0; i < s->nk; i++)
        if (s->k[i] == k)
            return true;
    return false;
}

/* "target" of an ok summary with config.target_psnr: its k is the one
 * result's, every k fitted is in config.k (ascending) and the result's k is
 * among them. */
static kmq_status parse_target(kmq__sj_reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *o, *v;
    double psnr = 0;
    size_t k = 0;
    TRY(kmq__sj_rd_typed(rd, root, "", "target", JSON_OBJECT, &o));
    TRY(kmq__sj_rd_real(rd, o, "target", "psnr_db", false, 0.0, &psnr));
    if (psnr != s->target_psnr) {
        st = kmq__sj_refuse(rd, "target.psnr_db = %g is not config.target_psnr = %g", psnr,
                            s->target_psnr);
        goto done;
    }
    TRY(kmq__sj_rd_k(rd, o, "target", "k", 1, KMQ_MAX_K, &k));
    if (k != s->results[0].k || !in_k_list(s, k)) {
        st = kmq__sj_refuse(rd, "target.k = %zu is not results[0].k or not in config.k", k);
        goto done;
    }
    TRY(kmq__sj_rd_bool(rd, o, "target", "reached", &s->target_reached));
    TRY(kmq__sj_rd_array_max(rd, o, "target", "fitted", KMQ_MAX_K, "one per k fitted", &v));
    size_t n = json_array_size(v);
    s->tried = kmq__calloc(n ? n : 1, sizeof *s->tried);
    if (!s->tried) {
        st = kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a summary");
        goto done;
    }
    s->ntried = n;
    bool has_result = false;
    for (size_t i = 0; i < n; i++) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "target.fitted[%zu]", i);
        json_t *f = json_array_get(v, i);
        if (!json_is_object(f)) {
            st = kmq__sj_bad_field(rd, ctx, "is not an object");
            goto done;
        }
        kmq_target_try *t = &s->tried[i];
        TRY(kmq__sj_rd_k(rd, f, ctx, "k", 1, KMQ_MAX_K, &t->k));
        if (!in_k_list(s, t->k) || (i > 0 && t->k <= s->tried[i - 1].k)) {
            st = kmq__sj_refuse(rd, "%s.k = %zu is not in config.k or not ascending", ctx, t->k);
            goto done;
        }
        TRY(kmq__sj_rd_real(rd, f, ctx, "mse_output", false, 0.0, &t->mse_output));
        TRY(kmq__sj_rd_real(rd, f, ctx, "psnr_db", true, ANY_REAL, &t->psnr_db));
        has_result |= t->k == k;
    }
    if (!has_result)
        st = kmq__sj_refuse(rd, "target.k = %zu is not among target.fitted", k);
done:
    return st;
}

/* Fills s (zeroed by the caller; partly filled on failure, for clearing). */
static kmq_status parse_summary(kmq__sj_reader *rd, const json_t *root, kmq_summary *s)
{
    kmq_status st = KMQ_OK;
    json_t *v, *o;
    char *status = NULL, *version = NULL, *method = NULL;

    if (!json_is_object(root)) {
        st = kmq_err_set(rd->err, KMQ_E_DECODE, "not a kmq summary: the document is not an object");
        goto done;
    }
    TRY(kmq__sj_rd_any(rd, root, "", "schema", &v));
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
    TRY(kmq__sj_rd_str(rd, root, "", "kmq_version", false, &version));
    TRY(kmq__sj_rd_str(rd, root, "", "status", false, &status));
    if (strcmp(status, "ok") == 0) {
        s->ok = true;
    } else if (strcmp(status, "error") == 0) {
        s->ok = false;
    } else {
        st = kmq__sj_bad_field(rd, "status", "is neither \"ok\" nor \"error\"");
        goto done;
    }
    TRY(kmq__sj_rd_any(rd, root, "", "error", &v));
    if (s->ok && !json_is_null(v)) {
        st = kmq__sj_bad_field(rd, "error", "is not null although status is \"ok\"");
        goto done;
    }
    if (!s->ok) {
        if (!json_is_object(v)) {
            st = kmq__sj_bad_field(rd, "error", "is not an object although status is \"error\"");
            goto done;
        }
        TRY(kmq__sj_rd_str(rd, v, "error", "code", true, &s->error_code));
        TRY(kmq__sj_rd_str(rd, v, "error", "message", true, &s->error_message));
    }

    TRY(parse_input(rd, root, s));
    TRY(parse_config(rd, root, s));

    /* One result per k of the job, in the same (ascending) order, for a
     * done image; none for a failed one. */
    TRY(kmq__sj_rd_array_max(rd, root, "", "results", KMQ_MAX_K, "one per k", &v));
    size_t n = json_array_size(v);
    if (!s->ok && n != 0) {
        st = kmq__sj_bad_field(rd, "results", "is not empty although status is \"error\"");
        goto done;
    }
    if (s->ok && s->target_psnr > 0 && n != 1) {
        st = kmq__sj_refuse(rd, "results has %zu entries but a quality target writes one", n);
        goto done;
    }
    if (s->ok && s->target_psnr == 0 && n != s->nk) {
        st = kmq__sj_refuse(rd, "results has %zu entries but config.k has %zu (one result per k)",
                            n, s->nk);
        goto done;
    }
    if (s->ok && n == 0) {
        st = kmq__sj_bad_field(rd, "results", "is empty although status is \"ok\"");
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
            st = kmq__sj_bad_field(rd, name, "is not an object");
            goto done;
        }
        TRY(parse_result(rd, r, i, s, &s->results[i]));
    }
    for (size_t i = 0; i < n && s->target_psnr == 0; i++)
        if (s->results[i].k != s->k[i]) { /* n == nk here */
            st = kmq__sj_refuse(rd, "results[%zu].k = %zu is not config.k[%zu] = %zu", i,
                                s->results[i].k, i, s->k[i]);
            goto done;
        }
    if (s->ok && s->target_psnr > 0)
        TRY(parse_target(rd, root, s));

    TRY(kmq__sj_rd_typed(rd, root, "", "elbow", JSON_OBJECT, &o));
    TRY(kmq__sj_rd_str(rd, o, "elbow", "method", false, &method));
    TRY(kmq__sj_rd_any(rd, o, "elbow", "k", &v));
    if (!json_is_null(v)) {
        TRY(kmq__sj_rd_k(rd, o, "elbow", "k", 1, KMQ_MAX_K, &s->elbow_k));
        bool found = false;
        for (size_t i = 0; i < s->nresults; i++)
            found |= s->results[i].k == s->elbow_k;
        if (!found) {
            st = kmq__sj_refuse(rd, "elbow.k = %zu is not the k of any result", s->elbow_k);
            goto done;
        }
        s->has_elbow = true;
    }

    if (json_object_get(root, "palette")) {
        TRY(kmq__sj_rd_typed(rd, root, "", "palette", JSON_OBJECT, &o));
        TRY(kmq__sj_rd_str(rd, o, "palette", "mode", false, &s->palette_mode));
        TRY(kmq__sj_rd_str(rd, o, "palette", "hash", false, &s->palette_hash));
    }

    TRY(kmq__sj_rd_typed(rd, root, "", "seconds", JSON_OBJECT, &o));
    TRY(kmq__sj_rd_real(rd, o, "seconds", "histogram", true, 0.0, &s->histogram_s));
    TRY(kmq__sj_rd_real(rd, o, "seconds", "total", true, 0.0, &s->total_s));
done:
    kmq__free(status);
    kmq__free(version);
    kmq__free(method);
    return st;
}

/* Reads and parses a JSON file of at most SUMMARY_MAX_BYTES into *root
 * (caller decrefs). `what` names the document in messages. */
kmq_status kmq__sj_load_file(const char *path, const char *what, json_t **root, kmq_err *err)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    kmq__sj_begin();
    kmq_status st = kmq_fsx_read_all(path, SUMMARY_MAX_BYTES, &text, &len, err);
    if (st != KMQ_OK)
        return st;
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    kmq__free(text);
    if (kmq__sj_oom()) {
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
    kmq__sj_reader rd = {"summary", err};

    if ((st = kmq__sj_load_file(path, "summary", &root, err)) != KMQ_OK)
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

void kmq_k_result_clear(kmq_k_result *r)
{
    kmq__free(r->restart_inertia);
    r->restart_inertia = NULL;
    kmq__free(r->palette);
    r->palette = NULL;
    file_info_clear(&r->indexed);
    file_info_clear(&r->labels);
    file_info_clear(&r->swatch);
}

kmq_status kmq_summary_set_error(kmq_summary *s, const char *code, const char *message)
{
    for (size_t i = 0; i < s->nresults; i++)
        kmq_k_result_clear(&s->results[i]);
    kmq__free(s->results);
    s->results = NULL;
    s->nresults = 0;
    s->ok = false;
    s->has_elbow = false;
    kmq__free(s->error_code);
    kmq__free(s->error_message);
    s->error_code = kmq__strdup(code);
    s->error_message = kmq__strdup(message);
    return s->error_code && s->error_message ? KMQ_OK : KMQ_E_NOMEM;
}

void kmq_summary_clear(kmq_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->results && i < s->nresults; i++)
        kmq_k_result_clear(&s->results[i]);
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
    kmq__free(s->dither);
    kmq__free(s->report);
    kmq__free(s->hash);
    kmq__free(s->palette_mode);
    kmq__free(s->palette_hash);
    kmq__free(s->tried);
    kmq__free(s->space);
    kmq__free(s->alpha);
    memset(s, 0, sizeof *s);
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

void kmq_run_info_keep_facts(kmq_run_info *info, const kmq_run_facts *old)
{
    if (strcmp(old->status, "interrupted") == 0)
        info->status = old->status;
    info->threads = old->threads;
    info->wall_s = old->wall_s;
    info->started_utc = old->started_utc;
    info->sessions = old->sessions;
    info->last_session_s = old->last_session_s;
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
    kmq__sj_reader rd = {"run.json", err};

    if ((st = kmq__sj_load_file(path, "run.json", &root, err)) != KMQ_OK)
        goto done;
    if (!json_is_object(root)) {
        st = kmq__sj_refuse(&rd, "the document is not an object");
        goto done;
    }
    TRY(kmq__sj_rd_any(&rd, root, "", "schema", &v));
    if (!json_is_integer(v) || json_integer_value(v) != KMQ__RUN_SCHEMA) {
        st = kmq_err_set(err, KMQ_E_DECODE, "not a kmq run.json: \"schema\" is not %d",
                         KMQ__RUN_SCHEMA);
        goto done;
    }
    TRY(kmq__sj_rd_str(&rd, root, "", "status", false, &f.status));
    if (strcmp(f.status, "complete") != 0 && strcmp(f.status, "failures") != 0 &&
        strcmp(f.status, "incomplete") != 0 && strcmp(f.status, "interrupted") != 0) {
        st = kmq__sj_bad_field(
            &rd, "status", "is not \"complete\", \"failures\", \"incomplete\" or \"interrupted\"");
        goto done;
    }
    TRY(kmq__sj_rd_str(&rd, root, "", "job_file", true, &f.job_file));
    TRY(kmq__sj_rd_i32(&rd, root, "", "threads", 0, INT_MAX, false, &f.threads));
    TRY(kmq__sj_rd_str(&rd, root, "", "started_utc", true, &f.started_utc));
    if (f.started_utc && !is_utc_time(f.started_utc)) {
        st = kmq__sj_bad_field(&rd, "started_utc", "is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        goto done;
    }
    TRY(kmq__sj_rd_typed(&rd, root, "", "seconds", JSON_OBJECT, &v));
    TRY(kmq__sj_rd_real(&rd, v, "seconds", "wall", true, 0.0, &f.wall_s));
    /* Present since runs count their sessions; absent: not known (0). */
    if (json_object_get(v, "sessions")) {
        uint32_t sessions = 0;
        TRY(kmq__sj_rd_u32(&rd, v, "seconds", "sessions", false, &sessions));
        f.sessions = sessions;
        TRY(kmq__sj_rd_real(&rd, v, "seconds", "last_session", false, 0.0, &f.last_session_s));
    }
    *out = f;
    memset(&f, 0, sizeof f);

done:
    if (st == KMQ_E_DECODE)
        kmq_err_where(err, "%s", path);
    kmq_run_facts_clear(&f);
    json_decref(root);
    return st;
}
