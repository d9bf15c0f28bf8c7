/* kmeans_assign.h — nearest centres of all points, by one of three
 * methods behind one interface (layer L1, private to src/kmeans). Nothing
 * here is installed.
 *
 * A pass assigns every point to its nearest centre (smallest squared
 * distance as kmq__dist2 computes it; ties go to the lowest index) and
 * adds each point's integer moments w r, w g, w b, w into its cluster's
 * sums. The methods give the same labels, bit for bit (test_kmeans.c
 * checks them against each other on real photos):
 *
 *   KMQ__ASSIGN_PLAIN   every distance in double (kmeans_assign_plain.c):
 *                       the reference;
 *   KMQ__ASSIGN_F32     every distance in float32, close calls again in
 *                       double (kmeans_assign_f32.c);
 *   KMQ__ASSIGN_BOUNDS  Hamerly bounds skip most distances
 *                       (kmeans_assign_bounds.c).
 *
 * Each method is a kernel over a unit of points (kmq__<method>_unit: no
 * pragmas, safe inside a region; it writes only its own points, its
 * thread's sum slot and, in a final pass, its chunk's inertia slot).
 * kmeans_assign.c holds the two drivers that run the units, chunk-parallel
 * or serially, and fold what they wrote in a fixed order (docs/design.md).
 * kmeans_assign_plain.c also holds what the other methods share with the
 * reference: the exact scan of one point and the sums of a unit.
 */
#ifndef KMQ_KMEANS_ASSIGN_H
#define KMQ_KMEANS_ASSIGN_H

#include "kmeans_points.h"
#include "internal.h"
#include "kmq/error.h"
#include "kmq/par.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kmq__assign_method {
    KMQ__ASSIGN_PLAIN = 0,
    KMQ__ASSIGN_F32 = 1,
    KMQ__ASSIGN_BOUNDS = 2
} kmq__assign_method;

/* A list of centres in float, structure of arrays for the box tests of
 * the float32 method (kmeans_assign_f32.c), with their indices in the full
 * table (ascending). Entries n up to the next multiple of 8 are far
 * outside the cube, so whole vectors can be tested and those lanes are
 * never kept. */
typedef struct kmq__centre_list {
    size_t n;
    uint32_t idx[KMQ_MAX_K];
    float x[KMQ_MAX_K], y[KMQ_MAX_K], z[KMQ_MAX_K];
} kmq__centre_list;

/* Per-point bounds and centre-to-centre table of the Hamerly method
 * (kmeans_assign_bounds.c). */
typedef struct kmq__bounds kmq__bounds;

/* Threads that run whole restarts side by side (kmeans.c). A thread with
 * no restart left counts itself idle and joins the passes of the runs
 * still going (kmq__assign_help): without it, the last restart of a fit
 * runs alone while the other threads wait. */
typedef struct kmq__crew {
    atomic_int idle; /* threads with no restart left */
} kmq__crew;

/* Scratch and results of the passes over one set of points for one k:
 * allocated once, before any parallel region, and reused by every pass of
 * a run and by every run. */
