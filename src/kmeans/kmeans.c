/* kmeans.c — weighted Lloyd k-means over distinct colours, with restarts
 * (layer L1).
 *
 * Includes kmeans.h, its private kmeans_init.h and kmeans_f32.h and L0 (par,
 * internal); no I/O, no printing.
 *
 * Weighted Lloyd. Point i is a distinct colour x_i with weight w_i (its
 * pixel count). An iteration assigns each point to its nearest centre
 * (squared Euclidean distance in double; ties go to the lowest index) and
 * moves centre j to sum_{i in j} w_i x_i / sum_{i in j} w_i. Every pixel of
 * one colour has the same nearest centre, so this is exactly Lloyd over all
 * pixels; the sums are integers (channels 0..255, weights are pixel counts)
 * accumulated in uint64, hence exact and independent of the summation
 * order. kmq_kmeans_prepared_new bounds the total weight by UINT64_MAX / 255^2 so
 * that also sum w x^2 (for the variance) cannot overflow.
 *
 * Convergence as scikit-learn: tol_abs = tol * mean_c Var_c, the mean over
 * the three channels of the pixel-weighted variance. After the centre update
 * of iteration t, stop if shift = sum_j |c_j(t) - c_j(t-1)|^2 <= tol_abs
 * (converged, iterations = t), or after max_iter iterations. The reported
 * inertia is sum_i w_i min_j |x_i - c_j|^2 for the final centres, from one
 * more assignment, whose cluster weights are the reported sizes.
 *
 * Empty clusters (no point assigned in an iteration) are reseeded as
 * scikit-learn does: rank the points by their distance to the centre they
 * were just assigned to (farthest first, ties: lowest index); the e empty
 * clusters, in index order, take the e first points of that ranking. Each
 * such point moves with its weight: its sums leave its old cluster and
 * become the empty cluster's, whose centre is then the point itself. A
 * cluster emptied by that move keeps its previous centre.
 *
 * Distance pruning (Hamerly 2010, with the neighbour ordering of
 * Exponion, Newling & Fleuret 2016), used for k >= KMQ__BOUNDS_MIN_K. Each
 * point keeps its label a, an upper bound u >= D(x, c_a) and a lower bound
 * l <= min_{j != a} D(x, c_j) (D = Euclidean distance). After the centres
 * move by drift_j, u += drift_a and l -= max_{j != a} drift_j keep them
 * valid. Let s_a = half the distance from c_a to its nearest other centre.
 * If max(l, s_a) >= u + BOUND_EPS, every other centre is at least
 * BOUND_EPS farther than c_a (for s_a: D(x, c_j) >= D(c_a, c_j) - D(x,
 * c_a) >= 2 s_a - u), so the plain scan's computed squared distances would
 * put c_a strictly first: the label is known and nothing is computed.
 * Otherwise u is tightened to the computed distance to c_a, the test is
 * retried, and if it still fails scan_point visits the other centres by
 * ascending distance from c_a and stops at the first one >= 2u + 2
 * BOUND_EPS away (it and all later ones are then >= u + BOUND_EPS from x).
 * Exactness: BOUND_EPS = 1e-6 colour units. Squared distances are computed
 * with a relative error below 6 * 2^-53 (one rounding per operation on
 * values <= 3 * 255^2), so two exact distances D_a + BOUND_EPS <= D_j can
 * only compare the same way after rounding (needs BOUND_EPS > ~3e-13); the
 * bounds themselves carry at most a few ulps of 442 per iteration of
 * rounding (<< 1e-9 after 300 iterations). So a skipped distance can
 * neither win nor tie; every distance that can is computed by dist2, the
 * same expression as the plain loop, and compared as (distance, index), so
 * the label is the plain Lloyd's, ties to the lowest index. The sums are
 * the same integers; the inertia of the final pass is computed per point
 * from the same distances, summed in the same order. Hence the same bits
 * (the tests compare both implementations on real photos).
 *
 * Float32 brute force (k < KMQ__BOUNDS_MIN_K, not KMQ__ALGO_PLAIN): the
 * nearest and second-nearest centre in float32, 8 lanes (kmeans_f32.c);
 * where they differ by more than F32_MARGIN the label is provably the
 * double loop's (bound in nearest_f32_chunk), otherwise the point is
 * rescanned in double. The inertia of the final pass uses dist2 to the
 * winner, as the plain loop.
 *
 * Incremental sums: the integer sums of an iteration are those of the
 * previous one plus, for each point that changed cluster, its move from the
 * old cluster to the new (acc_lab records the cluster each point is counted
 * in; reseeding moves update it too). Integer addition is exact, so the
 * totals are the same integers as a full recount.
 *
 * Restarts: run r initialises from the stream (seed, k, r) and the run with
 * the lowest inertia wins (ties: lowest r). k >= n distinct points is
 * trivial: the points themselves are the centres (inertia 0, iterations 0).
 *
 * Threading — one kernel, two drivers (STYLE §4.5). The kernel works on a
 * run of points: one chunk of KMQ_CHUNK points in passes that sum the
 * inertia, a quarter chunk in the others (pass_unit): nearest_chunk finds
 * the nearest centres, accumulate_chunk adds the integer sums into one
 * per-thread slot (padded to a cache line) and returns the chunk's inertia,
 * stored in one double per chunk. The chunk-parallel driver (assign_pass
 * given a kmq_par) runs the units on par->threads threads; the serial driver
 * (given NULL) runs them in order and is what each thread uses when restarts
 * run in parallel. Pruned passes use the same drivers with bounds_chunk as
 * the kernel; the per-point bounds are written only by the unit that owns
 * the point. Either way the integer slots are added up after the region and
 * the chunk doubles are folded in chunk order, so results are the same bits
 * for any thread count and without OpenMP. kmq_kmeans_fit picks
 * restart-parallel on 2 threads when the restarts fill them, or when the
 * points are too few for the threads (kmq__restart_parallel), and
 * chunk-parallel otherwise. All scratch is allocated before any region.
 */
#include "kmq/kmeans.h"

#include "kmeans_init.h"
#include "kmeans_f32.h"
#include "kmq/par.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Restarts run side by side on at most this many threads, unless the
 * points are too few to give every thread a chunk (kmq__restart_parallel). */
#define RESTART_PARALLEL_MAX_THREADS 2
/* One run's per-point workspace: labels (2 bytes), Hamerly bounds (16),
 * k-means++ D^2 (8) and its per-block sums (under 2). */
#define RESTART_WS_BYTES ((size_t)28)
/* Restarts run side by side only while their workspaces fit in this. */
#define RESTART_WS_BUDGET ((size_t)1 << 30)
/* uint64 per cache line: sum slots are padded to a multiple of this. */
#define U64_PER_LINE (KMQ_CACHE_LINE / sizeof(uint64_t))
/* Margin (colour units) by which a bound must decide; see "Distance
 * pruning" at the top of the file. */
#define BOUND_EPS 1e-6

/* A reseeding candidate: a point, its distance to its assigned centre, and
 * that centre. */
typedef struct far_point {
    double d;
    size_t i;
    uint32_t label;
} far_point;

/* Scratch of one Lloyd run (or one assignment): allocated once, before any
 * parallel region, and reused by every iteration. */
