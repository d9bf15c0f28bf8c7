/* image_vips.c — open an image, normalise it to 8-bit sRGB, stream its rows
 * (layer L2; the only file that includes <vips/vips.h>).
 *
 * Open: stat the path first (missing, unreadable, folder, empty file give
 * specific errors that libvips would blur), sniff the format with
 * vips_foreign_find_load, refuse any format outside the job's list before
 * its loader runs, then load the header with sequential access. Before any
 * pixel is decoded (decompression bombs): width * height against
 * max_pixels; the memory a decoder that cannot stream would take (see
 * decode_estimate) against max_decode_bytes; and a JPEG's size against the
 * least its declared pixels can be coded in (jpeg_min_bytes).
 *
 * Untrusted loaders: libvips marks the loaders it does not consider safe
 * for hostile input (SVG, PDF, ImageMagick, FITS, OpenEXR, Matlab, CSV,
 * ...) untrusted; kmq_image_lib_init blocks them all, and a loader is
 * unblocked only when a job names its format, just before it is used.
 * libvips' own .v loader is among the untrusted ones but is a documented
 * input format, so the default list unblocks it the same way.
 *
 * Fail-on policy: truncated or corrupt pixel data fails the pass
 * (KMQ_E_DECODE) instead of decoding to grey rows. libvips' fail_on =
 * error catches truncation in every format; JPEG also gets fail_on =
 * warning, because libjpeg reports a scan cut short by an early
 * end-of-image marker, or entropy data it cannot decode, only as warnings
 * and fills the rest with grey.
 *
 * Normalise (the same lazy pipeline for every pass):
 *   decode LABQ/RAD coding -> fix an interpretation libvips cannot convert
 *   -> split off alpha -> colour to sRGB uchar (vips_colourspace: B_W and
 *   GREY16 are replicated, 16-bit is shifted, CMYK/LAB/scRGB converted)
 *   -> alpha to the 0..255 scale -> flatten onto the background -> 3 bands
 *   uchar (with keep_alpha and an alpha channel: joined back, 4 bands). Embedded ICC profiles of
 * RGB images are not applied, so an sRGB file decodes to the same bytes as a plain libvips or
 * Pillow load. EXIF orientation is not applied either (the same plain load; rotating by 90 degrees
 * would also defeat sequential access).
 *
 * Streaming: each pass builds the pipeline on a freshly loaded sequential
 * image and pulls strips top to bottom with vips_region_prepare in the
 * caller's thread; libvips' own worker pool is not involved, and no OpenMP
 * region is opened here. A rewind reloads the file. With whole-image mode
 * the first pass also copies its rows into memory and later passes are
 * served from there, so the rows are the same either way.
 *
 * Format modules: libvips loads its optional loaders (HEIF/AVIF, JPEG XL,
 * PDF, OpenSlide, ImageMagick) in vips_init, and with them dozens of
 * libraries: about 35 ms of every process start, more than the whole fit
 * of a small photo. kmq defers them to the first file that no built-in
 * loader recognises (load_deferred_modules); which loader reads a file
 * does not change, since the built-in loaders are asked first either way
 * and the modules only add formats.
 *
 * Errors: libvips keeps one process-wide error log. Right after a failing
 * vips call, vips_fail() takes its text into our kmq_err and clears it, in
 * the same thread (docs/design.md).
 */
#include "kmq/image.h"

#include "image_internal.h"

#include "internal.h"
#include "kmq/fsx.h"

#include <gmodule.h>
#include <vips/vips.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rows per strip: enough to amortise the per-call overhead of
 * vips_region_prepare, bounded so one strip stays below STRIP_MAX_BYTES
 * whatever the width (libvips allows widths up to 10^7). A caller that
 * keeps more per strip lowers it further (kmq_image_limit_strip_rows). */
#define STRIP_ROWS      128
#define STRIP_MAX_BYTES ((uint64_t)8 * 1024 * 1024)
#define VIPS_MAX_STAGES 12

