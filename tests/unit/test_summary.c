/* test_summary.c — summary.json, run.json and elbow.csv (src/io/summary_*.c).
 *
 * Documents are inspected with jansson directly, independently of the
 * reader under test: every docs/design.md field is checked for presence, JSON
 * type, value and key order. Doubles are compared exactly (bit patterns
 * where -0.0 and subnormals matter).
 */
#include "kmq/alloc_hook.h"
#include "kmq/fsx.h"
#include "kmq/kmeans.h"
#include "kmq/summary.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ----------------------------------------------------------- */

static char *dup_str(const char *s)
{
    char *p = strdup(s);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void *alloc_zero(size_t n, size_t size)
{
    void *p = calloc(n, size);
    ck_assert_ptr_nonnull(p);
    return p;
}

static const double r0_restarts[3] = {0.1, 1.0 / 3.0, 1e-300};
static const double r1_restarts[3] = {123456789.123456789, 5e-324, DBL_MAX};

/* A summary with every field set: two results, the first lossy with a labels
 * file, the second lossless (mse_output 0) with fewer colours than k. */
static void make_full(kmq_summary *s)
{
    memset(s, 0, sizeof *s);
    s->ok = true;
    s->path = dup_str("/data/in/photos/a.jpg");
    s->rel = dup_str("photos/a.jpg");
    s->bytes = 123456;
    s->format = dup_str("jpeg");
    s->width = 640;
    s->height = 480;
    s->bands = 3;
    s->pixels = 307200;
    s->unique_colors = 54321;
    s->job = dup_str("photos");
    s->nk = 2;
    s->k = alloc_zero(2, sizeof *s->k);
    s->k[0] = 4;
    s->k[1] = 16;
    s->restarts = 3;
    s->max_iter = 300;
    s->tol = 1e-4;
    s->init = dup_str("kmeans++");
    s->identity = dup_str("content");
    s->seed = 42;
    s->sample = 0;
    s->threads = 2;
    s->hash = dup_str("0123456789abcdef");
    s->nresults = 2;
    s->results = alloc_zero(2, sizeof *s->results);

    kmq_k_result *r = &s->results[0];
    r->k = 4;
    r->k_effective = 4;
    r->inertia = 0.1;
    r->mse = 1.0 / 3.0;
    r->mse_output = 0.5;
    r->psnr_db = 27.25;
    r->delta_e_mean = 2.5;
    r->delta_e_p95 = 6.75;
    r->iterations = 17;
    r->converged = true;
    r->restarts = 3;
    r->best_restart = 1;
    r->restart_inertia = alloc_zero(3, sizeof(double));
    memcpy(r->restart_inertia, r0_restarts, sizeof r0_restarts);
    r->palette = alloc_zero(4, sizeof *r->palette);
    const uint8_t cols[4][3] = {{0, 0, 0}, {0xab, 0xcd, 0xef}, {255, 255, 255}, {1, 2, 3}};
    for (int i = 0; i < 4; i++) {
        memcpy(r->palette[i].rgb, cols[i], 3);
        r->palette[i].pixels = 1000u * (uint64_t)(i + 1);
    }
    r->indexed = (kmq_file_info){dup_str("k4.png"), 1000, 2};
    r->labels = (kmq_file_info){dup_str("k4.labels.png"), 500, 8};
    r->raw_bytes = 921600;
    r->packed_bytes = 76812;
    r->png_bytes = 1000;
    r->ratio_vs_raw = 921.6;
    r->ratio_vs_input = 123.456;
    r->fit_s = 0.25;
    r->map_s = 0.125;

    r = &s->results[1];
    r->k = 16;
    r->k_effective = 3;
    r->inertia = 1e-300;
    r->mse = 123456789.123456789;
    r->mse_output = 0.0;
    r->psnr_db = 99.0; /* ignored: lossless */
    r->iterations = 300;
    r->converged = false;
    r->restarts = 3;
    r->best_restart = 0;
    r->restart_inertia = alloc_zero(3, sizeof(double));
    memcpy(r->restart_inertia, r1_restarts, sizeof r1_restarts);
    r->palette = alloc_zero(3, sizeof *r->palette);
    for (int i = 0; i < 3; i++) {
        r->palette[i].rgb[0] = (uint8_t)(16 * i);
        r->palette[i].rgb[1] = 0x0f;
        r->palette[i].rgb[2] = 0xa0;
        r->palette[i].pixels = 7u + (uint64_t)i;
    }
    r->indexed = (kmq_file_info){dup_str("k16.png"), 2000, 2};
    r->raw_bytes = 921600;
    r->packed_bytes = 153612;
    r->png_bytes = 2000;
    r->ratio_vs_raw = 460.8;
    r->ratio_vs_input = 61.728;
    r->fit_s = 1.5;
    r->map_s = 0.25;

    s->has_elbow = true;
    s->elbow_k = 4;
    s->histogram_s = 0.5;
    s->total_s = 2.75;
}

/* The error form: decode failed after the file was found. */
static void make_failed(kmq_summary *s, const char *rel)
{
    make_full(s);
    s->ok = false;
    s->error_code = dup_str("decode_failed");
    s->error_message = dup_str("truncated JPEG: premature end of data");
    free(s->rel);
    s->rel = dup_str(rel);
    free(s->format);
    s->format = NULL;
    s->width = s->height = 0;
    s->bands = 0;
    s->pixels = s->unique_colors = 0;
    s->total_s = 0.5;
}

static char *path_in(const char *dir, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void write_ok(const char *path, const kmq_summary *s)
{
    kmq_err err = {0};
    kmq_status st = kmq_summary_write(path, s, &err);
    ck_assert_msg(st == KMQ_OK, "write %s: %s", path, err.msg);
}

static json_t *load_json(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "%s: %s", path, jerr.text);
    return root;
}

/* ---- JSON path helpers ("results[0].palette[1].hex") ------------------- */

static json_t *jget(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = root;
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, ".")) {
        char *br = strchr(tok, '[');
        if (br)
            *br = '\0';
        v = json_object_get(v, tok);
        while (br && v) {
            v = json_array_get(v, strtoul(br + 1, &br, 10));
            br = strchr(br, '[');
        }
    }
    return v;
}

static json_t *must(json_t *root, const char *path)
{
    json_t *v = jget(root, path);
    ck_assert_msg(v != NULL, "field %s missing", path);
    return v;
}

static void expect_int(json_t *root, const char *path, long long want)
{
    json_t *v = must(root, path);
    ck_assert_msg(json_is_integer(v), "%s is not an integer", path);
    ck_assert_msg(json_integer_value(v) == want, "%s = %lld, want %lld", path,
                  (long long)json_integer_value(v), want);
}

static void expect_real(json_t *root, const char *path, double want)
{
    json_t *v = must(root, path);
    ck_assert_msg(json_is_real(v), "%s is not a real", path);
    double got = json_real_value(v);
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s = %.17g, want %.17g", path, got, want);
}

static void expect_str(json_t *root, const char *path, const char *want)
{
    json_t *v = must(root, path);
    ck_assert_msg(json_is_string(v), "%s is not a string", path);
    ck_assert_str_eq(json_string_value(v), want);
}

static void expect_null(json_t *root, const char *path)
{
    ck_assert_msg(json_is_null(must(root, path)), "%s is not null", path);
}

static void expect_bool(json_t *root, const char *path, bool want)
{
    json_t *v = must(root, path);
    ck_assert_msg(json_is_boolean(v) && json_is_true(v) == want, "%s is not %s", path,
                  want ? "true" : "false");
}

/* The object at path has exactly these keys, in this order. */
static void expect_keys(json_t *root, const char *path, const char *const *keys)
{
    json_t *o = path[0] ? must(root, path) : root;
    ck_assert_msg(json_is_object(o), "%s is not an object", path);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        (void)v;
        ck_assert_msg(keys[i] != NULL, "%s has an extra key %s", path, key);
        ck_assert_msg(strcmp(key, keys[i]) == 0, "%s: key %zu is %s, want %s", path, i, key,
                      keys[i]);
        i++;
    }
    ck_assert_msg(keys[i] == NULL, "%s lacks key %s", path, keys[i]);
}