typedef struct lloyd_ws {
    size_t k;
    int slots;             /* per-thread sum slots = threads of the driver */
    size_t stride;         /* uint64 per slot: 4k rounded up to a cache line */
    void *sums_block;      /* allocation holding `sums` */
    uint64_t *sums;        /* slots * stride, cache-line aligned */
    double *best;          /* slots * 3 * KMQ_CHUNK: distances, three buffers per slot */
    uint32_t *lab;         /* slots * KMQ_CHUNK: nearest centre */
    double *chunk_inertia; /* chunks */
    far_point *far;        /* chunks * k: farthest points of each chunk */
    size_t *far_n;         /* chunks */
    far_point *far_all;    /* k: farthest points overall */
    size_t *empty;         /* k: clusters left empty */
    uint64_t *tot;         /* 4k: folded sums w r, w g, w b, w per cluster */
    double *cur;           /* 3k: centres of this iteration */
    double *next;          /* 3k: centres after the update */
    bool f32;              /* plain passes through the float32 kernel (same labels) */
    float *cen_f32;        /* ws->cur as that kernel's table (kmq__f32_centres) */
    uint8_t *acc_lab;      /* n: the label each point is counted under in tot */
    bool counted;          /* tot holds the sums of acc_lab: passes add changes only */
    double inertia;        /* of the last assign_pass */
    uint64_t evals;        /* distance evaluations of the last assign_pass */
    /* Bounds (Hamerly) path only, see "Distance pruning" at the top: */
    bool bounds;       /* this workspace runs the pruned assignment */
    bool primed;       /* plab/ub/lb describe the points against ws->next */
    uint8_t *plab;     /* n: label of each point */
    double *ub;        /* n: upper bound on the distance to its centre */
    double *lb;        /* n: lower bound on the distance to any other centre */
    double *sec;       /* slots * KMQ_CHUNK: the two float32 buffers of the first pass */
    double *cc;        /* k * k: row a = distances from centre a to the others, ascending */
    uint8_t *ord;      /* k * k: row a = the centre each cc entry belongs to */
    double *half;      /* k: half the distance to the nearest other centre */
    double *drift;     /* k: distance each centre moved since the bounds were set */
    double drift_max;  /* largest drift, */
    double drift_max2; /* largest drift of the other centres, */
    size_t drift_arg;  /* and the centre that has the largest */
} lloyd_ws;

typedef struct run_result {
    double inertia;
    int iterations;
    bool converged;
    bool cancelled;         /* stopped by the cancel flag: the run is not a result */
    uint64_t evals;         /* distance evaluations, init + Lloyd */
    double init_s, lloyd_s; /* wall time of the two phases */
} run_result;

static bool cancel_requested(const atomic_int *cancel)
{
    return cancel && atomic_load(cancel) != 0;
}

/* ---- kernels (no pragmas; safe inside a region on disjoint outputs) ---- */

/* The squared distance exactly as every kernel computes it: float channel
 * promoted to double, minus the double centre, squares summed r + g + b.
 * Every path must use this expression (no reordering, and C11 mode keeps
 * GCC from contracting it to FMA) so that distances are the same bits. */
static inline double dist2(float r, float g, float b, const double *c)
{
    double dr = r - c[0], dg = g - c[1], db = b - c[2];
    return dr * dr + dg * dg + db * db;
}

/* Nearest centre of points [lo, lo + m): lab[i] = centre index, and the
 * squared distances in the returned buffer (best or tmp). Centre-major, so
 * the inner loop runs over contiguous points; the distances ping-pong
 * between best and tmp because an in-place update would let GCC turn the
 * select into a conditional store, which it cannot vectorise. The strict <
 * keeps the lowest index on ties. The plain path for small k, and the
 * reference the pruned path is tested against. */
KMQ__VEC_CLONES static const double *nearest_chunk(const kmq_kmeans_prepared *p, size_t lo,
                                                   size_t m, const double *cen, size_t k,
                                                   double *best, double *tmp,
                                                   uint32_t *restrict lab)
{
    const float *restrict r = p->r + lo;
    const float *restrict g = p->g + lo;
    const float *restrict b = p->b + lo;
    {
        const double cr = cen[0], cg = cen[1], cb = cen[2];
        double *restrict out = best;
        for (size_t i = 0; i < m; i++) {
            double dr = r[i] - cr, dg = g[i] - cg, db = b[i] - cb;
            out[i] = dr * dr + dg * dg + db * db;
            lab[i] = 0;
        }
    }
    double *src = best, *dst = tmp;
    for (size_t j = 1; j < k; j++) {
        const double cr = cen[3 * j], cg = cen[3 * j + 1], cb = cen[3 * j + 2];
        const uint32_t lj = (uint32_t)j;
        const double *restrict in = src;
        double *restrict out = dst;
        for (size_t i = 0; i < m; i++) {
            double dr = r[i] - cr, dg = g[i] - cg, db = b[i] - cb;
            double d = dr * dr + dg * dg + db * db;
            double bi = in[i];
            uint32_t li = lab[i];
            bool closer = d < bi;
            out[i] = closer ? d : bi;
            lab[i] = closer ? lj : li;
        }
        dst = src;
        src = out;
    }
    return src;
}

/* Margin (squared colour units) by which the float32 nearest must beat the
 * float32 second-nearest to be the exact answer; see nearest_f32_chunk. */
#define F32_MARGIN 0.25f

/* Nearest and second-nearest centre of points [lo, lo + m) in float32, 8
 * lanes to the 4 of double (cf: the table of kmq__f32_centres). The result
 * is then exact where the two differ by more than F32_MARGIN: a float
 * distance is within 0.08 of the exact one (kmeans_f32.c proves 0.063,
 * with or without FMA), and the double distance (as dist2 computes it)
 * within 1e-10, so a float gap above 0.25 > 2 * 0.08 means the double
 * distances order the same way, strictly, and the plain double scan picks
 * the same centre. Smaller gaps are rescanned in double by the caller. buf
 * holds two KMQ_CHUNK float buffers; returns the nearest and second
 * distances through *d1, *d2. */
static void nearest_f32_chunk(const kmq_kmeans_prepared *p, size_t lo, size_t m, const float *cf,
                              size_t k, float *buf, uint32_t *lab, const float **d1,
                              const float **d2)
{
    kmq__f32_scan(p->r + lo, p->g + lo, p->b + lo, m, cf, k, buf, buf + KMQ_CHUNK, lab);
    *d1 = buf;
    *d2 = buf + KMQ_CHUNK;
}

/* Below every exact squared distance to a centre other than the float32
 * winner, when the winner is sure: the float second less this (> 0.08, the
 * error bound in nearest_f32_chunk). */
#define F32_SLACK 0.125

/* As nearest_exact, and the second-smallest dist2 into *second (+inf for
 * k = 1). */
static uint32_t nearest_exact2(float x, float y, float z, const double *cen, size_t k,
                               double *second)
{
    double bd = dist2(x, y, z, cen), sd = INFINITY;
    uint32_t bj = 0;
    for (size_t j = 1; j < k; j++) {
        double d = dist2(x, y, z, cen + 3 * j);
        if (d < bd) {
            sd = bd;
            bd = d;
            bj = (uint32_t)j;
        } else if (d < sd) {
            sd = d;
        }
    }
    *second = sd;
    return bj;
}

/* The plain scan of one point in double: smallest dist2, lowest index on
 * ties (strict <, ascending j), exactly as nearest_chunk decides. */
