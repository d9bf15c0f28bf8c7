/* summary_palette.c — palettes read from files and a shared palette's files
 * written (layer L2, part of the summary module, kmq's documents on disk;
 * kmq/summary.h says what each format holds).
 *
 * The three readers take the whole file into memory (at most
 * KMQ_PALETTE_FILE_MAX bytes) and never trust a count or a length they
 * read: a palette of 0 or more than KMQ_MAX_K entries is refused, as is a
 * value outside 0..255. An indexed PNG is read by walking its chunks to
 * IHDR and PLTE (no pixel is decoded: only the palette is wanted). Serial.
 */
#include "kmq/summary.h"

#include "internal.h"
#include "kmq/fsx.h"
#include "kmq/rng.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_entry(kmq_palette *p, size_t j, const double c[3])
{
    for (int ch = 0; ch < 3; ch++) {
        p->centers[3 * j + (size_t)ch] = c[ch];
        p->rgb[3 * j + (size_t)ch] = kmq__round_u8(c[ch]);
    }
}

/* ------------------------------------------------------------------ */
/* GIMP .gpl                                                           */

/* "GIMP Palette", then header lines ("Name: ...", "Columns: N"), comments
 * ('#') and blank lines anywhere, and one "R G B [name]" line per entry. */
static kmq_status load_gpl(const char *path, char *text, kmq_palette *out, kmq_err *err)
{
    int line = 0;
    size_t n = 0;
    char *next = text;
    while (next) {
        char *row = next;
        char *nl = strchr(row, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        else if (*row == '\0')
            break;
        line++;
        size_t len = strlen(row);
        if (len && row[len - 1] == '\r')
            row[--len] = '\0';
        if (line == 1) {
            if (strncmp(row, "GIMP Palette", 12) != 0)
                goto bad_header;
            continue;
        }
        const char *p = row;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#' || strncmp(p, "Name:", 5) == 0 ||
            strncmp(p, "Columns:", 8) == 0)
            continue;
        long v[3];
        for (int c = 0; c < 3; c++) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (!isdigit((unsigned char)*p)) {
                kmq_err_set(err, KMQ_E_CONFIG,
                            "'%.60s' is not a colour line 'R G B [name]' (0..255 each)", row);
                kmq_err_where(err, "%s:%d", path, line);
                return KMQ_E_CONFIG;
            }
            char *end = NULL;
            errno = 0;
            v[c] = strtol(p, &end, 10);
            if (errno || v[c] > 255 || (*end && *end != ' ' && *end != '\t')) {
                kmq_err_set(err, KMQ_E_CONFIG, "'%.60s': each of R, G, B must be 0..255", row);
                kmq_err_where(err, "%s:%d", path, line);
                return KMQ_E_CONFIG;
            }
            p = end;
        }
        if (n == KMQ_MAX_K) {
            kmq_err_set(err, KMQ_E_CONFIG, "more than %d colours; a palette holds at most %d",
                        KMQ_MAX_K, KMQ_MAX_K);
            kmq_err_where(err, "%s:%d", path, line);
            return KMQ_E_CONFIG;
        }
        double c[3] = {(double)v[0], (double)v[1], (double)v[2]};
        set_entry(out, n++, c);
    }
    if (line == 0) {
    bad_header:
        kmq_err_set(err, KMQ_E_CONFIG, "a .gpl file starts with the line 'GIMP Palette'");
        kmq_err_where(err, "%s:1", path);
        return KMQ_E_CONFIG;
    }
    out->n = n;
    return KMQ_OK;
}

/* ------------------------------------------------------------------ */
/* Indexed PNG                                                         */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static kmq_status load_png(const char *path, const unsigned char *b, size_t len, kmq_palette *out,
                           kmq_err *err)
{
    size_t at = 8;
    int color_type = -1;
    while (at + 12 <= len) {
        uint32_t clen = be32(b + at);
        const unsigned char *type = b + at + 4, *data = b + at + 8;
        if (clen > len - at - 12)
            break;
        if (memcmp(type, "IHDR", 4) == 0 && clen >= 13)
            color_type = data[9];
        if (memcmp(type, "PLTE", 4) == 0) {
            if (color_type != 3) {
                kmq_err_set(err, KMQ_E_CONFIG,
                            "this PNG is not indexed (its PLTE is only a suggestion); give an "
                            "indexed PNG, a .gpl or a kmq palette .json");
                break;
            }
            if (clen == 0 || clen % 3 || clen / 3 > KMQ_MAX_K) {
                kmq_err_set(err, KMQ_E_CONFIG, "its PLTE chunk has %u bytes, not 3 to %d", clen,
                            3 * KMQ_MAX_K);
                break;
            }
            out->n = clen / 3;
            for (size_t j = 0; j < out->n; j++) {
                double c[3] = {data[3 * j], data[3 * j + 1], data[3 * j + 2]};
                set_entry(out, j, c);
            }
            return KMQ_OK;
        }
        if (memcmp(type, "IDAT", 4) == 0 || memcmp(type, "IEND", 4) == 0)
            break; /* PLTE comes before the pixels */
        at += 12 + (size_t)clen;
    }
    if (err->code == KMQ_OK)
        kmq_err_set(err, KMQ_E_CONFIG,
                    color_type == 3 ? "an indexed PNG without a readable PLTE chunk"
                                    : "this PNG is not indexed (it has no palette); give an "
                                      "indexed PNG, a .gpl or a kmq palette .json");
    kmq_err_where(err, "%s", path);
    return KMQ_E_CONFIG;
}

