/* strbuf.c — growing text buffer with a sticky failure flag (layer L0).
 *
 * Capacity doubles (from 4 KiB), so n appends cost O(total) copies. Plain
 * C; allocation through kmq__realloc; no parallel region.
 */
#include "kmq/strbuf.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Makes room for n more bytes (+1 for vsnprintf's NUL). */
static bool reserve(kmq_strbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n < b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = kmq__realloc(b->data, cap, 1);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void kmq_strbuf_put(kmq_strbuf *b, const void *p, size_t n)
{
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void kmq_strbuf_str(kmq_strbuf *b, const char *s)
{
    kmq_strbuf_put(b, s, strlen(s));
}

void kmq_strbuf_vfmt(kmq_strbuf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0)
        b->failed = true;
    else if (reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void kmq_strbuf_fmt(kmq_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kmq_strbuf_vfmt(b, fmt, ap);
    va_end(ap);
}

void kmq_strbuf_clear(kmq_strbuf *b)
{
    kmq__free(b->data);
    memset(b, 0, sizeof *b);
}
