/* runner.c — a whole job (layer L3); one image is runner_image.c, what
 * makes an image the same image runner_identity.c.
 *
 * Composes the lower layers; nothing below knows the others exist:
 *
 *   job (inputs) -> for each image:
 *     stat + config hash (resume: skip when summary.json has the same hash)
 *     image_open (header only; max_pixels refused here)
 *     pass 1: strips -> hist_add_rgb           (memory: colours, not pixels)
 *     prepare the distinct colours once (kmeans_prepared_new), then
 *     fit every k on them (kmeans, optionally on a sample) and keep the
 *     fit's label of every colour (after a sample: kmeans_assign -> labels)
 *     pass 2: strips -> labels_map_row -> one PNG writer per k and file kind
 *             (memory: one strip for all of them, MAP_STRIP_BUDGET)
 *     summary.json, written last and atomically: "this image is done"
 *     (after each pass and before the summary the file must still have the
 *     stat it had when hashed, else the image fails with file_changed)
 *   -> run.json, elbow.csv (report.c, from the summaries on disk)
 *
 * Error context: everything below reports what went wrong; this file adds
 * the image path (err->where) and turns the failure into an error summary,
 * so one bad image never stops a batch. A run-level failure (output root
 * unusable, interrupted) is returned instead.
 *
 * The job is serial, one image after the other; runner_image.c says how
 * one image uses the threads. This file also owns the output root: its
 * lock (runner_lock.c: one plain run, or the shards of one N), a shard's
 * record (shards.c), its scratch folder for temporaries, the clean-up of
 * image folders (runner_outputs.c), and the hand-off to the report of every image the job
 * lists now (write_run_files, also behind `kmq report` of a job array:
 * kmq_runner_report).
 */
#include "kmq/outputs.h"
#include "kmq/runner.h"

#include "internal.h"
#include "runner_internal.h"
#include "kmq/elbow.h"
#include "kmq/fsx.h"
#include "kmq/hist.h"
#include "kmq/image.h"
#include "kmq/kmeans.h"
#include "kmq/labels.h"
#include "kmq/pngout.h"
#include "kmq/preview.h"
#include "kmq/rng.h"
#include "runner_plots.h"
#include "shards.h"
#include "strip_reader.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define SUMMARY_NAME KMQ_SUMMARY_JSON
#define LOCK_NAME    KMQ_LOCK_FILE
#define SCRATCH_NAME KMQ_SCRATCH_DIR

bool kmq__run_cancelled(const kmq_run_opts *opts)
{
    return opts->cancel && atomic_load(opts->cancel) != 0;
}

void kmq__run_progress(const kmq_run_opts *opts, kmq_progress *p, double t0)
{
    if (!opts->progress)
        return;
    p->elapsed_s = kmq_par_now_s() - t0;
    opts->progress(opts->progress_ctx, p);
}

/* Whether `dir` already holds a finished summary with this hash. A summary
 * that is there but does not read back counts as not done, and progress is
 * told (KMQ_PROGRESS_REFUSED, naming the file and the field). */
static bool already_done(const char *summary_path, const char *hash, const kmq_job_spec *spec,
                         const kmq_run_opts *opts, kmq_progress *prog, double t_run)
{
    kmq_summary old = {0};
    kmq_err why = {0};
    kmq_status st = kmq_summary_read(summary_path, &old, &why);
    bool done = st == KMQ_OK && old.ok && kmq__summary_current(&old, hash, spec);
    kmq_summary_clear(&old);
    if (st != KMQ_OK && st != KMQ_E_NOT_FOUND && st != KMQ_E_NOMEM) {
        kmq_err_where(&why, "%s", summary_path);
        prog->event = KMQ_PROGRESS_REFUSED;
        prog->refused = &why;
        kmq__run_progress(opts, prog, t_run);
        prog->refused = NULL;
    }
    return done;
}

/* Where kmq_report_build's refusals go at the end of a run. */
typedef struct refused_sink {
    const kmq_run_opts *opts;
    double t_run;
} refused_sink;

/* A summary found under the output root that the rebuilt run.json leaves
 * out (not one of this run's images: those were redone). */
