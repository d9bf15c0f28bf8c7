/* job.h — the job file: configuration structs, defaults, validation, INI
 * loading, and expansion of inputs into a list of files (layer L2; hides
 * inih). Knows nothing of images: an input is a path.
 *
 * Every key is declared once in a table in job.c (name, type, bounds,
 * default), so parsing, validation and `kmq validate` cannot drift apart.
 * Errors carry where = "FILE:LINE".
 */
#ifndef KMQ_JOB_H
#define KMQ_JOB_H

#include "kmq/error.h"
#include "kmq/formats.h"
#include "kmq/kmeans.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { KMQ_SAVE_INDEXED = 1u, KMQ_SAVE_LABELS = 2u, KMQ_SAVE_PALETTE = 4u };

/* max_decode_bytes = auto: the runner sizes the budget to the machine. */
#define KMQ_DECODE_AUTO UINT64_MAX

/* How resume recognises an image already done (job key `identity`).
 * QUICK: path, size, modification time, inode, and a hash of the first and
 * last 64 KiB; an edit in the middle that keeps size and time is missed.
 * CONTENT: path, size and a hash of every byte; mtime and inode are left
 * out, so a copied or restored tree with the same bytes is still done. */
/* Symbolic links met while walking a folder input (job key `links`).
 * INSIDE: a link whose target lies outside the input folder is not read (a
 * file: the image fails as unreadable, saying so; a folder: not entered,
 * listed by `kmq validate`), so an archive from the internet cannot make
 * kmq read, and publish in its report, the user's own files. FOLLOW:
 * every link is followed, for photo libraries built of links. */
typedef enum kmq_links { KMQ_LINKS_INSIDE = 0, KMQ_LINKS_FOLLOW = 1 } kmq_links;

/* Error diffusion in the indexed PNG (job keys `dither`, `dither_strength`).
 * The label map is never dithered: it stays the nearest-centre
 * segmentation. FS: Floyd-Steinberg, serpentine, in integers (bit-exact on
 * every machine and at any thread count; docs/design.md). */
typedef enum kmq_dither_mode { KMQ_DITHER_NONE = 0, KMQ_DITHER_FS = 1 } kmq_dither_mode;

/* What becomes of an input's alpha channel (job key `alpha`): KEEP fits
 * RGBA colours and writes a tRNS chunk; FLATTEN composites onto
 * `background` first. Images without alpha are the same either way. */
typedef enum kmq_alpha_mode { KMQ_ALPHA_KEEP = 0, KMQ_ALPHA_FLATTEN = 1 } kmq_alpha_mode;

/* The colour space of the fit and the mapping (job key `space`): RGB, or
 * OKLab (kmq/oklab.h) with the palette written back in sRGB. */
typedef enum kmq_space { KMQ_SPACE_RGB = 0, KMQ_SPACE_OKLAB = 1 } kmq_space;
/* Where each image's palette comes from (job key `palette`). PER_IMAGE:
 * its own fit. SHARED: one fit per k on the union histogram of every image
 * of the job, written to OUT/JOB/_palette/; every image maps to it. */
typedef enum kmq_palette_mode {
    KMQ_PALETTE_PER_IMAGE = 0,
    KMQ_PALETTE_SHARED = 1
} kmq_palette_mode;

typedef enum kmq_identity { KMQ_IDENTITY_QUICK = 0, KMQ_IDENTITY_CONTENT = 1 } kmq_identity;

/* What the report draws for a job's images (job key `report`). It changes
 * no result, so it is not in the config hash: changing it redoes no image,
 * and `kmq report OUT` redraws the pages. LIGHT: thumb.jpg per image, the
 * overview and a detail page whose charts are inline. FULL: also
 * preview.jpg, the chart files (elbow, restarts, palettes) and the colour
 * scatter. NONE: no page and no picture; summaries, run.json and elbow.csv
 * only. */
typedef enum kmq_report_mode {
    KMQ_REPORT_LIGHT = 0,
    KMQ_REPORT_FULL = 1,
    KMQ_REPORT_NONE = 2
} kmq_report_mode;

/* "light", "full" or "none". */
const char *kmq_report_mode_name(kmq_report_mode mode);

typedef struct kmq_job_input {
    char *pattern; /* as written: file, folder or glob (relative to the job file's folder) */
    int line;      /* line in the job file */
} kmq_job_input;

/* One [job NAME] section with [defaults] applied. */
typedef struct kmq_job_spec {
    char *name;
    int line;  /* line of the section header */
    size_t *k; /* ascending, distinct */
    size_t nk;
    bool k_auto;        /* k = auto: k is 2..256, searched for target_psnr */
    double target_psnr; /* dB; 0: off. Per image, the smallest k of the list whose
                           written image reaches it (docs/design.md, quality target) */
    int restarts;
    int max_iter;
    double tol;
    kmq_init init;
    uint64_t sample; /* 0: all pixels */
    unsigned save;   /* KMQ_SAVE_* bits */
    uint8_t background[3];
    uint64_t max_pixels;
    uint64_t max_decode_bytes; /* 0: no limit; KMQ_DECODE_AUTO: sized to the machine */
    kmq_formats formats;       /* formats read; others are refused as unsupported */
    bool recursive;
    kmq_identity identity;
    kmq_links links;        /* symbolic links met in folder walks */
    kmq_dither_mode dither; /* error diffusion in the indexed PNG */
    double dither_strength; /* 0..1: share of each pixel's error diffused */
    kmq_space space;        /* of the fit and the mapping */
    kmq_alpha_mode alpha;   /* of inputs with an alpha channel */
    kmq_palette_mode palette;
    char *palette_file;        /* as written (relative to the job file's folder); NULL: none */
    struct kmq_palette *given; /* palette_file's palette once loaded
                                  (kmq_runner_load_palettes); k is then its size */
    kmq_report_mode report;    /* what the report draws; not in the config hash */
    kmq_job_input *inputs;
    size_t ninputs;
} kmq_job_spec;

