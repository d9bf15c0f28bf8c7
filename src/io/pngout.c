/* pngout.c — indexed PNG, label-map and swatch writers (layer L2; the only
 * file that includes <png.h>).
 *
 * libpng's classic write API, row by row, into an fsx temporary file that
 * kmq_png_close renames into place. The palette is written exactly as given
 * (PLTE = the caller's colours, no reordering, no tRNS), at the smallest bit
 * depth that holds the indices; rows are packed to that depth here. Filter
 * NONE: palette indices and labels are categories, and the prediction
 * filters only help on smooth sample values.
 *
 * libpng reports errors by longjmp. Every libpng call sits in a small helper
 * whose only locals are its parameters, set before setjmp and never changed
 * after it, so no local can be clobbered; all state lives in the heap
 * object, which the public functions free on their single cleanup path.
 * libpng's and zlib's allocations go through kmq__alloc (png mem functions),
 * so allocation-failure tests reach them too.
 *
 * No parallel regions; one kmq_png belongs to one thread.
 */
#include "kmq/pngout.h"

#include "internal.h"
#include "kmq/fsx.h"

#include <png.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define SWATCH_WIDTH  256
#define SWATCH_HEIGHT 32

struct kmq_png {
    png_structp png;
    png_infop info;
    kmq_fsx_file file;
    uint32_t width;
    uint32_t height;
    uint32_t rows_done;
    size_t ncolors;     /* palette size; 0 for grey and RGB images */
    unsigned depth;     /* bits per sample */
    int channels;       /* 1 (indexed, grey) or 3 (RGB) */
    uint8_t *packed;    /* one row packed below 8 bits (NULL at 8 bits) */
    uint64_t bytes;     /* bytes handed to the file so far */
    bool failed;        /* libpng raised an error: only abort/close remain */
    bool out_of_memory; /* an allocation libpng asked for failed */
    int write_errno;    /* errno of the failed fwrite, 0 if none */
    char png_msg[200];  /* libpng's error text */
    /* Staging (kmq_png_stage): compressed bytes wait here until
     * kmq_png_flush, so that writing rows does no I/O. */
    uint8_t *stage;
    size_t stage_len, stage_cap;
    uint32_t stage_rows;  /* most rows between two flushes */
    uint32_t rows_staged; /* rows written since the last flush */
    bool stage_overflow;
};

unsigned kmq_png_bit_depth(size_t ncolors)
{
    if (ncolors <= 2)
        return 1;
    if (ncolors <= 4)
        return 2;
    if (ncolors <= 16)
        return 4;
    return 8;
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    kmq_png *p = png_get_error_ptr(png);
    snprintf(p->png_msg, sizeof p->png_msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* libpng warns only about things we do not use on write */
}

static png_voidp on_png_malloc(png_structp png, png_alloc_size_t size)
{
    void *mem = kmq__alloc(size);
    if (!mem) {
        kmq_png *p = png_get_mem_ptr(png);
        p->out_of_memory = true;
    }
    return mem;
}

static void on_png_free(png_structp png, png_voidp mem)
{
    (void)png;
    kmq__free(mem);
}

static void on_png_write(png_structp png, png_bytep data, size_t len)
{
    kmq_png *p = png_get_io_ptr(png);
    if (p->stage) {
        if (len > p->stage_cap - p->stage_len) {
            p->stage_overflow = true;
            png_error(png, "staging buffer overflow");
        }
        memcpy(p->stage + p->stage_len, data, len);
        p->stage_len += len;
        p->bytes += len;
        return;
    }
    errno = 0;
    if (fwrite(data, 1, len, p->file.fp) != len) {
        p->write_errno = errno ? errno : EIO;
        png_error(png, "write error");
    }
    p->bytes += len;
}

static void on_png_flush(png_structp png)
{
    (void)png; /* kmq_fsx_commit flushes */
}

/* Turns a libpng failure into our status; runs after the longjmp. */
static kmq_status png_failure(kmq_png *p, kmq_err *err)
{
    p->failed = true;
    if (p->out_of_memory)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory writing %s", p->file.final_path);
    if (p->write_errno)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: %s", p->file.final_path,
                           strerror(p->write_errno));
    if (p->stage_overflow)
        return kmq_err_set(err, KMQ_E_INTERNAL,
                           "%s: compressed rows overflowed their %zu-byte staging buffer",
                           p->file.final_path, p->stage_cap);
    return kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: libpng: %s", p->file.final_path,
                       p->png_msg);
}