static void report_refused(void *ctx, kmq_run_file file, const kmq_err *why)
{
    const refused_sink *sink = ctx;
    (void)file; /* with the run's own facts, run.json is not read */
    kmq_progress prog = {.event = KMQ_PROGRESS_REFUSED, .refused = why};
    kmq__run_progress(sink->opts, &prog, sink->t_run);
}

/* Whether component number `depth` of an image's folder path, `name`, is a
 * file kmq writes into the folder that holds it: a run-level file at the top
 * of the flat layout (the job folder holds image folders only), an image's
 * own file below. */
static bool name_taken(const char *name, size_t depth, bool flat)
{
    /* "_palette" at the top of a job holds its shared palette. */
    if (depth == 0 && strcmp(name, "_palette") == 0)
        return true;
    return depth == 0 ? flat && kmq_is_run_file(name) : kmq__is_image_output(name);
}

/* The folder of one image relative to the output root: its rel made safe,
 * under the job's folder unless flat. A component named like a file kmq
 * writes beside it gets its first byte percent-encoded ("%72un.json"), so
 * that an input named run.json in `kmq quantize`, or a folder photo.png
 * holding k2.png or summary.json beside a file photo.png of another input,
 * takes no place of kmq's own files. Names stay distinct: a literal '%' is
 * "%25" (kmq_fsx_safe_relpath). */
static char *image_rel_dir(const kmq_job *job, const kmq_input_file *in)
{
    static const char hex[] = "0123456789ABCDEF";
    char *safe = kmq_fsx_safe_relpath(in->rel);
    char *escaped = safe ? kmq__alloc(3 * strlen(safe) + 1) : NULL; /* +2 bytes a component */
    char *dir = NULL;
    if (!escaped)
        goto done;
    size_t o = 0, depth = 0;
    for (char *c = safe; *c; depth++) {
        size_t len = strcspn(c, "/");
        char sep = c[len];
        c[len] = '\0';
        size_t hit = name_taken(c, depth, job->flat);
        c[len] = sep;
        if (hit) {
            escaped[o++] = '%';
            escaped[o++] = hex[(unsigned char)c[0] >> 4];
            escaped[o++] = hex[(unsigned char)c[0] & 15];
        }
        memcpy(escaped + o, c + hit, len - hit);
        o += len - hit;
        if (sep)
            escaped[o++] = '/';
        c += len + (sep ? 1 : 0);
    }
    escaped[o] = '\0';
    if (job->flat) {
        dir = escaped;
        escaped = NULL;
    } else {
        dir = kmq_fsx_join(job->jobs[in->job].name, escaped);
    }
done:
    kmq__free(escaped);
    kmq__free(safe);
    return dir;
}

/* ------------------------------------------------------------------ */
/* A whole job                                                         */

static void utc_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Removes the files below `dir` (one level of sub-folders, which is all
 * that libvips and its loaders make), never following a link, then `dir`
 * itself when `remove_self`. Best effort. */
static void clear_scratch(const char *dir, bool remove_self, int depth)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            char *sub = depth < 2 ? kmq_fsx_join(dir, e->d_name) : NULL;
            if (sub)
                clear_scratch(sub, true, depth + 1);
            kmq__free(sub);
        } else {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
    if (remove_self)
        rmdir(dir);
}

/* The run's scratch folder, OUT/.kmq-scratch/NAME, where libvips and its
 * loaders put temporary files (kmq_image_lib_set_temp_dir): inside OUT, so
 * a killed run leaves nothing elsewhere, and owned by this run through its
 * lock (a plain run owns all of .kmq-scratch, shard I its own folder), so
 * what a killed run left is removed here. Returns the folder (free it), or
 * NULL when it cannot be made: temporaries then go where they would have. */
