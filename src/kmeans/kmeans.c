/* kmeans.c — weighted k-means over distinct colours: the fit with its
 * restarts, and the public API of kmq/kmeans.h (layer L1).
 *
 * Includes kmeans.h, the private headers of the engine's other files and
 * L0 (internal, par); no I/O, no printing. Nothing else of src/kmeans
 * calls into this file. The engine, bottom up (each file calls only files
 * above it in this list):
 *
 *   kmeans_points.c        prepared points (kmq_kmeans_prepared)
 *   kmeans_f32.c           float32 nearest-two-centres kernel
 *   kmeans_assign_plain.c  double brute-force assignment (the reference)
 *   kmeans_assign_f32.c    float32 brute-force ranking assignment
 *   kmeans_assign_bounds.c Hamerly-bounds assignment
 *   kmeans_assign.c        one assignment pass: drivers and scratch
 *   kmeans_lloyd.c         Lloyd: passes, centre update, reseeding
 *   kmeans_init.c          initial centres: k-means++, random
 *   kmeans.c               restarts and the public API (this file)
 *
 * Restarts: run r initialises from the stream (seed, k, r) and the run with
 * the lowest inertia wins (ties: lowest r). The fit returns the winner's
 * labels, those of its final assignment pass: the labels kmq_kmeans_assign
 * would give for its centres (every method gives the plain method's
 * labels). k >= n distinct points is trivial: the points themselves are
 * the centres (inertia 0, iterations 0, point i labelled i).
 *
 * Method: Lloyd's assignment passes run the float32 scan, filtered per
 * block of colours, below KMQ__BOUNDS_MIN_K and Hamerly bounds from there
 * (kmeans_internal.h says why: today every k runs the scan); every
 * method gives the same bits (kmeans_assign.h), so the choice changes only
 * the time. A plain labelling (kmq_kmeans_assign) is one final pass of the
 * float32 method.
 *
 * Threading: the fit is a driver. It runs whole restarts side by side, one
 * per thread with the serial drivers of init and Lloyd inside (each thread
 * with its own workspace; a thread with no restart left joins the passes
 * of the runs still going, kmeans_assign.c's shared passes), or one
 * restart after the other, each chunk-parallel on all the threads
 * (kmq__restart_parallel picks). The
 * runs' results are kept per restart and the best is chosen after the
 * region in restart order; the labels of the best run so far are kept as
 * the runs end (keep_best_labels, by the same order), so both ways give
 * the same bits.
 */
#include "kmq/kmeans.h"

#include "kmeans_init.h"
#include "kmeans_internal.h"
#include "kmeans_lloyd.h"
#include "kmq/par.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Restarts run side by side on at most this many threads, unless the
 * points are too few to give every thread a chunk (kmq__restart_parallel). */
#define RESTART_PARALLEL_MAX_THREADS 2
/* Side by side on at most this many threads, idle threads help the runs
 * still going (help_crew); each run then has a pass slot for each. */
#define HELPED_MAX_THREADS 4
/* One run's per-point workspace: labels (2 bytes), Hamerly bounds (16),
 * k-means++ D^2 (8) and its per-block sums (under 2). */
#define RESTART_WS_BYTES ((size_t)28)
/* Restarts run side by side only while their workspaces fit in this. */
#define RESTART_WS_BUDGET ((size_t)1 << 30)

/* Workspace of one thread's runs. */
typedef struct run_ws {
    kmq__lloyd_ws lloyd;
    kmq__init_ws init;
} run_ws;

/* The labels of the best run so far: its restart index (-1: none yet), its
 * inertia, and n labels. */
typedef struct best_labels {
    int r;
    double inertia;
    uint8_t *labels;
} best_labels;

typedef struct run_result {
    double inertia;
    int iterations;
    bool converged;
    bool cancelled;         /* stopped by the cancel flag: the run is not a result */
    uint64_t evals;         /* distance evaluations, init + Lloyd */
    uint64_t init_evals;    /* those of the init */
    double init_s, lloyd_s; /* wall time of the two phases */
} run_result;

