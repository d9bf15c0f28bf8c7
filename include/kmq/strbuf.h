/* strbuf.h — a growing text buffer with a sticky failure flag (layer L0).
 *
 * Used to build documents (JSON-adjacent CSV, SVG, HTML) piece by piece:
 * appends after a failed one do nothing, so a writer appends freely and
 * checks `failed` once at the end (then reports KMQ_E_NOMEM). Plain data:
 * zero-initialise; kmq_strbuf_clear frees. Not thread-safe per buffer.
 *
 * Growth: the first append allocates 4 KiB, and the capacity doubles
 * whenever an append would leave no spare byte, so cap > len once anything
 * was appended. No cap is fixed at creation; the capacity stops at
 * SIZE_MAX / 2 + 1 bytes, and an append that would need more fails
 * without allocating.
 *
 * After a failed append (no memory, a size beyond the limit, or a format
 * error) `failed` stays true until kmq_strbuf_clear, and data, len and cap
 * are as the earlier appends left them: the failing append adds nothing,
 * not even part of its bytes, and later appends add nothing either.
 */
#ifndef KMQ_STRBUF_H
#define KMQ_STRBUF_H

#include "kmq/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct kmq_strbuf {
    char *data; /* not NUL-terminated; len bytes */
    size_t len, cap;
    bool failed; /* an allocation failed, or a size would overflow */
} kmq_strbuf;

/* Appends n bytes. */
void kmq_strbuf_put(kmq_strbuf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. */
void kmq_strbuf_str(kmq_strbuf *b, const char *s);

/* Appends printf-formatted text. Only for integers and strings: %f and
 * friends follow LC_NUMERIC, and documents must not. */
void kmq_strbuf_fmt(kmq_strbuf *b, const char *fmt, ...) KMQ_PRINTF(2, 3);
void kmq_strbuf_vfmt(kmq_strbuf *b, const char *fmt, va_list ap) KMQ_PRINTF(2, 0);

/* Frees the data and zeroes the buffer. */
void kmq_strbuf_clear(kmq_strbuf *b);

#endif