struct kmq_image {
    char *path;
    VipsFailOn fail_on; /* per format: see the fail-on policy above */
    kmq_image_opts opts;
    kmq_image_info info;
    uint32_t strip_rows;
    bool keep_whole;   /* serve passes after the first from `whole` */
    uint8_t *whole;    /* pixels * channels bytes, filled by the first full pass */
    bool whole_ready;  /* a full pass has filled `whole` */
    VipsImage *loaded; /* header-only load from open, used by the first pass */
    VipsImage *pipe;   /* normalised pipeline of the current pass */
    VipsRegion *region;
    uint32_t next_row;
    bool in_pass;
    bool failed; /* the current pass hit an error; rewind to retry */
};

/* Takes libvips' error log into err as one line ("A: x\nB: y\n" becomes
 * "A: x; B: y") and clears the log. */
static kmq_status vips_fail(kmq_err *err, kmq_status code, const char *what)
{
    char *log = vips_error_buffer_copy(); /* copies and clears under libvips' lock */
    char line[sizeof err->msg];
    size_t o = 0;
    for (const char *p = log ? log : ""; *p && o + 3 < sizeof line; p++) {
        if (*p != '\n' && *p != '\r' && *p != '\t') {
            line[o++] = *p;
        } else if (o > 0 && line[o - 1] != ' ' && p[1] != '\0' && p[1] != '\n') {
            line[o++] = ';';
            line[o++] = ' ';
        }
    }
    while (o > 0 && line[o - 1] == ' ')
        o--;
    line[o] = '\0';
    g_free(log);
    return kmq_err_set(err, code, "%s: %s", what, o > 0 ? line : "unknown libvips error");
}

/* libvips logs a g_warning for every failed tile and every recoverable
 * oddity in a file. Each failure already reaches the caller as a kmq_err,
 * and the CLI alone decides what goes to stderr (docs/design.md), so the library
 * drops them. */
static void drop_vips_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                              gpointer data)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
}

static atomic_bool vips_started = false;

/* vips_init loads the modules from $VIPSHOME/lib when VIPSHOME is set, so
 * while it runs VIPSHOME names a folder that has none. A VIPSHOME of the
 * user's own (a libvips installed elsewhere) is left alone, and libvips
 * loads its modules at start-up as usual. */
#define NO_MODULES_HOME "/nonexistent/kmq-deferred-vips-modules"
static bool modules_deferred = false;
static pthread_once_t modules_once = PTHREAD_ONCE_INIT;

/* What vips_init would have done: open every module in the folder (each
 * registers its loaders and makes itself resident); one that fails to
 * open is skipped, as libvips skips it. */
static void load_modules_now(void)
{
    GDir *dir = g_dir_open(KMQ_VIPS_MODULE_DIR, 0, NULL);
    if (!dir)
        return;
    for (const char *name; (name = g_dir_read_name(dir));) {
        if (!g_str_has_suffix(name, "." G_MODULE_SUFFIX))
            continue;
        char *file = g_build_filename(KMQ_VIPS_MODULE_DIR, name, NULL);
        GModule *module = g_module_open(file, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
        if (module)
            g_module_make_resident(module);
        g_free(file);
    }
    g_dir_close(dir);
    /* The modules' loaders (ImageMagick, PDF, HEIF, ...) registered after
     * start-up's blocking: block the untrusted ones among them too. */
    vips_block_untrusted_set(TRUE);
}

/* Loads the format modules once if start-up skipped them; true when a
 * format lookup that failed before may now succeed. */
static bool load_deferred_modules(void)
{
    if (!modules_deferred)
        return false;
    pthread_once(&modules_once, load_modules_now);
    return true;
}

kmq_status kmq_image_lib_init(const char *argv0, int threads, kmq_err *err)
{
    modules_deferred = !getenv("VIPSHOME") && setenv("VIPSHOME", NO_MODULES_HOME, 1) == 0;
    int failed = VIPS_INIT(argv0 ? argv0 : "kmq");
    if (modules_deferred)
        unsetenv("VIPSHOME");
    if (failed)
        return vips_fail(err, KMQ_E_INTERNAL, "cannot start libvips");
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, drop_vips_warning, NULL);
    vips_block_untrusted_set(TRUE);
    atomic_store(&vips_started, true);
    vips_concurrency_set(threads >= 1 ? threads : 1);
    /* A batch opens thousands of files once each: caching operations would
     * only keep their files open and their memory held. */
    vips_cache_set_max(0);
    return KMQ_OK;
}

