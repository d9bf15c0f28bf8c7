/* test_hist.c — distinct-colour histogram: counts against a naive count,
 * key order, the index table, exact counts past UINT32_MAX, misuse, and an
 * allocation-failure sweep. The counting tests run each case three ways:
 * list mode throughout (the default for small inputs), the table from the
 * start, and a list that moves to the table midway. */
#include "hist_internal.h"
#include "kmq/alloc_hook.h"
#include "kmq/hist.h"
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static uint32_t key_of(const uint8_t *px)
{
    return (uint32_t)px[0] << 16 | (uint32_t)px[1] << 8 | px[2];
}

static void put_key(uint8_t *px, uint32_t key)
{
    px[0] = (uint8_t)(key >> 16);
    px[1] = (uint8_t)(key >> 8);
    px[2] = (uint8_t)key;
}

/* Morton code by the definition, bit by bit: r7 g7 b7 r6 ... g0 b0. */
static uint32_t morton_of(uint32_t key)
{
    uint32_t code = 0;
    for (int bit = 7; bit >= 0; bit--)
        for (int ch = 0; ch < 3; ch++)
            code = code << 1 | ((key >> (16 - 8 * ch + bit)) & 1u);
    return code;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Naive reference: sort every pixel's key by its Morton code, count runs.
 * Returns the number of distinct keys; keys/counts are malloc'd. */
static size_t naive_count(const uint8_t *rgb, size_t npix, uint32_t **keys_out,
                          uint64_t **counts_out)
{
    uint64_t *tagged = malloc(npix * sizeof *tagged);
    uint32_t *all = malloc(npix * sizeof *all);
    ck_assert(tagged && all);
    for (size_t i = 0; i < npix; i++) {
        uint32_t key = key_of(rgb + 3 * i);
        tagged[i] = (uint64_t)morton_of(key) << 32 | key;
    }
    qsort(tagged, npix, sizeof *tagged, cmp_u64);
    for (size_t i = 0; i < npix; i++)
        all[i] = (uint32_t)tagged[i];
    free(tagged);
    uint32_t *keys = malloc((npix + 1) * sizeof *keys);
    uint64_t *counts = malloc((npix + 1) * sizeof *counts);
    ck_assert(keys && counts);
    size_t n = 0;
    for (size_t i = 0; i < npix; i++) {
        if (n > 0 && keys[n - 1] == all[i]) {
            counts[n - 1]++;
        } else {
            keys[n] = all[i];
            counts[n++] = 1;
        }
    }
    free(all);
    *keys_out = keys;
    *counts_out = counts;
    return n;
}

/* The three ways of counting: list_limit for a histogram of npix pixels. */
enum { MODE_LIST, MODE_TABLE, MODE_SWITCH, MODES };
static size_t limit_for(int mode, size_t npix)
{
    return mode == MODE_LIST ? npix : mode == MODE_TABLE ? 0 : npix / 3;
}

/* Builds a finished histogram from rgb, fed in rows of varying width,
 * counted the way `mode` says. */
static kmq_hist *hist_rows_mode(const uint8_t *rgb, size_t npix, int mode)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *h = NULL;
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    kmq__hist_set_list_limit(h, limit_for(mode, npix));
    size_t done = 0, width = 1;
    while (done < npix) {
        size_t w = npix - done < width ? npix - done : width;
        ck_assert_int_eq(kmq_hist_add_rgb(h, rgb + 3 * done, w, &err), KMQ_OK);
        done += w;
        width = width * 3 + 1; /* 1, 4, 13, ... up to large blocks */
    }
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK);
    return h;
}

static void check_against_naive(const kmq_hist *h, const uint8_t *rgb, size_t npix)
{
    uint32_t *keys;
    uint64_t *counts;
    size_t n = naive_count(rgb, npix, &keys, &counts);
    ck_assert_uint_eq(kmq_hist_size(h), n);
    ck_assert_uint_eq(kmq_hist_pixels(h), npix);
    ck_assert_mem_eq(kmq_hist_keys(h), keys, n * sizeof *keys);
    ck_assert_mem_eq(kmq_hist_weights(h), counts, n * sizeof *counts);
    free(keys);
    free(counts);
}

