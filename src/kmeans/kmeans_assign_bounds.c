/* kmeans_assign_bounds.c — the Hamerly assignment: per-point distance
 * bounds skip most point-centre distances (layer L1).
 *
 * Includes its private kmeans_assign.h and kmeans_f32.h, L0 (internal,
 * par); no I/O. Calls the float32 kernel (kmeans_f32.c) and the plain
 * method's sums (kmeans_assign_plain.c).
 *
 * Distance pruning (Hamerly 2010, with the neighbour ordering of
 * Exponion, Newling & Fleuret 2016), KMQ__ASSIGN_BOUNDS, used for k >=
 * KMQ__BOUNDS_MIN_K. Each point keeps its label a, an upper bound u >=
 * D(x, c_a) and a lower bound l <= min_{j != a} D(x, c_j) (D = Euclidean
 * distance). After the centres move by drift_j, u += drift_a and l -=
 * max_{j != a} drift_j keep them valid. Let s_a = half the distance from
 * c_a to its nearest other centre. If max(l, s_a) >= u + BOUND_EPS, every
 * other centre is at least BOUND_EPS farther than c_a (for s_a: D(x, c_j)
 * >= D(c_a, c_j) - D(x, c_a) >= 2 s_a - u), so the plain scan's computed
 * squared distances would put c_a strictly first: the label is known and
 * nothing is computed. Otherwise u is tightened to the computed distance
 * to c_a, the test is retried, and if it still fails scan_point visits the
 * other centres by ascending distance from c_a and stops at the first one
 * >= 2u + 2 BOUND_EPS away (it and all later ones are then >= u +
 * BOUND_EPS from x).
 *
 * Exactness: BOUND_EPS = 1e-6 colour units. Squared distances are computed
 * with a relative error below 6 * 2^-53 (one rounding per operation on
 * values <= 3 * 255^2), so two exact distances D_a + BOUND_EPS <= D_j can
 * only compare the same way after rounding (needs BOUND_EPS > ~3e-13); the
 * bounds themselves carry at most a few ulps of 442 per iteration of
 * rounding (<< 1e-9 after 300 iterations). So a skipped distance can
 * neither win nor tie; every distance that can is computed by kmq__dist2,
 * the same expression as the plain loop, and compared as (distance,
 * index), so the label is the plain Lloyd's, ties to the lowest index. The
 * sums are the same integers; the inertia of the final pass is computed
 * per point from the same distances, summed in the same order. Hence the
 * same bits (the tests compare both implementations on real photos).
 *
 * The first pass of a run sets the bounds from the float32 kernel (see
 * bounds_unit); the state below remembers the centres of the last pass, so
 * that kmq__bounds_prepare can tell how far each one has moved since.
 *
 * Threading: kmq__bounds_unit is a kernel (no pragmas); it writes the
 * bounds of its own points only, so units of one pass may run on any
 * threads. kmq__bounds_prepare is a driver: given a kmq_par it builds the
 * rows of the centre-to-centre table in a region from k = 64; NULL:
 * serially.
 */
#include "kmeans_assign.h"

#include "kmeans_f32.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* Margin (colour units) by which a bound must decide; see "Exactness" at
 * the top of the file. */
#define BOUND_EPS 1e-6

struct kmq__bounds {
    size_t k;
    bool set;          /* plab/ub/lb describe the points: a pass ran since the reset */
    bool first;        /* the pass being run sets them from scratch */
    uint8_t *plab;     /* n: label of each point */
    double *ub;        /* n: upper bound on the distance to its centre */
    double *lb;        /* n: lower bound on the distance to any other centre */
    double *sec;       /* slots * KMQ_CHUNK: the two float32 buffers of the first pass */
    double *cc;        /* k * k: row a = distances from centre a to the others, ascending */
    uint8_t *ord;      /* k * k: row a = the centre each cc entry belongs to */
    double *half;      /* k: half the distance to the nearest other centre */
    double *drift;     /* k: distance each centre moved since the last pass */
    double *last;      /* 3k: the centres of the last pass */
    double drift_max;  /* largest drift, */
    double drift_max2; /* largest drift of the other centres, */
    size_t drift_arg;  /* and the centre that has the largest */
};

void kmq__bounds_free(kmq__bounds *b)
{
    if (!b)
        return;
    kmq__free(b->plab);
    kmq__free(b->ub);
    kmq__free(b->lb);
    kmq__free(b->sec);
    kmq__free(b->cc);
    kmq__free(b->ord);
    kmq__free(b->half);
    kmq__free(b->drift);
    kmq__free(b->last);
    kmq__free(b);
}

