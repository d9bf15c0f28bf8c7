/* report.c — run-level files rebuilt from the summaries on disk (layer L3).
 *
 * run.json, elbow.csv and index.html are never assembled from memory: both
 * `kmq run` (at its end) and `kmq report OUT` scan OUT for summary.json
 * files, read them, sort them by (job, rel) and hand them to the summary
 * module and to report_html.c. That is what makes a report rebuilt later,
 * or after several shards wrote into one output root, identical to the one
 * a single run writes. Without the run's own facts (`kmq report`), those of
 * the existing run.json are kept (threads, wall time, start, job file); its
 * status is recomputed from the summaries ("failures" when one failed or was
 * refused, else "complete"), except that "interrupted" is kept.
 *
 * Summaries that do not read back. kmq_summary_read checks every field
 * (summary_read.c); a summary.json it refuses (damaged, edited by hand,
 * crafted) is set aside: it is not counted as done, so it is in none of
 * run.json, elbow.csv and index.html, exactly as if the image had no
 * summary yet, and the next `kmq run` redoes that image. The caller is told
 * of each one (kmq_refused_fn: the file and the field); the run-level files
 * are written all the same, also when every summary was refused (then with
 * no image). `kmq report` names each refused file on stderr and exits 1,
 * since the collection it reports on is not complete; the rebuilt run.json
 * says "failures" then, though the refused images are in neither its totals
 * nor its image list. A run.json that does not read back only loses the
 * facts it held (reported the same way). Nothing read from a summary is
 * used as an index without a check, so even a summary that slipped past
 * the reader cannot crash the report.
 *
 * Collection-level elbow (run.json "jobs"[].elbow, method
 * "kneedle-mean-normalised"). Per job, over its ok images: take the k
 * values every image has; normalise each image's inertia over those k to
 * [0, 1] ((I - min) / (max - min), so 1 at the smallest k and 0 at the
 * largest; an image whose curve is flat, e.g. fewer colours than the
 * smallest k, is left out); average the normalised curves point by point,
 * so every image weighs the same whatever its size; and run Kneedle (S = 1,
 * as for single images) on (k, mean). Fewer than 3 common k values, or no
 * image left: no suggestion (k null). It suggests one k for a collection
 * whose images are alike; it says nothing about any one image.
 *
 * Serial; no parallel region.
 */
#include "kmq/outputs.h"
#include "kmq/runner.h"

#include "internal.h"
#include "kmq/elbow.h"
#include "kmq/fsx.h"
#include "report_internal.h"

#include <math.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct found_summary {
    char *dir; /* relative to the output root */
    kmq_summary summary;
    bool mode_known; /* the job's report key is known (a run, or kmq report with the job) */
    kmq_report_mode mode;
} found_summary;

typedef struct summary_set {
    found_summary *items;
    size_t n, cap;
    size_t refused;            /* summary.json files set aside */
    kmq_refused_fn on_refused; /* may be NULL */
    void *ctx;
} summary_set;

static void summary_set_clear(summary_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        kmq__free(set->items[i].dir);
        kmq_summary_clear(&set->items[i].summary);
    }
    kmq__free(set->items);
    memset(set, 0, sizeof *set);
}

static kmq_status add_summary(summary_set *set, const char *root, const char *rel_dir, kmq_err *err)
{
    char *dir = kmq_fsx_join(root, rel_dir);
    char *path = dir ? kmq_fsx_join(dir, KMQ_SUMMARY_JSON) : NULL;
    kmq_status st = KMQ_OK;
    if (!path) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        found_summary *items = kmq__realloc(set->items, cap, sizeof *items);
        if (!items) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        set->items = items;
        set->cap = cap;
    }
    found_summary *f = &set->items[set->n];
    memset(f, 0, sizeof *f);
    kmq_err read_err = {0};
    /* A summary that does not read back is not counted: it is not "done".
     * One that vanished since the folder was listed is simply gone. */
    kmq_status rst = kmq_summary_read(path, &f->summary, &read_err);
    if (rst != KMQ_OK) {
        kmq_summary_clear(&f->summary);
        if (rst == KMQ_E_NOMEM) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        } else if (rst != KMQ_E_NOT_FOUND) {
            kmq_err_where(&read_err, "%s", path);
            set->refused++;
            if (set->on_refused)
                set->on_refused(set->ctx, KMQ_RUN_FILE_SUMMARY, &read_err);
        }
        goto done;
    }
    f->dir = kmq__strdup(rel_dir);
    if (!f->dir) {
        kmq_summary_clear(&f->summary);
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    set->n++;
done:
    kmq__free(path);
    kmq__free(dir);
    return st;
}

