/* test_kmeans.c — weighted k-means: a per-pixel reference Lloyd on a real
 * photo, hand-checked small cases, empty-cluster reseeding, thread
 * invariance on both parallel drivers, the assignment, argument errors and
 * an allocation-failure sweep; the distance-pruned Lloyd and k-means++
 * against the plain ones, and k-means++ against a plain reference written
 * here, bit for bit, on real photos. */
#include "kmeans_internal.h"
#include "kmq/alloc_hook.h"
#include "kmq/hist.h"
#include "kmq/image.h"
#include "kmq/kmeans.h"
#include "kmq/rng.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ----------------------------------------------------------- */

typedef struct photo {
    uint8_t *rgb;
    size_t npix;
    kmq_hist *hist;
    kmq_points pts;
} photo;

/* Decodes a bundled photo with libpng and builds its histogram. Called
 * inside each test (Check forks; nothing OpenMP runs before that). */
static photo load_photo(const char *name)
{
    photo ph;
    uint32_t w, h;
    kmq_err err;
    kmq_err_clear(&err);
    ph.rgb = tu_png_decode_rgb(tu_photo(name), &w, &h);
    ck_assert_ptr_nonnull(ph.rgb);
    ph.npix = (size_t)w * h;
    ck_assert_int_eq(kmq_hist_new(&ph.hist, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_add_rgb(ph.hist, ph.rgb, ph.npix, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(ph.hist, &err), KMQ_OK);
    ph.pts.n = kmq_hist_size(ph.hist);
    ph.pts.keys = kmq_hist_keys(ph.hist);
    ph.pts.weights = kmq_hist_weights(ph.hist);
    return ph;
}

static void free_photo(photo *ph)
{
    kmq_hist_free(ph->hist);
    free(ph->rgb);
}

/* Any bundled photo (JPEG too) through libvips, histogram only (rgb NULL).
 * Called inside the test, after Check's fork. */
static photo load_photo_vips(const char *name)
{
    photo ph;
    memset(&ph, 0, sizeof ph);
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_msg(kmq_image_lib_init("test_kmeans", 1, &err) == KMQ_OK, "%s", err.msg);
    kmq_image_opts io;
    memset(&io, 0, sizeof io);
    io.background[0] = io.background[1] = io.background[2] = 255;
    io.mode = KMQ_IMAGE_STREAM;
    kmq_image *img = NULL;
    ck_assert_msg(kmq_image_open(tu_photo(name), &io, &img, &err) == KMQ_OK, "%s", err.msg);
    const kmq_image_info *info = kmq_image_get_info(img);
    uint8_t *buf = malloc((size_t)kmq_image_strip_rows(img) * info->width * 3);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(kmq_hist_new(&ph.hist, &err), KMQ_OK);
    ck_assert_int_eq(kmq_image_rewind(img, &err), KMQ_OK);
    for (;;) {
        uint32_t rows = 0;
        ck_assert_int_eq(kmq_image_read_strip(img, buf, &rows, &err), KMQ_OK);
        if (rows == 0)
            break;
        ck_assert_int_eq(kmq_hist_add_rgb(ph.hist, buf, (size_t)rows * info->width, &err), KMQ_OK);
        ph.npix += (size_t)rows * info->width;
    }
    ck_assert_int_eq(kmq_hist_finish(ph.hist, &err), KMQ_OK);
    free(buf);
    kmq_image_free(img);
    ph.pts.n = kmq_hist_size(ph.hist);
    ph.pts.keys = kmq_hist_keys(ph.hist);
    ph.pts.weights = kmq_hist_weights(ph.hist);
    return ph;
}

static kmq_kmeans_opts opts_of(size_t k, int restarts, int max_iter, double tol, kmq_init init,
                               uint64_t seed)
{
    kmq_kmeans_opts o;
    memset(&o, 0, sizeof o);
    o.k = k;
    o.restarts = restarts;
    o.max_iter = max_iter;
    o.tol = tol;
    o.init = init;
    o.seed = seed;
    return o;
}

static kmq_par par_of(int threads)
{
    kmq_par par;
    par.threads = threads;
    return par;
}

static double rel_diff(double a, double b)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return scale > 0 ? fabs(a - b) / scale : 0.0;
}

/* ---- 1. reference cross-check against per-pixel Lloyd ----------------------
 *
 * An independent Lloyd over every pixel of the photo: no histogram, no
 * weights, no chunks; the rule of kmeans.h written out plainly. Weighted
 * k-means over the distinct colours must give the same centres and the same
 * inertia (relative 1e-9: only the summation order of the inertia differs).
 */

typedef struct ref_result {
    double centers[3 * 64];
    uint64_t sizes[64];
    double inertia;
    int iterations;
    bool converged;
} ref_result;

static void reference_lloyd(const uint8_t *rgb, size_t npix, size_t k, const double *init,
                            int max_iter, double tol, ref_result *out)
{
    ck_assert_uint_le(k, 64);
    double cur[3 * 64], next[3 * 64];
    memcpy(cur, init, 3 * k * sizeof *cur);
    /* tol relative to the mean per-channel variance of the pixels. */
    double mean[3] = {0, 0, 0}, var[3] = {0, 0, 0};
    for (size_t i = 0; i < npix; i++)
        for (int d = 0; d < 3; d++)
            mean[d] += rgb[3 * i + d];
    for (int d = 0; d < 3; d++)
        mean[d] /= (double)npix;
    for (size_t i = 0; i < npix; i++)
        for (int d = 0; d < 3; d++)
            var[d] += (rgb[3 * i + d] - mean[d]) * (rgb[3 * i + d] - mean[d]);
    double tol_abs = tol * (var[0] + var[1] + var[2]) / (3.0 * (double)npix);

    out->converged = false;
    out->iterations = max_iter;
    for (int it = 1; it <= max_iter; it++) {
        uint64_t sum[64][3], count[64];
        memset(sum, 0, sizeof sum);
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < npix; i++) {
            double dist;
            size_t j = tu_nearest_centre(rgb + 3 * i, cur, k, &dist);
            for (int d = 0; d < 3; d++)
                sum[j][d] += rgb[3 * i + d];
            count[j]++;
        }
        double shift = 0;
        for (size_t j = 0; j < k; j++) {
            ck_assert_msg(count[j] > 0, "reference: cluster %zu empty; pick other centres", j);
            double s2 = 0;
            for (int d = 0; d < 3; d++) {
                next[3 * j + d] = (double)sum[j][d] / (double)count[j];
                s2 += (next[3 * j + d] - cur[3 * j + d]) * (next[3 * j + d] - cur[3 * j + d]);
            }
            shift += s2;
        }
        memcpy(cur, next, sizeof cur);
        if (shift <= tol_abs) {
            out->converged = true;
            out->iterations = it;
            break;
        }
    }
    memset(out->sizes, 0, sizeof out->sizes);
    out->inertia = 0;
    for (size_t i = 0; i < npix; i++) {
        double dist;
        size_t j = tu_nearest_centre(rgb + 3 * i, cur, k, &dist);
        out->sizes[j]++;
        out->inertia += dist;
    }
    memcpy(out->centers, cur, 3 * k * sizeof *cur);
}

/* k distinct pixel colours spread over the image. */
static void pick_initial(const uint8_t *rgb, size_t npix, size_t k, double *init)
{
    size_t got = 0;
    for (size_t step = 0; got < k; step++) {
        size_t i = (step * 7919 + npix / (2 * k)) % npix;
        bool seen = false;
        for (size_t j = 0; j < got; j++)
            seen |= init[3 * j] == rgb[3 * i] && init[3 * j + 1] == rgb[3 * i + 1] &&
                    init[3 * j + 2] == rgb[3 * i + 2];
        if (seen)
            continue;
        for (int d = 0; d < 3; d++)
            init[3 * got + d] = rgb[3 * i + d];
        got++;
    }
}

static void cross_check(size_t k, int max_iter, double tol, int threads)
{
    photo ph = load_photo("coffee.png");
    double init[3 * 64];
    pick_initial(ph.rgb, ph.npix, k, init);
    ref_result ref;
    reference_lloyd(ph.rgb, ph.npix, k, init, max_iter, tol, &ref);

    kmq_err err;
    kmq_err_clear(&err);
    kmq_par par = par_of(threads);
    kmq_fit fit = {0};
    ck_assert_int_eq(kmq_kmeans_lloyd(&ph.pts, k, init, max_iter, tol, &par, &fit, &err), KMQ_OK);
    ck_assert_uint_eq(fit.k_effective, k);
    ck_assert_int_eq(fit.iterations, ref.iterations);
    ck_assert_int_eq(fit.converged, ref.converged);
    for (size_t j = 0; j < 3 * k; j++)
        ck_assert_msg(rel_diff(fit.centers[j], ref.centers[j]) <= 1e-9,
                      "k = %zu centre value %zu: %.17g vs reference %.17g", k, j, fit.centers[j],
                      ref.centers[j]);
    for (size_t j = 0; j < k; j++)
        ck_assert_uint_eq(fit.sizes[j], ref.sizes[j]);
    ck_assert_msg(rel_diff(fit.inertia, ref.inertia) <= 1e-9, "inertia %.17g vs reference %.17g",
                  fit.inertia, ref.inertia);
    ck_assert_int_eq(fit.restarts, 1);
    ck_assert(fit.restart_inertia[0] == fit.inertia);
    kmq_fit_clear(&fit);
    free_photo(&ph);
}

