/* alloc.c — allocation wrappers and the failure-injection hook (layer L0).
 *
 * Plain C; includes nothing from kmq but internal.h. The hook counter is
 * atomic so allocation from several threads stays well defined, although
 * libkmq allocates only outside parallel regions (docs/design.md).
 */
#include "internal.h"
#include "kmq/alloc_hook.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_at = -1; /* allocation index that fails; -1: none */
static atomic_long alloc_seen = 0;

void kmq_alloc_fail_after(long n)
{
    atomic_store(&alloc_seen, 0);
    atomic_store(&fail_at, n);
}

long kmq_alloc_count(void)
{
    return atomic_load(&alloc_seen);
}

static int should_fail(void)
{
    long index = atomic_fetch_add(&alloc_seen, 1);
    return atomic_load(&fail_at) >= 0 && index == atomic_load(&fail_at);
}

void *kmq__alloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *kmq__calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *kmq__alloc_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return kmq__alloc(n * size);
}

void *kmq__realloc(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    if (should_fail())
        return NULL;
    size_t bytes = n * size;
    return realloc(p, bytes ? bytes : 1);
}

void kmq__free(void *p)
{
    free(p);
}

char *kmq__strdup(const char *s)
{
    size_t len = strlen(s);
    char *copy = kmq__alloc(len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

char *kmq__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *out = kmq__alloc((size_t)len + 1);
    if (!out)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}