static char *make_scratch(const char *root, const kmq_run_opts *opts)
{
    char *top = kmq_fsx_join(root, SCRATCH_NAME);
    char *name =
        opts->shard_count > 1 ? kmq__asprintf("shard-%u", opts->shard_index) : kmq__strdup("run");
    char *dir = top && name ? kmq_fsx_join(top, name) : NULL;
    kmq_err ignored = {0};
    if (dir) {
        if (opts->shard_count <= 1)
            clear_scratch(top, false, 0);
        else
            clear_scratch(dir, false, 1);
        if (kmq_fsx_mkdirs(root, SCRATCH_NAME, &ignored) != KMQ_OK ||
            (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
            kmq__free(dir);
            dir = NULL;
        }
    }
    kmq__free(top);
    kmq__free(name);
    return dir;
}

/* What the run keeps per input for the report: its folder, its config hash
 * (computed when it is processed or skipped, else at the end), and the
 * error summary of an image whose summary could not be written. */
typedef struct input_state {
    char *rel_dir;
    char hash[17];
    bool hashed;
    bool unrecorded;
    kmq_summary lost;
} input_state;

/* Counts one image for the job array's state: done when its summary reads
 * back with its current config hash (ok or failed), or it failed without a
 * folder of its own. */
static void count_for_array(const kmq_job *job, kmq__array *arr, const kmq_input_file *in,
                            const input_state *is)
{
    bool done = false, failed = false;
    if (is->unrecorded) {
        done = failed = true;
    } else if (is->hashed) {
        char *dir = kmq_fsx_join(job->output, is->rel_dir);
        char *path = dir ? kmq_fsx_join(dir, SUMMARY_NAME) : NULL;
        kmq_summary s = {0};
        kmq_err ignored = {0};
        if (path && kmq_summary_read(path, &s, &ignored) == KMQ_OK && s.hash &&
            strcmp(s.hash, is->hash) == 0) {
            done = true;
            failed = !s.ok;
        }
        kmq_summary_clear(&s);
        kmq__free(path);
        kmq__free(dir);
    }
    kmq__array_count(arr, in->rel, done, failed);
}

/* Rebuilds the run-level files with the run's facts and every image the
 * job lists now (kmq_report_build). */
static kmq_status write_run_files(const kmq_job *job, const kmq_run_opts *opts, double t_run,
                                  const kmq_input_list *inputs, input_state *states,
                                  const kmq__job_palette *const *palettes, const kmq_run_info *info,
                                  kmq__array *arr, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_expected_image *expected = kmq__calloc(inputs->n ? inputs->n : 1, sizeof *expected);
    if (!expected)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < inputs->n; i++) {
        const kmq_input_file *in = &inputs->items[i];
        input_state *is = &states[i];
        if (!is->rel_dir && !(is->rel_dir = image_rel_dir(job, in))) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        bool unchecked = false;
        if (!is->hashed) {
            /* Only an image with a summary needs its hash (to tell ok from
             * stale). Under identity = quick the hash reads at most 128 KiB,
             * so it is taken even after a signal: a summary of another
             * configuration is never reported ok. Under identity = content
             * it reads the whole file, which a signal stops: such an image
             * is reported pending ("not checked"), never ok. */
            const kmq_job_spec *spec = &job->jobs[in->job];
            const atomic_int *stop = spec->identity == KMQ_IDENTITY_QUICK ? NULL : opts->cancel;
            char *summary = kmq_fsx_join(job->output, is->rel_dir);
            char *path = summary ? kmq_fsx_join(summary, SUMMARY_NAME) : NULL;
            struct stat sb;
            if (path && lstat(path, &sb) == 0) {
                if (!(stop && atomic_load(stop))) {
                    kmq__file_stamp stamp = kmq__stamp_file(in->path);
                    kmq__config_hash(spec, job->seed, in->path, in->rel, &stamp, stop, is->hash);
                    kmq__config_hash_palette(palettes[in->job], is->hash);
                    is->hashed = !(stop && atomic_load(stop));
                }
                unchecked = !is->hashed;
            }
            kmq__free(path);
            kmq__free(summary);
        }
        if (arr)
            count_for_array(job, arr, in, is);
        expected[i] = (kmq_expected_image){.job = job->jobs[in->job].name,
                                           .rel = in->rel,
                                           .path = in->path,
                                           .dir = is->rel_dir,
                                           .hash = is->hashed ? is->hash : NULL,
                                           .unrecorded = is->unrecorded ? &is->lost : NULL,
                                           .unchecked = unchecked,
                                           .report = job->jobs[in->job].report};
    }
    kmq_run_info with_shards = *info;
    if (arr && (st = kmq__array_finish(job->output, arr, err)) != KMQ_OK)
        goto done;
    if (arr && arr->state->count > 0)
        with_shards.shards = &arr->view;
    refused_sink sink = {opts, t_run};
    st = kmq_report_build(job->output, &with_shards, expected, inputs->n, report_refused, &sink,
                          err);
done:
    kmq__free(expected);
    return st;
}