void kmq_fit_clear(kmq_fit *fit)
{
    kmq__free(fit->centers);
    kmq__free(fit->sizes);
    kmq__free(fit->labels);
    kmq__free(fit->restart_inertia);
    memset(fit, 0, sizeof *fit);
}

/* ---- argument checks ------------------------------------------------------ */

static kmq_status check_par(const kmq_par *par, kmq_err *err)
{
    if (!par || par->threads < 1)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs a thread budget >= 1");
    return KMQ_OK;
}

static kmq_status check_run_opts(size_t k, int max_iter, double tol, kmq_err *err)
{
    if (k < 1 || k > KMQ_MAX_K)
        return kmq_err_set(err, KMQ_E_ARG, "k = %zu is outside 1..%d", k, KMQ_MAX_K);
    if (max_iter < 1)
        return kmq_err_set(err, KMQ_E_ARG, "max_iter = %d is below 1", max_iter);
    if (!(tol >= 0.0) || !isfinite(tol))
        return kmq_err_set(err, KMQ_E_ARG, "tol = %g is not a finite number >= 0", tol);
    return KMQ_OK;
}

static kmq_status check_fit_args(const kmq_kmeans_opts *opts, const kmq_par *par,
                                 const kmq_fit *out, kmq_err *err)
{
    if (!opts || !out)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs options and a result");
    kmq_status st = check_par(par, err);
    if (st == KMQ_OK)
        st = check_run_opts(opts->k, opts->max_iter, opts->tol, err);
    if (st != KMQ_OK)
        return st;
    if (opts->restarts < 1)
        return kmq_err_set(err, KMQ_E_ARG, "restarts = %d is below 1", opts->restarts);
    if (opts->init != KMQ_INIT_KMEANSPP && opts->init != KMQ_INIT_RANDOM)
        return kmq_err_set(err, KMQ_E_ARG, "unknown k-means init %d", (int)opts->init);
    return KMQ_OK;
}

static kmq_status check_centers(const double *centers, size_t k, kmq_err *err)
{
    if (!centers)
        return kmq_err_set(err, KMQ_E_ARG, "no centres given");
    /* Colours live in [0, 255]^3, and the float32 kernel's error bound
     * (kmeans_f32.c) holds only for centres there. */
    for (size_t j = 0; j < 3 * k; j++)
        if (!isfinite(centers[j]))
            return kmq_err_set(err, KMQ_E_ARG, "centre %zu is not finite", j / 3);
        else if (centers[j] < 0.0 || centers[j] > 255.0)
            return kmq_err_set(err, KMQ_E_ARG, "centre %zu lies outside the RGB cube [0, 255]",
                               j / 3);
    return KMQ_OK;
}

static kmq_status check_assign_args(const double *centers, size_t k, const kmq_par *par,
                                    const uint8_t *labels, const double *inertia, kmq_err *err)
{
    if (!labels || !inertia)
        return kmq_err_set(err, KMQ_E_ARG, "k-means assignment needs label and inertia storage");
    if (k < 1 || k > KMQ_MAX_K)
        return kmq_err_set(err, KMQ_E_ARG, "k = %zu is outside 1..%d", k, KMQ_MAX_K);
    kmq_status st = check_par(par, err);
    if (st == KMQ_OK)
        st = check_centers(centers, k, err);
    return st;
}

/* ---- the choices ----------------------------------------------------------- */

