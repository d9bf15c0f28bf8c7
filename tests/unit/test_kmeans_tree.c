/* test_kmeans_tree.c — the Lloyd order (kmeans_tree.c): the tree view is
 * a permutation of the prepared points with their own data, the same on
 * any number of threads, its blocks are tighter boxes than Morton order's
 * on real photos, and Lloyd over it
 * (reseeding of empty clusters included) gives, bit for bit, what a plain
 * weighted Lloyd written here gives over the points in their own order. */
#include "kmeans_points.h"
#include "kmq/hist.h"
#include "kmq/kmeans.h"
#include "kmq/rng.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Mean over the blocks of p of the box's diagonal, squared. */
static double mean_block_diag2(const kmq_kmeans_prepared *p)
{
    double s = 0.0;
    for (size_t blk = 0; blk < p->blocks; blk++) {
        const float *b = p->box + 6 * blk;
        for (int d = 0; d < 3; d++)
            s += (double)(b[3 + d] - b[d]) * (b[3 + d] - b[d]);
    }
    return s / (double)p->blocks;
}

START_TEST(view_is_the_points_reordered)
{
    const char *names[] = {"coffee.png", "astronaut.png"};
    for (size_t f = 0; f < 2; f++) {
        kmq_hist *h = tu_photo_hist(names[f]);
        kmq_points pts = {kmq_hist_size(h), kmq_hist_keys(h), kmq_hist_weights(h)};
        kmq_kmeans_prepared *p;
        kmq_err err;
        kmq_err_clear(&err);
        ck_assert_int_eq(kmq_kmeans_prepared_new(&pts, NULL, &p, &err), KMQ_OK);
        const kmq_kmeans_prepared *v = p->tree;
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(v->n, p->n);
        ck_assert_uint_eq(v->blocks, p->blocks);
        ck_assert_ptr_null(v->tree);
        /* from is a permutation, at its inverse, and the view's point i
         * is p's point from[i], with its weight and key. */
        uint8_t *seen = calloc(p->n, 1);
        ck_assert_ptr_nonnull(seen);
        for (size_t i = 0; i < p->n; i++) {
            const uint32_t src = p->tree_from[i];
            ck_assert_uint_lt(src, p->n);
            ck_assert(!seen[src]);
            seen[src] = 1;
            ck_assert_uint_eq(p->tree_at[src], i);
            ck_assert_uint_eq(v->keys[i], pts.keys[src]);
            ck_assert_uint_eq(v->w[i], pts.weights[src]);
            ck_assert(v->r[i] == p->r[src] && v->g[i] == p->g[src] && v->b[i] == p->b[src]);
        }
        free(seen);
        /* Built on 3 threads (subtrees of 16,384 colours and more go to
         * tasks, so this photo has them), the order is the same. */
        ck_assert_uint_gt(p->n, 2 * 16384);
        kmq_par par3 = {.threads = 3};
        kmq_kmeans_prepared *q;
        ck_assert_int_eq(kmq_kmeans_prepared_new(&pts, &par3, &q, &err), KMQ_OK);
        ck_assert_ptr_nonnull(q->tree);
        ck_assert_int_eq(memcmp(q->tree_from, p->tree_from, p->n * sizeof *p->tree_from), 0);
        ck_assert_int_eq(memcmp(q->tree->box, v->box, 6 * v->blocks * sizeof *v->box), 0);
        kmq_kmeans_prepared_free(q);
        /* Each view block's box is exactly its points' bounding box. */
        for (size_t blk = 0; blk < v->blocks; blk++) {
            float lo[3] = {255, 255, 255}, hi[3] = {0, 0, 0};
            const size_t e = (blk + 1) * KMQ__BLOCK < v->n ? (blk + 1) * KMQ__BLOCK : v->n;
            for (size_t i = blk * KMQ__BLOCK; i < e; i++) {
                const float c[3] = {v->r[i], v->g[i], v->b[i]};
                for (int d = 0; d < 3; d++) {
                    lo[d] = c[d] < lo[d] ? c[d] : lo[d];
                    hi[d] = c[d] > hi[d] ? c[d] : hi[d];
                }
            }
            for (int d = 0; d < 3; d++) {
                ck_assert(v->box[6 * blk + d] == lo[d]);
                ck_assert(v->box[6 * blk + 3 + d] == hi[d]);
            }
        }
        /* The point of the order: blocks of the k-d tree are smaller boxes
         * than runs of the Morton order (by about half on photos). */
        const double morton = mean_block_diag2(p), tree = mean_block_diag2(v);
        ck_assert_msg(tree < 0.75 * morton, "%s: tree blocks %.1f, Morton %.1f", names[f], tree,
                      morton);
        kmq_kmeans_prepared_free(p);
        kmq_hist_free(h);
    }
}
END_TEST