/* Image folders lie as deep as their inputs: the job folder, up to 257
 * levels of a recursive walk (job.c stops below 256 nested folders) and the
 * components of a glob (a job-file line holds at most 198 characters). The
 * scan goes deeper than that, so no image is left out of the report, while
 * still bounding the recursion and the folders it holds open. */
#define SCAN_MAX_DEPTH 512

/* Walks `root`/`rel` depth first without following symlinks. */
static kmq_status scan(summary_set *set, const char *root, const char *rel, int depth, kmq_err *err)
{
    if (depth > SCAN_MAX_DEPTH)
        return KMQ_OK;
    char *path = rel[0] ? kmq_fsx_join(root, rel) : kmq__strdup(root);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    DIR *d = opendir(path);
    kmq__free(path);
    if (!d)
        return KMQ_OK;
    kmq_status st = KMQ_OK;
    struct dirent *e;
    while (st == KMQ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", the lock file, temporaries */
        char *child = rel[0] ? kmq_fsx_join(rel, e->d_name) : kmq__strdup(e->d_name);
        char *full = child ? kmq_fsx_join(root, child) : NULL;
        struct stat sb;
        if (!full) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        } else if (lstat(full, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                st = scan(set, root, child, depth + 1, err);
            else if (S_ISREG(sb.st_mode) && strcmp(e->d_name, KMQ_SUMMARY_JSON) == 0 && rel[0])
                st = add_summary(set, root, rel, err);
        }
        kmq__free(full);
        kmq__free(child);
    }
    closedir(d);
    return st;
}

/* Makes room for one more entry; returns it zeroed, or NULL (out of memory). */
static found_summary *grow(summary_set *set)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        found_summary *items = kmq__realloc(set->items, cap, sizeof *items);
        if (!items)
            return NULL;
        set->items = items;
        set->cap = cap;
    }
    found_summary *f = &set->items[set->n];
    memset(f, 0, sizeof *f);
    return f;
}

static int compare_expected_dir(const void *a, const void *b)
{
    const kmq_expected_image *x = *(const kmq_expected_image *const *)a;
    const kmq_expected_image *y = *(const kmq_expected_image *const *)b;
    return strcmp(x->dir, y->dir);
}

/* Holds the summaries found against the images the job lists now: one of
 * another config hash becomes a "stale" placeholder; an image with no
 * summary gets its unrecorded error, or a "pending" placeholder. Summaries
 * of folders the job does not list are left as they are. */