START_TEST(reference_k8_converged)
{
    /* tol = 0: runs until the centres stop moving (or 60 iterations). */
    cross_check(8, 60, 0.0, 1);
}
END_TEST

START_TEST(reference_k16_tol)
{
    /* scikit-learn's default tol, parallel driver. */
    cross_check(16, 40, 1e-4, 2);
}
END_TEST

START_TEST(reference_k32_capped)
{
    /* Stops on max_iter, 3 threads. */
    cross_check(32, 8, 0.0, 3);
}
END_TEST

/* ---- 2. hand-checked small cases ------------------------------------------ */

static uint32_t rgb_key(unsigned r, unsigned g, unsigned b)
{
    return (uint32_t)(r << 16 | g << 8 | b);
}

START_TEST(k1_weighted_mean)
{
    /* (10,20,30) x1, (20,20,30) x3, (10,50,90) x2: mean = (90, 180, 300) / 6
     * = (15, 30, 50). Squared distances to it: 25+100+400 = 525 (x1),
     * 25+100+400 = 525 (x3), 25+400+1600 = 2025 (x2): inertia = 525 + 1575
     * + 4050 = 6150. */
    uint32_t keys[3] = {rgb_key(10, 20, 30), rgb_key(10, 50, 90), rgb_key(20, 20, 30)};
    uint64_t weights[3] = {1, 2, 3};
    kmq_points pts = {3, keys, weights};
    kmq_kmeans_opts o = opts_of(1, 3, 100, 1e-4, KMQ_INIT_KMEANSPP, 7);
    kmq_par par = par_of(2);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_fit fit = {0};
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &fit, &err), KMQ_OK);
    ck_assert_uint_eq(fit.k_effective, 1);
    ck_assert(fit.centers[0] == 15.0 && fit.centers[1] == 30.0 && fit.centers[2] == 50.0);
    ck_assert(fit.inertia == 6150.0);
    ck_assert_uint_eq(fit.sizes[0], 6);
    ck_assert(fit.converged);
    for (int r = 0; r < 3; r++)
        ck_assert(fit.restart_inertia[r] == 6150.0);
    ck_assert_int_eq(fit.best_restart, 0);
    kmq_fit_clear(&fit);
}
END_TEST

START_TEST(tiny_1d_by_hand)
{
    /* Four colours along R (G = B = 0): r = 0 (w 1), 2 (w 1), 10 (w 2),
     * 16 (w 1), starting from centres 0 and 16.
     * Iteration 1: 0, 2 -> c0 (|2-0| < |2-16|); 10 -> c1 (6 < 10); 16 -> c1.
     *   c0 = (0 + 2) / 2 = 1, c1 = (2*10 + 16) / 3 = 12.
     * Iteration 2: 0, 2 -> c0 (|2-1| = 1 < 10); 10 -> c1 (2 < 9); 16 -> c1.
     *   Same centres: shift 0 <= tol -> converged after 2 iterations.
     * Inertia: (0-1)^2 + (2-1)^2 + 2*(10-12)^2 + (16-12)^2 = 1+1+8+16 = 26,
     * sizes 2 and 3. 26 is also the optimum over all 2-partitions of the
     * line ({0},{2,10,10,16} gives 99; {0,2,10,10},{16} gives 83), so the
     * full fit must find it too. */
    uint32_t keys[4] = {rgb_key(0, 0, 0), rgb_key(2, 0, 0), rgb_key(10, 0, 0), rgb_key(16, 0, 0)};
    uint64_t weights[4] = {1, 1, 2, 1};
    kmq_points pts = {4, keys, weights};
    double init[6] = {0, 0, 0, 16, 0, 0};
    kmq_par par = par_of(1);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_fit fit = {0};
    ck_assert_int_eq(kmq_kmeans_lloyd(&pts, 2, init, 100, 0.0, &par, &fit, &err), KMQ_OK);
    ck_assert_int_eq(fit.iterations, 2);
    ck_assert(fit.converged);
    ck_assert(fit.centers[0] == 1.0 && fit.centers[3] == 12.0);
    ck_assert(fit.centers[1] == 0.0 && fit.centers[2] == 0.0 && fit.centers[4] == 0.0);
    ck_assert_uint_eq(fit.sizes[0], 2);
    ck_assert_uint_eq(fit.sizes[1], 3);
    ck_assert(fit.inertia == 26.0);
    kmq_fit_clear(&fit);

    kmq_kmeans_opts o = opts_of(2, 4, 100, 0.0, KMQ_INIT_KMEANSPP, 3);
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &fit, &err), KMQ_OK);
    ck_assert(fit.inertia == 26.0);
    kmq_fit_clear(&fit);
}
END_TEST

/* Four blobs around known centres with integer jitter in [-3, 3] per
 * channel and varying weights. k-means++ must find the four blobs: each
 * fitted centre is its blob's weighted mean (computed here) and each size
 * the blob's total weight. */
START_TEST(blobs_recovered)
{
    static const int centre[4][3] = {{40, 50, 60}, {200, 40, 40}, {60, 210, 90}, {90, 80, 220}};
    enum { PER = 7 * 7 * 7 };
    uint32_t keys[4 * PER];
    uint64_t weights[4 * PER];
    double mean[4][3] = {{0}};
    uint64_t total[4] = {0};
    size_t n = 0;
    /* Keys must be distinct; blobs are far apart, so they are. Keep them in
     * key order as a histogram would (not required, but realistic). */
    for (int b = 0; b < 4; b++)
        for (int dr = -3; dr <= 3; dr++)
            for (int dg = -3; dg <= 3; dg++)
                for (int db = -3; db <= 3; db++) {
                    unsigned r = (unsigned)(centre[b][0] + dr), g = (unsigned)(centre[b][1] + dg),
                             bl = (unsigned)(centre[b][2] + db);
                    uint64_t w = 1 + (uint64_t)((dr + 3) * 5 + (dg + 3) * 3 + (db + 3)) % 4;
                    keys[n] = rgb_key(r, g, bl);
                    weights[n] = w;
                    mean[b][0] += (double)(w * r);
                    mean[b][1] += (double)(w * g);
                    mean[b][2] += (double)(w * bl);
                    total[b] += w;
                    n++;
                }
    kmq_points pts = {n, keys, weights};
    kmq_kmeans_opts o = opts_of(4, 3, 100, 1e-4, KMQ_INIT_KMEANSPP, 42);
    kmq_par par = par_of(2);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_fit fit = {0};
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &fit, &err), KMQ_OK);
    ck_assert(fit.converged);
    for (int b = 0; b < 4; b++) {
        /* The fitted centre nearest to the true one. */
        size_t best = 0;
        double bd = INFINITY;
        for (size_t j = 0; j < 4; j++) {
            double d = 0;
            for (int c = 0; c < 3; c++)
                d += (fit.centers[3 * j + c] - centre[b][c]) *
                     (fit.centers[3 * j + c] - centre[b][c]);
            if (d < bd) {
                bd = d;
                best = j;
            }
        }
        ck_assert_double_le(bd, 1.0);
        for (int c = 0; c < 3; c++)
            ck_assert_double_eq_tol(fit.centers[3 * best + c], mean[b][c] / (double)total[b],
                                    1e-12);
        ck_assert_uint_eq(fit.sizes[best], total[b]);
    }
    kmq_fit_clear(&fit);
}
END_TEST