typedef struct kmq__assign_ws {
    kmq__assign_method method;
    size_t k;
    int slots;                    /* per-thread slots = threads of the driver */
    size_t stride;                /* uint64 per slot: 4k + 2 rounded up to a cache line */
    void *sums_block;             /* allocation holding `sums` */
    uint64_t *sums;               /* slots * stride, cache-line aligned: a thread's w r, w g, w b,
                                     w per cluster, its distance evaluations, then which
                                     chunk its chunk_list holds in this pass (+ 1; 0: none) */
    double *buf;                  /* slots * 3 * KMQ_CHUNK: a thread's distance buffers */
    uint32_t *lab;                /* slots * KMQ_CHUNK: a thread's nearest centres */
    double *chunk_inertia;        /* chunks: each chunk's inertia in a final pass */
    float *cen_f32;               /* 4k: the pass's centres as kmq__f32_centres' table */
    kmq__centre_list *all;        /* the pass's centres as kmq__f32_list's (KMQ__ASSIGN_F32) */
    kmq__centre_list *chunk_list; /* slots: a thread's list of its last unit's chunk (F32) */
    uint8_t *acc_lab;             /* n: the label each point is counted under in tot */
    bool counted;                 /* tot holds the sums of acc_lab: passes add changes only */
    kmq__bounds *bounds;          /* KMQ__ASSIGN_BOUNDS only */
    uint64_t *tot;                /* 4k + 1: folded sums per cluster, then the pass's evaluations */
    double inertia;               /* of the last pass if it was final, else 0 */
    uint64_t evals;               /* distance evaluations since kmq__assign_reset */
    /* Side by side (crew not NULL): the serial driver opens its passes to
     * the crew's idle threads, which claim batches of units (kmeans_assign.c,
     * "Shared passes"). */
    kmq__crew *crew;
    _Atomic uint64_t open;             /* the open pass: generation, units, next unit */
    atomic_size_t helped;              /* units of the open pass its helpers have run */
    const kmq_kmeans_prepared *pass_p; /* the open pass's arguments */
    const double *pass_cen;
    uint8_t *pass_labels;
    bool pass_final;
} kmq__assign_ws;

/* Scratch for `method`, k centres and `slots` threads over p (borrowed: it
 * must outlive ws). Returns KMQ_OK or KMQ_E_NOMEM; ws is then safe to
 * free. */
KMQ_PRIVATE kmq_status kmq__assign_ws_alloc(kmq__assign_ws *ws, const kmq_kmeans_prepared *p,
                                            size_t k, kmq__assign_method method, int slots,
                                            kmq_err *err);
KMQ_PRIVATE void kmq__assign_ws_free(kmq__assign_ws *ws);

/* Forgets the sums and bounds of earlier passes: the next pass starts a
 * run. */
KMQ_PRIVATE void kmq__assign_reset(kmq__assign_ws *ws);

/* Forgets the sums and bounds but keeps the evaluation count: the next
 * pass counts every point afresh (when it runs over another order of the
 * points than the passes before it). */
KMQ_PRIVATE void kmq__assign_recount(kmq__assign_ws *ws);

/* One pass over all points against the k centres `cen` (borrowed): the
 * folded sums into ws->tot (a full count the first time after
 * kmq__assign_reset, then the changes: "Sums" in kmeans_assign_plain.c),
 * ws->acc_lab the labels they count. `final` (the last pass of a run, or
 * a plain labelling): also the inertia into ws->inertia, folded in chunk
 * order, and the labels into labels[n] if not NULL. Driver: par:
 * chunk-parallel on par->threads <= ws->slots threads; NULL: serial, safe
 * inside a region, and shared with ws->crew's idle threads once there are
 * any (then on the caller's slot kmq_par_thread_num(), < ws->slots). */
KMQ_PRIVATE void kmq__assign_pass(const kmq_kmeans_prepared *p, const double *cen, bool final,
                                  const kmq_par *par, kmq__assign_ws *ws, uint8_t *labels);

/* Runs, on thread slot `slot`, a batch of units of ws's open pass if one
 * is open to helpers and has units left; returns whether it ran any.
 * Kernel: called by an idle thread of ws->crew while ws's owner runs. */
KMQ_PRIVATE bool kmq__assign_help(kmq__assign_ws *ws, int slot);

/* One round of an idle wait (spins, then yields the CPU); *spins counts
 * the rounds. */
KMQ_PRIVATE void kmq__assign_pause(unsigned *spins);

/* ---- what every method shares ------------------------------------------ */

/* The squared distance exactly as every kernel computes it: float channel
 * promoted to double, minus the double centre, squares summed r + g + b.
 * Every path must use this expression (no reordering, and C11 mode keeps
 * GCC from contracting it to FMA) so that distances are the same bits. */