/* A synthetic image: skewed colour frequencies, both extreme keys. */
static uint8_t *synthetic(size_t npix)
{
    uint8_t *rgb = malloc(3 * npix);
    ck_assert_ptr_nonnull(rgb);
    uint32_t state = 12345;
    for (size_t i = 0; i < npix; i++) {
        state = state * 1103515245u + 12345u;
        uint32_t v = (state >> 8) % 5000;
        uint32_t key = (v * v / 5000) * 3361u % 0x1000000u; /* small keys far more often */
        if (i % 977 == 0)
            key = 0xffffff;
        if (i % 1009 == 0)
            key = 0;
        put_key(rgb + 3 * i, key);
    }
    return rgb;
}

START_TEST(counts_match_naive)
{
    size_t npix = 200000;
    uint8_t *rgb = synthetic(npix);
    for (int mode = 0; mode < MODES; mode++) {
        kmq_hist *h = hist_rows_mode(rgb, npix, mode);
        check_against_naive(h, rgb, npix);
        const uint32_t *keys = kmq_hist_keys(h);
        for (size_t i = 1; i < kmq_hist_size(h); i++)
            ck_assert_uint_lt(morton_of(keys[i - 1]), morton_of(keys[i]));
        ck_assert_uint_eq(keys[0], 0);
        ck_assert_uint_eq(keys[kmq_hist_size(h) - 1], 0xffffff);
        kmq_hist_free(h);
    }
    /* The default for 200,000 pixels is the list; announcing more than
     * 2^21 pixels (a wrong figure here) makes it the table; both count the
     * same. */
    kmq_hist *h = tu_hist_of(rgb, npix); /* the histogram's own choice */
    check_against_naive(h, rgb, npix);
    kmq_hist_free(h);
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_expect(h, (uint64_t)1 << 22, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_add_rgb(h, rgb, npix, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_expect(h, 1, &err), KMQ_OK); /* after the first pixel: ignored */
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK);
    check_against_naive(h, rgb, npix);
    kmq_hist_free(h);
    free(rgb);
}
END_TEST

START_TEST(counts_photo)
{
    uint32_t w, hgt;
    uint8_t *rgb = tu_png_decode_rgb(tu_photo("coffee.png"), &w, &hgt);
    ck_assert_ptr_nonnull(rgb);
    size_t npix = (size_t)w * hgt;
    for (int mode = 0; mode < MODES; mode++) {
        kmq_hist *h = hist_rows_mode(rgb, npix, mode);
        check_against_naive(h, rgb, npix);
        kmq_hist_free(h);
    }
    free(rgb);
}
END_TEST

/* More than 2^20 distinct colours: in table mode finish scans the table
 * instead of sorting the key list; the result must look the same, and the
 * same as the list's. */
START_TEST(counts_many_colors)
{
    size_t ndistinct = ((size_t)1 << 20) + 4321;
    size_t npix = ndistinct + 1000;
    uint8_t *rgb = malloc(3 * npix);
    ck_assert_ptr_nonnull(rgb);
    for (size_t i = 0; i < npix; i++) {
        /* An odd multiplier permutes the 2^24 keys: i < ndistinct are distinct. */
        uint32_t key = (uint32_t)((i % ndistinct) * 0x9e3779u + 7u) & 0xffffffu;
        put_key(rgb + 3 * i, key);
    }
    for (int mode = 0; mode < MODES; mode++) {
        kmq_hist *h = hist_rows_mode(rgb, npix, mode);
        ck_assert_uint_eq(kmq_hist_size(h), ndistinct);
        check_against_naive(h, rgb, npix);
        kmq_hist_free(h);
    }
    free(rgb);
}
END_TEST

/* kmq_hist_index and kmq_hist_index_rgb against the key list, over all
 * 2^24 colours; rgb (npix pixels, the histogram's input) is altered. */
