/* error.c — kmq_err: first error wins, stable code names (layer L0).
 *
 * Plain C, no kmq dependencies. Not thread-safe per object: each kmq_err
 * belongs to one thread (one image pipeline).
 */
#include "kmq/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kmq_err_clear(kmq_err *err)
{
    err->code = KMQ_OK;
    err->where[0] = '\0';
    err->msg[0] = '\0';
}

kmq_status kmq_err_set(kmq_err *err, kmq_status code, const char *fmt, ...)
{
    if (err->code != KMQ_OK)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* Messages are one line: libraries underneath sometimes end theirs with
     * newlines, and a path may carry one. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t len = strlen(err->msg);
    while (len > 0 && err->msg[len - 1] == ' ')
        err->msg[--len] = '\0';
    return code;
}

void kmq_err_where(kmq_err *err, const char *fmt, ...)
{
    if (err->where[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->where, sizeof err->where, fmt, ap);
    va_end(ap);
}

const char *kmq_status_name(kmq_status code)
{
    switch (code) {
    case KMQ_OK:
        return "ok";
    case KMQ_E_NOMEM:
        return "out_of_memory";
    case KMQ_E_ARG:
        return "bad_argument";
    case KMQ_E_CONFIG:
        return "config";
    case KMQ_E_NOT_FOUND:
        return "not_found";
    case KMQ_E_UNREADABLE:
        return "unreadable";
    case KMQ_E_DECODE:
        return "decode_failed";
    case KMQ_E_TOO_LARGE:
        return "too_large";
    case KMQ_E_UNSUPPORTED:
        return "unsupported";
    case KMQ_E_WRITE:
        return "write_failed";
    case KMQ_E_INTERRUPTED:
        return "interrupted";
    case KMQ_E_INTERNAL:
        return "internal";
    case KMQ_E_CHANGED:
        return "file_changed";
    }
    return "internal";
}
