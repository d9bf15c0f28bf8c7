/* report.c — run-level files rebuilt from the summaries on disk (layer L3).
 *
 * run.json and elbow.csv are never assembled from memory: both `kmq run`
 * (at its end) and `kmq report OUT` scan OUT for summary.json files, read
 * them, sort them by (job, rel) and hand them to the summary module. That is
 * what makes a report rebuilt later, or after several shards wrote into one
 * output root, identical to the one a single run writes.
 *
 * Serial; no parallel region.
 */
#include "kmq/runner.h"

#include "internal.h"
#include "kmq/fsx.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct found_summary {
    char *dir; /* relative to the output root */
    kmq_summary summary;
} found_summary;

typedef struct summary_set {
    found_summary *items;
    size_t n, cap;
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

static kmq_status add_summary(summary_set *set, const char *root, const char *rel_dir,
                              kmq_err *err)
{
    char *dir = kmq_fsx_join(root, rel_dir);
    char *path = dir ? kmq_fsx_join(dir, "summary.json") : NULL;
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
    /* A summary that does not parse is not counted: it is not "done". */
    if (kmq_summary_read(path, &f->summary, &read_err) != KMQ_OK) {
        kmq_summary_clear(&f->summary);
        if (read_err.code == KMQ_E_NOMEM)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
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

/* Walks `root`/`rel` depth first without following symlinks. */
static kmq_status scan(summary_set *set, const char *root, const char *rel, int depth,
                       kmq_err *err)
{
    if (depth > 64)
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
            else if (S_ISREG(sb.st_mode) && strcmp(e->d_name, "summary.json") == 0 && rel[0])
                st = add_summary(set, root, rel, err);
        }
        kmq__free(full);
        kmq__free(child);
    }
    closedir(d);
    return st;
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

kmq_status kmq_report_build(const char *out_root, const kmq_run_info *info, kmq_err *err)
{
    summary_set set = {0};
    kmq_run_image *images = NULL;
    kmq_status st = scan(&set, out_root, "", 0, err);
    if (st != KMQ_OK)
        goto done;
    if (set.n == 0) {
        st = kmq_err_set(err, KMQ_E_NOT_FOUND, "no summary.json found under %s", out_root);
        goto done;
    }
    qsort(set.items, set.n, sizeof *set.items, compare_found);
    images = kmq__alloc_array(set.n, sizeof *images);
    if (!images) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    size_t failed = 0;
    for (size_t i = 0; i < set.n; i++) {
        images[i].dir = set.items[i].dir;
        images[i].summary = &set.items[i].summary;
        failed += !set.items[i].summary.ok;
    }
    kmq_run_info rebuilt = {.status = failed ? "failures" : "complete", .threads = 0};
    st = kmq_run_write(out_root, info ? info : &rebuilt, images, set.n, err);
done:
    kmq__free(images);
    summary_set_clear(&set);
    return st;
}