static void expect_array_len(json_t *root, const char *path, size_t n)
{
    json_t *v = must(root, path);
    ck_assert_msg(json_is_array(v), "%s is not an array", path);
    ck_assert_uint_eq(json_array_size(v), n);
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* Field-by-field equality of two summaries as the reader must return them. */
static void expect_same_summary(const kmq_summary *a, const kmq_summary *b)
{
    ck_assert(a->ok == b->ok);
    ck_assert(same_str(a->error_code, b->error_code));
    ck_assert(same_str(a->error_message, b->error_message));
    ck_assert(same_str(a->path, b->path));
    ck_assert(same_str(a->rel, b->rel));
    ck_assert_uint_eq(a->bytes, b->bytes);
    ck_assert(same_str(a->format, b->format));
    ck_assert_uint_eq(a->width, b->width);
    ck_assert_uint_eq(a->height, b->height);
    ck_assert_int_eq(a->bands, b->bands);
    ck_assert_uint_eq(a->pixels, b->pixels);
    ck_assert_uint_eq(a->unique_colors, b->unique_colors);
    ck_assert(same_str(a->job, b->job));
    ck_assert_uint_eq(a->nk, b->nk);
    for (size_t i = 0; i < a->nk; i++)
        ck_assert_uint_eq(a->k[i], b->k[i]);
    ck_assert_int_eq(a->restarts, b->restarts);
    ck_assert_int_eq(a->max_iter, b->max_iter);
    ck_assert(same_double(a->tol, b->tol));
    ck_assert(same_str(a->init, b->init));
    ck_assert(same_str(a->identity, b->identity));
    ck_assert_int_eq(a->alpha_channel, b->alpha_channel);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_uint_eq(a->sample, b->sample);
    ck_assert_int_eq(a->threads, b->threads);
    ck_assert(same_str(a->hash, b->hash));
    ck_assert_uint_eq(a->nresults, b->nresults);
    for (size_t i = 0; i < a->nresults; i++) {
        const kmq_k_result *x = &a->results[i], *y = &b->results[i];
        ck_assert_uint_eq(x->k, y->k);
        ck_assert_uint_eq(x->k_effective, y->k_effective);
        ck_assert(same_double(x->inertia, y->inertia));
        ck_assert(same_double(x->mse, y->mse));
        ck_assert(same_double(x->mse_output, y->mse_output));
        if (x->mse_output != 0.0)
            ck_assert(same_double(x->psnr_db, y->psnr_db));
        ck_assert(same_double(x->delta_e_mean, y->delta_e_mean));
        ck_assert(same_double(x->delta_e_p95, y->delta_e_p95));
        ck_assert_int_eq(x->iterations, y->iterations);
        ck_assert(x->converged == y->converged);
        ck_assert_int_eq(x->restarts, y->restarts);
        ck_assert_int_eq(x->best_restart, y->best_restart);
        for (int j = 0; j < x->restarts; j++)
            ck_assert(same_double(x->restart_inertia[j], y->restart_inertia[j]));
        for (size_t j = 0; j < x->k_effective; j++) {
            ck_assert_mem_eq(x->palette[j].rgb, y->palette[j].rgb, 3);
            ck_assert_uint_eq(x->palette[j].pixels, y->palette[j].pixels);
        }
        const kmq_file_info *fx[3] = {&x->indexed, &x->labels, &x->swatch};
        const kmq_file_info *fy[3] = {&y->indexed, &y->labels, &y->swatch};
        for (int j = 0; j < 3; j++) {
            ck_assert(same_str(fx[j]->path, fy[j]->path));
            if (fx[j]->path)
                ck_assert_uint_eq(fx[j]->bytes, fy[j]->bytes);
        }
        ck_assert_int_eq(x->indexed.bits_per_pixel, y->indexed.bits_per_pixel);
        ck_assert_uint_eq(x->raw_bytes, y->raw_bytes);
        ck_assert_uint_eq(x->packed_bytes, y->packed_bytes);
        ck_assert_uint_eq(x->png_bytes, y->png_bytes);
        ck_assert(same_double(x->ratio_vs_raw, y->ratio_vs_raw));
        ck_assert(same_double(x->ratio_vs_input, y->ratio_vs_input));
        ck_assert(same_double(x->fit_s, y->fit_s));
        ck_assert(same_double(x->map_s, y->map_s));
    }
    ck_assert(a->has_elbow == b->has_elbow);
    if (a->has_elbow)
        ck_assert_uint_eq(a->elbow_k, b->elbow_k);
    ck_assert(same_double(a->histogram_s, b->histogram_s));
    ck_assert(same_double(a->total_s, b->total_s));
}

static void expect_same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *da = tu_read_file(a, &la), *db = tu_read_file(b, &lb);
    ck_assert_ptr_nonnull(da);
    ck_assert_ptr_nonnull(db);
    ck_assert_msg(la == lb && memcmp(da, db, la) == 0, "%s and %s differ", a, b);
    free(da);
    free(db);
}

/* ---- every field of a full summary --------------------------------------- */

