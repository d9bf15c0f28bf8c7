/* job.c — the job file's keys, their values, and the expansion of inputs
 * into image files (layer L2).
 *
 * Every key is one row of `keys[]` below (name, sections, type, bounds,
 * default, help), in the manner of Redis's static_configs[]: the INI glue
 * (job_ini.c) validates and stores values through it, kmq_job_spec_defaults
 * parses the rows' default texts, kmq_job_spec_check re-checks the bounds of
 * specs built in code, and `kmq validate` lists it. Add a key here and
 * nowhere else.
 *
 * Value syntax, decided here:
 *   k          "4, 8, 16", ranges "2-16" and "2-16:2", any order, merged into
 *              an ascending list of distinct values in 1..KMQ_MAX_K.
 *   integers   decimal; counts (sample, max_pixels, seed) also take exact
 *              scientific notation ("1e9", "2.5e8"), never a fraction.
 *   tol        a decimal number with '.' as the point whatever LC_NUMERIC
 *              says (parsed under a private "C" locale with uselocale).
 *   bool       true/false, yes/no, on/off, 1/0 (any case).
 *   background "#rrggbb" or "#rgb" (each digit doubled), hex in any case.
 *   save       comma-separated subset of indexed, labels, palette (>= 1).
 *
 * Input expansion (kmq_job_list_inputs): an existing path is a file or a
 * folder; a path that does not exist but holds a wildcard is a glob(3). A
 * folder (given, or matched by a glob) takes the regular files with an image
 * extension, descending into subfolders when `recursive`; symlinks are
 * followed, and each folder (dev, ino) is entered once per input, so symlink
 * loops end; folders are read in byte order, so results never depend on the
 * order readdir returns. A file named or matched is always taken; a glob
 * match that is a folder is walked like a folder input. A pattern matching
 * nothing, a missing path, or an unreadable folder (also one met deep in a
 * recursive walk: nothing is skipped silently) is KMQ_E_CONFIG at the
 * input's line. `rel` is the path below the input
 * root (the folder; the glob's leading literal folder; a file's base name).
 * Per job, one real file (dev, ino) is listed once (under the smallest rel),
 * and equal rels of different files get "~2", "~3", ... in the order of
 * their full paths. Entries are sorted by job, then rel, byte-wise.
 *
 * Includes only libc and kmq headers (no inih: that is job_ini.c). Serial:
 * no parallel region, nothing here is called from one.
 */
#include "job_internal.h"
#include "kmq/outputs.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <fcntl.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The table of keys                                                   */

typedef enum key_type {
    KT_OUTPUT, /* path string in kmq_job, resolved against base_dir */
    KT_INPUT,  /* appends kmq_job_input items */
    KT_KLIST,
    KT_INT,   /* int field, bounds min..max */
    KT_U64,   /* uint64_t field, bounds min..max */
    KT_TOL,   /* double >= 0, finite */
    KT_BOOL,  /* bool field */
    KT_INIT,  /* kmq_init field */
    KT_SAVE,  /* unsigned KMQ_SAVE_* bits */
    KT_COLOR, /* uint8_t[3] */
    KT_FORMATS, /* kmq_formats */
    KT_BYTES,   /* uint64_t byte count, or KMQ_DECODE_AUTO */
    KT_IDENTITY, /* kmq_identity field */
} key_type;

struct kmq__job_key {
    kmq_job_key_info info; /* public view; first member */
    unsigned sections;     /* KMQ__SEC_* */
    key_type type;
    uint64_t min, max; /* KT_INT, KT_U64 */
    size_t offset;     /* into kmq_job ([run] keys) or kmq_job_spec */
};

#define SEC_SPEC   (KMQ__SEC_DEFAULTS | KMQ__SEC_JOB)
#define JOB_AT(f)  offsetof(kmq_job, f)
#define SPEC_AT(f) offsetof(kmq_job_spec, f)

/* One row per key: ROW(name, sections, type, min, max, field,
 *                      sections as text, type as text, range as text, default, help).
 * The default is parsed by the key's own parser (NULL: required). */
#define ROW(name, sec, type, lo, hi, field, sec_text, type_text, range, def, help)                 \
    {                                                                                              \
        {name, sec_text, type_text, range, def, help}, sec, type, lo, hi, field                    \
    }

/* Unsigned keys stop at 2^63 - 1: summaries record them, and JSON readers
 * hold integers exactly only up to there. */
static const struct kmq__job_key keys[] = {
    ROW("output", KMQ__SEC_RUN, KT_OUTPUT, 0, 0, JOB_AT(output), "run", "path", "any folder path",
        NULL, "output root; a relative path is relative to the job file's folder"),
    ROW("threads", KMQ__SEC_RUN, KT_INT, 0, 4096, JOB_AT(threads), "run", "integer", "0..4096", "0",
        "OpenMP threads; 0: all cores (OMP_NUM_THREADS honoured); --threads overrides"),
    ROW("seed", KMQ__SEC_RUN, KT_U64, 0, INT64_MAX, JOB_AT(seed), "run", "integer",
        "0..9223372036854775807", "0", "seed of every restart's random stream"),
    ROW("k", SEC_SPEC, KT_KLIST, 1, KMQ_MAX_K, SPEC_AT(k), "defaults, job", "k list",
        "1..256, e.g. 2-16:2, 32", NULL,
        "cluster counts: values and ranges a-b or a-b:step, comma-separated"),
    ROW("restarts", SEC_SPEC, KT_INT, 1, 10000, SPEC_AT(restarts), "defaults, job", "integer",
        "1..10000", "10", "independent k-means runs per k; the lowest inertia wins"),
    ROW("max_iter", SEC_SPEC, KT_INT, 1, 1000000, SPEC_AT(max_iter), "defaults, job", "integer",
        "1..1000000", "300", "most Lloyd iterations per run"),
    ROW("tol", SEC_SPEC, KT_TOL, 0, 0, SPEC_AT(tol), "defaults, job", "number", ">= 0", "1e-4",
        "stop when the centre shift falls below tol (relative to the data's variance)"),
    ROW("init", SEC_SPEC, KT_INIT, 0, 0, SPEC_AT(init), "defaults, job", "choice",
        "kmeans++ | random", "kmeans++", "seeding of each run"),
    ROW("sample", SEC_SPEC, KT_U64, 0, INT64_MAX, SPEC_AT(sample), "defaults, job", "count",
        "0 | 1..", "0", "0: fit on all pixels (exact); N: fit on N sampled pixels"),
    ROW("save", SEC_SPEC, KT_SAVE, 0, 0, SPEC_AT(save), "defaults, job", "list",
        "any of indexed, labels, palette", "indexed", "files written per k"),
    ROW("background", SEC_SPEC, KT_COLOR, 0, 0, SPEC_AT(background), "defaults, job", "colour",
        "#rrggbb | #rgb", "#ffffff", "alpha is flattened onto this colour"),
    ROW("max_pixels", SEC_SPEC, KT_U64, 0, INT64_MAX, SPEC_AT(max_pixels), "defaults, job", "count",
        "0 (no limit) | 1..", "1000000000", "larger images are refused before decoding"),
    ROW("max_decode_bytes", SEC_SPEC, KT_BYTES, 0, INT64_MAX, SPEC_AT(max_decode_bytes),
        "defaults, job", "bytes", "auto | 0 (no limit) | 1.. (suffix K, M or G: KiB, MiB, GiB)",
        "auto",
        "memory a decoder that cannot stream may take (auto: 1/8 of RAM, at most 512 MiB)"),
    ROW("formats", SEC_SPEC, KT_FORMATS, 0, 0, SPEC_AT(formats), "defaults, job", "list",
        "any of jpeg, png, tiff, webp, gif, vips, heif, jp2k, jxl, svg, pdf, magick, ...",
        "jpeg, png, tiff, webp, gif, vips",
        "image formats read; any other file is refused as unsupported, its format named"),
    ROW("recursive", SEC_SPEC, KT_BOOL, 0, 0, SPEC_AT(recursive), "defaults, job", "bool",
        "true | false", "false", "descend into subfolders of folder inputs"),
    ROW("identity", SEC_SPEC, KT_IDENTITY, 0, 0, SPEC_AT(identity), "defaults, job", "choice",
        "quick | content", "quick",
        "how resume knows an image is unchanged: quick (size, mtime, inode, first and last "
        "64 KiB) or content (every byte)"),
    ROW("input", KMQ__SEC_JOB, KT_INPUT, 0, 0, SPEC_AT(inputs), "job", "path list",
        "files, folders, globs; repeatable", NULL,
        "what to process; relative paths are relative to the job file's folder"),
};