/* Whole restarts per thread, or every restart chunk-parallel? Restarts
 * side by side need no synchronisation inside a run, but R restarts on T
 * threads take ceil(R / T) rounds and keep only R / (T ceil(R / T)) of the
 * threads busy, and each thread streams all n colours and its own run's
 * arrays through every pass, where a chunk-parallel pass gives each thread
 * its share of one run's. Time side by side / chunk-parallel, alternating
 * rules, two runs of 3 rounds each, on a 16-core machine:
 *   16 MP photo (362,070 colours), 10 restarts on 5 and 10 threads and 16
 *   restarts on 4, 8 and 16 (all rounds full): 0.93-2.05 at k = 16
 *   (median 1.3), 1.08-1.70 at k = 64, 0.93-1.34 at k = 256 (median 1.14);
 *   china.jpg (96,615 colours), 10 restarts: 1.02-1.18 at k = 16 and 64
 *   and 0.85-1.05 at k = 256 on 5 threads, 1.05-1.77 and 0.91-1.01 on 10.
 * On 2 threads of a 2-core VM with the 16 MP photo (10 restarts, two runs
 * of 5 rounds) it was 0.89-1.05, as chunk-parallel k-means++ scaled only
 * 1.35-1.6x there. So side by side on up to RESTART_PARALLEL_MAX_THREADS
 * threads when the rounds keep >= 90% of them busy, or on any number when
 * a chunk-parallel pass would leave some thread without a chunk; never
 * when the runs' workspaces (RESTART_WS_BYTES a colour) would pass
 * RESTART_WS_BUDGET together. */
bool kmq__restart_parallel(size_t n, int restarts, int threads)
{
    if (restarts < 2 || threads < 2)
        return false;
    const size_t runs = (size_t)(threads < restarts ? threads : restarts);
    if (n > RESTART_WS_BUDGET / RESTART_WS_BYTES / runs)
        return false;
    if (n < (size_t)threads * KMQ_CHUNK)
        return true;
    const int rounds = (restarts + threads - 1) / threads;
    return threads <= RESTART_PARALLEL_MAX_THREADS && 10 * restarts >= 9 * rounds * threads;
}

/* The method of Lloyd's passes: the rule of KMQ__BOUNDS_MIN_K
 * (kmeans_internal.h). */
static kmq__assign_method lloyd_method(kmq__algo algo, size_t k)
{
    if (algo == KMQ__ALGO_PLAIN)
        return KMQ__ASSIGN_PLAIN;
    if (algo == KMQ__ALGO_BOUNDS || k >= KMQ__BOUNDS_MIN_K)
        return KMQ__ASSIGN_BOUNDS;
    return KMQ__ASSIGN_F32;
}

/* ---- the fit --------------------------------------------------------------- */

/* Keeps the labels of run r (inertia `inertia`) if it beats the best run
 * so far: lower inertia, or equal inertia and a lower r, the order in
 * which the fit picks its run. Runs side by side end in any order, but
 * this order of (inertia, r) pairs does not depend on it, so the labels
 * kept at the end are always those of the run the fit picks. A critical
 * section (n bytes copied, at most once per run) rather than n bytes per
 * run kept until the end. */
static void keep_best_labels(best_labels *best, int r, double inertia, const uint8_t *labels,
                             size_t n)
{
#ifdef _OPENMP
#pragma omp critical(kmq_kmeans_best_labels)
#endif
    {
        if (best->r < 0 || inertia < best->inertia || (inertia == best->inertia && r < best->r)) {
            best->r = r;
            best->inertia = inertia;
            memcpy(best->labels, labels, n);
        }
    }
}

/* One restart: init from stream (seed, k, r), Lloyd, results copied out
 * (the labels only while they are the best run's). Driver as
 * kmq__lloyd_run (par NULL: serial, safe inside a region). */
static void run_restart(const kmq_kmeans_prepared *p, const kmq_kmeans_opts *o, int r,
                        double tol_abs, const kmq_par *par, run_ws *ws, run_result *res,
                        double *centers, uint64_t *sizes, best_labels *best)
{
    if (kmq__cancelled(o->cancel)) {
        res->cancelled = true;
        return;
    }
    const double t0 = kmq_par_now_s();
    kmq__init_run(p, o->k, o->init, o->seed, r, par, &ws->init, ws->lloyd.cur);
    const double t1 = kmq_par_now_s();
    kmq__lloyd_result lr;
    kmq__lloyd_run(p, o->max_iter, tol_abs, par, o->cancel, &ws->lloyd, &lr);
    res->cancelled = lr.cancelled;
    if (res->cancelled)
        return;
    res->inertia = lr.inertia;
    res->iterations = lr.iterations;
    res->converged = lr.converged;
    res->init_s = t1 - t0;
    res->lloyd_s = kmq_par_now_s() - t1;
    res->evals = lr.evals + ws->init.evals;
    res->init_evals = ws->init.evals;
    memcpy(centers, ws->lloyd.cur, 3 * o->k * sizeof *centers);
    for (size_t j = 0; j < o->k; j++)
        sizes[j] = ws->lloyd.as.tot[4 * j + 3];
    keep_best_labels(best, r, lr.inertia, ws->lloyd.as.acc_lab, p->n);
}