START_TEST(test_full_summary_fields)
{
    const char *dir = tu_fresh_dir("summary_fields");
    kmq_summary s;
    make_full(&s);
    write_ok(path_in(dir, "summary.json"), &s);

    size_t len;
    unsigned char *text = tu_read_file(path_in(dir, "summary.json"), &len);
    ck_assert_ptr_nonnull(text);
    /* Indent 2, one key per line, final newline. */
    static const char start[] = "{\n  \"schema\": 1,\n  \"kmq_version\": \"";
    ck_assert_msg(strncmp((char *)text, start, strlen(start)) == 0, "unexpected start: %.60s",
                  text);
    ck_assert_int_eq(text[len - 1], '\n');
    ck_assert_ptr_null(strstr((char *)text, "nan"));
    ck_assert_ptr_null(strstr((char *)text, "inf"));
    free(text);

    json_t *j = load_json(path_in(dir, "summary.json"));
    static const char *const top[] = {"schema", "kmq_version", "status", "error",   "input",
                                      "config", "results",     "elbow",  "seconds", NULL};
    expect_keys(j, "", top);
    expect_int(j, "schema", 1);
    ck_assert(json_string_length(must(j, "kmq_version")) > 0);
    expect_str(j, "status", "ok");
    expect_null(j, "error");

    static const char *const input[] = {"path",   "rel",           "bytes", "format",
                                        "width",  "height",        "bands", "alpha",
                                        "pixels", "unique_colors", NULL};
    expect_keys(j, "input", input);
    expect_bool(j, "input.alpha", false);
    expect_str(j, "input.path", "/data/in/photos/a.jpg");
    expect_str(j, "input.rel", "photos/a.jpg");
    expect_int(j, "input.bytes", 123456);
    expect_str(j, "input.format", "jpeg");
    expect_int(j, "input.width", 640);
    expect_int(j, "input.height", 480);
    expect_int(j, "input.bands", 3);
    expect_int(j, "input.pixels", 307200);
    expect_int(j, "input.unique_colors", 54321);

    static const char *const config[] = {"job",  "k",      "restarts", "max_iter", "tol",  "init",
                                         "seed", "sample", "threads",  "identity", "hash", NULL};
    expect_keys(j, "config", config);
    expect_str(j, "config.job", "photos");
    expect_array_len(j, "config.k", 2);
    expect_int(j, "config.k[0]", 4);
    expect_int(j, "config.k[1]", 16);
    expect_int(j, "config.restarts", 3);
    expect_int(j, "config.max_iter", 300);
    expect_real(j, "config.tol", 1e-4);
    expect_str(j, "config.init", "kmeans++");
    expect_str(j, "config.identity", "content");
    expect_int(j, "config.seed", 42);
    expect_int(j, "config.sample", 0);
    expect_int(j, "config.threads", 2);
    expect_str(j, "config.hash", "0123456789abcdef");

    expect_array_len(j, "results", 2);
    static const char *const result[] = {"k",          "k_effective", "inertia",      "mse",
                                         "mse_output", "psnr_db",     "delta_e_mean", "delta_e_p95",
                                         "iterations", "converged",   "restarts",     "palette",
                                         "files",      "compression", "seconds",      NULL};
    expect_keys(j, "results[0]", result);
    expect_keys(j, "results[1]", result);
    static const char *const restarts[] = {"count", "best", "inertia", NULL};
    static const char *const entry[] = {"rgb", "hex", "pixels", NULL};
    static const char *const indexed[] = {"path", "bytes", "bits_per_pixel", NULL};
    static const char *const plain_file[] = {"path", "bytes", NULL};
    static const char *const compression[] = {"raw_bytes",    "packed_bytes",   "png_bytes",
                                              "ratio_vs_raw", "ratio_vs_input", NULL};
    static const char *const seconds[] = {"fit", "map", NULL};

    /* results[0]: lossy, labels file written. */
    expect_int(j, "results[0].k", 4);
    expect_int(j, "results[0].k_effective", 4);
    expect_real(j, "results[0].inertia", 0.1);
    expect_real(j, "results[0].mse", 1.0 / 3.0);
    expect_real(j, "results[0].mse_output", 0.5);
    expect_real(j, "results[0].psnr_db", 27.25);
    expect_real(j, "results[0].delta_e_mean", 2.5);
    expect_real(j, "results[0].delta_e_p95", 6.75);
    expect_int(j, "results[0].iterations", 17);
    expect_bool(j, "results[0].converged", true);
    expect_keys(j, "results[0].restarts", restarts);
    expect_int(j, "results[0].restarts.count", 3);
    expect_int(j, "results[0].restarts.best", 1);
    expect_array_len(j, "results[0].restarts.inertia", 3);
    expect_real(j, "results[0].restarts.inertia[0]", 0.1);
    expect_real(j, "results[0].restarts.inertia[1]", 1.0 / 3.0);
    expect_real(j, "results[0].restarts.inertia[2]", 1e-300);
    expect_array_len(j, "results[0].palette", 4);
    expect_keys(j, "results[0].palette[1]", entry);
    expect_array_len(j, "results[0].palette[1].rgb", 3);
    expect_int(j, "results[0].palette[1].rgb[0]", 0xab);
    expect_int(j, "results[0].palette[1].rgb[1]", 0xcd);
    expect_int(j, "results[0].palette[1].rgb[2]", 0xef);
    expect_str(j, "results[0].palette[0].hex", "#000000");
    expect_str(j, "results[0].palette[1].hex", "#abcdef");
    expect_str(j, "results[0].palette[2].hex", "#ffffff");
    expect_str(j, "results[0].palette[3].hex", "#010203");
    expect_int(j, "results[0].palette[3].pixels", 4000);
    static const char *const files0[] = {"indexed", "labels", NULL};
    expect_keys(j, "results[0].files", files0);
    expect_keys(j, "results[0].files.indexed", indexed);
    expect_str(j, "results[0].files.indexed.path", "k4.png");
    expect_int(j, "results[0].files.indexed.bytes", 1000);
    expect_int(j, "results[0].files.indexed.bits_per_pixel", 2);
    expect_keys(j, "results[0].files.labels", plain_file);
    expect_str(j, "results[0].files.labels.path", "k4.labels.png");
    expect_int(j, "results[0].files.labels.bytes", 500);
    expect_keys(j, "results[0].compression", compression);
    expect_int(j, "results[0].compression.raw_bytes", 921600);
    expect_int(j, "results[0].compression.packed_bytes", 76812);
    expect_int(j, "results[0].compression.png_bytes", 1000);
    expect_real(j, "results[0].compression.ratio_vs_raw", 921.6);
    expect_real(j, "results[0].compression.ratio_vs_input", 123.456);
    expect_keys(j, "results[0].seconds", seconds);
    expect_real(j, "results[0].seconds.fit", 0.25);
    expect_real(j, "results[0].seconds.map", 0.125);

    /* results[1]: lossless (psnr_db null), k_effective < k, indexed only. */
    expect_int(j, "results[1].k", 16);
    expect_int(j, "results[1].k_effective", 3);
    expect_real(j, "results[1].mse_output", 0.0);
    expect_null(j, "results[1].psnr_db");
    expect_int(j, "results[1].iterations", 300);
    expect_bool(j, "results[1].converged", false);
    expect_int(j, "results[1].restarts.best", 0);
    expect_real(j, "results[1].restarts.inertia[1]", 5e-324);
    expect_real(j, "results[1].restarts.inertia[2]", DBL_MAX);
    expect_array_len(j, "results[1].palette", 3);
    expect_str(j, "results[1].palette[2].hex", "#200fa0");
    expect_int(j, "results[1].palette[2].pixels", 9);
    static const char *const files1[] = {"indexed", NULL};
    expect_keys(j, "results[1].files", files1);
    expect_str(j, "results[1].files.indexed.path", "k16.png");

    static const char *const elbow[] = {"method", "k", NULL};
    expect_keys(j, "elbow", elbow);
    expect_str(j, "elbow.method", "kneedle");
    expect_int(j, "elbow.k", 4);
    static const char *const totals[] = {"histogram", "total", NULL};
    expect_keys(j, "seconds", totals);
    expect_real(j, "seconds.histogram", 0.5);
    expect_real(j, "seconds.total", 2.75);

    json_decref(j);
    kmq_summary_clear(&s);
}
END_TEST

START_TEST(test_clear_leaves_zeroed)
{
    kmq_summary s, zero;
    memset(&zero, 0, sizeof zero);
    make_full(&s);
    kmq_summary_clear(&s);
    ck_assert_mem_eq(&s, &zero, sizeof s);
    kmq_summary_clear(&s); /* reusable: clearing twice is fine */
    ck_assert_mem_eq(&s, &zero, sizeof s);
}
END_TEST

/* ---- round trip ------------------------------------------------------------ */

START_TEST(test_round_trip_identical)
{
    const char *dir = tu_fresh_dir("summary_roundtrip");
    char first[4096], second[4096];
    snprintf(first, sizeof first, "%s/first.json", dir);
    snprintf(second, sizeof second, "%s/second.json", dir);
    kmq_summary s, back = {0};
    make_full(&s);
    s.tol = 123456789.123456789;
    s.histogram_s = -0.0;
    write_ok(first, &s);

    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_read(first, &back, &err), KMQ_OK);
    expect_same_summary(&s, &back);
    /* Exact bits, not just equal values. */
    ck_assert(same_double(back.results[0].inertia, 0.1));
    ck_assert(same_double(back.results[0].mse, 1.0 / 3.0));
    ck_assert(same_double(back.results[1].inertia, 1e-300));
    ck_assert(same_double(back.results[1].restart_inertia[1], 5e-324));
    ck_assert(same_double(back.tol, 123456789.123456789));
    ck_assert(signbit(back.histogram_s));
    ck_assert_ptr_null(back.results[1].labels.path);
    ck_assert_ptr_null(back.results[1].swatch.path);

    write_ok(second, &back);
    expect_same_file(first, second);
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
}
END_TEST

START_TEST(test_round_trip_error_and_nulls)
{
    const char *dir = tu_fresh_dir("summary_roundtrip_err");
    char first[4096], second[4096];
    snprintf(first, sizeof first, "%s/first.json", dir);
    snprintf(second, sizeof second, "%s/second.json", dir);
    kmq_summary s, back = {0};
    make_failed(&s, "bad.jpg");
    free(s.job);
    s.job = NULL; /* kmq quantize: no job */
    free(s.identity);
    s.identity = NULL;
    write_ok(first, &s);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_read(first, &back, &err), KMQ_OK);
    ck_assert(!back.ok);
    ck_assert_str_eq(back.error_code, "decode_failed");
    ck_assert_ptr_null(back.job);
    ck_assert_ptr_null(back.identity);
    ck_assert_ptr_null(back.format);
    ck_assert_uint_eq(back.nresults, 0);
    ck_assert(!back.has_elbow);
    write_ok(second, &back);
    expect_same_file(first, second);
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
}
END_TEST

