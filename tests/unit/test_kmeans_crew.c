/* test_kmeans_crew.c — shared passes (kmeans_assign.c): when an idle
 * thread of a crew joins a run's passes, the run gives the same bits as
 * when it runs alone (centres, sums, labels, inertia, iterations), and the
 * helper did run some of its units; a fit whose restarts run side by side
 * gives the serial fit's result. */
#include "kmeans_internal.h"
#include "kmeans_lloyd.h"
#include "kmq/hist.h"
#include "kmq/kmeans.h"
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

typedef struct lloyd_out {
    double *centers;
    uint64_t *tot;
    uint8_t *labels;
    kmq__lloyd_result res;
} lloyd_out;

static void out_alloc(lloyd_out *o, size_t k, size_t n)
{
    o->centers = malloc(3 * k * sizeof *o->centers);
    o->tot = malloc((4 * k + 1) * sizeof *o->tot);
    o->labels = malloc(n);
    ck_assert(o->centers && o->tot && o->labels);
}

static void out_free(lloyd_out *o)
{
    free(o->centers);
    free(o->tot);
    free(o->labels);
}

static void out_keep(lloyd_out *o, const kmq__lloyd_ws *ws, const kmq__lloyd_result *res, size_t k,
                     size_t n)
{
    memcpy(o->centers, ws->cur, 3 * k * sizeof *o->centers);
    memcpy(o->tot, ws->as.tot, 4 * k * sizeof *o->tot);
    memcpy(o->labels, ws->as.acc_lab, n);
    o->res = *res;
}

/* Centres: k colours of p spread over its order. */
static void spread_init(const kmq_kmeans_prepared *p, size_t k, double *cen)
{
    for (size_t j = 0; j < k; j++) {
        const size_t i = j * (p->n / k);
        cen[3 * j] = p->r[i];
        cen[3 * j + 1] = p->g[i];
        cen[3 * j + 2] = p->b[i];
    }
}

/* Lloyd from init on thread 0 of two, with thread 1 of the crew idle and
 * helping until thread 0 is done; returns the batches thread 1 ran. */
static unsigned lloyd_helped(const kmq_kmeans_prepared *p, size_t k, const double *init,
                             lloyd_out *out)
{
    kmq__lloyd_ws ws;
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq__lloyd_ws_alloc(&ws, p, k, KMQ__ASSIGN_F32, 2, &err), KMQ_OK);
    kmq__crew crew;
    atomic_init(&crew.idle, 1);
    ws.as.crew = &crew;
    memcpy(ws.cur, init, 3 * k * sizeof *ws.cur);
    kmq__lloyd_result res;
    unsigned batches = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(2)
#endif
    {
        if (kmq_par_thread_num() == 0) {
            kmq__lloyd_run(p, 300, 0.0, NULL, NULL, &ws, &res);
            atomic_fetch_add(&crew.idle, 1);
        } else {
            unsigned spins = 0;
            while (atomic_load(&crew.idle) < 2) {
                if (kmq__assign_help(&ws.as, 1))
                    batches++;
                else
                    kmq__assign_pause(&spins);
            }
        }
    }
    ck_assert(!res.cancelled);
    out_keep(out, &ws, &res, k, p->n);
    kmq__lloyd_ws_free(&ws);
    return batches;
}

