/* internal.h — private to libkmq: allocation wrappers, checked size maths.
 * Nothing here is installed or visible outside the library.
 */
#ifndef KMQ_INTERNAL_H
#define KMQ_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KMQ_PRIVATE     __attribute__((visibility("hidden")))
#define KMQ_LIKELY(x)   __builtin_expect(!!(x), 1)
#define KMQ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define KMQ_PRIVATE
#define KMQ_LIKELY(x)   (x)
#define KMQ_UNLIKELY(x) (x)
#endif

/* malloc/calloc/realloc wrappers. Every allocation of libkmq goes through
 * them (scripts/check-layers.sh rejects plain malloc in src/), so the test
 * hook below can make the Nth one fail. They return NULL on failure; the
 * caller sets KMQ_E_NOMEM. kmq__realloc leaves `p` untouched on failure. */
KMQ_PRIVATE void *kmq__alloc(size_t size);
KMQ_PRIVATE void *kmq__calloc(size_t n, size_t size);
KMQ_PRIVATE void *kmq__alloc_array(size_t n, size_t size); /* overflow-checked n*size */
KMQ_PRIVATE void *kmq__realloc(void *p, size_t n, size_t size);
KMQ_PRIVATE void kmq__free(void *p);
KMQ_PRIVATE char *kmq__strdup(const char *s);
/* printf into a new string; NULL on failure. */
KMQ_PRIVATE char *kmq__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a*b without overflow: returns 0 and sets *out, or -1 if it would overflow. */
static inline int kmq__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

/* A value on the 0..255 scale as the nearest 8-bit level (halves away from
 * zero), clamped; NaN gives 0. How every palette entry is rounded. */
static inline uint8_t kmq__round_u8(double v)
{
    if (!(v > 0.0))
        return 0;
    if (v >= 255.0)
        return 255;
    return (uint8_t)lround(v);
}

#endif