START_TEST(no_view_for_one_block)
{
    uint32_t keys[KMQ__BLOCK];
    uint64_t w[KMQ__BLOCK];
    for (size_t i = 0; i < KMQ__BLOCK; i++) {
        keys[i] = (uint32_t)(i * 65537u);
        w[i] = 1 + i % 5;
    }
    kmq_points pts = {KMQ__BLOCK, keys, w};
    kmq_kmeans_prepared *p;
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_kmeans_prepared_new(&pts, NULL, &p, &err), KMQ_OK);
    ck_assert_ptr_null(p->tree);
    kmq_kmeans_prepared_free(p);
}
END_TEST

START_TEST(no_view_above_the_limit)
{
    /* One colour more than KMQ__TREE_MAX: no second copy of them. */
    const size_t n = KMQ__TREE_MAX + 1;
    uint32_t *keys = malloc(n * sizeof *keys);
    uint64_t *w = malloc(n * sizeof *w);
    ck_assert(keys && w);
    for (size_t i = 0; i < n; i++) {
        keys[i] = (uint32_t)i;
        w[i] = 1;
    }
    kmq_points pts = {n, keys, w};
    kmq_kmeans_prepared *p;
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_kmeans_prepared_new(&pts, NULL, &p, &err), KMQ_OK);
    ck_assert_ptr_null(p->tree);
    ck_assert_ptr_null(p->tree_from);
    kmq_kmeans_prepared_free(p);
    free(keys);
    free(w);
}
END_TEST

/* ---- a plain weighted Lloyd, written from its definition ----------------- */

typedef struct ref_result {
    double centers[3 * 16];
    uint64_t sizes[16];
    double inertia;
    int iterations;
    int reseeded; /* clusters reseeded over the run */
} ref_result;

/* Squared distance of colour key to c, summed r, g, b as the engine does. */
static double ref_d2(uint32_t key, const double *c)
{
    const double dr = (double)(key >> 16) - c[0];
    const double dg = (double)((key >> 8) & 0xff) - c[1];
    const double db = (double)(key & 0xff) - c[2];
    return dr * dr + dg * dg + db * db;
}

static size_t ref_nearest(uint32_t key, const double *cen, size_t k, double *d)
{
    size_t best = 0;
    *d = ref_d2(key, cen);
    for (size_t j = 1; j < k; j++) {
        const double e = ref_d2(key, cen + 3 * j);
        if (e < *d) {
            *d = e;
            best = j;
        }
    }
    return best;
}

/* Lloyd from init with tol 0 (stop when no centre moves): each point to
 * its nearest centre (lowest index on ties); integer sums; an empty
 * cluster, in index order, takes the point farthest from its centre
 * (lowest index on ties), which leaves its cluster. Inertia summed in
 * point order (n <= one chunk). */