/* Thread t, with no restart left, joins the passes of the crew's runs
 * still going until every thread of the team is idle (the team may be
 * smaller than the nws workspaces). */
static void help_crew(kmq__crew *crew, run_ws *ws, int nws, int t)
{
    const int team = kmq_par_team_size();
    atomic_fetch_add_explicit(&crew->idle, 1, memory_order_relaxed);
    unsigned spins = 0;
    while (atomic_load_explicit(&crew->idle, memory_order_relaxed) < team) {
        bool ran = false;
        for (int o = 0; o < nws; o++)
            if (o != t && kmq__assign_help(&ws[o].lloyd.as, t))
                ran = true;
        if (ran)
            spins = 0;
        else
            kmq__assign_pause(&spins);
    }
}

static kmq_status fit_algo(const kmq_kmeans_prepared *p, const kmq_kmeans_opts *opts,
                           const kmq_par *par, kmq__algo algo, kmq_fit *out, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    run_ws *ws = NULL;
    int nws = 0;
    kmq__crew crew;
    atomic_init(&crew.idle, 0);
    double *centers = NULL, *rinertia = NULL, *rcenters = NULL;
    uint64_t *sizes = NULL, *rsizes = NULL;
    uint8_t *labels = NULL;
    run_result *res = NULL;
    kmq_status st = check_fit_args(opts, par, out, err);
    if (st != KMQ_OK)
        return st;

    const size_t k = opts->k;
    const int restarts = opts->restarts;
    const size_t k_eff = k < p->n ? k : p->n;
    centers = kmq__alloc_array(3 * k_eff, sizeof *centers);
    sizes = kmq__alloc_array(k_eff, sizeof *sizes);
    rinertia = kmq__calloc((size_t)restarts, sizeof *rinertia);
    labels = kmq__alloc(p->n);
    if (!centers || !sizes || !rinertia || !labels) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a k = %zu result", k);
        goto done;
    }
    double inertia = 0.0;
    int iterations = 0, best = 0;
    bool converged = true;
    uint64_t evals = 0, init_evals = 0, iters_total = 0;
    double init_s = 0.0, lloyd_s = 0.0;
    if (k >= p->n) {
        /* Each point is its own centre. */
        for (size_t j = 0; j < p->n; j++) {
            centers[3 * j] = p->r[j];
            centers[3 * j + 1] = p->g[j];
            centers[3 * j + 2] = p->b[j];
            sizes[j] = p->w[j];
            labels[j] = (uint8_t)j;
        }
    } else {
        const bool by_restart = kmq__restart_parallel(p->n, restarts, par->threads);
        nws = by_restart ? (par->threads < restarts ? par->threads : restarts) : 1;
        /* Side by side, each run's passes have a slot for every thread of
         * the crew (up to HELPED_MAX_THREADS). */
        const bool helped = by_restart && nws <= HELPED_MAX_THREADS;
        const int slots = by_restart ? (helped ? nws : 1) : par->threads;
        ws = kmq__calloc((size_t)nws, sizeof *ws);
        res = kmq__alloc_array((size_t)restarts, sizeof *res);
        rcenters = kmq__alloc_array((size_t)restarts, 3 * k * sizeof *rcenters);
        rsizes = kmq__alloc_array((size_t)restarts, k * sizeof *rsizes);
        if (!ws || !res || !rcenters || !rsizes) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %d k-means restarts", restarts);
            goto done;
        }
        for (int t = 0; t < nws; t++) {
            st = kmq__lloyd_ws_alloc(&ws[t].lloyd, p, k, lloyd_method(algo, k), slots, err);
            if (st == KMQ_OK)
                st = kmq__init_ws_alloc(&ws[t].init, p, opts->init, algo != KMQ__ALGO_PLAIN, err);
            if (st != KMQ_OK)
                goto done;
            ws[t].lloyd.as.crew = helped ? &crew : NULL;
        }
        const double tol_abs = opts->tol * p->mean_var;
        best_labels bl = {.r = -1, .inertia = 0.0, .labels = labels};
        if (by_restart) {
            /* Whole restarts per thread, each run serial; a thread with none
             * left helps the runs still going. The team is the budget,
             * capped at the number of restarts. */
#ifdef _OPENMP
#pragma omp parallel num_threads(nws) default(none)                                                \
    shared(p, opts, restarts, tol_abs, ws, nws, res, rcenters, rsizes, k, bl, crew, helped)
#endif
            {
                const int t = kmq_par_thread_num();
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1) nowait
#endif
                for (int r = 0; r < restarts; r++)
                    run_restart(p, opts, r, tol_abs, NULL, &ws[t], &res[r],
                                rcenters + (size_t)r * 3 * k, rsizes + (size_t)r * k, &bl);
                if (helped)
                    help_crew(&crew, ws, nws, t);
            }
        } else {
            for (int r = 0; r < restarts; r++)
                run_restart(p, opts, r, tol_abs, par, &ws[0], &res[r], rcenters + (size_t)r * 3 * k,
                            rsizes + (size_t)r * k, &bl);
        }
        for (int r = 0; r < restarts; r++) {
            if (res[r].cancelled) {
                st =
                    kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted during the fit of k = %zu", k);
                goto done;
            }
        }
        for (int r = 0; r < restarts; r++) {
            rinertia[r] = res[r].inertia;
            evals += res[r].evals;
            init_evals += res[r].init_evals;
            init_s += res[r].init_s;
            lloyd_s += res[r].lloyd_s;
            iters_total += (uint64_t)res[r].iterations;
            if (res[r].inertia < res[best].inertia)
                best = r;
        }
        memcpy(centers, rcenters + (size_t)best * 3 * k, 3 * k * sizeof *centers);
        memcpy(sizes, rsizes + (size_t)best * k, k * sizeof *sizes);
        assert(bl.r == best);
        inertia = res[best].inertia;
        iterations = res[best].iterations;
        converged = res[best].converged;
    }
    out->k = k;
    out->k_effective = k_eff;
    out->centers = centers;
    out->sizes = sizes;
    out->labels = labels;
    out->inertia = inertia;
    out->iterations = iterations;
    out->converged = converged;
    out->best_restart = best;
    out->restarts = restarts;
    out->restart_inertia = rinertia;
    out->distance_evals = evals;
    out->iterations_total = iters_total;
    out->init_evals = init_evals;
    if (k < p->n) {
        out->brute_init_evals = (uint64_t)restarts * kmq__init_brute_evals(p->n, k, opts->init);
        out->brute_lloyd_evals = (iters_total + (uint64_t)restarts) * k * p->n;
    }
    out->init_s = init_s;
    out->lloyd_s = lloyd_s;
    out->runs_side_by_side = nws > 1;
    centers = NULL;
    sizes = NULL;
    labels = NULL;
    rinertia = NULL;
