/* test_rng.c — random streams and stable hashes against the published
 * algorithms: xoshiro256** (Blackman & Vigna's reference xoshiro256starstar.c),
 * splitmix64 (Steele, Lea & Flood; Vigna's splitmix64.c) and FNV-1a 64
 * (Fowler, Noll & Vo). Reference values are the published ones or come from
 * the small implementations below, written from those papers, not from
 * rng.c. */
#include "kmq/rng.h"
#include "testutil.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- references --------------------------------------------------------- */

/* splitmix64, one step: advance by the golden gamma, then mix (Vigna's
 * splitmix64.c). */
static uint64_t ref_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* The key derivation rng.h describes: each key through its own splitmix
 * round (seed, then k times an odd constant, then restart times another),
 * and the four words of xoshiro256**'s state from splitmix64 of the result. */
static void ref_init(uint64_t s[4], uint64_t seed, uint64_t k, uint64_t restart)
{
    uint64_t x = seed;
    uint64_t m = ref_splitmix64(&x);
    x = m ^ (k * UINT64_C(0xd1b54a32d192ed03));
    m = ref_splitmix64(&x);
    x = m ^ (restart * UINT64_C(0xaef17502108ef2d9));
    for (int i = 0; i < 4; i++)
        s[i] = ref_splitmix64(&x);
}

