/* kmeans_init.c — initial centres for weighted k-means (layer L1).
 *
 * Includes kmeans.h, its private kmeans_init.h and L0 (par, rng); no I/O.
 *
 * k-means++, greedy variant (Arthur & Vassilvitskii 2007; the "local
 * trials" of scikit-learn's _kmeans_plusplus). With point weights w_i and
 * D_i the distance from x_i to its nearest centre chosen so far:
 *   1. the first centre is point i with probability w_i / W (W = sum w);
 *   2. each further centre: draw L = 2 + floor(ln k) candidates, each with
 *      probability w_i D_i^2 / phi, phi = sum_i w_i D_i^2 (the potential);
 *      for each candidate c compute phi_c = sum_i w_i min(D_i^2, |x_i-c|^2)
 *      and keep the candidate with the lowest phi_c (ties: the earliest
 *      drawn), then D_i^2 <- min(D_i^2, |x_i - c|^2).
 * A weighted point is exactly w_i coincident pixels, so this is k-means++
 * over the pixels, except that one draw picks a colour, never a second
 * pixel of a colour already chosen (its D^2 is 0, so it has no mass).
 *
 * Drawing in proportion to w_i D_i^2 uses a chunked prefix sum: per-chunk
 * sums S_c (summed in point order), a serial prefix over chunks to find the
 * chunk holding the target v = u * phi (u uniform in [0, 1)), then a scan
 * inside that chunk for the first point whose running sum exceeds
 * v - prefix. Points with zero mass can never be drawn. Should rounding
 * push v past the end, the last point with positive mass is taken. The
 * first centre uses the same scheme on exact integer weights
 * (kmq_rng_below(W)), so it involves no rounding at all.
 *
 * Pruning (k >= KMQ__PRUNE_MIN_K). Every point keeps near[i], a chosen
 * centre at squared distance d2[i], and each chunk keeps rmax2[j] >= the
 * largest d2 of its points whose near is j. For a candidate c: if |c -
 * c_j|^2 >= 4 d2[i] with j = near[i], then |x - c| >= |c - c_j| - |x - c_j|
 * >= sqrt(d2[i]), so min(d2[i], |x - c|^2) = d2[i] and the distance is not
 * computed; if that holds for every j against rmax2, the whole chunk keeps
 * its current sum, which is bit for bit the sum the plain pass would form
 * (same terms, same order). All coordinates here are integers (centres are
 * points), so these squared distances are exact integers and the test is
 * exact: the same candidates, the same choice, the same centres.
 *
 * `random` draws k distinct points without replacement, each draw with
 * probability proportional to the weight among the points not yet drawn;
 * all in uint64, serial (O(k * (chunks + KMQ_CHUNK))).
 *
 * Threading: update_pass and trial_pass are the drivers of the two O(n)
 * passes per centre. Given a kmq_par they run chunks in parallel, given
 * NULL serially; both call the same kernels (update_chunk, trial_chunk),
 * write one double per chunk (and per trial) and fold them serially in
 * chunk order, so the centres are the same bits for any thread count. The
 * random draws happen serially between passes, in a fixed order, from the
 * run's own stream kmq_rng_init(seed, k, restart).
 */
#include "kmq/kmeans.h"

#include "kmeans_init.h"
#include "kmq/par.h"
#include "kmq/rng.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* 2 + floor(ln k), without libm: the thresholds are ceil(e^1 .. e^5). */
static size_t trials_for(size_t k)
{
    static const size_t e_pow[] = {3, 8, 21, 55, 149};
    size_t t = 2;
    for (size_t i = 0; i < sizeof e_pow / sizeof e_pow[0]; i++)
        t += k >= e_pow[i];
    return t;
}

static void set_center(const kmq__pts *p, size_t i, double *center)
{
    center[0] = p->r[i];
    center[1] = p->g[i];
    center[2] = p->b[i];
}

/* The point where the running weight first exceeds v (v < the sum of
 * chunk_w), skipping points marked in `taken` (may be NULL). */