done:
    for (int t = 0; ws && t < nws; t++) {
        kmq__lloyd_ws_free(&ws[t].lloyd);
        kmq__init_ws_free(&ws[t].init);
    }
    kmq__free(ws);
    kmq__free(res);
    kmq__free(rcenters);
    kmq__free(rsizes);
    kmq__free(centers);
    kmq__free(sizes);
    kmq__free(labels);
    kmq__free(rinertia);
    return st;
}

kmq_status kmq_kmeans_fit_prepared(const kmq_kmeans_prepared *prep, const kmq_kmeans_opts *opts,
                                   const kmq_par *par, kmq_fit *out, kmq_err *err)
{
    if (!prep)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs prepared points");
    return fit_algo(prep, opts, par, KMQ__ALGO_AUTO, out, err);
}

kmq_status kmq__kmeans_fit_algo(const kmq_points *pts, const kmq_kmeans_opts *opts,
                                const kmq_par *par, kmq__algo algo, kmq_fit *out, kmq_err *err)
{
    kmq_kmeans_prepared *p = NULL;
    kmq_status st = check_fit_args(opts, par, out, err);
    if (st == KMQ_OK)
        st = kmq_kmeans_prepared_new(pts, par, &p, err);
    if (st == KMQ_OK)
        st = fit_algo(p, opts, par, algo, out, err);
    kmq_kmeans_prepared_free(p);
    return st;
}