static void ref_lloyd(const kmq_points *pts, size_t k, const double *init, int max_iter,
                      ref_result *out)
{
    const size_t n = pts->n;
    size_t *lab = malloc(n * sizeof *lab);
    double *dist = malloc(n * sizeof *dist);
    uint8_t *taken = malloc(n);
    ck_assert(lab && dist && taken);
    double cur[3 * 16], next[3 * 16];
    memcpy(cur, init, 3 * k * sizeof *cur);
    out->reseeded = 0;
    out->iterations = max_iter;
    for (int it = 1; it <= max_iter; it++) {
        uint64_t sum[16][4];
        memset(sum, 0, sizeof sum);
        for (size_t i = 0; i < n; i++) {
            lab[i] = ref_nearest(pts->keys[i], cur, k, &dist[i]);
            const uint32_t key = pts->keys[i];
            const uint64_t w = pts->weights[i];
            sum[lab[i]][0] += w * (key >> 16);
            sum[lab[i]][1] += w * ((key >> 8) & 0xff);
            sum[lab[i]][2] += w * (key & 0xff);
            sum[lab[i]][3] += w;
        }
        memset(taken, 0, n);
        for (size_t j = 0; j < k; j++) {
            if (sum[j][3] != 0)
                continue;
            /* Farthest untaken point, lowest index on ties. */
            size_t far = n;
            for (size_t i = 0; i < n; i++)
                if (!taken[i] && (far == n || dist[i] > dist[far]))
                    far = i;
            taken[far] = 1;
            const uint32_t key = pts->keys[far];
            const uint64_t w = pts->weights[far];
            const uint64_t c[3] = {key >> 16, (key >> 8) & 0xff, key & 0xff};
            for (int d = 0; d < 3; d++) {
                sum[lab[far]][d] -= w * c[d];
                sum[j][d] = w * c[d];
            }
            sum[lab[far]][3] -= w;
            sum[j][3] = w;
            out->reseeded++;
        }
        double shift = 0.0;
        for (size_t j = 0; j < k; j++)
            for (int d = 0; d < 3; d++) {
                next[3 * j + d] =
                    sum[j][3] ? (double)sum[j][d] / (double)sum[j][3] : cur[3 * j + d];
                const double e = next[3 * j + d] - cur[3 * j + d];
                shift += e * e;
            }
        memcpy(cur, next, sizeof cur);
        if (shift <= 0.0) {
            out->iterations = it;
            break;
        }
    }
    memset(out->sizes, 0, sizeof out->sizes);
    out->inertia = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d;
        const size_t j = ref_nearest(pts->keys[i], cur, k, &d);
        out->sizes[j] += pts->weights[i];
        out->inertia += (double)pts->weights[i] * d;
    }
    memcpy(out->centers, cur, 3 * k * sizeof *cur);
    free(lab);
    free(dist);
    free(taken);
}

START_TEST(lloyd_over_view_matches_reference)
{
    /* 3,000 distinct colours (more than a block: the view exists; fewer
     * than a chunk: one inertia partial) with weights 1..40, in a random
     * order of the caller's; centres 10 and 11 repeat 0 and 1, so they
     * start empty and are reseeded. */
    enum { N = 3000, K = 12 };
    uint32_t *keys = malloc(N * sizeof *keys);
    uint64_t *w = malloc(N * sizeof *w);
    uint8_t *used = calloc((size_t)1 << 24, 1);
    ck_assert(keys && w && used);
    kmq_rng rng;
    kmq_rng_init(&rng, 7, 0, 0);
    for (size_t i = 0; i < N;) {
        const uint32_t key = (uint32_t)kmq_rng_below(&rng, (uint64_t)1 << 24);
        if (used[key])
            continue;
        used[key] = 1;
        keys[i] = key;
        w[i] = 1 + kmq_rng_below(&rng, 40);
        i++;
    }
    free(used);
    kmq_points pts = {N, keys, w};
    double init[3 * K];
    for (size_t j = 0; j < 10; j++) {
        const uint32_t key = keys[j * 97];
        init[3 * j] = key >> 16;
        init[3 * j + 1] = (key >> 8) & 0xff;
        init[3 * j + 2] = key & 0xff;
    }
    memcpy(init + 30, init, 6 * sizeof *init);
    ref_result ref;
    ref_lloyd(&pts, K, init, 200, &ref);
    ck_assert_int_gt(ref.reseeded, 0);
    for (int threads = 1; threads <= 2; threads++) {
        kmq_par par = {.threads = threads};
        kmq_fit fit = {0};
        kmq_err err;
        kmq_err_clear(&err);
        ck_assert_int_eq(kmq_kmeans_lloyd(&pts, K, init, 200, 0.0, &par, &fit, &err), KMQ_OK);
        ck_assert_int_eq(fit.iterations, ref.iterations);
        ck_assert_int_eq(memcmp(fit.centers, ref.centers, 3 * K * sizeof(double)), 0);
        ck_assert_int_eq(memcmp(fit.sizes, ref.sizes, K * sizeof(uint64_t)), 0);
        ck_assert_msg(fit.inertia == ref.inertia, "inertia %.17g vs reference %.17g", fit.inertia,
                      ref.inertia);
        kmq_fit_clear(&fit);
    }
    free(keys);
    free(w);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"view_reordered", view_is_the_points_reordered},
        {"no_view_one_block", no_view_for_one_block},
        {"no_view_above_limit", no_view_above_the_limit},
        {"lloyd_reference", lloyd_over_view_matches_reference},
    };
    Suite *s = suite_create("kmeans_tree");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 300, NULL);
    return tu_run_suite(s);
}
