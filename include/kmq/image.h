/* image.h — open an image, normalise it to 8-bit sRGB with 3 bands, and
 * stream its rows (layer L2; hides libvips).
 *
 * The image is read sequentially in strips, top to bottom, never decoded
 * whole unless it is small (KMQ_IMAGE_AUTO keeps images of at most
 * KMQ_IMAGE_WHOLE_MAX_PIXELS decoded in memory after the first pass, which
 * gives identical rows). Each pass starts with kmq_image_rewind.
 *
 * Threads: libvips decodes with its own workers, sized by
 * kmq_image_lib_init. The functions here open no OpenMP region and must not
 * be called from inside one.
 */
#ifndef KMQ_IMAGE_H
#define KMQ_IMAGE_H

#include "kmq/error.h"
#include "kmq/formats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMQ_IMAGE_WHOLE_MAX_PIXELS ((uint64_t)16 * 1024 * 1024)

typedef enum kmq_image_mode {
    KMQ_IMAGE_AUTO = 0, /* small images in memory, large ones streamed */
    KMQ_IMAGE_STREAM,   /* always re-decode for each pass */
    KMQ_IMAGE_WHOLE     /* always decode once into memory */
} kmq_image_mode;

typedef struct kmq_image_opts {
    uint8_t background[3]; /* alpha is flattened onto this colour */
    bool keep_alpha;       /* an image with alpha is read as RGBA rows instead */
    uint64_t max_pixels;   /* refuse larger images before decoding (0: no limit) */
    /* Memory a decoder that cannot stream (progressive JPEG, interlaced
     * PNG, WebP, GIF, any format outside the default set) would take,
     * estimated from the header; larger is refused before decoding (0: no
     * limit). */
    uint64_t max_decode_bytes;
    kmq_formats formats; /* formats read (0: kmq_formats_default()) */
    kmq_image_mode mode;
} kmq_image_opts;

typedef struct kmq_image_info {
    uint64_t bytes;  /* file size */
    char format[16]; /* "jpeg", "png", "tiff", "webp", "gif", "vips", ... */
    uint32_t width;
    uint32_t height;
    int bands;       /* bands of the file before normalisation */
    bool alpha;      /* the file has an alpha channel */
    int channels;    /* bytes a pixel of the rows read: 3 (RGB), or 4 (RGBA:
                        alpha kept, straight, 0..255) */
    uint64_t pixels; /* width * height */
} kmq_image_info;

typedef struct kmq_image kmq_image;

/* Starts libvips once per process: `threads` is the decode budget (>= 1).
 * Disables libvips' operation cache (a batch must not keep every file
 * open). Returns KMQ_OK or KMQ_E_INTERNAL. */
KMQ_MUST_CHECK kmq_status kmq_image_lib_init(const char *argv0, int threads, kmq_err *err);

/* Points the temporary files of libvips and of its loaders (TMPDIR,
 * ImageMagick's MAGICK_TEMPORARY_PATH) at `dir`, which the caller owns and
 * cleans: a run keeps them inside its output root, where the next run
 * removes what a killed one left. Process-wide (environment variables);
 * call before images are opened, from one thread. NULL restores nothing
 * and is a no-op. Returns KMQ_OK or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_image_lib_set_temp_dir(const char *dir, kmq_err *err);

/* Shuts libvips down (at exit). */
void kmq_image_lib_shutdown(void);

/* Opens `path` and reads its header only. The format is found from the
 * content, never the name; a format outside opts->formats is refused with
 * its name in the message, before its loader runs. width * height is checked
 * against opts->max_pixels, and the memory a non-streaming decoder would
 * take against opts->max_decode_bytes, before any decoding; a JPEG too short
 * to hold the pixels its header declares is refused as truncated. Returns
 * KMQ_OK, KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE (permissions, a folder, not a
 * regular file), KMQ_E_UNSUPPORTED (not an image, or a format not read),
 * KMQ_E_DECODE (empty, truncated or corrupt), KMQ_E_TOO_LARGE or
 * KMQ_E_NOMEM. The message names the problem; the caller adds the path with
 * kmq_err_where. */
KMQ_MUST_CHECK kmq_status kmq_image_open(const char *path, const kmq_image_opts *opts,
                                         kmq_image **out, kmq_err *err);

void kmq_image_free(kmq_image *img);

/* Header facts. Owned by img. */
const kmq_image_info *kmq_image_get_info(const kmq_image *img);

/* Rows per strip that kmq_image_read_strip delivers (the last may be fewer). */
uint32_t kmq_image_strip_rows(const kmq_image *img);

/* Lowers the strip height to at most `max_rows` (never below 1 row, never
 * above the height chosen at open), for a caller whose own buffers grow
 * with the strip. The rows a pass delivers do not depend on it, only how
 * they are grouped. Call it after open, before the first kmq_image_rewind.
 * Returns the strip height now in effect. */
uint32_t kmq_image_limit_strip_rows(kmq_image *img, uint32_t max_rows);

/* Starts a pass over the rows from the top. Must be called before the first
 * pass too. Returns KMQ_OK, KMQ_E_CHANGED (a reloaded file has other
 * dimensions than at open) or a decode/open error. */
KMQ_MUST_CHECK kmq_status kmq_image_rewind(kmq_image *img, kmq_err *err);

/* Ends the pass in progress and releases its decoder state. libvips binds
 * a reading region to the thread that made it, so a pass started on one
 * thread (kmq_image_rewind) must be ended on that same thread; a later read
 * needs a new rewind. */
void kmq_image_end_pass(kmq_image *img);

/* Reads the next strip of normalised pixels (interleaved RGB, or RGBA when
 * info.channels is 4: width * channels bytes a row) into `buf`, which holds
 * strip_rows * width * channels bytes, and
 * sets *rows (0 at the end of the pass). A truncated or corrupt file fails
 * here with KMQ_E_DECODE, never with grey rows. */
KMQ_MUST_CHECK kmq_status kmq_image_read_strip(kmq_image *img, uint8_t *buf, uint32_t *rows,
                                               kmq_err *err);

/* Encodes `width` x `height` pixels of interleaved 8-bit RGB as an image
 * file at `out_path` (format from its extension, e.g. .jpg), atomically.
 * Returns KMQ_OK, KMQ_E_ARG (no known extension), KMQ_E_DECODE (the
 * encoder failed), KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_image_save_rgb(const char *out_path, const uint8_t *rgb,
                                             uint32_t width, uint32_t height, kmq_err *err);

/* kmq_image_save_rgb as a baseline JPEG of `quality` (1..100) at
 * `out_path` (ending in .jpg or .jpeg; KMQ_E_ARG otherwise). Same returns. */
KMQ_MUST_CHECK kmq_status kmq_image_save_jpeg(const char *out_path, const uint8_t *rgb,
                                              uint32_t width, uint32_t height, int quality,
                                              kmq_err *err);

#endif