/* inf / NaN never reach the file: null, read back as NaN, stable on rewrite. */
START_TEST(test_nonfinite_written_as_null)
{
    const char *dir = tu_fresh_dir("summary_nonfinite");
    char first[4096], second[4096];
    snprintf(first, sizeof first, "%s/first.json", dir);
    snprintf(second, sizeof second, "%s/second.json", dir);
    kmq_summary s, back = {0};
    make_full(&s);
    s.results[0].ratio_vs_raw = INFINITY;
    s.results[0].ratio_vs_input = NAN;
    s.results[1].restart_inertia[0] = -INFINITY;
    write_ok(first, &s);
    json_t *j = load_json(first);
    expect_null(j, "results[0].compression.ratio_vs_raw");
    expect_null(j, "results[0].compression.ratio_vs_input");
    expect_null(j, "results[1].restarts.inertia[0]");
    json_decref(j);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_read(first, &back, &err), KMQ_OK);
    ck_assert(isnan(back.results[0].ratio_vs_raw));
    ck_assert(isnan(back.results[1].restart_inertia[0]));
    write_ok(second, &back);
    expect_same_file(first, second);
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
}
END_TEST

/* Bytes that are not UTF-8 become U+FFFD; the rest of the name is kept. */
START_TEST(test_invalid_utf8_replaced)
{
    const char *dir = tu_fresh_dir("summary_utf8");
    kmq_summary s, back = {0};
    make_full(&s);
    free(s.rel);
    s.rel = dup_str("caf\xc3\xa9/\xff\xfex.png"); /* valid é, then two stray bytes */
    write_ok(path_in(dir, "summary.json"), &s);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_read(path_in(dir, "summary.json"), &back, &err), KMQ_OK);
    ck_assert_str_eq(back.rel, "caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbdx.png");
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
}
END_TEST

START_TEST(test_seed_beyond_json_range)
{
    const char *dir = tu_fresh_dir("summary_bigseed");
    kmq_summary s;
    make_full(&s);
    s.seed = UINT64_MAX;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_write(path_in(dir, "summary.json"), &s, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "seed"));
    size_t len;
    ck_assert_ptr_null(tu_read_file(path_in(dir, "summary.json"), &len));
    kmq_summary_clear(&s);
}
END_TEST

/* ---- error form ---------------------------------------------------------- */

START_TEST(test_error_form)
{
    const char *dir = tu_fresh_dir("summary_error");
    kmq_summary s;
    make_failed(&s, "bad.jpg"); /* still carries results and an elbow in memory */
    write_ok(path_in(dir, "summary.json"), &s);
    json_t *j = load_json(path_in(dir, "summary.json"));
    expect_str(j, "status", "error");
    static const char *const error[] = {"code", "message", NULL};
    expect_keys(j, "error", error);
    expect_str(j, "error.code", "decode_failed");
    expect_str(j, "error.message", "truncated JPEG: premature end of data");
    /* What is known is written; what is not is null. */
    expect_str(j, "input.path", "/data/in/photos/a.jpg");
    expect_str(j, "input.rel", "bad.jpg");
    expect_int(j, "input.bytes", 123456);
    expect_null(j, "input.format");
    expect_null(j, "input.width");
    expect_null(j, "input.pixels");
    expect_str(j, "config.job", "photos");
    expect_array_len(j, "config.k", 2);
    expect_str(j, "config.hash", "0123456789abcdef");
    expect_array_len(j, "results", 0);
    expect_str(j, "elbow.method", "kneedle");
    expect_null(j, "elbow.k");
    expect_real(j, "seconds.total", 0.5);
    json_decref(j);
    kmq_summary_clear(&s);
}
END_TEST

/* ---- read rejects ---------------------------------------------------------- */

static void expect_read_fails(const char *path, kmq_status want, const char *words)
{
    kmq_summary out, zero;
    memset(&out, 0, sizeof out);
    memset(&zero, 0, sizeof zero);
    kmq_err err = {0};
    kmq_status st = kmq_summary_read(path, &out, &err);
    ck_assert_msg(st == want, "read %s: status %d, want %d (%s)", path, st, want, err.msg);
    ck_assert_int_eq(err.code, want);
    ck_assert_msg(strstr(err.msg, words) != NULL, "message \"%s\" lacks \"%s\"", err.msg, words);
    if (want == KMQ_E_DECODE)
        ck_assert_str_eq(err.where, path);     /* the refusal names the file */
    ck_assert_mem_eq(&out, &zero, sizeof out); /* untouched on failure */
}

START_TEST(test_read_missing_file)
{
    const char *dir = tu_fresh_dir("summary_missing");
    expect_read_fails(path_in(dir, "nope.json"), KMQ_E_NOT_FOUND, "");
}
END_TEST

START_TEST(test_read_not_json)
{
    const char *dir = tu_fresh_dir("summary_notjson");
    tu_write_file(path_in(dir, "summary.json"), "{\"schema\": 1,", 13);
    expect_read_fails(path_in(dir, "summary.json"), KMQ_E_DECODE, "JSON");
    tu_write_file(path_in(dir, "summary.json"), "[1, 2]\n", 7);
    expect_read_fails(path_in(dir, "summary.json"), KMQ_E_DECODE, "not an object");
}
END_TEST

/* Writes a valid summary, changes one field with jansson, reads it back. */
static void mutate_and_expect(const char *parent, const char *key, json_t *replacement,
                              const char *words)
{
    const char *dir = tu_fresh_dir("summary_mutate");
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    kmq_summary s;
    make_full(&s);
    write_ok(path, &s);
    kmq_summary_clear(&s);
    json_t *j = load_json(path);
    json_t *o = parent[0] ? must(j, parent) : j;
    if (replacement)
        ck_assert_int_eq(json_object_set_new(o, key, replacement), 0);
    else
        ck_assert_int_eq(json_object_del(o, key), 0);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    expect_read_fails(path, KMQ_E_DECODE, words);
}

START_TEST(test_read_schema_2)
{
    mutate_and_expect("", "schema", json_integer(2), "schema 2");
}
END_TEST

START_TEST(test_read_missing_fields)
{
    mutate_and_expect("", "schema", NULL, "\"schema\" is missing");
    mutate_and_expect("", "input", NULL, "\"input\" is missing");
    mutate_and_expect("config", "seed", NULL, "\"config.seed\" is missing");
    mutate_and_expect("input", "unique_colors", NULL, "\"input.unique_colors\" is missing");
    mutate_and_expect("results[1]", "psnr_db", NULL, "\"results[1].psnr_db\" is missing");
    mutate_and_expect("results[0].palette[1]", "hex", NULL,
                      "\"results[0].palette[1].hex\" is missing");
    mutate_and_expect("results[0].files.indexed", "bits_per_pixel", NULL,
                      "\"results[0].files.indexed.bits_per_pixel\" is missing");
    mutate_and_expect("results[0].restarts", "inertia", NULL,
                      "\"results[0].restarts.inertia\" is missing");
    mutate_and_expect("elbow", "k", NULL, "\"elbow.k\" is missing");
    mutate_and_expect("seconds", "total", NULL, "\"seconds.total\" is missing");
}
END_TEST

/* Summaries written before config.identity existed still read (NULL). */
START_TEST(test_read_without_identity)
{
    const char *dir = tu_fresh_dir("summary_no_identity");
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    kmq_summary s, back = {0};
    make_full(&s);
    write_ok(path, &s);
    json_t *j = load_json(path);
    ck_assert_int_eq(json_object_del(must(j, "config"), "identity"), 0);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_read(path, &back, &err), KMQ_OK);
    ck_assert_ptr_null(back.identity);
    ck_assert_str_eq(back.hash, s.hash);
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
    mutate_and_expect("config", "identity", json_integer(1),
                      "\"config.identity\" is not a string or null");
}
END_TEST

