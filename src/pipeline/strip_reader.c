/* strip_reader.c — one pass over an image, decoded a strip ahead on a
 * background thread (layer L3, private to the runner).
 *
 * Two buffers: the reader thread fills one while the runner works on the
 * other. A buffer is handed back when the runner asks for the next strip,
 * so the strip it returns stays valid until then. The reader stops after
 * the last strip or the first error, which it passes on with the strip
 * where it happened; free() asks it to stop and joins it. libvips errors
 * are turned into a kmq_err on the reader thread itself (image_vips.c does
 * that inside kmq_image_read_strip), as its error log requires.
 *
 * Threads: one POSIX thread per reader, doing only libvips decoding;
 * synchronisation is one mutex and one condition variable.
 */
#include "strip_reader.h"

#include <pthread.h>
#include <string.h>

struct kmq__strip_reader {
    kmq_image *img;
    uint8_t *buf[2];
    uint32_t rows[2];
    kmq_status status[2];
    kmq_err err[2];
    bool full[2];    /* filled by the reader, not yet handed back */
    unsigned taken;  /* strips handed to the runner so far */
    bool background; /* a reader thread runs */
    bool stop;       /* free() asked the thread to end */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Reads the strip for `slot` (either thread). */
static bool fill(kmq__strip_reader *r, int slot)
{
    kmq_err e = {0};
    uint32_t rows = 0;
    kmq_status st = kmq_image_read_strip(r->img, r->buf[slot], &rows, &e);
    r->rows[slot] = rows;
    r->status[slot] = st;
    r->err[slot] = e;
    return st == KMQ_OK && rows > 0;
}

static void *reader_main(void *arg)
{
    kmq__strip_reader *r = arg;
    /* The pass begins and ends on this thread: libvips regions belong to
     * the thread that made them. A failed rewind reaches the runner as the
     * first strip's error. */
    kmq_status st = kmq_image_rewind(r->img, &r->err[0]);
    if (st != KMQ_OK) {
        pthread_mutex_lock(&r->mu);
        r->status[0] = st;
        r->full[0] = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    for (unsigned i = 0;; i++) {
        int slot = (int)(i & 1u);
        pthread_mutex_lock(&r->mu);
        while (r->full[slot] && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break; /* the runner gave up on this pass */
        bool more = fill(r, slot);
        pthread_mutex_lock(&r->mu);
        r->full[slot] = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (!more)
            break;
    }
    kmq_image_end_pass(r->img);
    return NULL;
}

kmq_status kmq__strip_reader_start(kmq_image *img, bool background, kmq__strip_reader **out,
                                   kmq_err *err)
{
    const kmq_image_info *info = kmq_image_get_info(img);
    size_t strip_bytes = (size_t)kmq_image_strip_rows(img) * info->width * (size_t)info->channels;
    kmq__strip_reader *r = kmq__calloc(1, sizeof *r);
    kmq_status st = KMQ_OK;
    if (!r || !(r->buf[0] = kmq__alloc(strip_bytes)) || !(r->buf[1] = kmq__alloc(strip_bytes))) {
        st =
            kmq_err_set(err, KMQ_E_NOMEM, "out of memory for two strips of %zu bytes", strip_bytes);
        goto fail;
    }
    r->img = img;
    if (background && pthread_mutex_init(&r->mu, NULL) == 0) {
        if (pthread_cond_init(&r->cv, NULL) == 0) {
            r->background = pthread_create(&r->thread, NULL, reader_main, r) == 0;
            if (!r->background)
                pthread_cond_destroy(&r->cv);
        }
        if (!r->background)
            pthread_mutex_destroy(&r->mu);
    }
    if (!r->background) {
        st = kmq_image_rewind(img, err);
        if (st != KMQ_OK)
            goto fail;
    }
    *out = r;
    return KMQ_OK;
fail:
    if (r) {
        kmq__free(r->buf[0]);
        kmq__free(r->buf[1]);
    }
    kmq__free(r);
    return st;
}

kmq_status kmq__strip_reader_next(kmq__strip_reader *r, const uint8_t **data, uint32_t *rows,
                                  kmq_err *err)
{
    int slot = (int)(r->taken & 1u);
    if (r->background) {
        pthread_mutex_lock(&r->mu);
        if (r->taken > 0) { /* the runner is done with the previous strip */
            r->full[1 - slot] = false;
            pthread_cond_broadcast(&r->cv);
        }
        while (!r->full[slot])
            pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
    } else {
        fill(r, slot);
    }
    r->taken++;
    if (r->status[slot] != KMQ_OK)
        return kmq_err_set(err, r->status[slot], "%s", r->err[slot].msg);
    *data = r->buf[slot];
    *rows = r->rows[slot];
    return KMQ_OK;
}

void kmq__strip_reader_free(kmq__strip_reader *r)
{
    if (!r)
        return;
    if (r->background) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
    }
    kmq__free(r->buf[0]);
    kmq__free(r->buf[1]);
    kmq__free(r);
}