START_TEST(helped_run_is_the_lone_run)
{
#ifndef _OPENMP
    return; /* one thread: nobody to help */
#endif
    const char *names[] = {"coffee.png", "astronaut.png"};
    const size_t ks[] = {16, 64};
    for (size_t f = 0; f < 2; f++) {
        kmq_hist *hist = tu_photo_hist(names[f]);
        kmq_points pts = {kmq_hist_size(hist), kmq_hist_keys(hist), kmq_hist_weights(hist)};
        kmq_kmeans_prepared *p;
        kmq_err err;
        kmq_err_clear(&err);
        ck_assert_int_eq(kmq_kmeans_prepared_new(&pts, NULL, &p, &err), KMQ_OK);
        for (size_t q = 0; q < 2; q++) {
            const size_t k = ks[q];
            double init[3 * 64];
            spread_init(p, k, init);
            /* Alone: the serial driver with nobody idle. */
            kmq__lloyd_ws ws;
            ck_assert_int_eq(kmq__lloyd_ws_alloc(&ws, p, k, KMQ__ASSIGN_F32, 1, &err), KMQ_OK);
            memcpy(ws.cur, init, sizeof init[0] * 3 * k);
            kmq__lloyd_result res;
            kmq__lloyd_run(p, 300, 0.0, NULL, NULL, &ws, &res);
            lloyd_out alone;
            out_alloc(&alone, k, p->n);
            out_keep(&alone, &ws, &res, k, p->n);
            kmq__lloyd_ws_free(&ws);
            ck_assert_int_gt(alone.res.iterations, 5);
            /* Helped: the same bits. Thread 1 may not get a CPU in time on
             * a busy machine; a few tries make sure it helped at least
             * once. */
            unsigned batches = 0;
            for (int attempt = 0; attempt < 20 && batches == 0; attempt++) {
                lloyd_out helped;
                out_alloc(&helped, k, p->n);
                batches = lloyd_helped(p, k, init, &helped);
                ck_assert_int_eq(helped.res.iterations, alone.res.iterations);
                ck_assert_uint_eq(helped.res.evals, alone.res.evals);
                ck_assert(helped.res.inertia == alone.res.inertia);
                ck_assert_int_eq(memcmp(helped.centers, alone.centers, 3 * k * sizeof(double)), 0);
                ck_assert_int_eq(memcmp(helped.tot, alone.tot, 4 * k * sizeof(uint64_t)), 0);
                ck_assert_int_eq(memcmp(helped.labels, alone.labels, p->n), 0);
                out_free(&helped);
            }
            ck_assert_msg(batches > 0, "%s, k = %zu: the idle thread never helped", names[f], k);
            out_free(&alone);
        }
        kmq_kmeans_prepared_free(p);
        kmq_hist_free(hist);
    }
}
END_TEST

START_TEST(side_by_side_fit_is_the_serial_fit)
{
    /* 10 restarts on 2 threads run side by side (kmq__restart_parallel),
     * and the thread that ends first helps the last run. */
    kmq_hist *hist = tu_photo_hist("astronaut.png");
    kmq_points pts = {kmq_hist_size(hist), kmq_hist_keys(hist), kmq_hist_weights(hist)};
    ck_assert(kmq__restart_parallel(pts.n, 10, 2));
    kmq_kmeans_prepared *p;
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_kmeans_prepared_new(&pts, NULL, &p, &err), KMQ_OK);
    const kmq_kmeans_opts o = {.k = 32, .restarts = 10, .max_iter = 300, .tol = 1e-4, .seed = 5};
    kmq_par one = {.threads = 1}, two = {.threads = 2};
    kmq_fit a = {0}, b = {0};
    ck_assert_int_eq(kmq_kmeans_fit_prepared(p, &o, &one, &a, &err), KMQ_OK);
    ck_assert_int_eq(kmq_kmeans_fit_prepared(p, &o, &two, &b, &err), KMQ_OK);
    ck_assert(b.runs_side_by_side);
    ck_assert_int_eq(a.best_restart, b.best_restart);
    ck_assert_int_eq(a.iterations, b.iterations);
    ck_assert_uint_eq(a.iterations_total, b.iterations_total);
    ck_assert_uint_eq(a.distance_evals, b.distance_evals);
    ck_assert(a.inertia == b.inertia);
    ck_assert_int_eq(memcmp(a.restart_inertia, b.restart_inertia, 10 * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(a.centers, b.centers, 3 * o.k * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(a.labels, b.labels, pts.n), 0);
    kmq_fit_clear(&a);
    kmq_fit_clear(&b);
    kmq_kmeans_prepared_free(p);
    kmq_hist_free(hist);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"helped_run", helped_run_is_the_lone_run},
        {"side_by_side_fit", side_by_side_fit_is_the_serial_fit},
    };
    Suite *s = suite_create("kmeans_crew");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 300, NULL);
    return tu_run_suite(s);
}