static uint32_t nearest_exact(float x, float y, float z, const double *cen, size_t k)
{
    double bd = dist2(x, y, z, cen);
    uint32_t bj = 0;
    for (size_t j = 1; j < k; j++) {
        double d = dist2(x, y, z, cen + 3 * j);
        if (d < bd) {
            bd = d;
            bj = (uint32_t)j;
        }
    }
    return bj;
}

/* Moves one point (colour key, weight w) from cluster `from` to cluster
 * `to` in the integer sums (uint64: exact; wraps only transiently). */
static inline void move_point(uint64_t *sums, uint32_t from, uint32_t to, uint32_t key, uint64_t w)
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

/* Adds the chunk's points to the integer sums of their clusters (w r, w g,
 * w b, w: exact in uint64), optionally stores the labels, and returns the
 * chunk's inertia summed in point order (0 when best is NULL: the pruned
 * iterations need no inertia, only the final pass does). Given acc_lab
 * (ws->counted), the sums already count every point under acc_lab[i]: only
 * the points whose label changed move, from their old cluster's sums to
 * the new one's (uint64 wraps, and the totals come out the same integers as
 * a full recount, since addition is exact). */
static double accumulate_chunk(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                               const double *best, const uint32_t *lab, uint64_t *sums,
                               uint8_t *labels, uint8_t *acc_lab, bool counted)
{
    const uint32_t *keys = p->keys + lo;
    const uint64_t *w = p->w + lo;
    uint8_t *prev = acc_lab + lo;
    if (counted) {
        for (size_t i = 0; i < m; i++) {
            if (lab[i] == prev[i])
                continue;
            move_point(sums, prev[i], lab[i], keys[i], w[i]);
            prev[i] = (uint8_t)lab[i];
        }
    } else {
        for (size_t i = 0; i < m; i++) {
            uint64_t *s = sums + 4 * (size_t)lab[i];
            uint32_t key = keys[i];
            s[0] += w[i] * (key >> 16);
            s[1] += w[i] * ((key >> 8) & 0xff);
            s[2] += w[i] * (key & 0xff);
            s[3] += w[i];
            prev[i] = (uint8_t)lab[i];
        }
    }
    double inertia = 0.0;
    if (best)
        for (size_t i = 0; i < m; i++)
            inertia += (double)w[i] * best[i];
    if (labels)
        for (size_t i = 0; i < m; i++)
            labels[lo + i] = (uint8_t)lab[i];
    return inertia;
}

/* flag[i] = 1 where point i of a chunk is a float32 close call or its
 * nearest centre differs from prev[i], else 0; zero up to the next multiple
 * of 8 so the caller can skip 8 flags at a time. */
KMQ__VEC_CLONES static void flag_todo(const float *restrict d1, const float *restrict d2,
                                      const uint32_t *restrict lab, const uint8_t *restrict prev,
                                      size_t m, uint8_t *restrict flag)
{
    for (size_t i = 0; i < m; i++)
        flag[i] = (uint8_t)(!(d2[i] - d1[i] > F32_MARGIN) | (lab[i] != prev[i]));
    for (size_t i = m; i % 8 != 0; i++)
        flag[i] = 0;
}

/* assign_chunk through the float32 kernel: the same labels (see
 * nearest_f32_chunk; close calls are rescanned in double) and, when the
 * inertia is wanted (`final`), the same double distance to the winner. */
static void assign_f32_chunk(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen,
                             lloyd_ws *ws, int slot, uint8_t *labels, bool final)
{
    const size_t k = ws->k;
    double *best = ws->best + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    uint64_t *sums = ws->sums + (size_t)slot * ws->stride;
    const float *d1, *d2;
    nearest_f32_chunk(p, lo, m, ws->cen_f32, k, (float *)best, lab, &d1, &d2);
    const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
    uint64_t evals = (uint64_t)m * k;
    if (!ws->counted || final) {
        for (size_t i = 0; i < m; i++) {
            if (!(d2[i] - d1[i] > F32_MARGIN)) {
                lab[i] = nearest_exact(r[i], g[i], b[i], cen, k);
                evals += k;
            }
        }
        double *dist = NULL;
        if (final) {
            dist = best + 2 * KMQ_CHUNK;
            for (size_t i = 0; i < m; i++)
                dist[i] = dist2(r[i], g[i], b[i], cen + 3 * (size_t)lab[i]);
        }
        double inertia =
            accumulate_chunk(p, lo, m, dist, lab, sums, labels, ws->acc_lab, ws->counted);
        if (final)
            ws->chunk_inertia[lo / KMQ_CHUNK] = inertia;
        sums[4 * k] += evals;
        return;
    }
    /* A Lloyd iteration: flag (vectorised) the points that are close calls
     * or changed cluster; only they need more work, and they are few. */
    uint8_t *prev = ws->acc_lab + lo;
    uint8_t *flag = (uint8_t *)(best + KMQ_CHUNK);
    flag_todo(d1, d2, lab, prev, m, flag);
    const uint32_t *keys = p->keys + lo;
    const uint64_t *w = p->w + lo;
    for (size_t i0 = 0; i0 < m; i0 += 8) {
        uint64_t word;
        memcpy(&word, flag + i0, sizeof word);
        if (!word)
            continue;
        for (size_t i = i0; i < i0 + 8 && i < m; i++) {
            if (!flag[i])
                continue;
            uint32_t a = lab[i];
            if (!(d2[i] - d1[i] > F32_MARGIN)) {
                a = nearest_exact(r[i], g[i], b[i], cen, k);
                evals += k;
            }
            if (a != prev[i]) {
                move_point(sums, prev[i], a, keys[i], w[i]);
                prev[i] = (uint8_t)a;
            }
        }
    }
    sums[4 * k] += evals;
}

static void assign_chunk(const kmq_kmeans_prepared *p, size_t ch, const double *cen, lloyd_ws *ws,
                         int slot, uint8_t *labels)
{
    size_t lo = ch * KMQ_CHUNK, m = kmq__chunk_size(p, ch);
    double *best = ws->best + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    uint64_t *sums = ws->sums + (size_t)slot * ws->stride;
    const double *dist = nearest_chunk(p, lo, m, cen, ws->k, best, best + KMQ_CHUNK, lab);
    ws->chunk_inertia[ch] =
        accumulate_chunk(p, lo, m, dist, lab, sums, labels, ws->acc_lab, ws->counted);
    sums[4 * ws->k] += (uint64_t)m * ws->k;
}

/* Nearest centre of one point currently labelled a, u = sqrt(da) (da =
 * its computed squared distance to a). The other centres are visited in
 * ascending distance from a (cc_row, ord_row); the visit stops at the first
 * one at least 2 u + 2 BOUND_EPS from a: by the triangle inequality it and
 * all later ones are at least u + BOUND_EPS from the point, so their
 * computed distances exceed da and they can neither win nor tie. The
 * visited ones are computed with dist2 and compared as (distance, index)
 * pairs, so the winner is the plain scan's (smallest distance, lowest index
 * on ties) whatever the visiting order. Returns the new label; *dbest its
 * squared distance, *lower a lower bound on the distance to every other
 * centre; *evals counts the distances computed. */
