/* runner.h — one image end to end, and a whole job (layer L3).
 *
 * The runner is the only module that sees a job, an image, the fit and the
 * outputs together: it opens each image, runs the histogram pass, fits every
 * k, runs one map pass writing every k's files, and writes summary.json last.
 * It adds the image path to errors (err->where) and turns per-image failures
 * into error summaries, so one bad image never stops a batch.
 *
 * Threads: drivers below use at most opts->par.threads OpenMP threads and
 * must not be called from inside a parallel region. Cancellation is polled
 * between strips and between fits.
 */
#ifndef KMQ_RUNNER_H
#define KMQ_RUNNER_H

#include "kmq/error.h"
#include "kmq/image.h"
#include "kmq/job.h"
#include "kmq/par.h"
#include "kmq/summary.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum kmq_progress_event {
    KMQ_PROGRESS_IMAGE_START, /* an image begins (path, index) */
    KMQ_PROGRESS_STAGE,       /* stage of the current image ("histogram", "fit", "map") */
    KMQ_PROGRESS_IMAGE_DONE,  /* an image ended; summary set (ok or error) */
    KMQ_PROGRESS_IMAGE_SKIP,  /* already done with the same config hash (resume) */
    KMQ_PROGRESS_REFUSED      /* a summary.json did not read back and was set aside
                                 (refused says why): with path, the image's own, which
                                 is processed again; path NULL, one found while
                                 rebuilding run.json, which leaves it out */
} kmq_progress_event;

typedef struct kmq_progress {
    kmq_progress_event event;
    size_t index; /* 0-based position among this run's images */
    size_t total; /* images this run processes (after sharding) */
    const char *job;
    const char *path;
    const char *stage;          /* KMQ_PROGRESS_STAGE only */
    size_t k;                   /* the k being fitted, or 0 */
    const kmq_summary *summary; /* IMAGE_DONE only; borrowed for the call */
    const kmq_err *refused;     /* REFUSED only: where = the file, msg names the field;
                                   borrowed for the call */
    double elapsed_s;           /* since the run started */
} kmq_progress;

typedef void (*kmq_progress_fn)(void *ctx, const kmq_progress *p);

typedef struct kmq_run_opts {
    kmq_par par;
    bool force;           /* redo images already done */
    bool dry_run;         /* list what would run, process nothing */
    unsigned shard_index; /* process images whose path hash % shard_count == shard_index */
    unsigned shard_count; /* 0 or 1: all images */
    kmq_image_mode image_mode;
    kmq_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    const atomic_int *cancel; /* non-zero: stop cleanly; may be NULL */
} kmq_run_opts;

typedef struct kmq_run_totals {
    size_t images;  /* in this run (after sharding) */
    size_t done;    /* processed now, ok */
    size_t skipped; /* already done (resume) */
    size_t failed;  /* error summaries */
    bool interrupted;
} kmq_run_totals;

/* Runs every image of `job` (already loaded and checked) into job->output,
 * then writes run.json and elbow.csv. Per-image failures are counted in
 * totals->failed, not returned. Returns KMQ_OK, KMQ_E_INTERRUPTED (cancel
 * flag seen: the image in flight leaves no file, run.json says
 * "interrupted"), KMQ_E_CONFIG (inputs), KMQ_E_WRITE (output root unusable,
 * or locked by another kmq run) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_runner_run(const kmq_job *job, const kmq_run_opts *opts,
                                         kmq_run_totals *totals, kmq_err *err);

/* Reads the palette_file of every job that has one (relative to the job
 * file's folder) into spec->given and sets its k to the palette's size: no
 * fit, every image maps to it. Call after kmq_job_load, before a run.
 * Errors: KMQ_E_CONFIG with where = the palette file ("FILE:LINE" for a
 * .gpl line), KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE, KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_runner_load_palettes(kmq_job *job, kmq_err *err);

/* Computes the shared palette of every job of `job` with palette = shared
 * (OUT/JOB/_palette/, docs/design.md), or finds it already there for the
 * same images and keys: the first step of a cluster run, after which the
 * shards (--shard) only map. Takes the output root's lock as a plain run
 * does. *fitted = the jobs with a shared palette. Returns KMQ_OK,
 * KMQ_E_CONFIG (inputs; an image failing half-read), KMQ_E_WRITE,
 * KMQ_E_INTERRUPTED or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_runner_palette(const kmq_job *job, const kmq_run_opts *opts,
                                             size_t *fitted, kmq_err *err);

/* Whether the image with relative path `rel` belongs to shard `index` of
 * `count` (a stable hash of rel; count 0 or 1 takes everything). */
bool kmq_runner_in_shard(const char *rel, unsigned index, unsigned count);

/* The decode budget in bytes for a max_decode_bytes setting: the setting
 * itself, or for KMQ_DECODE_AUTO an eighth of the machine's memory, at most
 * 512 MiB. */
uint64_t kmq_runner_decode_budget(uint64_t setting);