static kmq_status reconcile(summary_set *set, const kmq_expected_image *expected, size_t n,
                            kmq_err *err)
{
    kmq_status st = KMQ_OK;
    const kmq_expected_image **by_dir = kmq__alloc_array(n ? n : 1, sizeof *by_dir);
    bool *seen = kmq__calloc(n ? n : 1, sizeof *seen);
    if (!by_dir || !seen) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        by_dir[i] = &expected[i];
    qsort(by_dir, n, sizeof *by_dir, compare_expected_dir);
    size_t found = set->n;
    for (size_t i = 0; i < found; i++) {
        kmq_expected_image key = {.dir = set->items[i].dir};
        const kmq_expected_image *pk = &key;
        const kmq_expected_image **hit =
            bsearch(&pk, by_dir, n, sizeof *by_dir, compare_expected_dir);
        if (!hit)
            continue;
        seen[*hit - expected] = true;
        set->items[i].mode_known = true;
        set->items[i].mode = (*hit)->report;
        kmq_summary *s = &set->items[i].summary;
        if ((*hit)->unchecked) {
            if (kmq_summary_set_error(s, KMQ_RUN_PENDING,
                                      "not checked against the current configuration (the run "
                                      "was interrupted first); the next run checks it") != KMQ_OK) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto done;
            }
            continue;
        }
        if (!(*hit)->hash || (s->hash && strcmp(s->hash, (*hit)->hash) == 0))
            continue; /* no hash known: reported as it stands */
        if (kmq_summary_set_error(s, KMQ_RUN_STALE,
                                  "its results are of another configuration or an earlier file; "
                                  "the next run redoes it") != KMQ_OK) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (seen[i])
            continue;
        const kmq_expected_image *e = &expected[i];
        found_summary *f = grow(set);
        if (!f) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        const kmq_summary *u = e->unrecorded;
        kmq_summary *s = &f->summary;
        s->job = kmq__strdup(e->job ? e->job : "");
        s->rel = kmq__strdup(e->rel);
        s->path = kmq__strdup(e->path);
        f->dir = kmq__strdup(e->dir);
        f->mode_known = true;
        f->mode = e->report;
        bool ok = s->job && s->rel && s->path && f->dir &&
                  kmq_summary_set_error(s, u ? u->error_code : KMQ_RUN_PENDING,
                                        u ? u->error_message
                                          : "not processed yet (the run stopped first, or it "
                                            "belongs to another shard)") == KMQ_OK;
        set->n++; /* counted even when a copy failed, so that clearing frees it */
        if (!ok) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
    }
done:
    kmq__free(by_dir);
    kmq__free(seen);
    return st;
}

/* What the report draws for an image whose job is not known here: what
 * its summary records (config.report; absent: light). */
static kmq_report_mode summary_mode(const kmq_summary *s)
{
    if (s->report && strcmp(s->report, "full") == 0)
        return KMQ_REPORT_FULL;
    if (s->report && strcmp(s->report, "none") == 0)
        return KMQ_REPORT_NONE;
    return KMQ_REPORT_LIGHT;
}

static int compare_found(const void *a, const void *b)
{
    const found_summary *x = a, *y = b;
    int c = strcmp(x->summary.job ? x->summary.job : "", y->summary.job ? y->summary.job : "");
    if (c)
        return c;
    c = strcmp(x->summary.rel ? x->summary.rel : "", y->summary.rel ? y->summary.rel : "");
    return c ? c : strcmp(x->dir, y->dir);
}