#undef ROW

#define NKEYS (sizeof keys / sizeof keys[0])

const kmq_job_key_info *kmq_job_key(size_t i)
{
    return i < NKEYS ? &keys[i].info : NULL;
}

const kmq__job_key *kmq__job_key_find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].info.name, name) == 0)
            return &keys[i];
    return NULL;
}

unsigned kmq__job_key_sections(const kmq__job_key *key)
{
    return key->sections;
}

int kmq__job_key_repeatable(const kmq__job_key *key)
{
    return key->type == KT_INPUT;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* [*begin, *end) trimmed of blanks. */
static void trim_span(const char **begin, const char **end)
{
    while (*begin < *end && is_blank(**begin))
        (*begin)++;
    while (*end > *begin && is_blank((*end)[-1]))
        (*end)--;
}

int kmq__job_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 128 || name[0] == '.')
        return 0;
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int kmq__job_name_reserved(const char *name)
{
    return kmq_is_run_file(name);
}

char *kmq__job_path_join(const char *base, const char *rel)
{
    if (rel[0] == '/' || !base || base[0] == '\0' || strcmp(base, ".") == 0)
        return kmq__strdup(rel);
    size_t blen = strlen(base);
    return kmq__asprintf("%s%s%s", base, base[blen - 1] == '/' ? "" : "/", rel);
}

/* ------------------------------------------------------------------ */
/* Value parsers: each returns KMQ_OK or sets a message naming the key  */

/* Exact non-negative integer in decimal or scientific notation ("1e9",
 * "2.5e8", "1000"). Returns 0 ok, -1 malformed, -2 not whole, -3 too large. */
static int parse_count(const char *s, uint64_t *out)
{
    /* Significant digits without leading zeros, times 10^exp10. 40 digits
     * exceed UINT64_MAX (20 digits) whatever trailing zeros a negative
     * exponent could still cancel in any sane input. */
    char dig[40];
    size_t nd = 0;
    long exp10 = 0;
    int seen = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++) {
        seen = 1;
        if (nd == 0 && *p == '0')
            continue;
        if (nd == sizeof dig)
            return -3;
        dig[nd++] = *p;
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            seen = 1;
            exp10--;
            if (nd == 0 && *p == '0')
                continue;
            if (nd == sizeof dig)
                return -3;
            dig[nd++] = *p;
        }
    }
    if (!seen)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        int neg = 0;
        if (*p == '+' || *p == '-')
            neg = *p++ == '-';
        if (!isdigit((unsigned char)*p))
            return -1;
        long e = 0;
        for (; isdigit((unsigned char)*p); p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += neg ? -e : e;
    }
    if (*p != '\0')
        return -1;
    while (exp10 < 0 && nd > 0 && dig[nd - 1] == '0') {
        nd--;
        exp10++;
    }
    if (nd == 0) {
        *out = 0;
        return 0;
    }
    if (exp10 < 0)
        return -2;
    uint64_t v = 0;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d = (uint64_t)(dig[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -3;
        v = v * 10 + d;
    }
    for (long i = 0; i < exp10; i++) {
        if (v > UINT64_MAX / 10)
            return -3;
        v *= 10;
    }
    *out = v;
    return 0;
}

static kmq_status parse_bounded(const struct kmq__job_key *key, const char *text, uint64_t *out,
                                kmq_err *err)
{
    const char *name = key->info.name;
    uint64_t v = 0;
    int neg = text[0] == '-';
    int rc = parse_count(neg ? text + 1 : text, &v);
    if (rc == -3 && !neg)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %.100s is too large; the range is %s", name,
                           text, key->info.range);
    if (rc != 0)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = '%.100s' is not a whole number in %s", name,
                           text, key->info.range);
    if (neg && v != 0)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %.100s is below %llu", name, text,
                           (unsigned long long)key->min);
    if (v < key->min)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %llu is below %llu", name,
                           (unsigned long long)v, (unsigned long long)key->min);
    if (v > key->max)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %llu exceeds %llu", name, (unsigned long long)v,
                           (unsigned long long)key->max);
    *out = v;
    return KMQ_OK;
}

/* strtod in the "C" locale, whatever the process's LC_NUMERIC: a job file
 * means the same under every locale. uselocale is per thread. */
static kmq_status parse_tol(const char *text, double *out, kmq_err *err)
{
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p))
            return kmq_err_set(err, KMQ_E_CONFIG, "tol = '%.100s' is not a number", text);
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory creating the C locale");
    locale_t old = uselocale(c_locale);
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    int range_err = errno == ERANGE;
    uselocale(old);
    freelocale(c_locale);
    if (end == text || *end != '\0')
        return kmq_err_set(err, KMQ_E_CONFIG, "tol = '%.100s' is not a number", text);
    if ((range_err && fabs(v) > 1.0) || !isfinite(v))
        return kmq_err_set(err, KMQ_E_CONFIG, "tol = %.100s is too large", text);
    if (v < 0 || signbit(v))
        return kmq_err_set(err, KMQ_E_CONFIG, "tol = %.100s is negative; it must be >= 0", text);
    *out = v;
    return KMQ_OK;
}

static kmq_status parse_bool(const char *name, const char *text, bool *out, kmq_err *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (ascii_ieq(text, yes[i])) {
            *out = true;
            return KMQ_OK;
        }
        if (ascii_ieq(text, no[i])) {
            *out = false;
            return KMQ_OK;
        }
    }
    return kmq_err_set(err, KMQ_E_CONFIG,
                       "%s = '%.100s' is not a boolean (true/false, yes/no, on/off, 1/0)", name,
                       text);
}

