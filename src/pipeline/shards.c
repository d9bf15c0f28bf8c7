/* shards.c — the shards of a job array on one output root (layer L3).
 *
 * Every `kmq run --shard I/N` leaves a record, OUT/.kmq-shards/
 * shard-I-of-N.json (summary_shard.c has its fields): "running" as soon as
 * it holds its lock, then "complete", "failures" or "interrupted" with its
 * counts and end time. From the records of the newest N (a later
 * submission with another N supersedes older records) and from what is on
 * disk for every image the job file lists now, the report decides:
 *
 *   a shard is running   when its lock byte is held now (F_GETLK);
 *   a shard is missing   when it is not running and it has no record
 *                        ("never ran"), its record says "running"
 *                        (killed, node lost, time limit), "interrupted",
 *                        or any of its images is not done;
 *   the run's span       is from the earliest start to the latest end.
 *
 * The line that re-runs the missing shards is the submission line each
 * shard was given in KMQ_RESUBMIT (scripts/slurm/kmq-array.sh sets it:
 * "sbatch [options] kmq-array.sbatch JOB N"), with --array=LIST added;
 * without one, the `kmq run --shard` commands themselves.
 */
#include "shards.h"

#include "kmq/fsx.h"
#include "kmq/rng.h"
#include "kmq/outputs.h"
#include "kmq/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *record_path(const char *root, uint32_t index, uint32_t count)
{
    char name[64];
    snprintf(name, sizeof name, "shard-%u-of-%u.json", (unsigned)index, (unsigned)count);
    char *dir = kmq_fsx_join(root, KMQ_SHARDS_DIR);
    char *path = dir ? kmq_fsx_join(dir, name) : NULL;
    kmq__free(dir);
    return path;
}

static void utc_of(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

kmq_status kmq__shard_begin(const kmq_job *job, const kmq_run_opts *opts, const char *started_utc,
                            kmq_shard_record *rec, kmq_err *err)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "unknown");
    const char *resubmit = getenv("KMQ_RESUBMIT");
    memset(rec, 0, sizeof *rec);
    rec->index = opts->shard_index;
    rec->count = opts->shard_count;
    rec->status = kmq__strdup("running");
    /* Absolute, so that `kmq report OUT` finds it from any folder. */
    rec->job_file = job->path && job->path[0] ? realpath(job->path, NULL) : NULL;
    if (!rec->job_file)
        rec->job_file = kmq__strdup(job->path ? job->path : "");
    else {
        char *copy = kmq__strdup(rec->job_file);
        free(rec->job_file); /* realpath's malloc, not kmq__alloc */
        rec->job_file = copy;
    }
    rec->host = kmq__strdup(host);
    rec->pid = (uint32_t)getpid();
    rec->threads = opts->par.threads;
    rec->started_utc = kmq__strdup(started_utc);
    rec->started_unix = (uint64_t)time(NULL);
    rec->resubmit = resubmit && resubmit[0] ? kmq__strdup(resubmit) : NULL;
    if (!rec->status || !rec->job_file || !rec->host || !rec->started_utc ||
        (resubmit && resubmit[0] && !rec->resubmit))
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    kmq_status st = kmq_fsx_mkdirs(job->output, KMQ_SHARDS_DIR, err);
    char *path = st == KMQ_OK ? record_path(job->output, rec->index, rec->count) : NULL;
    if (st == KMQ_OK && !path)
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    if (st == KMQ_OK)
        st = kmq_shard_record_write(path, rec, err);
    kmq__free(path);
    return st;
}

kmq_status kmq__shard_end(const char *root, kmq_shard_record *rec, const char *status,
                          const kmq_run_totals *totals, kmq_err *err)
{
    char ended[32];
    time_t now = time(NULL);
    utc_of(now, ended);
    char *s = kmq__strdup(status), *e = kmq__strdup(ended);
    char *path = record_path(root, rec->index, rec->count);
    kmq_status st = KMQ_OK;
    if (!s || !e || !path) {
        kmq__free(s);
        kmq__free(e);
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    } else {
        kmq__free(rec->status);
        kmq__free(rec->ended_utc);
        rec->status = s;
        rec->ended_utc = e;
        rec->ended_unix = (uint64_t)now;
        rec->images = totals->images;
        rec->done = totals->done;
        rec->skipped = totals->skipped;
        rec->failed = totals->failed;
        st = kmq_shard_record_write(path, rec, err);
    }
    kmq__free(path);
    return st;
}

void kmq__shards_forget(const char *root)
{
    char *dir = kmq_fsx_join(root, KMQ_SHARDS_DIR);
    DIR *d = dir ? opendir(dir) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
        rmdir(dir);
    }
    kmq__free(dir);
}