/* ------------------------------------------------------------------ */
/* kmq's kK.palette.json                                               */

static bool json_triple(const json_t *a, double out[3], bool integral)
{
    if (!json_is_array(a) || json_array_size(a) != 3)
        return false;
    for (size_t c = 0; c < 3; c++) {
        const json_t *v = json_array_get(a, c);
        if (!json_is_number(v))
            return false;
        double x = json_number_value(v);
        if (!(x >= 0.0 && x <= 255.0) || (integral && x != floor(x)))
            return false;
        out[c] = x;
    }
    return true;
}

static kmq_status load_json(const char *path, const char *text, size_t len, kmq_palette *out,
                            kmq_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        kmq_err_set(err, KMQ_E_CONFIG, "not valid JSON: %s", jerr.text);
        kmq_err_where(err, "%s:%d", path, jerr.line);
        return KMQ_E_CONFIG;
    }
    kmq_status st = KMQ_OK;
    const json_t *pal = json_object_get(root, "palette");
    size_t n = json_array_size(pal);
    if (!json_is_array(pal) || n == 0 || n > KMQ_MAX_K) {
        st = kmq_err_set(err, KMQ_E_CONFIG,
                         "a kmq palette has \"palette\": an array of 1..%d entries "
                         "{\"rgb\": [r, g, b]}",
                         KMQ_MAX_K);
        goto done;
    }
    for (size_t j = 0; j < n; j++) {
        const json_t *e = json_array_get(pal, j);
        double c[3];
        const json_t *centre = json_object_get(e, "centre");
        bool ok = centre ? json_triple(centre, c, false)
                         : json_triple(json_object_get(e, "rgb"), c, true);
        if (!ok) {
            st = kmq_err_set(err, KMQ_E_CONFIG,
                             "palette[%zu] has no \"rgb\" of three integers 0..255 (or "
                             "\"centre\" of three numbers in 0..255)",
                             j);
            goto done;
        }
        set_entry(out, j, c);
        const json_t *w = json_object_get(e, "weight");
        out->weights[j] =
            json_is_integer(w) && json_integer_value(w) > 0 ? (uint64_t)json_integer_value(w) : 0;
    }
    out->n = n;
    const char *hash = json_string_value(json_object_get(root, "hash"));
    if (hash && strlen(hash) == 16)
        memcpy(out->hash, hash, 17);
    out->images = json_array_size(json_object_get(root, "images"));
    const json_t *replaces = json_object_get(root, "replaces");
    const char *old = json_string_value(json_object_get(replaces, "hash"));
    const json_t *old_images = json_object_get(replaces, "images");
    if (old && strlen(old) == 16 && json_is_integer(old_images) &&
        json_integer_value(old_images) >= 0) {
        memcpy(out->replaces, old, 17);
        out->replaces_images = (size_t)json_integer_value(old_images);
    }
done:
    json_decref(root);
    if (st != KMQ_OK)
        kmq_err_where(err, "%s", path);
    return st;
}

kmq_status kmq_palette_load(const char *path, kmq_palette *out, kmq_err *err)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    kmq_status st = kmq_fsx_read_all(path, KMQ_PALETTE_FILE_MAX, &text, &len, err);
    if (st != KMQ_OK) {
        kmq_err_where(err, "%s", path);
        return st;
    }
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const char *p = text;
    while (p < text + len && isspace((unsigned char)*p))
        p++;
    if (len >= 8 && memcmp(text, sig, 8) == 0)
        st = load_png(path, (const unsigned char *)text, len, out, err);
    else if (strncmp(text, "GIMP Palette", 12) == 0)
        st = load_gpl(path, text, out, err);
    else if (*p == '{')
        st = load_json(path, text, len, out, err);
    else {
        st = kmq_err_set(err, KMQ_E_CONFIG,
                         "not a palette kmq reads: a kmq kK.palette.json, a GIMP .gpl "
                         "('GIMP Palette' on its first line) or an indexed PNG");
        kmq_err_where(err, "%s", path);
    }
    if (st == KMQ_OK && out->n == 0) {
        st = kmq_err_set(err, KMQ_E_CONFIG, "the palette has no colour");
        kmq_err_where(err, "%s", path);
    }
    free(text);
    return st;
}