/* The libpng calls of open, after the structs exist. */
static kmq_status write_header(kmq_png *p, int color_type, const png_color *palette,
                               const uint8_t *alpha, kmq_err *err)
{
    if (setjmp(png_jmpbuf(p->png)))
        return png_failure(p, err);
    /* libpng's default limit (10^6 per side) is for readers; libvips allows
     * 10^7, and the PNG format 2^31 - 1. */
    png_set_user_limits(p->png, 0x7fffffff, 0x7fffffff);
    png_set_write_fn(p->png, p, on_png_write, on_png_flush);
    png_set_IHDR(p->png, p->info, p->width, p->height, (int)p->depth, color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(p->png, p->info, palette, (int)p->ncolors);
    /* tRNS up to the last entry that is not opaque (the rest default to
     * opaque); none when every entry is. */
    size_t ntrans = 0;
    for (size_t i = 0; alpha && i < p->ncolors; i++)
        if (alpha[i] != 255)
            ntrans = i + 1;
    if (ntrans)
        png_set_tRNS(p->png, p->info, alpha, (int)ntrans, NULL);
    png_set_filter(p->png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_write_info(p->png, p->info);
    return KMQ_OK;
}

static kmq_status write_packed_row(kmq_png *p, const uint8_t *row, kmq_err *err)
{
    if (setjmp(png_jmpbuf(p->png)))
        return png_failure(p, err);
    png_write_row(p->png, row);
    return KMQ_OK;
}

static kmq_status write_end(kmq_png *p, kmq_err *err)
{
    if (setjmp(png_jmpbuf(p->png)))
        return png_failure(p, err);
    png_write_end(p->png, NULL);
    return KMQ_OK;
}

static void png_free_all(kmq_png *p)
{
    if (!p)
        return;
    if (p->png)
        png_destroy_write_struct(&p->png, p->info ? &p->info : NULL);
    kmq_fsx_abort(&p->file);
    kmq__free(p->packed);
    kmq__free(p->stage);
    kmq__free(p);
}

/* Shared by the three writers: checks, temporary file, libpng structs, IHDR
 * (+ PLTE). `palette_rgb` is NULL for grey and RGB images. */
static kmq_status png_open(const char *path, uint32_t width, uint32_t height, int color_type,
                           const uint8_t *palette_rgb, const uint8_t *alpha, size_t ncolors,
                           kmq_png **out, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    kmq_png *p = NULL;
    png_color palette[256];

    if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu) {
        status = kmq_err_set(err, KMQ_E_ARG, "PNG size %u x %u is out of range (1..2^31-1)", width,
                             height);
        goto done;
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE && (ncolors < 1 || ncolors > 256)) {
        status = kmq_err_set(err, KMQ_E_ARG, "palette of %zu colours: a PNG palette holds 1..256",
                             ncolors);
        goto done;
    }
    p = kmq__calloc(1, sizeof *p);
    if (!p) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory writing %s", path);
        goto done;
    }
    p->width = width;
    p->height = height;
    p->ncolors = color_type == PNG_COLOR_TYPE_PALETTE ? ncolors : 0;
    p->depth = color_type == PNG_COLOR_TYPE_PALETTE ? kmq_png_bit_depth(ncolors) : 8;
    p->channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    /* Only rows below 8 bits need a copy: 8-bit rows go to libpng as given
     * (it copies each row into its own buffer anyway), which saves a row of
     * memory per writer, and the map pass keeps hundreds of writers open. */
    if (p->depth < 8) {
        p->packed = kmq__alloc(((size_t)width * p->depth + 7) / 8);
        if (!p->packed) {
            status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory writing %s", path);
            goto done;
        }
    }
    status = kmq_fsx_create(path, &p->file, err);
    if (status != KMQ_OK)
        goto done;
    p->png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, p, on_png_error, on_png_warning, p,
                                       on_png_malloc, on_png_free);
    if (p->png)
        p->info = png_create_info_struct(p->png);
    if (!p->png || !p->info) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory writing %s", path);
        goto done;
    }
    if (palette_rgb) {
        for (size_t i = 0; i < ncolors; i++) {
            palette[i].red = palette_rgb[3 * i];
            palette[i].green = palette_rgb[3 * i + 1];
            palette[i].blue = palette_rgb[3 * i + 2];
        }
    }
    status = write_header(p, color_type, palette_rgb ? palette : NULL, alpha, err);
    if (status != KMQ_OK)
        goto done;
    *out = p;
    p = NULL;

done:
    png_free_all(p);
    return status;
}

kmq_status kmq_png_open_indexed(const char *path, uint32_t width, uint32_t height,
                                const uint8_t *palette_rgb, size_t ncolors, kmq_png **out,
                                kmq_err *err)
{
    return png_open(path, width, height, PNG_COLOR_TYPE_PALETTE, palette_rgb, NULL, ncolors, out,
                    err);
}

