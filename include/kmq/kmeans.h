/* kmeans.h — weighted k-means over distinct colours (layer L1).
 *
 * Each point is a distinct colour with an integer weight (its pixel count).
 * Weighted Lloyd over the distinct colours is exactly Lloyd over all pixels:
 * every pixel of one colour has the same nearest centre, and the centre
 * update is a weighted mean whose integer sums are exact.
 *
 * Determinism (DESIGN §2): chunks of KMQ_CHUNK points, per-thread uint64
 * sums, per-chunk double partials folded in chunk order, ties broken by the
 * lowest index, one random stream per (seed, k, restart). The same input
 * gives the same bits for any thread count and without OpenMP.
 *
 * Functions marked "driver" open OpenMP regions and must not be called from
 * inside one; they use at most par->threads threads.
 */
#ifndef KMQ_KMEANS_H
#define KMQ_KMEANS_H

#include "kmq/error.h"
#include "kmq/par.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest k the library fits (indexed PNG palettes hold 256; labels are uint8). */
#define KMQ_MAX_K 256

/* Weighted points: borrowed views, n of each. Keys are 0xRRGGBB, each
 * colour at most once (a histogram's). */
typedef struct kmq_points {
    size_t n;
    const uint32_t *keys;
    const uint64_t *weights; /* each >= 1 */
} kmq_points;

/* Points prepared for the engine (opaque): the kmq_points checked and laid
 * out as the kernels read them, with the totals every fit needs. Build it
 * once per set of points and hand it to every fit, restart and labelling
 * over them; it is read-only after kmq_kmeans_prepared_new, so any number
 * of calls may share it. */
typedef struct kmq_kmeans_prepared kmq_kmeans_prepared;

/* Checks pts (keys within 24 bits and distinct, weights >= 1, total weight
 * at most UINT64_MAX / 255^2 pixels) and prepares them into *out: O(n),
 * and O(n log n) for the order Lloyd scans, built on par->threads threads
 * (par NULL: serial; either way the same result). Keeps pointers to
 * pts->keys and pts->weights, not copies: they must stay valid and
 * unchanged until kmq_kmeans_prepared_free. Returns KMQ_OK, KMQ_E_ARG (no
 * points, or a bad colour: the message names it) or KMQ_E_NOMEM. *out is
 * written only on success. Driver. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_prepared_new(const kmq_points *pts, const kmq_par *par,
                                                  kmq_kmeans_prepared **out, kmq_err *err);

/* Releases prep; NULL is a no-op. */
void kmq_kmeans_prepared_free(kmq_kmeans_prepared *prep);

typedef enum kmq_init { KMQ_INIT_KMEANSPP = 0, KMQ_INIT_RANDOM = 1 } kmq_init;

typedef struct kmq_kmeans_opts {
    size_t k;     /* 1..KMQ_MAX_K requested clusters */
    int restarts; /* >= 1 independent runs, best inertia kept */
    int max_iter; /* >= 1 Lloyd iterations per run */
    double tol;   /* >= 0, relative to the data's mean per-channel variance */
    kmq_init init;
    uint64_t seed;
    /* Polled before each restart and each Lloyd iteration: non-zero stops
     * the fit with KMQ_E_INTERRUPTED. NULL: never. Reading it changes no
     * result of a fit that runs to the end. */
    const atomic_int *cancel;
} kmq_kmeans_opts;

/* Result of a fit. Plain data: zero-initialise, fill with kmq_kmeans_fit,
 * release with kmq_fit_clear. */
typedef struct kmq_fit {
    size_t k;                  /* as requested */
    size_t k_effective;        /* min(k, distinct points) */
    double *centers;           /* k_effective * 3 (r, g, b), unrounded */
    uint64_t *sizes;           /* k_effective: pixels (weight) per cluster */
    uint8_t *labels;           /* one per point fitted, in their order: its nearest centre
                                  (lowest index on ties), as kmq_kmeans_assign gives it */
    double inertia;            /* sum of w * squared distance to the nearest centre */
    int iterations;            /* Lloyd iterations of the best run */
    bool converged;            /* best run stopped on tol, not max_iter */
    int best_restart;          /* index of the best run (lowest inertia, ties: lowest index) */
    int restarts;              /* number of runs */
    double *restart_inertia;   /* restarts entries, in restart order */
    uint64_t distance_evals;   /* point-centre distances computed, all runs (init + Lloyd):
                                  a work measure for benchmarks, same for any thread count */
    uint64_t iterations_total; /* Lloyd iterations summed over all runs */
    uint64_t init_evals;       /* the part of distance_evals spent drawing initial centres */
    /* What brute force would compute for the same runs: k-means++ every
     * candidate and every new centre against every point, (1 + (k - 1)(L +
     * 1)) n with L = 2 + floor(ln k) candidates a centre; Lloyd every
     * centre against every point in every pass, (iterations + 1) k n. So
     * 1 - init_evals / brute_init_evals, and 1 - (distance_evals -
     * init_evals) / brute_lloyd_evals, are the shares the pruning avoided. */
    uint64_t brute_init_evals, brute_lloyd_evals;
    /* Wall time of each run's two phases, drawing the initial centres and
     * Lloyd, as measured by the thread that ran the run, summed over runs
     * (runs side by side add up to more than the fit's wall time). Timing
     * only: it varies from fit to fit; everything above does not. */
    double init_s, lloyd_s;
    /* How the runs shared the threads: true = whole runs side by side, one
     * per thread; false = one run after the other, each split across the
     * threads (or one thread). Chosen from n, restarts and threads; it
     * changes the time, never a result. */
    bool runs_side_by_side;
} kmq_fit;

