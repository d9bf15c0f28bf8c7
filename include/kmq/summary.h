/* summary.h — summary.json (one image), run.json and elbow.csv (one run)
 * (layer L2; hides the JSON library).
 *
 * The documents are formatted from the plain structs below, which the runner
 * fills; `kmq report` reads summaries back into the same structs, so run-level
 * files come out identical whether written by a run or rebuilt afterwards.
 * Numbers are written locale-independently; NaN and infinity never appear
 * (psnr_db of a lossless result is null). No parallel regions.
 */
#ifndef KMQ_SUMMARY_H
#define KMQ_SUMMARY_H

#include "kmq/kmeans.h"
#include "kmq/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMQ_SUMMARY_SCHEMA 1

typedef struct kmq_file_info {
    char *path; /* relative to the image folder; NULL: not written */
    uint64_t bytes;
    int bits_per_pixel;
} kmq_file_info;

typedef struct kmq_palette_entry {
    uint8_t rgb[3];
    uint8_t alpha; /* with kmq_k_result.alpha: 0..255 (tRNS); else unused */
    uint64_t pixels;
} kmq_palette_entry;

/* One k of one image. */
typedef struct kmq_k_result {
    size_t k;
    size_t k_effective;
    double inertia;
    double mse;
    double mse_output;
    double psnr_db; /* ignored (null) when mse_output == 0 */
    int iterations;
    bool converged;
    int restarts;
    int best_restart;
    double *restart_inertia;    /* restarts entries */
    kmq_palette_entry *palette; /* k_effective entries */
    bool alpha;                 /* the palette has alpha (the image kept it): mse, mse_output
                                   and psnr_db are then over RGBA (docs/design.md §19) */
    kmq_file_info indexed, labels, swatch;
    uint64_t raw_bytes, packed_bytes, png_bytes;
    double ratio_vs_raw, ratio_vs_input;
    double fit_s, map_s;
    /* Colour difference of the written image, per pixel between the input
     * colour and its palette colour: Euclidean distance in OKLab times 100
     * (ΔE_OK; about 2 is just noticeable), mean and 95th percentile over
     * the pixels. Whatever the space of the fit, so that spaces compare. */
    double delta_e_mean, delta_e_p95;
} kmq_k_result;

/* One k fitted while searching for a quality target: the PSNR of the
 * image it would write (psnr_db ignored when mse_output == 0: lossless). */
typedef struct kmq_target_try {
    size_t k;
    double mse_output, psnr_db;
} kmq_target_try;

/* One image's summary. Plain data: zero-initialise; kmq_summary_clear frees
 * every owned string and array. */
typedef struct kmq_summary {
    bool ok;
    char *error_code; /* stable code (kmq_status_name) when !ok */
    char *error_message;
    /* input */
    char *path;
    char *rel; /* path relative to the input root */
    uint64_t bytes;
    char *format;
    uint32_t width, height;
    int bands;
    int alpha_channel; /* the file has alpha: 1 or 0; -1 not known (a summary
                          of a kmq before input.alpha) */
    uint64_t pixels, unique_colors;
    /* config */
    char *job;
    size_t *k;
    size_t nk;
    int restarts, max_iter;
    double tol;
    char *init; /* "kmeans++" | "random" */
    uint64_t seed, sample;
    char *identity; /* resume identity, "quick" | "content"; NULL (null) when unknown */
    int threads;
    char *hash; /* config hash (resume key), hex */
    /* "floyd-steinberg", or NULL: no dither (config.dither is then absent,
     * as in summaries written before the key) */
    char *dither;
    double dither_strength; /* 0..1; meaningful with dither only */
    /* What became of the file's alpha: "keep" or "flatten"; NULL when it
     * has none (config.alpha is then absent). */
    char *alpha;
    /* "oklab", or NULL: rgb, the default (config.space is then absent, as
     * in summaries written before the key). */
    char *space;
    /* Where the palette came from when not the image's own fit: mode
     * "shared" (the job's shared palette) or "file" (palette_file), and
     * that palette's hash. NULL: the image's own fit (the field is left
     * out of summary.json). */
    char *palette_mode, *palette_hash;
    /* What the report draws for the image (job key report): "full" or
     * "none", or NULL: light, the default (config.report is then absent,
     * as in summaries written before the key). Not in the hash. */
    char *report;
    /* The quality target (job key target_psnr), or 0: none (config.target_psnr
     * and "target" are then absent). With a target, results holds one k:
     * the smallest of config.k whose written image reaches it, or when none
     * does (target_reached false) the largest. tried: every k the search
     * fitted, ascending. */
    double target_psnr;
    bool target_reached;
    kmq_target_try *tried;
    size_t ntried;
    /* results, ascending k */
    kmq_k_result *results;
    size_t nresults;
    bool has_elbow; /* elbow.k is a number (else null) */
    size_t elbow_k;
    double histogram_s, total_s;
} kmq_summary;