START_TEST(k_at_least_n_is_exact)
{
    uint32_t keys[5] = {rgb_key(1, 2, 3), rgb_key(9, 9, 9), rgb_key(10, 0, 255), rgb_key(128, 7, 7),
                        rgb_key(255, 255, 255)};
    uint64_t weights[5] = {3, 1, 4, 1, 5};
    kmq_points pts = {5, keys, weights};
    kmq_par par = par_of(3);
    for (size_t k = 5; k <= 8; k += 3) {
        kmq_kmeans_opts o = opts_of(k, 2, 10, 1e-4, KMQ_INIT_RANDOM, 1);
        kmq_err err;
        kmq_err_clear(&err);
        kmq_fit fit = {0};
        ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &fit, &err), KMQ_OK);
        ck_assert_uint_eq(fit.k, k);
        ck_assert_uint_eq(fit.k_effective, 5);
        ck_assert(fit.inertia == 0.0);
        ck_assert_int_eq(fit.iterations, 0);
        ck_assert(fit.converged);
        ck_assert_int_eq(fit.restarts, 2);
        ck_assert(fit.restart_inertia[0] == 0.0 && fit.restart_inertia[1] == 0.0);
        for (size_t j = 0; j < 5; j++) {
            ck_assert(fit.centers[3 * j] == (double)(keys[j] >> 16));
            ck_assert(fit.centers[3 * j + 1] == (double)((keys[j] >> 8) & 0xff));
            ck_assert(fit.centers[3 * j + 2] == (double)(keys[j] & 0xff));
            ck_assert_uint_eq(fit.sizes[j], weights[j]);
            ck_assert_uint_eq(fit.labels[j], j);
        }
        kmq_fit_clear(&fit);
    }
}
END_TEST

/* ---- empty clusters ------------------------------------------------------- */

START_TEST(empty_cluster_reseeded)
{
    /* Colours r = 0, 1, 2, 100, 101 along R, weight 1 each; the third
     * initial centre (255,255,255) attracts nothing.
     * It. 1: centres 0, 1, far. 0 -> c0; 1, 2, 100, 101 -> c1; c2 empty.
     *   The point farthest from its centre is 101 (100^2): it moves to c2.
     *   c0 = 0, c1 = (1 + 2 + 100) / 3, c2 = 101.
     * It. 2: 0, 1, 2 -> c0 (2 is 2 from c0, 32.3 from c1); 100, 101 -> c2.
     *   c1 is empty: farthest from its centre is 2 (distance^2 4 to c0):
     *   it moves to c1. c0 = 0.5, c1 = 2, c2 = 100.5.
     * It. 3: 0, 1 -> c0; 2 -> c1; 100, 101 -> c2: no change, converged.
     * Inertia: 4 * 0.5^2 = 1; sizes 2, 1, 2. */
    uint32_t keys[5] = {rgb_key(0, 0, 0), rgb_key(1, 0, 0), rgb_key(2, 0, 0), rgb_key(100, 0, 0),
                        rgb_key(101, 0, 0)};
    uint64_t weights[5] = {1, 1, 1, 1, 1};
    kmq_points pts = {5, keys, weights};
    double init[9] = {0, 0, 0, 1, 0, 0, 255, 255, 255};
    kmq_par par = par_of(1);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_fit fit = {0};
    ck_assert_int_eq(kmq_kmeans_lloyd(&pts, 3, init, 50, 0.0, &par, &fit, &err), KMQ_OK);
    ck_assert_int_eq(fit.iterations, 3);
    ck_assert(fit.converged);
    ck_assert(fit.centers[0] == 0.5 && fit.centers[3] == 2.0 && fit.centers[6] == 100.5);
    ck_assert_uint_eq(fit.sizes[0], 2);
    ck_assert_uint_eq(fit.sizes[1], 1);
    ck_assert_uint_eq(fit.sizes[2], 2);
    ck_assert(fit.inertia == 1.0);
    kmq_fit_clear(&fit);

    /* Two empty clusters at once take the two farthest points, in cluster
     * order: from centres 0, far, far every colour goes to c0; 101 (101^2)
     * then 100 (100^2) are farthest, so c1 = 101, c2 = 100, c0 = 1.
     * It. 2 changes nothing: converged, inertia 1 + 0 + 1 = 2. */
    double init2[9] = {0, 0, 0, 255, 255, 255, 250, 250, 250};
    ck_assert_int_eq(kmq_kmeans_lloyd(&pts, 3, init2, 50, 0.0, &par, &fit, &err), KMQ_OK);
    ck_assert_int_eq(fit.iterations, 2);
    ck_assert(fit.centers[0] == 1.0 && fit.centers[3] == 101.0 && fit.centers[6] == 100.0);
    ck_assert_uint_eq(fit.sizes[0], 3);
    ck_assert(fit.inertia == 2.0);
    kmq_fit_clear(&fit);

    /* Ties in distance go to the lowest index: 0 and 20 are both 10 from
     * the centre 10; the empty cluster takes 0. */
    uint32_t keys3[3] = {rgb_key(0, 0, 0), rgb_key(10, 0, 0), rgb_key(20, 0, 0)};
    kmq_points pts3 = {3, keys3, weights};
    double init3[6] = {10, 0, 0, 255, 255, 255};
    ck_assert_int_eq(kmq_kmeans_lloyd(&pts3, 2, init3, 1, 0.0, &par, &fit, &err), KMQ_OK);
    ck_assert(fit.centers[0] == 15.0 && fit.centers[3] == 0.0);
    kmq_fit_clear(&fit);
}
END_TEST

/* ---- init ------------------------------------------------------------------ */

START_TEST(init_draws_distinct_points)
{
    photo ph = load_photo("coffee.png");
    kmq_par par = par_of(2);
    for (int m = 0; m < 2; m++) {
        kmq_init init = m == 0 ? KMQ_INIT_KMEANSPP : KMQ_INIT_RANDOM;
        double a[3 * 32], b[3 * 32], c[3 * 32];
        kmq_err err;
        kmq_err_clear(&err);
        ck_assert_int_eq(kmq_kmeans_init_centers(&ph.pts, 32, init, 5, 0, &par, a, &err), KMQ_OK);
        ck_assert_int_eq(kmq_kmeans_init_centers(&ph.pts, 32, init, 5, 0, &par, b, &err), KMQ_OK);
        ck_assert_int_eq(kmq_kmeans_init_centers(&ph.pts, 32, init, 5, 1, &par, c, &err), KMQ_OK);
        ck_assert_mem_eq(a, b, sizeof a);       /* same stream, same centres */
        ck_assert(memcmp(a, c, sizeof a) != 0); /* restart 1 draws differently */
        for (size_t j = 0; j < 32; j++) {
            uint32_t key =
                (uint32_t)a[3 * j] << 16 | (uint32_t)a[3 * j + 1] << 8 | (uint32_t)a[3 * j + 2];
            ck_assert_uint_ne(kmq_hist_index(ph.hist, key), UINT32_MAX);
            for (size_t i = 0; i < j; i++)
                ck_assert(memcmp(a + 3 * i, a + 3 * j, 3 * sizeof *a) != 0);
        }
    }
    free_photo(&ph);
}
END_TEST

/* ---- 3. thread invariance ------------------------------------------------ */

static void fit_ok(const kmq_points *pts, const kmq_kmeans_opts *o, int threads, kmq_fit *fit)
{
    kmq_par par = par_of(threads);
    kmq_err err;
    kmq_err_clear(&err);
    memset(fit, 0, sizeof *fit);
    ck_assert_msg(kmq_kmeans_fit(pts, o, &par, fit, &err) == KMQ_OK, "fit: %s", err.msg);
}

static void assert_same_fit(const kmq_fit *a, const kmq_fit *b)
{
    ck_assert_uint_eq(a->k_effective, b->k_effective);
    ck_assert_mem_eq(a->centers, b->centers, 3 * a->k_effective * sizeof *a->centers);
    ck_assert_mem_eq(a->sizes, b->sizes, a->k_effective * sizeof *a->sizes);
    ck_assert_mem_eq(&a->inertia, &b->inertia, sizeof a->inertia);
    ck_assert_int_eq(a->restarts, b->restarts);
    ck_assert_mem_eq(a->restart_inertia, b->restart_inertia,
                     (size_t)a->restarts * sizeof *a->restart_inertia);
    ck_assert_int_eq(a->iterations, b->iterations);
    ck_assert_int_eq(a->converged, b->converged);
    ck_assert_int_eq(a->best_restart, b->best_restart);
}

static void thread_invariance(const kmq_points *pts, const kmq_kmeans_opts *o)
{
    static const int threads[] = {2, 3, 7};
    kmq_fit ref;
    fit_ok(pts, o, 1, &ref);
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        kmq_fit fit;
        fit_ok(pts, o, threads[t], &fit);
        assert_same_fit(&ref, &fit);
        ck_assert_mem_eq(ref.labels, fit.labels, pts->n);
        kmq_fit_clear(&fit);
    }
    kmq_fit_clear(&ref);
}

