/* hist_rgba.c — RGBA distinct-colour histogram in a hash table (layer L1;
 * hist_rgba.h says why a hash table).
 *
 * Open addressing with linear probing over a power-of-two table, kept at
 * most half full: a key's home slot is a multiplicative hash of it (the top
 * bits of key * 2654435761), so keys that differ only in low bits spread.
 * While counting, each slot holds a key and its count (0: empty). finish
 * lists the keys, sorts them, and turns each count into the key's position
 * (+1), which is all a lookup needs afterwards.
 *
 * Uses internal.h only; no OpenMP, no I/O.
 */
#include "kmq/hist_rgba.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MIN_BITS 12

struct kmq_hist_rgba {
    unsigned bits; /* table of 2^bits slots */
    size_t used;   /* distinct keys */
    uint32_t *slot_key;
    uint64_t *slot_val; /* counting: the count (0 empty); finished: position + 1 */
    uint64_t pixels;
    bool finished;
    uint32_t *keys; /* finished: ascending */
    uint64_t *weights;
};

static inline size_t home(uint32_t key, unsigned bits)
{
    return (size_t)((key * 2654435761u) >> (32 - bits));
}

kmq_status kmq_hist_rgba_new(kmq_hist_rgba **out, kmq_err *err)
{
    kmq_hist_rgba *h = kmq__calloc(1, sizeof *h);
    if (h) {
        h->bits = MIN_BITS;
        h->slot_key = kmq__alloc_array((size_t)1 << MIN_BITS, sizeof *h->slot_key);
        h->slot_val = kmq__calloc((size_t)1 << MIN_BITS, sizeof *h->slot_val);
    }
    if (!h || !h->slot_key || !h->slot_val) {
        kmq_hist_rgba_free(h);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for an RGBA histogram");
    }
    *out = h;
    return KMQ_OK;
}

void kmq_hist_rgba_free(kmq_hist_rgba *h)
{
    if (!h)
        return;
    kmq__free(h->slot_key);
    kmq__free(h->slot_val);
    kmq__free(h->keys);
    kmq__free(h->weights);
    kmq__free(h);
}

/* Doubles the table, moving every key to its new home. */
static kmq_status grow(kmq_hist_rgba *h, kmq_err *err)
{
    unsigned bits = h->bits + 1;
    size_t size = (size_t)1 << bits, old = (size_t)1 << h->bits;
    uint32_t *keys = bits < 32 ? kmq__alloc_array(size, sizeof *keys) : NULL;
    uint64_t *vals = bits < 32 ? kmq__calloc(size, sizeof *vals) : NULL;
    if (!keys || !vals) {
        kmq__free(keys);
        kmq__free(vals);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu distinct RGBA colours",
                           h->used);
    }
    for (size_t i = 0; i < old; i++) {
        if (!h->slot_val[i])
            continue;
        size_t s = home(h->slot_key[i], bits);
        while (vals[s])
            s = (s + 1) & (size - 1);
        keys[s] = h->slot_key[i];
        vals[s] = h->slot_val[i];
    }
    kmq__free(h->slot_key);
    kmq__free(h->slot_val);
    h->slot_key = keys;
    h->slot_val = vals;
    h->bits = bits;
    return KMQ_OK;
}

kmq_status kmq_hist_rgba_add(kmq_hist_rgba *h, const uint8_t *rgba, size_t npix, kmq_err *err)
{
    if (h->finished)
        return kmq_err_set(err, KMQ_E_ARG, "the RGBA histogram is already finished");
    size_t mask = ((size_t)1 << h->bits) - 1;
    for (size_t i = 0; i < npix; i++) {
        uint32_t key = kmq_rgba_key(rgba + 4 * i);
        size_t s = home(key, h->bits);
        while (h->slot_val[s] && h->slot_key[s] != key)
            s = (s + 1) & mask;
        if (!h->slot_val[s]) {
            if (2 * (h->used + 1) > mask + 1) {
                kmq_status st = grow(h, err);
                if (st != KMQ_OK)
                    return st;
                mask = ((size_t)1 << h->bits) - 1;
                s = home(key, h->bits);
                while (h->slot_val[s])
                    s = (s + 1) & mask;
            }
            h->slot_key[s] = key;
            h->used++;
        }
        h->slot_val[s]++;
    }
    h->pixels += npix;
    return KMQ_OK;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The slot of a key present in the table, or SIZE_MAX. */
static size_t find(const kmq_hist_rgba *h, uint32_t key)
{
    size_t mask = ((size_t)1 << h->bits) - 1;
    for (size_t s = home(key, h->bits); h->slot_val[s]; s = (s + 1) & mask)
        if (h->slot_key[s] == key)
            return s;
    return SIZE_MAX;
}

kmq_status kmq_hist_rgba_finish(kmq_hist_rgba *h, kmq_err *err)
{
    if (h->finished)
        return KMQ_OK;
    size_t n = h->used, size = (size_t)1 << h->bits;
    h->keys = kmq__alloc_array(n ? n : 1, sizeof *h->keys);
    h->weights = kmq__alloc_array(n ? n : 1, sizeof *h->weights);
    if (!h->keys || !h->weights)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory listing %zu RGBA colours", n);
    for (size_t s = 0, j = 0; s < size; s++)
        if (h->slot_val[s])
            h->keys[j++] = h->slot_key[s];
    qsort(h->keys, n, sizeof *h->keys, compare_u32);
    for (size_t j = 0; j < n; j++) {
        size_t s = find(h, h->keys[j]);
        h->weights[j] = h->slot_val[s];
        h->slot_val[s] = j + 1;
    }
    h->finished = true;
    return KMQ_OK;
}

size_t kmq_hist_rgba_size(const kmq_hist_rgba *h)
{
    return h->finished ? h->used : 0;
}

const uint32_t *kmq_hist_rgba_keys(const kmq_hist_rgba *h)
{
    return h->finished ? h->keys : NULL;
}

const uint64_t *kmq_hist_rgba_weights(const kmq_hist_rgba *h)
{
    return h->finished ? h->weights : NULL;
}

uint64_t kmq_hist_rgba_pixels(const kmq_hist_rgba *h)
{
    return h->pixels;
}

bool kmq_hist_rgba_index(const kmq_hist_rgba *h, const uint8_t *rgba, size_t npix, uint32_t *out)
{
    if (!h->finished)
        return false;
    bool all = true;
    for (size_t i = 0; i < npix; i++) {
        size_t s = find(h, kmq_rgba_key(rgba + 4 * i));
        out[i] = s == SIZE_MAX ? UINT32_MAX : (uint32_t)(h->slot_val[s] - 1);
        all &= s != SIZE_MAX;
    }
    return all;
}