static inline double kmq__dist2(float r, float g, float b, const double *c)
{
    double dr = r - c[0], dg = g - c[1], db = b - c[2];
    return dr * dr + dg * dg + db * db;
}

/* Moves one point (colour key, weight w) from cluster `from` to cluster
 * `to` in the integer sums (uint64: exact; wraps only transiently). */
static inline void kmq__move_point(uint64_t *sums, uint32_t from, uint32_t to, uint32_t key,
                                   uint64_t w)
{
    uint64_t wr = w * (key >> 16), wg = w * ((key >> 8) & 0xff), wb = w * (key & 0xff);
    uint64_t *f = sums + 4 * (size_t)from, *t = sums + 4 * (size_t)to;
    f[0] -= wr;
    f[1] -= wg;
    f[2] -= wb;
    f[3] -= w;
    t[0] += wr;
    t[1] += wg;
    t[2] += wb;
    t[3] += w;
}

/* The plain scan of one point in double: smallest kmq__dist2, lowest index
 * on ties (strict <, ascending j), exactly as the plain method decides.
 * Kernel. */
KMQ_PRIVATE uint32_t kmq__nearest_exact(float x, float y, float z, const double *cen, size_t k);

/* Adds points [lo, lo + m) to the sums of their clusters lab[0..m) in
 * `sums` (one thread's slot), records the labels in ws->acc_lab and, if
 * not NULL, in labels[lo..lo + m); returns the inertia of the points
 * summed in point order from their squared distances dist[0..m) (0 when
 * dist is NULL). Kernel. */
KMQ_PRIVATE double kmq__assign_sums(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                    const double *dist, const uint32_t *lab, uint64_t *sums,
                                    kmq__assign_ws *ws, uint8_t *labels);

/* Nearest centre of points [lo, lo + m) in double, every distance
 * computed: lab[i] and the squared distances, returned in best or tmp (m
 * doubles each). Kernel: the plain method's, and the reseeding's. */
KMQ_PRIVATE const double *kmq__nearest_plain(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                             const double *cen, size_t k, double *best, double *tmp,
                                             uint32_t *restrict lab);

/* ---- the methods' unit kernels ---------------------------------------- */

/* Points [lo, lo + m) of a pass against `cen`, on thread slot `slot`, as
 * kmq__assign_pass describes (a final pass hands out whole chunks). */
KMQ_PRIVATE void kmq__plain_unit(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                 const double *cen, bool final, kmq__assign_ws *ws, int slot,
                                 uint8_t *labels);
KMQ_PRIVATE void kmq__f32_unit(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen,
                               bool final, kmq__assign_ws *ws, int slot, uint8_t *labels);
KMQ_PRIVATE void kmq__bounds_unit(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                  const double *cen, bool final, kmq__assign_ws *ws, int slot,
                                  uint8_t *labels);

/* All k centres of cen as a list, for the float32 method's filter. */
KMQ_PRIVATE void kmq__f32_list(const double *cen, size_t k, kmq__centre_list *all);

/* The Hamerly method's state for k centres and `slots` threads over p.
 * Returns KMQ_OK or KMQ_E_NOMEM (*out then NULL). */
KMQ_PRIVATE kmq_status kmq__bounds_new(const kmq_kmeans_prepared *p, size_t k, int slots,
                                       kmq__bounds **out, kmq_err *err);
KMQ_PRIVATE void kmq__bounds_free(kmq__bounds *b);
/* The next pass sets the bounds from scratch. */
KMQ_PRIVATE void kmq__bounds_reset(kmq__bounds *b);
/* Before a pass against `cen`: the drift of each centre since the last
 * pass and the centre-to-centre table. Driver (par: a region from k = 64;
 * NULL: serial). */
KMQ_PRIVATE void kmq__bounds_prepare(kmq__bounds *b, const double *cen, const kmq_par *par);

#endif
