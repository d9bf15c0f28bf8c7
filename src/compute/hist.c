/* hist.c — distinct-colour histogram (layer L1).
 *
 * Order. Colours are kept and listed in Morton (Z-curve) order: the code of
 * (r, g, b) interleaves their bits, r7 g7 b7 r6 ... r0 g0 b0, so colours
 * with consecutive codes lie in small boxes of the RGB cube. k-means reads
 * the points in this order and prunes whole runs of nearby points at once
 * (kmeans_init.c); the counting loop also gains locality, since neighbouring
 * pixels have nearby colours and so nearby table entries.
 *
 * Small images: up to LIST_LIMIT pixels the histogram starts without the
 * table. It only appends each pixel's code to a list; finish sorts the
 * list (radix), counts runs, and answers lookups by binary search inside
 * one of 2^16 buckets of the sorted codes (by their top 16 bits; a bucket
 * holds at most 256 codes). Touching the 64 MiB table costs a fixed ~30 ms
 * (it is faulted in and zeroed 2 MiB at a time, and a photo's colours
 * reach nearly all of it), more than sorting a few million codes. The
 * first pixel beyond the limit moves the list into the table, and from
 * then on the table counts; a caller that knows the image is larger says
 * so (kmq_hist_expect) and the table counts from the start. Either way the
 * result is the same keys, weights and indexes (the tests build all three).
 *
 * Counting: a dense table of 2^24 uint32 counts indexed by Morton code,
 * allocated zeroed and advised to use transparent huge pages where the
 * kernel offers them (about 30 faults instead of 16k: with 4 KiB pages a
 * photo with 1e5 colours faults in most of the 64 MiB one page at a time,
 * each a copy-on-write of the zero page with a TLB shootdown, which cost more
 * than decoding the image). The list of codes is kept in the order they
 * first occurred (appended when a count goes 0 -> 1). A count never wraps to
 * 0: when a colour already has UINT32_MAX pixels, UINT32_MAX of them move to
 * a tiny side list of (code, extra) and the table restarts at 1. The exact
 * count is table + extra; the side list is touched only on such a carry
 * (one per 4.29e9 pixels of one colour), so the per-pixel loop stays one
 * load, one compare and one store.
 *
 * Finishing: the codes are sorted (a two-pass 12-bit radix sort of the list
 * when it is short, an in-order scan of the table when it is long; both give
 * ascending codes), turned back into keys, the counts move to a uint64
 * array, and the entries of the present colours are rewritten in place as
 * code -> index + 1; absent colours keep their 0. That is what the map pass
 * looks up.
 *
 * Uses internal.h only; no OpenMP, no I/O. One histogram belongs to one
 * thread while counting; after finish its read-only getters are thread-safe.
 */
#include "kmq/hist.h"

#include "hist_internal.h"
#include "internal.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#define TABLE_SIZE KMQ_HIST_MAX_COLORS
#define KEY_MASK   ((uint32_t)0xffffff)
/* Pixels counted per reservation of key-list room: the loop below may then
 * append up to this many new keys without allocating. */
#define ADD_BLOCK ((size_t)1 << 16)
/* Up to this many distinct colours the key list is radix-sorted (O(n) on a
 * short list); above it one scan of the 2^24-entry table is cheaper. */
#define SORT_LIMIT ((size_t)1 << 20)
/* Pixels counted in list mode before the table takes over (see above):
 * 2^21, a 1080p frame; the list is 4 bytes a pixel. */
#define LIST_LIMIT ((size_t)1 << 21)
/* Buckets of the sorted codes in list mode: by code >> BUCKET_SHIFT. */
#define BUCKET_SHIFT 8
#define BUCKETS      ((size_t)1 << (24 - BUCKET_SHIFT))
#define RADIX_BITS   12
#define RADIX_SIZE   ((size_t)1 << RADIX_BITS)

typedef struct carry {
    uint32_t code;
    uint64_t extra; /* pixels of `code` beyond what the table holds */
} carry;

/* Bits 0..7 of x moved to bits 0, 3, ..., 21. */
static inline uint32_t spread3(uint32_t x)
{
    x &= 0xff;
    x = (x | x << 8) & 0x0000f00fu;
    x = (x | x << 4) & 0x000c30c3u;
    x = (x | x << 2) & 0x00249249u;
    return x;
}

/* The inverse of spread3: bits 0, 3, ..., 21 of x back to bits 0..7. */
static inline uint32_t gather3(uint32_t x)
{
    x &= 0x00249249u;
    x = (x | x >> 2) & 0x000c30c3u;
    x = (x | x >> 4) & 0x0000f00fu;
    x = (x | x >> 8) & 0x000000ffu;
    return x;
}

