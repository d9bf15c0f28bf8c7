/* runner_internal.h — private to the runner module (runner.c: a whole
 * job; runner_image.c: one image; runner_identity.c: what makes an image
 * the same image). Nothing here is visible outside libkmq. */
#ifndef KMQ_RUNNER_INTERNAL_H
#define KMQ_RUNNER_INTERNAL_H

#include "internal.h"
#include "kmq/job.h"
#include "kmq/runner.h"
#include "kmq/summary.h"

#include <stdbool.h>
#include <stdint.h>

/* Whether the run's cancel flag is up. */
KMQ_PRIVATE bool kmq__run_cancelled(const kmq_run_opts *opts);

/* Hands `p` to the run's progress callback (if any), with the time since t0. */
KMQ_PRIVATE void kmq__run_progress(const kmq_run_opts *opts, kmq_progress *p, double t0);

/* runner_outputs.c. Whether `name` is a file kmq writes into an image
 * folder (kmq/outputs.h) or a temporary file of fsx. */
KMQ_PRIVATE bool kmq__is_image_output(const char *name);

/* Removes every such file of the image folder `dir` (best effort). */
KMQ_PRIVATE void kmq__remove_image_outputs(const char *dir);

/* Flushes a finished image's files and folder to disk; KMQ_OK or
 * KMQ_E_WRITE. */
KMQ_PRIVATE kmq_status kmq__sync_image_outputs(const char *dir, kmq_err *err);

/* Removes the temporaries a killed run left in `dir`. */
KMQ_PRIVATE void kmq__remove_stale_temps(const char *dir);

/* What stat says of an input file. It goes into the config hash, and the
 * runner compares it again after each pass and before the summary: a
 * difference means the file changed while it was processed (the first
 * pass may have read one version and the second another, or the summary
 * would describe a file that is no longer there). Small images are served
 * from memory in the second pass, so only stat can tell. */
typedef struct kmq__file_stamp {
    bool ok; /* stat succeeded; else errno_ holds why not */
    int errno_;
    bool regular;
    uint64_t size, mtime_ns, ino, dev;
} kmq__file_stamp;

/* The stat of `path` now (ok false, errno_ set, when it fails). */
KMQ_PRIVATE kmq__file_stamp kmq__stamp_file(const char *path);

/* KMQ_OK when `path` still has the stamp `before`, else KMQ_E_CHANGED with
 * what differs. */
KMQ_PRIVATE kmq_status kmq__check_unchanged(const char *path, const kmq__file_stamp *before,
                                            kmq_err *err);

/* The config hash (16 hex digits and a NUL into out) of one image of one
 * job whose file had the stamp `stamp` (runner_identity.c says what goes
 * in). Reading the file stops early when `cancel` (may be NULL) goes up;
 * the hash is then not to be trusted. */
KMQ_PRIVATE void kmq__config_hash(const kmq_job_spec *spec, uint64_t seed, const char *path,
                                  const char *rel, const kmq__file_stamp *stamp,
                                  const atomic_int *cancel, char out[17]);

/* The palette every image of a job maps to, when it is not its own fit:
 * a shared palette (one per k of the job) or a palette file (one). */
typedef struct kmq__job_palette {
    const char *mode;          /* "shared" | "file" */
    char hash[17];             /* into every image's config hash and summary */
    kmq_palette *per_k;        /* nk palettes, in k order (owned) */
    const kmq_palette *single; /* palette_file: spec->given (borrowed) */
} kmq__job_palette;

/* The palette of the i-th k of the job. */
KMQ_PRIVATE const kmq_palette *kmq__job_palette_k(const kmq__job_palette *jp, size_t i);

/* An image's config hash with its job's palette folded in (jp NULL: the
 * hash unchanged), in place. */
KMQ_PRIVATE void kmq__config_hash_palette(const kmq__job_palette *jp, char hash[17]);

