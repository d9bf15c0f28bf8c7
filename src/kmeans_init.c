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
static double update_chunk(const kmq__pts *p, size_t lo, size_t hi, const double *c, bool first,
                           double *d2)
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
 * over points [lo, hi) in point order, into pot[t]. */
static void trial_chunk(const kmq__pts *p, size_t lo, size_t hi, const double *d2,
                        const double *cand, size_t ntrials, double *pot)
{
    for (size_t t = 0; t < ntrials; t++) {
        const double cr = cand[3 * t], cg = cand[3 * t + 1], cb = cand[3 * t + 2];
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) {
            double dr = p->r[i] - cr, dg = p->g[i] - cg, db = p->b[i] - cb;
            double d = dr * dr + dg * dg + db * db;
            s += (double)p->w[i] * (d < d2[i] ? d : d2[i]);
        }
        pot[t] = s;
    }
}

static size_t chunk_end(const kmq__pts *p, size_t ch)
{
    size_t hi = (ch + 1) * KMQ_CHUNK;
    return hi < p->n ? hi : p->n;
}

/* Driver: D^2 against a new centre for all chunks. */
static void update_pass(const kmq__pts *p, const double *c, bool first, const kmq_par *par,
                        kmq__init_ws *ws)
{
    const size_t chunks = p->chunks;
    if (par && par->threads > 1 && chunks > 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(par->threads) default(none)                  \
    shared(p, c, first, ws, chunks)
#endif
        for (size_t ch = 0; ch < chunks; ch++)
            ws->chunk_sum[ch] = update_chunk(p, ch * KMQ_CHUNK, chunk_end(p, ch), c, first, ws->d2);
    } else {
        for (size_t ch = 0; ch < chunks; ch++)
            ws->chunk_sum[ch] = update_chunk(p, ch * KMQ_CHUNK, chunk_end(p, ch), c, first, ws->d2);
    }
}

/* Driver: the candidates' potentials per chunk. */
static void trial_pass(const kmq__pts *p, const double *cand, size_t ntrials, const kmq_par *par,
                       kmq__init_ws *ws)
{
    const size_t chunks = p->chunks;
    if (par && par->threads > 1 && chunks > 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(par->threads) default(none)                  \
    shared(p, cand, ntrials, ws, chunks)
#endif
        for (size_t ch = 0; ch < chunks; ch++)
            trial_chunk(p, ch * KMQ_CHUNK, chunk_end(p, ch), ws->d2, cand, ntrials,
                        ws->chunk_pot + ch * KMQ__MAX_TRIALS);
    } else {
        for (size_t ch = 0; ch < chunks; ch++)
            trial_chunk(p, ch * KMQ_CHUNK, chunk_end(p, ch), ws->d2, cand, ntrials,
                        ws->chunk_pot + ch * KMQ__MAX_TRIALS);
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

static void kmeanspp_run(const kmq__pts *p, size_t k, kmq_rng *rng, const kmq_par *par,
                         kmq__init_ws *ws, double *centers)
{
    size_t first = pick_by_weight(p, p->chunk_w, NULL, kmq_rng_below(rng, p->total_w));
    set_center(p, first, centers);
    update_pass(p, centers, true, par, ws);
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
        trial_pass(p, cand, ntrials, par, ws);
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
        update_pass(p, centers + 3 * c, false, par, ws);
    }
}

static void random_run(const kmq__pts *p, size_t k, kmq_rng *rng, kmq__init_ws *ws, double *centers)
{
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

kmq_status kmq__init_ws_alloc(kmq__init_ws *ws, const kmq__pts *p, kmq_init init, kmq_err *err)
{
    memset(ws, 0, sizeof *ws);
    if (init == KMQ_INIT_RANDOM) {
        ws->chunk_w = kmq__alloc_array(p->chunks, sizeof *ws->chunk_w);
        ws->taken = kmq__alloc(p->n);
        if (ws->chunk_w && ws->taken)
            return KMQ_OK;
    } else {
        ws->d2 = kmq__alloc_array(p->n, sizeof *ws->d2);
        ws->chunk_sum = kmq__alloc_array(p->chunks, sizeof *ws->chunk_sum);
        ws->chunk_pot = kmq__alloc_array(p->chunks, KMQ__MAX_TRIALS * sizeof *ws->chunk_pot);
        if (ws->d2 && ws->chunk_sum && ws->chunk_pot)
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
    memset(ws, 0, sizeof *ws);
}

kmq_status kmq_kmeans_init_centers(const kmq_points *pts, size_t k, kmq_init init, uint64_t seed,
                                   int restart, const kmq_par *par, double *centers, kmq_err *err)
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
    st = kmq__init_ws_alloc(&ws, &p, init, err);
    if (st != KMQ_OK)
        goto done;
    kmq__init_run(&p, k, init, seed, restart, par, &ws, centers);
done:
    kmq__init_ws_free(&ws);
    kmq__pts_free(&p);
    return st;
}