static uint64_t ref_fnv1a(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* ---- the generator ------------------------------------------------------ */

/* xoshiro256** from the state {1, 2, 3, 4}: the first ten outputs of the
 * reference implementation (also the test vector of Rust's rand_xoshiro). */
START_TEST(xoshiro_reference_vector)
{
    static const uint64_t expected[10] = {
        UINT64_C(11520),
        UINT64_C(0),
        UINT64_C(1509978240),
        UINT64_C(1215971899390074240),
        UINT64_C(1216172134540287360),
        UINT64_C(607988272756665600),
        UINT64_C(16172922978634559625),
        UINT64_C(8476171486693032832),
        UINT64_C(10595114339597558777),
        UINT64_C(2904607092377533576),
    };
    kmq_rng r = {{1, 2, 3, 4}};
    for (int i = 0; i < 10; i++)
        ck_assert_msg(kmq_rng_next(&r) == expected[i], "output %d", i);
}
END_TEST

/* splitmix64 seeded with 1234567 starts 6457827717110365317, ... (the
 * published sequence); kmq_hash_finish is one splitmix64 step of its input. */
START_TEST(splitmix_reference_vector)
{
    static const uint64_t expected[5] = {
        UINT64_C(6457827717110365317),  UINT64_C(3203168211198807973),
        UINT64_C(9817491932198370423),  UINT64_C(4593380528125082431),
        UINT64_C(16408922859458223821),
    };
    uint64_t x = 1234567;
    for (int i = 0; i < 5; i++)
        ck_assert_msg(ref_splitmix64(&x) == expected[i], "reference output %d", i);
    ck_assert(kmq_hash_finish(1234567) == expected[0]);
    x = 0;
    for (uint64_t h = 0; h < 1000; h += 7) {
        x = h;
        ck_assert(kmq_hash_finish(h) == ref_splitmix64(&x));
    }
}
END_TEST

/* kmq_rng_init gives the state of the documented derivation, and the first
 * outputs of the stream (seed 0, k 0, restart 0) are pinned: every k-means
 * result and golden output depends on them. */
START_TEST(init_follows_the_derivation)
{
    static const uint64_t keys[][3] = {
        {0, 0, 0},          {0, 1, 0},   {0, 0, 1},          {11, 16, 1},
        {42, 256, 9},       {1, 2, 3},   {1, 3, 2},          {UINT64_MAX, 7, 0},
        {INT64_MAX, 1, 99}, {5, 64, 31}, {12345, 100, 1000},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        kmq_rng r;
        uint64_t want[4];
        kmq_rng_init(&r, keys[i][0], keys[i][1], keys[i][2]);
        ref_init(want, keys[i][0], keys[i][1], keys[i][2]);
        ck_assert_msg(memcmp(r.s, want, sizeof want) == 0, "key %zu", i);
    }

    kmq_rng r;
    kmq_rng_init(&r, 0, 0, 0);
    ck_assert(r.s[0] == UINT64_C(0x238275bc38fcbe91));
    ck_assert(r.s[1] == UINT64_C(0xf89a2566b5822c54));
    ck_assert(r.s[2] == UINT64_C(0x47200e1d9780fa44));
    ck_assert(r.s[3] == UINT64_C(0xe710dc7a64e2470a));
    ck_assert(kmq_rng_next(&r) == UINT64_C(0x8c4986f3f0e565d5));
    ck_assert(kmq_rng_next(&r) == UINT64_C(0xf4547fdf5c2f56b6));
    ck_assert(kmq_rng_next(&r) == UINT64_C(0x6a9e0d6a14f022fb));

    kmq_rng_init(&r, 11, 16, 1);
    ck_assert(kmq_rng_next(&r) == UINT64_C(0x030ac979eeed3d78));
    ck_assert(kmq_rng_next(&r) == UINT64_C(0xecb86336d46c228e));
}
END_TEST

/* Equal keys give equal streams; a stream is a value (a copy continues
 * identically and independently). */
START_TEST(streams_are_reproducible)
{
    kmq_rng a, b;
    kmq_rng_init(&a, 7, 16, 3);
    kmq_rng_init(&b, 7, 16, 3);
    for (int i = 0; i < 1000; i++)
        ck_assert(kmq_rng_next(&a) == kmq_rng_next(&b));
    kmq_rng c = a;
    uint64_t from_a[100];
    for (int i = 0; i < 100; i++)
        from_a[i] = kmq_rng_next(&a);
    for (int i = 0; i < 100; i++)
        ck_assert(kmq_rng_next(&c) == from_a[i]);
    /* b was not moved by drawing from a or c */
    kmq_rng d;
    kmq_rng_init(&d, 7, 16, 3);
    for (int i = 0; i < 1000; i++)
        kmq_rng_next(&d);
    ck_assert(memcmp(&b, &d, sizeof b) == 0);
}
END_TEST

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Every key of a grid gives its own stream: no two streams share their first
 * output, and neither do swapped keys ((seed, k, r) vs (seed, r, k)). */
START_TEST(streams_are_distinct)
{
    static const uint64_t seeds[] = {0, 1, 2, 11, 42, UINT64_C(1) << 32, INT64_MAX};
    enum { NS = sizeof seeds / sizeof seeds[0], NK = 38, NR = 12 };
    uint64_t *first = malloc(sizeof *first * NS * NK * NR);
    ck_assert_ptr_nonnull(first);
    size_t n = 0;
    for (size_t s = 0; s < NS; s++)
        for (uint64_t j = 0; j < NK; j++) {
            uint64_t k = j + 1 < NK ? 1 + 7 * j : 256; /* 1, 8, ..., 253, 256 */
            for (uint64_t r = 0; r < NR; r++) {
                kmq_rng g;
                kmq_rng_init(&g, seeds[s], k, r);
                first[n++] = kmq_rng_next(&g);
            }
        }
    qsort(first, n, sizeof *first, cmp_u64);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(first[i] != first[i - 1], "two of %zu streams share their first output", n);
    free(first);

    for (uint64_t a = 0; a < 8; a++)
        for (uint64_t b = a + 1; b < 8; b++) {
            kmq_rng x, y;
            kmq_rng_init(&x, 3, a, b);
            kmq_rng_init(&y, 3, b, a);
            ck_assert(kmq_rng_next(&x) != kmq_rng_next(&y));
            kmq_rng_init(&x, a, b, 0);
            kmq_rng_init(&y, b, a, 0);
            ck_assert(kmq_rng_next(&x) != kmq_rng_next(&y));
        }
}
END_TEST

/* kmq_rng_uniform is the top 53 bits of the next output times 2^-53: in
 * [0, 1), 0 exactly when they are 0, and with mean close to 1/2. */
START_TEST(uniform_uses_the_top_53_bits)
{
    kmq_rng r = {{1, 2, 3, 4}};
    ck_assert(kmq_rng_uniform(&r) == 5 * 0x1.0p-53); /* 11520 >> 11 = 5 */
    ck_assert(kmq_rng_uniform(&r) == 0.0);           /* the second output is 0 */

    kmq_rng_init(&r, 99, 8, 0);
    double sum = 0.0;
    int wrong = 0; /* counted, not asserted per draw: Check logs every assertion */
    for (int i = 0; i < 100000; i++) {
        kmq_rng copy = r;
        uint64_t bits = kmq_rng_next(&copy) >> 11;
        double u = kmq_rng_uniform(&r);
        wrong += u != (double)bits / 9007199254740992.0 || u < 0.0 || u >= 1.0;
        sum += u;
    }
    ck_assert_int_eq(wrong, 0);
    ck_assert_double_eq_tol(sum / 100000.0, 0.5, 0.01);
}
END_TEST

/* Rejection sampling: keep a draw x only when x < limit, the largest
 * multiple of n not above 2^64 - 1, so that x % n takes every value in
 * [0, n) from the same number of draws; otherwise draw again. */
static uint64_t ref_below(kmq_rng *r, uint64_t n, int *rejected)
{
    uint64_t limit = (UINT64_MAX / n) * n;
    for (;;) {
        uint64_t x = kmq_rng_next(r);
        if (x < limit)
            return x % n;
        (*rejected)++;
    }
}

START_TEST(below_stays_in_range_and_hits_every_value)
{
    static const uint64_t ns[] = {1, 2, 3, 5, 7, 10, 100, 255, 256, 1000, 4097};
    kmq_rng r;
    kmq_rng_init(&r, 2024, 5, 1);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        uint64_t n = ns[i];
        int seen[16] = {0};
        for (int j = 0; j < 20000; j++) {
            uint64_t v = kmq_rng_below(&r, n);
            if (v >= n)
                ck_abort_msg("%llu not below %llu", (unsigned long long)v, (unsigned long long)n);
            if (n <= 16)
                seen[v] = 1;
        }
        for (uint64_t v = 0; v < n && n <= 16; v++)
            ck_assert_msg(seen[v], "%llu never drawn below %llu", (unsigned long long)v,
                          (unsigned long long)n);
    }

    /* n = 1 draws once and returns 0 */
    kmq_rng a = r, b = r;
    ck_assert_uint_eq(kmq_rng_below(&a, 1), 0);
    kmq_rng_next(&b);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
}
END_TEST