/* Whether summary `s` holds results of the configuration `hash` of `spec`:
 * its hash is that one, and it is not of a kmq before alpha = keep that
 * flattened an image which may have alpha (input.alpha not recorded, 2 or
 * 4 bands), since the hash, made before the file is opened, cannot tell
 * whether alpha applies. */
KMQ_PRIVATE bool kmq__summary_current(const kmq_summary *s, const char *hash,
                                      const kmq_job_spec *spec);

/* Builds (or, when OUT/JOB/_palette holds one for the same images and keys,
 * reads) the shared palette of job `j` from every image the job lists
 * (`inputs`, all shards). may_fit false (a shard): a missing or stale
 * palette is KMQ_E_CONFIG, saying to run `kmq palette` first. Fills jp;
 * kmq__job_palette_clear frees. runner_palette.c. */
KMQ_PRIVATE kmq_status kmq__shared_palette(const kmq_job *job, size_t j,
                                           const kmq_input_list *inputs, const kmq_run_opts *opts,
                                           bool may_fit, kmq__job_palette *jp, kmq_err *err);

KMQ_PRIVATE void kmq__job_palette_clear(kmq__job_palette *jp);

/* Fills `fit` as if the palette `pal` were the fit of k (prep borrowed):
 * every colour's nearest entry into labels, the inertia, one run of no
 * iteration. KMQ_OK, KMQ_E_ARG or KMQ_E_NOMEM. runner_palette.c. */
KMQ_PRIVATE kmq_status kmq__given_palette_fit(const kmq_kmeans_prepared *prep,
                                              const kmq_palette *pal, size_t k, const kmq_par *par,
                                              uint8_t *labels, kmq_fit *fit, kmq_err *err);

/* The palette of every job of `job` that does not fit per image
 * (*palettes[j]: NULL for per_image jobs): palette_file's, or the shared
 * one, fitted when may_fit, else read back. lenient: a shared palette that
 * is not there leaves its job's entry NULL (its images then hash as not
 * done) instead of failing, for --dry-run and `kmq report`. Free with
 * kmq__free_job_palettes. runner_palette.c. */
KMQ_PRIVATE kmq_status kmq__job_palettes(const kmq_job *job, const kmq_input_list *inputs,
                                         const kmq_run_opts *opts, bool may_fit, bool lenient,
                                         kmq__job_palette **job_pal,
                                         const kmq__job_palette ***palettes, kmq_err *err);

KMQ_PRIVATE void kmq__free_job_palettes(const kmq_job *job, kmq__job_palette *job_pal,
                                        const kmq__job_palette **palettes);

/* Processes one image into its folder `dir` and fills `s` (ok or not);
 * `stamp` is the file as stat'ed before `hash` read it (runner_image.c).
 * Returns KMQ_OK when the image is done, an image-level error (s gets the
 * error form), or KMQ_E_INTERRUPTED / KMQ_E_NOMEM from which the run stops. */
KMQ_PRIVATE kmq_status kmq__run_image(const kmq_job_spec *spec, uint64_t seed,
                                      const kmq_input_file *in, const kmq__file_stamp *stamp,
                                      const char *hash, const kmq__job_palette *jp, const char *dir,
                                      const kmq_run_opts *opts, kmq_progress *prog, double t_run,
                                      kmq_summary *s, kmq_err *err);

/* Turns a failed image's summary into the error form: no results, the
 * stable code and message of `image_err`. KMQ_OK or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__make_error_summary(kmq_summary *s, const kmq_err *image_err);

/* Takes the lock of the output root `root` for this run (runner_lock.c):
 * *fd_out holds it until closed. Returns KMQ_OK, KMQ_E_WRITE (held by
 * another run, a shard of another N, or no fcntl locks on this file system:
 * the message says which) or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__lock_output(const char *root, const kmq_run_opts *opts, int *fd_out,
                                        kmq_err *err);

#endif