kmq_status kmq_png_open_indexed_rgba(const char *path, uint32_t width, uint32_t height,
                                     const uint8_t *palette_rgb, const uint8_t *alpha,
                                     size_t ncolors, kmq_png **out, kmq_err *err)
{
    return png_open(path, width, height, PNG_COLOR_TYPE_PALETTE, palette_rgb, alpha, ncolors, out,
                    err);
}

kmq_status kmq_png_open_grey(const char *path, uint32_t width, uint32_t height, kmq_png **out,
                             kmq_err *err)
{
    return png_open(path, width, height, PNG_COLOR_TYPE_GRAY, NULL, NULL, 0, out, err);
}

/* Packs `samples` indices below 2^depth (depth 1, 2 or 4) into bytes, the
 * leftmost pixel in the high bits as PNG wants; the padding bits of the last
 * byte are zero. Whole bytes are built in straight-line code. */
static void pack_row(uint8_t *out, const uint8_t *row, size_t samples, unsigned depth)
{
    size_t per_byte = 8 / depth, whole = samples / per_byte;
    switch (depth) {
    case 4:
        for (size_t i = 0; i < whole; i++)
            out[i] = (uint8_t)(row[2 * i] << 4 | row[2 * i + 1]);
        break;
    case 2:
        for (size_t i = 0; i < whole; i++) {
            const uint8_t *r = row + 4 * i;
            out[i] = (uint8_t)(r[0] << 6 | r[1] << 4 | r[2] << 2 | r[3]);
        }
        break;
    default:
        for (size_t i = 0; i < whole; i++) {
            const uint8_t *r = row + 8 * i;
            out[i] = (uint8_t)(r[0] << 7 | r[1] << 6 | r[2] << 5 | r[3] << 4 | r[4] << 3 |
                               r[5] << 2 | r[6] << 1 | r[7]);
        }
        break;
    }
    size_t rest = samples - whole * per_byte;
    if (rest > 0) {
        uint8_t last = 0;
        for (size_t j = 0; j < rest; j++)
            last |= (uint8_t)(row[whole * per_byte + j] << (8 - depth * (unsigned)(j + 1)));
        out[whole] = last;
    }
}

kmq_status kmq_png_write_row(kmq_png *png, const uint8_t *row, kmq_err *err)
{
    kmq_png *p = png;
    if (p->failed)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: an earlier write failed",
                           p->file.final_path);
    if (p->rows_done >= p->height)
        return kmq_err_set(err, KMQ_E_ARG, "%s: row %u is past the last row (height %u)",
                           p->file.final_path, p->rows_done, p->height);
    if (p->stage && p->rows_staged >= p->stage_rows)
        return kmq_err_set(err, KMQ_E_ARG, "%s: more than %u rows staged without a flush",
                           p->file.final_path, p->stage_rows);
    size_t samples = (size_t)p->width * (size_t)p->channels;
    if (p->ncolors > 0) {
        /* One pass for the largest index (it vectorises); the column is
         * looked up only when there is something to report. */
        uint8_t largest = 0;
        for (size_t x = 0; x < samples; x++)
            largest = row[x] > largest ? row[x] : largest;
        if (largest >= p->ncolors) {
            size_t x = 0;
            while (row[x] < p->ncolors)
                x++;
            return kmq_err_set(err, KMQ_E_ARG,
                               "%s: palette index %u at column %zu of row %u is out of range "
                               "(%zu colours)",
                               p->file.final_path, (unsigned)row[x], x, p->rows_done, p->ncolors);
        }
    }
    if (p->depth < 8)
        pack_row(p->packed, row, samples, p->depth);
    kmq_status status = write_packed_row(p, p->depth < 8 ? p->packed : row, err);
    if (status == KMQ_OK) {
        p->rows_done++;
        p->rows_staged++;
    }
    return status;
}

kmq_status kmq_png_stage(kmq_png *png, uint32_t rows, kmq_err *err)
{
    kmq_png *p = png;
    if (p->stage || rows == 0)
        return kmq_err_set(err, KMQ_E_ARG, "%s: staging is set once, for at least one row",
                           p->file.final_path);
    /* What `rows` rows can add to the output: their deflate bound (input +
     * 1/1000 + a few bytes per 16 KiB block), plus what deflate held back
     * from earlier rows (at most one pending block: 16 Ki symbols of <= 6
     * bytes), libpng's 8 KiB IDAT buffer and chunk headers. Doubling the
     * input and adding 512 KiB covers all of it with room to spare. */
    size_t row_bytes = ((size_t)p->width * p->depth * (size_t)p->channels + 7) / 8 + 1;
    if (row_bytes > (SIZE_MAX - ((size_t)512 << 10)) / 2 / rows)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory staging %u rows of %s", rows,
                           p->file.final_path);
    size_t cap = 2 * row_bytes * rows + ((size_t)512 << 10);
    p->stage = kmq__alloc(cap);
    if (!p->stage)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory staging %u rows of %s", rows,
                           p->file.final_path);
    p->stage_cap = cap;
    p->stage_rows = rows;
    p->rows_staged = 0;
    return KMQ_OK;
}