static size_t pick_by_weight(const kmq__pts *p, const uint64_t *chunk_w, const unsigned char *taken,
                             uint64_t v)
{
    size_t ch = 0;
    while (v >= chunk_w[ch])
        v -= chunk_w[ch++];
    size_t lo = ch * KMQ_CHUNK;
    size_t hi = lo + KMQ_CHUNK < p->n ? lo + KMQ_CHUNK : p->n;
    for (size_t i = lo; i < hi; i++) {
        if (taken && taken[i])
            continue;
        if (v < p->w[i])
            return i;
        v -= p->w[i];
    }
    assert(!"chunk weights disagree with point weights");
    return hi - 1;
}

/* Kernel: D^2 of points [lo, hi) against centre c (first: replace, else
 * keep the minimum); returns sum w D^2 of the chunk in point order. */
KMQ__VEC_CLONES static double update_chunk(const kmq__pts *p, size_t lo, size_t hi, const double *c,
                                           bool first, double *d2)
{
    const double cr = c[0], cg = c[1], cb = c[2];
    if (first) {
        for (size_t i = lo; i < hi; i++) {
            double dr = p->r[i] - cr, dg = p->g[i] - cg, db = p->b[i] - cb;
            d2[i] = dr * dr + dg * dg + db * db;
        }
    } else {
        for (size_t i = lo; i < hi; i++) {
            double dr = p->r[i] - cr, dg = p->g[i] - cg, db = p->b[i] - cb;
            double d = dr * dr + dg * dg + db * db;
            d2[i] = d < d2[i] ? d : d2[i];
        }
    }
    double s = 0.0;
    for (size_t i = lo; i < hi; i++)
        s += (double)p->w[i] * d2[i];
    return s;
}

/* Kernel: for each of the ntrials candidates, sum w min(D^2, |x - c|^2)
 * over points [lo, hi) in point order, into pot[t]. Each sum is a chain of
 * dependent additions in point order (that order is what makes it the same
 * bits everywhere); running the trials side by side in one pass over the
 * points lets the chains overlap instead of waiting on each other. */
KMQ__VEC_CLONES static void trial_chunk(const kmq__pts *p, size_t lo, size_t hi, const double *d2,
                                        const double *cand, size_t ntrials, double *pot)
{
    double s[KMQ__MAX_TRIALS];
    for (size_t t = 0; t < ntrials; t++)
        s[t] = 0.0;
    for (size_t i = lo; i < hi; i++) {
        const double wi = (double)p->w[i], di = d2[i];
        for (size_t t = 0; t < ntrials; t++) {
            double dr = p->r[i] - cand[3 * t], dg = p->g[i] - cand[3 * t + 1],
                   db = p->b[i] - cand[3 * t + 2];
            double d = dr * dr + dg * dg + db * db;
            s[t] += wi * (d < di ? d : di);
        }
    }
    for (size_t t = 0; t < ntrials; t++)
        pot[t] = s[t];
}

static size_t chunk_end(const kmq__pts *p, size_t ch)
{
    size_t hi = (ch + 1) * KMQ_CHUNK;
    return hi < p->n ? hi : p->n;
}

/* Whether a candidate c can lower D^2 of any point of a chunk: ccsq[j] =
 * |c - c_j|^2 for the nc centres chosen so far, rmax2[j] = the largest D^2
 * among the chunk's points whose nearest is c_j. See "Pruning" at the top. */
static bool chunk_touched(const double *ccsq, const double *rmax2, size_t nc)
{
    for (size_t j = 0; j < nc; j++)
        if (ccsq[j] < 4.0 * rmax2[j])
            return true;
    return false;
}

/* Kernel, pruned update_chunk of chunk ch for centre number cj (cj = 0:
 * the first centre, every distance; otherwise ccsq[j] = |c - c_j|^2 for
 * j < cj). Keeps near[] and the chunk's rmax2 row; returns the chunk's sum
 * w D^2 in point order, the same bits as update_chunk. */
