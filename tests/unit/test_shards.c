/* test_shards.c — the split of a job's images into the shards of a job
 * array (kmq_runner_in_shard): for N = 1..7 over 60 names every image is in
 * exactly one shard, the split depends on the name alone (adding or
 * removing images moves no other image), and no shard is left empty by a
 * large collection. */
#include "kmq/runner.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

enum { NAMES = 60, EXTRA = 5, MAX_N = 7 };

static void name_of(size_t i, char out[64])
{
    /* Names as a recursive job lists them: folders, odd characters, UTF-8. */
    static const char *const dirs[] = {"", "2019/", "2019/summer/", "caf\xc3\xa9/", "a b/"};
    snprintf(out, 64, "%sIMG_%04zu.%s", dirs[i % 5], i * 7 + 3, i % 3 ? "jpg" : "PNG");
}

/* The one shard of N that takes `rel`, or -1 when none or several do. */
static int owner(const char *rel, unsigned n)
{
    int found = -1;
    for (unsigned i = 0; i < n; i++) {
        if (!kmq_runner_in_shard(rel, i, n))
            continue;
        if (found >= 0)
            return -1;
        found = (int)i;
    }
    return found;
}

START_TEST(every_image_in_exactly_one_shard)
{
    char rel[64];
    for (unsigned n = 1; n <= MAX_N; n++) {
        size_t per_shard[MAX_N] = {0};
        for (size_t i = 0; i < NAMES; i++) {
            name_of(i, rel);
            int o = owner(rel, n);
            ck_assert_msg(o >= 0, "%s is in no shard or several of %u", rel, n);
            per_shard[o]++;
        }
        size_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += per_shard[i];
        ck_assert_uint_eq(total, NAMES);
    }
}
END_TEST

START_TEST(adding_images_moves_no_other_image)
{
    char rel[64];
    for (unsigned n = 1; n <= MAX_N; n++) {
        int before[NAMES];
        for (size_t i = 0; i < NAMES; i++) {
            name_of(i, rel);
            before[i] = owner(rel, n);
        }
        /* The collection grows (and shrinks): each image's shard is asked
         * again, in another order, with other images around. */
        for (size_t j = 0; j < EXTRA; j++) {
            name_of(NAMES + j, rel);
            ck_assert_int_ge(owner(rel, n), 0);
        }
        for (size_t i = NAMES; i-- > 0;) {
            name_of(i, rel);
            ck_assert_int_eq(owner(rel, n), before[i]);
        }
    }
}
END_TEST

START_TEST(shard_zero_of_one_takes_everything)
{
    ck_assert(kmq_runner_in_shard("x.jpg", 0, 0));
    ck_assert(kmq_runner_in_shard("x.jpg", 0, 1));
    ck_assert(kmq_runner_in_shard("", 0, 1));
}
END_TEST

START_TEST(large_collections_fill_every_shard)
{
    char rel[64];
    for (unsigned n = 2; n <= MAX_N; n++) {
        size_t per_shard[MAX_N] = {0};
        for (size_t i = 0; i < 7000; i++) {
            snprintf(rel, sizeof rel, "photos/%zu.jpg", i);
            per_shard[owner(rel, n)]++;
        }
        /* a hash split: each shard within 20% of its share */
        for (unsigned i = 0; i < n; i++)
            ck_assert_msg(per_shard[i] * n * 10 > 7000 * 8 && per_shard[i] * n * 10 < 7000 * 12,
                          "shard %u of %u has %zu of 7000", i, n, per_shard[i]);
    }
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"every_image_in_exactly_one_shard", every_image_in_exactly_one_shard},
        {"adding_images_moves_no_other_image", adding_images_moves_no_other_image},
        {"shard_zero_of_one_takes_everything", shard_zero_of_one_takes_everything},
        {"large_collections_fill_every_shard", large_collections_fill_every_shard},
    };
    Suite *s = suite_create("shards");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