uint64_t kmq_palette_digest(const kmq_palette *p)
{
    uint64_t h = kmq_hash_bytes(KMQ_HASH_INIT, &p->n, sizeof p->n);
    return kmq_hash_finish(kmq_hash_bytes(h, p->centers, 3 * p->n * sizeof(double)));
}

/* ------------------------------------------------------------------ */
/* Writing a shared palette                                            */

static kmq_status write_text(const char *dir, const char *name, const char *text, kmq_err *err)
{
    char *path = kmq_fsx_join(dir, name);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    kmq_status st = kmq_fsx_write_all(path, text, strlen(text), false, err);
    kmq__free(path);
    return st;
}

static json_t *palette_json(const kmq_palette *p, const kmq_palette_fit_info *info)
{
    json_t *root = json_object(), *entries = json_array(), *images = json_array();
    if (!root || !entries || !images) {
        json_decref(root);
        json_decref(entries);
        json_decref(images);
        return NULL;
    }
    int bad = 0;
    bad |= json_object_set_new(root, "schema", json_integer(1));
    bad |= json_object_set_new(root, "kmq_version", json_string(KMQ_VERSION_STRING));
    bad |= json_object_set_new(root, "mode", json_string("shared"));
    bad |= json_object_set_new(root, "job", json_string(info->job));
    bad |= json_object_set_new(root, "hash", json_string(p->hash));
    bad |= json_object_set_new(root, "k", json_integer((json_int_t)info->k));
    bad |= json_object_set_new(root, "k_effective", json_integer((json_int_t)p->n));
    bad |= json_object_set_new(root, "pixels", json_integer((json_int_t)info->pixels));
    bad |=
        json_object_set_new(root, "unique_colors", json_integer((json_int_t)info->unique_colors));
    bad |= json_object_set_new(root, "inertia", json_real(info->inertia));
    bad |= json_object_set_new(root, "iterations", json_integer(info->iterations));
    bad |= json_object_set_new(root, "restarts", json_integer(info->restarts));
    bad |= json_object_set_new(root, "converged", json_boolean(info->converged));
    for (size_t j = 0; j < p->n; j++) {
        char hex[8];
        const uint8_t *c = p->rgb + 3 * j;
        const double *d = p->centers + 3 * j;
        snprintf(hex, sizeof hex, "#%02x%02x%02x", c[0], c[1], c[2]);
        bad |= json_array_append_new(
            entries, json_pack("{s:[i,i,i],s:s,s:[f,f,f],s:I}", "rgb", c[0], c[1], c[2], "hex", hex,
                               "centre", d[0], d[1], d[2], "weight", (json_int_t)p->weights[j]));
    }
    for (size_t i = 0; i < info->nsources; i++) {
        const kmq_palette_source *s = &info->sources[i];
        bad |= json_array_append_new(
            images, json_pack("{s:s,s:s,s:b}", "rel", s->rel, "hash", s->hash, "used", s->used));
    }
    bad |= json_object_set_new(root, "palette", entries);
    bad |= json_object_set_new(root, "images", images);
    if (info->replaces_hash)
        bad |= json_object_set_new(root, "replaces",
                                   json_pack("{s:s,s:I}", "hash", info->replaces_hash, "images",
                                             (json_int_t)info->replaces_images));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

kmq_status kmq_palette_write(const char *dir, const kmq_palette *p,
                             const kmq_palette_fit_info *info, kmq_err *err)
{
    char name[64];
    json_t *root = palette_json(p, info);
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!text)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory writing the palette of k = %zu",
                           info->k);
    size_t tlen = strlen(text);
    char *with_nl = kmq__alloc(tlen + 2);
    kmq_status st = KMQ_OK;
    if (!with_nl) {
        free(text);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    memcpy(with_nl, text, tlen);
    memcpy(with_nl + tlen, "\n", 2);
    free(text);
    snprintf(name, sizeof name, "k%zu.palette.json", info->k);
    st = write_text(dir, name, with_nl, err);
    kmq__free(with_nl);

    /* GIMP/Inkscape: "GIMP Palette", a name, then "R G B\tname" lines. */
    size_t cap = 128 + strlen(info->job) + p->n * 32;
    char *gpl = st == KMQ_OK ? kmq__alloc(cap) : NULL;
    if (st == KMQ_OK && !gpl)
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    if (st == KMQ_OK) {
        size_t at = (size_t)snprintf(gpl, cap, "GIMP Palette\nName: kmq %s k%zu\nColumns: %d\n#\n",
                                     info->job, info->k, p->n < 16 ? (int)p->n : 16);
        for (size_t j = 0; j < p->n && at < cap; j++) {
            const uint8_t *c = p->rgb + 3 * j;
            at += (size_t)snprintf(gpl + at, cap - at, "%3u %3u %3u\t#%02x%02x%02x\n", c[0], c[1],
                                   c[2], c[0], c[1], c[2]);
        }
        snprintf(name, sizeof name, "k%zu.gpl", info->k);
        st = write_text(dir, name, gpl, err);
    }
    kmq__free(gpl);
    return st;
}