kmq_status kmq_png_flush(kmq_png *png, kmq_err *err)
{
    kmq_png *p = png;
    if (p->failed)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: an earlier write failed",
                           p->file.final_path);
    if (p->stage && p->stage_len > 0) {
        errno = 0;
        if (fwrite(p->stage, 1, p->stage_len, p->file.fp) != p->stage_len) {
            p->failed = true;
            return kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: %s", p->file.final_path,
                               strerror(errno ? errno : EIO));
        }
    }
    p->stage_len = 0;
    p->rows_staged = 0;
    return KMQ_OK;
}

kmq_status kmq_png_close(kmq_png *png, uint64_t *bytes, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    kmq_png *p = png;

    if (p->failed) {
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: an earlier write failed",
                             p->file.final_path);
        goto done;
    }
    if (p->rows_done != p->height) {
        status = kmq_err_set(err, KMQ_E_ARG, "%s: only %u of %u rows were written",
                             p->file.final_path, p->rows_done, p->height);
        goto done;
    }
    /* The end of the stream (the last deflate block, IEND) goes straight to
     * the file: close runs on one thread. */
    status = kmq_png_flush(p, err);
    if (status != KMQ_OK)
        goto done;
    kmq__free(p->stage);
    p->stage = NULL;
    status = write_end(p, err);
    if (status != KMQ_OK)
        goto done;
    png_destroy_write_struct(&p->png, &p->info);
    status = kmq_fsx_commit(&p->file, false, err);
    if (status != KMQ_OK)
        goto done;
    if (bytes)
        *bytes = p->bytes;

done:
    png_free_all(p); /* after a commit the fsx file is already cleared */
    return status;
}

void kmq_png_abort(kmq_png *png)
{
    png_free_all(png);
}

kmq_status kmq_png_write_swatch(const char *path, const uint8_t *palette_rgb,
                                const uint64_t *pixels, size_t ncolors, uint64_t *bytes,
                                kmq_err *err)
{
    kmq_status status = KMQ_OK;
    kmq_png *p = NULL;
    uint8_t row[SWATCH_WIDTH * 3];
    uint32_t widths[256];
    double remainder[256];

    if (ncolors < 1 || ncolors > 256) {
        status = kmq_err_set(err, KMQ_E_ARG, "swatch of %zu colours: 1..256 fit", ncolors);
        goto done;
    }
    /* Each colour gets 1 px plus its share of the rest, by largest
     * remainder (ties to the lower index), so the widths sum to exactly
     * SWATCH_WIDTH. Shares are exact enough in double: the result only
     * chooses pixel columns. */
    uint64_t total = 0;
    for (size_t i = 0; i < ncolors; i++)
        total += pixels[i];
    uint32_t spare = SWATCH_WIDTH - (uint32_t)ncolors;
    uint32_t used = 0;
    for (size_t i = 0; i < ncolors; i++) {
        double share = total > 0 ? (double)pixels[i] / (double)total : 1.0 / (double)ncolors;
        double exact = share * spare;
        widths[i] = 1 + (uint32_t)exact;
        remainder[i] = exact - (double)(uint32_t)exact;
        used += widths[i];
    }
    while (used < SWATCH_WIDTH) {
        size_t best = 0;
        for (size_t i = 1; i < ncolors; i++)
            if (remainder[i] > remainder[best])
                best = i;
        widths[best]++;
        remainder[best] = -1.0;
        used++;
    }
    size_t x = 0;
    for (size_t i = 0; i < ncolors; i++)
        for (uint32_t w = 0; w < widths[i] && x < SWATCH_WIDTH; w++, x++)
            memcpy(row + 3 * x, palette_rgb + 3 * i, 3);

    status =
        png_open(path, SWATCH_WIDTH, SWATCH_HEIGHT, PNG_COLOR_TYPE_RGB, NULL, NULL, 0, &p, err);
    if (status != KMQ_OK)
        goto done;
    for (uint32_t y = 0; y < SWATCH_HEIGHT; y++) {
        status = kmq_png_write_row(p, row, err);
        if (status != KMQ_OK)
            goto done;
    }
    status = kmq_png_close(p, bytes, err);
    p = NULL; /* close frees it, also on failure */

done:
    kmq_png_abort(p);
    return status;
}