/* A whole job file. Plain data: zero-initialise; kmq_job_clear frees. */
typedef struct kmq_job {
    char *path;     /* the job file as given ("" for jobs built in code) */
    char *base_dir; /* relative paths resolve against this */
    char *output;   /* output root, resolved against base_dir */
    int threads;    /* 0: all cores */
    uint64_t seed;
    bool flat; /* image folders directly under output (kmq quantize) */
    kmq_job_spec *jobs;
    size_t njobs;
} kmq_job;

/* Loads and validates `path`. On failure err->where is "FILE:LINE" (or
 * "FILE" when no line applies) and nothing is returned. Returns KMQ_OK,
 * KMQ_E_CONFIG, KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_job_load(const char *path, kmq_job *out, kmq_err *err);

void kmq_job_clear(kmq_job *job);

/* Fills spec with the documented defaults (no name, no inputs, k empty). */
void kmq_job_spec_defaults(kmq_job_spec *spec);

/* Parses a k list ("2-16:2, 32") into a new ascending, distinct array
 * (*out, free()). Returns KMQ_OK, KMQ_E_CONFIG (message says what is wrong)
 * or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_job_parse_k_list(const char *text, size_t **out, size_t *n,
                                               kmq_err *err);

/* Sets job key `key` of `spec` from its text, through the same table and
 * parser as a job file ([defaults]/[job] keys only: not output, threads,
 * seed or input). Returns KMQ_OK, KMQ_E_CONFIG (unknown key, or a bad value:
 * the message says which) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_job_spec_set(kmq_job_spec *spec, const char *key, const char *value,
                                           kmq_err *err);

/* Cross-key checks of one spec (k <= 256 with indexed output, inputs given,
 * ...). Returns KMQ_OK or KMQ_E_CONFIG. */
KMQ_MUST_CHECK kmq_status kmq_job_spec_check(const kmq_job_spec *spec, kmq_err *err);

/* One row of the key table (job.c), for `kmq validate` and documentation.
 * All strings are static. */
typedef struct kmq_job_key_info {
    const char *name;
    const char *sections;      /* where it may appear: "run", "defaults, job" or "job" */
    const char *type;          /* value syntax, e.g. "k list", "integer", "bool" */
    const char *range;         /* accepted values, e.g. "1..10000" */
    const char *default_value; /* as it would be written in a job file; NULL: required */
    const char *help;          /* one line */
} kmq_job_key_info;

/* Row i of the key table (documentation order), or NULL when i is past the
 * end. Static storage; never fails. */
const kmq_job_key_info *kmq_job_key(size_t i);

/* Writes the effective value of `key` as it would appear in a job file
 * ("2, 4, 8", "kmeans++", "#ffffff") into buf (always NUL-terminated when
 * size > 0). [run] keys read `job`, the others `spec`; both borrowed, either
 * may be NULL when the key does not need it. Returns the length the full
 * text needs (as snprintf), or 0 for an unknown key or a missing struct. */
size_t kmq_job_format_value(const kmq_job *job, const kmq_job_spec *spec, const char *key,
                            char *buf, size_t size);

/* One image file a job will process. */
typedef struct kmq_input_file {
    char *path;        /* as opened */
    char *rel;         /* path relative to its input root; unique within the job */
    size_t job;        /* index into kmq_job.jobs */
    bool outside_link; /* a link out of its input folder under links = inside: not read */
} kmq_input_file;

typedef struct kmq_input_list {
    kmq_input_file *items;
    size_t n;
} kmq_input_list;

/* Expands every job's inputs: a folder takes its entries with an image
 * extension (.jpg .jpeg .png .tif .tiff .webp .gif .v, any case; special
 * files too, so that the run reports them), recursing when `recursive`
 * (symlink loops are not followed twice) but never into a folder of kmq's
 * own output (see kmq_job_list_inputs_skipping); a file or a glob match is
 * always taken. Sorted by job, then rel; a file reached twice in a
 * job is listed once. A pattern matching nothing, an unreadable folder, or a
 * job with no file at all is KMQ_E_CONFIG with where = "FILE:LINE". */
KMQ_MUST_CHECK kmq_status kmq_job_list_inputs(const kmq_job *job, kmq_input_list *out,
                                              kmq_err *err);

/* kmq_job_list_inputs, and *skipped (when not NULL) lists the folders left
 * out (items[].path; items[].rel says why, in words): links out of the input
 * folder under links = inside, and folders of kmq's own output: the
 * job's output root, and any folder holding kmq's .kmq.lock, a run.json or
 * a summary.json, so that an output root inside a recursive input is never
 * read back as input. Same returns; *skipped is written only on success. */
KMQ_MUST_CHECK kmq_status kmq_job_list_inputs_skipping(const kmq_job *job, kmq_input_list *out,
                                                       kmq_input_list *skipped, kmq_err *err);

void kmq_input_list_clear(kmq_input_list *list);

#endif