static kmq_status parse_init(const char *text, kmq_init *out, kmq_err *err)
{
    if (ascii_ieq(text, "kmeans++") || ascii_ieq(text, "k-means++")) {
        *out = KMQ_INIT_KMEANSPP;
        return KMQ_OK;
    }
    if (ascii_ieq(text, "random")) {
        *out = KMQ_INIT_RANDOM;
        return KMQ_OK;
    }
    return kmq_err_set(err, KMQ_E_CONFIG, "init = '%.100s' is not one of kmeans++, random", text);
}

static kmq_status parse_identity(const char *text, kmq_identity *out, kmq_err *err)
{
    if (ascii_ieq(text, "quick")) {
        *out = KMQ_IDENTITY_QUICK;
        return KMQ_OK;
    }
    if (ascii_ieq(text, "content")) {
        *out = KMQ_IDENTITY_CONTENT;
        return KMQ_OK;
    }
    return kmq_err_set(err, KMQ_E_CONFIG, "identity = '%.100s' is not one of quick, content", text);
}

static kmq_status parse_save(const char *text, unsigned *out, kmq_err *err)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {
        {"indexed", KMQ_SAVE_INDEXED}, {"labels", KMQ_SAVE_LABELS}, {"palette", KMQ_SAVE_PALETTE}};
    unsigned bits = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *b = p, *e = comma ? comma : p + strlen(p);
        trim_span(&b, &e);
        size_t len = (size_t)(e - b);
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            if (len == strlen(words[i].word) && strncmp(b, words[i].word, len) == 0)
                bit = words[i].bit;
        if (len == 0)
            return kmq_err_set(err, KMQ_E_CONFIG,
                               "save = '%.100s' has an empty item; list any of indexed, labels, "
                               "palette",
                               text);
        if (!bit)
            return kmq_err_set(err, KMQ_E_CONFIG,
                               "save: unknown output '%.*s'; use any of indexed, labels, palette",
                               (int)(len > 100 ? 100 : len), b);
        bits |= bit;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = bits;
    return KMQ_OK;
}

/* "jpeg, png": each name must be one kmq knows (kmq/formats.h). */
static kmq_status parse_formats(const char *text, kmq_formats *out, kmq_err *err)
{
    kmq_formats set = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *b = p, *e = comma ? comma : p + strlen(p);
        trim_span(&b, &e);
        size_t len = (size_t)(e - b);
        char word[32];
        if (len == 0)
            return kmq_err_set(err, KMQ_E_CONFIG, "formats = '%.100s' has an empty item", text);
        kmq_formats bit = 0;
        if (len < sizeof word) {
            for (size_t i = 0; i < len; i++)
                word[i] = (char)tolower((unsigned char)b[i]);
            word[len] = '\0';
            bit = kmq_format_bit(word);
        }
        if (!bit) {
            char known[512];
            kmq_formats_format(~(kmq_formats)0, known, sizeof known);
            return kmq_err_set(err, KMQ_E_CONFIG, "formats: unknown format '%.*s'; known: %s",
                               (int)(len > 60 ? 60 : len), b, known);
        }
        set |= bit;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = set;
    return KMQ_OK;
}

/* "auto", a count ("512e6", "0": no limit) or a count with a binary suffix
 * ("512M", "2G"). */
static kmq_status parse_bytes(const struct kmq__job_key *key, const char *text, uint64_t *out,
                              kmq_err *err)
{
    if (ascii_ieq(text, "auto")) {
        *out = KMQ_DECODE_AUTO;
        return KMQ_OK;
    }
    size_t len = strlen(text);
    unsigned shift = 0;
    char last = len > 1 ? (char)toupper((unsigned char)text[len - 1]) : '\0';
    if (last == 'K' || last == 'M' || last == 'G') {
        shift = last == 'K' ? 10 : last == 'M' ? 20 : 30;
        len--;
    }
    char digits[64];
    uint64_t v = 0;
    if (len >= sizeof digits || text[0] == '-')
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = '%.100s' is not auto or a byte count (%s)",
                           key->info.name, text, key->info.range);
    memcpy(digits, text, len);
    digits[len] = '\0';
    int rc = parse_count(digits, &v);
    if (rc != 0 || (shift && v > (key->max >> shift)) || (v << shift) > key->max)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = '%.100s' is not auto or a byte count (%s)",
                           key->info.name, text, key->info.range);
    *out = v << shift;
    return KMQ_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static kmq_status parse_color(const char *text, uint8_t out[3], kmq_err *err)
{
    size_t len = strlen(text);
    int d[6] = {0};
    int ok = text[0] == '#' && (len == 4 || len == 7);
    for (size_t i = 1; ok && i < len; i++)
        ok = (d[i - 1] = hex_digit(text[i])) >= 0;
    if (!ok)
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "background = '%.100s' is not a colour '#rrggbb' or '#rgb'", text);
    for (int c = 0; c < 3; c++)
        out[c] = len == 4 ? (uint8_t)(d[c] * 17) : (uint8_t)(d[2 * c] * 16 + d[2 * c + 1]);
    return KMQ_OK;
}

/* One number of a k item: digits only, saturating at KMQ_MAX_K + 1 so that
 * "99999999999999999999" reads as "too large", not as garbage. */
static const char *k_number(const char *p, const char *end, uint64_t *out)
{
    while (p < end && is_blank(*p))
        p++;
    if (p == end || !isdigit((unsigned char)*p))
        return NULL;
    uint64_t v = 0;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > 1000000)
            v = 1000000;
    }
    while (p < end && is_blank(*p))
        p++;
    *out = v;
    return p;
}

kmq_status kmq_job_parse_k_list(const char *text, size_t **out, size_t *n, kmq_err *err)
{
    /* Fixed size: KMQ_MAX_K is a compile-time bound, so no VLA. */
    bool seen[KMQ_MAX_K + 1] = {false};
    const char *all_b = text, *all_e = text + strlen(text);
    trim_span(&all_b, &all_e);
    if (all_b == all_e)
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "k list is empty; give values like '4, 8, 16' or ranges like '2-16:2'");
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *b = p, *e = comma ? comma : p + strlen(p);
        trim_span(&b, &e);
        int len = (int)(e - b > 60 ? 60 : e - b);
        if (b == e)
            return kmq_err_set(err, KMQ_E_CONFIG, "k list '%.100s' has an empty item", text);
        uint64_t lo = 0, hi = 0, step = 1;
        const char *q = k_number(b, e, &lo);
        if (q && q < e && *q == '-') {
            q = k_number(q + 1, e, &hi);
            if (q && q < e && *q == ':')
                q = k_number(q + 1, e, &step);
        } else {
            hi = lo;
        }
        if (!q || q != e)
            return kmq_err_set(err, KMQ_E_CONFIG,
                               "k item '%.*s' is not a number or a range a-b or a-b:step", len, b);
        if (lo < 1)
            return kmq_err_set(err, KMQ_E_CONFIG, "k = 0 is below 1 (in '%.*s')", len, b);
        if (hi < lo)
            return kmq_err_set(err, KMQ_E_CONFIG,
                               "k range '%.*s' runs backwards; write the smaller bound first", len,
                               b);
        if (step < 1)
            return kmq_err_set(err, KMQ_E_CONFIG,
                               "k range '%.*s' has step 0; the step must be at least 1", len, b);
        if (hi > KMQ_MAX_K)
            return kmq_err_set(err, KMQ_E_CONFIG,
                               "k = %s%llu exceeds %d, the most colours a palette or label map "
                               "holds",
                               hi >= 1000000 ? ">= " : "", (unsigned long long)hi, KMQ_MAX_K);
        for (uint64_t k = lo; k <= hi; k += step)
            seen[k] = true;
        if (!comma)
            break;
        p = comma + 1;
    }
    size_t count = 0;
    for (size_t k = 1; k <= KMQ_MAX_K; k++)
        count += seen[k];
    size_t *list = kmq__alloc_array(count, sizeof *list);
    if (!list)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    count = 0;
    for (size_t k = 1; k <= KMQ_MAX_K; k++)
        if (seen[k])
            list[count++] = k;
    *out = list;
    *n = count;
    return KMQ_OK;
}

