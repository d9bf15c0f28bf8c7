/* kmeans_init_kernels.h — the kernels of k-means++'s O(n) passes (layer
 * L1, private to src/kmeans): D^2 updates, block sums, and the candidates'
 * potentials, plain and pruned, with the small vector helpers their
 * callers share. kmeans_init.c says what they compute and why the pruned
 * ones give the plain ones' bits ("Exact sums", "Pruning"). Nothing here
 * is installed.
 */
#ifndef KMQ_KMEANS_INIT_KERNELS_H
#define KMQ_KMEANS_INIT_KERNELS_H

#include "kmeans_init.h"
#include "kmeans_points.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Points (or candidates) per float vector of the pruned kernels. */
#define GAIN_LANES 8
typedef float f32x8 __attribute__((vector_size(4 * GAIN_LANES)));
typedef int32_t i32x8 __attribute__((vector_size(4 * GAIN_LANES)));

/* Doubles per vector. */
typedef double f64x4 __attribute__((vector_size(8 * GAIN_LANES / 2)));
typedef int64_t i64x4 __attribute__((vector_size(8 * GAIN_LANES / 2)));

/* The candidates of one step as float vectors, for the box tests: lanes
 * past the last candidate far outside the cube. */
typedef struct trial_soa {
    f32x8 x, y, z;
} trial_soa;

/* The lane of trial_soa that holds the pending centre (kmeans_init.c, trial_group). */
#define PENDING_LANE (GAIN_LANES - 1)
_Static_assert(KMQ__MAX_TRIALS <= PENDING_LANE, "a lane for the pending centre");

static inline void trial_soa_set(const double *cand, size_t ntrials, const double *pending,
                                 trial_soa *cs)
{
    for (size_t q = 0; q < GAIN_LANES; q++) {
        const double *c = q < ntrials ? cand + 3 * q : q == PENDING_LANE ? pending : NULL;
        cs->x[q] = c ? (float)c[0] : 1.0e6f;
        cs->y[q] = c ? (float)c[1] : 1.0e6f;
        cs->z[q] = c ? (float)c[2] : 1.0e6f;
    }
}

/* Bit t set where candidate t's squared distance to box is < dmax: the
 * candidates that can reach a point of the box (see "Pruning"). Exact in
 * float: integer gaps <= 255. Inlined into each caller's clone. */
static inline unsigned reach_mask(const float *box, const trial_soa *cs, float dmax)
{
    const f32x8 zero = {0};
    f32x8 s = zero;
    const f32x8 *c[3] = {&cs->x, &cs->y, &cs->z};
    for (int d = 0; d < 3; d++) {
        f32x8 below = box[d] - *c[d], above = *c[d] - box[3 + d];
        f32x8 gap = (f32x8)((i32x8)below & (below > zero)) + (f32x8)((i32x8)above & (above > zero));
        s += gap * gap;
    }
    i32x8 in = s < dmax;
    unsigned mask = 0;
    for (unsigned q = 0; q < GAIN_LANES; q++)
        mask |= (unsigned)(in[q] & 1) << q;
    return mask;
}

/* visit[s] = -1 where (cx, cy, cz) can reach sub-block s of block blk
 * (its squared distance to the box below the sub-block's largest D^2),
 * else 0: the 8 sub-blocks in one vector. Exact: integer gaps. */
static inline void sub_reach(const kmq_kmeans_prepared *p, const kmq__init_ws *ws, size_t blk,
                             float cx, float cy, float cz, int32_t *visit)
{
    const f32x8 zero = {0};
    const float *sb = p->sub_box + 6 * KMQ__SUBS * blk;
    const float c[3] = {cx, cy, cz};
    f32x8 dist = zero, smax;
    for (int d = 0; d < 3; d++) {
        f32x8 lo, hi;
        memcpy(&lo, sb + (size_t)d * KMQ__SUBS, sizeof lo);
        memcpy(&hi, sb + (size_t)(3 + d) * KMQ__SUBS, sizeof hi);
        f32x8 below = lo - c[d], above = c[d] - hi;
        f32x8 gap = (f32x8)((i32x8)below & (below > zero)) + (f32x8)((i32x8)above & (above > zero));
        dist += gap * gap;
    }
    memcpy(&smax, ws->sub_max + KMQ__SUBS * blk, sizeof smax);
    i32x8 in = dist < smax;
    memcpy(visit, &in, sizeof in);
}

/* One past the last point of block blk. */
static inline size_t kmq__init_block_end(const kmq_kmeans_prepared *p, size_t blk)
{
    size_t hi = (blk + 1) * KMQ__BLOCK;
    return hi < p->n ? hi : p->n;
}

/* Kernel: D^2 of points [lo, hi) against centre c (first: replace, else
 * keep the minimum); returns the largest D^2 (0 if empty). */
KMQ_PRIVATE float kmq__init_update_range(const kmq_kmeans_prepared *p, size_t lo, size_t hi,
                                         const double *c, bool first, float *d2);

/* Sum w D^2 over points [lo, hi) in point order. */
KMQ_PRIVATE double kmq__init_block_mass(const kmq_kmeans_prepared *p, size_t lo, size_t hi,
                                        const float *d2);

/* Kernel of the unpruned reference: for each of the nl candidates in
 * live, sum w min(D^2, |x - c|^2) over points [lo, hi) in point order,
 * into out[q]. */
KMQ_PRIVATE void kmq__init_trial_plain(const kmq_kmeans_prepared *p, size_t lo, size_t hi,
                                       const float *d2, const double *cand, const size_t *live,
                                       size_t nl, double *out);

/* Kernel of the pruned method: for each candidate t of reach (a bit mask),
 * block blk's sum w min(D^2, |x - c|^2) into out[t]; returns the distances
 * evaluated. */
KMQ_PRIVATE uint64_t kmq__init_trial_gain(const kmq_kmeans_prepared *p, size_t blk,
                                          const kmq__init_ws *ws, const trial_soa *cs,
                                          unsigned reach, double *out);

#endif
