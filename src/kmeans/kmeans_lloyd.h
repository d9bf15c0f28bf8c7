/* kmeans_lloyd.h — one run of weighted Lloyd from given centres (layer
 * L1, private to src/kmeans). Nothing here is installed.
 *
 * kmeans_lloyd.c iterates assignment passes (kmeans_assign.h) and centre
 * updates, reseeding empty clusters, until the centres settle; kmeans.c
 * runs it once per restart. Like the passes, kmq__lloyd_run has two
 * drivers: given a kmq_par it opens chunk-parallel regions, given NULL it
 * runs serially and is then safe inside a region (one run per thread,
 * each with its own workspace). Both give the same bits.
 */
#ifndef KMQ_KMEANS_LLOYD_H
#define KMQ_KMEANS_LLOYD_H

#include "kmeans_assign.h"
#include "kmeans_points.h"
#include "internal.h"
#include "kmq/error.h"
#include "kmq/par.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A reseeding candidate (kmeans_lloyd.c). */
typedef struct kmq__far_point kmq__far_point;

/* Scratch of one run: allocated once, before any parallel region, and
 * reused by every iteration and by every run that uses it. */
typedef struct kmq__lloyd_ws {
    kmq__assign_ws as;       /* the assignment passes: method, sums, labels */
    double *cur;             /* 3k: centres of this iteration */
    double *next;            /* 3k: centres after the update */
    kmq__far_point *far;     /* chunks * k: farthest points of each chunk */
    size_t *far_n;           /* chunks: how many of them */
    kmq__far_point *far_all; /* k: farthest points overall */
    size_t *empty;           /* k: clusters left empty */
} kmq__lloyd_ws;

typedef struct kmq__lloyd_result {
    double inertia; /* of the final centres */
    int iterations; /* Lloyd iterations run */
    bool converged; /* stopped on tol, not max_iter */
    bool cancelled; /* stopped by the cancel flag: the run is not a result */
    uint64_t evals; /* distance evaluations of the run's passes */
} kmq__lloyd_result;

/* Scratch for k centres, `method` and `slots` threads over p (borrowed: it
 * must outlive ws). Returns KMQ_OK or KMQ_E_NOMEM; ws is then safe to
 * free. */
KMQ_PRIVATE kmq_status kmq__lloyd_ws_alloc(kmq__lloyd_ws *ws, const kmq_kmeans_prepared *p,
                                           size_t k, kmq__assign_method method, int slots,
                                           kmq_err *err);
KMQ_PRIVATE void kmq__lloyd_ws_free(kmq__lloyd_ws *ws);

/* Lloyd from the k centres in ws->cur (k <= p->n), at most max_iter
 * iterations, stopping once the centres move by at most tol_abs in all.
 * On return (unless res->cancelled) ws->cur holds the final centres,
 * ws->as.tot their sums (sizes: tot[4 j + 3]) and ws->as.acc_lab the label
 * of every point under them. Polls cancel (may be NULL) before each
 * iteration. Driver: par as kmq__assign_pass (NULL: serial, safe inside a
 * region). */
KMQ_PRIVATE void kmq__lloyd_run(const kmq_kmeans_prepared *p, int max_iter, double tol_abs,
                                const kmq_par *par, const atomic_int *cancel, kmq__lloyd_ws *ws,
                                kmq__lloyd_result *res);

static inline bool kmq__cancelled(const atomic_int *cancel)
{
    return cancel && atomic_load(cancel) != 0;
}

#endif