START_TEST(test_read_wrong_types)
{
    mutate_and_expect("config", "seed", json_string("42"), "\"config.seed\" is not an integer");
    mutate_and_expect("config", "seed", json_integer(-1), "config.seed = -1 is below 0");
    mutate_and_expect("results[0]", "inertia", json_string("0.1"),
                      "\"results[0].inertia\" is not a number");
    mutate_and_expect("results[0]", "converged", json_integer(1), "\"results[0].converged\"");
    mutate_and_expect("", "status", json_string("done"), "\"status\"");
    mutate_and_expect("results[0].palette[1]", "hex", json_string("#ABCDEF"), "#abcdef");
    mutate_and_expect("results[0].restarts", "count", json_integer(4),
                      "\"results[0].restarts.inertia\" has 3 entries");
    mutate_and_expect("results[0]", "k_effective", json_integer(3),
                      "\"results[0].palette\" has 4 entries but k_effective is 3");
}
END_TEST

/* ---- read refuses values out of range ---------------------------------------- */

/* The summary of make_full after `edit` changed its JSON tree: the reader
 * must refuse it with KMQ_E_DECODE, where = the file and `words` in the
 * message. */
static void edit_and_expect(void (*edit)(json_t *root), const char *words)
{
    const char *dir = tu_fresh_dir("summary_edit");
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    kmq_summary s;
    make_full(&s);
    write_ok(path, &s);
    kmq_summary_clear(&s);
    json_t *j = load_json(path);
    edit(j);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    expect_read_fails(path, KMQ_E_DECODE, words);
}

/* The text of make_full's summary with the first `from` replaced by `to`
 * (for values jansson would never write, such as 1e999 or NaN). */
static void replace_and_expect(const char *from, const char *to, const char *words)
{
    const char *dir = tu_fresh_dir("summary_replace");
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    kmq_summary s;
    make_full(&s);
    write_ok(path, &s);
    kmq_summary_clear(&s);
    size_t len;
    char *text = (char *)tu_read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "%s not in the summary", from);
    size_t head = (size_t)(at - text), tail = len - head - strlen(from);
    char *edited = alloc_zero(len + strlen(to) + 1, 1);
    memcpy(edited, text, head);
    memcpy(edited + head, to, strlen(to));
    memcpy(edited + head + strlen(to), at + strlen(from), tail);
    tu_write_file(path, edited, head + strlen(to) + tail);
    free(edited);
    free(text);
    expect_read_fails(path, KMQ_E_DECODE, words);
}

/* The crash of issue "Hostile files and run records that lie": 2^53 + 1 is
 * not a double, and the report looked results up by (size_t)(double)k. */
START_TEST(test_read_refuses_k_out_of_range)
{
    mutate_and_expect("results[0]", "k", json_integer(9007199254740993LL),
                      "results[0].k = 9007199254740993 is outside 1..256");
    mutate_and_expect("results[0]", "k", json_integer(0), "results[0].k = 0 is outside 1..256");
    mutate_and_expect("results[1]", "k", json_integer(257), "results[1].k = 257 is outside 1..256");
    mutate_and_expect("results[0]", "k", json_integer(-4), "results[0].k = -4 is outside 1..256");
    mutate_and_expect("results[0]", "k_effective", json_integer(0),
                      "results[0].k_effective = 0 is outside 1..256");
    mutate_and_expect("results[0]", "k_effective", json_integer(5),
                      "results[0].k_effective = 5 exceeds results[0].k = 4");
    mutate_and_expect("input", "unique_colors", json_integer(3),
                      "results[0].k_effective = 4 exceeds input.unique_colors = 3");
    mutate_and_expect("elbow", "k", json_integer(8), "elbow.k = 8 is not the k of any result");
    mutate_and_expect("elbow", "k", json_integer(9007199254740993LL),
                      "elbow.k = 9007199254740993 is outside 1..256");
}
END_TEST

static void swap_results(json_t *root)
{
    json_t *results = json_object_get(root, "results");
    json_t *first = json_incref(json_array_get(results, 0));
    ck_assert_int_eq(json_array_remove(results, 0), 0);
    ck_assert_int_eq(json_array_append_new(results, first), 0);
}

static void config_k_descending(json_t *root)
{
    json_t *ks = json_pack("[ii]", 16, 4);
    ck_assert_int_eq(json_object_set_new(json_object_get(root, "config"), "k", ks), 0);
}

static void config_k_other(json_t *root)
{
    json_t *ks = json_pack("[ii]", 4, 8);
    ck_assert_int_eq(json_object_set_new(json_object_get(root, "config"), "k", ks), 0);
}

static void config_k_shorter(json_t *root)
{
    json_t *ks = json_pack("[i]", 4);
    ck_assert_int_eq(json_object_set_new(json_object_get(root, "config"), "k", ks), 0);
}

static void config_k_too_long(json_t *root)
{
    json_t *ks = json_array();
    for (int k = 1; k <= 300; k++)
        ck_assert_int_eq(json_array_append_new(ks, json_integer(k)), 0);
    ck_assert_int_eq(json_object_set_new(json_object_get(root, "config"), "k", ks), 0);
}

static void results_too_long(json_t *root)
{
    json_t *results = json_object_get(root, "results");
    while (json_array_size(results) < 257)
        ck_assert_int_eq(json_array_append_new(results, json_object()), 0);
}

static void palette_one_short(json_t *root)
{
    json_t *pal = json_object_get(json_array_get(json_object_get(root, "results"), 0), "palette");
    ck_assert_int_eq(json_array_remove(pal, 3), 0);
}

START_TEST(test_read_refuses_inconsistent_results)
{
    edit_and_expect(swap_results, "results[1].k = 4 is not above results[0].k = 16");
    edit_and_expect(config_k_descending, "config.k[1] = 4 is not above config.k[0] = 16");
    mutate_and_expect("results[1]", "k", json_integer(2),
                      "results[1].k = 2 is not above results[0].k = 4");
    edit_and_expect(config_k_other, "results[1].k = 16 is not config.k[1] = 8");
    edit_and_expect(config_k_shorter, "results has 2 entries but config.k has 1");
    edit_and_expect(config_k_too_long, "config.k has 300 entries, more than 256");
    edit_and_expect(results_too_long, "results has 257 entries, more than 256");
    edit_and_expect(palette_one_short, "\"results[0].palette\" has 3 entries but k_effective is 4");
    mutate_and_expect("config", "k", json_pack("[i, i]", 4, 300),
                      "config.k[1] = 300 is outside 1..256");
    mutate_and_expect("", "results", json_array(), "results has 0 entries but config.k has 2");
}
END_TEST

START_TEST(test_read_refuses_restarts_mismatch)
{
    mutate_and_expect("results[0].restarts", "count", json_integer(4),
                      "\"results[0].restarts.inertia\" has 3 entries but restarts.count is 4");
    mutate_and_expect("results[0].restarts", "count", json_integer(0),
                      "results[0].restarts.count = 0 is outside 1..2147483647");
    mutate_and_expect("results[0].restarts", "count", json_integer(-1),
                      "results[0].restarts.count = -1 is outside 1..2147483647");
    mutate_and_expect("results[0].restarts", "best", json_integer(3),
                      "results[0].restarts.best = 3 is outside 0..2");
    mutate_and_expect("results[0].restarts", "best", json_integer(-1),
                      "results[0].restarts.best = -1 is outside 0..2");
    mutate_and_expect("results[0].restarts", "inertia", json_pack("[f, s, f]", 1.0, "x", 2.0),
                      "\"results[0].restarts.inertia[1]\" is not a number or null");
    mutate_and_expect("results[0].restarts", "inertia", json_pack("[f, f, f]", 1.0, 2.0, -3.0),
                      "results[0].restarts.inertia[2] = -3 is below 0");
    mutate_and_expect("config", "restarts", json_integer(0),
                      "config.restarts = 0 is outside 1..2147483647");
}
END_TEST

/* Numbers that are not finite never reach a summary (they are written as
 * null, and only where that is allowed); wrong types and negative values
 * are refused with the field named. */
