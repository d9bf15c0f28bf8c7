/* kmeans_init.h — private interface between kmeans.c and kmeans_init.c
 * (layer L1). Nothing here is installed.
 *
 * kmeans.c prepares the points once per call (kmq__pts) and runs Lloyd;
 * kmeans_init.c draws the initial centres. Both have the same two drivers:
 * given a kmq_par they open chunk-parallel regions, given NULL they run
 * serially and are then safe to call inside a region (one run per thread,
 * each with its own workspace). Both drivers call the same per-chunk
 * kernels and fold the chunk partials in chunk order, so they give the same
 * bits.
 */
#ifndef KMQ_KMEANS_INIT_H
#define KMQ_KMEANS_INIT_H

#include "internal.h"
#include "kmq/kmeans.h"

#include <stddef.h>
#include <stdint.h>

/* Most k-means++ local trials: 2 + floor(ln 256) = 7. */
#define KMQ__MAX_TRIALS 7

/* Points as the kernels read them: coordinates in structure-of-arrays form
 * (float holds 0..255 exactly, at half the memory of double), weights and
 * keys borrowed from the caller's kmq_points. */
typedef struct kmq__pts {
    size_t n;
    size_t chunks; /* kmq_par_chunks(n) */
    float *r;      /* owned, n each */
    float *g;
    float *b;
    const uint64_t *w;    /* borrowed */
    const uint32_t *keys; /* borrowed */
    uint64_t *chunk_w;    /* owned, chunks: total weight of each chunk */
    uint64_t total_w;     /* sum of the weights, <= UINT64_MAX / 255^2 */
    double mean_var;      /* mean over the 3 channels of the weighted variance */
} kmq__pts;

/* Checks pts (keys within 24 bits, weights >= 1, total weight small enough
 * for exact uint64 moments) and builds the prepared copy. Serial, O(n).
 * Returns KMQ_OK, KMQ_E_ARG or KMQ_E_NOMEM; `out` is then safe to free. */
KMQ_PRIVATE kmq_status kmq__pts_build(const kmq_points *pts, kmq__pts *out, kmq_err *err);
KMQ_PRIVATE void kmq__pts_free(kmq__pts *p);

/* Scratch of one initialisation run: everything kmq__init_run writes
 * besides the centres, so that it allocates nothing. */
typedef struct kmq__init_ws {
    double *d2;           /* k-means++: n, squared distance to the nearest chosen centre */
    double *chunk_sum;    /* k-means++: chunks, sum of w * d2 per chunk */
    double *chunk_pot;    /* k-means++: chunks * KMQ__MAX_TRIALS, trial potentials per chunk */
    uint64_t *chunk_w;    /* random: chunks, weight of the points not yet drawn */
    unsigned char *taken; /* random: n, 1 once a point is a centre */
} kmq__init_ws;

KMQ_PRIVATE kmq_status kmq__init_ws_alloc(kmq__init_ws *ws, const kmq__pts *p, kmq_init init,
                                          kmq_err *err);
KMQ_PRIVATE void kmq__init_ws_free(kmq__init_ws *ws);

/* Draws k <= p->n distinct points as initial centres (k * 3 doubles) from
 * the stream kmq_rng_init(seed, k, restart). par: chunk-parallel driver;
 * NULL: serial, safe inside a parallel region. Cannot fail. */
KMQ_PRIVATE void kmq__init_run(const kmq__pts *p, size_t k, kmq_init init, uint64_t seed,
                               int restart, const kmq_par *par, kmq__init_ws *ws, double *centers);

#endif