void kmq_summary_clear(kmq_summary *s);

/* Frees what one result owns (palette, restart inertia, file names). */
void kmq_k_result_clear(kmq_k_result *r);

/* Turns `s` into the error form: no results, no elbow, status error with
 * `code` and `message` (copied). The input and config parts stay. Returns
 * KMQ_OK or KMQ_E_NOMEM (then the error strings may be missing). */
KMQ_MUST_CHECK kmq_status kmq_summary_set_error(kmq_summary *s, const char *code,
                                                const char *message);

/* Writes s as summary.json at `path`, atomically and durably. Returns
 * KMQ_OK, KMQ_E_WRITE, KMQ_E_NOMEM or KMQ_E_ARG (an unsigned value above
 * 2^63 - 1, which JSON readers cannot hold exactly; an array NULL with a
 * non-zero count). */
KMQ_MUST_CHECK kmq_status kmq_summary_write(const char *path, const kmq_summary *s, kmq_err *err);

/* Reads a summary.json back (every field above), checking each field's
 * type and range and the facts fields must agree on (k and k_effective in
 * 1..KMQ_MAX_K, k_effective <= k, results ascending by k and matching
 * config.k, array lengths equal to their counts, width * height == pixels,
 * ...; the list is at the top of summary_read.c). `out` is written only on
 * success. Returns KMQ_OK, KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE,
 * KMQ_E_TOO_LARGE (over 64 MiB), KMQ_E_DECODE (not a schema-1 summary, or a
 * field kmq would not have written: where = path, the message names the
 * field and its value) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_summary_read(const char *path, kmq_summary *out, kmq_err *err);

/* The elbow suggested for a whole job (run.json "jobs"[].elbow), found by
 * the caller (the report) from its images' inertia curves. */
typedef struct kmq_job_elbow {
    const char *job; /* job name as in the summaries (NULL: no job name) */
    bool found;      /* false: no elbow (elbow.k is null) */
    size_t k;
    size_t images; /* images whose curves were combined */
    size_t nk;     /* k values of the combined curve */
    /* The combined curve (run.json "curve"): ncurve points (nk, or 0 when
     * no curve was combined), the k values ascending and, per k, the mean,
     * 10th and 90th percentile of the images' normalised inertia. Borrowed. */
    size_t ncurve;
    const size_t *curve_k;
    const double *curve_mean, *curve_p10, *curve_p90;
} kmq_job_elbow;

/* What run.json says of the shards of a job array ("shards", written only
 * when this is set): N, the shards that never ran or did not finish (or
 * hold images not done), and the line that re-runs just those. */
typedef struct kmq_run_shards {
    uint32_t count;
    const uint32_t *missing; /* ascending */
    size_t nmissing;
    const char *const *why;  /* per missing shard: "never ran", "interrupted", ... */
    const uint32_t *running; /* shards running now (their lock is held) */
    size_t nrunning;
    const char *rerun; /* command line re-running the missing shards, or NULL */
} kmq_run_shards;

/* Run-level facts that summaries do not hold. */
typedef struct kmq_run_info {
    const char *status;   /* "complete", "failures", "interrupted" */
    const char *job_file; /* may be NULL */
    int threads;
    double wall_s;                /* whole run: the sum of its sessions' wall times */
    const char *started_utc;      /* ISO 8601; the first session's start */
    const kmq_run_shards *shards; /* NULL: not a job array ("shards" not written) */
    unsigned sessions;            /* sessions the run took (a run resumed after an
                                     interruption continues it); 0: not known */
    double last_session_s;        /* the last session's wall time (with sessions) */
} kmq_run_info;

