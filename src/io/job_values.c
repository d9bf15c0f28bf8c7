/* job_values.c — the parsers of job-key values, and the storing of a value
 * through its row of the key table (layer L2, part of the job module; the
 * syntax of each type is described at the top of job.c).
 *
 * Plain C with a private "C" locale for numbers; no parallel region.
 */
#include "job_internal.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * means the same under every locale. uselocale is per thread. `name` is the
 * key, for the messages; *out is finite. */
static kmq_status parse_number(const char *name, const char *text, double *out, kmq_err *err)
{
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p))
            return kmq_err_set(err, KMQ_E_CONFIG, "%s = '%.100s' is not a number", name, text);
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
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = '%.100s' is not a number", name, text);
    if ((range_err && fabs(v) > 1.0) || !isfinite(v))
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %.100s is too large", name, text);
    *out = v;
    return KMQ_OK;
}

static kmq_status parse_tol(const char *text, double *out, kmq_err *err)
{
    double v = 0;
    kmq_status st = parse_number("tol", text, &v, err);
    if (st != KMQ_OK)
        return st;
    if (v < 0 || signbit(v))
        return kmq_err_set(err, KMQ_E_CONFIG, "tol = %.100s is negative; it must be >= 0", text);
    *out = v;
    return KMQ_OK;
}

/* A number in 0..1 (dither_strength). */
static kmq_status parse_unit(const char *name, const char *text, double *out, kmq_err *err)
{
    double v = 0;
    kmq_status st = parse_number(name, text, &v, err);
    if (st != KMQ_OK)
        return st;
    if (v < 0 || signbit(v) || v > 1)
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %.100s is outside 0..1", name, text);
    *out = v;
    return KMQ_OK;
}

/* A PSNR target in dB: 0 (off) or 1..200 (target_psnr). */
static kmq_status parse_db(const char *name, const char *text, double *out, kmq_err *err)
{
    double v = 0;
    kmq_status st = parse_number(name, text, &v, err);
    if (st != KMQ_OK)
        return st;
    if (signbit(v) || (v != 0 && (v < 1 || v > 200)))
        return kmq_err_set(err, KMQ_E_CONFIG, "%s = %.100s is not 0 (off) or in 1..200 dB", name,
                           text);
    *out = v;
    return KMQ_OK;
}

static kmq_status parse_bool(const char *name, const char *text, bool *out, kmq_err *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (kmq__ascii_ieq(text, yes[i])) {
            *out = true;
            return KMQ_OK;
        }
        if (kmq__ascii_ieq(text, no[i])) {
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
    if (kmq__ascii_ieq(text, "kmeans++") || kmq__ascii_ieq(text, "k-means++")) {
        *out = KMQ_INIT_KMEANSPP;
        return KMQ_OK;
    }
    if (kmq__ascii_ieq(text, "random")) {
        *out = KMQ_INIT_RANDOM;
        return KMQ_OK;
    }
    return kmq_err_set(err, KMQ_E_CONFIG, "init = '%.100s' is not one of kmeans++, random", text);
}

/* A word of `words` (any case) for key `name`: *out = its index. */
static kmq_status parse_choice(const char *name, const char *text, const char *const *words,
                               size_t n, int *out, kmq_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (kmq__ascii_ieq(text, words[i])) {
            *out = (int)i;
            return KMQ_OK;
        }
    }
    return kmq_err_set(err, KMQ_E_CONFIG, "%s = '%.100s' is not one of %s, %s", name, text,
                       words[0], words[1]);
}

static kmq_status parse_identity(const char *text, kmq_identity *out, kmq_err *err)
{
    static const char *const words[] = {"quick", "content"}; /* in kmq_identity order */
    int v = 0;
    kmq_status st = parse_choice("identity", text, words, 2, &v, err);
    if (st == KMQ_OK)
        *out = (kmq_identity)v;
    return st;
}

static kmq_status parse_report(const char *text, kmq_report_mode *out, kmq_err *err)
{
    /* in kmq_report_mode order */
    static const char *const words[] = {"light", "full", "none"};
    for (int i = 0; i < 3; i++) {
        if (kmq__ascii_ieq(text, words[i])) {
            *out = (kmq_report_mode)i;
            return KMQ_OK;
        }
    }
    return kmq_err_set(err, KMQ_E_CONFIG, "report = '%.100s' is not one of light, full, none",
                       text);
}

static kmq_status parse_space(const char *text, kmq_space *out, kmq_err *err)
{
    static const char *const words[] = {"rgb", "oklab"}; /* in kmq_space order */
    int v = 0;
    kmq_status st = parse_choice("space", text, words, 2, &v, err);
    if (st == KMQ_OK)
        *out = (kmq_space)v;
    return st;
}

static kmq_status parse_alpha(const char *text, kmq_alpha_mode *out, kmq_err *err)
{
    static const char *const words[] = {"keep", "flatten"}; /* in kmq_alpha_mode order */
    int v = 0;
    kmq_status st = parse_choice("alpha", text, words, 2, &v, err);
    if (st == KMQ_OK)
        *out = (kmq_alpha_mode)v;
    return st;
}

