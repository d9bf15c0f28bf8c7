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
 *   dither_strength  a number in 0..1, parsed like tol.
 *
 * Input expansion (kmq_job_list_inputs) lives in job_inputs.c.
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

#define SEC_SPEC   KMQ__SEC_SPEC
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
        "1..256, e.g. 2-16:2, 32 | auto", NULL,
        "cluster counts: values and ranges a-b or a-b:step, comma-separated; auto (2..256) "
        "with target_psnr"),
    ROW("target_psnr", SEC_SPEC, KT_DB, 0, 0, SPEC_AT(target_psnr), "defaults, job", "dB",
        "0 (off) | 1..200", "0",
        "per image, the smallest k of the list (k = auto: 2..256) whose written image reaches "
        "this PSNR"),
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
    ROW("alpha", SEC_SPEC, KT_ALPHA, 0, 0, SPEC_AT(alpha), "defaults, job", "choice",
        "keep | flatten", "keep",
        "inputs with alpha: keep (RGBA palette, tRNS) or flatten onto background"),
    ROW("background", SEC_SPEC, KT_COLOR, 0, 0, SPEC_AT(background), "defaults, job", "colour",
        "#rrggbb | #rgb", "#ffffff",
        "alpha = flatten composites onto this colour; the report shows RGBA on it"),
    ROW("max_pixels", SEC_SPEC, KT_U64, 0, INT64_MAX, SPEC_AT(max_pixels), "defaults, job", "count",
        "0 (no limit) | 1..", "1000000000", "larger images are refused before decoding"),
    ROW("max_decode_bytes", SEC_SPEC, KT_BYTES, 0, INT64_MAX, SPEC_AT(max_decode_bytes),
        "defaults, job", "bytes", "auto | 0 (no limit) | 1.. (suffix K, M or G: KiB, MiB, GiB)",
        "auto", "memory a decoder that cannot stream may take (auto: 1/8 of RAM, at most 512 MiB)"),
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
    ROW("links", SEC_SPEC, KT_LINKS, 0, 0, SPEC_AT(links), "defaults, job", "choice",
        "inside | follow", "inside",
        "symbolic links in folder inputs: inside (a link out of the input folder is not read) "
        "or follow (every link)"),
    ROW("dither", SEC_SPEC, KT_DITHER, 0, 0, SPEC_AT(dither), "defaults, job", "choice",
        "none | floyd-steinberg", "none", "error diffusion in the indexed PNG only"),
    ROW("dither_strength", SEC_SPEC, KT_UNIT, 0, 0, SPEC_AT(dither_strength), "defaults, job",
        "number", "0..1", "1.0", "share of the error diffused"),
    ROW("space", SEC_SPEC, KT_SPACE, 0, 0, SPEC_AT(space), "defaults, job", "choice", "rgb | oklab",
        "rgb",
        "colour space of the fit and the mapping; oklab: perceptual, palette written in sRGB"),
    ROW("palette", SEC_SPEC, KT_PALETTE, 0, 0, SPEC_AT(palette), "defaults, job", "choice",
        "per_image | shared | FILE", "per_image",
        "shared: one fit per k on the union of the job's images; a .json, .gpl or .png path: "
        "as palette_file"),
    ROW("palette_file", SEC_SPEC, KT_PATH, 0, 0, SPEC_AT(palette_file), "defaults, job", "path",
        "none | .json | .gpl | indexed .png", "none",
        "map every image to this palette, no fit; k is its size"),
    ROW("report", SEC_SPEC, KT_REPORT, 0, 0, SPEC_AT(report), "defaults, job", "choice",
        "light | full | none", "light",
        "what the report draws: light, full (adds chart files) or none; not in the config hash"),
    ROW("input", KMQ__SEC_JOB, KT_INPUT, 0, 0, SPEC_AT(inputs), "job", "path list",
        "files, folders, globs; repeatable", NULL,
        "what to process; relative paths are relative to the job file's folder"),
};

#undef ROW

#define NKEYS (sizeof keys / sizeof keys[0])