static double update_chunk_pruned(const kmq__pts *p, size_t ch, const double *c, size_t cj,
                                  const double *ccsq, kmq__init_ws *ws)
{
    const size_t lo = ch * KMQ_CHUNK, hi = chunk_end(p, ch);
    double *d2 = ws->d2;
    uint8_t *near = ws->near;
    double *rmax2 = ws->rmax2 + ch * ws->k;
    uint64_t n = 0;
    if (cj == 0) {
        for (size_t i = lo; i < hi; i++) {
            double dr = p->r[i] - c[0], dg = p->g[i] - c[1], db = p->b[i] - c[2];
            d2[i] = dr * dr + dg * dg + db * db;
            near[i] = 0;
        }
        n = hi - lo;
    } else {
        if (!chunk_touched(ccsq, rmax2, cj))
            return ws->chunk_sum[ch];
        for (size_t i = lo; i < hi; i++) {
            if (ccsq[near[i]] >= 4.0 * d2[i])
                continue;
            double dr = p->r[i] - c[0], dg = p->g[i] - c[1], db = p->b[i] - c[2];
            double d = dr * dr + dg * dg + db * db;
            n++;
            if (d < d2[i]) {
                d2[i] = d;
                near[i] = (uint8_t)cj;
            }
        }
    }
    ws->chunk_evals[ch] += n;
    for (size_t j = 0; j <= cj; j++)
        rmax2[j] = 0.0;
    double s = 0.0;
    for (size_t i = lo; i < hi; i++) {
        s += (double)p->w[i] * d2[i];
        double *r = rmax2 + near[i];
        *r = d2[i] > *r ? d2[i] : *r;
    }
    return s;
}

/* Kernel, pruned trial_chunk of chunk ch with nc centres chosen: ccsq holds
 * ws->k entries per candidate. Same sums, same order as trial_chunk;
 * candidates that touch no point of the chunk take the chunk's current sum,
 * which is that same sum. */
static void trial_chunk_pruned(const kmq__pts *p, size_t ch, const double *cand, size_t ntrials,
                               size_t nc, kmq__init_ws *ws, double *pot)
{
    const size_t lo = ch * KMQ_CHUNK, hi = chunk_end(p, ch);
    const double *d2 = ws->d2;
    const uint8_t *near = ws->near;
    const double *rmax2 = ws->rmax2 + ch * ws->k;
    size_t live[KMQ__MAX_TRIALS];
    size_t nl = 0;
    for (size_t t = 0; t < ntrials; t++) {
        if (chunk_touched(ws->ccsq + t * ws->k, rmax2, nc))
            live[nl++] = t;
        else
            pot[t] = ws->chunk_sum[ch];
    }
    if (nl == 0)
        return;
    double s[KMQ__MAX_TRIALS];
    for (size_t q = 0; q < nl; q++)
        s[q] = 0.0;
    uint64_t n = 0;
    for (size_t i = lo; i < hi; i++) {
        const double wi = (double)p->w[i], di = d2[i], lim = 4.0 * di;
        const size_t j = near[i];
        for (size_t q = 0; q < nl; q++) {
            const size_t t = live[q];
            double v = di;
            if (ws->ccsq[t * ws->k + j] < lim) {
                double dr = p->r[i] - cand[3 * t], dg = p->g[i] - cand[3 * t + 1],
                       db = p->b[i] - cand[3 * t + 2];
                double d = dr * dr + dg * dg + db * db;
                n++;
                v = d < v ? d : v;
            }
            s[q] += wi * v;
        }
    }
    for (size_t q = 0; q < nl; q++)
        pot[live[q]] = s[q];
    ws->chunk_evals[ch] += n;
}

static void update_one(const kmq__pts *p, size_t ch, const double *c, size_t cj, const double *ccsq,
                       kmq__init_ws *ws)
{
    if (ws->prune) {
        ws->chunk_sum[ch] = update_chunk_pruned(p, ch, c, cj, ccsq, ws);
    } else {
        size_t lo = ch * KMQ_CHUNK, hi = chunk_end(p, ch);
        ws->chunk_sum[ch] = update_chunk(p, lo, hi, c, cj == 0, ws->d2);
        ws->chunk_evals[ch] += hi - lo;
    }
}