static size_t count_done(const kmq_job *job, const kmq_run_opts *opts, const kmq_input_list *inputs,
                         const kmq__job_palette *const *palettes);

/* The sessions of a run. A session continues the run recorded in the
 * output root's run.json when that run stopped before it was done (status
 * "interrupted" or "incomplete") with the same job file and this session
 * does not --force: then the run's wall time is the sum of the sessions'
 * (each from its start to its run.json), its start the first session's,
 * and its session count one more. Otherwise this session starts a new run
 * (one session). `before` holds the facts read (info borrows its start);
 * the caller clears it. */
static void continue_sessions(const kmq_job *job, const kmq_run_opts *opts, kmq_run_facts *before,
                              kmq_run_info *info)
{
    info->sessions = 1;
    info->last_session_s = info->wall_s;
    if (opts->force)
        return;
    char *path = kmq_fsx_join(job->output, KMQ_RUN_JSON);
    kmq_err ignored = {0};
    bool read = path && kmq_run_info_read(path, before, &ignored) == KMQ_OK;
    kmq__free(path);
    if (!read)
        return;
    const char *now = job->path && job->path[0] ? job->path : NULL;
    bool same_job =
        (before->job_file && now) ? strcmp(before->job_file, now) == 0 : before->job_file == now;
    bool unfinished =
        strcmp(before->status, "interrupted") == 0 || strcmp(before->status, "incomplete") == 0;
    if (!same_job || !unfinished)
        return;
    info->sessions = (before->sessions ? before->sessions : 1) + 1;
    info->wall_s += before->wall_s;
    if (before->started_utc)
        info->started_utc = before->started_utc;
}