START_TEST(test_read_refuses_nonfinite_and_types)
{
    replace_and_expect("\"inertia\": 0.10000000000000001", "\"inertia\": 1e999", "JSON");
    replace_and_expect("\"inertia\": 0.10000000000000001", "\"inertia\": NaN", "JSON");
    replace_and_expect("\"inertia\": 0.10000000000000001", "\"inertia\": -Infinity", "JSON");
    replace_and_expect("\"k\": 4,", "\"k\": 4.0,", "\"results[0].k\" is not an integer");
    replace_and_expect("\"k\": 4,", "\"k\": 1e300,", "\"results[0].k\" is not an integer");
    replace_and_expect("\"k\": 4,", "\"k\": 99999999999999999999,", "JSON");
    mutate_and_expect("results[0]", "inertia", json_null(),
                      "\"results[0].inertia\" is not a number");
    mutate_and_expect("results[0]", "mse", json_real(-1.0), "results[0].mse = -1 is below 0");
    mutate_and_expect("results[0]", "mse_output", json_true(),
                      "\"results[0].mse_output\" is not a number");
    mutate_and_expect("results[0]", "psnr_db", json_string("27"),
                      "\"results[0].psnr_db\" is not a number or null");
    mutate_and_expect("results[0]", "iterations", json_integer(-1),
                      "results[0].iterations = -1 is outside 0..2147483647");
    mutate_and_expect("results[0]", "iterations", json_integer(1LL << 40),
                      "results[0].iterations = 1099511627776 is outside 0..2147483647");
    mutate_and_expect("results[0].compression", "raw_bytes", json_integer(-5),
                      "results[0].compression.raw_bytes = -5 is below 0");
    mutate_and_expect("results[0].compression", "ratio_vs_raw", json_real(-2.5),
                      "results[0].compression.ratio_vs_raw = -2.5 is below 0");
    mutate_and_expect("results[0].seconds", "fit", json_real(-0.5),
                      "results[0].seconds.fit = -0.5 is below 0");
    mutate_and_expect("results[0].palette[2]", "pixels", json_integer(307201),
                      "results[0].palette[2].pixels = 307201 exceeds input.pixels = 307200");
    mutate_and_expect("results[0].files.indexed", "path", json_string("../../etc/passwd"),
                      "\"results[0].files.indexed.path\" is not a file name inside");
    mutate_and_expect("results[0].files.labels", "path", json_string(""),
                      "\"results[0].files.labels.path\" is not a file name inside");
    mutate_and_expect("results[0].files.indexed", "bits_per_pixel", json_integer(3),
                      "results[0].files.indexed.bits_per_pixel = 3 is not 1, 2, 4 or 8");
    mutate_and_expect("results[0].files.indexed", "bits_per_pixel", json_integer(16),
                      "results[0].files.indexed.bits_per_pixel = 16 is outside 1..8");
    mutate_and_expect("input", "pixels", json_integer(5),
                      "input.pixels = 5 is not input.width x input.height = 640 x 480 = 307200");
    mutate_and_expect("input", "width", json_null(), "input.width is 0 or null although status");
    mutate_and_expect("input", "width", json_integer(1LL << 32),
                      "input.width = 4294967296 is outside 0..4294967295");
    mutate_and_expect("input", "bands", json_integer(-3), "input.bands = -3 is outside 0..");
    mutate_and_expect("config", "tol", json_null(), "\"config.tol\" is not a number");
    mutate_and_expect("config", "init", json_string("kmeans"),
                      "\"config.init\" is neither \"kmeans++\" nor \"random\"");
    mutate_and_expect("config", "hash", json_string("0123456789ABCDEF"),
                      "\"config.hash\" is not 16 lowercase hex digits");
    mutate_and_expect("config", "threads", json_integer(-2),
                      "config.threads = -2 is outside 0..2147483647");
    mutate_and_expect("seconds", "total", json_real(-1.0), "seconds.total = -1 is below 0");
    mutate_and_expect("seconds", "histogram", json_string("0.5"),
                      "\"seconds.histogram\" is not a number or null");
}
END_TEST

/* A summary at the edges of every range reads back and rewrites to the same
 * bytes: the checks refuse nothing kmq writes. */
START_TEST(test_round_trip_at_limits)
{
    const char *dir = tu_fresh_dir("summary_limits");
    char first[4096], second[4096];
    snprintf(first, sizeof first, "%s/first.json", dir);
    snprintf(second, sizeof second, "%s/second.json", dir);
    kmq_summary s, back = {0};
    make_full(&s);
    s.width = UINT32_MAX;
    s.height = 1;
    s.pixels = UINT32_MAX;
    s.unique_colors = (uint64_t)1 << 24;
    s.seed = (uint64_t)INT64_MAX;
    s.threads = 0;
    s.tol = 0.0;
    s.k[0] = 1;
    s.k[1] = KMQ_MAX_K;
    kmq_k_result *r = &s.results[0];
    r->k = 1;
    r->k_effective = 1;
    r->iterations = 0;
    r->restarts = 1;
    r->best_restart = 0;
    r->restart_inertia[0] = 0.0;
    r->palette[0].pixels = s.pixels;
    r->indexed.bits_per_pixel = 1;
    r->inertia = r->mse = r->mse_output = 0.0;
    r = &s.results[1];
    r->k = KMQ_MAX_K;
    r->best_restart = 2;
    r->indexed.bits_per_pixel = 8;
    s.elbow_k = KMQ_MAX_K;
    s.histogram_s = s.total_s = 0.0;
    write_ok(first, &s);

    kmq_err err = {0};
    ck_assert_msg(kmq_summary_read(first, &back, &err) == KMQ_OK, "%s", err.msg);
    expect_same_summary(&s, &back);
    write_ok(second, &back);
    expect_same_file(first, second);
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
}
END_TEST

/* ---- run.json and elbow.csv -------------------------------------------------- */

typedef struct run_fixture {
    kmq_summary s[3];
    kmq_run_image images[3];
    kmq_run_info info;
} run_fixture;

/* Three images: job "a" (one ok with a comma and quotes in its rel path, one
 * failed) and job "b" (one ok). */
static void make_run(run_fixture *f)
{
    make_full(&f->s[0]);
    free(f->s[0].job);
    f->s[0].job = dup_str("a");
    free(f->s[0].rel);
    f->s[0].rel = dup_str("photos/a,\"b\".png");
    make_failed(&f->s[1], "bad.jpg");
    free(f->s[1].job);
    f->s[1].job = dup_str("a");
    make_full(&f->s[2]);
    free(f->s[2].job);
    f->s[2].job = dup_str("b");
    free(f->s[2].rel);
    f->s[2].rel = dup_str("c.png");
    f->images[0] = (kmq_run_image){"a/photos/a,\"b\".png", &f->s[0]};
    f->images[1] = (kmq_run_image){"a/bad.jpg", &f->s[1]};
    f->images[2] = (kmq_run_image){"b/c.png", &f->s[2]};
    f->info =
        (kmq_run_info){"failures", "/jobs/demo.ini", 4, 12.5, "2024-05-01T10:00:00Z", NULL, 0, 0.0};
}

static void clear_run(run_fixture *f)
{
    for (int i = 0; i < 3; i++)
        kmq_summary_clear(&f->s[i]);
}

static const char expected_csv[] =
    "job,image,k,inertia,mse,psnr_db,iterations,seconds,k_effective,mse_output,png_bytes,"
    "ratio_vs_input,image_seconds\n"
    "a,\"photos/a,\"\"b\"\".png\",4,0.10000000000000001,0.33333333333333331,27.25,17,0.375,"
    "4,0.5,1000,123.456,2.75\n"
    "a,\"photos/a,\"\"b\"\".png\",16,1e-300,123456789.12345679,,300,1.75,"
    "3,0.0,2000,61.728000000000002,2.75\n"
    "b,c.png,4,0.10000000000000001,0.33333333333333331,27.25,17,0.375,4,0.5,1000,123.456,2.75\n"
    "b,c.png,16,1e-300,123456789.12345679,,300,1.75,3,0.0,2000,61.728000000000002,2.75\n";

static void expect_csv(const char *dir)
{
    size_t len;
    unsigned char *csv = tu_read_file(path_in(dir, "elbow.csv"), &len);
    ck_assert_ptr_nonnull(csv);
    ck_assert_uint_eq(len, strlen(expected_csv));
    ck_assert_str_eq((char *)csv, expected_csv);
    free(csv);
}