/* Enough points to split (all of coffee.png's colours) for k = 2, 16, 64:
 * with 2 restarts at k = 16, 2 threads run them side by side and 3 threads
 * run each one chunk-parallel; 1 restart is chunk-parallel at every count.
 * For k = 256 a five-chunk slice (chunk-parallel at 3 threads, a fifth of
 * the work), started by `random`. */
START_TEST(threads_many_points)
{
    photo ph = load_photo("coffee.png");
    ck_assert(kmq__restart_parallel(ph.pts.n, 2, 2));
    ck_assert(!kmq__restart_parallel(ph.pts.n, 2, 3));
    ck_assert(!kmq__restart_parallel(5 * KMQ_CHUNK - 123, 2, 3));
    kmq_kmeans_opts o = opts_of(2, 2, 50, 1e-4, KMQ_INIT_KMEANSPP, 11);
    thread_invariance(&ph.pts, &o);
    o = opts_of(16, 2, 10, 1e-4, KMQ_INIT_KMEANSPP, 11);
    thread_invariance(&ph.pts, &o);
    o = opts_of(64, 1, 5, 1e-4, KMQ_INIT_KMEANSPP, 11);
    thread_invariance(&ph.pts, &o);
    o = opts_of(16, 2, 6, 1e-4, KMQ_INIT_RANDOM, 12);
    thread_invariance(&ph.pts, &o);
    kmq_points slice = ph.pts;
    slice.n = 5 * KMQ_CHUNK - 123;
    slice.keys += 7000;
    slice.weights += 7000;
    o = opts_of(256, 2, 4, 1e-4, KMQ_INIT_RANDOM, 13);
    thread_invariance(&slice, &o);
    free_photo(&ph);
}
END_TEST

/* Too few colours to give 3 or 7 threads a chunk each: restarts run in
 * parallel, each one serially; with 1 thread the chunk driver runs. Same
 * bits either way. */
START_TEST(threads_few_points)
{
    photo ph = load_photo("coffee.png");
    kmq_points sub = ph.pts;
    sub.n = 2 * KMQ_CHUNK + 500; /* several chunks, the last one partial */
    sub.keys += 2000;
    sub.weights += 2000;
    for (int t = 2; t <= 7; t++)
        ck_assert(kmq__restart_parallel(sub.n, 2, t));
    static const size_t ks[] = {2, 16, 64, 256};
    static const int restarts[] = {4, 3, 3, 2};
    static const int iters[] = {30, 20, 8, 3};
    for (size_t i = 0; i < 4; i++) {
        kmq_kmeans_opts o = opts_of(ks[i], restarts[i], iters[i], 1e-4, KMQ_INIT_KMEANSPP, 21);
        thread_invariance(&sub, &o);
    }
    kmq_kmeans_opts o = opts_of(64, 4, 8, 1e-4, KMQ_INIT_RANDOM, 22);
    thread_invariance(&sub, &o);
    free_photo(&ph);
}
END_TEST

/* Many points (the colours of coffee.png and astronaut.png together):
 * with 2 restarts on 2 threads whole restarts run side by side, on 3 and
 * 7 threads each one runs chunk-parallel. Same bits as 1 thread, distance
 * counts and iterations included. */