static uint32_t scan_point(float x, float y, float z, const double *cen, size_t k,
                           const double *cc_row, const uint8_t *ord_row, uint32_t a, double da,
                           double *dbest, double *lower, uint64_t *evals)
{
    const double u = sqrt(da);
    const double lim = 2.0 * u + 2.0 * BOUND_EPS;
    double bd = da, sd = INFINITY, skip = INFINITY;
    uint32_t bj = a;
    size_t q = 0;
    for (; q + 1 < k; q++) {
        if (cc_row[q] >= lim) {
            skip = cc_row[q] - u;
            break;
        }
        uint32_t j = ord_row[q];
        double d = dist2(x, y, z, cen + 3 * (size_t)j);
        if (d < bd || (d == bd && j < bj)) {
            sd = bd;
            bd = d;
            bj = j;
        } else if (d < sd) {
            sd = d;
        }
    }
    double ls = sqrt(sd);
    *dbest = bd;
    *lower = ls < skip ? ls : skip;
    *evals += q;
    return bj;
}

/* The pruned assignment of one chunk against ws->cur (Hamerly's bounds;
 * see the top of the file). First pass of a run (ws->primed false): all
 * distances, bounds set from the nearest and second-nearest. Later passes:
 * bounds moved by the centre drifts; a point is rescanned only when they
 * cannot prove its label. `final`: also the exact squared distance of every
 * point to its centre, for the inertia. */
static void bounds_chunk(const kmq_kmeans_prepared *p, size_t lo, size_t m, lloyd_ws *ws, int slot,
                         bool final, uint8_t *labels)
{
    const size_t k = ws->k;
    const double *cen = ws->cur;
    double *best = ws->best + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    uint64_t *sums = ws->sums + (size_t)slot * ws->stride;
    uint8_t *plab = ws->plab + lo;
    double *ub = ws->ub + lo, *lb = ws->lb + lo;
    uint64_t evals = 0;
    const double *dist = best;
    if (!ws->primed) {
        /* First pass: nearest and second in float32 (ws->cen_f32, set by
         * bounds_prepare); the upper bound is the exact double distance to
         * the winner, the lower bound the float second less F32_SLACK,
         * which is below every other exact distance (nearest_f32_chunk's
         * error bound). Close calls are rescanned in double. */
        const float *d1, *d2;
        float *fbuf = (float *)(ws->sec + (size_t)slot * KMQ_CHUNK);
        nearest_f32_chunk(p, lo, m, ws->cen_f32, k, fbuf, lab, &d1, &d2);
        const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
        evals = (uint64_t)m * k;
        for (size_t i = 0; i < m; i++) {
            uint32_t a = lab[i];
            double second = (double)d2[i] - F32_SLACK;
            if (!(d2[i] - d1[i] > F32_MARGIN)) {
                a = nearest_exact2(r[i], g[i], b[i], cen, k, &second);
                evals += k;
            }
            double da = dist2(r[i], g[i], b[i], cen + 3 * (size_t)a);
            best[i] = da;
            lab[i] = a;
            plab[i] = (uint8_t)a;
            ub[i] = sqrt(da);
            lb[i] = second > 0.0 ? sqrt(second) : 0.0;
        }
    } else if (final) {
        const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
        const double *drift = ws->drift, *half = ws->half;
        const double dmax = ws->drift_max, dmax2 = ws->drift_max2;
        const size_t darg = ws->drift_arg;
        for (size_t i = 0; i < m; i++) {
            uint32_t a = plab[i];
            double u = ub[i] + drift[a];
            double l = lb[i] - (a == darg ? dmax2 : dmax);
            double thr = l > half[a] ? l : half[a];
            double da = dist2(r[i], g[i], b[i], cen + 3 * (size_t)a);
            evals++;
            u = sqrt(da);
            if (!(thr >= u + BOUND_EPS)) {
                double lower;
                a = scan_point(r[i], g[i], b[i], cen, k, ws->cc + (size_t)a * k,
                               ws->ord + (size_t)a * k, a, da, &da, &lower, &evals);
                u = sqrt(da);
                l = lower;
            }
            best[i] = da;
            lab[i] = a;
            plab[i] = (uint8_t)a;
            ub[i] = u;
            lb[i] = l;
        }
    } else {
        /* A Lloyd iteration: move every bound by the drifts (branch-free,
         * so it vectorises), listing the points whose bounds fail; only
         * those are looked at again, and only their labels can change,
         * so only they are passed to the sums. */
        const double *drift = ws->drift, *half = ws->half;
        const double dmax = ws->drift_max, dmax2 = ws->drift_max2;
        const uint32_t darg = (uint32_t)ws->drift_arg;
        uint32_t *todo = lab; /* chunk offsets of the points to look at */
        size_t nt = 0;
        for (size_t i = 0; i < m; i++) {
            uint32_t a = plab[i];
            double u = ub[i] + drift[a];
            double l = lb[i] - (a == darg ? dmax2 : dmax);
            double thr = l > half[a] ? l : half[a];
            ub[i] = u;
            lb[i] = l;
            todo[nt] = (uint32_t)i;
            nt += !(thr >= u + BOUND_EPS);
        }
        const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
        const uint32_t *keys = p->keys + lo;
        const uint64_t *w = p->w + lo;
        uint8_t *prev = ws->acc_lab + lo;
        assert(ws->counted);
        for (size_t q = 0; q < nt; q++) {
            const size_t i = todo[q];
            uint32_t a = plab[i];
            double thr = lb[i] > half[a] ? lb[i] : half[a];
            double da = dist2(r[i], g[i], b[i], cen + 3 * (size_t)a);
            evals++;
            double u = sqrt(da);
            if (!(thr >= u + BOUND_EPS)) {
                double lower;
                a = scan_point(r[i], g[i], b[i], cen, k, ws->cc + (size_t)a * k,
                               ws->ord + (size_t)a * k, a, da, &da, &lower, &evals);
                u = sqrt(da);
                lb[i] = lower;
                plab[i] = (uint8_t)a;
            }
            ub[i] = u;
            if (a != prev[i]) {
                move_point(sums, prev[i], a, keys[i], w[i]);
                prev[i] = (uint8_t)a;
            }
        }
        sums[4 * k] += evals;
        return;
    }
    double inertia = accumulate_chunk(p, lo, m, final ? dist : NULL, lab, sums, labels, ws->acc_lab,
                                      ws->counted);
    if (final)
        ws->chunk_inertia[lo / KMQ_CHUNK] = inertia;
    sums[4 * k] += evals;
}

/* Keeps in top[0..*nt) the `e` points farthest from their centre, farthest
 * first, ties by lowest index (points arrive in index order and only a
 * strictly larger distance moves ahead). Returns false if fp is not kept. */
static bool far_insert(far_point *top, size_t *nt, size_t e, far_point fp)
{
    size_t pos;
    if (*nt < e)
        pos = (*nt)++;
    else if (fp.d > top[e - 1].d)
        pos = e - 1;
    else
        return false;
    while (pos > 0 && fp.d > top[pos - 1].d) {
        top[pos] = top[pos - 1];
        pos--;
    }
    top[pos] = fp;
    return true;
}

static void far_chunk(const kmq_kmeans_prepared *p, size_t ch, const double *cen, lloyd_ws *ws,
                      int slot, size_t e)
{
    size_t lo = ch * KMQ_CHUNK, m = kmq__chunk_size(p, ch);
    double *best = ws->best + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    const double *dist = nearest_chunk(p, lo, m, cen, ws->k, best, best + KMQ_CHUNK, lab);
    far_point *top = ws->far + ch * ws->k;
    size_t nt = 0;
    for (size_t i = 0; i < m; i++) {
        far_point fp = {dist[i], lo + i, lab[i]};
        (void)far_insert(top, &nt, e, fp);
    }
    ws->far_n[ch] = nt;
}