static inline uint32_t code_of_rgb(uint32_t r, uint32_t g, uint32_t b)
{
    return spread3(r) << 2 | spread3(g) << 1 | spread3(b);
}

static inline uint32_t code_of_key(uint32_t key)
{
    return code_of_rgb(key >> 16, (key >> 8) & 0xff, key & 0xff);
}

static inline uint32_t key_of_code(uint32_t code)
{
    return gather3(code >> 2) << 16 | gather3(code >> 1) << 8 | gather3(code);
}

struct kmq_hist {
    uint32_t *table; /* by Morton code; counting: count; finished: index + 1. NULL in list mode */
    uint32_t *list;  /* list mode, counting: the code of every pixel; finished: the sorted
                        distinct codes, parallel to keys */
    size_t list_len;
    size_t list_cap;
    size_t list_limit; /* pixels list mode takes before moving to the table */
    uint32_t *bucket;  /* list mode, finished: BUCKETS + 1 starts into list by code >> 8 */
    uint32_t *keys;    /* counting: codes by first occurrence; finished: keys in code order */
    size_t nkeys;
    size_t keys_cap;
    uint64_t *weights; /* finished: count per key, parallel to keys */
    carry *carries;
    size_t ncarries;
    size_t carries_cap;
    uint64_t pixels;
    bool finished;
    bool broken; /* an allocation failed mid-count: the counts are incomplete */
};

kmq_status kmq_hist_new(kmq_hist **out, kmq_err *err)
{
    kmq_hist *h = kmq__calloc(1, sizeof *h);
    if (!h)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a histogram");
    h->list_limit = LIST_LIMIT;
    *out = h;
    return KMQ_OK;
}

void kmq__hist_set_list_limit(kmq_hist *h, size_t pixels)
{
    h->list_limit = pixels;
}