kmq_status kmq_image_lib_set_temp_dir(const char *dir, kmq_err *err)
{
    if (!dir)
        return KMQ_OK;
    /* libvips reads TMPDIR for each temporary it names; ImageMagick reads
     * MAGICK_TEMPORARY_PATH, and other loaders' libraries TMPDIR. */
    if (setenv("TMPDIR", dir, 1) != 0 || setenv("MAGICK_TEMPORARY_PATH", dir, 1) != 0)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory setting the temporary folder");
    return KMQ_OK;
}

void kmq_image_lib_shutdown(void)
{
    /* vips_shutdown crashes when libvips was never started (a CLI that
     * exits on a usage error before kmq_image_lib_init). */
    if (atomic_exchange(&vips_started, false))
        vips_shutdown();
}

/* Writes "9.0e8"-style numbers for messages ("%.1e" prints "9.0e+08").
 * `out` holds at least 32 bytes. */
static void format_count(double value, char *out)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.1e", value);
    size_t o = 0;
    const char *p = raw;
    while (*p && *p != 'e')
        out[o++] = *p++;
    if (*p == 'e') {
        out[o++] = *p++;
        if (*p == '-')
            out[o++] = '-';
        if (*p == '+' || *p == '-')
            p++;
        while (p[0] == '0' && p[1] != '\0')
            p++;
        while (*p)
            out[o++] = *p++;
    }
    out[o] = '\0';
}

/* What stat and open(2) can tell before libvips sees the file: libvips
 * reports all of these as "is not a known file format". */
static kmq_status check_file(const char *path, uint64_t *bytes, kmq_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int saved_errno = errno;
        if (saved_errno == ENOENT || saved_errno == ENOTDIR)
            return kmq_err_set(err, KMQ_E_NOT_FOUND, "file not found");
        return kmq_err_set(err, KMQ_E_UNREADABLE, "cannot read the file: %s",
                           strerror(saved_errno));
    }
    if (S_ISDIR(st.st_mode))
        return kmq_err_set(err, KMQ_E_UNREADABLE, "this is a folder, not an image file");
    if (!S_ISREG(st.st_mode))
        return kmq_err_set(err, KMQ_E_UNREADABLE, "not a regular file");
    /* O_NONBLOCK: a file swapped for a FIFO since the stat must not hang. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return kmq_err_set(err, KMQ_E_UNREADABLE, "cannot read the file: %s", strerror(errno));
    struct stat opened;
    bool regular = fstat(fd, &opened) == 0 && S_ISREG(opened.st_mode);
    close(fd);
    if (!regular)
        return kmq_err_set(err, KMQ_E_UNREADABLE, "not a regular file");
    if (st.st_size == 0)
        return kmq_err_set(err, KMQ_E_DECODE, "file is empty (0 bytes)");
    *bytes = (uint64_t)st.st_size;
    return KMQ_OK;
}

/* Header-only load with sequential access; `fail_on` per the policy at the
 * top of the file. */
static kmq_status load_header(const char *path, VipsFailOn fail_on, VipsImage **out, kmq_err *err)
{
    VipsImage *image =
        vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", fail_on, NULL);
    if (!image)
        return vips_fail(err, KMQ_E_DECODE, "cannot read the image header");
    *out = image;
    return KMQ_OK;
}

/* 1..4 bands of an interpretation vips_colourspace cannot convert from
 * (MULTIBAND, FOURIER, MATRIX, ...): read them as grey or RGB by count. */
static VipsInterpretation fallback_space(const VipsImage *in)
{
    bool wide = in->BandFmt == VIPS_FORMAT_USHORT || in->BandFmt == VIPS_FORMAT_SHORT;
    if (in->Bands < 3)
        return wide ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
    return wide ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB;
}

/* Builds the lazy pipeline in -> 3-band uchar sRGB flattened onto the
 * background, or with keep_alpha 4-band uchar sRGB + alpha (straight). `in` is borrowed; *out is a
 * new reference. Nothing is decoded here. */