static void trial_one(const kmq__pts *p, size_t ch, const double *cand, size_t ntrials, size_t nc,
                      kmq__init_ws *ws)
{
    double *pot = ws->chunk_pot + ch * KMQ__MAX_TRIALS;
    if (ws->prune) {
        trial_chunk_pruned(p, ch, cand, ntrials, nc, ws, pot);
    } else {
        size_t lo = ch * KMQ_CHUNK, hi = chunk_end(p, ch);
        trial_chunk(p, lo, hi, ws->d2, cand, ntrials, pot);
        ws->chunk_evals[ch] += ntrials * (hi - lo);
    }
}

/* Driver: D^2 against centre number cj (at c) for all chunks; ccsq as
 * update_chunk_pruned. Pruned chunks take uneven time: dynamic schedule. */
static void update_pass(const kmq__pts *p, const double *c, size_t cj, const double *ccsq,
                        const kmq_par *par, kmq__init_ws *ws)
{
    const size_t chunks = p->chunks;
    if (par && par->threads > 1 && chunks > 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(par->threads) default(none)              \
    shared(p, c, cj, ccsq, ws, chunks)
#endif
        for (size_t ch = 0; ch < chunks; ch++)
            update_one(p, ch, c, cj, ccsq, ws);
    } else {
        for (size_t ch = 0; ch < chunks; ch++)
            update_one(p, ch, c, cj, ccsq, ws);
    }
}

/* Driver: the candidates' potentials per chunk, nc centres chosen. */
static void trial_pass(const kmq__pts *p, const double *cand, size_t ntrials, size_t nc,
                       const kmq_par *par, kmq__init_ws *ws)
{
    const size_t chunks = p->chunks;
    if (par && par->threads > 1 && chunks > 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(par->threads) default(none)              \
    shared(p, cand, ntrials, nc, ws, chunks)
#endif
        for (size_t ch = 0; ch < chunks; ch++)
            trial_one(p, ch, cand, ntrials, nc, ws);
    } else {
        for (size_t ch = 0; ch < chunks; ch++)
            trial_one(p, ch, cand, ntrials, nc, ws);
    }
}

/* The last point of chunk ch with positive mass w D^2 (there is one). */
static size_t last_positive(const kmq__pts *p, const kmq__init_ws *ws, size_t ch)
{
    size_t lo = ch * KMQ_CHUNK;
    for (size_t i = chunk_end(p, ch); i > lo; i--)
        if ((double)p->w[i - 1] * ws->d2[i - 1] > 0.0)
            return i - 1;
    assert(!"chunk with positive sum has no positive point");
    return lo;
}

/* A point drawn with probability w D^2 / phi, for v = u * phi. */
static size_t pick_by_potential(const kmq__pts *p, const kmq__init_ws *ws, double v)
{
    double acc = 0.0;
    size_t last = 0;
    size_t ch;
    for (ch = 0; ch < p->chunks; ch++) {
        double s = ws->chunk_sum[ch];
        if (s > 0.0)
            last = ch;
        if (acc + s > v)
            break;
        acc += s;
    }
    if (ch == p->chunks)
        return last_positive(p, ws, last);
    /* acc <= v, so the local target is >= 0 and only a point with positive
     * mass can lift the running sum above it. */
    double local = v - acc;
    double s = 0.0;
    for (size_t i = ch * KMQ_CHUNK; i < chunk_end(p, ch); i++) {
        s += (double)p->w[i] * ws->d2[i];
        if (s > local)
            return i;
    }
    return last_positive(p, ws, ch);
}

/* ccsq rows of the pruned passes: |candidate t - centre j|^2 for the nc
 * centres chosen so far. All coordinates are integers, so these are exact. */
