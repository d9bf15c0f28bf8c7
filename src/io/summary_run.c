/* summary_run.c — run.json and elbow.csv, the record of one run, from the
 * images' summaries (layer L2, part of the summary module: one of its
 * files that may include <jansson.h>; it opens no image). Both are formatted
 * with summary_json.c's helpers, numbers and strings as described there, and
 * written through fsx (L0), atomically and durably.
 *
 * run.json (schema 1), keys in this order:
 *   schema, kmq_version, status ("complete" | "failures" | "incomplete" |
 *   "interrupted"),
 *   job_file (string | null), threads, started_utc (string | null),
 *   seconds {wall (the sum of the sessions' wall times), images_total (sum
 *           of the images' seconds.total), sessions and last_session (when
 *           known: a run resumed after an interruption continues it)},
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
 *   collection-level suggestion computed by the report (report.c);
 *   shards (only for a job array: kmq_run_shards) {count, missing [{shard,
 *   why}], running [shard], rerun (string | null)}.
 *
 * elbow.csv: header "job,image,k,inertia,mse,psnr_db,iterations,seconds,
 * k_effective,mse_output,png_bytes,ratio_vs_input,image_seconds" (the
 * columns after seconds were added later, at the end, so that readers by
 * position keep working), then one row per (ok image, result) in the order
 * given; image = rel (path when rel is NULL); seconds = fit + map of that
 * k; psnr_db empty when lossless; k_effective, mse_output, png_bytes and
 * ratio_vs_input as in the summary's result (png_bytes 0 and
 * ratio_vs_input 0 without an indexed PNG); image_seconds = the image's
 * seconds.total, the same on each of its rows: from opening the file to
 * its last output, both decoding passes included (not the config hash). Fields holding a comma, a double quote, CR or LF are quoted as in
 * RFC 4180 (quotes doubled); a job or image starting with = + - @ TAB or CR
 * gets a leading "'" so that spreadsheets do not take it for a formula
 * (run.json keeps the name as it is); lines end in "\n" (not RFC 4180's
 * CRLF: the file is for Unix tools and every CSV reader accepts it).
 *
 * Threading: no parallel regions; reentrant, and may run in several threads
 * at once on different output roots (summary_json.c says why).
 */
#include "summary_internal.h"
#include "kmq/outputs.h"
#include "kmq/fsx.h"
#include "kmq/strbuf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NUMBER_FLAGS (JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

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
    if (s->error_code &&
        (strcmp(s->error_code, KMQ_RUN_PENDING) == 0 || strcmp(s->error_code, KMQ_RUN_STALE) == 0))
        return s->error_code;
    return "error";
}

static bool build_run_image(kmq__sj_builder *b, json_t *images, const kmq_run_image *im)
{
    const kmq_summary *s = im->summary;
    json_t *o = kmq__sj_push_child(images, json_object());
    if (!o || !kmq__sj_put(o, "job", kmq__sj_str(s->job)) ||
        !kmq__sj_put(o, "path", kmq__sj_str(s->path)) ||
        !kmq__sj_put(o, "rel", kmq__sj_str(s->rel)) ||
        !kmq__sj_put(o, "dir", kmq__sj_str(im->dir)) ||
        !kmq__sj_put(o, "status", json_string(image_status(s))) ||
        !kmq__sj_put(o, "error",
                     s->ok ? json_null() : kmq__sj_error(s->error_code, s->error_message)) ||
        !kmq__sj_put_known(b, o, "pixels", s->pixels, s->ok))
        return false;
    json_t *ks = kmq__sj_put_child(o, "k", json_array());
    json_t *keff = ks ? kmq__sj_put_child(o, "k_effective", json_array()) : NULL;
    if (!keff)
        return false;
    if (s->ok) {
        if (!kmq__sj_need_array(b, s->results, s->nresults, "results"))
            return false;
        for (size_t i = 0; i < s->nresults; i++)
            if (!kmq__sj_push(ks, kmq__sj_u64(b, "k", s->results[i].k)) ||
                !kmq__sj_push(keff, kmq__sj_u64(b, "k_effective", s->results[i].k_effective)))
                return false;
    }
    return kmq__sj_put(o, "elbow_k",
                       s->ok && s->has_elbow ? kmq__sj_u64(b, "elbow_k", s->elbow_k)
                                             : json_null()) &&
           kmq__sj_put(o, "seconds", kmq__sj_real(s->total_s));
}