static kmq_status normalise(VipsImage *in, const uint8_t background[3], bool keep_alpha,
                            VipsImage **out, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    VipsImage *t[VIPS_MAX_STAGES] = {NULL};
    int n = 0;
    VipsImage *cur = in;
    VipsImage *alpha = NULL; /* borrowed from t[] */

    if (cur->Coding != VIPS_CODING_NONE) {
        if (vips_image_decode(cur, &t[n]))
            goto vips_error;
        cur = t[n++];
    }
    if (!vips_colourspace_issupported(cur)) {
        if (vips_copy(cur, &t[n], "interpretation", fallback_space(cur), NULL))
            goto vips_error;
        cur = t[n++];
    }
    VipsInterpretation space = vips_image_guess_interpretation(cur);

    /* Split alpha off before the colour conversion: the colour path changes
     * format (16 -> 8 bit, float -> uchar) and alpha must follow to the same
     * 0..255 scale before flattening, or the background would be mixed in
     * at the wrong weight. */
    if (vips_image_hasalpha(cur)) {
        int colour_bands = space == VIPS_INTERPRETATION_CMYK ? 4 : cur->Bands < 3 ? 1 : 3;
        double max_alpha = space == VIPS_INTERPRETATION_RGB16 || space == VIPS_INTERPRETATION_GREY16
                               ? 65535.0
                               : 255.0;
        if (vips_extract_band(cur, &t[n], colour_bands, NULL))
            goto vips_error;
        VipsImage *raw_alpha = t[n++];
        if (max_alpha != 255.0 || raw_alpha->BandFmt != VIPS_FORMAT_UCHAR) {
            if (vips_linear1(raw_alpha, &t[n], 255.0 / max_alpha, 0.0, NULL))
                goto vips_error;
            raw_alpha = t[n++];
            if (vips_round(raw_alpha, &t[n], VIPS_OPERATION_ROUND_RINT, NULL))
                goto vips_error;
            raw_alpha = t[n++];
            if (vips_cast_uchar(raw_alpha, &t[n], NULL)) /* clips to 0..255 */
                goto vips_error;
            raw_alpha = t[n++];
        }
        alpha = raw_alpha;
        if (vips_extract_band(cur, &t[n], 0, "n", colour_bands, NULL))
            goto vips_error;
        cur = t[n++];
        if (vips_copy(cur, &t[n], "interpretation", space, NULL))
            goto vips_error;
        cur = t[n++];
    }

    if (space != VIPS_INTERPRETATION_sRGB) {
        if (vips_colourspace(cur, &t[n], VIPS_INTERPRETATION_sRGB, "source_space", space, NULL))
            goto vips_error;
        cur = t[n++];
    }
    if (cur->Bands > 3) { /* extra bands that are not alpha */
        if (vips_extract_band(cur, &t[n], 0, "n", 3, NULL))
            goto vips_error;
        cur = t[n++];
    } else if (cur->Bands < 3) {
        VipsImage *copies[3] = {cur, cur, cur};
        if (vips_bandjoin(copies, &t[n], 3, NULL))
            goto vips_error;
        cur = t[n++];
    }
    if (cur->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(cur, &t[n], NULL))
            goto vips_error;
        cur = t[n++];
    }
    if (keep_alpha) { /* RGBA rows: the alpha as read, or opaque */
        if (alpha) {
            VipsImage *parts[2] = {cur, alpha};
            if (vips_bandjoin(parts, &t[n], 2, NULL))
                goto vips_error;
        } else if (vips_bandjoin_const1(cur, &t[n], 255.0, NULL)) {
            goto vips_error;
        }
        cur = t[n++]; /* uchar: both parts are */
    } else if (alpha) {
        VipsImage *parts[2] = {cur, alpha};
        if (vips_bandjoin(parts, &t[n], 2, NULL))
            goto vips_error;
        cur = t[n++];
        VipsArrayDouble *bg = vips_array_double_newv(3, (double)background[0],
                                                     (double)background[1], (double)background[2]);
        int failed = vips_flatten(cur, &t[n], "background", bg, "max_alpha", 255.0, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (failed)
            goto vips_error;
        cur = t[n++];
        if (cur->BandFmt != VIPS_FORMAT_UCHAR) {
            if (vips_cast_uchar(cur, &t[n], NULL))
                goto vips_error;
            cur = t[n++];
        }
    }
    if (cur->Bands != (keep_alpha ? 4 : 3) || cur->BandFmt != VIPS_FORMAT_UCHAR) {
        status = kmq_err_set(err, KMQ_E_INTERNAL, "normalised image has %d bands of format %d",
                             cur->Bands, (int)cur->BandFmt);
        goto done;
    }
    g_object_ref(cur);
    *out = cur;
    goto done;

vips_error:
    status = vips_fail(err, KMQ_E_DECODE, "cannot convert the image to 8-bit sRGB");
done:
    /* Each stage holds a reference to its input, so dropping ours keeps the
     * chain alive through *out. */
    for (int i = 0; i < n; i++)
        g_object_unref(t[i]);
    return status;
}

