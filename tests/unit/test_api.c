/* test_api.c — the installed C API (include/kmq/kmq.h, src/api/kmq.c):
 * labels against a brute-force nearest centre, the fit against the
 * engine's own on the same histogram, weights against repeated rows,
 * quantize against the fit, bad arguments, and an allocation-failure sweep.
 * Built with src/api/kmq.c compiled in (tests/CMakeLists.txt), so the
 * sanitizer and serial builds check it too. */
#include "kmq/kmq.h"

#include "kmq/alloc_hook.h"
#include "kmq/hist.h"
#include "kmq/kmeans.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *coffee(size_t *n)
{
    uint32_t w, h;
    uint8_t *rgb = tu_png_decode_rgb(tu_photo("coffee.png"), &w, &h);
    ck_assert_ptr_nonnull(rgb);
    *n = (size_t)w * h;
    return rgb;
}

START_TEST(fit_is_the_engines_fit_and_labels_are_nearest)
{
    size_t n;
    uint8_t *rgb = coffee(&n);
    kmq_params p;
    kmq_params_init(&p, 8);
    p.restarts = 2;
    p.seed = 3;
    p.threads = 2;
    kmq_result r = {0};
    char msg[256];
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, n, &p, &r, msg, sizeof msg), 0);
    ck_assert_int_eq(r.k, 8);

    /* The engine on the same histogram, with the same options. */
    kmq_hist *h = tu_hist_of(rgb, n);
    kmq_points pts = {kmq_hist_size(h), kmq_hist_keys(h), kmq_hist_weights(h)};
    kmq_kmeans_opts o = {
        .k = 8, .restarts = 2, .max_iter = 300, .tol = 1e-4, .init = KMQ_INIT_KMEANSPP, .seed = 3};
    kmq_par par = kmq_par_make(2);
    kmq_fit fit = {0};
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &fit, &err), KMQ_OK);
    ck_assert(memcmp(fit.centers, r.centers, 8 * 3 * sizeof(double)) == 0);
    ck_assert(fit.inertia == r.inertia);
    ck_assert_int_eq(fit.iterations, r.iterations);
    kmq_fit_clear(&fit);
    kmq_hist_free(h);

    double inertia = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        double d2;
        ck_assert_int_eq(r.labels[i], tu_nearest_centre(rgb + 3 * i, r.centers, r.k, &d2));
        inertia += d2;
    }
    for (int j = 0; j < r.k; j++)
        total += r.sizes[j];
    ck_assert_uint_eq(total, n);
    ck_assert_double_eq_tol(r.inertia, inertia, 1e-9 * inertia);
    kmq_result_free(&r);
    ck_assert_ptr_null(r.centers);
    free(rgb);
}
END_TEST

START_TEST(weights_are_repeated_rows_and_zero_leaves_a_row_out)
{
    enum { N = 40 };
    uint8_t rgb[N * 3];
    uint64_t w[N];
    uint64_t reps = 0;
    srand(7);
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)(rand() % 256);
        w[i] = (uint64_t)(i % 4); /* 0..3, some rows left out */
        reps += w[i];
    }
    uint8_t *rep = malloc(3 * reps);
    ck_assert_ptr_nonnull(rep);
    size_t m = 0;
    for (int i = 0; i < N; i++)
        for (uint64_t t = 0; t < w[i]; t++, m++)
            memcpy(rep + 3 * m, rgb + 3 * i, 3);
    kmq_params p;
    kmq_params_init(&p, 5);
    kmq_result a = {0}, b = {0};
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, w, N, &p, &a, NULL, 0), 0);
    ck_assert_int_eq(kmq_kmeans_rgb(rep, NULL, m, &p, &b, NULL, 0), 0);
    ck_assert_int_eq(a.k, b.k);
    ck_assert(memcmp(a.centers, b.centers, (size_t)a.k * 3 * sizeof(double)) == 0);
    ck_assert(a.inertia == b.inertia);
    for (int i = 0; i < N; i++) { /* weight-0 rows too: the nearest centre */
        double d2;
        ck_assert_int_eq(a.labels[i], tu_nearest_centre(rgb + 3 * i, a.centers, a.k, &d2));
    }
    kmq_result_free(&a);
    kmq_result_free(&b);
    free(rep);
}
END_TEST

START_TEST(assign_is_the_nearest_centre)
{
    size_t n;
    uint8_t *rgb = coffee(&n);
    const double centers[4 * 3] = {0, 0, 0, 255, 255, 255, 128.5, 64.25, 32, 200, 100, 50};
    uint8_t *labels = malloc(n);
    ck_assert_ptr_nonnull(labels);
    double inertia = -1, want = 0;
    ck_assert_int_eq(kmq_assign_rgb(rgb, n, centers, 4, 0, labels, &inertia, NULL, 0), 0);
    for (size_t i = 0; i < n; i++) {
        double d2;
        ck_assert_int_eq(labels[i], tu_nearest_centre(rgb + 3 * i, centers, 4, &d2));
        want += d2;
    }
    ck_assert_double_eq_tol(inertia, want, 1e-9 * want);
    free(labels);
    free(rgb);
}
END_TEST

