/* kmeans_init.h — initial centres for weighted k-means (layer L1,
 * private to src/kmeans). Nothing here is installed.
 *
 * kmeans_init.c draws a run's initial centres (k-means++ or random) from
 * prepared points (kmeans_points.h); kmeans.c calls it once per restart.
 * Like the assignment passes it has two drivers: given a kmq_par it opens
 * chunk-parallel regions, given NULL it runs serially and is then safe to
 * call inside a region (one run per thread, each with its own workspace).
 * Both call the same per-chunk kernels and fold the chunk partials in
 * chunk order, so they give the same bits.
 */
#ifndef KMQ_KMEANS_INIT_H
#define KMQ_KMEANS_INIT_H

#include "kmeans_points.h"
#include "internal.h"
#include "kmq/kmeans.h"
#include "kmq/par.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most k-means++ local trials: 2 + floor(ln 256) = 7. */
#define KMQ__MAX_TRIALS 7

/* Scratch of one initialisation run: everything kmq__init_run writes
 * besides the centres, so that it allocates nothing. */
typedef struct kmq__init_ws {
    float *d2;                /* k-means++: n, squared distance to the nearest chosen centre
                                 (a stale block's lags one centre: "Deferred"); exact */
    double *chunk_sum;        /* k-means++: chunks, sum of w * d2 per chunk */
    double *chunk_pot;        /* k-means++: chunks * KMQ__MAX_TRIALS, trial potentials per chunk */
    uint64_t *chunk_w;        /* random: chunks, weight of the points not yet drawn */
    unsigned char *taken;     /* random: n, 1 once a point is a centre */
    double *block_sum;        /* k-means++: blocks, sum of w * d2 per block (stale: block_pot) */
    double *block_max;        /* k-means++: blocks, largest d2 of the block (stale: lags) */
    bool prune;               /* k-means++ skips blocks a centre cannot reach */
    double *block_pot;        /* k-means++: blocks * KMQ__MAX_TRIALS, trial potentials per block */
    uint64_t *group_evals;    /* k-means++: per work unit (kmeans_init.c), distance evaluations */
    float *sub_max;           /* k-means++: KMQ__SUBS per block, largest d2 of each sub-block */
    float *group_box;         /* k-means++: per work unit, the union of its blocks' boxes */
    uint16_t *block_upto;     /* k-means++: blocks, d2 covers centres 0..block_upto ("Deferred") */
    size_t pending;           /* k-means++: the last centre chosen; blocks short of it are stale */
    size_t pending_trial;     /* k-means++: the trial it won (its block_pot: a stale block's sum) */
    double pending_center[3]; /* k-means++: that centre */
    uint64_t evals;           /* distance evaluations of the last kmq__init_run */
} kmq__init_ws;

/* Scratch for one initialisation over p (any k; p borrowed: it must
 * outlive ws); `prune`: k-means++ skips the blocks a candidate cannot
 * reach (the same bits either way; tests turn it off). Returns KMQ_OK or
 * KMQ_E_NOMEM; ws is then safe to free. */
KMQ_PRIVATE kmq_status kmq__init_ws_alloc(kmq__init_ws *ws, const kmq_kmeans_prepared *p,
                                          kmq_init init, bool prune, kmq_err *err);
KMQ_PRIVATE void kmq__init_ws_free(kmq__init_ws *ws);

/* The distances brute-force `init` would compute for k centres over n
 * points (kmq_fit's brute_init_evals). */
KMQ_PRIVATE uint64_t kmq__init_brute_evals(size_t n, size_t k, kmq_init init);

/* Draws k <= p->n distinct points as initial centres (k * 3 doubles) from
 * the stream kmq_rng_init(seed, k, restart). par: chunk-parallel driver;
 * NULL: serial, safe inside a parallel region. Cannot fail. */
KMQ_PRIVATE void kmq__init_run(const kmq_kmeans_prepared *p, size_t k, kmq_init init, uint64_t seed,
                               int restart, const kmq_par *par, kmq__init_ws *ws, double *centers);

#endif