static void check_index(const kmq_hist *h, uint8_t *rgb, size_t npix)
{
    size_t n = kmq_hist_size(h);
    const uint32_t *keys = kmq_hist_keys(h);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(kmq_hist_index(h, keys[i]), i);
    /* Every other colour is absent: walk all 2^24 and count the present. */
    size_t present = 0;
    for (uint32_t key = 0; key < (1u << 24); key++) {
        uint32_t ix = kmq_hist_index(h, key);
        if (ix != UINT32_MAX) {
            present++;
            ck_assert_uint_eq(keys[ix], key);
        }
    }
    ck_assert_uint_eq(present, n);
    ck_assert_uint_eq(kmq_hist_index(h, 0x1000000u), UINT32_MAX);
    /* Each pixel's colour maps to its key, one at a time and in bulk. */
    uint32_t *ixs = malloc(npix * sizeof *ixs);
    ck_assert_ptr_nonnull(ixs);
    ck_assert(kmq_hist_index_rgb(h, rgb, npix, ixs));
    for (size_t i = 0; i < npix; i++) {
        ck_assert_uint_eq(keys[kmq_hist_index(h, key_of(rgb + 3 * i))], key_of(rgb + 3 * i));
        ck_assert_uint_eq(ixs[i], kmq_hist_index(h, key_of(rgb + 3 * i)));
    }
    /* A colour never counted: reported, and marked UINT32_MAX. */
    uint32_t absent = 0;
    while (kmq_hist_index(h, absent) != UINT32_MAX)
        absent++;
    put_key(rgb + 3 * 7, absent);
    ck_assert(!kmq_hist_index_rgb(h, rgb, 10, ixs));
    ck_assert_uint_eq(ixs[7], UINT32_MAX);
    ck_assert_uint_ne(ixs[6], UINT32_MAX);
    free(ixs);
}

START_TEST(index_table)
{
    size_t npix = 50000;
    for (int mode = 0; mode < MODES; mode++) {
        uint8_t *rgb = synthetic(npix);
        kmq_hist *h = hist_rows_mode(rgb, npix, mode);
        check_index(h, rgb, npix);
        kmq_hist_free(h);
        free(rgb);
    }
}
END_TEST

/* Counts beyond UINT32_MAX stay exact. kmq_hist_add_color brings a colour
 * next to the 32-bit limit in O(1); the per-pixel path of
 * kmq_hist_add_rgb then crosses it (a carry into the side list), so the
 * test needs no 4e9-pixel buffer. */
START_TEST(wrap_exact)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *h = NULL;
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    const uint32_t a = 0x102030, b = 0xabcdef, c = 0x000001;
    /* a: UINT32_MAX - 3 in bulk, then 9 pixels -> 2^32 + 5. */
    ck_assert_int_eq(kmq_hist_add_color(h, a, UINT32_MAX - 3, &err), KMQ_OK);
    uint8_t px[3 * 16];
    for (int i = 0; i < 9; i++)
        put_key(px + 3 * i, a);
    ck_assert_int_eq(kmq_hist_add_rgb(h, px, 9, &err), KMQ_OK);
    /* b: crosses the limit twice by pixels, and in bulk twice more. */
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(kmq_hist_add_color(h, b, UINT32_MAX - 1, &err), KMQ_OK);
        for (int i = 0; i < 16; i++)
            put_key(px + 3 * i, b);
        ck_assert_int_eq(kmq_hist_add_rgb(h, px, 16, &err), KMQ_OK);
    }
    ck_assert_int_eq(kmq_hist_add_color(h, b, 2 * (uint64_t)UINT32_MAX + 12, &err), KMQ_OK);
    /* c: ordinary. */
    put_key(px, c);
    ck_assert_int_eq(kmq_hist_add_rgb(h, px, 1, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK);

    uint64_t want_a = ((uint64_t)1 << 32) + 5;
    uint64_t want_b = 2 * ((uint64_t)UINT32_MAX - 1 + 16) + 2 * (uint64_t)UINT32_MAX + 12;
    ck_assert_uint_eq(kmq_hist_size(h), 3);
    const uint32_t *keys = kmq_hist_keys(h);
    const uint64_t *weights = kmq_hist_weights(h);
    /* Morton order: c = 0x000001 < a = 0x102030 < b = 0xabcdef there too. */
    ck_assert_uint_eq(keys[0], c);
    ck_assert_uint_eq(keys[1], a);
    ck_assert_uint_eq(keys[2], b);
    ck_assert_uint_eq(weights[0], 1);
    ck_assert_uint_eq(weights[1], want_a);
    ck_assert_uint_eq(weights[2], want_b);
    ck_assert_uint_eq(kmq_hist_pixels(h), want_a + want_b + 1);
    kmq_hist_free(h);
}
END_TEST