/* A job's "elbow": null without an entry, else {method, k (or null),
 * images, k_values}. */
static json_t *build_job_elbow(kmq__sj_builder *b, const kmq_job_elbow *elbows, size_t n_elbows,
                               const char *job)
{
    const kmq_job_elbow *e = NULL;
    for (size_t i = 0; i < n_elbows && !e; i++)
        if (same_job(elbows[i].job, job))
            e = &elbows[i];
    if (!e)
        return json_null();
    json_t *o = json_object();
    if (!o || !kmq__sj_put(o, "method", json_string("kneedle-mean-normalised")) ||
        !kmq__sj_put(o, "k", e->found ? kmq__sj_u64(b, "elbow.k", e->k) : json_null()) ||
        !kmq__sj_put_u64(b, o, "images", e->images) || !kmq__sj_put_u64(b, o, "k_values", e->nk)) {
        json_decref(o);
        return NULL;
    }
    json_t *curve = kmq__sj_put_child(o, "curve", json_array());
    for (size_t i = 0; curve && i < e->ncurve; i++) {
        json_t *pt = kmq__sj_push_child(curve, json_object());
        if (!pt || !kmq__sj_put_u64(b, pt, "k", e->curve_k[i]) ||
            !kmq__sj_put(pt, "mean", kmq__sj_real(e->curve_mean[i])) ||
            !kmq__sj_put(pt, "p10", kmq__sj_real(e->curve_p10[i])) ||
            !kmq__sj_put(pt, "p90", kmq__sj_real(e->curve_p90[i])))
            curve = NULL;
    }
    if (!curve) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "shards" of a job array: {count, missing [{shard, why}], running
 * [shard], rerun (string | null)}. */
static bool build_shards(kmq__sj_builder *b, json_t *root, const kmq_run_shards *sh)
{
    json_t *o = kmq__sj_put_child(root, "shards", json_object());
    if (!o || !kmq__sj_put_u64(b, o, "count", sh->count))
        return false;
    json_t *missing = kmq__sj_put_child(o, "missing", json_array());
    if (!missing)
        return false;
    for (size_t i = 0; i < sh->nmissing; i++) {
        json_t *m = kmq__sj_push_child(missing, json_object());
        if (!m || !kmq__sj_put_u64(b, m, "shard", sh->missing[i]) ||
            !kmq__sj_put(m, "why", kmq__sj_str(sh->why ? sh->why[i] : NULL)))
            return false;
    }
    json_t *running = kmq__sj_put_child(o, "running", json_array());
    if (!running)
        return false;
    for (size_t i = 0; i < sh->nrunning; i++)
        if (!kmq__sj_push(running, kmq__sj_u64(b, "running", sh->running[i])))
            return false;
    return kmq__sj_put(o, "rerun", kmq__sj_str(sh->rerun));
}

static json_t *build_run(kmq__sj_builder *b, const kmq_run_info *info, const kmq_job_elbow *elbows,
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

    if (!kmq__sj_put(root, "schema", kmq__sj_int(KMQ__RUN_SCHEMA)) ||
        !kmq__sj_put(root, "kmq_version", json_string(KMQ_VERSION_STRING)) ||
        !kmq__sj_put(root, "status", kmq__sj_str(info->status)) ||
        !kmq__sj_put(root, "job_file", kmq__sj_str(info->job_file)) ||
        !kmq__sj_put(root, "threads", kmq__sj_int(info->threads)) ||
        !kmq__sj_put(root, "started_utc", kmq__sj_str(info->started_utc)))
        goto fail;
    json_t *sec = kmq__sj_put_child(root, "seconds", json_object());
    if (!sec || !kmq__sj_put(sec, "wall", kmq__sj_real(info->wall_s)) ||
        !kmq__sj_put(sec, "images_total", kmq__sj_real(images_s)))
        goto fail;
    if (info->sessions > 0 &&
        (!kmq__sj_put_u64(b, sec, "sessions", info->sessions) ||
         !kmq__sj_put(sec, "last_session", kmq__sj_real(info->last_session_s))))
        goto fail;
    json_t *tot = kmq__sj_put_child(root, "totals", json_object());
    if (!tot || !kmq__sj_put_u64(b, tot, "images", n) || !kmq__sj_put_u64(b, tot, "ok", nok) ||
        !kmq__sj_put_u64(b, tot, "failed", nfailed) ||
        !kmq__sj_put_u64(b, tot, "not_done", n - nok - nfailed) ||
        !kmq__sj_put_u64(b, tot, "pixels", pixels))
        goto fail;
    json_t *arr = kmq__sj_put_child(root, "images", json_array());
    if (!arr)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (!build_run_image(b, arr, &images[i]))
            goto fail;
    arr = kmq__sj_put_child(root, "jobs", json_array());
    if (!arr)
        goto fail;
    for (size_t j = 0; j < njobs; j++) {
        json_t *o = kmq__sj_push_child(arr, json_object());
        if (!o || !kmq__sj_put(o, "name", kmq__sj_str(jobs[j].name)) ||
            !kmq__sj_put_u64(b, o, "images", jobs[j].images) ||
            !kmq__sj_put_u64(b, o, "ok", jobs[j].ok) ||
            !kmq__sj_put_u64(b, o, "failed", jobs[j].failed))
            goto fail;
        if (elbows && !kmq__sj_put(o, "elbow", build_job_elbow(b, elbows, n_elbows, jobs[j].name)))
            goto fail;
    }
    if (info->shards && !build_shards(b, root, info->shards))
        goto fail;
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
        size_t l = kmq__sj_utf8_len(u + i, n - i);
        if (l == 0) {
            kmq_strbuf_put(tb, kmq__sj_replacement, 3);
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
    kmq_strbuf_str(&tb, "job,image,k,inertia,mse,psnr_db,iterations,seconds,k_effective,"
                        "mse_output,png_bytes,ratio_vs_input,image_seconds\n");
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
            snprintf(num, sizeof num, ",%zu,", r->k_effective);
            kmq_strbuf_str(&tb, num);
            tb_real(&tb, scratch, r->mse_output);
            snprintf(num, sizeof num, ",%" PRIu64 ",", r->png_bytes);
            kmq_strbuf_str(&tb, num);
            tb_real(&tb, scratch, r->ratio_vs_input);
            kmq_strbuf_put(&tb, ",", 1);
            tb_real(&tb, scratch, s->total_s);
            kmq_strbuf_put(&tb, "\n", 1);
        }
    }
    json_decref(scratch);
    if (tb.failed || kmq__sj_oom()) {
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
    kmq__sj_builder b = {err, KMQ_OK};
    job_count *jobs = NULL;
    json_t *root = NULL;
    char *run_text = NULL, *csv_text = NULL, *run_path = NULL, *csv_path = NULL;
    size_t run_len = 0, csv_len = 0;

    kmq__sj_begin();
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
    if ((st = kmq__sj_built(&b, root, "run.json", err)) != KMQ_OK)
        goto done;
    /* Both documents are formatted before either is written, so a failure
     * here leaves the previous pair in place. */
    if ((st = kmq__sj_dump(root, "run.json", &run_text, &run_len, err)) != KMQ_OK)
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