/* ---- drivers ------------------------------------------------------------ */

/* How assign_pass finds the nearest centres. */
typedef enum pass_mode {
    PASS_PLAIN,     /* every distance (assign_chunk) */
    PASS_F32,       /* every distance in float32, close calls in double; no inertia */
    PASS_F32_FINAL, /* the same, with the inertia */
    PASS_BOUNDS,    /* pruned (bounds_chunk), no inertia: a Lloyd iteration */
    PASS_FINAL      /* pruned, with the inertia: the last pass of a run */
} pass_mode;

/* Passes that sum the inertia (a double per chunk, folded in chunk order)
 * work in whole chunks. The others only add integers and write per-point
 * bounds, which no split of the points can change, so they hand out
 * quarter chunks: finer pieces keep many threads busy to the end of a pass
 * (a 16 MP photo has about 90 chunks; over 16 threads the last round of
 * whole chunks leaves a sixth of them idle, and pruned chunks differ in
 * cost besides). */
#define PASS_SPLIT 4

static bool pass_sums_inertia(pass_mode mode)
{
    return mode == PASS_PLAIN || mode == PASS_F32_FINAL || mode == PASS_FINAL;
}

static size_t pass_unit(pass_mode mode)
{
    return pass_sums_inertia(mode) ? KMQ_CHUNK : KMQ_CHUNK / PASS_SPLIT;
}

/* Kernel of assign_pass: points [u * unit, (u + 1) * unit) of the pass. */
static void pass_unit_run(const kmq_kmeans_prepared *p, size_t u, const double *cen, lloyd_ws *ws,
                          int slot, uint8_t *labels, pass_mode mode)
{
    const size_t unit = pass_unit(mode), lo = u * unit;
    const size_t m = p->n - lo < unit ? p->n - lo : unit;
    if (mode == PASS_PLAIN)
        assign_chunk(p, u, cen, ws, slot, labels);
    else if (mode == PASS_F32 || mode == PASS_F32_FINAL)
        assign_f32_chunk(p, lo, m, cen, ws, slot, labels, mode == PASS_F32_FINAL);
    else
        bounds_chunk(p, lo, m, ws, slot, mode == PASS_FINAL, labels);
}

/* One assignment of all points to `cen` (pruned modes: cen == ws->cur):
 * folded sums into ws->tot, inertia into ws->inertia (PASS_BOUNDS: 0),
 * labels (if not NULL) per point. par: chunk-parallel on ws->slots ==
 * par->threads threads; NULL: serial, safe inside a region. Pruned chunks
 * take uneven time, so chunks are handed out dynamically; which thread runs
 * a chunk changes no result. */
static void assign_pass(const kmq_kmeans_prepared *p, const double *cen, const kmq_par *par,
                        lloyd_ws *ws, uint8_t *labels, pass_mode mode)
{
    const size_t k = ws->k;
    const size_t nsum = 4 * k + 1; /* 4 sums per cluster + the evaluation count */
    const size_t units = (p->n + pass_unit(mode) - 1) / pass_unit(mode);
    int used = 1;
    if (mode == PASS_F32 || mode == PASS_F32_FINAL)
        kmq__f32_centres(cen, k, ws->cen_f32);
    if (par && par->threads > 1 && units > 1) {
        assert(ws->slots >= par->threads);
        used = par->threads;
        memset(ws->sums, 0, (size_t)used * ws->stride * sizeof *ws->sums);
#ifdef _OPENMP
#pragma omp parallel num_threads(par->threads) default(none) shared(p, cen, ws, labels, mode, units)
#endif
        {
            int slot = kmq_par_thread_num();
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (size_t u = 0; u < units; u++)
                pass_unit_run(p, u, cen, ws, slot, labels, mode);
        }
    } else {
        memset(ws->sums, 0, ws->stride * sizeof *ws->sums);
        for (size_t u = 0; u < units; u++)
            pass_unit_run(p, u, cen, ws, 0, labels, mode);
    }
    /* Integer slots (sums, or changes of the sums once counted): any order
     * gives the same totals. */
    if (!ws->counted)
        memset(ws->tot, 0, nsum * sizeof *ws->tot);
    ws->tot[4 * k] = 0;
    for (int t = 0; t < used; t++) {
        const uint64_t *s = ws->sums + (size_t)t * ws->stride;
        for (size_t j = 0; j < nsum; j++)
            ws->tot[j] += s[j];
    }
    ws->counted = true;
    ws->evals += ws->tot[4 * k];
    /* Doubles: chunk order, whatever thread ran which chunk. */
    double inertia = 0.0;
    if (pass_sums_inertia(mode))
        for (size_t ch = 0; ch < p->chunks; ch++)
            inertia += ws->chunk_inertia[ch];
    ws->inertia = inertia;
}

/* Before a pruned pass (serial, O(k^2)): how far each centre moved since
 * the bounds were set (ws->next holds those centres), the two largest
 * moves, and the centre-to-centre distances of ws->cur with half the
 * distance to each centre's nearest neighbour. */
/* Row a of the centre-to-centre table of ws->cur (see bounds_prepare). */
static void prepare_row(lloyd_ws *ws, size_t a)
{
    const size_t k = ws->k;
    const double *cen = ws->cur;
    double *row = ws->cc + a * k;
    uint8_t *ord = ws->ord + a * k;
    const double *ca = cen + 3 * a;
    if (!ws->primed)
        for (size_t q = 0, j = 0; j < k; j++)
            if (j != a)
                ord[q++] = (uint8_t)j;
    for (size_t q = 0; q + 1 < k; q++) {
        const double *cj = cen + 3 * (size_t)ord[q];
        double dr = ca[0] - cj[0], dg = ca[1] - cj[1], db = ca[2] - cj[2];
        double d = sqrt(dr * dr + dg * dg + db * db);
        uint8_t o = ord[q];
        size_t t = q;
        while (t > 0 && row[t - 1] > d) {
            row[t] = row[t - 1];
            ord[t] = ord[t - 1];
            t--;
        }
        row[t] = d;
        ord[t] = o;
    }
    row[k - 1] = INFINITY; /* sentinel: the scan stops here */
    ws->half[a] = k > 1 ? 0.5 * row[0] : INFINITY;
}