/* "jpegload" -> "jpeg", "VipsForeignLoadPngFile" -> nickname -> "png". */
static void format_name(const char *loader, char *out, size_t size)
{
    const char *nick = vips_nickname_find(g_type_from_name(loader));
    if (!nick)
        nick = loader;
    size_t len = strlen(nick);
    const char *load = strstr(nick, "load");
    if (load)
        len = (size_t)(load - nick);
    if (len >= size)
        len = size - 1;
    memcpy(out, nick, len);
    out[len] = '\0';
}

/* Bytes a decoder holds beyond streaming, from the header alone (upper
 * estimates from how each library decodes):
 *   JPEG: baseline streams row by row (0); progressive keeps every DCT
 *         coefficient, 2 bytes a sample.
 *   PNG:  non-interlaced streams (0); interlaced (Adam7) is de-interlaced
 *         into one whole image.
 *   TIFF, vips: strips, tiles or a mapped file (0).
 *   WebP, GIF: a whole RGBA frame, and the canvas it is composed onto.
 *   any other format: the whole image, twice, as a conservative guess. */
static uint64_t decode_estimate(const char *format, VipsImage *in, bool progressive)
{
    uint64_t pixels = (uint64_t)in->Xsize * (uint64_t)in->Ysize;
    uint64_t sample = vips_format_sizeof(in->BandFmt);
    uint64_t bands = (uint64_t)in->Bands;
    int interlaced = 0;
    if (vips_image_get_typeof(in, "interlaced") &&
        vips_image_get_int(in, "interlaced", &interlaced) != 0) {
        vips_error_clear();
        interlaced = 0;
    }
    if (strcmp(format, "jpeg") == 0)
        return progressive || interlaced ? pixels * bands * 2 : 0;
    if (strcmp(format, "png") == 0)
        return interlaced ? pixels * bands * sample : 0;
    if (strcmp(format, "tiff") == 0 || strcmp(format, "vips") == 0)
        return 0;
    if (strcmp(format, "webp") == 0 || strcmp(format, "gif") == 0)
        return pixels * 4 * 2;
    return pixels * bands * sample * 2;
}

/* Refuses a format outside `formats` with its name; unblocks the loader of
 * one inside (see "Untrusted loaders" above). A file that starts like one
 * of the formats read but that only another loader claims (a TIFF whose
 * directory was cut off, which ImageMagick then offers to read) is broken
 * rather than of another format: KMQ_E_DECODE. */
static kmq_status admit_format(const char *path, const char *loader, const char *format,
                               kmq_formats formats, kmq_err *err)
{
    kmq_formats bit = kmq_format_bit(format);
    if (bit && (formats & bit)) {
        vips_operation_block_set(loader, FALSE);
        return KMQ_OK;
    }
    const char *looks = kmq__image_signature_format(path);
    if (looks && (formats & kmq_format_bit(looks)))
        return kmq_err_set(err, KMQ_E_DECODE,
                           "the file starts like a %s image, but the %s loader cannot read it: "
                           "it is truncated or corrupt",
                           looks, looks);
    char allowed[256];
    kmq_formats_format(formats, allowed, sizeof allowed);
    const char *sniffed = strcmp(format, "magick") == 0 ? kmq__image_sniff_name(path) : NULL;
    if (sniffed)
        return kmq_err_set(err, KMQ_E_UNSUPPORTED,
                           "the file is %s (libvips would read it through ImageMagick, format "
                           "'magick'); this job reads only %s; add 'magick' to formats to read "
                           "it",
                           sniffed, allowed);
    return kmq_err_set(err, KMQ_E_UNSUPPORTED,
                       "the file is in format '%s', whatever its name says; this job reads only "
                       "%s; add '%s' to formats to read it",
                       format, allowed, format);
}