static void candidate_distances(const double *cand, size_t ntrials, const double *centers,
                                size_t nc, kmq__init_ws *ws)
{
    for (size_t t = 0; t < ntrials; t++) {
        double *row = ws->ccsq + t * ws->k;
        for (size_t j = 0; j < nc; j++) {
            double dr = cand[3 * t] - centers[3 * j];
            double dg = cand[3 * t + 1] - centers[3 * j + 1];
            double db = cand[3 * t + 2] - centers[3 * j + 2];
            row[j] = dr * dr + dg * dg + db * db;
        }
    }
}

static void kmeanspp_run(const kmq__pts *p, size_t k, kmq_rng *rng, const kmq_par *par,
                         kmq__init_ws *ws, double *centers)
{
    assert(!ws->prune || k <= ws->k);
    memset(ws->chunk_evals, 0, p->chunks * sizeof *ws->chunk_evals);
    size_t first = pick_by_weight(p, p->chunk_w, NULL, kmq_rng_below(rng, p->total_w));
    set_center(p, first, centers);
    update_pass(p, centers, 0, NULL, par, ws);
    const size_t ntrials = trials_for(k);
    double cand[3 * KMQ__MAX_TRIALS];
    size_t cand_idx[KMQ__MAX_TRIALS];
    for (size_t c = 1; c < k; c++) {
        double phi = 0.0;
        for (size_t ch = 0; ch < p->chunks; ch++)
            phi += ws->chunk_sum[ch];
        for (size_t t = 0; t < ntrials; t++) {
            cand_idx[t] = pick_by_potential(p, ws, kmq_rng_uniform(rng) * phi);
            set_center(p, cand_idx[t], cand + 3 * t);
        }
        if (ws->prune)
            candidate_distances(cand, ntrials, centers, c, ws);
        trial_pass(p, cand, ntrials, c, par, ws);
        size_t best = 0;
        double best_pot = 0.0;
        for (size_t t = 0; t < ntrials; t++) {
            double pot = 0.0;
            for (size_t ch = 0; ch < p->chunks; ch++)
                pot += ws->chunk_pot[ch * KMQ__MAX_TRIALS + t];
            if (t == 0 || pot < best_pot) {
                best = t;
                best_pot = pot;
            }
        }
        set_center(p, cand_idx[best], centers + 3 * c);
        update_pass(p, centers + 3 * c, c, ws->prune ? ws->ccsq + best * ws->k : NULL, par, ws);
    }
    ws->evals = 0;
    for (size_t ch = 0; ch < p->chunks; ch++)
        ws->evals += ws->chunk_evals[ch];
}

static void random_run(const kmq__pts *p, size_t k, kmq_rng *rng, kmq__init_ws *ws, double *centers)
{
    ws->evals = 0;
    memcpy(ws->chunk_w, p->chunk_w, p->chunks * sizeof *ws->chunk_w);
    memset(ws->taken, 0, p->n);
    uint64_t left = p->total_w;
    for (size_t c = 0; c < k; c++) {
        size_t i = pick_by_weight(p, ws->chunk_w, ws->taken, kmq_rng_below(rng, left));
        ws->taken[i] = 1;
        ws->chunk_w[i / KMQ_CHUNK] -= p->w[i];
        left -= p->w[i];
        set_center(p, i, centers + 3 * c);
    }
}

void kmq__init_run(const kmq__pts *p, size_t k, kmq_init init, uint64_t seed, int restart,
                   const kmq_par *par, kmq__init_ws *ws, double *centers)
{
    assert(k >= 1 && k <= p->n);
    kmq_rng rng;
    kmq_rng_init(&rng, seed, k, (uint64_t)restart);
    if (init == KMQ_INIT_RANDOM)
        random_run(p, k, &rng, ws, centers);
    else
        kmeanspp_run(p, k, &rng, par, ws, centers);
}