static void bounds_prepare(lloyd_ws *ws, const kmq_par *par)
{
    const size_t k = ws->k;
    const double *cen = ws->cur;
    if (!ws->primed)
        kmq__f32_centres(cen, k, ws->cen_f32);
    if (ws->primed) {
        double m1 = 0.0, m2 = 0.0;
        size_t arg = 0;
        for (size_t j = 0; j < k; j++) {
            double dr = cen[3 * j] - ws->next[3 * j];
            double dg = cen[3 * j + 1] - ws->next[3 * j + 1];
            double db = cen[3 * j + 2] - ws->next[3 * j + 2];
            double d = sqrt(dr * dr + dg * dg + db * db);
            ws->drift[j] = d;
            if (d > m1) {
                m2 = m1;
                m1 = d;
                arg = j;
            } else if (d > m2) {
                m2 = d;
            }
        }
        ws->drift_max = m1;
        ws->drift_max2 = m2;
        ws->drift_arg = arg;
    }
    /* Row a: the other centres by ascending distance from a, by insertion
     * sort from the previous iteration's order (centres move little, so it
     * is nearly sorted and this is about O(k) a row). Equal distances keep
     * any order: the scan's result does not depend on it. */
    if (par && par->threads > 1 && k >= 64) {
        /* Rows are independent; O(k^2) is worth a region from k = 64. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(par->threads) default(none) shared(ws, k)
#endif
        for (size_t a = 0; a < k; a++)
            prepare_row(ws, a);
    } else {
        for (size_t a = 0; a < k; a++)
            prepare_row(ws, a);
    }
}

/* The e points farthest from their centres in ws->cur into ws->far_all,
 * merging per-chunk lists in chunk order (so ties still go to the lowest
 * index). Same drivers as assign_pass. */
static void far_pass(const kmq_kmeans_prepared *p, const kmq_par *par, lloyd_ws *ws, size_t e)
{
    const double *cen = ws->cur;
    if (par && par->threads > 1 && p->chunks > 1) {
#ifdef _OPENMP
#pragma omp parallel num_threads(par->threads) default(none) shared(p, cen, ws, e)
#endif
        {
            int slot = kmq_par_thread_num();
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t ch = 0; ch < p->chunks; ch++)
                far_chunk(p, ch, cen, ws, slot, e);
        }
    } else {
        for (size_t ch = 0; ch < p->chunks; ch++)
            far_chunk(p, ch, cen, ws, 0, e);
    }
    size_t nt = 0;
    for (size_t ch = 0; ch < p->chunks; ch++) {
        const far_point *top = ws->far + ch * ws->k;
        /* The chunk's list is sorted: once one is rejected, so is the rest. */
        for (size_t q = 0; q < ws->far_n[ch]; q++)
            if (!far_insert(ws->far_all, &nt, e, top[q]))
                break;
    }
    assert(nt == e);
}

/* Centres of the next iteration from ws->tot into ws->next, reseeding empty
 * clusters first (see the top of the file). */
static void update_centers(const kmq_kmeans_prepared *p, const kmq_par *par, lloyd_ws *ws)
{
    const size_t k = ws->k;
    uint64_t *tot = ws->tot;
    size_t e = 0;
    for (size_t j = 0; j < k; j++)
        if (tot[4 * j + 3] == 0)
            ws->empty[e++] = j;
    if (e > 0) {
        /* k <= n points, so at least e points sit in non-empty clusters. */
        far_pass(p, par, ws, e);
        for (size_t q = 0; q < e; q++) {
            const far_point fp = ws->far_all[q];
            assert(fp.label == ws->acc_lab[fp.i]);
            uint64_t w = p->w[fp.i];
            uint32_t key = p->keys[fp.i];
            uint64_t c[3] = {key >> 16, (key >> 8) & 0xff, key & 0xff};
            uint64_t *from = tot + 4 * (size_t)fp.label;
            uint64_t *to = tot + 4 * ws->empty[q];
            for (int d = 0; d < 3; d++) {
                from[d] -= w * c[d];
                to[d] = w * c[d];
            }
            from[3] -= w;
            to[3] = w;
            ws->acc_lab[fp.i] = (uint8_t)ws->empty[q];
        }
    }
    for (size_t j = 0; j < k; j++) {
        uint64_t w = tot[4 * j + 3];
        for (int d = 0; d < 3; d++)
            ws->next[3 * j + d] = w > 0 ? (double)tot[4 * j + d] / (double)w : ws->cur[3 * j + d];
    }
}

/* Lloyd from ws->cur; on return ws->cur holds the final centres, ws->tot
 * and ws->inertia their final assignment, labels (if not NULL) its labels.
 * par as assign_pass. ws->bounds picks the pruned passes (same bits). */
static void lloyd_run(const kmq_kmeans_prepared *p, int max_iter, double tol_abs,
                      const kmq_par *par, lloyd_ws *ws, run_result *res, uint8_t *labels,
                      const atomic_int *cancel)
{
    const size_t k = ws->k;
    int iterations = max_iter;
    bool converged = false;
    ws->primed = false;
    ws->counted = false;
    ws->evals = 0;
    res->cancelled = false;
    for (int it = 1; it <= max_iter; it++) {
        if (cancel_requested(cancel)) {
            res->cancelled = true;
            return;
        }
        if (ws->bounds) {
            bounds_prepare(ws, par);
            assign_pass(p, ws->cur, par, ws, NULL, PASS_BOUNDS);
            ws->primed = true;
        } else {
            assign_pass(p, ws->cur, par, ws, NULL, ws->f32 ? PASS_F32 : PASS_PLAIN);
        }
        update_centers(p, par, ws);
        double shift = 0.0;
        for (size_t j = 0; j < k; j++) {
            double dr = ws->next[3 * j] - ws->cur[3 * j];
            double dg = ws->next[3 * j + 1] - ws->cur[3 * j + 1];
            double db = ws->next[3 * j + 2] - ws->cur[3 * j + 2];
            shift += dr * dr + dg * dg + db * db;
        }
        double *t = ws->cur;
        ws->cur = ws->next;
        ws->next = t;
        if (shift <= tol_abs) {
            iterations = it;
            converged = true;
            break;
        }
    }
    if (ws->bounds) {
        bounds_prepare(ws, par);
        assign_pass(p, ws->cur, par, ws, labels, PASS_FINAL);
    } else {
        assign_pass(p, ws->cur, par, ws, labels, ws->f32 ? PASS_F32_FINAL : PASS_PLAIN);
    }
    res->inertia = ws->inertia;
    res->evals = ws->evals;
    res->iterations = iterations;
    res->converged = converged;
}

/* ---- workspaces --------------------------------------------------------- */

static void lloyd_ws_free(lloyd_ws *ws)
{
    kmq__free(ws->sums_block);
    kmq__free(ws->best);
    kmq__free(ws->lab);
    kmq__free(ws->chunk_inertia);
    kmq__free(ws->far);
    kmq__free(ws->far_n);
    kmq__free(ws->far_all);
    kmq__free(ws->empty);
    kmq__free(ws->tot);
    kmq__free(ws->cur);
    kmq__free(ws->next);
    kmq__free(ws->plab);
    kmq__free(ws->acc_lab);
    kmq__free(ws->cen_f32);
    kmq__free(ws->ub);
    kmq__free(ws->lb);
    kmq__free(ws->sec);
    kmq__free(ws->cc);
    kmq__free(ws->ord);
    kmq__free(ws->half);
    kmq__free(ws->drift);
    memset(ws, 0, sizeof *ws);
}

/* Scratch for k clusters and `slots` threads; `reseed`: also the lists for
 * empty-cluster reseeding (Lloyd needs them, a plain assignment does not);
 * `bounds`: also the per-point bounds of the pruned passes. */
static kmq_status lloyd_ws_alloc(lloyd_ws *ws, const kmq_kmeans_prepared *p, size_t k, int slots,
                                 bool reseed, bool bounds, kmq_err *err)
{
    memset(ws, 0, sizeof *ws);
    ws->k = k;
    ws->slots = slots;
    ws->bounds = bounds;
    /* Pad each thread's sums (4 per cluster + the evaluation count) to
     * whole cache lines, and align the block, so two threads never write to
     * one line. */
    ws->stride = (4 * k + 1 + U64_PER_LINE - 1) / U64_PER_LINE * U64_PER_LINE;
    ws->sums_block = kmq__alloc_array((size_t)slots * ws->stride + U64_PER_LINE, sizeof(uint64_t));
    if (ws->sums_block) {
        uintptr_t a = (uintptr_t)ws->sums_block;
        a = (a + KMQ_CACHE_LINE - 1) / KMQ_CACHE_LINE * KMQ_CACHE_LINE;
        ws->sums = (uint64_t *)a;
    }
    ws->best = kmq__alloc_array((size_t)slots, 3 * KMQ_CHUNK * sizeof *ws->best);
    ws->lab = kmq__alloc_array((size_t)slots, KMQ_CHUNK * sizeof *ws->lab);
    ws->chunk_inertia = kmq__alloc_array(p->chunks, sizeof *ws->chunk_inertia);
    ws->tot = kmq__alloc_array(4 * k + 1, sizeof *ws->tot);
    ws->cur = kmq__alloc_array(3 * k, sizeof *ws->cur);
    ws->next = kmq__alloc_array(3 * k, sizeof *ws->next);
    ws->acc_lab = kmq__alloc(p->n);
    ws->cen_f32 = kmq__alloc_array(KMQ__F32_STRIDE * k, sizeof *ws->cen_f32);
    bool ok = ws->sums_block && ws->best && ws->lab && ws->chunk_inertia && ws->tot && ws->cur &&
              ws->next && ws->acc_lab && ws->cen_f32;
    if (ok && reseed) {
        ws->far = kmq__alloc_array(p->chunks, k * sizeof *ws->far);
        ws->far_n = kmq__alloc_array(p->chunks, sizeof *ws->far_n);
        ws->far_all = kmq__alloc_array(k, sizeof *ws->far_all);
        ws->empty = kmq__alloc_array(k, sizeof *ws->empty);
        ok = ws->far && ws->far_n && ws->far_all && ws->empty;
    }
    if (ok && bounds) {
        ws->plab = kmq__alloc(p->n);
        ws->ub = kmq__alloc_array(p->n, sizeof *ws->ub);
        ws->lb = kmq__alloc_array(p->n, sizeof *ws->lb);
        ws->sec = kmq__alloc_array((size_t)slots, KMQ_CHUNK * sizeof *ws->sec);
        ws->cc = kmq__alloc_array(k, k * sizeof *ws->cc);
        ws->ord = kmq__alloc_array(k, k);
        ws->half = kmq__alloc_array(k, sizeof *ws->half);
        ws->drift = kmq__alloc_array(k, sizeof *ws->drift);
        ok = ws->plab && ws->ub && ws->lb && ws->sec && ws->cc && ws->ord && ws->half && ws->drift;
    }
    if (ok)
        return KMQ_OK;
    lloyd_ws_free(ws);
    return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for k-means scratch (k = %zu, %zu colours)",
                       k, p->n);
}