const char *kmq_report_mode_name(kmq_report_mode mode)
{
    return mode == KMQ_REPORT_FULL ? "full" : mode == KMQ_REPORT_NONE ? "none" : "light";
}

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

int kmq__ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

int kmq__is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* [*begin, *end) trimmed of blanks. */
void kmq__trim_span(const char **begin, const char **end)
{
    while (*begin < *end && kmq__is_blank(**begin))
        (*begin)++;
    while (*end > *begin && kmq__is_blank((*end)[-1]))
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
                           "job name '%s' is the name of a run-level file in the output root",
                           name);
    if (spec->palette_file && spec->palette == KMQ_PALETTE_SHARED)
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "palette = shared and palette_file exclude each other: a shared "
                           "palette is fitted, a palette file is given");
    /* With palette_file, k is the palette's size, set when it is read. */
    if ((spec->nk == 0 || !spec->k) && !spec->palette_file)
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
    if (!(spec->target_psnr == 0 || (spec->target_psnr >= 1 && spec->target_psnr <= 200)))
        return kmq_err_set(err, KMQ_E_CONFIG, "target_psnr = %g is not 0 (off) or in 1..200",
                           spec->target_psnr);
    if (spec->k_auto && spec->target_psnr == 0)
        return kmq_err_set(
            err, KMQ_E_CONFIG,
            "k = auto needs target_psnr: without a target there is no k to search for");
    if (spec->space == KMQ_SPACE_OKLAB &&
        (spec->palette != KMQ_PALETTE_PER_IMAGE || spec->palette_file))
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "space = oklab fits each image's own palette; it cannot be used with "
                           "a shared or given palette yet");
    if (spec->target_psnr > 0 && (spec->palette != KMQ_PALETTE_PER_IMAGE || spec->palette_file))
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "target_psnr chooses k per image; it cannot be used with a shared or "
                           "given palette, whose k is the job's");
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
    if (spec->report != KMQ_REPORT_LIGHT && spec->report != KMQ_REPORT_FULL &&
        spec->report != KMQ_REPORT_NONE)
        return kmq_err_set(err, KMQ_E_CONFIG, "report = %d is not light, full or none",
                           (int)spec->report);
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
    kmq__free(spec->palette_file);
    kmq__free(spec->given);
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
        if (spec->k_auto) {
            PUT("auto");
            break;
        }
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
    case KT_LINKS:
        PUT("%s", *(const kmq_links *)field == KMQ_LINKS_FOLLOW ? "follow" : "inside");
        break;
    case KT_IDENTITY:
        PUT("%s", *(const kmq_identity *)field == KMQ_IDENTITY_CONTENT ? "content" : "quick");
        break;
    case KT_DITHER:
        PUT("%s", *(const kmq_dither_mode *)field == KMQ_DITHER_FS ? "floyd-steinberg" : "none");
        break;
    case KT_REPORT:
        PUT("%s", kmq_report_mode_name(*(const kmq_report_mode *)field));
        break;
    case KT_UNIT: {
        /* "1.0", "0.5", "0.85": a number, written as its key's default is. */
        char num[32];
        snprintf(num, sizeof num, "%g", *(const double *)field);
        PUT("%s%s", num, strpbrk(num, ".e") ? "" : ".0");
        break;
    }
    case KT_DB:
        PUT("%g", *(const double *)field);
        break;
    case KT_SPACE:
        PUT("%s", *(const kmq_space *)field == KMQ_SPACE_OKLAB ? "oklab" : "rgb");
        break;
    case KT_ALPHA:
        PUT("%s", *(const kmq_alpha_mode *)field == KMQ_ALPHA_FLATTEN ? "flatten" : "keep");
        break;
    case KT_PALETTE:
        PUT("%s", *(const kmq_palette_mode *)field == KMQ_PALETTE_SHARED ? "shared" : "per_image");
        break;
    case KT_PATH: {
        const char *text = *(char *const *)field;
        PUT("%s", text ? text : "none");
        break;
    }
    }
#undef PUT
    return used;
}