kmq_status kmq__init_ws_alloc(kmq__init_ws *ws, const kmq__pts *p, kmq_init init, size_t k,
                              kmq__algo algo, kmq_err *err)
{
    memset(ws, 0, sizeof *ws);
    ws->k = k;
    ws->prune = init == KMQ_INIT_KMEANSPP &&
                (algo == KMQ__ALGO_BOUNDS || (algo == KMQ__ALGO_AUTO && k >= KMQ__PRUNE_MIN_K));
    if (init == KMQ_INIT_RANDOM) {
        ws->chunk_w = kmq__alloc_array(p->chunks, sizeof *ws->chunk_w);
        ws->taken = kmq__alloc(p->n);
        if (ws->chunk_w && ws->taken)
            return KMQ_OK;
    } else {
        ws->d2 = kmq__alloc_array(p->n, sizeof *ws->d2);
        ws->chunk_sum = kmq__alloc_array(p->chunks, sizeof *ws->chunk_sum);
        ws->chunk_pot = kmq__alloc_array(p->chunks, KMQ__MAX_TRIALS * sizeof *ws->chunk_pot);
        ws->chunk_evals = kmq__alloc_array(p->chunks, sizeof *ws->chunk_evals);
        bool ok = ws->d2 && ws->chunk_sum && ws->chunk_pot && ws->chunk_evals;
        if (ok && ws->prune) {
            ws->near = kmq__alloc(p->n);
            ws->rmax2 = kmq__alloc_array(p->chunks, k * sizeof *ws->rmax2);
            ws->ccsq = kmq__alloc_array(KMQ__MAX_TRIALS, k * sizeof *ws->ccsq);
            ok = ws->near && ws->rmax2 && ws->ccsq;
        }
        if (ok)
            return KMQ_OK;
    }
    kmq__init_ws_free(ws);
    return kmq_err_set(err, KMQ_E_NOMEM, "out of memory initialising k-means over %zu colours",
                       p->n);
}

void kmq__init_ws_free(kmq__init_ws *ws)
{
    kmq__free(ws->d2);
    kmq__free(ws->chunk_sum);
    kmq__free(ws->chunk_pot);
    kmq__free(ws->chunk_w);
    kmq__free(ws->taken);
    kmq__free(ws->near);
    kmq__free(ws->rmax2);
    kmq__free(ws->ccsq);
    kmq__free(ws->chunk_evals);
    memset(ws, 0, sizeof *ws);
}

kmq_status kmq_kmeans_init_centers(const kmq_points *pts, size_t k, kmq_init init, uint64_t seed,
                                   int restart, const kmq_par *par, double *centers, kmq_err *err)
{
    return kmq__kmeans_init_algo(pts, k, init, seed, restart, par, KMQ__ALGO_AUTO, centers, err);
}

kmq_status kmq__kmeans_init_algo(const kmq_points *pts, size_t k, kmq_init init, uint64_t seed,
                                 int restart, const kmq_par *par, kmq__algo algo, double *centers,
                                 kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = KMQ_OK;
    kmq__pts p = {0};
    kmq__init_ws ws = {0};
    if (init != KMQ_INIT_KMEANSPP && init != KMQ_INIT_RANDOM)
        return kmq_err_set(err, KMQ_E_ARG, "unknown k-means init %d", (int)init);
    if (restart < 0)
        return kmq_err_set(err, KMQ_E_ARG, "restart index %d is negative", restart);
    if (!centers || !par || par->threads < 1)
        return kmq_err_set(err, KMQ_E_ARG, "k-means init needs centre storage and threads >= 1");
    st = kmq__pts_build(pts, &p, err);
    if (st != KMQ_OK)
        goto done;
    if (k < 1 || k > KMQ_MAX_K || k > p.n) {
        st = kmq_err_set(err, KMQ_E_ARG, "k = %zu is outside 1..%zu (max %d, %zu colours)", k,
                         p.n < KMQ_MAX_K ? p.n : (size_t)KMQ_MAX_K, KMQ_MAX_K, p.n);
        goto done;
    }
    st = kmq__init_ws_alloc(&ws, &p, init, k, algo, err);
    if (st != KMQ_OK)
        goto done;
    kmq__init_run(&p, k, init, seed, restart, par, &ws, centers);
done:
    kmq__init_ws_free(&ws);
    kmq__pts_free(&p);
    return st;
}