/* ---- public API --------------------------------------------------------- */

void kmq_fit_clear(kmq_fit *fit)
{
    kmq__free(fit->centers);
    kmq__free(fit->sizes);
    kmq__free(fit->restart_inertia);
    memset(fit, 0, sizeof *fit);
}

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

/* The pruned passes pay an O(n) bound update plus O(k^2) centre distances
 * per iteration to save most of the n * k distances; below
 * KMQ__BOUNDS_MIN_K the vectorised brute force is faster. */
static bool use_bounds(kmq__algo algo, size_t k)
{
    return algo == KMQ__ALGO_BOUNDS || (algo == KMQ__ALGO_AUTO && k >= KMQ__BOUNDS_MIN_K);
}

/* One restart: init from stream (seed, k, r), Lloyd, results copied out. */
static void run_restart(const kmq_kmeans_prepared *p, const kmq_kmeans_opts *o, int r,
                        double tol_abs, const kmq_par *par, lloyd_ws *lws, kmq__init_ws *iws,
                        run_result *res, double *centers, uint64_t *sizes)
{
    if (cancel_requested(o->cancel)) {
        res->cancelled = true;
        return;
    }
    const double t0 = kmq_par_now_s();
    kmq__init_run(p, o->k, o->init, o->seed, r, par, iws, lws->cur);
    const double t1 = kmq_par_now_s();
    lloyd_run(p, o->max_iter, tol_abs, par, lws, res, NULL, o->cancel);
    if (res->cancelled)
        return;
    res->init_s = t1 - t0;
    res->lloyd_s = kmq_par_now_s() - t1;
    res->evals += iws->evals;
    memcpy(centers, lws->cur, 3 * o->k * sizeof *centers);
    for (size_t j = 0; j < o->k; j++)
        sizes[j] = lws->tot[4 * j + 3];
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

static kmq_status fit_algo(const kmq_kmeans_prepared *p, const kmq_kmeans_opts *opts,
                           const kmq_par *par, kmq__algo algo, kmq_fit *out, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = check_fit_args(opts, par, out, err);
    if (st != KMQ_OK)
        return st;
    lloyd_ws *lws = NULL;
    kmq__init_ws *iws = NULL;
    int nws = 0;
    double *centers = NULL, *rinertia = NULL, *rcenters = NULL;
    uint64_t *sizes = NULL, *rsizes = NULL;
    run_result *res = NULL;

    const size_t k = opts->k;
    const int restarts = opts->restarts;
    const size_t k_eff = k < p->n ? k : p->n;
    centers = kmq__alloc_array(3 * k_eff, sizeof *centers);
    sizes = kmq__alloc_array(k_eff, sizeof *sizes);
    rinertia = kmq__calloc((size_t)restarts, sizeof *rinertia);
    if (!centers || !sizes || !rinertia) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a k = %zu result", k);
        goto done;
    }
    double inertia = 0.0;
    int iterations = 0, best = 0;
    bool converged = true;
    uint64_t evals = 0, iters_total = 0;
    double init_s = 0.0, lloyd_s = 0.0;
    if (k >= p->n) {
        /* Each point is its own centre. */
        for (size_t j = 0; j < p->n; j++) {
            centers[3 * j] = p->r[j];
            centers[3 * j + 1] = p->g[j];
            centers[3 * j + 2] = p->b[j];
            sizes[j] = p->w[j];
        }
    } else {
        const bool by_restart = kmq__restart_parallel(p->n, restarts, par->threads);
        nws = by_restart ? (par->threads < restarts ? par->threads : restarts) : 1;
        const int slots = by_restart ? 1 : par->threads;
        lws = kmq__calloc((size_t)nws, sizeof *lws);
        iws = kmq__calloc((size_t)nws, sizeof *iws);
        res = kmq__alloc_array((size_t)restarts, sizeof *res);
        rcenters = kmq__alloc_array((size_t)restarts, 3 * k * sizeof *rcenters);
        rsizes = kmq__alloc_array((size_t)restarts, k * sizeof *rsizes);
        if (!lws || !iws || !res || !rcenters || !rsizes) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %d k-means restarts", restarts);
            goto done;
        }
        for (int t = 0; t < nws; t++) {
            st = lloyd_ws_alloc(&lws[t], p, k, slots, true, use_bounds(algo, k), err);
            lws[t].f32 = algo != KMQ__ALGO_PLAIN;
            if (st == KMQ_OK)
                st = kmq__init_ws_alloc(&iws[t], p, opts->init, algo, err);
            if (st != KMQ_OK)
                goto done;
        }
        const double tol_abs = opts->tol * p->mean_var;
        if (by_restart) {
            /* Whole restarts per thread, each run serial. The team is the
             * budget, capped at the number of restarts. */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nws) default(none)                       \
    shared(p, opts, restarts, tol_abs, lws, iws, res, rcenters, rsizes, k)
#endif
            for (int r = 0; r < restarts; r++) {
                int t = kmq_par_thread_num();
                run_restart(p, opts, r, tol_abs, NULL, &lws[t], &iws[t], &res[r],
                            rcenters + (size_t)r * 3 * k, rsizes + (size_t)r * k);
            }
        } else {
            for (int r = 0; r < restarts; r++)
                run_restart(p, opts, r, tol_abs, par, &lws[0], &iws[0], &res[r],
                            rcenters + (size_t)r * 3 * k, rsizes + (size_t)r * k);
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
            init_s += res[r].init_s;
            lloyd_s += res[r].lloyd_s;
            iters_total += (uint64_t)res[r].iterations;
            if (res[r].inertia < res[best].inertia)
                best = r;
        }
        memcpy(centers, rcenters + (size_t)best * 3 * k, 3 * k * sizeof *centers);
        memcpy(sizes, rsizes + (size_t)best * k, k * sizeof *sizes);
        inertia = res[best].inertia;
        iterations = res[best].iterations;
        converged = res[best].converged;
    }
    out->k = k;
    out->k_effective = k_eff;
    out->centers = centers;
    out->sizes = sizes;
    out->inertia = inertia;
    out->iterations = iterations;
    out->converged = converged;
    out->best_restart = best;
    out->restarts = restarts;
    out->restart_inertia = rinertia;
    out->distance_evals = evals;
    out->iterations_total = iters_total;
    out->init_s = init_s;
    out->lloyd_s = lloyd_s;
    out->runs_side_by_side = nws > 1;
    centers = NULL;
    sizes = NULL;
    rinertia = NULL;
