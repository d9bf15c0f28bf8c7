/* job_internal.h — private glue between job.c (the table of keys) and
 * job_ini.c (the inih adapter). Nothing here is visible outside libkmq.
 */
#ifndef KMQ_JOB_INTERNAL_H
#define KMQ_JOB_INTERNAL_H

#include "internal.h"
#include "kmq/job.h"

/* Sections a key may appear in (bit set per table row). */
enum { KMQ__SEC_RUN = 1u, KMQ__SEC_DEFAULTS = 2u, KMQ__SEC_JOB = 4u };

/* How a key's value is parsed and stored. */
typedef enum key_type {
    KT_OUTPUT, /* path string in kmq_job, resolved against base_dir */
    KT_INPUT,  /* appends kmq_job_input items */
    KT_KLIST,
    KT_INT,      /* int field, bounds min..max */
    KT_U64,      /* uint64_t field, bounds min..max */
    KT_TOL,      /* double >= 0, finite */
    KT_BOOL,     /* bool field */
    KT_INIT,     /* kmq_init field */
    KT_SAVE,     /* unsigned KMQ_SAVE_* bits */
    KT_COLOR,    /* uint8_t[3] */
    KT_FORMATS,  /* kmq_formats */
    KT_BYTES,    /* uint64_t byte count, or KMQ_DECODE_AUTO */
    KT_IDENTITY, /* kmq_identity field */
    KT_LINKS,    /* kmq_links field */
    KT_DITHER,   /* kmq_dither_mode field */
    KT_UNIT,     /* double in 0..1 */
    KT_PALETTE,  /* kmq_palette_mode field; a palette file's path sets palette_file */
    KT_PATH,     /* char * field, as written */
    KT_REPORT,   /* kmq_report_mode field */
    KT_DB,       /* double, a PSNR in dB: 0 (off) or 1..200 */
    KT_SPACE,    /* kmq_space field */
    KT_ALPHA,    /* kmq_alpha_mode field */
} key_type;

struct kmq__job_key {
    kmq_job_key_info info; /* public view; first member */
    unsigned sections;     /* KMQ__SEC_* */
    key_type type;
    uint64_t min, max; /* KT_INT, KT_U64 */
    size_t offset;     /* into kmq_job ([run] keys) or kmq_job_spec */
};

typedef struct kmq__job_key kmq__job_key;

#define KMQ__SEC_SPEC (KMQ__SEC_DEFAULTS | KMQ__SEC_JOB)

/* Blank as the job file means it (space, tab, CR, LF, FF, VT). */
KMQ_PRIVATE int kmq__is_blank(char c);

/* Narrows [*begin, *end) to its text without leading or trailing blanks. */
KMQ_PRIVATE void kmq__trim_span(const char **begin, const char **end);

/* The table row named `name` (exact, case-sensitive), or NULL. */
KMQ_PRIVATE const kmq__job_key *kmq__job_key_find(const char *name);

/* KMQ__SEC_* bits of the sections that accept `key`. */
KMQ_PRIVATE unsigned kmq__job_key_sections(const kmq__job_key *key);

/* Whether `key` may be given more than once in one section (only `input`). */
KMQ_PRIVATE int kmq__job_key_repeatable(const kmq__job_key *key);

/* Parses `value` for `key` and stores it: [run] keys into `job` (output is
 * resolved against job->base_dir), job keys into `spec` (k replaces the
 * previous list, input appends one kmq_job_input per comma-separated item,
 * each carrying `line`). Either pointer may be NULL when the key does not
 * write there. On failure nothing of the old value is lost and err says what
 * is wrong with the value (no where). Returns KMQ_OK, KMQ_E_CONFIG or
 * KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__job_key_apply(const kmq__job_key *key, const char *value, int line,
                                          kmq_job *job, kmq_job_spec *spec, kmq_err *err);

/* Sets the [run] keys of `job` (threads, seed) to the table's defaults. */
KMQ_PRIVATE void kmq__job_run_defaults(kmq_job *job);

/* Whether `name` is usable as a job name: 1..128 bytes of letters, digits,
 * '-', '_' and '.', not starting with '.' (it becomes a folder name). */
KMQ_PRIVATE int kmq__job_name_ok(const char *name);

/* Whether `name` is taken by a file kmq writes at the top of the output
 * root (run.json, elbow.csv, index.html): a job folder of that name would
 * collide with it, and so would an image folder of the flat layout
 * (runner.c escapes those). */
KMQ_PRIVATE int kmq__job_name_reserved(const char *name);

/* `rel` resolved against `base` (NULL or "." : rel unchanged; absolute rel
 * unchanged). New string, NULL when out of memory. */
KMQ_PRIVATE char *kmq__job_path_join(const char *base, const char *rel);

/* ASCII case-insensitive equality (1 equal, 0 not), whatever the locale. */
KMQ_PRIVATE int kmq__ascii_ieq(const char *a, const char *b);

/* Frees what a spec owns (name, k, inputs) and zeroes it. */
KMQ_PRIVATE void kmq__job_spec_clear(kmq_job_spec *spec);

#endif