START_TEST(quantize_is_the_fit_rounded)
{
    uint32_t w, h;
    uint8_t *rgb = tu_png_decode_rgb(tu_photo("astronaut.png"), &w, &h);
    ck_assert_ptr_nonnull(rgb);
    size_t n = (size_t)w * h;
    kmq_params p;
    kmq_params_init(&p, 16);
    p.restarts = 1;
    uint8_t palette[256 * 3];
    uint8_t *index = malloc(n);
    ck_assert_ptr_nonnull(index);
    int m = 0;
    double inertia = 0;
    ck_assert_int_eq(kmq_quantize_rgb(rgb, w, h, &p, palette, &m, index, &inertia, NULL, 0), 0);
    kmq_result r = {0};
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, n, &p, &r, NULL, 0), 0);
    ck_assert_int_eq(m, r.k);
    ck_assert(inertia == r.inertia);
    for (int j = 0; j < 3 * m; j++)
        ck_assert_int_eq(palette[j], (int)lround(r.centers[j]));
    ck_assert(memcmp(index, r.labels, n) == 0);
    kmq_result_free(&r);
    free(index);
    free(rgb);
}
END_TEST

START_TEST(bad_arguments_are_refused_with_a_message)
{
    const uint8_t rgb[6] = {1, 2, 3, 4, 5, 6};
    const uint64_t zero[2] = {0, 0};
    kmq_params p;
    kmq_result r = {0};
    char msg[256];
    struct {
        int k, restarts, init, threads;
        const char *words;
    } cases[] = {{0, 10, 0, 0, "k = 0"},
                 {257, 10, 0, 0, "k = 257"},
                 {2, 0, 0, 0, "restarts"},
                 {2, 10, 7, 0, "init = 7"},
                 {2, 10, 0, -1, "threads = -1"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kmq_params_init(&p, cases[i].k);
        p.restarts = cases[i].restarts;
        p.init = cases[i].init;
        p.threads = cases[i].threads;
        ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, 2, &p, &r, msg, sizeof msg), 2);
        ck_assert_msg(strstr(msg, cases[i].words), "message '%s' lacks '%s'", msg, cases[i].words);
        ck_assert_ptr_null(r.centers);
    }
    kmq_params_init(&p, 2);
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, 0, &p, &r, msg, sizeof msg), 2);
    ck_assert_ptr_nonnull(strstr(msg, "no colours"));
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, zero, 2, &p, &r, msg, sizeof msg), 2);
    ck_assert_ptr_nonnull(strstr(msg, "every weight is 0"));
    ck_assert_int_eq(kmq_kmeans_rgb(NULL, NULL, 2, &p, &r, msg, sizeof msg), 2);
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, 2, NULL, &r, NULL, 0), 2); /* no msg: fine */
    char tiny[4];
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, 0, &p, &r, tiny, sizeof tiny), 2);
    ck_assert_uint_eq(strlen(tiny), 3); /* truncated, terminated */
    uint8_t lab[2], pal[768], idx[2];
    int m;
    const double c[3] = {0, 0, 0};
    ck_assert_int_eq(kmq_assign_rgb(rgb, 2, c, 0, 0, lab, NULL, NULL, 0), 2);
    ck_assert_int_eq(kmq_assign_rgb(rgb, 2, NULL, 1, 0, lab, NULL, NULL, 0), 2);
    ck_assert_int_eq(kmq_quantize_rgb(rgb, 0, 1, &p, pal, &m, idx, NULL, NULL, 0), 2);
    ck_assert_int_eq(kmq_quantize_rgb(rgb, SIZE_MAX, 2, &p, pal, &m, idx, NULL, NULL, 0), 2);
    /* More clusters than colours: that many, each colour its own centre. */
    kmq_params_init(&p, 5);
    ck_assert_int_eq(kmq_kmeans_rgb(rgb, NULL, 2, &p, &r, NULL, 0), 0);
    ck_assert_int_eq(r.k, 2);
    ck_assert(r.inertia == 0);
    kmq_result_free(&r);
    kmq_result_free(NULL);
    kmq_params_init(NULL, 1);
    ck_assert_str_eq(kmq_version(), KMQ_VERSION_STRING);
}
END_TEST

START_TEST(alloc_failure_sweep)
{
    enum { N = 64 };
    uint8_t rgb[N * 3];
    uint64_t w[N];
    for (int i = 0; i < N; i++) {
        rgb[3 * i] = (uint8_t)(i * 4);
        rgb[3 * i + 1] = (uint8_t)(255 - i);
        rgb[3 * i + 2] = (uint8_t)(i * i);
        w[i] = (uint64_t)(i % 3); /* weight 0: the labelling path after the fit */
    }
    kmq_params p;
    kmq_params_init(&p, 4);
    p.threads = 1;
    p.restarts = 2;
    int failures = 0;
    for (long nth = 0; nth < 1000; nth++) {
        kmq_result r = {0};
        kmq_alloc_fail_after(nth);
        int st = kmq_kmeans_rgb(rgb, w, N, &p, &r, NULL, 0);
        kmq_alloc_fail_after(-1);
        if (st == 0) {
            kmq_result_free(&r);
            break;
        }
        ck_assert_int_eq(st, 1);
        ck_assert_ptr_null(r.centers); /* nothing handed out on failure */
        failures++;
    }
    ck_assert_int_gt(failures, 5);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"fit", fit_is_the_engines_fit_and_labels_are_nearest},
        {"weights", weights_are_repeated_rows_and_zero_leaves_a_row_out},
        {"assign", assign_is_the_nearest_centre},
        {"quantize", quantize_is_the_fit_rounded},
        {"bad_arguments", bad_arguments_are_refused_with_a_message},
        {"alloc_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("api");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 300, NULL);
    return tu_run_suite(s);
}