done:
    for (int t = 0; t < nws; t++) {
        if (lws)
            lloyd_ws_free(&lws[t]);
        if (iws)
            kmq__init_ws_free(&iws[t]);
    }
    kmq__free(lws);
    kmq__free(iws);
    kmq__free(res);
    kmq__free(rcenters);
    kmq__free(rsizes);
    kmq__free(centers);
    kmq__free(sizes);
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
        st = kmq_kmeans_prepared_new(pts, &p, err);
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

kmq_status kmq_kmeans_lloyd(const kmq_points *pts, size_t k, const double *init_centers,
                            int max_iter, double tol, const kmq_par *par, kmq_fit *out,
                            kmq_err *err)
{
    return kmq__kmeans_lloyd_algo(pts, k, init_centers, max_iter, tol, par, KMQ__ALGO_AUTO, out,
                                  NULL, err);
}

kmq_status kmq__kmeans_lloyd_algo(const kmq_points *pts, size_t k, const double *init_centers,
                                  int max_iter, double tol, const kmq_par *par, kmq__algo algo,
                                  kmq_fit *out, uint8_t *labels, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = KMQ_OK;
    kmq_kmeans_prepared *p = NULL;
    lloyd_ws ws = {0};
    double *centers = NULL, *rinertia = NULL;
    uint64_t *sizes = NULL;
    run_result res;

    if (!out)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs a result");
    st = check_par(par, err);
    if (st == KMQ_OK)
        st = check_run_opts(k, max_iter, tol, err);
    if (st == KMQ_OK)
        st = check_centers(init_centers, k, err);
    if (st == KMQ_OK)
        st = kmq_kmeans_prepared_new(pts, &p, err);
    if (st != KMQ_OK)
        goto done;
    if (k > p->n) {
        st = kmq_err_set(err, KMQ_E_ARG, "k = %zu exceeds the %zu distinct colours", k, p->n);
        goto done;
    }
    centers = kmq__alloc_array(3 * k, sizeof *centers);
    sizes = kmq__alloc_array(k, sizeof *sizes);
    rinertia = kmq__alloc_array(1, sizeof *rinertia);
    if (!centers || !sizes || !rinertia) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a k = %zu result", k);
        goto done;
    }
    st = lloyd_ws_alloc(&ws, p, k, par->threads, true, use_bounds(algo, k), err);
    if (st != KMQ_OK)
        goto done;
    ws.f32 = algo != KMQ__ALGO_PLAIN;
    memcpy(ws.cur, init_centers, 3 * k * sizeof *ws.cur);
    const double t0 = kmq_par_now_s();
    lloyd_run(p, max_iter, tol * p->mean_var, par, &ws, &res, labels, NULL);
    const double t1 = kmq_par_now_s();
    memcpy(centers, ws.cur, 3 * k * sizeof *centers);
    for (size_t j = 0; j < k; j++)
        sizes[j] = ws.tot[4 * j + 3];
    rinertia[0] = res.inertia;
    out->k = k;
    out->k_effective = k;
    out->centers = centers;
    out->sizes = sizes;
    out->inertia = res.inertia;
    out->iterations = res.iterations;
    out->converged = res.converged;
    out->best_restart = 0;
    out->restarts = 1;
    out->restart_inertia = rinertia;
    out->distance_evals = res.evals;
    out->iterations_total = (uint64_t)res.iterations;
    out->init_s = 0.0;
    out->lloyd_s = t1 - t0;
    out->runs_side_by_side = false;
    centers = NULL;
    sizes = NULL;
    rinertia = NULL;
done:
    lloyd_ws_free(&ws);
    kmq__free(centers);
    kmq__free(sizes);
    kmq__free(rinertia);
    kmq_kmeans_prepared_free(p);
    return st;
}

kmq_status kmq_kmeans_assign_prepared(const kmq_kmeans_prepared *prep, const double *centers,
                                      size_t k, const kmq_par *par, uint8_t *labels,
                                      double *inertia, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = KMQ_OK;
    lloyd_ws ws = {0};
    if (!prep)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs prepared points");
    if (!labels || !inertia)
        return kmq_err_set(err, KMQ_E_ARG, "k-means assignment needs label and inertia storage");
    if (k < 1 || k > KMQ_MAX_K)
        return kmq_err_set(err, KMQ_E_ARG, "k = %zu is outside 1..%d", k, KMQ_MAX_K);
    st = check_par(par, err);
    if (st == KMQ_OK)
        st = check_centers(centers, k, err);
    if (st == KMQ_OK)
        st = lloyd_ws_alloc(&ws, prep, k, par->threads, false, false, err);
    if (st != KMQ_OK)
        goto done;
    assign_pass(prep, centers, par, &ws, labels, PASS_F32_FINAL);
    *inertia = ws.inertia;
done:
    lloyd_ws_free(&ws);
    return st;
}

kmq_status kmq_kmeans_assign(const kmq_points *pts, const double *centers, size_t k,
                             const kmq_par *par, uint8_t *labels, double *inertia, kmq_err *err)
{
    kmq_kmeans_prepared *p = NULL;
    kmq_status st = KMQ_OK;
    if (!labels || !inertia)
        return kmq_err_set(err, KMQ_E_ARG, "k-means assignment needs label and inertia storage");
    if (k < 1 || k > KMQ_MAX_K)
        return kmq_err_set(err, KMQ_E_ARG, "k = %zu is outside 1..%d", k, KMQ_MAX_K);
    st = check_par(par, err);
    if (st == KMQ_OK)
        st = check_centers(centers, k, err);
    if (st == KMQ_OK)
        st = kmq_kmeans_prepared_new(pts, &p, err);
    if (st == KMQ_OK)
        st = kmq_kmeans_assign_prepared(p, centers, k, par, labels, inertia, err);
    kmq_kmeans_prepared_free(p);
    return st;
}