kmq_status kmq__bounds_new(const kmq_kmeans_prepared *p, size_t k, int slots, kmq__bounds **out,
                           kmq_err *err)
{
    *out = NULL;
    kmq__bounds *b = kmq__calloc(1, sizeof *b);
    if (b) {
        b->k = k;
        b->plab = kmq__alloc(p->n);
        b->ub = kmq__alloc_array(p->n, sizeof *b->ub);
        b->lb = kmq__alloc_array(p->n, sizeof *b->lb);
        b->sec = kmq__alloc_array((size_t)slots, KMQ_CHUNK * sizeof *b->sec);
        b->cc = kmq__alloc_array(k, k * sizeof *b->cc);
        b->ord = kmq__alloc_array(k, k);
        b->half = kmq__alloc_array(k, sizeof *b->half);
        b->drift = kmq__alloc_array(k, sizeof *b->drift);
        b->last = kmq__alloc_array(3 * k, sizeof *b->last);
        if (b->plab && b->ub && b->lb && b->sec && b->cc && b->ord && b->half && b->drift &&
            b->last) {
            *out = b;
            return KMQ_OK;
        }
    }
    kmq__bounds_free(b);
    return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for k-means bounds (k = %zu, %zu colours)",
                       k, p->n);
}

void kmq__bounds_reset(kmq__bounds *b)
{
    b->set = false;
}

/* Row a of the centre-to-centre table of cen (see kmq__bounds_prepare). */
static void prepare_row(kmq__bounds *b, const double *cen, size_t a)
{
    const size_t k = b->k;
    double *row = b->cc + a * k;
    uint8_t *ord = b->ord + a * k;
    const double *ca = cen + 3 * a;
    if (b->first)
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
    b->half[a] = k > 1 ? 0.5 * row[0] : INFINITY;
}

/* Before a pruned pass (O(k^2)): how far each centre moved since the last
 * pass, the two largest moves, and the centre-to-centre distances of cen
 * with half the distance to each centre's nearest neighbour. */