/* The zeroed 2^24-entry table, on huge pages where the kernel offers them. */
static kmq_status alloc_table(kmq_hist *h, kmq_err *err)
{
    h->table = kmq__calloc(TABLE_SIZE, sizeof *h->table);
    if (!h->table)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the 64 MiB colour table");
#ifdef MADV_HUGEPAGE
    {
        /* Only the 2 MiB-aligned part can be huge pages; failure is harmless. */
        const uintptr_t huge = (uintptr_t)2 << 20;
        uintptr_t lo = ((uintptr_t)h->table + huge - 1) & ~(huge - 1);
        uintptr_t hi = (uintptr_t)(h->table + TABLE_SIZE) & ~(huge - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return KMQ_OK;
}

void kmq_hist_free(kmq_hist *h)
{
    if (!h)
        return;
    kmq__free(h->table);
    kmq__free(h->list);
    kmq__free(h->bucket);
    kmq__free(h->keys);
    kmq__free(h->weights);
    kmq__free(h->carries);
    kmq__free(h);
}

static kmq_status check_counting(const kmq_hist *h, kmq_err *err)
{
    if (h->finished)
        return kmq_err_set(err, KMQ_E_ARG, "histogram is already finished; no more pixels");
    if (h->broken)
        return kmq_err_set(err, KMQ_E_ARG,
                           "histogram is incomplete after a failed allocation; free it");
    return KMQ_OK;
}

/* Makes room for `more` further keys (capped at the 2^24 colours there are),
 * growing geometrically so streaming row by row stays amortised O(1). */
static kmq_status reserve_keys(kmq_hist *h, size_t more, kmq_err *err)
{
    size_t need = h->nkeys + (more < TABLE_SIZE ? more : TABLE_SIZE);
    if (need > TABLE_SIZE)
        need = TABLE_SIZE;
    if (need <= h->keys_cap)
        return KMQ_OK;
    size_t cap = h->keys_cap ? h->keys_cap * 2 : ADD_BLOCK;
    if (cap < need)
        cap = need;
    if (cap > TABLE_SIZE)
        cap = TABLE_SIZE;
    uint32_t *keys = kmq__realloc(h->keys, cap, sizeof *keys);
    if (!keys)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a list of %zu colours", cap);
    h->keys = keys;
    h->keys_cap = cap;
    return KMQ_OK;
}

/* Records `extra` more pixels of colour `code` than the table holds. */
static kmq_status add_carry(kmq_hist *h, uint32_t code, uint64_t extra, kmq_err *err)
{
    for (size_t i = 0; i < h->ncarries; i++) {
        if (h->carries[i].code == code) {
            h->carries[i].extra += extra;
            return KMQ_OK;
        }
    }
    if (h->ncarries == h->carries_cap) {
        size_t cap = h->carries_cap ? h->carries_cap * 2 : 4;
        carry *c = kmq__realloc(h->carries, cap, sizeof *c);
        if (!c)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a histogram carry");
        h->carries = c;
        h->carries_cap = cap;
    }
    h->carries[h->ncarries].code = code;
    h->carries[h->ncarries].extra = extra;
    h->ncarries++;
    return KMQ_OK;
}

/* Leaves list mode: the table counts the listed pixels, in list order (so
 * the key list is in first-occurrence order, as if the table had counted
 * from the start). On failure the histogram is unchanged. The list holds
 * fewer than 2^32 pixels, so no count can reach the carry. */
static kmq_status move_list_to_table(kmq_hist *h, kmq_err *err)
{
    kmq_status st = alloc_table(h, err);
    if (st == KMQ_OK)
        st = reserve_keys(h, h->list_len, err);
    if (st != KMQ_OK) {
        kmq__free(h->table);
        h->table = NULL;
        return st;
    }
    uint32_t *table = h->table, *keys = h->keys;
    size_t nkeys = h->nkeys;
    for (size_t i = 0; i < h->list_len; i++) {
        uint32_t code = h->list[i];
        if (table[code]++ == 0)
            keys[nkeys++] = code;
    }
    h->nkeys = nkeys;
    kmq__free(h->list);
    h->list = NULL;
    h->list_len = h->list_cap = 0;
    return KMQ_OK;
}

/* List mode: appends the codes of npix pixels (the caller checked the
 * limit), growing the list geometrically up to the limit. */
static kmq_status list_add_rgb(kmq_hist *h, const uint8_t *rgb, size_t npix, kmq_err *err)
{
    size_t need = h->list_len + npix;
    if (need > h->list_cap) {
        size_t cap = h->list_cap ? 2 * h->list_cap : ADD_BLOCK;
        if (cap < need)
            cap = need;
        if (cap > h->list_limit) /* need <= list_limit: the caller checked */
            cap = h->list_limit;
        uint32_t *list = kmq__realloc(h->list, cap, sizeof *list);
        if (!list)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a list of %zu pixels", cap);
        h->list = list;
        h->list_cap = cap;
    }
    uint32_t *out = h->list + h->list_len;
    for (size_t i = 0; i < npix; i++)
        out[i] = code_of_rgb(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
    h->list_len = need;
    h->pixels += npix;
    return KMQ_OK;
}

kmq_status kmq_hist_expect(kmq_hist *h, uint64_t pixels, kmq_err *err)
{
    if (h->table || h->finished || h->pixels > 0 || pixels <= h->list_limit)
        return KMQ_OK;
    return move_list_to_table(h, err);
}

kmq_status kmq_hist_add_rgb(kmq_hist *h, const uint8_t *rgb, size_t npix, kmq_err *err)
{
    kmq_status st = check_counting(h, err);
    if (st != KMQ_OK || npix == 0)
        return st;
    if (!h->table) {
        if (npix <= h->list_limit - h->list_len)
            return list_add_rgb(h, rgb, npix, err);
        st = move_list_to_table(h, err);
        if (st != KMQ_OK)
            return st;
    }
    uint32_t *table = h->table;
    for (size_t start = 0; start < npix; start += ADD_BLOCK) {
        size_t end = npix - start < ADD_BLOCK ? npix : start + ADD_BLOCK;
        /* A failed reservation leaves the histogram as it was (usable). */
        st = reserve_keys(h, end - start, err);
        if (st != KMQ_OK)
            return st;
        uint32_t *keys = h->keys;
        size_t nkeys = h->nkeys;
        for (size_t i = start; i < end; i++) {
            const uint8_t *px = rgb + 3 * i;
            uint32_t code = code_of_rgb(px[0], px[1], px[2]);
            uint32_t c = table[code];
            /* One unsigned compare sends both 0 (new colour) and
             * UINT32_MAX (carry) to the rare branch. */
            if (KMQ_LIKELY(c - 1u < UINT32_MAX - 1u)) {
                table[code] = c + 1;
            } else if (c == 0) {
                keys[nkeys++] = code;
                table[code] = 1;
            } else {
                st = add_carry(h, code, UINT32_MAX, err);
                if (st != KMQ_OK) {
                    h->nkeys = nkeys;
                    h->broken = true;
                    return st;
                }
                table[code] = 1;
            }
        }
        h->nkeys = nkeys;
        h->pixels += end - start;
    }
    return KMQ_OK;
}

kmq_status kmq_hist_add_color(kmq_hist *h, uint32_t key, uint64_t count, kmq_err *err)
{
    kmq_status st = check_counting(h, err);
    if (st != KMQ_OK)
        return st;
    if (key > KEY_MASK)
        return kmq_err_set(err, KMQ_E_ARG, "colour key 0x%" PRIx32 " has more than 24 bits", key);
    if (count == 0)
        return KMQ_OK;
    if (count > UINT64_MAX - h->pixels)
        return kmq_err_set(err, KMQ_E_ARG,
                           "adding %" PRIu64 " pixels would overflow the pixel count", count);
    if (!h->table) { /* pre-counted colours: the table counts them */
        st = move_list_to_table(h, err);
        if (st != KMQ_OK)
            return st;
    }
    const uint32_t code = code_of_key(key);
    uint32_t c = h->table[code];
    if (c == 0) {
        st = reserve_keys(h, 1, err);
        if (st != KMQ_OK)
            return st;
    }
    /* Keep the table part in [1, UINT32_MAX] and move whole multiples of
     * UINT32_MAX to the side list, as the per-pixel path does. */
    uint64_t total = (uint64_t)c + count;
    uint64_t extra = (total - 1) / UINT32_MAX * UINT32_MAX;
    if (extra > 0) {
        st = add_carry(h, code, extra, err);
        if (st != KMQ_OK)
            return st;
    }
    if (c == 0)
        h->keys[h->nkeys++] = code;
    h->table[code] = (uint32_t)(total - extra);
    h->pixels += count;
    return KMQ_OK;
}

/* Sorts keys[0..n) ascending: two stable counting passes over 12-bit digits
 * (codes have 24 bits), keys -> tmp -> keys. */
static void radix_sort_keys(uint32_t *keys, uint32_t *tmp, size_t n)
{
    static const int shifts[2] = {0, RADIX_BITS};
    uint32_t *src = keys;
    uint32_t *dst = tmp;
    for (int pass = 0; pass < 2; pass++) {
        size_t start[RADIX_SIZE] = {0};
        int shift = shifts[pass];
        for (size_t i = 0; i < n; i++)
            start[(src[i] >> shift) & (RADIX_SIZE - 1)]++;
        size_t sum = 0;
        for (size_t d = 0; d < RADIX_SIZE; d++) {
            size_t count = start[d];
            start[d] = sum;
            sum += count;
        }
        for (size_t i = 0; i < n; i++)
            dst[start[(src[i] >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
}

/* List mode: sorts the pixel codes, counts their runs into keys and
 * weights, keeps the distinct codes in the list for lookups and indexes
 * them by bucket. On failure the histogram is unchanged but for the order
 * of its list, which counts the same. */
static kmq_status finish_list(kmq_hist *h, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    const size_t n = h->list_len;
    uint32_t *list = h->list;
    uint32_t *tmp = kmq__alloc_array(n ? n : 1, sizeof *tmp);
    uint32_t *bucket = kmq__calloc(BUCKETS + 1, sizeof *bucket);
    uint32_t *keys = NULL;
    uint64_t *weights = NULL;
    if (!tmp || !bucket) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory sorting %zu pixels", n);
        goto done;
    }
    radix_sort_keys(list, tmp, n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += i == 0 || list[i] != list[i - 1];
    keys = kmq__alloc_array(m ? m : 1, sizeof *keys);
    weights = kmq__alloc_array(m ? m : 1, sizeof *weights);
    if (!keys || !weights) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu colour counts", m);
        goto done;
    }
    /* Runs compacted to the front of the list, which is read ahead of it. */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || list[i] != list[i - 1]) {
            list[j] = list[i];
            weights[j++] = 1;
        } else {
            weights[j - 1]++;
        }
    }
    for (size_t i = 0; i < m; i++) {
        keys[i] = key_of_code(list[i]);
        bucket[(list[i] >> BUCKET_SHIFT) + 1]++;
    }
    for (size_t b = 0; b < BUCKETS; b++)
        bucket[b + 1] += bucket[b];
    uint32_t *shrunk = kmq__realloc(list, m ? m : 1, sizeof *list);
    h->list = shrunk ? shrunk : list; /* a failed shrink keeps the longer block */
    h->list_len = h->list_cap = m;
    kmq__free(h->keys);
    h->keys = keys;
    h->nkeys = h->keys_cap = m;
    h->weights = weights;
    h->bucket = bucket;
    keys = NULL;
    weights = NULL;
    bucket = NULL;
    h->finished = true;
done:
    kmq__free(tmp);
    kmq__free(bucket);
    kmq__free(keys);
    kmq__free(weights);
    return st;
}

/* List mode, finished: the index of Morton code `code`, or UINT32_MAX.
 * Branch-free halving (the last code <= `code` in its bucket): a photo's
 * pixels hit the buckets in no predictable order, and a branchy binary
 * search mispredicted on most of its steps. */
static inline uint32_t list_index(const kmq_hist *h, uint32_t code)
{
    const uint32_t *codes = h->list;
    uint32_t base = h->bucket[code >> BUCKET_SHIFT];
    uint32_t len = h->bucket[(code >> BUCKET_SHIFT) + 1] - base;
    if (len == 0)
        return UINT32_MAX;
    while (len > 1) {
        const uint32_t half = len / 2;
        base = codes[base + half] <= code ? base + half : base;
        len -= half;
    }
    return codes[base] == code ? base : UINT32_MAX;
}

kmq_status kmq_hist_finish(kmq_hist *h, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    uint64_t *weights = NULL;
    uint32_t *tmp = NULL;
    if (h->finished)
        return KMQ_OK;
    if (h->broken)
        return kmq_err_set(err, KMQ_E_ARG,
                           "histogram is incomplete after a failed allocation; free it");
    if (!h->table)
        return finish_list(h, err);
    size_t n = h->nkeys;
    uint32_t *table = h->table;
    uint32_t *keys = h->keys;
    weights = kmq__alloc_array(n, sizeof *weights);
    if (!weights) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu colour counts", n);
        goto done;
    }
    if (n <= SORT_LIMIT) {
        tmp = kmq__alloc_array(n, sizeof *tmp);
        if (!tmp) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory sorting %zu colours", n);
            goto done;
        }
        radix_sort_keys(keys, tmp, n);
        for (size_t i = 0; i < n; i++) {
            uint32_t code = keys[i];
            weights[i] = table[code];
            table[code] = (uint32_t)i + 1;
            keys[i] = key_of_code(code);
        }
    } else {
        /* Many colours: walk the table in code order; the key list is
         * overwritten front to back, never ahead of what is read. */
        size_t m = 0;
        for (uint32_t code = 0; code < TABLE_SIZE; code++) {
            uint32_t c = table[code];
            if (c != 0) {
                keys[m] = key_of_code(code);
                weights[m] = c;
                table[code] = (uint32_t)++m;
            }
        }
    }
    for (size_t i = 0; i < h->ncarries; i++)
        weights[table[h->carries[i].code] - 1] += h->carries[i].extra;
    kmq__free(h->carries);
    h->carries = NULL;
    h->ncarries = h->carries_cap = 0;
    h->weights = weights;
    weights = NULL;
    h->finished = true;
done:
    kmq__free(weights);
    kmq__free(tmp);
    return st;
}

size_t kmq_hist_size(const kmq_hist *h)
{
    return h->nkeys;
}

const uint32_t *kmq_hist_keys(const kmq_hist *h)
{
    return h->finished ? h->keys : NULL;
}

const uint64_t *kmq_hist_weights(const kmq_hist *h)
{
    return h->finished ? h->weights : NULL;
}

uint64_t kmq_hist_pixels(const kmq_hist *h)
{
    return h->pixels;
}

uint32_t kmq_hist_index(const kmq_hist *h, uint32_t key)
{
    if (!h->finished || key > KEY_MASK)
        return UINT32_MAX;
    if (!h->table)
        return list_index(h, code_of_key(key));
    return h->table[code_of_key(key)] - 1u; /* absent: 0 - 1 wraps to UINT32_MAX */
}

bool kmq_hist_index_rgb(const kmq_hist *h, const uint8_t *rgb, size_t npix, uint32_t *out)
{
    if (!h->finished)
        return false;
    const uint32_t *table = h->table;
    uint32_t missing = 0;
    if (!table) {
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *px = rgb + 3 * i;
            out[i] = list_index(h, code_of_rgb(px[0], px[1], px[2]));
            missing |= out[i] == UINT32_MAX;
        }
        return missing == 0;
    }
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *px = rgb + 3 * i;
        uint32_t slot = table[code_of_rgb(px[0], px[1], px[2])]; /* index + 1; 0: absent */
        missing |= slot == 0;
        out[i] = slot - 1u;
    }
    return missing == 0;
}