/* Appends one kmq_job_input per comma-separated item of `text`. */
static kmq_status add_inputs(kmq_job_spec *spec, const char *text, int line, kmq_err *err)
{
    size_t items = 1;
    for (const char *p = text; *p; p++)
        items += *p == ',';
    kmq_job_input *grown = kmq__realloc(spec->inputs, spec->ninputs + items, sizeof *grown);
    if (!grown)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    spec->inputs = grown;
    size_t added = 0;
    kmq_status st = KMQ_OK;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *b = p, *e = comma ? comma : p + strlen(p);
        trim_span(&b, &e);
        if (b == e) {
            st = kmq_err_set(err, KMQ_E_CONFIG,
                             "input = '%.100s' has an empty item; separate paths with single "
                             "commas",
                             text);
            goto done;
        }
        char *pattern = kmq__alloc((size_t)(e - b) + 1);
        if (!pattern) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        memcpy(pattern, b, (size_t)(e - b));
        pattern[e - b] = '\0';
        grown[spec->ninputs + added].pattern = pattern;
        grown[spec->ninputs + added].line = line;
        added++;
        if (!comma)
            break;
        p = comma + 1;
    }
done:
    if (st != KMQ_OK) {
        /* All or nothing: the spec keeps its previous inputs. */
        for (size_t i = 0; i < added; i++)
            kmq__free(grown[spec->ninputs + i].pattern);
        return st;
    }
    spec->ninputs += added;
    return KMQ_OK;
}

kmq_status kmq__job_key_apply(const kmq__job_key *key, const char *value, int line, kmq_job *job,
                              kmq_job_spec *spec, kmq_err *err)
{
    const char *name = key->info.name;
    char *base = key->sections & KMQ__SEC_RUN ? (char *)job : (char *)spec;
    if (!base)
        return kmq_err_set(err, KMQ_E_INTERNAL, "key '%s' applied without its struct", name);
    void *field = base + key->offset;
    if (value[0] == '\0')
        return kmq_err_set(err, KMQ_E_CONFIG, "%s has no value", name);
    switch (key->type) {
    case KT_OUTPUT: {
        size_t len = strlen(value);
        while (len > 1 && value[len - 1] == '/')
            len--;
        char *trimmed = kmq__alloc(len + 1);
        if (!trimmed)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        memcpy(trimmed, value, len);
        trimmed[len] = '\0';
        char *resolved = kmq__job_path_join(job->base_dir, trimmed);
        kmq__free(trimmed);
        if (!resolved)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        kmq__free(job->output);
        job->output = resolved;
        return KMQ_OK;
    }
    case KT_INPUT:
        return add_inputs(spec, value, line, err);
    case KT_KLIST: {
        size_t *list = NULL, n = 0;
        kmq_status st = kmq_job_parse_k_list(value, &list, &n, err);
        if (st != KMQ_OK)
            return st;
        kmq__free(spec->k);
        spec->k = list;
        spec->nk = n;
        return KMQ_OK;
    }
    case KT_INT:
    case KT_U64: {
        uint64_t v = 0;
        kmq_status st = parse_bounded(key, value, &v, err);
        if (st != KMQ_OK)
            return st;
        if (key->type == KT_INT)
            *(int *)field = (int)v; /* bounds are within int */
        else
            *(uint64_t *)field = v;
        return KMQ_OK;
    }
    case KT_TOL:
        return parse_tol(value, (double *)field, err);
    case KT_BOOL:
        return parse_bool(name, value, (bool *)field, err);
    case KT_INIT:
        return parse_init(value, (kmq_init *)field, err);
    case KT_SAVE:
        return parse_save(value, (unsigned *)field, err);
    case KT_COLOR:
        return parse_color(value, (uint8_t *)field, err);
    case KT_FORMATS:
        return parse_formats(value, (kmq_formats *)field, err);
    case KT_BYTES:
        return parse_bytes(key, value, (uint64_t *)field, err);
    case KT_IDENTITY:
        return parse_identity(value, (kmq_identity *)field, err);
    }
    return kmq_err_set(err, KMQ_E_INTERNAL, "key '%s' has no parser", name);
}

kmq_status kmq_job_spec_set(kmq_job_spec *spec, const char *key, const char *value, kmq_err *err)
{
    const kmq__job_key *row = kmq__job_key_find(key);
    if (!row || !(row->sections & SEC_SPEC) || row->type == KT_INPUT)
        return kmq_err_set(err, KMQ_E_CONFIG, "'%.60s' is not a job key that can be set here",
                           key);
    return kmq__job_key_apply(row, value, 0, NULL, spec, err);
}

/* ------------------------------------------------------------------ */
/* Defaults, checks, clearing                                          */

/* Parses the table's default texts of the keys in `sections`: the defaults
 * live in one place. Scalars only (k and input have none), so nothing
 * allocates and nothing can fail. */
static void apply_defaults(kmq_job *job, kmq_job_spec *spec, unsigned sections)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (!(keys[i].sections & sections) || !keys[i].info.default_value)
            continue;
        kmq_err scratch = {0};
        kmq_status st =
            kmq__job_key_apply(&keys[i], keys[i].info.default_value, 0, job, spec, &scratch);
        assert(st == KMQ_OK); /* the table's own defaults parse */
        (void)st;
    }
}

void kmq_job_spec_defaults(kmq_job_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    apply_defaults(NULL, spec, SEC_SPEC);
}

void kmq__job_run_defaults(kmq_job *job)
{
    apply_defaults(job, NULL, KMQ__SEC_RUN);
}