/* The config hash (resume key) of one image of one job: 16 hex digits into
 * out[17]. Covers the image's identity as spec->identity says (quick: rel,
 * size, modification time, inode and a hash of the first and last 64 KiB;
 * content: rel, size and a hash of every byte) and every key that changes
 * results; not the output root, threads or logging. `path` is stat'ed and
 * read (a regular file only); a missing or unreadable file still hashes,
 * with a marker in place of its bytes, so this never fails. */
void kmq_runner_config_hash(const kmq_job_spec *spec, uint64_t seed, const char *path,
                            const char *rel, char out[17]);

/* One image the job lists now, as a run hands it to the report: what its
 * folder's summary must say to count as done. All borrowed. */
typedef struct kmq_expected_image {
    const char *job;
    const char *rel;
    const char *path;
    const char *dir;  /* image folder relative to the output root */
    const char *hash; /* config hash of its current configuration and file; NULL:
                       * not known, its summary is reported as it stands (or, when
                       * `unchecked`, as pending) */
    bool unchecked;   /* its summary could not be checked against the current
                       * configuration (a signal stopped the hash): not ok */
    /* An image that failed without a folder of its own (kmq_fsx_mkdirs
     * refused a planted link): its error summary, kept only in memory. */
    const kmq_summary *unrecorded;
    /* What the report draws for it: the job's report key now (a summary
     * records the value it was made with, which may differ: the key is not
     * in the config hash). */
    kmq_report_mode report;
} kmq_expected_image;

/* The run files kmq_report_build reads. */
typedef enum kmq_run_file {
    KMQ_RUN_FILE_SUMMARY, /* an image's summary.json */
    KMQ_RUN_FILE_RUN_JSON /* OUT/run.json (read only when rebuilding without `info`) */
} kmq_run_file;

/* Told of each run file kmq_report_build sets aside because it does not
 * read back (kmq_summary_read or kmq_run_info_read refused it: damaged,
 * edited, not written by this kmq). `why` is borrowed for the call; where =
 * the file, msg names the field. A refused summary is left out (its image
 * does not count as done: the next `kmq run` redoes it); a refused run.json
 * only loses the run facts it held. */
typedef void (*kmq_refused_fn)(void *ctx, kmq_run_file file, const kmq_err *why);

/* Rebuilds OUT/run.json and OUT/elbow.csv (and the report) from every
 * summary.json under `out_root`. `info` is the run's own facts; NULL keeps
 * those of the existing run.json, with its status recomputed. `expected`
 * (n_expected entries, borrowed; NULL from `kmq report`, which does not know
 * the job) lists every image the job lists now: a summary with another
 * config hash is reported "stale", an image without a summary "pending"
 * (or with its unrecorded error), and the run's status is "complete" only
 * when each of them is ok. `refused` (may be NULL) is called with `ctx` for
 * each file set aside; the files are still written, also when every
 * summary found was refused. Without `expected` and without any
 * summary.json at all there is nothing to report: KMQ_E_NOT_FOUND. Returns
 * KMQ_OK, KMQ_E_NOT_FOUND, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_report_build(const char *out_root, const kmq_run_info *info,
                                           const kmq_expected_image *expected, size_t n_expected,
                                           kmq_refused_fn refused, void *ctx, kmq_err *err);

/* The state of a job array on an output root, as `kmq report` and every
 * shard's run.json tell it (shards.c): the shard count N of the newest
 * shard records, the shards that never ran, did not finish or hold images
 * not done (with why), those running now, and the command line that
 * re-runs just the missing ones. Owned; kmq_array_state_clear frees. */
typedef struct kmq_array_state {
    uint32_t count;    /* 0: no shard record found */
    char *job_file;    /* absolute, from the records */
    uint32_t *missing; /* ascending */
    char **why;        /* per missing shard */
    size_t nmissing;
    uint32_t *running;
    size_t nrunning;
    char *rerun;                         /* NULL when nothing is missing */
    size_t images, ok, failed, not_done; /* over every image the job lists now */
    char *started_utc;                   /* earliest start of the shards, or NULL */
    double wall_s;                       /* earliest start to latest end */
    int threads;                         /* most threads a shard used */
} kmq_array_state;

void kmq_array_state_clear(kmq_array_state *a);

/* `kmq report` for a job array: reads the shard records under `out_root`,
 * loads the job file (`job_path`, or NULL: the one the records name), and
 * rebuilds run.json, elbow.csv and index.html as a run would, with every
 * image the job lists now (missing ones "pending") and run.json "shards".
 * opts: only progress (REFUSED events) and cancel are used. Returns KMQ_OK
 * (state filled), KMQ_E_NOT_FOUND (no shard record and no job_path: the
 * caller reports from the summaries alone), KMQ_E_CONFIG / KMQ_E_NOT_FOUND
 * (the job file), KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_runner_report(const char *out_root, const char *job_path,
                                            const kmq_run_opts *opts, kmq_array_state *state,
                                            kmq_err *err);

#endif