kmq_status kmq_image_open(const char *path, const kmq_image_opts *opts, kmq_image **out,
                          kmq_err *err)
{
    kmq_status status = KMQ_OK;
    kmq_image *img = NULL;
    uint64_t bytes = 0;
    char format[sizeof img->info.format];
    kmq_formats formats = opts->formats ? opts->formats : kmq_formats_default();
    kmq__jpeg_frame frame = {0};

    status = check_file(path, &bytes, err);
    if (status != KMQ_OK)
        goto done;
    const char *loader = vips_foreign_find_load(path);
    if (!loader && load_deferred_modules()) {
        vips_error_clear();
        loader = vips_foreign_find_load(path);
    }
    if (!loader) {
        vips_error_clear();
        const char *sniffed = kmq__image_sniff_name(path);
        if (sniffed)
            status = kmq_err_set(err, KMQ_E_UNSUPPORTED,
                                 "the file is %s, a format libvips cannot read here", sniffed);
        else
            status = kmq_err_set(err, KMQ_E_UNSUPPORTED, "not an image format libvips can read");
        goto done;
    }
    format_name(loader, format, sizeof format);
    status = admit_format(path, loader, format, formats, err);
    if (status != KMQ_OK)
        goto done;
    img = kmq__calloc(1, sizeof *img);
    if (!img || !(img->path = kmq__strdup(path))) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory opening an image");
        goto done;
    }
    img->opts = *opts;
    img->fail_on = strcmp(format, "jpeg") == 0 ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_ERROR;
    status = load_header(path, img->fail_on, &img->loaded, err);
    if (status != KMQ_OK)
        goto done;

    VipsImage *in = img->loaded;
    uint64_t pixels = (uint64_t)in->Xsize * (uint64_t)in->Ysize; /* both < 2^31 */
    char have[32], limit[32];
    if (opts->max_pixels > 0 && pixels > opts->max_pixels) {
        format_count((double)pixels, have);
        format_count((double)opts->max_pixels, limit);
        status = kmq_err_set(err, KMQ_E_TOO_LARGE, "image is %d x %d = %s pixels, max_pixels is %s",
                             in->Xsize, in->Ysize, have, limit);
        goto done;
    }
    if (strcmp(format, "jpeg") == 0) {
        kmq__jpeg_scan_frame(path, &frame);
        uint64_t least = kmq__jpeg_min_bytes((uint64_t)in->Xsize, (uint64_t)in->Ysize);
        if (frame.found && !frame.arithmetic && bytes < least) {
            format_count((double)least, limit);
            status = kmq_err_set(err, KMQ_E_DECODE,
                                 "the file is %" PRIu64 " bytes, too short for the %d x %d pixels "
                                 "its JPEG header declares (at least %s bytes): it is truncated",
                                 bytes, in->Xsize, in->Ysize, limit);
            goto done;
        }
    }
    uint64_t need = decode_estimate(format, in, frame.progressive);
    if (opts->max_decode_bytes > 0 && need > opts->max_decode_bytes) {
        format_count((double)need, have);
        format_count((double)opts->max_decode_bytes, limit);
        status = kmq_err_set(err, KMQ_E_TOO_LARGE,
                             "decoding this %d x %d %s%s would take about %s bytes of memory "
                             "(it cannot be streamed), max_decode_bytes is %s",
                             in->Xsize, in->Ysize, frame.progressive ? "progressive " : "", format,
                             have, limit);
        goto done;
    }
    img->info.bytes = bytes;
    memcpy(img->info.format, format, sizeof format);
    img->info.width = (uint32_t)in->Xsize;
    img->info.height = (uint32_t)in->Ysize;
    img->info.bands = in->Bands;
    img->info.alpha = vips_image_hasalpha(in);
    img->info.channels = opts->keep_alpha && img->info.alpha ? 4 : 3;
    img->info.pixels = pixels;

    uint64_t rows = STRIP_ROWS;
    while (rows > 1 && rows * img->info.width * (uint64_t)img->info.channels > STRIP_MAX_BYTES)
        rows /= 2;
    img->strip_rows = (uint32_t)rows;
    img->keep_whole = opts->mode == KMQ_IMAGE_WHOLE ||
                      (opts->mode == KMQ_IMAGE_AUTO && pixels <= KMQ_IMAGE_WHOLE_MAX_PIXELS);
    *out = img;
    img = NULL;