START_TEST(threads_many_points_side_by_side)
{
    photo a = load_photo("coffee.png"), b = load_photo("astronaut.png");
    kmq_err err;
    kmq_err_clear(&err);
    kmq_hist *both = NULL;
    ck_assert_int_eq(kmq_hist_new(&both, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_add_rgb(both, a.rgb, a.npix, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_add_rgb(both, b.rgb, b.npix, &err), KMQ_OK);
    ck_assert_int_eq(kmq_hist_finish(both, &err), KMQ_OK);
    kmq_points pts = {
        .n = kmq_hist_size(both), .keys = kmq_hist_keys(both), .weights = kmq_hist_weights(both)};
    ck_assert(pts.n > 32 * KMQ_CHUNK);
    ck_assert(kmq__restart_parallel(pts.n, 2, 2));
    ck_assert(!kmq__restart_parallel(pts.n, 2, 3) && !kmq__restart_parallel(pts.n, 2, 7));
    static const size_t ks[] = {16, 256};
    static const int iters[] = {20, 3};
    for (size_t i = 0; i < 2; i++) {
        kmq_kmeans_opts o = opts_of(ks[i], 2, iters[i], 1e-4, KMQ_INIT_KMEANSPP, 31);
        thread_invariance(&pts, &o);
        kmq_fit one, two;
        fit_ok(&pts, &o, 1, &one);
        fit_ok(&pts, &o, 2, &two);
        ck_assert_uint_eq(one.distance_evals, two.distance_evals);
        ck_assert_uint_eq(one.iterations_total, two.iterations_total);
        kmq_fit_clear(&one);
        kmq_fit_clear(&two);
    }
    kmq_hist_free(both);
    free_photo(&a);
    free_photo(&b);
}
END_TEST

/* The driver rule: whole restarts side by side on 2 threads when their
 * rounds keep >= 90% of them busy, or on any number when some thread would
 * get no chunk of a chunk-parallel pass; never past the workspace budget
 * (1 GiB at 28 bytes a colour and run). */
START_TEST(restart_parallel_rule)
{
    const size_t china = 96615, big = 362070, all = (size_t)1 << 24;
    ck_assert(kmq__restart_parallel(china, 10, 2));   /* 5 rounds, all busy */
    ck_assert(kmq__restart_parallel(big, 10, 2));     /* 5 rounds, all busy */
    ck_assert(!kmq__restart_parallel(china, 3, 2));   /* 2 rounds, 3 of 4 slots */
    ck_assert(!kmq__restart_parallel(china, 10, 5));  /* all busy, but 5 threads */
    ck_assert(!kmq__restart_parallel(big, 10, 10));   /* all busy, but 10 threads */
    ck_assert(!kmq__restart_parallel(china, 10, 16)); /* 10 of 16 */
    ck_assert(!kmq__restart_parallel(china, 10, 23)); /* 23.6 chunks for 23 threads */
    ck_assert(kmq__restart_parallel(china, 10, 24));  /* 23.6 chunks for 24 threads */
    ck_assert(kmq__restart_parallel(1000, 3, 2));
    ck_assert(kmq__restart_parallel(3 * KMQ_CHUNK - 1, 2, 3));
    ck_assert(!kmq__restart_parallel(3 * KMQ_CHUNK, 2, 3));
    ck_assert(!kmq__restart_parallel(china, 1, 2));
    ck_assert(!kmq__restart_parallel(china, 10, 1));
    ck_assert(!kmq__restart_parallel(1000, 1, 8));
    ck_assert(kmq__restart_parallel(all, 10, 2));       /* 2 runs: 0.94 GB */
    ck_assert(kmq__restart_parallel(19173961, 10, 2));  /* 2 runs: just within 1 GiB */
    ck_assert(!kmq__restart_parallel(19173962, 10, 2)); /* 2 runs: just past it */
    ck_assert(!kmq__restart_parallel(600000, 64, 256)); /* 64 runs: 1.08 GB */
    ck_assert(kmq__restart_parallel(500000, 64, 256));  /* 64 runs: 0.90 GB */
}
END_TEST

START_TEST(best_restart_is_lowest_inertia)
{
    photo ph = load_photo("coffee.png");
    kmq_points sub = ph.pts;
    sub.n = 5000;
    kmq_kmeans_opts o = opts_of(8, 6, 30, 1e-4, KMQ_INIT_RANDOM, 5);
    kmq_fit fit;
    fit_ok(&sub, &o, 2, &fit);
    ck_assert_int_eq(fit.restarts, 6);
    for (int r = 0; r < fit.restarts; r++) {
        if (r < fit.best_restart)
            ck_assert(fit.restart_inertia[r] > fit.inertia);
        else
            ck_assert(fit.restart_inertia[r] >= fit.inertia);
    }
    ck_assert(fit.restart_inertia[fit.best_restart] == fit.inertia);
    uint64_t total = 0;
    for (size_t j = 0; j < fit.k_effective; j++)
        total += fit.sizes[j];
    uint64_t want = 0;
    for (size_t i = 0; i < sub.n; i++)
        want += sub.weights[i];
    ck_assert_uint_eq(total, want);
    kmq_fit_clear(&fit);
    free_photo(&ph);
}
END_TEST

/* ---- assignment ------------------------------------------------------------ */

START_TEST(assign_matches_brute_force)
{
    photo ph = load_photo("coffee.png");
    kmq_kmeans_opts o = opts_of(12, 2, 15, 1e-4, KMQ_INIT_KMEANSPP, 9);
    kmq_fit fit;
    fit_ok(&ph.pts, &o, 2, &fit);
    uint8_t *labels = malloc(ph.pts.n), *labels1 = malloc(ph.pts.n);
    ck_assert(labels && labels1);
    for (int threads = 1; threads <= 3; threads++) {
        kmq_par par = par_of(threads);
        kmq_err err;
        kmq_err_clear(&err);
        double inertia = -1;
        ck_assert_int_eq(kmq_kmeans_assign(&ph.pts, fit.centers, 12, &par, labels, &inertia, &err),
                         KMQ_OK);
        /* Same kernel and fold as the fit's final assignment: same bits. */
        ck_assert_mem_eq(&inertia, &fit.inertia, sizeof inertia);
        if (threads == 1)
            memcpy(labels1, labels, ph.pts.n);
        else
            ck_assert_mem_eq(labels, labels1, ph.pts.n);
    }
    for (size_t i = 0; i < ph.pts.n; i++) {
        uint32_t key = ph.pts.keys[i];
        uint8_t px[3] = {(uint8_t)(key >> 16), (uint8_t)(key >> 8), (uint8_t)key};
        double dist;
        ck_assert_uint_eq(labels1[i], tu_nearest_centre(px, fit.centers, 12, &dist));
    }
    free(labels1);
    free(labels);
    kmq_fit_clear(&fit);
    free_photo(&ph);
}
END_TEST

/* The fit's labels are those kmq_kmeans_assign gives for its centres, and
 * so is its inertia, at k up to 256 (Lloyd runs the filtered float32
 * scan, the assignment the same) and on both restart drivers (2 threads: runs side by side; 1
 * and 3: one after the other). Some winning runs are not the last one, so
 * their labels must have outlived the runs that came after. */
START_TEST(fit_labels_are_assign_labels)
{
    photo ph = load_photo("coffee.png");
    kmq_err err;
    kmq_err_clear(&err);
    uint8_t *labels = malloc(ph.pts.n);
    ck_assert_ptr_nonnull(labels);
    static const size_t ks[] = {2, 16, 176, 256};
    static const int iters[] = {50, 30, 6, 4};
    int not_last = 0;
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        for (int threads = 1; threads <= 3; threads++) {
            kmq_par par = par_of(threads);
            kmq_kmeans_opts o = opts_of(ks[i], 4, iters[i], 1e-4, KMQ_INIT_KMEANSPP, 23);
            kmq_fit fit;
            fit_ok(&ph.pts, &o, threads, &fit);
            ck_assert_int_eq(fit.runs_side_by_side, threads == 2);
            double inertia = -1;
            ck_assert_int_eq(kmq_kmeans_assign(&ph.pts, fit.centers, fit.k_effective, &par, labels,
                                               &inertia, &err),
                             KMQ_OK);
            ck_assert_mem_eq(fit.labels, labels, ph.pts.n);
            ck_assert_mem_eq(&fit.inertia, &inertia, sizeof inertia);
            not_last += fit.best_restart != fit.restarts - 1;
            kmq_fit_clear(&fit);
        }
    }
    ck_assert_int_gt(not_last, 0);
    free(labels);
    free_photo(&ph);
}
END_TEST

/* ---- prepared points ------------------------------------------------------- */

/* One prepared handle serves fits for several k (both sides of the bounds
 * threshold, in an order that revisits k = 2 after k = 256), on both
 * restart drivers, and assignments: every result is the one of a fit or
 * assignment that prepares its own points. */
START_TEST(prepared_reused)
{
    photo ph = load_photo("coffee.png");
    kmq_err err;
    kmq_err_clear(&err);
    kmq_kmeans_prepared *prep = NULL;
    ck_assert_int_eq(kmq_kmeans_prepared_new(&ph.pts, NULL, &prep, &err), KMQ_OK);
    uint8_t *fresh = malloc(ph.pts.n), *reused = malloc(ph.pts.n);
    ck_assert(fresh && reused);
    static const size_t ks[] = {2, 16, 176, 256, 2};
    static const int iters[] = {50, 20, 4, 3, 50};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        for (int threads = 1; threads <= 3; threads++) {
            kmq_par par = par_of(threads);
            kmq_kmeans_opts o = opts_of(ks[i], 2, iters[i], 1e-4, KMQ_INIT_KMEANSPP, 17);
            kmq_fit a = {0}, b = {0};
            ck_assert_int_eq(kmq_kmeans_fit(&ph.pts, &o, &par, &a, &err), KMQ_OK);
            ck_assert_int_eq(kmq_kmeans_fit_prepared(prep, &o, &par, &b, &err), KMQ_OK);
            assert_same_fit(&a, &b);
            ck_assert_mem_eq(a.labels, b.labels, ph.pts.n);
            ck_assert_uint_eq(a.distance_evals, b.distance_evals);
            double ia = -1, ib = -2;
            ck_assert_int_eq(
                kmq_kmeans_assign(&ph.pts, a.centers, a.k_effective, &par, fresh, &ia, &err),
                KMQ_OK);
            ck_assert_int_eq(
                kmq_kmeans_assign_prepared(prep, a.centers, a.k_effective, &par, reused, &ib, &err),
                KMQ_OK);
            ck_assert_mem_eq(fresh, reused, ph.pts.n);
            ck_assert_mem_eq(&ia, &ib, sizeof ia);
            kmq_fit_clear(&a);
            kmq_fit_clear(&b);
        }
    }
    free(fresh);
    free(reused);
    kmq_kmeans_prepared_free(prep);
    free_photo(&ph);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

static void expect_arg(kmq_status st, const kmq_err *err, const char *needle)
{
    ck_assert_int_eq(st, KMQ_E_ARG);
    ck_assert_int_eq(err->code, KMQ_E_ARG);
    ck_assert_msg(strstr(err->msg, needle) != NULL, "message '%s' lacks '%s'", err->msg, needle);
}

START_TEST(bad_arguments)
{
    uint32_t keys[3] = {1, 2, 3};
    uint64_t weights[3] = {1, 1, 1};
    kmq_points pts = {3, keys, weights};
    kmq_par par = par_of(1);
    kmq_fit fit = {0};
    kmq_err err;
    struct {
        kmq_kmeans_opts o;
        const char *needle;
    } bad[] = {
        {opts_of(0, 1, 10, 0, KMQ_INIT_KMEANSPP, 0), "k = 0"},
        {opts_of(257, 1, 10, 0, KMQ_INIT_KMEANSPP, 0), "k = 257"},
        {opts_of(2, 0, 10, 0, KMQ_INIT_KMEANSPP, 0), "restarts = 0"},
        {opts_of(2, 1, 0, 0, KMQ_INIT_KMEANSPP, 0), "max_iter = 0"},
        {opts_of(2, 1, 10, -1, KMQ_INIT_KMEANSPP, 0), "tol"},
        {opts_of(2, 1, 10, NAN, KMQ_INIT_KMEANSPP, 0), "tol"},
        {opts_of(2, 1, 10, 0, (kmq_init)9, 0), "init"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kmq_err_clear(&err);
        expect_arg(kmq_kmeans_fit(&pts, &bad[i].o, &par, &fit, &err), &err, bad[i].needle);
        ck_assert_ptr_null(fit.centers);
    }
    kmq_kmeans_opts o = opts_of(2, 1, 10, 0, KMQ_INIT_KMEANSPP, 0);
    kmq_points empty = {0, keys, weights};
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_fit(&empty, &o, &par, &fit, &err), &err, "at least one colour");
    uint64_t zero_w[3] = {1, 0, 1};
    kmq_points zero = {3, keys, zero_w};
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_fit(&zero, &o, &par, &fit, &err), &err, "weight 0");
    uint32_t wide[3] = {1, 0x1000000, 3};
    kmq_points wide_pts = {3, wide, weights};
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_fit(&wide_pts, &o, &par, &fit, &err), &err, "24 bits");
    /* A colour twice: k = 3 would need a third distinct colour to draw. */
    uint32_t twice[3] = {keys[0], keys[1], keys[0]};
    kmq_points twice_pts = {3, twice, weights};
    kmq_kmeans_opts o3 = opts_of(3, 1, 10, 0, KMQ_INIT_KMEANSPP, 0);
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_fit(&twice_pts, &o3, &par, &fit, &err), &err, "appears twice");
    kmq_par none = par_of(0);
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_fit(&pts, &o, &none, &fit, &err), &err, "thread");
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_fit_prepared(NULL, &o, &par, &fit, &err), &err, "prepared points");
    kmq_kmeans_prepared *prep = NULL;
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_prepared_new(&twice_pts, NULL, &prep, &err), &err, "appears twice");
    ck_assert_ptr_null(prep);
    double init[12] = {0};
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_lloyd(&pts, 4, init, 10, 0, &par, &fit, &err), &err, "exceeds");
    init[4] = NAN;
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_lloyd(&pts, 2, init, 10, 0, &par, &fit, &err), &err, "not finite");
    init[4] = 255.5;
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_lloyd(&pts, 2, init, 10, 0, &par, &fit, &err), &err, "RGB cube");
    uint8_t lab[3];
    double inertia;
    init[4] = -1.0;
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_assign(&pts, init, 2, &par, lab, &inertia, &err), &err, "RGB cube");
    double centers[12];
    kmq_err_clear(&err);
    expect_arg(kmq_kmeans_init_centers(&pts, 4, KMQ_INIT_RANDOM, 0, 0, &par, centers, &err), &err,
               "k = 4");
    ck_assert_ptr_null(fit.centers);
}
END_TEST