kmq_status kmq_runner_run(const kmq_job *job, const kmq_run_opts *opts, kmq_run_totals *totals,
                          kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    double t_run = kmq_par_now_s();
    char started[32];
    utc_now(started);
    kmq_input_list inputs = {0};
    input_state *states = NULL;
    kmq_shard_record record = {0};
    char *scratch = NULL;
    int lock_fd = -1;
    kmq__job_palette *job_pal = NULL;
    const kmq__job_palette **palettes = NULL; /* per job: NULL or &job_pal[j] */
    memset(totals, 0, sizeof *totals);

    kmq_status st = kmq_job_list_inputs(job, &inputs, err);
    if (st != KMQ_OK)
        goto done;
    for (size_t i = 0; i < inputs.n; i++)
        totals->images +=
            kmq_runner_in_shard(inputs.items[i].rel, opts->shard_index, opts->shard_count);
    if (opts->dry_run) {
        if (!opts->force) {
            kmq_err ignored = {0};
            st = kmq__job_palettes(job, &inputs, opts, false, true, &job_pal, &palettes, &ignored);
            totals->skipped = st == KMQ_OK ? count_done(job, opts, &inputs, palettes) : 0;
            st = KMQ_OK;
        }
        goto done;
    }
    states = kmq__calloc(inputs.n ? inputs.n : 1, sizeof *states);
    if (!states) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }

    st = kmq_fsx_mkdirs(job->output, "", err);
    if (st == KMQ_OK)
        st = kmq__lock_output(job->output, opts, &lock_fd, err);
    if (st != KMQ_OK) {
        kmq_err_where(err, "%s", job->output);
        goto done;
    }
    if (opts->shard_count <= 1)
        kmq__remove_stale_temps(job->output);
    scratch = make_scratch(job->output, opts);
    if (scratch && (st = kmq_image_lib_set_temp_dir(scratch, err)) != KMQ_OK)
        goto done;
    /* Before the shard's record: a shard without its palette stops here,
     * as a usage error, before it counts as begun. */
    st = kmq__job_palettes(job, &inputs, opts, opts->shard_count <= 1, false, &job_pal, &palettes,
                           err);
    if (st != KMQ_OK)
        goto done;
    if (opts->shard_count == 0)
        kmq__shards_forget(job->output);
    else if ((st = kmq__shard_begin(job, opts, started, &record, err)) != KMQ_OK)
        goto done;

    size_t index = 0;
    for (size_t i = 0; i < inputs.n && st == KMQ_OK; i++) {
        const kmq_input_file *in = &inputs.items[i];
        input_state *is = &states[i];
        if (!kmq_runner_in_shard(in->rel, opts->shard_index, opts->shard_count))
            continue;
        if (kmq__run_cancelled(opts)) {
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
            break;
        }
        const kmq_job_spec *spec = &job->jobs[in->job];
        kmq_progress prog = {
            .index = index++, .total = totals->images, .job = spec->name, .path = in->path};
        char *rel_dir = image_rel_dir(job, in);
        char *dir = rel_dir ? kmq_fsx_join(job->output, rel_dir) : NULL;
        char *summary_path = dir ? kmq_fsx_join(dir, SUMMARY_NAME) : NULL;
        kmq_summary s = {0};
        is->rel_dir = rel_dir; /* the state owns it from here */
        if (!summary_path) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto next;
        }
        /* The stamp is taken before the file is read for the hash, and
         * checked again after each pass and before the summary. */
        kmq__file_stamp stamp = kmq__stamp_file(in->path);
        kmq__config_hash(spec, job->seed, in->path, in->rel, &stamp, opts->cancel, is->hash);
        kmq__config_hash_palette(palettes[in->job], is->hash);
        if (kmq__run_cancelled(opts)) { /* the hash may be unfinished: decide nothing on it */
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
            goto next;
        }
        is->hashed = true;
        if (!opts->force && already_done(summary_path, is->hash, spec, opts, &prog, t_run)) {
            /* A run killed while writing the report can leave a temporary
             * of the image's page here; the next report writes the page
             * again under a new name. Under the run's lock (one process)
             * the folder is this run's to sweep. */
            if (opts->shard_count <= 1)
                kmq__remove_stale_temps(dir);
            totals->skipped++;
            prog.event = KMQ_PROGRESS_IMAGE_SKIP;
            kmq__run_progress(opts, &prog, t_run);
            goto next;
        }
        prog.event = KMQ_PROGRESS_IMAGE_START;
        kmq__run_progress(opts, &prog, t_run);

        kmq_err image_err = {0};
        kmq_status ist = kmq_fsx_mkdirs(job->output, rel_dir, &image_err);
        bool have_dir = ist == KMQ_OK;
        if (have_dir) {
            /* A re-done image must not keep a stale "done" marker while it
             * is being rewritten (the marker goes first), nor files of k
             * values no longer in its list, nor a killed run's temporaries. */
            unlink(summary_path);
            kmq__remove_image_outputs(dir);
            ist = kmq__run_image(spec, job->seed, in, &stamp, is->hash, palettes[in->job], dir,
                                 opts, &prog, t_run, &s, &image_err);
            if (ist == KMQ_OK)
                ist = kmq__sync_image_outputs(dir, &image_err);
            /* Last look before the summary says "done" for this stamp. */
            if (ist == KMQ_OK)
                ist = kmq__check_unchanged(in->path, &stamp, &image_err);
            /* A failed or abandoned image keeps no output file: its PNGs
             * without a summary would look done to a reader. */
            if (ist != KMQ_OK)
                kmq__remove_image_outputs(dir);
        }
        if (ist == KMQ_E_INTERRUPTED || ist == KMQ_E_NOMEM) {
            kmq_err_set(err, image_err.code, "%s", image_err.msg);
            kmq_err_where(err, "%s", in->path);
            st = ist;
            goto next;
        }
        if (ist != KMQ_OK) {
            totals->failed++;
            if (kmq__make_error_summary(&s, &image_err) != KMQ_OK) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto next;
            }
        } else {
            totals->done++;
        }
        kmq_err write_err = {0};
        bool recorded = false;
        /* Without a folder of its own (kmq_fsx_mkdirs refused a symlink or
         * file planted in the output tree) the failure is not written
         * there, which would follow the planted link: run.json lists it
         * from memory. */
        if (have_dir && kmq_summary_write(summary_path, &s, &write_err) == KMQ_OK) {
            recorded = true;
        } else if (have_dir) {
            /* The image cannot be recorded (disk full, folder gone): it
             * counts as failed, its files go (they would look done and
             * hold space), progress, the log and run.json say why, and the
             * batch goes on; the next run retries it. */
            if (ist == KMQ_OK) {
                totals->done--;
                totals->failed++;
                kmq__remove_image_outputs(dir);
                if (kmq__make_error_summary(&s, &write_err) != KMQ_OK) {
                    st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                    goto next;
                }
            }
            unlink(summary_path);
        }
        prog.event = KMQ_PROGRESS_IMAGE_DONE;
        prog.summary = &s;
        kmq__run_progress(opts, &prog, t_run);
        if (!recorded) {
            is->lost = s; /* kept for run.json; s is zeroed below */
            is->unrecorded = true;
            memset(&s, 0, sizeof s);
        }
    next:
        kmq_summary_clear(&s);
        kmq__free(summary_path);
        kmq__free(dir);
    }

    /* run.json is written for every run that got its lock, however it
     * ended: an interruption before the first image still leaves a record
     * that says so. */
    if (st == KMQ_OK || st == KMQ_E_INTERRUPTED) {
        totals->interrupted = st == KMQ_E_INTERRUPTED;
        kmq_run_info info = {.status = totals->interrupted
                                           ? "interrupted"
                                           : (totals->failed ? "failures" : "complete"),
                             .job_file = job->path && job->path[0] ? job->path : NULL,
                             .threads = opts->par.threads,
                             .wall_s = kmq_par_now_s() - t_run,
                             .started_utc = started};
        kmq_err report_err = {0};
        kmq_status rst = KMQ_OK;
        kmq_array_state array = {0};
        kmq__array arr = {0};
        bool sharded = opts->shard_count > 0;
        kmq_run_facts before = {0};
        if (!sharded)
            continue_sessions(job, opts, &before, &info);
        if (sharded) {
            /* The shard's record first, so that the run-level facts and
             * the missing shards below count it as ended. */
            rst = kmq__shard_end(job->output, &record, info.status, totals, &report_err);
            if (rst == KMQ_OK)
                rst = kmq__array_load(job->output, &array, &arr, &report_err);
            if (rst == KMQ_OK && array.count > 0) {
                info.started_utc = array.started_utc;
                info.wall_s = array.wall_s;
                info.threads = array.threads;
            }
        }
        /* After a signal the images the run did not reach are not hashed:
         * no shard is judged from them. */
        if (rst == KMQ_OK)
            rst = write_run_files(job, opts, t_run, &inputs, states, palettes, &info,
                                  sharded && !kmq__run_cancelled(opts) ? &arr : NULL, &report_err);
        kmq__array_clear(&arr);
        kmq_array_state_clear(&array);
        kmq_run_facts_clear(&before);
        if (rst != KMQ_OK && st == KMQ_OK) {
            kmq_err_set(err, report_err.code, "%s", report_err.msg);
            kmq_err_where(err, "%s", report_err.where[0] ? report_err.where : job->output);
            st = rst;
        }
    }