START_TEST(test_run_json_and_csv)
{
    const char *dir = tu_fresh_dir("summary_run");
    run_fixture f;
    make_run(&f);
    kmq_err err = {0};
    ck_assert_msg(kmq_run_write(dir, &f.info, f.images, 3, &err) == KMQ_OK, "%s", err.msg);

    json_t *j = load_json(path_in(dir, "run.json"));
    static const char *const top[] = {"schema",  "kmq_version", "status",  "job_file",
                                      "threads", "started_utc", "seconds", "totals",
                                      "images",  "jobs",        NULL};
    expect_keys(j, "", top);
    expect_int(j, "schema", 1);
    expect_str(j, "status", "failures");
    expect_str(j, "job_file", "/jobs/demo.ini");
    expect_int(j, "threads", 4);
    expect_str(j, "started_utc", "2024-05-01T10:00:00Z");
    expect_real(j, "seconds.wall", 12.5);
    expect_real(j, "seconds.images_total", 2.75 + 0.5 + 2.75);
    static const char *const totals[] = {"images", "ok", "failed", "not_done", "pixels", NULL};
    expect_keys(j, "totals", totals);
    expect_int(j, "totals.images", 3);
    expect_int(j, "totals.ok", 2);
    expect_int(j, "totals.failed", 1);
    expect_int(j, "totals.pixels", 2 * 307200);

    expect_array_len(j, "images", 3);
    static const char *const image[] = {"job",         "path",    "rel",     "dir",
                                        "status",      "error",   "pixels",  "k",
                                        "k_effective", "elbow_k", "seconds", NULL};
    expect_keys(j, "images[0]", image);
    expect_keys(j, "images[1]", image);
    expect_str(j, "images[0].job", "a");
    expect_str(j, "images[0].rel", "photos/a,\"b\".png");
    expect_str(j, "images[0].dir", "a/photos/a,\"b\".png");
    expect_str(j, "images[0].status", "ok");
    expect_null(j, "images[0].error");
    expect_int(j, "images[0].pixels", 307200);
    expect_int(j, "images[0].k[1]", 16);
    expect_int(j, "images[0].k_effective[1]", 3);
    expect_int(j, "images[0].elbow_k", 4);
    expect_real(j, "images[0].seconds", 2.75);
    expect_str(j, "images[1].status", "error");
    expect_str(j, "images[1].error.code", "decode_failed");
    expect_str(j, "images[1].path", "/data/in/photos/a.jpg");
    expect_null(j, "images[1].pixels");
    expect_array_len(j, "images[1].k", 0);
    expect_null(j, "images[1].elbow_k");
    expect_str(j, "images[2].job", "b");

    expect_array_len(j, "jobs", 2);
    static const char *const job[] = {"name", "images", "ok", "failed", NULL};
    expect_keys(j, "jobs[0]", job);
    expect_str(j, "jobs[0].name", "a");
    expect_int(j, "jobs[0].images", 2);
    expect_int(j, "jobs[0].ok", 1);
    expect_int(j, "jobs[0].failed", 1);
    expect_str(j, "jobs[1].name", "b");
    expect_int(j, "jobs[1].images", 1);
    expect_int(j, "jobs[1].ok", 1);
    expect_int(j, "jobs[1].failed", 0);
    json_decref(j);

    /* Header + one row per (ok image, k); the failed image has no row. */
    expect_csv(dir);
    clear_run(&f);
}
END_TEST

/* The CSV's numbers are the summary's numbers, character for character. */
START_TEST(test_csv_agrees_with_summary)
{
    const char *dir = tu_fresh_dir("summary_csv_agree");
    kmq_summary s;
    make_full(&s);
    write_ok(path_in(dir, "summary.json"), &s);
    size_t len;
    char *text = (char *)tu_read_file(path_in(dir, "summary.json"), &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"inertia\": 0.10000000000000001,"));
    ck_assert_ptr_nonnull(strstr(text, "\"mse\": 0.33333333333333331,"));
    ck_assert_ptr_nonnull(strstr(text, "\"inertia\": 1e-300,"));
    ck_assert_ptr_nonnull(strstr(text, "\"mse\": 123456789.12345679,"));
    free(text);
    kmq_summary_clear(&s);
}
END_TEST

START_TEST(test_run_empty)
{
    const char *dir = tu_fresh_dir("summary_run_empty");
    kmq_run_info info = {"complete", NULL, 1, 0.0, NULL, NULL, 0, 0.0};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_run_write(dir, &info, NULL, 0, &err), KMQ_OK);
    json_t *j = load_json(path_in(dir, "run.json"));
    expect_null(j, "job_file");
    expect_null(j, "started_utc");
    expect_int(j, "totals.images", 0);
    expect_int(j, "totals.pixels", 0);
    expect_array_len(j, "images", 0);
    expect_array_len(j, "jobs", 0);
    json_decref(j);
    size_t len;
    unsigned char *csv = tu_read_file(path_in(dir, "elbow.csv"), &len);
    ck_assert_ptr_nonnull(csv);
    ck_assert_str_eq((char *)csv,
                     "job,image,k,inertia,mse,psnr_db,iterations,seconds,k_effective,mse_output,"
                     "png_bytes,ratio_vs_input,image_seconds\n");
    free(csv);
}
END_TEST

/* ---- run.json read back -------------------------------------------------- */

static void expect_run_read_fails(const char *path, const char *words)
{
    kmq_run_facts out, zero;
    memset(&out, 0, sizeof out);
    memset(&zero, 0, sizeof zero);
    kmq_err err = {0};
    kmq_status st = kmq_run_info_read(path, &out, &err);
    ck_assert_msg(st == KMQ_E_DECODE, "status %d (%s)", st, err.msg);
    ck_assert_msg(strstr(err.msg, words) != NULL, "message \"%s\" lacks \"%s\"", err.msg, words);
    ck_assert_str_eq(err.where, path);
    ck_assert_mem_eq(&out, &zero, sizeof out);
}

/* run.json of make_run with `key` of object `parent` ("" for the top)
 * replaced (NULL: removed). */
static void run_mutate_and_expect(const char *parent, const char *key, json_t *replacement,
                                  const char *words)
{
    const char *dir = tu_fresh_dir("summary_run_mutate");
    char path[4096];
    snprintf(path, sizeof path, "%s/run.json", dir);
    run_fixture f;
    make_run(&f);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_run_write(dir, &f.info, f.images, 3, &err), KMQ_OK);
    clear_run(&f);
    json_t *j = load_json(path);
    json_t *o = parent[0] ? must(j, parent) : j;
    if (replacement)
        ck_assert_int_eq(json_object_set_new(o, key, replacement), 0);
    else
        ck_assert_int_eq(json_object_del(o, key), 0);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    expect_run_read_fails(path, words);
}

START_TEST(test_run_info_read)
{
    const char *dir = tu_fresh_dir("summary_run_read");
    run_fixture f;
    make_run(&f);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_run_write(dir, &f.info, f.images, 3, &err), KMQ_OK);
    kmq_run_facts facts = {0};
    ck_assert_msg(kmq_run_info_read(path_in(dir, "run.json"), &facts, &err) == KMQ_OK, "%s",
                  err.msg);
    ck_assert_str_eq(facts.status, "failures");
    ck_assert_str_eq(facts.job_file, "/jobs/demo.ini");
    ck_assert_int_eq(facts.threads, 4);
    ck_assert(same_double(facts.wall_s, 12.5));
    ck_assert_str_eq(facts.started_utc, "2024-05-01T10:00:00Z");
    kmq_run_facts_clear(&facts);
    clear_run(&f);

    run_mutate_and_expect("", "threads", json_integer(-1), "threads = -1 is outside 0..2147483647");
    run_mutate_and_expect("", "threads", json_integer(9007199254740993LL),
                          "threads = 9007199254740993 is outside 0..2147483647");
    run_mutate_and_expect("", "threads", json_string("4"), "\"threads\" is not an integer");
    run_mutate_and_expect("", "status", json_string("done"), "\"status\" is not \"complete\"");
    run_mutate_and_expect("", "job_file", json_integer(1), "\"job_file\" is not a string or null");
    run_mutate_and_expect("", "started_utc", json_string("yesterday"),
                          "\"started_utc\" is not a UTC time");
    run_mutate_and_expect("seconds", "wall", json_real(-3.0), "seconds.wall = -3 is below 0");
    run_mutate_and_expect("seconds", "wall", json_string("12"),
                          "\"seconds.wall\" is not a number or null");
    run_mutate_and_expect("", "seconds", NULL, "\"seconds\" is missing");
    run_mutate_and_expect("", "schema", json_integer(2), "\"schema\" is not 1");

    dir = tu_fresh_dir("summary_run_read_array");
    tu_write_file(path_in(dir, "run.json"), "[1]\n", 4);
    expect_run_read_fails(path_in(dir, "run.json"), "not an object");
}
END_TEST