kmq_status kmq_job_spec_check(const kmq_job_spec *spec, kmq_err *err)
{
    const char *name = spec->name ? spec->name : "";
    if (!kmq__job_name_ok(name))
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "job name '%.100s' must be 1..128 letters, digits, '-', '_' or '.', "
                           "not starting with '.'",
                           name);
    if (kmq__job_name_reserved(name))
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "job name '%s' is the name of a run-level file in the output root", name);
    if (spec->nk == 0 || !spec->k)
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "job '%s' has no k; set k in [defaults] or in [job %s]", name, name);
    for (size_t i = 0; i < spec->nk; i++) {
        size_t k = spec->k[i];
        if (k < 1)
            return kmq_err_set(err, KMQ_E_CONFIG, "k = 0 is below 1");
        if (k > KMQ_MAX_K && (spec->save & KMQ_SAVE_INDEXED))
            return kmq_err_set(err, KMQ_E_CONFIG, "k = %zu exceeds %d for indexed output", k,
                               KMQ_MAX_K);
        if (k > KMQ_MAX_K)
            return kmq_err_set(err, KMQ_E_CONFIG, "k = %zu exceeds %d", k, KMQ_MAX_K);
        if (i > 0 && k <= spec->k[i - 1])
            return kmq_err_set(err, KMQ_E_CONFIG, "k list must be ascending and distinct");
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const struct kmq__job_key *key = &keys[i];
        if (!(key->sections & SEC_SPEC) || (key->type != KT_INT && key->type != KT_U64))
            continue;
        const char *field = (const char *)spec + key->offset;
        uint64_t v = 0;
        if (key->type == KT_INT) {
            int iv = *(const int *)field;
            if (iv < 0)
                return kmq_err_set(err, KMQ_E_CONFIG, "%s = %d is below %llu", key->info.name, iv,
                                   (unsigned long long)key->min);
            v = (uint64_t)iv;
        } else {
            v = *(const uint64_t *)field;
        }
        if (v < key->min || v > key->max)
            return kmq_err_set(err, KMQ_E_CONFIG, "%s = %llu is outside %s", key->info.name,
                               (unsigned long long)v, key->info.range);
    }
    if (!(spec->tol >= 0) || !isfinite(spec->tol))
        return kmq_err_set(err, KMQ_E_CONFIG, "tol = %g must be a finite number >= 0", spec->tol);
    if (spec->init != KMQ_INIT_KMEANSPP && spec->init != KMQ_INIT_RANDOM)
        return kmq_err_set(err, KMQ_E_CONFIG, "init = %d is not kmeans++ or random",
                           (int)spec->init);
    if (spec->identity != KMQ_IDENTITY_QUICK && spec->identity != KMQ_IDENTITY_CONTENT)
        return kmq_err_set(err, KMQ_E_CONFIG, "identity = %d is not quick or content",
                           (int)spec->identity);
    unsigned all = KMQ_SAVE_INDEXED | KMQ_SAVE_LABELS | KMQ_SAVE_PALETTE;
    if (spec->save == 0 || (spec->save & ~all))
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "save must list at least one of indexed, labels, palette");
    if (spec->formats == 0 || (spec->formats & ~kmq_formats_all()))
        return kmq_err_set(err, KMQ_E_CONFIG, "formats must list at least one known format");
    if (spec->ninputs == 0 || !spec->inputs)
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "job '%s' has no input; add 'input = FOLDER, FILE or GLOB'", name);
    return KMQ_OK;
}

void kmq__job_spec_clear(kmq_job_spec *spec)
{
    kmq__free(spec->name);
    kmq__free(spec->k);
    for (size_t i = 0; i < spec->ninputs; i++)
        kmq__free(spec->inputs[i].pattern);
    kmq__free(spec->inputs);
    memset(spec, 0, sizeof *spec);
}

void kmq_job_clear(kmq_job *job)
{
    kmq__free(job->path);
    kmq__free(job->base_dir);
    kmq__free(job->output);
    for (size_t i = 0; i < job->njobs; i++)
        kmq__job_spec_clear(&job->jobs[i]);
    kmq__free(job->jobs);
    memset(job, 0, sizeof *job);
}

size_t kmq_job_format_value(const kmq_job *job, const kmq_job_spec *spec, const char *key,
                            char *buf, size_t size)
{
    const kmq__job_key *row = kmq__job_key_find(key);
    if (!row || (row->sections & KMQ__SEC_RUN ? !job : !spec)) {
        if (size)
            buf[0] = '\0';
        return 0;
    }
    const char *field =
        (row->sections & KMQ__SEC_RUN ? (const char *)job : (const char *)spec) + row->offset;
    /* Builds the text piece by piece; `used` counts what the full text needs. */
    size_t used = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ =                                                                                   \
            snprintf(used < size ? buf + used : NULL, used < size ? size - used : 0, __VA_ARGS__); \
        if (w_ > 0)                                                                                \
            used += (size_t)w_;                                                                    \
    } while (0)
    if (size)
        buf[0] = '\0';
    switch (row->type) {
    case KT_OUTPUT:
        PUT("%s", job->output ? job->output : "");
        break;
    case KT_INPUT:
        for (size_t i = 0; i < spec->ninputs; i++)
            PUT("%s%s", i ? ", " : "", spec->inputs[i].pattern);
        break;
    case KT_KLIST:
        for (size_t i = 0; i < spec->nk; i++)
            PUT("%s%zu", i ? ", " : "", spec->k[i]);
        break;
    case KT_INT:
        PUT("%d", *(const int *)field);
        break;
    case KT_U64:
        PUT("%llu", (unsigned long long)*(const uint64_t *)field);
        break;
    case KT_TOL:
        PUT("%.17g", *(const double *)field);
        break;
    case KT_BOOL:
        PUT("%s", *(const bool *)field ? "true" : "false");
        break;
    case KT_INIT:
        PUT("%s", *(const kmq_init *)field == KMQ_INIT_RANDOM ? "random" : "kmeans++");
        break;
    case KT_SAVE: {
        unsigned bits = *(const unsigned *)field;
        const char *sep = "";
        if (bits & KMQ_SAVE_INDEXED) {
            PUT("%sindexed", sep);
            sep = ", ";
        }
        if (bits & KMQ_SAVE_LABELS) {
            PUT("%slabels", sep);
            sep = ", ";
        }
        if (bits & KMQ_SAVE_PALETTE)
            PUT("%spalette", sep);
        break;
    }
    case KT_COLOR: {
        const uint8_t *c = (const uint8_t *)field;
        PUT("#%02x%02x%02x", c[0], c[1], c[2]);
        break;
    }
    case KT_FORMATS: {
        char names[512];
        kmq_formats_format(*(const kmq_formats *)field, names, sizeof names);
        PUT("%s", names);
        break;
    }
    case KT_BYTES: {
        uint64_t v = *(const uint64_t *)field;
        if (v == KMQ_DECODE_AUTO)
            PUT("auto");
        else
            PUT("%llu", (unsigned long long)v);
        break;
    }
    case KT_IDENTITY:
        PUT("%s", *(const kmq_identity *)field == KMQ_IDENTITY_CONTENT ? "content" : "quick");
        break;
    }
#undef PUT
    return used;
}

/* ------------------------------------------------------------------ */
/* Input expansion                                                     */

/* Hard caps: a job lists at most this many files, and folders nest at most
 * this deep (the walk recurses; loops are cut by the visited set). */
#define MAX_FILES_PER_JOB ((size_t)50 * 1000 * 1000)
#define MAX_DEPTH         256

typedef struct cand {
    char *path;
    char *rel;
    dev_t dev;
    ino_t ino;
} cand;

typedef struct cand_vec {
    cand *v;
    size_t n, cap;
} cand_vec;