kmq_status kmq_kmeans_fit(const kmq_points *pts, const kmq_kmeans_opts *opts, const kmq_par *par,
                          kmq_fit *out, kmq_err *err)
{
    return kmq__kmeans_fit_algo(pts, opts, par, KMQ__ALGO_AUTO, out, err);
}

/* ---- one run from given centres -------------------------------------------- */

kmq_status kmq_kmeans_lloyd(const kmq_points *pts, size_t k, const double *init_centers,
                            int max_iter, double tol, const kmq_par *par, kmq_fit *out,
                            kmq_err *err)
{
    return kmq__kmeans_lloyd_algo(pts, k, init_centers, max_iter, tol, par, KMQ__ALGO_AUTO, out,
                                  err);
}

kmq_status kmq__kmeans_lloyd_algo(const kmq_points *pts, size_t k, const double *init_centers,
                                  int max_iter, double tol, const kmq_par *par, kmq__algo algo,
                                  kmq_fit *out, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = KMQ_OK;
    kmq_kmeans_prepared *p = NULL;
    kmq__lloyd_ws ws = {0};
    double *centers = NULL, *rinertia = NULL;
    uint64_t *sizes = NULL;
    uint8_t *labels = NULL;
    kmq__lloyd_result res;

    if (!out)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs a result");
    st = check_par(par, err);
    if (st == KMQ_OK)
        st = check_run_opts(k, max_iter, tol, err);
    if (st == KMQ_OK)
        st = check_centers(init_centers, k, err);
    if (st == KMQ_OK)
        st = kmq_kmeans_prepared_new(pts, par, &p, err);
    if (st != KMQ_OK)
        goto done;
    if (k > p->n) {
        st = kmq_err_set(err, KMQ_E_ARG, "k = %zu exceeds the %zu distinct colours", k, p->n);
        goto done;
    }
    centers = kmq__alloc_array(3 * k, sizeof *centers);
    sizes = kmq__alloc_array(k, sizeof *sizes);
    rinertia = kmq__alloc_array(1, sizeof *rinertia);
    labels = kmq__alloc(p->n);
    if (!centers || !sizes || !rinertia || !labels) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a k = %zu result", k);
        goto done;
    }
    st = kmq__lloyd_ws_alloc(&ws, p, k, lloyd_method(algo, k), par->threads, err);
    if (st != KMQ_OK)
        goto done;
    memcpy(ws.cur, init_centers, 3 * k * sizeof *ws.cur);
    const double t0 = kmq_par_now_s();
    kmq__lloyd_run(p, max_iter, tol * p->mean_var, par, NULL, &ws, &res);
    const double t1 = kmq_par_now_s();
    memcpy(centers, ws.cur, 3 * k * sizeof *centers);
    for (size_t j = 0; j < k; j++)
        sizes[j] = ws.as.tot[4 * j + 3];
    memcpy(labels, ws.as.acc_lab, p->n);
    rinertia[0] = res.inertia;
    out->k = k;
    out->k_effective = k;
    out->centers = centers;
    out->sizes = sizes;
    out->labels = labels;
    out->inertia = res.inertia;
    out->iterations = res.iterations;
    out->converged = res.converged;
    out->best_restart = 0;
    out->restarts = 1;
    out->restart_inertia = rinertia;
    out->distance_evals = res.evals;
    out->iterations_total = (uint64_t)res.iterations;
    out->brute_lloyd_evals = ((uint64_t)res.iterations + 1) * k * p->n;
    out->init_s = 0.0;
    out->lloyd_s = t1 - t0;
    out->runs_side_by_side = false;
    centers = NULL;
    sizes = NULL;
    labels = NULL;
    rinertia = NULL;