static kmq_status parse_links(const char *text, kmq_links *out, kmq_err *err)
{
    static const char *const words[] = {"inside", "follow"}; /* in kmq_links order */
    int v = 0;
    kmq_status st = parse_choice("links", text, words, 2, &v, err);
    if (st == KMQ_OK)
        *out = (kmq_links)v;
    return st;
}

static kmq_status parse_dither(const char *text, kmq_dither_mode *out, kmq_err *err)
{
    static const char *const words[] = {"none", "floyd-steinberg"}; /* in kmq_dither_mode order */
    int v = 0;
    kmq_status st = parse_choice("dither", text, words, 2, &v, err);
    if (st == KMQ_OK)
        *out = (kmq_dither_mode)v;
    return st;
}

/* Whether `text` names a palette file by its extension (.json, .gpl, .png,
 * any case): `palette = FILE` and `--palette FILE` mean palette_file. */
static bool is_palette_path(const char *text)
{
    static const char *const exts[] = {".json", ".gpl", ".png"};
    size_t len = strlen(text);
    for (size_t i = 0; i < 3; i++) {
        size_t el = strlen(exts[i]);
        if (len > el && kmq__ascii_ieq(text + len - el, exts[i]))
            return true;
    }
    return false;
}

static kmq_status set_path(char **field, const char *text, kmq_err *err)
{
    char *copy = kmq__strdup(text);
    if (!copy)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    kmq__free(*field);
    *field = copy;
    return KMQ_OK;
}

static kmq_status parse_palette(const char *text, kmq_job_spec *spec, kmq_err *err)
{
    if (kmq__ascii_ieq(text, "per_image") || kmq__ascii_ieq(text, "shared")) {
        spec->palette = kmq__ascii_ieq(text, "shared") ? KMQ_PALETTE_SHARED : KMQ_PALETTE_PER_IMAGE;
        return KMQ_OK;
    }
    if (is_palette_path(text))
        return set_path(&spec->palette_file, text, err);
    return kmq_err_set(err, KMQ_E_CONFIG,
                       "palette = '%.100s' is not per_image, shared or a palette file "
                       "(.json, .gpl, .png)",
                       text);
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
        kmq__trim_span(&b, &e);
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
        kmq__trim_span(&b, &e);
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
    if (kmq__ascii_ieq(text, "auto")) {
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
    while (p < end && kmq__is_blank(*p))
        p++;
    if (p == end || !isdigit((unsigned char)*p))
        return NULL;
    uint64_t v = 0;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > 1000000)
            v = 1000000;
    }
    while (p < end && kmq__is_blank(*p))
        p++;
    *out = v;
    return p;
}

kmq_status kmq_job_parse_k_list(const char *text, size_t **out, size_t *n, kmq_err *err)
{
    /* Fixed size: KMQ_MAX_K is a compile-time bound, so no VLA. */
    bool seen[KMQ_MAX_K + 1] = {false};
    const char *all_b = text, *all_e = text + strlen(text);
    kmq__trim_span(&all_b, &all_e);
    if (all_b == all_e)
        return kmq_err_set(err, KMQ_E_CONFIG,
                           "k list is empty; give values like '4, 8, 16' or ranges like '2-16:2'");
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *b = p, *e = comma ? comma : p + strlen(p);
        kmq__trim_span(&b, &e);
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
        kmq__trim_span(&b, &e);
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
        bool is_auto = kmq__ascii_ieq(value, "auto");
        kmq_status st = kmq_job_parse_k_list(is_auto ? "2-256" : value, &list, &n, err);
        if (st != KMQ_OK)
            return st;
        kmq__free(spec->k);
        spec->k = list;
        spec->nk = n;
        spec->k_auto = is_auto;
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
    case KT_LINKS:
        return parse_links(value, (kmq_links *)field, err);
    case KT_IDENTITY:
        return parse_identity(value, (kmq_identity *)field, err);
    case KT_DITHER:
        return parse_dither(value, (kmq_dither_mode *)field, err);
    case KT_UNIT:
        return parse_unit(name, value, (double *)field, err);
    case KT_DB:
        return parse_db(name, value, (double *)field, err);
    case KT_SPACE:
        return parse_space(value, (kmq_space *)field, err);
    case KT_ALPHA:
        return parse_alpha(value, (kmq_alpha_mode *)field, err);
    case KT_PALETTE:
        return parse_palette(value, spec, err);
    case KT_PATH:
        if (kmq__ascii_ieq(value, "none")) { /* "./none" names a file called none */
            kmq__free(*(char **)field);
            *(char **)field = NULL;
            return KMQ_OK;
        }
        return set_path((char **)field, value, err);
    case KT_REPORT:
        return parse_report(value, (kmq_report_mode *)field, err);
    }
    return kmq_err_set(err, KMQ_E_INTERNAL, "key '%s' has no parser", name);
}

kmq_status kmq_job_spec_set(kmq_job_spec *spec, const char *key, const char *value, kmq_err *err)
{
    const kmq__job_key *row = kmq__job_key_find(key);
    if (!row || !(row->sections & KMQ__SEC_SPEC) || row->type == KT_INPUT)
        return kmq_err_set(err, KMQ_E_CONFIG, "'%.60s' is not a job key that can be set here", key);
    return kmq__job_key_apply(row, value, 0, NULL, spec, err);
}