/* ---- 7. allocation-failure sweep ------------------------------------------- */

static void sweep_fit(const kmq_points *pts, const kmq_kmeans_opts *o, int threads)
{
    kmq_par par = par_of(threads);
    int failures = 0;
    for (long nth = 0;; nth++) {
        kmq_err err;
        kmq_err_clear(&err);
        kmq_fit fit = {0};
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_kmeans_fit(pts, o, &par, &fit, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            ck_assert_ptr_nonnull(fit.centers);
            kmq_fit_clear(&fit);
            break;
        }
        ck_assert_int_eq(st, KMQ_E_NOMEM);
        ck_assert_int_eq(err.code, KMQ_E_NOMEM);
        ck_assert(err.msg[0] != '\0');
        ck_assert_ptr_null(fit.centers); /* out untouched on failure */
        failures++;
        ck_assert_int_lt(failures, 500);
    }
    ck_assert_int_ge(failures, 5);
}

START_TEST(alloc_failure_sweep)
{
    photo ph = load_photo("coffee.png");
    kmq_points sub = ph.pts;
    /* Few points, restarts in parallel: one workspace per thread. */
    sub.n = 3000;
    kmq_kmeans_opts o = opts_of(8, 3, 5, 1e-4, KMQ_INIT_KMEANSPP, 1);
    sweep_fit(&sub, &o, 3);
    o.init = KMQ_INIT_RANDOM;
    sweep_fit(&sub, &o, 3);
    /* Many points, chunks in parallel. */
    sub.n = 5 * KMQ_CHUNK;
    o.init = KMQ_INIT_KMEANSPP;
    sweep_fit(&sub, &o, 2);
    /* k >= n. */
    sub.n = 6;
    sweep_fit(&sub, &o, 2);

    /* The other drivers. */
    sub.n = 3000;
    double init[3 * 8];
    kmq_par par = par_of(2);
    for (long nth = 0;; nth++) {
        kmq_err err;
        kmq_err_clear(&err);
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_kmeans_init_centers(&sub, 8, KMQ_INIT_KMEANSPP, 1, 0, &par, init, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK)
            break;
        ck_assert_int_eq(st, KMQ_E_NOMEM);
    }
    for (long nth = 0;; nth++) {
        kmq_err err;
        kmq_err_clear(&err);
        kmq_fit fit = {0};
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_kmeans_lloyd(&sub, 8, init, 5, 0.0, &par, &fit, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            kmq_fit_clear(&fit);
            break;
        }
        ck_assert_int_eq(st, KMQ_E_NOMEM);
        ck_assert_ptr_null(fit.centers);
    }
    uint8_t labels[3000];
    for (long nth = 0;; nth++) {
        kmq_err err;
        kmq_err_clear(&err);
        double inertia;
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_kmeans_assign(&sub, init, 8, &par, labels, &inertia, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK)
            break;
        ck_assert_int_eq(st, KMQ_E_NOMEM);
    }
    free_photo(&ph);
}
END_TEST

/* ---- 8. distance pruning = plain Lloyd, bit for bit ---------------------- */

/* ---- reference k-means++ ------------------------------------------------ */

/* Per block of KMQ__BLOCK points the sum of w_i m_i in point order, per
 * chunk of KMQ_CHUNK points its block sums in order (kmeans_init.c,
 * "Sums"); returns the chunk sums added in order. */
static double ref_sums(const kmq_points *pts, const double *m, double *block_sums,
                       double *chunk_sums)
{
    const size_t n = pts->n, nb = (n + KMQ__BLOCK - 1) / KMQ__BLOCK;
    for (size_t blk = 0; blk < nb; blk++) {
        double s = 0.0;
        for (size_t i = blk * KMQ__BLOCK; i < n && i < (blk + 1) * KMQ__BLOCK; i++)
            s += (double)pts->weights[i] * m[i];
        block_sums[blk] = s;
    }
    double total = 0.0;
    for (size_t ch = 0; ch * KMQ_CHUNK < n; ch++) {
        double s = 0.0;
        for (size_t blk = ch * KMQ__BLOCKS_PER_CHUNK;
             blk < nb && blk < (ch + 1) * KMQ__BLOCKS_PER_CHUNK; blk++)
            s += block_sums[blk];
        chunk_sums[ch] = s;
        total += s;
    }
    return total;
}

/* The last point of [lo, hi) with w D^2 > 0, or SIZE_MAX. */
static size_t ref_last_positive(const kmq_points *pts, const double *d2, size_t lo, size_t hi)
{
    for (size_t i = hi; i > lo; i--)
        if ((double)pts->weights[i - 1] * d2[i - 1] > 0.0)
            return i - 1;
    return SIZE_MAX;
}

/* The draw of kmeans_init.c's "Sums": the chunk whose running sum passes
 * v, the block inside it, the point inside the block; past the end (by
 * rounding), the last point with positive mass. */
static size_t ref_draw(const kmq_points *pts, const double *d2, const double *block_sums,
                       const double *chunk_sums, double v)
{
    const size_t n = pts->n, nc = (n + KMQ_CHUNK - 1) / KMQ_CHUNK;
    double acc = 0.0;
    size_t ch, last = 0;
    for (ch = 0; ch < nc; ch++) {
        if (chunk_sums[ch] > 0.0)
            last = ch;
        if (acc + chunk_sums[ch] > v)
            break;
        acc += chunk_sums[ch];
    }
    const bool past_end = ch == nc;
    if (past_end)
        ch = last;
    const size_t lo = ch * KMQ_CHUNK, hi = lo + KMQ_CHUNK < n ? lo + KMQ_CHUNK : n;
    if (past_end)
        return ref_last_positive(pts, d2, lo, hi);
    double local = v - acc, bacc = 0.0;
    for (size_t b = lo; b < hi; b += KMQ__BLOCK) {
        double bs = block_sums[b / KMQ__BLOCK];
        if (bacc + bs > local) {
            size_t bhi = b + KMQ__BLOCK < hi ? b + KMQ__BLOCK : hi;
            double target = local - bacc, s = 0.0;
            for (size_t i = b; i < bhi; i++) {
                s += (double)pts->weights[i] * d2[i];
                if (s > target)
                    return i;
            }
            size_t i = ref_last_positive(pts, d2, b, bhi);
            if (i != SIZE_MAX)
                return i;
            break;
        }
        bacc += bs;
    }
    return ref_last_positive(pts, d2, lo, hi);
}

static double ref_dist2(const kmq_points *pts, size_t i, const double *c)
{
    uint32_t key = pts->keys[i];
    double dr = (double)(key >> 16) - c[0], dg = (double)(key >> 8 & 255) - c[1],
           db = (double)(key & 255) - c[2];
    return dr * dr + dg * dg + db * db;
}

static void ref_set_center(const kmq_points *pts, size_t i, double *c)
{
    c[0] = pts->keys[i] >> 16;
    c[1] = pts->keys[i] >> 8 & 255;
    c[2] = pts->keys[i] & 255;
}

/* Greedy k-means++ as kmeans_init.c's header describes it, written
 * plainly: every distance computed, D^2 updated as soon as a centre is
 * chosen, scalar loops, one thread. The library's pruning, deferred
 * updates, vector kernels and threads must not change a bit of it. */