/* Run-level facts read back from an existing run.json (the fields of
 * kmq_run_info above, owned). Zero-initialise; kmq_run_facts_clear frees. */
typedef struct kmq_run_facts {
    char *status;
    char *job_file; /* NULL when null in the file */
    int threads;
    double wall_s;
    char *started_utc; /* NULL when null in the file */
    unsigned sessions; /* 0 when absent (run.json of an earlier kmq) */
    double last_session_s;
} kmq_run_facts;

void kmq_run_facts_clear(kmq_run_facts *f);

/* Carries the facts of an earlier run.json into `info` (which borrows
 * their strings): its threads, time, start and sessions, and its status
 * where it was interrupted, so that rebuilding run.json keeps them. The
 * job file is left as `info` has it. */
void kmq_run_info_keep_facts(kmq_run_info *info, const kmq_run_facts *old);

/* Reads the run-level facts of the run.json at `path` (what kmq_run_write
 * wrote from a kmq_run_info), so that `kmq report` can rebuild run.json
 * without losing them; each field is checked as kmq_summary_read checks
 * its own. `out` is written only on success. Returns KMQ_OK,
 * KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE, KMQ_E_TOO_LARGE, KMQ_E_DECODE (not a
 * schema-1 run.json, or a field out of range: where = path, the message
 * names the field) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_run_info_read(const char *path, kmq_run_facts *out, kmq_err *err);

/* The record one shard of a job array leaves in the output root
 * (OUT/.kmq-shards/shard-I-of-N.json, written by the runner at the start
 * of the shard and again at its end), so that the report can tell which
 * shards never ran or did not finish. Zero-initialise;
 * kmq_shard_record_clear frees the strings. */
typedef struct kmq_shard_record {
    uint32_t index, count; /* shard I of N */
    char *status;          /* "running" | "complete" | "failures" | "interrupted" */
    char *job_file;        /* absolute path of the job file */
    char *host;
    uint32_t pid;
    char *started_utc;     /* "YYYY-MM-DDTHH:MM:SSZ" */
    char *ended_utc;       /* NULL while running */
    uint64_t started_unix; /* seconds since 1970, for the run's span */
    uint64_t ended_unix;   /* 0 while running */
    int threads;
    uint64_t images, done, skipped, failed; /* images of the shard; processed ok now,
                                               already done, failed */
    char *resubmit; /* the submission line without --array (from KMQ_RESUBMIT), or NULL */
} kmq_shard_record;

void kmq_shard_record_clear(kmq_shard_record *r);

/* Writes r to `path` atomically and durably. Returns KMQ_OK, KMQ_E_WRITE
 * or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_shard_record_write(const char *path, const kmq_shard_record *r,
                                                 kmq_err *err);

/* Reads a record written by kmq_shard_record_write, every field checked.
 * `out` is written only on success. Returns KMQ_OK, KMQ_E_NOT_FOUND,
 * KMQ_E_UNREADABLE, KMQ_E_TOO_LARGE, KMQ_E_DECODE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_shard_record_read(const char *path, kmq_shard_record *out,
                                                kmq_err *err);

/* Error codes of the placeholders a report puts in run.json for images
 * that the job lists but that have no current result: "pending" (no
 * summary yet: not processed, interrupted, another shard's) and "stale"
 * (a summary of another configuration or of an earlier file). run.json
 * gives them that status instead of "error", and counts them in
 * totals.not_done, not in totals.failed. */
#define KMQ_RUN_PENDING "pending"
#define KMQ_RUN_STALE   "stale"

/* One image of a run: its folder relative to the output root and its summary. */
typedef struct kmq_run_image {
    const char *dir; /* relative to the output root */
    const kmq_summary *summary;
} kmq_run_image;