/* Releases what fit owns and zeroes it. */
void kmq_fit_clear(kmq_fit *fit);

/* Full fit over prepared points (borrowed): `restarts` runs of init +
 * Lloyd, the best kept, with the label of every point under its centres
 * (out->labels: no separate kmq_kmeans_assign needed for these points). k
 * above the number of distinct points fits k_effective = n clusters (each
 * point its own centre, label i for point i, inertia 0). Driver.
 * Returns KMQ_OK, KMQ_E_ARG (bad options), KMQ_E_INTERRUPTED
 * (opts->cancel was set) or KMQ_E_NOMEM. `out` is written only on
 * success. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_fit_prepared(const kmq_kmeans_prepared *prep,
                                                  const kmq_kmeans_opts *opts, const kmq_par *par,
                                                  kmq_fit *out, kmq_err *err);

/* kmq_kmeans_fit_prepared on points prepared for this one call (pts
 * borrowed); also KMQ_E_ARG for the points kmq_kmeans_prepared_new
 * rejects. Driver. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_fit(const kmq_points *pts, const kmq_kmeans_opts *opts,
                                         const kmq_par *par, kmq_fit *out, kmq_err *err);

/* kmq_kmeans_fit over RGBA colours (alpha = keep): keys are straight
 * 0xRRGGBBAA with every fully transparent colour key 0 (kmq/hist_rgba.h),
 * fitted at the premultiplied coordinates (a r, a g, a b, A), a = A/255, so
 * that the squared distance is the RGBA error of docs/design.md §19.
 * out->centers then holds 4 doubles a centre in that space (0..255 each);
 * inertia is in the same units. Same restarts, seeding, convergence rule
 * and determinism as the RGB fit, brute force (kmeans_rgba.c). Driver.
 * Returns KMQ_OK, KMQ_E_ARG, KMQ_E_INTERRUPTED or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_fit_rgba(const kmq_points *pts, const kmq_kmeans_opts *opts,
                                              const kmq_par *par, kmq_fit *out, kmq_err *err);

/* Lloyd from the given initial centres (k * 3 doubles in [0, 255], borrowed), the rest
 * as kmq_kmeans_fit with one run; fills `out` (restarts = 1). Used by tests
 * that compare with an independent reference from the same start. Driver. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_lloyd(const kmq_points *pts, size_t k,
                                           const double *init_centers, int max_iter, double tol,
                                           const kmq_par *par, kmq_fit *out, kmq_err *err);

/* Initial centres for run `restart` (k * 3 doubles into `centers`, caller's
 * storage): k-means++ greedy with 2 + floor(ln k) local trials per centre
 * (as scikit-learn), or `random` (k distinct points drawn with probability
 * proportional to weight). Requires k <= pts->n. Driver. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_init_centers(const kmq_points *pts, size_t k, kmq_init init,
                                                  uint64_t seed, int restart, const kmq_par *par,
                                                  double *centers, kmq_err *err);

/* Nearest centre (lowest index on ties) of each prepared point (prep
 * borrowed) into labels[n], and the inertia of that assignment (sum of
 * w * squared distance, folded in chunk order) into *inertia. `centers`
 * (borrowed) has 3 k doubles in [0, 255]. Driver. Returns KMQ_OK,
 * KMQ_E_ARG (bad k or centres) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_assign_prepared(const kmq_kmeans_prepared *prep,
                                                     const double *centers, size_t k,
                                                     const kmq_par *par, uint8_t *labels,
                                                     double *inertia, kmq_err *err);

/* kmq_kmeans_assign_prepared on points prepared for this one call (pts
 * borrowed). Driver. */
KMQ_MUST_CHECK kmq_status kmq_kmeans_assign(const kmq_points *pts, const double *centers, size_t k,
                                            const kmq_par *par, uint8_t *labels, double *inertia,
                                            kmq_err *err);

#endif