/* Open-addressing set of folder identities (dev, ino); cap is a power of 2. */
typedef struct dir_set {
    struct dir_id {
        dev_t dev;
        ino_t ino;
        bool used;
    } * slots;
    size_t n, cap;
} dir_set;

static int cmp_str_ptr(const void *a, const void *b);

/* Context of one job's expansion, for error messages. */
typedef struct expand_ctx {
    const kmq_job *job;
    const kmq_job_input *input;
    cand_vec *out;
    dir_set visited;
    bool have_output;    /* the output root exists: out_dev/out_ino name it */
    dev_t out_dev;
    ino_t out_ino;
    kmq_input_list *skip; /* folders left out as kmq outputs (items[].path) */
} expand_ctx;

/* Whether `dir`/`name` is a file kmq wrote: ".kmq.lock" by its name, a
 * run.json or summary.json by the "kmq_version" key near its top. Returns
 * 1 or 0, or -1 when out of memory. */
static int kmq_made(const char *dir, const char *name)
{
    char *path = kmq__job_path_join(dir, name);
    if (!path)
        return -1;
    struct stat sb;
    int made = 0;
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (strcmp(name, KMQ_LOCK_FILE) == 0) {
            made = 1;
        } else {
            char head[256];
            /* O_NONBLOCK: a FIFO swapped in since the lstat must not hang. */
            int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
            ssize_t got = fd >= 0 ? read(fd, head, sizeof head - 1) : 0;
            if (fd >= 0)
                close(fd);
            size_t n = got > 0 ? (size_t)got : 0;
            head[n] = '\0';
            made = memchr(head, '\0', n) == NULL && strstr(head, "\"kmq_version\"") != NULL;
        }
    }
    kmq__free(path);
    return made;
}

/* Sets *out to whether folder `dir` (stat'ed as *sb) is kmq's output
 * rather than input: the job's own output root, or any folder holding
 * kmq's lock file, a run.json or an image's summary.json. Without this, an
 * output root inside a recursive input would feed each run's PNGs and
 * previews to the next. Returns KMQ_OK or KMQ_E_NOMEM. */
static kmq_status is_output_folder(const expand_ctx *ctx, const char *dir, const struct stat *sb,
                                   bool *out, kmq_err *err)
{
    *out = ctx->have_output && sb->st_dev == ctx->out_dev && sb->st_ino == ctx->out_ino;
    static const char *const marks[] = {KMQ_LOCK_FILE, KMQ_RUN_JSON, KMQ_SUMMARY_JSON};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0] && !*out; i++) {
        int made = kmq_made(dir, marks[i]);
        if (made < 0)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        *out = made == 1;
    }
    return KMQ_OK;
}

/* Notes a folder left out (for `kmq validate`); the walk goes on without it. */
static kmq_status note_skipped(expand_ctx *ctx, const char *dir, kmq_err *err)
{
    kmq_input_list *skip = ctx->skip;
    if (!skip)
        return KMQ_OK;
    kmq_input_file *grown = kmq__realloc(skip->items, skip->n + 1, sizeof *grown);
    if (!grown)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    skip->items = grown;
    char *copy = kmq__strdup(dir);
    if (!copy)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    skip->items[skip->n++] = (kmq_input_file){copy, NULL, 0};
    return KMQ_OK;
}

static void where_line(const kmq_job *job, int line, kmq_err *err)
{
    if (!job->path || job->path[0] == '\0')
        return;
    if (line > 0)
        kmq_err_where(err, "%s:%d", job->path, line);
    else
        kmq_err_where(err, "%s", job->path);
}

static size_t dir_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)dev * 0x9E3779B97F4A7C15u ^ (uint64_t)ino;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9u;
    h ^= h >> 29;
    return (size_t)h;
}

/* Adds (dev, ino); *fresh says whether it was new. Returns 0, or -1 out of memory. */
static int dir_set_add(dir_set *set, dev_t dev, ino_t ino, bool *fresh)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct dir_id *slots = kmq__calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i].used)
                continue;
            size_t j = dir_hash(set->slots[i].dev, set->slots[i].ino) & (cap - 1);
            while (slots[j].used)
                j = (j + 1) & (cap - 1);
            slots[j] = set->slots[i];
        }
        kmq__free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t j = dir_hash(dev, ino) & (set->cap - 1);
    while (set->slots[j].used) {
        if (set->slots[j].dev == dev && set->slots[j].ino == ino) {
            *fresh = false;
            return 0;
        }
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j].dev = dev;
    set->slots[j].ino = ino;
    set->slots[j].used = true;
    set->n++;
    *fresh = true;
    return 0;
}

static int has_image_ext(const char *name)
{
    static const char *const exts[] = {"jpg", "jpeg", "png", "tif", "tiff", "webp", "gif", "v"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (ascii_ieq(dot + 1, exts[i]))
            return 1;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Takes ownership of path and rel (freed on failure). */
static kmq_status cand_push(expand_ctx *ctx, char *path, char *rel, dev_t dev, ino_t ino,
                            kmq_err *err)
{
    cand_vec *vec = ctx->out;
    kmq_status st = KMQ_OK;
    if (!path || !rel) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    if (vec->n == vec->cap) {
        if (vec->cap >= MAX_FILES_PER_JOB) {
            st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s' lists more than %zu files",
                             ctx->input->pattern, MAX_FILES_PER_JOB);
            where_line(ctx->job, ctx->input->line, err);
            goto done;
        }
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        cand *grown = kmq__realloc(vec->v, cap, sizeof *grown);
        if (!grown) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        vec->v = grown;
        vec->cap = cap;
    }
    vec->v[vec->n++] = (cand){path, rel, dev, ino};
    return KMQ_OK;
done:
    kmq__free(path);
    kmq__free(rel);
    return st;
}

static kmq_status input_error(expand_ctx *ctx, const char *what, const char *path, int errnum,
                              kmq_err *err)
{
    kmq_status st;
    if (strcmp(path, ctx->input->pattern) == 0)
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s': %s: %s", ctx->input->pattern, what,
                         strerror(errnum));
    else
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s': %s '%.200s': %s", ctx->input->pattern,
                         what, path, strerror(errnum));
    where_line(ctx->job, ctx->input->line, err);
    return st;
}

/* Lists folder `dir` (already in the visited set); `rel` is its path below
 * the input root ("" for the root itself). */
/* The names in folder `dir` except "." and "..", sorted byte-wise, so the
 * walk (and which path of a symlinked folder wins) does not depend on the
 * file system's readdir order. The folder is closed before the caller
 * descends, so deep trees do not pile up descriptors. */
static kmq_status read_names(expand_ctx *ctx, const char *dir, char ***out, size_t *out_n,
                             kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d)
        return input_error(ctx, "cannot read folder", dir, errno, err);
    for (;;) {
        errno = 0;
        struct dirent *ent = readdir(d);
        if (!ent) {
            if (errno != 0)
                st = input_error(ctx, "cannot read folder", dir, errno, err);
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t grow = cap ? cap * 2 : 16;
            char **grown = kmq__realloc(names, grow, sizeof *grown);
            if (!grown) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                break;
            }
            names = grown;
            cap = grow;
        }
        if (!(names[n] = kmq__strdup(ent->d_name))) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (st != KMQ_OK) {
        for (size_t i = 0; i < n; i++)
            kmq__free(names[i]);
        kmq__free(names);
        return st;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str_ptr);
    *out = names;
    *out_n = n;
    return KMQ_OK;
}

