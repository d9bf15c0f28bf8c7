/* kmeans_init.h — private interface between kmeans.c and kmeans_init.c
 * (layer L1). Nothing here is installed.
 *
 * kmeans.c runs Lloyd over prepared points (kmeans_points.h);
 * kmeans_init.c draws the initial centres. Both have the same two drivers:
 * given a kmq_par they open chunk-parallel regions, given NULL they run
 * serially and are then safe to call inside a region (one run per thread,
 * each with its own workspace). Both drivers call the same per-chunk
 * kernels and fold the chunk partials in chunk order, so they give the same
 * bits.
 */
#ifndef KMQ_KMEANS_INIT_H
#define KMQ_KMEANS_INIT_H

#include "kmeans_points.h"
#include "internal.h"
#include "kmq/kmeans.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most k-means++ local trials: 2 + floor(ln 256) = 7. */
#define KMQ__MAX_TRIALS 7

/* Which implementation runs Lloyd and k-means++. AUTO picks by k (rule in
 * kmeans.c); PLAIN is the brute-force reference (every distance computed),
 * kept so that tests can check that BOUNDS (distance pruning) gives the same
 * bits. */
typedef enum kmq__algo { KMQ__ALGO_AUTO = 0, KMQ__ALGO_PLAIN = 1, KMQ__ALGO_BOUNDS = 2 } kmq__algo;

/* Selection rule of KMQ__ALGO_AUTO: Lloyd runs with Hamerly bounds from
 * this k up; below, the float32 brute force (16 colours in AVX2 registers
 * per pass over the centres) is faster than the bound upkeep and neighbour
 * scans. Measured with kmq bench, 10 restarts, 1 thread, the two builds
 * alternating (medians of 9 and 6 runs): brute force / bounds fit time on
 * china.jpg (96,615 colours) 0.79 at k = 100, 0.81 at 128, 0.94 at 160,
 * 1.18 at 192, 1.26 at 256; on a 16 MP photo (362,070 colours) 0.84,
 * 0.93, 1.07 at k = 128, 160, 192. (Before the float32 kernel's FMA form
 * the crossing was near k = 100.) */
#define KMQ__BOUNDS_MIN_K 176
/* Scratch of one initialisation run: everything kmq__init_run writes
 * besides the centres, so that it allocates nothing. */
typedef struct kmq__init_ws {
    double *d2;               /* k-means++: n, squared distance to the nearest chosen centre
                                 (a stale block's lags one centre: "Deferred") */
    double *chunk_sum;        /* k-means++: chunks, sum of w * d2 per chunk */
    double *chunk_pot;        /* k-means++: chunks * KMQ__MAX_TRIALS, trial potentials per chunk */
    uint64_t *chunk_w;        /* random: chunks, weight of the points not yet drawn */
    unsigned char *taken;     /* random: n, 1 once a point is a centre */
    double *block_sum;        /* k-means++: blocks, sum of w * d2 per block (stale: block_pot) */
    double *block_max;        /* k-means++: blocks, largest d2 of the block (stale: lags) */
    bool prune;               /* k-means++ skips blocks a centre cannot reach */
    double *block_pot;        /* k-means++: blocks * KMQ__MAX_TRIALS, trial potentials per block */
    uint64_t *group_evals;    /* k-means++: per work unit (kmeans_init.c), distance evaluations */
    uint16_t *block_upto;     /* k-means++: blocks, d2 covers centres 0..block_upto ("Deferred") */
    size_t pending;           /* k-means++: the last centre chosen; blocks short of it are stale */
    size_t pending_trial;     /* k-means++: the trial it won (its block_pot: a stale block's sum) */
    double pending_center[3]; /* k-means++: that centre */
    uint64_t evals;           /* distance evaluations of the last kmq__init_run */
} kmq__init_ws;

/* Scratch for one initialisation over p (any k); algo decides whether
 * k-means++ prunes (AUTO and BOUNDS do, PLAIN does not: same bits either
 * way). */
KMQ_PRIVATE kmq_status kmq__init_ws_alloc(kmq__init_ws *ws, const kmq_kmeans_prepared *p,
                                          kmq_init init, kmq__algo algo, kmq_err *err);
KMQ_PRIVATE void kmq__init_ws_free(kmq__init_ws *ws);

/* Draws k <= p->n distinct points as initial centres (k * 3 doubles) from
 * the stream kmq_rng_init(seed, k, restart). par: chunk-parallel driver;
 * NULL: serial, safe inside a parallel region. Cannot fail. */
KMQ_PRIVATE void kmq__init_run(const kmq_kmeans_prepared *p, size_t k, kmq_init init, uint64_t seed,
                               int restart, const kmq_par *par, kmq__init_ws *ws, double *centers);

/* How kmq_kmeans_fit runs `restarts` restarts over n points on `threads`
 * threads: true = whole restarts per thread, each run serial; false = one
 * restart after the other, each chunk-parallel. Either gives the same
 * bits. */
KMQ_PRIVATE bool kmq__restart_parallel(size_t n, int restarts, int threads);

/* The public kmq_kmeans_init_centers / kmq_kmeans_fit / kmq_kmeans_lloyd
 * with the implementation chosen (they pass KMQ__ALGO_AUTO). For tests and
 * benchmarks: every algo gives the same bits. kmq__kmeans_lloyd_algo also
 * writes the final assignment into labels[n] when labels is not NULL.
 * Drivers. */
KMQ_PRIVATE kmq_status kmq__kmeans_init_algo(const kmq_points *pts, size_t k, kmq_init init,
                                             uint64_t seed, int restart, const kmq_par *par,
                                             kmq__algo algo, double *centers, kmq_err *err);
KMQ_PRIVATE kmq_status kmq__kmeans_fit_algo(const kmq_points *pts, const kmq_kmeans_opts *opts,
                                            const kmq_par *par, kmq__algo algo, kmq_fit *out,
                                            kmq_err *err);
KMQ_PRIVATE kmq_status kmq__kmeans_lloyd_algo(const kmq_points *pts, size_t k,
                                              const double *init_centers, int max_iter, double tol,
                                              const kmq_par *par, kmq__algo algo, kmq_fit *out,
                                              uint8_t *labels, kmq_err *err);

#endif