done:
    if (scratch) {
        clear_scratch(scratch, true, 1);
        char *slash = strrchr(scratch, '/');
        if (slash) {
            *slash = '\0';
            rmdir(scratch); /* .kmq-scratch itself, once no shard has a folder there */
        }
        kmq__free(scratch);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    kmq_shard_record_clear(&record);
    for (size_t i = 0; states && i < inputs.n; i++) {
        kmq__free(states[i].rel_dir);
        kmq_summary_clear(&states[i].lost);
    }
    kmq__free(states);
    kmq__free_job_palettes(job, job_pal, palettes);
    kmq_input_list_clear(&inputs);
    return st;
}

/* How many images of the run's shard are already done with their current
 * configuration (what `kmq run --dry-run` reports as "already done"). */
static size_t count_done(const kmq_job *job, const kmq_run_opts *opts, const kmq_input_list *inputs,
                         const kmq__job_palette *const *palettes)
{
    size_t done = 0;
    for (size_t i = 0; i < inputs->n && !kmq__run_cancelled(opts); i++) {
        const kmq_input_file *in = &inputs->items[i];
        if (!kmq_runner_in_shard(in->rel, opts->shard_index, opts->shard_count))
            continue;
        char *rel_dir = image_rel_dir(job, in);
        char *dir = rel_dir ? kmq_fsx_join(job->output, rel_dir) : NULL;
        char *path = dir ? kmq_fsx_join(dir, SUMMARY_NAME) : NULL;
        kmq_summary s = {0};
        kmq_err ignored = {0};
        if (path && kmq_summary_read(path, &s, &ignored) == KMQ_OK && s.ok && s.hash) {
            char hash[17];
            kmq__file_stamp stamp = kmq__stamp_file(in->path);
            kmq__config_hash(&job->jobs[in->job], job->seed, in->path, in->rel, &stamp,
                             opts->cancel, hash);
            kmq__config_hash_palette(palettes[in->job], hash);
            done += kmq__summary_current(&s, hash, &job->jobs[in->job]);
        }
        kmq_summary_clear(&s);
        kmq__free(path);
        kmq__free(dir);
        kmq__free(rel_dir);
    }
    return done;
}