/* Lists folder `dir` (already in the visited set); `rel` is its path below
 * the input root ("" for the root itself). */
static kmq_status walk_dir(expand_ctx *ctx, const char *dir, const char *rel, bool recursive,
                           int depth, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char **names = NULL;
    size_t n = 0;
    char *child = NULL, *child_rel = NULL;
    if (depth > MAX_DEPTH) {
        st = kmq_err_set(err, KMQ_E_CONFIG,
                         "input '%.200s': folders nest deeper than %d at '%.200s'",
                         ctx->input->pattern, MAX_DEPTH, dir);
        where_line(ctx->job, ctx->input->line, err);
        goto done;
    }
    st = read_names(ctx, dir, &names, &n, err);
    if (st != KMQ_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        child = kmq__job_path_join(dir, name);
        child_rel = rel[0] ? kmq__asprintf("%s/%s", rel, name) : kmq__strdup(name);
        if (!child || !child_rel) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        struct stat sb;
        if (stat(child, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (recursive) {
                bool fresh = false;
                if (dir_set_add(&ctx->visited, sb.st_dev, sb.st_ino, &fresh) != 0) {
                    st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                    goto done;
                }
                /* Not fresh: a symlink back into the walk (a loop) or a
                 * second path to a folder walked already. */
                bool output = false;
                if (fresh && (st = is_output_folder(ctx, child, &sb, &output, err)) != KMQ_OK)
                    goto done;
                if (fresh && output) {
                    st = note_skipped(ctx, child, err);
                    if (st != KMQ_OK)
                        goto done;
                } else if (fresh) {
                    st = walk_dir(ctx, child, child_rel, recursive, depth + 1, err);
                    if (st != KMQ_OK)
                        goto done;
                }
            }
        } else if (has_image_ext(name)) {
            /* Anything with an image name is listed: a regular file, and
             * also a dangling link, a FIFO, a socket or a device, so that
             * the run reports it (unreadable, not a regular file) instead
             * of skipping it without a word. Only a file gone meanwhile is
             * not. */
            int ok = stat(child, &sb) == 0;
            if (ok || lstat(child, &sb) == 0) {
                st = cand_push(ctx, child, child_rel, sb.st_dev, sb.st_ino, err);
                child = child_rel = NULL;
                if (st != KMQ_OK)
                    goto done;
            }
        }
        kmq__free(child);
        kmq__free(child_rel);
        child = child_rel = NULL;
    }
done:
    kmq__free(child);
    kmq__free(child_rel);
    for (size_t i = 0; i < n; i++)
        kmq__free(names[i]);
    kmq__free(names);
    return st;
}

/* A folder input (or glob match): enters it once per job. */
static kmq_status take_dir(expand_ctx *ctx, const char *dir, const char *rel, bool recursive,
                           const struct stat *sb, kmq_err *err)
{
    bool fresh = false;
    if (dir_set_add(&ctx->visited, sb->st_dev, sb->st_ino, &fresh) != 0)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    if (!fresh)
        return KMQ_OK; /* entered already by this input (through a symlink) */
    bool output = false;
    kmq_status st = is_output_folder(ctx, dir, sb, &output, err);
    if (st != KMQ_OK)
        return st;
    if (output)
        return note_skipped(ctx, dir, err);
    return walk_dir(ctx, dir, rel, recursive, 0, err);
}

static int has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* glob(3) special characters in `s` escaped with '\\', so a base folder
 * named "[2023]" is matched literally. */
static char *glob_escape(const char *s)
{
    size_t extra = 0;
    for (const char *p = s; *p; p++)
        extra += strchr("*?[\\", *p) != NULL;
    char *out = kmq__alloc(strlen(s) + extra + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = s; *p; p++) {
        if (strchr("*?[\\", *p))
            *o++ = '\\';
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* The glob's leading literal folder, unescaped: everything before the last
 * '/' that precedes the first component with a wildcard ("" when that is the
 * first component, "/" for "/x*"). NULL when out of memory. */
static char *glob_root(const char *pattern)
{
    size_t cut = (size_t)-1;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == '\\' && pattern[i + 1]) {
            i++;
            continue;
        }
        if (pattern[i] == '*' || pattern[i] == '?' || pattern[i] == '[')
            break;
        if (pattern[i] == '/')
            cut = i;
    }
    size_t len = cut == (size_t)-1 ? 0 : cut == 0 ? 1 : cut;
    char *root = kmq__alloc(len + 1);
    if (!root)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (pattern[i] == '\\' && i + 1 < len)
            i++;
        root[o++] = pattern[i];
    }
    root[o] = '\0';
    return root;
}

/* `pattern` is the input already joined to the (escaped) base folder. */
static kmq_status take_glob(expand_ctx *ctx, const char *pattern, bool recursive, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char *root = NULL;
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s' matches no file", ctx->input->pattern);
        where_line(ctx->job, ctx->input->line, err);
        goto done;
    }
    if (rc == GLOB_NOSPACE) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory expanding '%.200s'", pattern);
        goto done;
    }
    if (rc != 0) {
        st = input_error(ctx, "cannot expand", pattern, errno ? errno : EIO, err);
        goto done;
    }
    root = glob_root(pattern);
    if (!root) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    size_t rlen = strlen(root);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *match = g.gl_pathv[i];
        const char *rel = base_name(match);
        if (rlen == 0)
            rel = match;
        else if (strcmp(root, "/") == 0 && match[0] == '/')
            rel = match + 1;
        else if (strncmp(match, root, rlen) == 0 && match[rlen] == '/')
            rel = match + rlen + 1;
        struct stat sb;
        if (stat(match, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = take_dir(ctx, match, rel, recursive, &sb, err);
        } else {
            if (stat(match, &sb) != 0 && lstat(match, &sb) != 0)
                continue; /* vanished meanwhile */
            st = cand_push(ctx, kmq__strdup(match), kmq__strdup(rel), sb.st_dev, sb.st_ino, err);
        }
        if (st != KMQ_OK)
            goto done;
    }
done:
    kmq__free(root);
    globfree(&g);
    return st;
}