static bool same_job(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* Summary s's result for k, or NULL when it has none. */
static const kmq_k_result *result_for(const kmq_summary *s, size_t k)
{
    for (size_t i = 0; i < s->nresults; i++)
        if (s->results[i].k == k)
            return &s->results[i];
    return NULL;
}

/* The owned arrays behind one job's curve (kmq_job_elbow borrows them). */
typedef struct job_curve {
    size_t *k;
    double *mean, *p10, *p90;
} job_curve;

static void job_curve_clear(job_curve *c)
{
    kmq__free(c->k);
    kmq__free(c->mean);
    kmq__free(c->p10);
    kmq__free(c->p90);
    memset(c, 0, sizeof *c);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-quantile (0..1) of v[0..n) sorted ascending, n >= 1, interpolated
 * linearly between order statistics (position p (n - 1); numpy's default). */
static double quantile(const double *v, size_t n, double p)
{
    double pos = p * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo + 1 >= n)
        return v[n - 1];
    double t = pos - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * t;
}

/* The collection-level elbow and curve of images[from, to) (one job), as
 * described at the top of the file. */
static kmq_status job_elbow(const kmq_run_image *images, size_t from, size_t to, kmq_job_elbow *e,
                            job_curve *c, kmq_err *err)
{
    enum { MAXK = 256 }; /* k is 1..256, so at most 256 distinct values */
    double x[MAXK];
    size_t ks[MAXK]; /* the common k values themselves: a double may not hold one exactly */
    size_t nk = 0;
    const kmq_summary *first = NULL;
    memset(e, 0, sizeof *e);
    e->job = images[from].summary->job;
    for (size_t i = from; i < to && !first; i++)
        if (images[i].summary->ok && images[i].summary->nresults > 0)
            first = images[i].summary;
    if (!first)
        return KMQ_OK;
    for (size_t j = 0; j < first->nresults && nk < MAXK; j++) {
        size_t k = first->results[j].k;
        bool everywhere = true;
        for (size_t i = from; i < to && everywhere; i++)
            if (images[i].summary->ok && !result_for(images[i].summary, k))
                everywhere = false;
        if (everywhere) {
            ks[nk] = k;
            x[nk++] = (double)k;
        }
    }
    e->nk = nk;
    if (nk < 3)
        return KMQ_OK;
    /* norm[j * cap + u]: image u's normalised inertia at k index j. */
    size_t cap = 0;
    for (size_t i = from; i < to; i++)
        cap += images[i].summary->ok;
    double *norm = kmq__alloc_array(nk, cap * sizeof *norm);
    c->k = kmq__alloc_array(nk, sizeof *c->k);
    c->mean = kmq__calloc(nk, sizeof *c->mean);
    c->p10 = kmq__alloc_array(nk, sizeof *c->p10);
    c->p90 = kmq__alloc_array(nk, sizeof *c->p90);
    if (!norm || !c->k || !c->mean || !c->p10 || !c->p90) {
        kmq__free(norm);
        job_curve_clear(c);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the collection's curve");
    }
    size_t used = 0;
    for (size_t i = from; i < to; i++) {
        const kmq_summary *s = images[i].summary;
        if (!s->ok)
            continue;
        double lo = INFINITY, hi = -INFINITY, v[MAXK];
        bool complete = true;
        for (size_t j = 0; j < nk; j++) {
            /* Every image was checked to have each k above; a curve with a
             * gap is left out all the same rather than trusted. */
            const kmq_k_result *r = result_for(s, ks[j]);
            if (!r) {
                complete = false;
                break;
            }
            v[j] = r->inertia;
            lo = fmin(lo, v[j]);
            hi = fmax(hi, v[j]);
        }
        if (!complete || !(hi > lo) || !isfinite(hi - lo))
            continue; /* flat: nothing to say about the elbow */
        for (size_t j = 0; j < nk; j++) {
            double n = (v[j] - lo) / (hi - lo);
            c->mean[j] += n; /* summed in image order: deterministic */
            norm[j * cap + used] = n;
        }
        used++;
    }
    e->images = used;
    if (used == 0) {
        kmq__free(norm);
        job_curve_clear(c);
        return KMQ_OK;
    }
    for (size_t j = 0; j < nk; j++) {
        double *col = norm + j * cap;
        qsort(col, used, sizeof *col, compare_double);
        c->k[j] = ks[j];
        c->mean[j] /= (double)used;
        c->p10[j] = quantile(col, used, 0.10);
        c->p90[j] = quantile(col, used, 0.90);
    }
    kmq__free(norm);
    e->ncurve = nk;
    e->curve_k = c->k;
    e->curve_mean = c->mean;
    e->curve_p10 = c->p10;
    e->curve_p90 = c->p90;
    size_t index = 0;
    bool found = false;
    kmq_err kerr = {0};
    kmq_status st = kmq_elbow_kneedle(x, c->mean, nk, 1.0, &found, &index, &kerr);
    if (st == KMQ_E_NOMEM)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    /* Any other refusal (cannot happen with ascending finite x) is "none". */
    if (st == KMQ_OK && found) {
        e->found = true;
        e->k = ks[index];
    }
    return KMQ_OK;
}

kmq_status kmq_report_build(const char *out_root, const kmq_run_info *info,
                            const kmq_expected_image *expected, size_t n_expected,
                            kmq_refused_fn refused, void *ctx, kmq_err *err)
{
    summary_set set = {.on_refused = refused, .ctx = ctx};
    kmq_run_image *images = NULL;
    kmq_job_elbow *elbows = NULL;
    kmq_report_mode *modes = NULL;
    job_curve *curves = NULL;
    kmq_run_facts old = {0};
    char *run_path = NULL;
    size_t njobs = 0;
    kmq_status st = scan(&set, out_root, "", 0, err);
    if (st == KMQ_OK && expected)
        st = reconcile(&set, expected, n_expected, err);
    if (st != KMQ_OK)
        goto done;
    if (set.n == 0 && set.refused == 0 && !expected) {
        st = kmq_err_set(err, KMQ_E_NOT_FOUND, "no summary.json found under %s", out_root);
        goto done;
    }
    if (set.n > 1) /* items is NULL when every summary was refused */
        qsort(set.items, set.n, sizeof *set.items, compare_found);
    images = kmq__alloc_array(set.n ? set.n : 1, sizeof *images);
    modes = kmq__alloc_array(set.n ? set.n : 1, sizeof *modes);
    elbows = kmq__calloc(set.n ? set.n : 1, sizeof *elbows); /* at most one job per image */
    curves = kmq__calloc(set.n ? set.n : 1, sizeof *curves);
    if (!images || !modes || !elbows || !curves) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    size_t failed = 0, not_done = 0;
    for (size_t i = 0; i < set.n; i++) {
        const kmq_summary *s = &set.items[i].summary;
        images[i].dir = set.items[i].dir;
        images[i].summary = s;
        modes[i] = set.items[i].mode_known ? set.items[i].mode : summary_mode(s);
        bool placeholder = !s->ok && s->error_code &&
                           (strcmp(s->error_code, KMQ_RUN_PENDING) == 0 ||
                            strcmp(s->error_code, KMQ_RUN_STALE) == 0);
        failed += !s->ok && !placeholder;
        not_done += placeholder;
    }
    for (size_t i = 0; i < set.n;) {
        size_t j = i + 1;
        while (j < set.n && same_job(images[j].summary->job, images[i].summary->job))
            j++;
        st = job_elbow(images, i, j, &elbows[njobs], &curves[njobs], err);
        njobs++; /* counted either way, so that its curve is freed */
        if (st != KMQ_OK)
            goto done;
        i = j;
    }
    const char *status = failed || (set.refused && !expected) ? "failures"
                         : not_done                           ? "incomplete"
                                                              : "complete";
    kmq_run_info rebuilt = {.status = status, .threads = 0};
    if (!info) {
        /* `kmq report`: keep the facts of the run that wrote run.json. */
        kmq_err read_err = {0};
        run_path = kmq_fsx_join(out_root, KMQ_RUN_JSON);
        if (!run_path) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        kmq_status rst = kmq_run_info_read(run_path, &old, &read_err);
        if (rst == KMQ_E_NOMEM) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        if (rst != KMQ_OK && rst != KMQ_E_NOT_FOUND && refused) {
            kmq_err_where(&read_err, "%s", run_path);
            refused(ctx, KMQ_RUN_FILE_RUN_JSON, &read_err);
        }
        if (rst == KMQ_OK) {
            kmq_run_info_keep_facts(&rebuilt, &old);
            rebuilt.job_file = old.job_file;
        }
        info = &rebuilt;
    }
    kmq_run_info honest;
    if (info != &rebuilt && strcmp(info->status, "interrupted") != 0) {
        /* The run's word is kept only for an interruption; otherwise what
         * is on disk decides. */
        honest = *info;
        honest.status = status;
        info = &honest;
    }
    st = kmq_run_write_with_elbows(out_root, info, elbows, njobs, images, set.n, err);
    if (st == KMQ_OK)
        st = kmq__report_write_html(out_root, info, elbows, njobs, images, modes, set.n, err);
done:
    kmq_run_facts_clear(&old);
    kmq__free(run_path);
    for (size_t j = 0; curves && j < njobs; j++)
        job_curve_clear(&curves[j]);
    kmq__free(curves);
    kmq__free(elbows);
    kmq__free(modes);
    kmq__free(images);
    summary_set_clear(&set);
    return st;
}