/* Writes OUT/run.json and OUT/elbow.csv atomically from the images' summaries
 * (in the order given: callers sort by job, then rel). Returns KMQ_OK,
 * KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_run_write(const char *out_root, const kmq_run_info *info,
                                        const kmq_run_image *images, size_t n, kmq_err *err);

/* kmq_run_write, and each entry of run.json's "jobs" gets an "elbow" key:
 * {"method": "kneedle-mean-normalised", "k": number | null, "images",
 * "k_values"} from the entry of `elbows` (n_elbows, borrowed) with the same
 * job name, null for a job without one. Same returns. */
KMQ_MUST_CHECK kmq_status kmq_run_write_with_elbows(const char *out_root, const kmq_run_info *info,
                                                    const kmq_job_elbow *elbows, size_t n_elbows,
                                                    const kmq_run_image *images, size_t n,
                                                    kmq_err *err);

/* ---- palettes: read from a file the user gives (job key palette_file:
 * kmq's kK.palette.json, a GIMP .gpl, or the PLTE of an indexed PNG), and
 * written as the files of a job's shared palette (kK.palette.json, kK.gpl,
 * kK.palette.png). summary_palette.c. */

/* Largest palette file read (a .gpl of 256 named entries is ~10 KiB; a
 * kK.palette.json with the provenance of many images is larger). */
#define KMQ_PALETTE_FILE_MAX ((size_t)64 << 20)

typedef struct kmq_palette {
    size_t n;                      /* entries, 1..KMQ_MAX_K */
    double centers[KMQ_MAX_K * 3]; /* mapped to: the fitted centres, or the given colours */
    uint8_t rgb[KMQ_MAX_K * 3];    /* what the PNG's PLTE holds: centres rounded */
    uint64_t weights[KMQ_MAX_K];   /* pixels of each entry in the data it was fitted on */
    char hash[17];                 /* a kmq palette's provenance hash ("" for other files) */
    /* A kmq shared palette only (0 / "" for other files): the images it was
     * fitted on, and the palette this fit replaced when the job's images or
     * keys changed since an earlier run (its hash and image count). */
    size_t images;
    char replaces[17];
    size_t replaces_images;
} kmq_palette;

/* Reads a palette file, telling the format by its first bytes: '{' kmq's
 * JSON ("palette": [{"rgb": [r, g, b], "centre": [..]}]: the centres
 * when present, else the colours), "GIMP Palette" a .gpl, the PNG signature
 * an indexed PNG (its PLTE, every entry). Errors: KMQ_E_CONFIG with
 * err->where "FILE:LINE" for a .gpl line, "FILE" otherwise; KMQ_E_NOT_FOUND,
 * KMQ_E_UNREADABLE, KMQ_E_NOMEM. Duplicate colours are kept (labels follow
 * the file's order; a tie goes to the lowest index). */
KMQ_MUST_CHECK kmq_status kmq_palette_load(const char *path, kmq_palette *out, kmq_err *err);

/* A 64-bit digest of the palette's entries (centres and count), for the
 * config hash: another palette means other labels. */
uint64_t kmq_palette_digest(const kmq_palette *p);

/* One image a shared palette was fitted on. */
typedef struct kmq_palette_source {
    const char *rel;  /* path relative to its input root */
    const char *hash; /* its config hash (without the palette) */
    bool used;        /* false: it failed to decode and is not in the union */
} kmq_palette_source;

/* What else kK.palette.json records of a shared fit. */
typedef struct kmq_palette_fit_info {
    size_t k;
    const char *job;
    uint64_t pixels, unique_colors;
    double inertia;
    int iterations, restarts;
    bool converged;
    const kmq_palette_source *sources;
    size_t nsources;
    /* The earlier palette of the job this fit replaces ("replaces" in the
     * file): its hash and the images it covered; NULL: none was there. */
    const char *replaces_hash;
    size_t replaces_images;
} kmq_palette_fit_info;

/* Writes DIR/kK.palette.json and DIR/kK.gpl (each atomically; the swatch
 * kK.palette.png is the PNG writer's). Returns KMQ_OK, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_palette_write(const char *dir, const kmq_palette *p,
                                            const kmq_palette_fit_info *info, kmq_err *err);

#endif