static kmq_status take_input(expand_ctx *ctx, bool recursive, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char *path = kmq__job_path_join(ctx->job->base_dir, ctx->input->pattern);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            st = take_dir(ctx, path, "", recursive, &sb, err);
        } else {
            /* A file named explicitly is always attempted. */
            const char *name = base_name(path);
            st = cand_push(ctx, kmq__strdup(path), kmq__strdup(name), sb.st_dev, sb.st_ino, err);
        }
    } else if ((errno == ENOENT || errno == ENOTDIR) && has_wildcard(ctx->input->pattern)) {
        char *base = ctx->input->pattern[0] == '/'
                         ? NULL
                         : glob_escape(ctx->job->base_dir ? ctx->job->base_dir : ".");
        char *pattern = NULL;
        if (ctx->input->pattern[0] != '/' && !base)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        else if (!(pattern = kmq__job_path_join(base, ctx->input->pattern)))
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        else
            st = take_glob(ctx, pattern, recursive, err);
        kmq__free(pattern);
        kmq__free(base);
    } else if (errno == ENOENT || errno == ENOTDIR) {
        int differs = strcmp(path, ctx->input->pattern) != 0;
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s' does not exist%s%.200s%s",
                         ctx->input->pattern, differs ? " (looked for '" : "", differs ? path : "",
                         differs ? "')" : "");
        where_line(ctx->job, ctx->input->line, err);
    } else {
        st = input_error(ctx, "cannot access", path, errno, err);
    }
    kmq__free(path);
    return st;
}

static int cmp_identity(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    int c = strcmp(x->rel, y->rel);
    return c ? c : strcmp(x->path, y->path);
}

static int cmp_rel(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    int c = strcmp(x->rel, y->rel);
    return c ? c : strcmp(x->path, y->path);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Dedupes by (dev, ino), then gives equal rels of different files the
 * suffixes ~2, ~3, ... in path order, skipping names some file already has.
 * Leaves vec sorted by rel. */
static kmq_status settle(cand_vec *vec, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char **taken = NULL;
    char **fresh = NULL;
    size_t *target = NULL; /* fresh[f] renames vec->v[target[f]] */
    size_t nfresh = 0;
    if (vec->n == 0)
        return KMQ_OK;
    qsort(vec->v, vec->n, sizeof *vec->v, cmp_identity);
    size_t kept = 0;
    for (size_t i = 0; i < vec->n; i++) {
        if (kept > 0 && vec->v[kept - 1].dev == vec->v[i].dev &&
            vec->v[kept - 1].ino == vec->v[i].ino) {
            kmq__free(vec->v[i].path);
            kmq__free(vec->v[i].rel);
            continue;
        }
        vec->v[kept++] = vec->v[i];
    }
    vec->n = kept;
    qsort(vec->v, vec->n, sizeof *vec->v, cmp_rel);
    size_t dups = 0;
    for (size_t i = 1; i < vec->n; i++)
        dups += strcmp(vec->v[i - 1].rel, vec->v[i].rel) == 0;
    if (dups == 0)
        return KMQ_OK;
    taken = kmq__alloc_array(vec->n, sizeof *taken);
    fresh = kmq__alloc_array(dups, sizeof *fresh);
    target = kmq__alloc_array(dups, sizeof *target);
    if (!taken || !fresh || !target) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < vec->n; i++)
        taken[i] = vec->v[i].rel; /* already sorted */
    /* Renames are collected first and swapped in at the end, so `taken`
     * keeps pointing at the original names meanwhile. */
    size_t group_start = 0;
    for (size_t i = 1; i < vec->n; i++) {
        if (strcmp(vec->v[i].rel, vec->v[group_start].rel) != 0) {
            group_start = i;
            continue;
        }
        for (unsigned long suffix = (unsigned long)(i - group_start) + 1;; suffix++) {
            char *name = kmq__asprintf("%s~%lu", vec->v[i].rel, suffix);
            if (!name) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto done;
            }
            int used = bsearch(&name, taken, vec->n, sizeof *taken, cmp_str_ptr) != NULL;
            for (size_t f = 0; !used && f < nfresh; f++)
                used = strcmp(fresh[f], name) == 0;
            if (!used) {
                target[nfresh] = i;
                fresh[nfresh++] = name;
                break;
            }
            kmq__free(name);
        }
    }
    for (size_t f = 0; f < nfresh; f++) {
        kmq__free(vec->v[target[f]].rel);
        vec->v[target[f]].rel = fresh[f];
    }
    nfresh = 0;
    qsort(vec->v, vec->n, sizeof *vec->v, cmp_rel);
done:
    for (size_t f = 0; f < nfresh; f++)
        kmq__free(fresh[f]);
    kmq__free(fresh);
    kmq__free(target);
    kmq__free(taken);
    return st;
}

void kmq_input_list_clear(kmq_input_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        kmq__free(list->items[i].path);
        kmq__free(list->items[i].rel);
    }
    kmq__free(list->items);
    list->items = NULL;
    list->n = 0;
}

kmq_status kmq_job_list_inputs(const kmq_job *job, kmq_input_list *out, kmq_err *err)
{
    return kmq_job_list_inputs_skipping(job, out, NULL, err);
}

kmq_status kmq_job_list_inputs_skipping(const kmq_job *job, kmq_input_list *out,
                                        kmq_input_list *skipped, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_input_list list = {NULL, 0};
    kmq_input_list skip = {NULL, 0};
    size_t cap = 0;
    cand_vec vec = {NULL, 0, 0};
    expand_ctx ctx = {job, NULL, &vec, {NULL, 0, 0}, false, 0, 0, skipped ? &skip : NULL};
    struct stat out_sb;
    if (job->output && stat(job->output, &out_sb) == 0 && S_ISDIR(out_sb.st_mode)) {
        ctx.have_output = true;
        ctx.out_dev = out_sb.st_dev;
        ctx.out_ino = out_sb.st_ino;
    }
    for (size_t j = 0; j < job->njobs; j++) {
        const kmq_job_spec *spec = &job->jobs[j];
        for (size_t i = 0; i < spec->ninputs; i++) {
            /* Folders are entered once per input: enough to end symlink
             * loops, and an input never hides folders from another one
             * (a non-recursive "a" before a recursive parent of "a"). Files
             * reached by several inputs are merged by settle(). */
            ctx.input = &spec->inputs[i];
            st = take_input(&ctx, spec->recursive, err);
            kmq__free(ctx.visited.slots);
            ctx.visited = (dir_set){NULL, 0, 0};
            if (st != KMQ_OK)
                goto done;
        }
        st = settle(&vec, err);
        if (st != KMQ_OK)
            goto done;
        if (vec.n == 0) {
            st = kmq_err_set(err, KMQ_E_CONFIG, "job '%s' matches no image",
                             spec->name ? spec->name : "");
            where_line(job, spec->line, err);
            goto done;
        }
        if (list.n + vec.n > cap) {
            size_t want = list.n + vec.n;
            kmq_input_file *grown = kmq__realloc(list.items, want, sizeof *grown);
            if (!grown) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto done;
            }
            list.items = grown;
            cap = want;
        }
        for (size_t i = 0; i < vec.n; i++)
            list.items[list.n++] = (kmq_input_file){vec.v[i].path, vec.v[i].rel, j};
        vec.n = 0; /* ownership moved to the list */
    }
    *out = list;
    list = (kmq_input_list){NULL, 0};
    if (skipped) {
        *skipped = skip;
        skip = (kmq_input_list){NULL, 0};
    }
done:
    kmq_input_list_clear(&skip);
    for (size_t i = 0; i < vec.n; i++) {
        kmq__free(vec.v[i].path);
        kmq__free(vec.v[i].rel);
    }
    kmq__free(vec.v);
    kmq__free(ctx.visited.slots);
    kmq_input_list_clear(&list);
    return st;
}