/* ---- locale independence -------------------------------------------------- */

START_TEST(test_numbers_ignore_locale)
{
    const char *dir = tu_fresh_dir("summary_locale");
    char c_path[4096], de_path[4096];
    snprintf(c_path, sizeof c_path, "%s/c.json", dir);
    snprintf(de_path, sizeof de_path, "%s/de.json", dir);
    kmq_summary s, back = {0};
    make_full(&s);
    write_ok(c_path, &s);

    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
        fprintf(stderr, "test_numbers_ignore_locale: de_DE.UTF-8 missing, skipped\n");
        kmq_summary_clear(&s);
        return;
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 0.5);
    ck_assert_str_eq(probe, "0,5"); /* the locale really is active */

    write_ok(de_path, &s);
    expect_same_file(c_path, de_path);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_summary_read(de_path, &back, &err), KMQ_OK);
    expect_same_summary(&s, &back);

    run_fixture f;
    make_run(&f);
    ck_assert_int_eq(kmq_run_write(dir, &f.info, f.images, 3, &err), KMQ_OK);
    expect_csv(dir);
    json_t *j = load_json(path_in(dir, "run.json"));
    expect_real(j, "seconds.wall", 12.5);
    json_decref(j);

    setlocale(LC_NUMERIC, "C");
    clear_run(&f);
    kmq_summary_clear(&back);
    kmq_summary_clear(&s);
}
END_TEST

/* ---- allocation failure sweeps --------------------------------------------- */

#define SWEEP_LIMIT 100000

/* Whether a failed call under the allocation hook failed cleanly. fsx
 * reports an allocation failure while syncing the folder after the rename
 * as KMQ_E_WRITE with strerror(ENOMEM) (the file is already in place); that
 * is accepted as an out-of-memory failure until fsx maps it to
 * KMQ_E_NOMEM. Returns true when the target must not have been replaced. */
static bool nomem_failure(long n, kmq_status st, const kmq_err *err)
{
    if (st == KMQ_E_WRITE && strstr(err->msg, strerror(ENOMEM)) != NULL)
        return false;
    ck_assert_msg(st == KMQ_E_NOMEM, "n = %ld: status %d (%s)", n, st, err->msg);
    ck_assert_int_eq(err->code, KMQ_E_NOMEM);
    return true;
}

static void expect_no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        ck_assert_msg(strncmp(e->d_name, KMQ_FSX_TMP_PREFIX, strlen(KMQ_FSX_TMP_PREFIX)) != 0,
                      "temporary file %s left behind", e->d_name);
    closedir(d);
}

START_TEST(test_nomem_sweep_read)
{
    const char *dir = tu_fresh_dir("summary_nomem_read");
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    kmq_summary s, zero;
    memset(&zero, 0, sizeof zero);
    make_full(&s);
    write_ok(path, &s);

    long n;
    for (n = 0; n < SWEEP_LIMIT; n++) {
        kmq_summary out = {0};
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        kmq_status st = kmq_summary_read(path, &out, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            expect_same_summary(&s, &out);
            kmq_summary_clear(&out);
            break;
        }
        ck_assert_msg(st == KMQ_E_NOMEM, "n = %ld: status %d (%s)", n, st, err.msg);
        ck_assert_int_eq(err.code, KMQ_E_NOMEM);
        ck_assert_mem_eq(&out, &zero, sizeof out);
    }
    ck_assert_msg(n > 3 && n < SWEEP_LIMIT, "read succeeded after %ld failures", n);
    kmq_summary_clear(&s);
}
END_TEST

START_TEST(test_nomem_sweep_write)
{
    const char *dir = tu_fresh_dir("summary_nomem_write");
    char ref[4096], path[4096];
    snprintf(ref, sizeof ref, "%s/ref.json", dir);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    kmq_summary s;
    make_full(&s);
    write_ok(ref, &s);

    long n;
    for (n = 0; n < SWEEP_LIMIT; n++) {
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        kmq_status st = kmq_summary_write(path, &s, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK)
            break;
        if (nomem_failure(n, st, &err)) {
            size_t len;
            ck_assert_ptr_null(tu_read_file(path, &len));
        }
        expect_no_temp_files(dir);
    }
    ck_assert_msg(n > 3 && n < SWEEP_LIMIT, "write succeeded after %ld failures", n);
    expect_same_file(ref, path);
    kmq_summary_clear(&s);
}
END_TEST

START_TEST(test_nomem_sweep_run_write)
{
    const char *ref_dir = tu_fresh_dir("summary_nomem_run_ref");
    run_fixture f;
    make_run(&f);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_run_write(ref_dir, &f.info, f.images, 3, &err), KMQ_OK);
    char ref_run[4096], ref_csv[4096];
    snprintf(ref_run, sizeof ref_run, "%s/run.json", ref_dir);
    snprintf(ref_csv, sizeof ref_csv, "%s/elbow.csv", ref_dir);

    const char *dir = tu_fresh_dir("summary_nomem_run");
    long n;
    for (n = 0; n < SWEEP_LIMIT; n++) {
        kmq_err e = {0};
        kmq_alloc_fail_after(n);
        kmq_status st = kmq_run_write(dir, &f.info, f.images, 3, &e);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK)
            break;
        nomem_failure(n, st, &e);
        expect_no_temp_files(dir);
    }
    ck_assert_msg(n > 3 && n < SWEEP_LIMIT, "run write succeeded after %ld failures", n);
    expect_same_file(ref_run, path_in(dir, "run.json"));
    expect_same_file(ref_csv, path_in(dir, "elbow.csv"));
    clear_run(&f);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"full_summary_fields", test_full_summary_fields},
        {"clear", test_clear_leaves_zeroed},
        {"round_trip", test_round_trip_identical},
        {"round_trip_error", test_round_trip_error_and_nulls},
        {"nonfinite", test_nonfinite_written_as_null},
        {"invalid_utf8", test_invalid_utf8_replaced},
        {"json_int_range", test_seed_beyond_json_range},
        {"error_form", test_error_form},
        {"read_missing_file", test_read_missing_file},
        {"read_not_json", test_read_not_json},
        {"read_schema_2", test_read_schema_2},
        {"read_missing_fields", test_read_missing_fields},
        {"read_without_identity", test_read_without_identity},
        {"read_wrong_types", test_read_wrong_types},
        {"read_k_out_of_range", test_read_refuses_k_out_of_range},
        {"read_inconsistent_results", test_read_refuses_inconsistent_results},
        {"read_restarts_mismatch", test_read_refuses_restarts_mismatch},
        {"read_nonfinite_and_types", test_read_refuses_nonfinite_and_types},
        {"round_trip_limits", test_round_trip_at_limits},
        {"run_info_read", test_run_info_read},
        {"run_json_and_csv", test_run_json_and_csv},
        {"csv_agrees_with_summary", test_csv_agrees_with_summary},
        {"run_empty", test_run_empty},
        {"locale", test_numbers_ignore_locale},
        {"nomem_read", test_nomem_sweep_read},
        {"nomem_write", test_nomem_sweep_write},
        {"nomem_run_write", test_nomem_sweep_run_write},
    };
    Suite *s = suite_create("summary");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
