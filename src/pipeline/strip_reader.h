/* strip_reader.h — the strips of one pass over an image, decoded one strip
 * ahead on a background thread (layer L3, private to the runner).
 *
 * While the runner labels and encodes strip i with OpenMP, the reader thread
 * already decodes strip i + 1 with libvips, the way `vips copy` overlaps
 * decoding and encoding. Only the reader thread touches the image between
 * start and free; no OpenMP region is opened on it. With background =
 * false the strips are read on the caller's thread instead (same bytes).
 */
#ifndef KMQ_STRIP_READER_H
#define KMQ_STRIP_READER_H

#include "internal.h"
#include "kmq/error.h"
#include "kmq/image.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kmq__strip_reader kmq__strip_reader;

/* Starts a pass over `img` (kmq_image_rewind, then strips of
 * kmq_image_strip_rows rows). With a reader thread, the rewind and the end
 * of the pass happen on that thread (libvips regions belong to the thread
 * that made them) and a failed rewind comes back from the first
 * kmq__strip_reader_next. `img` is borrowed and must not be used by the
 * caller until kmq__strip_reader_free. Returns KMQ_OK, KMQ_E_NOMEM or the
 * rewind's error. If the thread cannot be started, reads run on the
 * caller's thread. */
KMQ_PRIVATE KMQ_MUST_CHECK kmq_status kmq__strip_reader_start(kmq_image *img, bool background,
                                                              kmq__strip_reader **out,
                                                              kmq_err *err);

/* The next strip: *data (interleaved RGB, owned by the reader, valid until
 * the next call) and *rows (0 at the end of the pass). Returns KMQ_OK or
 * the decode error of that strip. */
KMQ_PRIVATE KMQ_MUST_CHECK kmq_status kmq__strip_reader_next(kmq__strip_reader *r,
                                                             const uint8_t **data, uint32_t *rows,
                                                             kmq_err *err);

/* Stops the thread (it finishes the strip it is decoding) and frees the
 * reader. NULL is a no-op. */
KMQ_PRIVATE void kmq__strip_reader_free(kmq__strip_reader *r);

#endif
