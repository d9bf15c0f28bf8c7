/* error.h — kmq's single error type (layer L0).
 *
 * Every fallible function returns a kmq_status and takes `kmq_err *err` (never
 * NULL) as its last parameter. The first error set on an err is kept: the
 * innermost, most specific message survives, callers only propagate.
 */
#ifndef KMQ_ERROR_H
#define KMQ_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define KMQ_MUST_CHECK         __attribute__((warn_unused_result))
#define KMQ_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define KMQ_MUST_CHECK
#define KMQ_PRINTF(fmt, first)
#endif

typedef enum kmq_status {
    KMQ_OK = 0,
    KMQ_E_NOMEM,
    KMQ_E_ARG,
    KMQ_E_CONFIG,
    KMQ_E_NOT_FOUND,
    KMQ_E_UNREADABLE,
    KMQ_E_DECODE,
    KMQ_E_TOO_LARGE,
    KMQ_E_UNSUPPORTED,
    KMQ_E_WRITE,
    KMQ_E_INTERRUPTED,
    KMQ_E_INTERNAL,
    KMQ_E_CHANGED /* the input file changed while it was processed */
} kmq_status;

typedef struct kmq_err {
    kmq_status code;
    char where[512]; /* path, "path:line", or empty */
    char msg[512];   /* one sentence a person can act on, no newline */
} kmq_err;

/* Resets err to "no error". */
void kmq_err_clear(kmq_err *err);

/* Records code and a printf-formatted message unless err already holds an
 * error (first error wins). Returns code, so a failure is one line:
 * `return kmq_err_set(err, KMQ_E_ARG, "k = %zu is 0", k);`. */
kmq_status kmq_err_set(kmq_err *err, kmq_status code, const char *fmt, ...) KMQ_PRINTF(3, 4);

/* Fills err->where (a path, or "path:line") if it is still empty. The layer
 * that knows the context calls it once; others leave it alone. */
void kmq_err_where(kmq_err *err, const char *fmt, ...) KMQ_PRINTF(2, 3);

/* The stable JSON name of a code (DESIGN §5): "not_found", "decode_failed", ...
 * Returns a static string; never NULL. */
const char *kmq_status_name(kmq_status code);

#endif