/* No value is favoured: 60000 draws below 6 put each value within 5 % of
 * 10000 (about 5 standard deviations; the stream is fixed, so the test is
 * deterministic). */
START_TEST(below_is_even)
{
    kmq_rng r;
    kmq_rng_init(&r, 1, 6, 0);
    int count[6] = {0};
    for (int j = 0; j < 60000; j++)
        count[kmq_rng_below(&r, 6)]++;
    for (int v = 0; v < 6; v++)
        ck_assert_msg(count[v] > 9500 && count[v] < 10500, "value %d drawn %d times", v, count[v]);
}
END_TEST

/* Near 2^63 about half the outputs are rejected; the values returned are
 * those of the reference rule, in the same stream positions. */
START_TEST(below_rejects_the_uneven_tail)
{
    static const uint64_t ns[] = {
        (UINT64_C(1) << 63) + 1, UINT64_C(1) << 63, UINT64_MAX / 3 * 2, UINT64_MAX, 6,
        UINT64_C(1) << 40};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        kmq_rng a, b;
        kmq_rng_init(&a, 77, i, 0);
        b = a;
        int rejected = 0;
        int wrong = 0;
        for (int j = 0; j < 2000; j++) {
            uint64_t got = kmq_rng_below(&a, ns[i]);
            wrong += got >= ns[i] || got != ref_below(&b, ns[i], &rejected);
        }
        ck_assert_msg(wrong == 0, "n %zu: %d of 2000 draws differ from the rule", i, wrong);
        ck_assert(memcmp(&a, &b, sizeof a) == 0);
        if (i == 0)
            ck_assert_int_gt(rejected, 500); /* about half of 2000 */
        if (i == 1)
            ck_assert_int_gt(rejected, 500); /* only [0, 2^63) is kept */
    }
}
END_TEST

/* ---- hashes ------------------------------------------------------------- */

/* FNV-1a 64 test values: "" is the offset basis, "a" 0xaf63dc4c8601ec8c,
 * "foobar" 0x85944171f73967e8; calls chain. */
START_TEST(hash_is_fnv1a)
{
    ck_assert(kmq_hash_bytes(KMQ_HASH_INIT, "", 0) == UINT64_C(0xcbf29ce484222325));
    ck_assert(kmq_hash_bytes(KMQ_HASH_INIT, "a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
    ck_assert(kmq_hash_bytes(KMQ_HASH_INIT, "foobar", 6) == UINT64_C(0x85944171f73967e8));
    ck_assert(kmq_hash_bytes(kmq_hash_bytes(KMQ_HASH_INIT, "foo", 3), "bar", 3) ==
              UINT64_C(0x85944171f73967e8));
    static const char *words[] = {"kmq", "photos/2019/img_0042.jpg", "k = 16", "\xff\x01"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        ck_assert(kmq_hash_bytes(KMQ_HASH_INIT, words[i], strlen(words[i])) == ref_fnv1a(words[i]));
    /* bytes above 0x7f are not sign-extended */
    const unsigned char hi[] = {0x80, 0xff};
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < 2; i++)
        h = (h ^ hi[i]) * UINT64_C(0x100000001b3);
    ck_assert(kmq_hash_bytes(KMQ_HASH_INIT, hi, 2) == h);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"xoshiro_reference_vector", xoshiro_reference_vector},
        {"splitmix_reference_vector", splitmix_reference_vector},
        {"init_follows_the_derivation", init_follows_the_derivation},
        {"streams_are_reproducible", streams_are_reproducible},
        {"streams_are_distinct", streams_are_distinct},
        {"uniform_uses_the_top_53_bits", uniform_uses_the_top_53_bits},
        {"below_stays_in_range_and_hits_every_value", below_stays_in_range_and_hits_every_value},
        {"below_is_even", below_is_even},
        {"below_rejects_the_uneven_tail", below_rejects_the_uneven_tail},
        {"hash_is_fnv1a", hash_is_fnv1a},
    };
    Suite *s = suite_create("rng");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