uint32_t kmq__shard_of(const char *rel, uint32_t count)
{
    if (count <= 1)
        return 0;
    return (uint32_t)(kmq_hash_finish(kmq_hash_bytes(KMQ_HASH_INIT, rel, strlen(rel))) % count);
}

void kmq_array_state_clear(kmq_array_state *a)
{
    if (!a)
        return;
    for (size_t i = 0; a->why && i < a->nmissing; i++)
        kmq__free(a->why[i]);
    kmq__free(a->why);
    kmq__free(a->missing);
    kmq__free(a->running);
    kmq__free(a->job_file);
    kmq__free(a->rerun);
    kmq__free(a->started_utc);
    memset(a, 0, sizeof *a);
}

void kmq__array_clear(kmq__array *arr)
{
    for (uint32_t i = 0; arr->recs && arr->state && i < arr->state->count; i++)
        kmq_shard_record_clear(&arr->recs[i]);
    kmq__free(arr->recs);
    kmq__free(arr->undone);
    memset(arr, 0, sizeof *arr);
}

/* Parses "shard-I-of-N.json". */
static bool record_name(const char *name, uint32_t *index, uint32_t *count)
{
    unsigned i, n;
    int used = 0;
    if (sscanf(name, "shard-%u-of-%u.json%n", &i, &n, &used) != 2 || name[used] != '\0' ||
        n == 0 || i >= n)
        return false;
    *index = i;
    *count = n;
    return true;
}

kmq_status kmq__array_load(const char *root, kmq_array_state *state, kmq__array *arr,
                           kmq_err *err)
{
    memset(arr, 0, sizeof *arr);
    memset(state, 0, sizeof *state);
    arr->state = state;
    char *dir = kmq_fsx_join(root, KMQ_SHARDS_DIR);
    if (!dir)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    kmq_status st = KMQ_OK;
    uint64_t newest = 0;
    /* First pass: the N of the newest record. */
    for (int pass = 0; d && pass < 2 && st == KMQ_OK; pass++) {
        rewinddir(d);
        struct dirent *e;
        while (st == KMQ_OK && (e = readdir(d)) != NULL) {
            uint32_t index, count;
            if (!record_name(e->d_name, &index, &count) || (pass == 1 && count != state->count))
                continue;
            char *path = kmq_fsx_join(dir, e->d_name);
            kmq_shard_record r = {0};
            kmq_err ignored = {0};
            if (!path) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            } else if (kmq_shard_record_read(path, &r, &ignored) == KMQ_OK &&
                       r.index == index && r.count == count) {
                if (pass == 0 && (state->count == 0 || r.started_unix > newest ||
                                  (r.started_unix == newest && count > state->count))) {
                    newest = r.started_unix;
                    state->count = count;
                }
                if (pass == 1) {
                    arr->recs[index] = r;
                    memset(&r, 0, sizeof r);
                }
            }
            kmq_shard_record_clear(&r);
            kmq__free(path);
        }
        if (pass == 0 && state->count > 0) {
            arr->recs = kmq__calloc(state->count, sizeof *arr->recs);
            arr->undone = kmq__calloc(state->count, sizeof *arr->undone);
            if (!arr->recs || !arr->undone)
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        }
    }
    if (d)
        closedir(d);
    kmq__free(dir);
    if (st != KMQ_OK || state->count == 0)
        return st;
    /* The run's facts over the shards of this N. */
    uint64_t first = UINT64_MAX, last = 0, now = (uint64_t)time(NULL);
    for (uint32_t i = 0; i < state->count; i++) {
        const kmq_shard_record *r = &arr->recs[i];
        if (!r->status)
            continue;
        if (!state->job_file && !(state->job_file = kmq__strdup(r->job_file)))
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        if (r->started_unix < first) {
            first = r->started_unix;
            kmq__free(state->started_utc);
            if (!(state->started_utc = kmq__strdup(r->started_utc)))
                return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        }
        uint64_t end = r->ended_unix ? r->ended_unix : now;
        last = end > last ? end : last;
        state->threads = r->threads > state->threads ? r->threads : state->threads;
    }
    state->wall_s = last > first ? (double)(last - first) : 0.0;
    return KMQ_OK;
}

void kmq__array_count(kmq__array *arr, const char *rel, bool done, bool failed)
{
    kmq_array_state *a = arr->state;
    a->images++;
    if (!done) {
        a->not_done++;
        if (a->count > 0)
            arr->undone[kmq__shard_of(rel, a->count)]++;
    } else if (failed) {
        a->failed++;
    } else {
        a->ok++;
    }
}

/* Whether another process holds shard i's lock byte of the root (see
 * lock_output in runner.c). */