kmq_status kmq_runner_report(const char *out_root, const char *job_path, const kmq_run_opts *opts,
                             kmq_array_state *state, kmq_err *err)
{
    kmq__array arr = {0};
    kmq_job job = {0};
    kmq_input_list inputs = {0};
    input_state *states = NULL;
    kmq__job_palette *job_pal = NULL;
    const kmq__job_palette **palettes = NULL;
    kmq_run_facts old = {0};
    kmq_status st = kmq__array_load(out_root, state, &arr, err);
    if (st != KMQ_OK)
        goto done;
    if (!job_path)
        job_path = state->job_file;
    if (!job_path) {
        st = kmq_err_set(err, KMQ_E_NOT_FOUND, "no shard record under %s names a job file",
                         out_root);
        goto done;
    }
    if ((st = kmq_job_load(job_path, &job, err)) != KMQ_OK ||
        (st = kmq_runner_load_palettes(&job, err)) != KMQ_OK)
        goto done;
    char *root = kmq__strdup(out_root); /* where the shards wrote, seen from here */
    if (!root) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    kmq__free(job.output);
    job.output = root;
    if ((st = kmq_job_list_inputs(&job, &inputs, err)) != KMQ_OK)
        goto done;
    states = kmq__calloc(inputs.n ? inputs.n : 1, sizeof *states);
    if (!states) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    kmq_run_info info = {.status = "complete",
                         .job_file = job.path,
                         .threads = state->threads,
                         .wall_s = state->wall_s,
                         .started_utc = state->started_utc};
    if (state->count == 0) {
        /* No job array: the run's own facts are those of its run.json, kept
         * as `kmq report` without a job keeps them (an interruption too). */
        char *path = kmq_fsx_join(out_root, KMQ_RUN_JSON);
        kmq_err ignored = {0};
        if (path && kmq_run_info_read(path, &old, &ignored) == KMQ_OK) {
            kmq_run_info_keep_facts(&info, &old);
        }
        kmq__free(path);
    }
    st = kmq__job_palettes(&job, &inputs, opts, false, true, &job_pal, &palettes, err);
    if (st == KMQ_OK)
        st = write_run_files(&job, opts, kmq_par_now_s(), &inputs, states, palettes, &info, &arr,
                             err);
done:
    kmq__free_job_palettes(&job, job_pal, palettes);
    kmq_run_facts_clear(&old);
    for (size_t i = 0; states && i < inputs.n; i++) {
        kmq__free(states[i].rel_dir);
        kmq_summary_clear(&states[i].lost);
    }
    kmq__free(states);
    kmq_input_list_clear(&inputs);
    kmq_job_clear(&job);
    kmq__array_clear(&arr);
    return st;
}