static void ref_kmeanspp(const kmq_points *pts, size_t k, uint64_t seed, int restart,
                         double *centers)
{
    const size_t n = pts->n, trials = 2 + (size_t)floor(log((double)k));
    double *d2 = malloc(n * sizeof *d2), *m = malloc(n * sizeof *m);
    double *block_sums = malloc((n / KMQ__BLOCK + 1) * sizeof *block_sums);
    double *chunk_sums = malloc((n / KMQ_CHUNK + 1) * sizeof *chunk_sums);
    ck_assert(d2 && m && block_sums && chunk_sums);
    kmq_rng rng;
    kmq_rng_init(&rng, seed, k, (uint64_t)restart);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += pts->weights[i];
    uint64_t v = kmq_rng_below(&rng, total);
    size_t first = 0;
    while (v >= pts->weights[first])
        v -= pts->weights[first++];
    ref_set_center(pts, first, centers);
    for (size_t i = 0; i < n; i++)
        d2[i] = ref_dist2(pts, i, centers);
    for (size_t c = 1; c < k; c++) {
        double phi = ref_sums(pts, d2, block_sums, chunk_sums);
        size_t cand[8];
        ck_assert_uint_le(trials, 8);
        for (size_t t = 0; t < trials; t++)
            cand[t] = ref_draw(pts, d2, block_sums, chunk_sums, kmq_rng_uniform(&rng) * phi);
        size_t best = 0;
        double best_pot = 0.0;
        for (size_t t = 0; t < trials; t++) {
            double cc[3];
            ref_set_center(pts, cand[t], cc);
            for (size_t i = 0; i < n; i++) {
                double d = ref_dist2(pts, i, cc);
                m[i] = d < d2[i] ? d : d2[i];
            }
            double pot = ref_sums(pts, m, block_sums, chunk_sums);
            if (t == 0 || pot < best_pot) {
                best = t;
                best_pot = pot;
            }
        }
        ref_set_center(pts, cand[best], centers + 3 * c);
        for (size_t i = 0; i < n; i++) {
            double d = ref_dist2(pts, i, centers + 3 * c);
            d2[i] = d < d2[i] ? d : d2[i];
        }
    }
    free(d2);
    free(m);
    free(block_sums);
    free(chunk_sums);
}

/* k-means++: the plain implementation (serially), the pruned one (on
 * `threads`, its budget) and the reference above draw the same centres. */
static void same_init(const kmq_points *pts, size_t k, kmq_init init, int restart, int threads,
                      double *centers)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_par one = par_of(1), par = par_of(threads);
    double *plain = malloc(3 * k * sizeof *plain);
    ck_assert_ptr_nonnull(plain);
    ck_assert_msg(kmq__kmeans_init_algo(pts, k, init, 77, restart, &one, KMQ__ALGO_PLAIN, plain,
                                        &err) == KMQ_OK,
                  "%s", err.msg);
    ck_assert_msg(kmq__kmeans_init_algo(pts, k, init, 77, restart, &par, KMQ__ALGO_BOUNDS, centers,
                                        &err) == KMQ_OK,
                  "%s", err.msg);
    ck_assert_mem_eq(plain, centers, 3 * k * sizeof *plain);
    if (init == KMQ_INIT_KMEANSPP) {
        ref_kmeanspp(pts, k, 77, restart, plain);
        ck_assert_mem_eq(plain, centers, 3 * k * sizeof *plain);
    }
    free(plain);
}

/* From the same centres, Lloyd capped at each of caps[] iterations (tol)
 * gives the same labels, centres, sizes, inertia and iteration count with
 * and without pruning, and with the automatic choice (for k below
 * KMQ__BOUNDS_MIN_K the float32 kernel with double rescans of close calls);
 * the pruned and automatic runs use `threads`, the plain one 1. */
static void same_lloyd(const kmq_points *pts, size_t k, const double *init, const int *caps,
                       size_t ncaps, double tol, int threads)
{
    kmq_par one = par_of(1), par = par_of(threads);
    for (size_t c = 0; c < ncaps; c++) {
        kmq_err err;
        kmq_err_clear(&err);
        kmq_fit a = {0}, b = {0};
        ck_assert_msg(kmq__kmeans_lloyd_algo(pts, k, init, caps[c], tol, &one, KMQ__ALGO_PLAIN, &a,
                                             &err) == KMQ_OK,
                      "%s", err.msg);
        ck_assert_msg(kmq__kmeans_lloyd_algo(pts, k, init, caps[c], tol, &par, KMQ__ALGO_BOUNDS, &b,
                                             &err) == KMQ_OK,
                      "%s", err.msg);
        ck_assert_mem_eq(a.labels, b.labels, pts->n);
        assert_same_fit(&a, &b);
        kmq_fit f = {0};
        ck_assert_msg(kmq__kmeans_lloyd_algo(pts, k, init, caps[c], tol, &par, KMQ__ALGO_AUTO, &f,
                                             &err) == KMQ_OK,
                      "%s", err.msg);
        ck_assert_mem_eq(a.labels, f.labels, pts->n);
        assert_same_fit(&a, &f);
        kmq_fit_clear(&f);
        /* Pruning is the point: it computed fewer distances (k >= 16). */
        if (k >= 16 && a.iterations >= 3)
            ck_assert_uint_lt(b.distance_evals, a.distance_evals);
        kmq_fit_clear(&a);
        kmq_fit_clear(&b);
    }
}

/* china.jpg (96,615 colours): k-means++ for k = 2, 16, 64, 256 and 175,
 * then Lloyd at several iteration caps (every iteration up to 3, then
 * longer runs; tol = 0 runs each cap in full, tol = 1e-4 stops where the
 * default would). Chunk-parallel pruned runs at 2 and 3 threads. */
START_TEST(bounds_exact_china)
{
    photo ph = load_photo_vips("china.jpg");
    ck_assert_uint_gt(ph.pts.n, 90000);
    double *init = malloc(3 * 256 * sizeof *init);
    ck_assert_ptr_nonnull(init);
    static const int caps2[] = {1, 2, 3, 300};
    same_init(&ph.pts, 2, KMQ_INIT_KMEANSPP, 0, 2, init);
    same_lloyd(&ph.pts, 2, init, caps2, 4, 1e-4, 2);
    static const int caps16[] = {1, 2, 3, 300};
    same_init(&ph.pts, 16, KMQ_INIT_KMEANSPP, 1, 3, init);
    same_lloyd(&ph.pts, 16, init, caps16, 4, 1e-4, 3);
    static const int caps64[] = {2, 12};
    same_init(&ph.pts, 64, KMQ_INIT_KMEANSPP, 2, 2, init);
    same_lloyd(&ph.pts, 64, init, caps64, 2, 0.0, 2);
    static const int caps256[] = {1, 2, 7};
    same_init(&ph.pts, 256, KMQ_INIT_KMEANSPP, 3, 2, init);
    same_lloyd(&ph.pts, 256, init, caps256, 3, 0.0, 2);
    /* The largest k that AUTO still runs on the float32 kernel. */
    static const int caps_f32[] = {2, 8};
    const size_t k_f32 = KMQ__BOUNDS_MIN_K - 1;
    same_init(&ph.pts, k_f32, KMQ_INIT_KMEANSPP, 4, 2, init);
    same_lloyd(&ph.pts, k_f32, init, caps_f32, 2, 0.0, 2);
    free(init);
    free_photo(&ph);
}
END_TEST

/* The float32 scan's box filter (each block of colours scanned against the
 * centres that can be nearest to some point of its box): on four photos,
 * from the same k-means++ centres, k = 2, 16, 64 and 256, the automatic
 * method (the filtered float32 scan below KMQ__BOUNDS_MIN_K) gives the
 * plain Lloyd's labels, centres and iteration count, serially and on 2
 * threads. */
START_TEST(filter_exact_photos)
{
    static const char *names[] = {"china.jpg", "coffee.png", "astronaut.png", "chelsea_alpha.png"};
    static const size_t ks[] = {2, 16, 64, 256};
    static const int caps[] = {3, 20};
    double *init = malloc(3 * 256 * sizeof *init);
    ck_assert_ptr_nonnull(init);
    for (size_t q = 0; q < 4; q++) {
        photo ph = load_photo_vips(names[q]);
        for (size_t i = 0; i < 4; i++) {
            same_init(&ph.pts, ks[i], KMQ_INIT_KMEANSPP, (int)q, 2, init);
            same_lloyd(&ph.pts, ks[i], init, caps, ks[i] == 256 ? 1 : 2, 0.0, 1 + (int)(i % 2));
        }
        free_photo(&ph);
    }
    free(init);
}
END_TEST

/* coffee.png: the same on another photo (serial pruned runs), k-means++ and
 * random starts, and whole fits (restarts, both parallel drivers) with the
 * pruned and the plain implementation. */