START_TEST(after_finish_is_an_error)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *h = NULL;
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    uint8_t px[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(kmq_hist_add_rgb(h, px, 2, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK); /* idempotent */
    ck_assert_int_eq(kmq_hist_add_rgb(h, px, 2, &err), KMQ_E_ARG);
    ck_assert_int_eq(err.code, KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "finished"));
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_hist_add_color(h, 0x010203, 5, &err), KMQ_E_ARG);
    ck_assert_uint_eq(kmq_hist_size(h), 2);
    ck_assert_uint_eq(kmq_hist_pixels(h), 2);
    kmq_hist_free(h);
}
END_TEST

START_TEST(bad_key_and_empty)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *h = NULL;
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    ck_assert_ptr_null(kmq_hist_keys(h)); /* not finished yet */
    ck_assert_int_eq(kmq_hist_add_color(h, 0x1000000, 1, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "24 bits"));
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_hist_add_rgb(h, NULL, 0, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(h, &err), KMQ_OK);
    ck_assert_uint_eq(kmq_hist_size(h), 0);
    ck_assert_uint_eq(kmq_hist_pixels(h), 0);
    ck_assert_uint_eq(kmq_hist_index(h, 0), UINT32_MAX);
    kmq_hist_free(h);
    kmq_hist_free(NULL);
}
END_TEST

/* Fails the Nth allocation for N = 0, 1, ... until the whole sequence
 * succeeds: every failure must be KMQ_E_NOMEM, and ASan checks for leaks. */
START_TEST(alloc_failure_sweep)
{
    size_t npix = 150000; /* more than one key-list reservation block */
    uint8_t *rgb = synthetic(npix);
    int failures = 0;
    for (long nth = 0;; nth++) {
        kmq_err err;
        kmq_err_clear(&err);
        kmq_hist *h = NULL;
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_hist_new(&h, &err);
        if (st == KMQ_OK)
            st = kmq_hist_add_rgb(h, rgb, npix, &err);
        if (st == KMQ_OK) /* a carry into the side list */
            st = kmq_hist_add_color(h, 0x123456, (uint64_t)UINT32_MAX + 10, &err);
        if (st == KMQ_OK)
            st = kmq_hist_add_color(h, 0x654321, (uint64_t)UINT32_MAX + 10, &err);
        if (st == KMQ_OK)
            st = kmq_hist_finish(h, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            ck_assert_uint_eq(kmq_hist_pixels(h), npix + 2 * ((uint64_t)UINT32_MAX + 10));
            kmq_hist_free(h);
            break;
        }
        ck_assert_int_eq(st, KMQ_E_NOMEM);
        ck_assert_int_eq(err.code, KMQ_E_NOMEM);
        ck_assert_msg(err.msg[0] != '\0', "no message for failure %ld", nth);
        kmq_hist_free(h);
        failures++;
        ck_assert_int_lt(failures, 1000);
    }
    ck_assert_int_ge(failures, 5);
    free(rgb);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"counts", counts_match_naive},
        {"photo", counts_photo},
        {"many_colors", counts_many_colors},
        {"index", index_table},
        {"wrap", wrap_exact},
        {"finished", after_finish_is_an_error},
        {"args", bad_key_and_empty},
        {"alloc_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("hist");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 120, NULL);
    return tu_run_suite(s);
}