done:
    kmq_image_free(img);
    return status;
}

/* Drops the current pass's pipeline, which closes the file. */
static void end_pipeline(kmq_image *img)
{
    if (img->region) {
        g_object_unref(img->region);
        img->region = NULL;
    }
    if (img->pipe) {
        g_object_unref(img->pipe);
        img->pipe = NULL;
    }
}

void kmq_image_end_pass(kmq_image *img)
{
    end_pipeline(img);
    img->in_pass = false;
}

void kmq_image_free(kmq_image *img)
{
    if (!img)
        return;
    end_pipeline(img);
    if (img->loaded)
        g_object_unref(img->loaded);
    kmq__free(img->whole);
    kmq__free(img->path);
    kmq__free(img);
}

const kmq_image_info *kmq_image_get_info(const kmq_image *img)
{
    return &img->info;
}

uint32_t kmq_image_strip_rows(const kmq_image *img)
{
    return img->strip_rows;
}

uint32_t kmq_image_limit_strip_rows(kmq_image *img, uint32_t max_rows)
{
    /* A pass reads into buffers its caller sized for the old height. */
    assert(!img->in_pass);
    if (max_rows < 1)
        max_rows = 1;
    if (max_rows < img->strip_rows)
        img->strip_rows = max_rows;
    return img->strip_rows;
}

kmq_status kmq_image_rewind(kmq_image *img, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    VipsImage *in = NULL;

    end_pipeline(img);
    img->in_pass = false;
    img->failed = false;
    img->next_row = 0;
    if (img->whole_ready) {
        img->in_pass = true;
        goto done;
    }
    if (img->keep_whole && !img->whole) {
        /* pixels * 4 < 2^64 (width, height < 2^31); size_t may be smaller. */
        size_t bpp = (size_t)img->info.channels;
        img->whole = kmq__alloc_array((size_t)img->info.pixels, bpp);
        if (!img->whole || img->info.pixels > SIZE_MAX / bpp) {
            status =
                kmq_err_set(err, KMQ_E_NOMEM, "out of memory keeping a %u x %u image in memory",
                            img->info.width, img->info.height);
            goto done;
        }
    }
    if (img->loaded) { /* the first pass reuses the load that read the header */
        in = img->loaded;
        img->loaded = NULL;
    } else {
        status = check_file(img->path, &(uint64_t){0}, err);
        if (status != KMQ_OK)
            goto done;
        status = load_header(img->path, img->fail_on, &in, err);
        if (status != KMQ_OK)
            goto done;
        if ((uint32_t)in->Xsize != img->info.width || (uint32_t)in->Ysize != img->info.height) {
            status = kmq_err_set(
                err, KMQ_E_CHANGED,
                "the file changed while it was processed (%u x %u, now %d x %d); run again",
                img->info.width, img->info.height, in->Xsize, in->Ysize);
            goto done;
        }
    }
    status = normalise(in, img->opts.background, img->info.channels == 4, &img->pipe, err);
    if (status != KMQ_OK)
        goto done;
    img->region = vips_region_new(img->pipe);
    if (!img->region) {
        status = vips_fail(err, KMQ_E_NOMEM, "cannot start reading the image");
        goto done;
    }
    img->in_pass = true;

done:
    if (in)
        g_object_unref(in); /* the pipeline keeps its own reference */
    if (status != KMQ_OK)
        end_pipeline(img);
    return status;
}