START_TEST(bounds_exact_coffee)
{
    photo ph = load_photo("coffee.png");
    double *init = malloc(3 * 256 * sizeof *init);
    ck_assert_ptr_nonnull(init);
    static const int caps[] = {1, 3, 300};
    static const size_t ks[] = {2, 16, 64};
    for (size_t i = 0; i < 3; i++) {
        same_init(&ph.pts, ks[i], KMQ_INIT_KMEANSPP, (int)i, 1, init);
        same_lloyd(&ph.pts, ks[i], init, caps, ks[i] == 64 ? 2 : 3, 1e-4, 1);
    }
    static const int caps256[] = {2, 6};
    same_init(&ph.pts, 256, KMQ_INIT_RANDOM, 0, 1, init);
    same_lloyd(&ph.pts, 256, init, caps256, 2, 0.0, 1);
    /* Whole fits: chunk-parallel (all colours) and restart-parallel (a
     * subset under 4 chunks), AUTO and BOUNDS against PLAIN. */
    kmq_points sub = ph.pts;
    sub.n = 3 * KMQ_CHUNK + 77;
    const kmq_points *sets[] = {&ph.pts, &sub};
    for (size_t q = 0; q < 2; q++) {
        kmq_kmeans_opts o =
            opts_of(q == 0 ? 16 : 64, 3, q == 0 ? 300 : 8, 1e-4, KMQ_INIT_KMEANSPP, 5);
        kmq_err err;
        kmq_err_clear(&err);
        kmq_par par = par_of(2);
        kmq_fit a = {0}, b = {0}, c = {0};
        ck_assert(kmq__kmeans_fit_algo(sets[q], &o, &par, KMQ__ALGO_PLAIN, &a, &err) == KMQ_OK);
        ck_assert(kmq__kmeans_fit_algo(sets[q], &o, &par, KMQ__ALGO_BOUNDS, &b, &err) == KMQ_OK);
        ck_assert(kmq_kmeans_fit(sets[q], &o, &par, &c, &err) == KMQ_OK);
        assert_same_fit(&a, &b);
        assert_same_fit(&a, &c);
        ck_assert_mem_eq(a.labels, b.labels, sets[q]->n);
        ck_assert_mem_eq(a.labels, c.labels, sets[q]->n);
        kmq_fit_clear(&a);
        kmq_fit_clear(&b);
        kmq_fit_clear(&c);
    }
    free(init);
    free_photo(&ph);
}
END_TEST

/* Weights so large that the sums of w D^2 leave double's exact integers
 * (W * 3 * 255^2 >= 2^53, kmeans_init.c "Exact sums"): the pruned method
 * falls back to sums in point order, and still draws the centres of the
 * plain method and of the reference loop, at 1 and 3 threads. */
START_TEST(init_beyond_exact_sums)
{
    enum { N = 3000 };
    uint32_t *keys = malloc(N * sizeof *keys);
    uint64_t *weights = malloc(N * sizeof *weights);
    ck_assert(keys && weights);
    uint64_t total = 0;
    for (size_t i = 0; i < N; i++) {
        /* Distinct colours spread over the cube; weights near 2^36. */
        keys[i] = (uint32_t)((i * 2654435761u) & 0xffffff);
        weights[i] = ((uint64_t)1 << 36) + i * 977;
        total += weights[i];
    }
    /* No duplicate keys (the multiplier is odd: a bijection mod 2^24). */
    ck_assert((double)total * 3.0 * 255.0 * 255.0 >= 9007199254740992.0);
    kmq_points pts = {N, keys, weights};
    double *centers = malloc(3 * 64 * sizeof *centers);
    ck_assert_ptr_nonnull(centers);
    same_init(&pts, 64, KMQ_INIT_KMEANSPP, 0, 1, centers);
    same_init(&pts, 16, KMQ_INIT_KMEANSPP, 1, 3, centers);
    free(centers);
    free(keys);
    free(weights);
}
END_TEST

/* Ties and coincident centres: duplicated initial centres (distance 0
 * between centres, equal distances for every point) and a symmetric layout
 * where points sit exactly between two centres. Lowest index must win in
 * both implementations. */
START_TEST(bounds_ties)
{
    uint32_t keys[64];
    uint64_t weights[64];
    for (size_t i = 0; i < 64; i++) {
        unsigned v = (unsigned)(i * 4);
        keys[i] = rgb_key(v, v, 255 - v);
        weights[i] = 1 + i % 3;
    }
    kmq_points pts = {64, keys, weights};
    /* Centres 0 and 2 coincide; 1 and 3 are mirror images around the
     * middle colour; 4 sits exactly between 1 and 3. */
    double init[3 * 5] = {10, 10, 245, 200, 200, 55, 10, 10, 245, 52, 52, 203, 126, 126, 129};
    static const int caps[] = {1, 2, 5, 50};
    same_lloyd(&pts, 5, init, caps, 4, 0.0, 1);
    same_lloyd(&pts, 5, init, caps, 4, 0.0, 3);
}
END_TEST

/* Thread invariance of the pruned fit on a real photo where AUTO would not
 * prune (k = 2), and of k = 256 k-means++ (pruned) on the chunk driver. */
START_TEST(bounds_threads)
{
    photo ph = load_photo("coffee.png");
    kmq_kmeans_opts o = opts_of(2, 2, 50, 1e-4, KMQ_INIT_KMEANSPP, 3);
    kmq_fit ref = {0};
    kmq_err err;
    kmq_err_clear(&err);
    static const int threads[] = {1, 2, 3, 7};
    for (size_t t = 0; t < 4; t++) {
        kmq_par par = par_of(threads[t]);
        kmq_fit fit = {0};
        ck_assert(kmq__kmeans_fit_algo(&ph.pts, &o, &par, KMQ__ALGO_BOUNDS, &fit, &err) == KMQ_OK);
        if (t == 0)
            ref = fit;
        else {
            assert_same_fit(&ref, &fit);
            ck_assert_mem_eq(ref.labels, fit.labels, ph.pts.n);
            ck_assert_uint_eq(ref.distance_evals, fit.distance_evals);
            kmq_fit_clear(&fit);
        }
    }
    kmq_fit_clear(&ref);
    kmq_points slice = ph.pts;
    slice.n = 5 * KMQ_CHUNK + 300;
    o = opts_of(256, 1, 3, 1e-4, KMQ_INIT_KMEANSPP, 4);
    thread_invariance(&slice, &o);
    free_photo(&ph);
}
END_TEST

/* A cancel flag stops the fit (before any restart here) with
 * KMQ_E_INTERRUPTED and leaves the result untouched; a clear flag changes
 * nothing. */
START_TEST(cancel_flag)
{
    uint32_t keys[64];
    uint64_t weights[64];
    for (uint32_t i = 0; i < 64; i++) {
        keys[i] = i * 0x030507u;
        weights[i] = 1 + i % 5;
    }
    kmq_points pts = {64, keys, weights};
    atomic_int flag = 1;
    kmq_kmeans_opts o = {
        .k = 4, .restarts = 3, .max_iter = 50, .tol = 1e-4, .seed = 1, .cancel = &flag};
    kmq_par par = {.threads = 2};
    kmq_fit fit = {0};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &fit, &err), KMQ_E_INTERRUPTED);
    ck_assert_ptr_null(fit.centers);
    atomic_store(&flag, 0);
    kmq_fit with_flag = {0}, without = {0};
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &with_flag, &err), KMQ_OK);
    o.cancel = NULL;
    ck_assert_int_eq(kmq_kmeans_fit(&pts, &o, &par, &without, &err), KMQ_OK);
    ck_assert_int_eq(memcmp(with_flag.centers, without.centers, 12 * sizeof(double)), 0);
    ck_assert(with_flag.inertia == without.inertia);
    kmq_fit_clear(&with_flag);
    kmq_fit_clear(&without);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"cancel_flag", cancel_flag},
        {"reference_k8", reference_k8_converged},
        {"reference_k16", reference_k16_tol},
        {"reference_k32", reference_k32_capped},
        {"k1_mean", k1_weighted_mean},
        {"tiny_1d", tiny_1d_by_hand},
        {"blobs", blobs_recovered},
        {"k_ge_n", k_at_least_n_is_exact},
        {"empty_cluster", empty_cluster_reseeded},
        {"init", init_draws_distinct_points},
        {"threads_many", threads_many_points},
        {"threads_few", threads_few_points},
        {"threads_many_side", threads_many_points_side_by_side},
        {"restart_parallel_rule", restart_parallel_rule},
        {"best_restart", best_restart_is_lowest_inertia},
        {"assign", assign_matches_brute_force},
        {"fit_labels", fit_labels_are_assign_labels},
        {"prepared_reused", prepared_reused},
        {"args", bad_arguments},
        {"alloc_sweep", alloc_failure_sweep},
        {"bounds_china", bounds_exact_china},
        {"bounds_coffee", bounds_exact_coffee},
        {"filter_photos", filter_exact_photos},
        {"bounds_ties", bounds_ties},
        {"init_beyond_exact_sums", init_beyond_exact_sums},
        {"bounds_threads", bounds_threads},
    };
    Suite *s = suite_create("kmeans");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 300, NULL);
    return tu_run_suite(s);
}