static bool shard_running(int lock_fd, uint32_t index, uint32_t count)
{
    if (lock_fd < 0)
        return false;
    struct flock probe = {.l_type = F_WRLCK,
                          .l_whence = SEEK_SET,
                          .l_start = count > 1 ? 1 + (off_t)index : 0,
                          .l_len = 1};
    return fcntl(lock_fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
}

/* Why shard i must run again, or NULL when it need not. */
static char *why_missing(const kmq_shard_record *r, size_t undone)
{
    if (!r->status)
        return kmq__asprintf("never ran (%zu image%s not done)", undone, undone == 1 ? "" : "s");
    if (strcmp(r->status, "running") == 0)
        return kmq__asprintf("started on %s at %s and stopped without finishing (killed, time "
                             "limit or node lost); %zu image%s not done",
                             r->host, r->started_utc, undone, undone == 1 ? "" : "s");
    if (strcmp(r->status, "interrupted") == 0)
        return kmq__asprintf("interrupted on %s at %s; %zu image%s not done", r->host,
                             r->ended_utc ? r->ended_utc : r->started_utc, undone,
                             undone == 1 ? "" : "s");
    if (undone > 0)
        return kmq__asprintf("ended %s on %s at %s, but %zu of its images are not done now "
                             "(the job file or the images changed since)",
                             r->status, r->host, r->ended_utc ? r->ended_utc : "?", undone);
    return NULL;
}

/* "0-2,5,7-8" */
static void put_list(kmq_strbuf *b, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        if (j > i)
            kmq_strbuf_fmt(b, "%s%u-%u", i ? "," : "", (unsigned)v[i], (unsigned)v[j]);
        else
            kmq_strbuf_fmt(b, "%s%u", i ? "," : "", (unsigned)v[i]);
        i = j + 1;
    }
}

/* The line that re-runs the missing shards (NUL-terminated, kmq__free), or
 * NULL when out of memory. */
static char *rerun_line(const kmq__array *arr)
{
    const kmq_array_state *a = arr->state;
    const char *resubmit = NULL;
    for (uint32_t i = 0; i < a->count && !resubmit; i++)
        resubmit = arr->recs[i].resubmit;
    kmq_strbuf b = {0};
    if (resubmit && strncmp(resubmit, "sbatch ", 7) == 0) {
        kmq_strbuf_str(&b, "sbatch --array=");
        put_list(&b, a->missing, a->nmissing);
        kmq_strbuf_str(&b, resubmit + 6);
    } else {
        kmq_strbuf_str(&b, "for i in");
        for (size_t i = 0; i < a->nmissing; i++)
            kmq_strbuf_fmt(&b, " %u", (unsigned)a->missing[i]);
        kmq_strbuf_fmt(&b, "; do kmq run '%s' --shard $i/%u; done",
                       a->job_file ? a->job_file : "JOB.ini", (unsigned)a->count);
    }
    kmq_strbuf_put(&b, "", 1);
    if (b.failed) {
        kmq_strbuf_clear(&b);
        return NULL;
    }
    return b.data; /* from kmq__alloc, like every strbuf */
}

kmq_status kmq__array_finish(const char *root, kmq__array *arr, kmq_err *err)
{
    kmq_array_state *a = arr->state;
    if (a->count == 0)
        return KMQ_OK;
    a->missing = kmq__calloc(a->count, sizeof *a->missing);
    a->why = kmq__calloc(a->count, sizeof *a->why);
    a->running = kmq__calloc(a->count, sizeof *a->running);
    if (!a->missing || !a->why || !a->running)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    char *lock = kmq_fsx_join(root, KMQ_LOCK_FILE);
    int fd = lock ? open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    kmq__free(lock);
    kmq_status st = KMQ_OK;
    for (uint32_t i = 0; i < a->count && st == KMQ_OK; i++) {
        if (shard_running(fd, i, a->count)) {
            a->running[a->nrunning++] = i;
            continue;
        }
        char *why = why_missing(&arr->recs[i], arr->undone[i]);
        if (why) {
            a->missing[a->nmissing] = i;
            a->why[a->nmissing++] = why;
        } else if (!arr->recs[i].status || strcmp(arr->recs[i].status, "running") == 0 ||
                   strcmp(arr->recs[i].status, "interrupted") == 0 || arr->undone[i] > 0) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        }
    }
    if (fd >= 0)
        close(fd);
    if (st == KMQ_OK && a->nmissing > 0 && !(a->rerun = rerun_line(arr)))
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    arr->view = (kmq_run_shards){.count = a->count,
                                 .missing = a->missing,
                                 .nmissing = a->nmissing,
                                 .why = (const char *const *)a->why,
                                 .running = a->running,
                                 .nrunning = a->nrunning,
                                 .rerun = a->rerun};
    return st;
}