kmq_status kmq_image_read_strip(kmq_image *img, uint8_t *buf, uint32_t *rows, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    uint32_t width = img->info.width;
    size_t row_bytes = (size_t)width * (size_t)img->info.channels;

    if (!img->in_pass) {
        status = kmq_err_set(err, KMQ_E_ARG, "kmq_image_rewind must start each pass");
        goto done;
    }
    if (img->failed) {
        status = kmq_err_set(err, KMQ_E_DECODE, "the pass already failed; rewind to retry");
        goto done;
    }
    uint32_t y = img->next_row;
    uint32_t n = img->info.height - y;
    if (n > img->strip_rows)
        n = img->strip_rows;
    if (n == 0) {
        *rows = 0;
        goto done;
    }
    if (img->whole_ready) {
        memcpy(buf, img->whole + (size_t)y * row_bytes, (size_t)n * row_bytes);
    } else {
        VipsRect want = {0, (int)y, (int)width, (int)n};
        if (vips_region_prepare(img->region, &want)) {
            img->failed = true;
            status = vips_fail(err, KMQ_E_DECODE, "cannot decode the image");
            goto done;
        }
        for (uint32_t i = 0; i < n; i++) {
            const VipsPel *src = VIPS_REGION_ADDR(img->region, 0, (int)(y + i));
            memcpy(buf + (size_t)i * row_bytes, src, row_bytes);
        }
        if (img->whole)
            memcpy(img->whole + (size_t)y * row_bytes, buf, (size_t)n * row_bytes);
        if (y + n == img->info.height) {
            /* Last strip: close the file now rather than at the next rewind. */
            end_pipeline(img);
            img->whole_ready = img->whole != NULL;
        }
    }
    img->next_row = y + n;
    *rows = n;

done:
    return status;
}

/* kmq_image_save_rgb and kmq_image_save_jpeg; quality 0: the encoder's default. */
static kmq_status save_rgb(const char *out_path, const uint8_t *rgb, uint32_t width,
                           uint32_t height, int quality, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    VipsImage *img = NULL;
    void *buf = NULL;
    size_t len = 0;
    const char *slash = strrchr(out_path, '/');
    const char *suffix = strrchr(slash ? slash + 1 : out_path, '.');
    if (!suffix || width == 0 || height == 0 || width > INT32_MAX || height > INT32_MAX) {
        status = kmq_err_set(err, KMQ_E_ARG, "cannot save %u x %u pixels as %s", width, height,
                             out_path);
        goto done;
    }
    if (!vips_foreign_find_save_buffer(suffix)) {
        vips_error_clear();
        status = kmq_err_set(err, KMQ_E_ARG, "libvips cannot save images as '%s'", suffix);
        goto done;
    }
    img = vips_image_new_from_memory(rgb, (size_t)width * height * 3, (int)width, (int)height, 3,
                                     VIPS_FORMAT_UCHAR);
    if (!img) {
        status = vips_fail(err, KMQ_E_NOMEM, "cannot wrap the pixels to save");
        goto done;
    }
    img->Type = VIPS_INTERPRETATION_sRGB;
    /* Encode in memory, then write through fsx: a temporary name would hide
     * the extension libvips picks the format from. */
    int failed =
        quality > 0
            ? vips_image_write_to_buffer(img, suffix, &buf, &len, "strip", TRUE, "Q", quality, NULL)
            : vips_image_write_to_buffer(img, suffix, &buf, &len, "strip", TRUE, NULL);
    if (failed) {
        status = vips_fail(err, KMQ_E_DECODE, "cannot encode the image");
        goto done;
    }
    status = kmq_fsx_write_all(out_path, buf, len, false, err);
done:
    if (img)
        g_object_unref(img);
    g_free(buf);
    return status;
}

kmq_status kmq_image_save_rgb(const char *out_path, const uint8_t *rgb, uint32_t width,
                              uint32_t height, kmq_err *err)
{
    return save_rgb(out_path, rgb, width, height, 0, err);
}

kmq_status kmq_image_save_jpeg(const char *out_path, const uint8_t *rgb, uint32_t width,
                               uint32_t height, int quality, kmq_err *err)
{
    const char *slash = strrchr(out_path, '/');
    const char *suffix = strrchr(slash ? slash + 1 : out_path, '.');
    if (quality < 1 || quality > 100 || !suffix ||
        (strcmp(suffix, ".jpg") != 0 && strcmp(suffix, ".jpeg") != 0))
        return kmq_err_set(err, KMQ_E_ARG, "cannot save a JPEG of quality %d as %s", quality,
                           out_path);
    return save_rgb(out_path, rgb, width, height, quality, err);
}
