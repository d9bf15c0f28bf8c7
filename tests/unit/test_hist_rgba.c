/* test_hist_rgba.c — the RGBA hash histogram against a brute-force count:
 * every key and count, ascending order, fully transparent pixels as one key
 * whatever their RGB, lookups of every pixel, growth far past the first
 * table, keys spread over all 32 bits (more than the 2^24 an RGB table
 * holds), and a colour never counted. */
#include "kmq/hist_rgba.h"
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

START_TEST(counts_against_brute_force)
{
    enum { N = 300000 };
    uint8_t *px = malloc(4 * N);
    uint32_t *keys = malloc(sizeof *keys * N);
    ck_assert_ptr_nonnull(px);
    ck_assert_ptr_nonnull(keys);
    uint64_t state = 12345;
    for (size_t i = 0; i < N; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(state >> 33);
        /* Few values per channel so that colours repeat; every 7th pixel is
         * fully transparent with some RGB. */
        px[4 * i] = (uint8_t)(r % 40 * 6);
        px[4 * i + 1] = (uint8_t)(r / 40 % 40 * 6);
        px[4 * i + 2] = (uint8_t)(r / 1600 % 7 * 30);
        px[4 * i + 3] = i % 7 == 0 ? 0 : (uint8_t)(r / 11200 % 5 * 60 + 15);
        keys[i] = kmq_rgba_key(px + 4 * i);
    }
    kmq_err err = {0};
    kmq_hist_rgba *h = NULL;
    ck_assert_int_eq(kmq_hist_rgba_new(&h, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_rgba_add(h, px, N / 2, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_rgba_add(h, px + 4 * (N / 2), N - N / 2, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_rgba_finish(h, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_rgba_finish(h, &err), KMQ_OK); /* idempotent */
    ck_assert_uint_eq(kmq_hist_rgba_pixels(h), N);
    qsort(keys, N, sizeof *keys, cmp_u32);
    size_t distinct = 0;
    const uint32_t *hk = kmq_hist_rgba_keys(h);
    const uint64_t *hw = kmq_hist_rgba_weights(h);
    for (size_t i = 0; i < N;) {
        size_t j = i;
        while (j < N && keys[j] == keys[i])
            j++;
        ck_assert_uint_lt(distinct, kmq_hist_rgba_size(h));
        ck_assert_uint_eq(hk[distinct], keys[i]);
        ck_assert_uint_eq(hw[distinct], j - i);
        distinct++;
        i = j;
    }
    ck_assert_uint_eq(distinct, kmq_hist_rgba_size(h));
    ck_assert_uint_eq(hk[0], 0); /* the transparent pixels, one key */
    ck_assert_uint_eq(hw[0], (N + 6) / 7);
    uint32_t *ix = malloc(sizeof *ix * N);
    ck_assert_ptr_nonnull(ix);
    ck_assert(kmq_hist_rgba_index(h, px, N, ix));
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_eq(hk[ix[i]], kmq_rgba_key(px + 4 * i));
    const uint8_t unseen[4] = {1, 2, 3, 4};
    ck_assert(!kmq_hist_rgba_index(h, unseen, 1, ix));
    ck_assert_uint_eq(ix[0], UINT32_MAX);
    kmq_hist_rgba_free(h);
    free(ix);
    free(px);
    free(keys);
}
END_TEST

START_TEST(keys_beyond_24_bits)
{
    /* 2^20 distinct colours that differ only in alpha and blue's low bits
     * plus the top of red: a 24-bit table could not tell them apart. */
    enum { N = 1 << 20 };
    uint8_t *px = malloc(4 * (size_t)N);
    ck_assert_ptr_nonnull(px);
    for (uint32_t i = 0; i < N; i++) {
        px[4 * i] = (uint8_t)(i >> 12);
        px[4 * i + 1] = 7;
        px[4 * i + 2] = (uint8_t)(i >> 8 & 0xf);
        px[4 * i + 3] = (uint8_t)(i & 0xff) | 1;
    }
    kmq_err err = {0};
    kmq_hist_rgba *h = NULL;
    ck_assert_int_eq(kmq_hist_rgba_new(&h, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_rgba_add(h, px, N, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_rgba_finish(h, &err), KMQ_OK);
    /* alpha's lowest bit is forced on: pairs of i fall together. */
    ck_assert_uint_eq(kmq_hist_rgba_size(h), N / 2);
    const uint64_t *hw = kmq_hist_rgba_weights(h);
    for (size_t j = 0; j < N / 2; j++)
        ck_assert_uint_eq(hw[j], 2);
    ck_assert_int_eq(kmq_hist_rgba_add(h, px, 1, &err), KMQ_E_ARG); /* finished */
    kmq_hist_rgba_free(h);
    free(px);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"brute_force", counts_against_brute_force},
        {"wide_keys", keys_beyond_24_bits},
    };
    Suite *s = suite_create("hist_rgba");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 120, NULL);
    return tu_run_suite(s);
}
