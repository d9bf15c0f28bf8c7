/* test_labels.c — colour -> label lookup: map_row against kmq_kmeans_assign
 * and a brute-force nearest centre for several sets at once, colours the
 * histogram never saw, misuse, and an allocation-failure sweep. */
#include "kmq/alloc_hook.h"
#include "kmq/hist.h"
#include "kmq/kmeans.h"
#include "kmq/labels.h"
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Nearest of k centres, lowest index on ties: independent of kmq. */
static uint8_t nearest(const uint8_t *px, const double *c, size_t k)
{
    size_t best = 0;
    double bd = 0;
    for (size_t j = 0; j < k; j++) {
        double dr = px[0] - c[3 * j], dg = px[1] - c[3 * j + 1], db = px[2] - c[3 * j + 2];
        double d = dr * dr + dg * dg + db * db;
        if (j == 0 || d < bd) {
            bd = d;
            best = j;
        }
    }
    return (uint8_t)best;
}

START_TEST(map_rows_match_assign)
{
    uint32_t width, height;
    uint8_t *rgb = tu_png_decode_rgb(tu_photo("coffee.png"), &width, &height);
    ck_assert_ptr_nonnull(rgb);
    kmq_hist *h = tu_hist_of(rgb, (size_t)width * height);
    kmq_points pts = {kmq_hist_size(h), kmq_hist_keys(h), kmq_hist_weights(h)};
    static const size_t ks[3] = {3, 8, 256};
    kmq_err err;
    kmq_err_clear(&err);
    kmq_par par = kmq_par_make(2);
    kmq_labels *lab = NULL;
    ck_assert_int_eq(kmq_labels_new(h, 3, &lab, &err), KMQ_OK);
    double *centers[3];
    for (size_t s = 0; s < 3; s++) {
        /* Any centres will do: k distinct colours of the photo. */
        centers[s] = malloc(3 * ks[s] * sizeof *centers[s]);
        ck_assert_ptr_nonnull(centers[s]);
        ck_assert_int_eq(
            kmq_kmeans_init_centers(&pts, ks[s], KMQ_INIT_RANDOM, 4, 0, &par, centers[s], &err),
            KMQ_OK);
        double inertia;
        ck_assert_int_eq(kmq_kmeans_assign(&pts, centers[s], ks[s], &par, kmq_labels_set(lab, s),
                                           &inertia, &err),
                         KMQ_OK);
    }
    ck_assert_ptr_null(kmq_labels_set(lab, 3));
    uint8_t *rows[3];
    for (size_t s = 0; s < 3; s++)
        rows[s] = malloc(width);
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *row = rgb + (size_t)3 * width * y;
        ck_assert_int_eq(kmq_labels_map_row(lab, row, width, rows, &err), KMQ_OK);
        for (uint32_t x = 0; x < width; x++) {
            const uint8_t *px = row + 3 * x;
            uint32_t key = (uint32_t)px[0] << 16 | (uint32_t)px[1] << 8 | px[2];
            size_t ix = kmq_hist_index(h, key);
            for (size_t s = 0; s < 3; s++) {
                /* The label assign gave this colour ... */
                ck_assert_uint_eq(rows[s][x], kmq_labels_set(lab, s)[ix]);
                /* ... which is its nearest centre. */
                if ((x + y) % 7 == 0)
                    ck_assert_uint_eq(rows[s][x], nearest(px, centers[s], ks[s]));
            }
        }
    }
    for (size_t s = 0; s < 3; s++) {
        free(rows[s]);
        free(centers[s]);
    }
    kmq_labels_free(lab);
    kmq_hist_free(h);
    free(rgb);
}
END_TEST

START_TEST(unknown_colour_is_internal_error)
{
    uint8_t rgb[9] = {1, 2, 3, 4, 5, 6, 1, 2, 3};
    kmq_hist *h = tu_hist_of(rgb, 3);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_labels *lab = NULL;
    ck_assert_int_eq(kmq_labels_new(h, 2, &lab, &err), KMQ_OK);
    kmq_labels_set(lab, 0)[0] = 7;
    kmq_labels_set(lab, 0)[1] = 9;
    kmq_labels_set(lab, 1)[0] = 1;
    kmq_labels_set(lab, 1)[1] = 0;
    uint8_t a[3], b[3];
    uint8_t *rows[2] = {a, b};
    ck_assert_int_eq(kmq_labels_map_row(lab, rgb, 3, rows, &err), KMQ_OK);
    ck_assert(a[0] == 7 && a[1] == 9 && a[2] == 7);
    ck_assert(b[0] == 1 && b[1] == 0 && b[2] == 1);
    uint8_t other[6] = {1, 2, 3, 9, 9, 9};
    ck_assert_int_eq(kmq_labels_map_row(lab, other, 2, rows, &err), KMQ_E_INTERNAL);
    ck_assert_int_eq(err.code, KMQ_E_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "#090909"));
    ck_assert_ptr_nonnull(strstr(err.msg, "never counted"));
    kmq_labels_free(lab);
    kmq_labels_free(NULL);
    kmq_hist_free(h);
}
END_TEST

START_TEST(unfinished_hist_is_an_error)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *h = NULL;
    ck_assert_int_eq(kmq_hist_new(&h, &err), KMQ_OK);
    kmq_labels *lab = NULL;
    ck_assert_int_eq(kmq_labels_new(h, 1, &lab, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "finished"));
    ck_assert_ptr_null(lab);
    kmq_hist_free(h);
}
END_TEST

START_TEST(alloc_failure_sweep)
{
    uint8_t rgb[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3};
    kmq_hist *h = tu_hist_of(rgb, 4);
    int failures = 0;
    for (long nth = 0;; nth++) {
        kmq_err err;
        kmq_err_clear(&err);
        kmq_labels *lab = NULL;
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_labels_new(h, 4, &lab, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            ck_assert_ptr_nonnull(kmq_labels_set(lab, 3));
            kmq_labels_free(lab);
            break;
        }
        ck_assert_int_eq(st, KMQ_E_NOMEM);
        ck_assert_ptr_null(lab);
        failures++;
    }
    ck_assert_int_eq(failures, 2);
    kmq_hist_free(h);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"map_rows", map_rows_match_assign},
        {"unknown_colour", unknown_colour_is_internal_error},
        {"unfinished", unfinished_hist_is_an_error},
        {"alloc_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("labels");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 120, NULL);
    return tu_run_suite(s);
}
