/* kmeans_internal.h — what kmeans.c shows its tests and benchmarks: the
 * choice of implementation and the restart schedule (layer L1, private to
 * src/kmeans). Nothing here is installed.
 */
#ifndef KMQ_KMEANS_INTERNAL_H
#define KMQ_KMEANS_INTERNAL_H

#include "kmeans_points.h"
#include "internal.h"
#include "kmq/kmeans.h"
#include "kmq/par.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which implementation runs Lloyd and k-means++. AUTO picks by k (below);
 * PLAIN is the brute-force reference (every distance computed), kept so
 * that tests can check that BOUNDS (distance pruning) gives the same
 * bits. */
typedef enum kmq__algo { KMQ__ALGO_AUTO = 0, KMQ__ALGO_PLAIN = 1, KMQ__ALGO_BOUNDS = 2 } kmq__algo;

/* Selection rule of KMQ__ALGO_AUTO: Lloyd runs with Hamerly bounds from
 * this k up; below, the float32 scan (16 colours in AVX2 registers per pass
 * over the centres), each block of 256 colours against only the centres
 * that can be nearest to some point of its box (kmeans_assign_f32.c). With
 * that filter the scan beats the bounds at every k <= KMQ_MAX_K, so AUTO
 * never picks them (the bound is KMQ_MAX_K + 1; BOUNDS stays for the tests
 * and as the method for larger k should KMQ_MAX_K grow). Measured with
 * kmq bench, 1 thread, both builds alternating: ms per iteration, filtered
 * scan / Hamerly, 0.55-0.73 at k = 256 on a 12.5 MP photo (932,548
 * colours) and 0.70-0.79 on china.jpg (96,615 colours); filtered / plain
 * scan 0.51-0.61 at k = 64 and 0.31-0.52 at k = 128 on the 12.5 MP photo.
 * (Without the filter the crossing was near k = 176.) Those figures are the
 * filter's first version; its two-level vectorised box test since made an
 * iteration about twice faster again (docs/performance.md, "The pruned
 * fit"). */
#define KMQ__BOUNDS_MIN_K (KMQ_MAX_K + 1)

/* How kmq_kmeans_fit runs `restarts` restarts over n points on `threads`
 * threads: true = whole restarts per thread, each run serial; false = one
 * restart after the other, each chunk-parallel. Either gives the same
 * bits. */
KMQ_PRIVATE bool kmq__restart_parallel(size_t n, int restarts, int threads);

/* The public kmq_kmeans_init_centers / kmq_kmeans_fit / kmq_kmeans_lloyd
 * with the implementation chosen (they pass KMQ__ALGO_AUTO). For tests and
 * benchmarks: every algo gives the same bits. Drivers. */
KMQ_PRIVATE kmq_status kmq__kmeans_init_algo(const kmq_points *pts, size_t k, kmq_init init,
                                             uint64_t seed, int restart, const kmq_par *par,
                                             kmq__algo algo, double *centers, kmq_err *err);
KMQ_PRIVATE kmq_status kmq__kmeans_fit_algo(const kmq_points *pts, const kmq_kmeans_opts *opts,
                                            const kmq_par *par, kmq__algo algo, kmq_fit *out,
                                            kmq_err *err);
KMQ_PRIVATE kmq_status kmq__kmeans_lloyd_algo(const kmq_points *pts, size_t k,
                                              const double *init_centers, int max_iter, double tol,
                                              const kmq_par *par, kmq__algo algo, kmq_fit *out,
                                              kmq_err *err);

#endif