done:
    kmq__lloyd_ws_free(&ws);
    kmq__free(centers);
    kmq__free(sizes);
    kmq__free(labels);
    kmq__free(rinertia);
    kmq_kmeans_prepared_free(p);
    return st;
}

/* ---- initial centres --------------------------------------------------------- */

kmq_status kmq_kmeans_init_centers(const kmq_points *pts, size_t k, kmq_init init, uint64_t seed,
                                   int restart, const kmq_par *par, double *centers, kmq_err *err)
{
    return kmq__kmeans_init_algo(pts, k, init, seed, restart, par, KMQ__ALGO_AUTO, centers, err);
}

kmq_status kmq__kmeans_init_algo(const kmq_points *pts, size_t k, kmq_init init, uint64_t seed,
                                 int restart, const kmq_par *par, kmq__algo algo, double *centers,
                                 kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = KMQ_OK;
    kmq_kmeans_prepared *p = NULL;
    kmq__init_ws ws = {0};
    if (init != KMQ_INIT_KMEANSPP && init != KMQ_INIT_RANDOM)
        return kmq_err_set(err, KMQ_E_ARG, "unknown k-means init %d", (int)init);
    if (restart < 0)
        return kmq_err_set(err, KMQ_E_ARG, "restart index %d is negative", restart);
    if (!centers || !par || par->threads < 1)
        return kmq_err_set(err, KMQ_E_ARG, "k-means init needs centre storage and threads >= 1");
    st = kmq__prepared_new(pts, par, false, &p, err);
    if (st != KMQ_OK)
        goto done;
    if (k < 1 || k > KMQ_MAX_K || k > p->n) {
        st = kmq_err_set(err, KMQ_E_ARG, "k = %zu is outside 1..%zu (max %d, %zu colours)", k,
                         p->n < KMQ_MAX_K ? p->n : (size_t)KMQ_MAX_K, KMQ_MAX_K, p->n);
        goto done;
    }
    st = kmq__init_ws_alloc(&ws, p, init, algo != KMQ__ALGO_PLAIN, err);
    if (st != KMQ_OK)
        goto done;
    kmq__init_run(p, k, init, seed, restart, par, &ws, centers);
done:
    kmq__init_ws_free(&ws);
    kmq_kmeans_prepared_free(p);
    return st;
}

/* ---- labelling --------------------------------------------------------------- */

kmq_status kmq_kmeans_assign_prepared(const kmq_kmeans_prepared *prep, const double *centers,
                                      size_t k, const kmq_par *par, uint8_t *labels,
                                      double *inertia, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq__assign_ws ws = {0};
    if (!prep)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs prepared points");
    kmq_status st = check_assign_args(centers, k, par, labels, inertia, err);
    if (st == KMQ_OK)
        st = kmq__assign_ws_alloc(&ws, prep, k, KMQ__ASSIGN_F32, par->threads, err);
    if (st != KMQ_OK)
        return st;
    kmq__assign_pass(prep, centers, true, par, &ws, labels);
    *inertia = ws.inertia;
    kmq__assign_ws_free(&ws);
    return KMQ_OK;
}

kmq_status kmq_kmeans_assign(const kmq_points *pts, const double *centers, size_t k,
                             const kmq_par *par, uint8_t *labels, double *inertia, kmq_err *err)
{
    kmq_kmeans_prepared *p = NULL;
    kmq_status st = check_assign_args(centers, k, par, labels, inertia, err);
    if (st == KMQ_OK)
        st = kmq__prepared_new(pts, par, false, &p, err);
    if (st == KMQ_OK)
        st = kmq_kmeans_assign_prepared(p, centers, k, par, labels, inertia, err);
    kmq_kmeans_prepared_free(p);
    return st;
}