void kmq__bounds_prepare(kmq__bounds *b, const double *cen, const kmq_par *par)
{
    const size_t k = b->k;
    b->first = !b->set;
    b->set = true;
    if (!b->first) {
        double m1 = 0.0, m2 = 0.0;
        size_t arg = 0;
        for (size_t j = 0; j < k; j++) {
            double dr = cen[3 * j] - b->last[3 * j];
            double dg = cen[3 * j + 1] - b->last[3 * j + 1];
            double db = cen[3 * j + 2] - b->last[3 * j + 2];
            double d = sqrt(dr * dr + dg * dg + db * db);
            b->drift[j] = d;
            if (d > m1) {
                m2 = m1;
                m1 = d;
                arg = j;
            } else if (d > m2) {
                m2 = d;
            }
        }
        b->drift_max = m1;
        b->drift_max2 = m2;
        b->drift_arg = arg;
    }
    memcpy(b->last, cen, 3 * k * sizeof *b->last);
    /* Row a: the other centres by ascending distance from a, by insertion
     * sort from the previous iteration's order (centres move little, so it
     * is nearly sorted and this is about O(k) a row). Equal distances keep
     * any order: the scan's result does not depend on it. */
    if (par && par->threads > 1 && k >= 64) {
        /* Rows are independent; O(k^2) is worth a region from k = 64. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(par->threads) default(none) shared(b, cen, k)
#endif
        for (size_t a = 0; a < k; a++)
            prepare_row(b, cen, a);
    } else {
        for (size_t a = 0; a < k; a++)
            prepare_row(b, cen, a);
    }
}

/* As kmq__nearest_exact, and the second-smallest kmq__dist2 into *second
 * (+inf for k = 1). */
static uint32_t nearest_exact2(float x, float y, float z, const double *cen, size_t k,
                               double *second)
{
    double bd = kmq__dist2(x, y, z, cen), sd = INFINITY;
    uint32_t bj = 0;
    for (size_t j = 1; j < k; j++) {
        double d = kmq__dist2(x, y, z, cen + 3 * j);
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

/* Nearest centre of one point currently labelled a, u = sqrt(da) (da =
 * its computed squared distance to a). The other centres are visited in
 * ascending distance from a (cc_row, ord_row); the visit stops at the first
 * one at least 2 u + 2 BOUND_EPS from a: by the triangle inequality it and
 * all later ones are at least u + BOUND_EPS from the point, so their
 * computed distances exceed da and they can neither win nor tie. The
 * visited ones are computed with kmq__dist2 and compared as (distance,
 * index) pairs, so the winner is the plain scan's (smallest distance,
 * lowest index on ties) whatever the visiting order. Returns the new label;
 * *dbest its squared distance, *lower a lower bound on the distance to
 * every other centre; *evals counts the distances computed. */
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
        double d = kmq__dist2(x, y, z, cen + 3 * (size_t)j);
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

/* The pruned assignment of points [lo, lo + m) against cen, the centres
 * kmq__bounds_prepare last saw. First pass of a run: all distances, bounds
 * set from the nearest and second-nearest. Later passes: bounds moved by
 * the centre drifts; a point is rescanned only when they cannot prove its
 * label. `final`: also the exact squared distance of every point to its
 * centre, for the inertia. */
void kmq__bounds_unit(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen,
                      bool final, kmq__assign_ws *ws, int slot, uint8_t *labels)
{
    kmq__bounds *bs = ws->bounds;
    const size_t k = ws->k;
    double *best = ws->buf + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    uint64_t *sums = ws->sums + (size_t)slot * ws->stride;
    uint8_t *plab = bs->plab + lo;
    double *ub = bs->ub + lo, *lb = bs->lb + lo;
    uint64_t evals = 0;
    const double *dist = best;
    if (bs->first) {
        /* First pass: nearest and second in float32 (ws->cen_f32, the
         * table of cen); the upper bound is the exact double distance to
         * the winner, the lower bound the float second less KMQ__F32_SLACK,
         * which is below every other exact distance (kmeans_f32.h). Close
         * calls are rescanned in double. */
        float *fbuf = (float *)(bs->sec + (size_t)slot * KMQ_CHUNK);
        const float *d1 = fbuf, *d2 = fbuf + KMQ_CHUNK;
        kmq__f32_scan(p->r + lo, p->g + lo, p->b + lo, m, ws->cen_f32, k, NULL, fbuf,
                      fbuf + KMQ_CHUNK, lab);
        const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
        evals = (uint64_t)m * k;
        for (size_t i = 0; i < m; i++) {
            uint32_t a = lab[i];
            double second = (double)d2[i] - KMQ__F32_SLACK;
            if (!(d2[i] - d1[i] > KMQ__F32_MARGIN)) {
                a = nearest_exact2(r[i], g[i], b[i], cen, k, &second);
                evals += k;
            }
            double da = kmq__dist2(r[i], g[i], b[i], cen + 3 * (size_t)a);
            best[i] = da;
            lab[i] = a;
            plab[i] = (uint8_t)a;
            ub[i] = sqrt(da);
            lb[i] = second > 0.0 ? sqrt(second) : 0.0;
        }
    } else if (final) {
        const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
        const double *drift = bs->drift, *half = bs->half;
        const double dmax = bs->drift_max, dmax2 = bs->drift_max2;
        const size_t darg = bs->drift_arg;
        for (size_t i = 0; i < m; i++) {
            uint32_t a = plab[i];
            double u = ub[i] + drift[a];
            double l = lb[i] - (a == darg ? dmax2 : dmax);
            double thr = l > half[a] ? l : half[a];
            double da = kmq__dist2(r[i], g[i], b[i], cen + 3 * (size_t)a);
            evals++;
            u = sqrt(da);
            if (!(thr >= u + BOUND_EPS)) {
                double lower;
                a = scan_point(r[i], g[i], b[i], cen, k, bs->cc + (size_t)a * k,
                               bs->ord + (size_t)a * k, a, da, &da, &lower, &evals);
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
        const double *drift = bs->drift, *half = bs->half;
        const double dmax = bs->drift_max, dmax2 = bs->drift_max2;
        const uint32_t darg = (uint32_t)bs->drift_arg;
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
            double da = kmq__dist2(r[i], g[i], b[i], cen + 3 * (size_t)a);
            evals++;
            double u = sqrt(da);
            if (!(thr >= u + BOUND_EPS)) {
                double lower;
                a = scan_point(r[i], g[i], b[i], cen, k, bs->cc + (size_t)a * k,
                               bs->ord + (size_t)a * k, a, da, &da, &lower, &evals);
                u = sqrt(da);
                lb[i] = lower;
                plab[i] = (uint8_t)a;
            }
            ub[i] = u;
            if (a != prev[i]) {
                kmq__move_point(sums, prev[i], a, keys[i], w[i]);
                prev[i] = (uint8_t)a;
            }
        }
        sums[4 * k] += evals;
        return;
    }
    double inertia = kmq__assign_sums(p, lo, m, final ? dist : NULL, lab, sums, ws, labels);
    if (final)
        ws->chunk_inertia[lo / KMQ_CHUNK] = inertia;
    sums[4 * k] += evals;
}
