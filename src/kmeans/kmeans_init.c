/* kmeans_init.c — initial centres for weighted k-means (layer L1).
 *
 * Includes kmeans.h, its private kmeans_init.h (prepared points:
 * kmeans_points.h) and L0 (par, rng); no I/O. Calls its kernels
 * (kmeans_init_kernels.c) and nothing else of src/kmeans; the fit driver
 * (kmeans.c) calls it once per restart.
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
 * Sums. Points are grouped in blocks of KMQ__BLOCK consecutive points
 * (KMQ__BLOCK divides KMQ_CHUNK, so a chunk is a whole number of blocks).
 * Every potential is a block sum (w_i D_i^2) folded in block order into a
 * chunk sum, and chunk sums folded in chunk order: one fixed order,
 * whatever the threads or the pruning.
 *
 * Exact sums. All coordinates are integers in [0, 255] (centres are
 * points), so every D^2 is an integer below 3 * 255^2 < 2^18, exact in
 * float (the D^2 array is float), and while the total weight W keeps
 * W * 3 * 255^2 below 2^53 (46 G pixels, far above any scan) every
 * term w D^2, every partial sum and every potential is an integer below
 * 2^53, exact in double. The sums are then the same bits in any order
 * and in any grouping, which is what lets the pruned kernels form a
 * block's potential as its current sum less the gains of the points a
 * candidate wins, add 8 lanes at a time, and skip what cannot change.
 * Above that bound (exact_sums), the pruning is off: every block is summed
 * in point order, as before it existed.
 *
 * Drawing in proportion to w_i D_i^2 walks that same structure: the chunk
 * whose running sum passes the target v = u * phi (u uniform in [0, 1)),
 * then the block inside it, then the point inside the block whose running
 * sum passes what is left. Points with zero mass can never be drawn. Should
 * rounding push the target past the end, the last point with positive mass
 * (of the chunk, or of the block) is taken. The first centre uses the same
 * walk on exact integer weights (kmq_rng_below(W)), so it involves no
 * rounding at all.
 *
 * Pruning (every k; the tests turn it off with KMQ__ALGO_PLAIN). The points
 * come in Morton order of their colour (hist.h), so a block is a small box
 * of the RGB cube; the prepared points hold the bounding box of each block
 * and of each of its KMQ__SUBS sub-blocks, the init that of each group of
 * INIT_GROUP blocks and each block's and sub-block's largest D^2. A
 * candidate c whose squared distance to a box is >= the largest D^2 in it
 * is at least D_i from every point there, so min(D_i^2, |x_i - c|^2) =
 * D_i^2 for all of them: its gain there is 0 and nothing is computed. The
 * tests go group, block, sub-block, 8 candidates (or sub-blocks) a vector;
 * the same tests skip points when D^2 is updated. The squared distances
 * are exact integers in float, so the tests are exact: the same
 * potentials, the same choice, the same centres as the plain pass (the
 * unit tests compare them).
 *
 * `random` draws k distinct points without replacement, each draw with
 * probability proportional to the weight among the points not yet drawn;
 * all in uint64, serial (O(k * (chunks + KMQ_CHUNK))).
 *
 * Deferred D^2 updates. Once centre c is chosen (the candidate t that won),
 * every block's new sum w D^2 is already known: it is block_pot[t] of the
 * pass that just ran (the same terms w min(D^2, |x - c|^2) in the same
 * order, or, where c could not reach the block, its unchanged sum), and
 * chunk_pot[t] is the new chunk sum. Only the per-point D^2 (and the
 * block's largest D^2) lag behind. So no pass of its own updates them:
 * each block catches up (catch_up_block, the same computation and pruning
 * test as an eager update) at the start of the next candidates' pass, or
 * earlier, serially, when a draw lands in it. block_upto says which blocks
 * have. One O(n) pass per centre instead of two halves the parallel
 * regions, whose start and join cost more than their work at 16 threads
 * (README, "Up to 16 threads"), and the last centre's update, which
 * nothing reads, is never made.
 *
 * Threading: init_pass drives the O(n) passes (D^2 against the first
 * centre; then per centre the catch-up and the candidates' potentials).
 * Given a kmq_par it runs groups of INIT_GROUP blocks in parallel, given
 * NULL serially; either way the same kernels (first_group, trial_group)
 * write one sum per block, and fold_chunk folds those in block order into
 * one per chunk. The chunk sums are folded serially in chunk order, so the
 * centres are the same bits for any thread count. Groups are finer than
 * chunks because pruning concentrates a candidate's work in the few chunks
 * near it in colour space (Morton order). The random draws happen serially
 * between passes, in a fixed order, from the run's own stream
 * kmq_rng_init(seed, k, restart).
 */
#include "kmq/kmeans.h"

#include "kmeans_init.h"
#include "kmeans_init_kernels.h"
#include "kmq/par.h"
#include "kmq/rng.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* Blocks per work unit of init_pass (1,024 points). */
#define INIT_GROUP ((size_t)4)

/* block_upto holds centre indices. */
_Static_assert(KMQ_MAX_K - 1 <= UINT16_MAX, "centre index must fit block_upto");

/* 2 + floor(ln k), without libm: the thresholds are ceil(e^1 .. e^5). */
static size_t trials_for(size_t k)
{
    static const size_t e_pow[] = {3, 8, 21, 55, 149};
    size_t t = 2;
    for (size_t i = 0; i < sizeof e_pow / sizeof e_pow[0]; i++)
        t += k >= e_pow[i];
    return t;
}

static void set_center(const kmq_kmeans_prepared *p, size_t i, double *center)
{
    center[0] = p->r[i];
    center[1] = p->g[i];
    center[2] = p->b[i];
}

/* The point where the running weight first exceeds v (v < the sum of
 * chunk_w), skipping points marked in `taken` (may be NULL). */
static size_t pick_by_weight(const kmq_kmeans_prepared *p, const uint64_t *chunk_w,
                             const unsigned char *taken, uint64_t v)
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

/* Squared distance from c to a box (min r, g, b, max r, g, b; 0 inside).
 * Exact for integer c: the box corners are integers. */
static double box_dist2(const float *box, const double *c)
{
    double s = 0.0;
    for (int d = 0; d < 3; d++) {
        double below = box[d] - c[d], above = c[d] - box[3 + d];
        double gap = below > 0.0 ? below : above > 0.0 ? above : 0.0;
        s += gap * gap;
    }
    return s;
}

static size_t chunk_end(const kmq_kmeans_prepared *p, size_t ch)
{
    size_t hi = (ch + 1) * KMQ_CHUNK;
    return hi < p->n ? hi : p->n;
}

/* One past the last block of chunk ch (its first is ch * KMQ__BLOCKS_PER_CHUNK). */
static size_t chunk_blocks_end(const kmq_kmeans_prepared *p, size_t ch)
{
    return (chunk_end(p, ch) + KMQ__BLOCK - 1) / KMQ__BLOCK;
}

/* One past the last block of group g (its first is g * INIT_GROUP). */
static size_t group_blocks_end(const kmq_kmeans_prepared *p, size_t g)
{
    size_t hi = (g + 1) * INIT_GROUP;
    return hi < p->blocks ? hi : p->blocks;
}

/* Kernel: D^2 of group g's blocks against the first centre c. */
static void first_group(const kmq_kmeans_prepared *p, size_t g, const double *c, kmq__init_ws *ws)
{
    const size_t b1 = group_blocks_end(p, g);
    for (size_t blk = g * INIT_GROUP; blk < b1; blk++) {
        const size_t lo = blk * KMQ__BLOCK, hi = kmq__init_block_end(p, blk);
        float bmax = 0.0f;
        for (size_t sb = 0; sb < KMQ__SUBS; sb++) {
            const size_t a = lo + sb * KMQ__SUB, e = a + KMQ__SUB < hi ? a + KMQ__SUB : hi;
            const float m = a < e ? kmq__init_update_range(p, a, e, c, true, ws->d2) : 0.0f;
            ws->sub_max[KMQ__SUBS * blk + sb] = m;
            bmax = m > bmax ? m : bmax;
        }
        ws->block_max[blk] = bmax;
        ws->block_sum[blk] = kmq__init_block_mass(p, lo, hi, ws->d2);
        ws->block_upto[blk] = 0;
        ws->group_evals[g] += hi - lo;
    }
}

/* Block blk's D^2 against the pending centre, if it has not caught up
 * yet (see "Deferred"), in the sub-blocks the centre can reach (see
 * "Pruning"). Its new sum is the pending trial's potential over it, known
 * already. */
static void catch_up_block(const kmq_kmeans_prepared *p, size_t blk, kmq__init_ws *ws)
{
    if (ws->block_upto[blk] >= ws->pending)
        return;
    ws->block_upto[blk] = (uint16_t)ws->pending;
    const double *c = ws->pending_center;
    if (ws->prune && box_dist2(p->box + 6 * blk, c) >= ws->block_max[blk])
        return;
    int32_t visit[KMQ__SUBS];
    sub_reach(p, ws, blk, (float)c[0], (float)c[1], (float)c[2], visit);
    const size_t lo = blk * KMQ__BLOCK, hi = kmq__init_block_end(p, blk);
    float *smax = ws->sub_max + KMQ__SUBS * blk;
    float bmax = 0.0f;
    for (size_t sb = 0; sb < KMQ__SUBS; sb++) {
        const size_t a = lo + sb * KMQ__SUB, e = a + KMQ__SUB < hi ? a + KMQ__SUB : hi;
        if ((visit[sb] || !ws->prune) && a < e) {
            smax[sb] = kmq__init_update_range(p, a, e, c, false, ws->d2);
            ws->group_evals[blk / INIT_GROUP] += e - a;
        }
        bmax = smax[sb] > bmax ? smax[sb] : bmax;
    }
    ws->block_max[blk] = bmax;
    ws->block_sum[blk] = ws->block_pot[blk * KMQ__MAX_TRIALS + ws->pending_trial];
}

/* Block blk's current sum w D^2, caught up or not. */
static double block_sum_now(const kmq__init_ws *ws, size_t blk)
{
    return ws->block_upto[blk] >= ws->pending
               ? ws->block_sum[blk]
               : ws->block_pot[blk * KMQ__MAX_TRIALS + ws->pending_trial];
}

/* Kernel: each block of group g catches up with the pending centre, then
 * the candidates' potentials over it go into ws->block_pot.
 *
 * Pruned: one vector test of the group's box (the union of its blocks')
 * against the candidates and the pending centre (lane PENDING_LANE),
 * within the group's largest D^2 (before the catch-up: D^2 only shrinks,
 * so it bounds the new one too), then the same per block. A block no
 * candidate can reach keeps its sum whichever wins: it is marked caught up
 * with the centre this step chooses (block_upto = pending + 1), writes no
 * potentials, and fold_chunk takes its sum. Most groups are such, and cost
 * that one test. */
KMQ__VEC_CLONES static void trial_group(const kmq_kmeans_prepared *p, size_t g, const double *cand,
                                        size_t ntrials, const trial_soa *cs, kmq__init_ws *ws)
{
    const size_t b0 = g * INIT_GROUP, b1 = group_blocks_end(p, g);
    const unsigned all = (1u << ntrials) - 1;
    uint64_t evals = 0;
    if (!ws->prune) {
        size_t live[KMQ__MAX_TRIALS];
        for (size_t t = 0; t < ntrials; t++)
            live[t] = t;
        for (size_t blk = b0; blk < b1; blk++) {
            catch_up_block(p, blk, ws);
            size_t lo = blk * KMQ__BLOCK, hi = kmq__init_block_end(p, blk);
            kmq__init_trial_plain(p, lo, hi, ws->d2, cand, live, ntrials,
                                  ws->block_pot + blk * KMQ__MAX_TRIALS);
            evals += ntrials * (hi - lo);
        }
        ws->group_evals[g] += evals;
        return;
    }
    double gmax = 0.0;
    for (size_t blk = b0; blk < b1; blk++)
        gmax = ws->block_max[blk] > gmax ? ws->block_max[blk] : gmax;
    const unsigned group_reach = reach_mask(ws->group_box + 6 * g, cs, (float)gmax);
    const uint16_t next = (uint16_t)(ws->pending + 1);
    for (size_t blk = b0; blk < b1; blk++) {
        if (group_reach >> PENDING_LANE & 1u)
            catch_up_block(p, blk, ws);
        else if (ws->block_upto[blk] < ws->pending)
            ws->block_upto[blk] = (uint16_t)ws->pending; /* nothing to catch up */
        unsigned reach = group_reach & all;
        if (reach)
            reach &= reach_mask(p->box + 6 * blk, cs, (float)ws->block_max[blk]);
        if (!reach) {
            ws->block_upto[blk] = next;
            continue;
        }
        double *part = ws->block_pot + blk * KMQ__MAX_TRIALS;
        for (size_t t = 0; t < ntrials; t++)
            if (!(reach >> t & 1u))
                part[t] = ws->block_sum[blk];
        evals += kmq__init_trial_gain(p, blk, ws, cs, reach, part);
    }
    ws->group_evals[g] += evals;
}

/* Chunk ch's sums: its block sums (first pass) or block potentials
 * (trial) folded in block order. */
static void fold_chunk(const kmq_kmeans_prepared *p, size_t ch, size_t ntrials, kmq__init_ws *ws)
{
    const size_t b0 = ch * KMQ__BLOCKS_PER_CHUNK, b1 = chunk_blocks_end(p, ch);
    if (ntrials == 0) {
        double s = 0.0;
        for (size_t blk = b0; blk < b1; blk++)
            s += ws->block_sum[blk];
        ws->chunk_sum[ch] = s;
        return;
    }
    double pot[KMQ__MAX_TRIALS];
    for (size_t t = 0; t < ntrials; t++)
        pot[t] = 0.0;
    const uint16_t next = (uint16_t)(ws->pending + 1);
    for (size_t blk = b0; blk < b1; blk++) {
        if (ws->block_upto[blk] == next) { /* no candidate reached it */
            for (size_t t = 0; t < ntrials; t++)
                pot[t] += ws->block_sum[blk];
        } else {
            for (size_t t = 0; t < ntrials; t++)
                pot[t] += ws->block_pot[blk * KMQ__MAX_TRIALS + t];
        }
    }
    memcpy(ws->chunk_pot + ch * KMQ__MAX_TRIALS, pot, ntrials * sizeof *pot);
}

/* Driver of one O(n) pass: for each group, D^2 against the first centre
 * (c; ntrials == 0) or the catch-up and the potentials of the ntrials
 * candidates `c`; then the chunk sums. Pruned groups take uneven time:
 * dynamic schedule, groups finer than chunks. */
static void init_pass(const kmq_kmeans_prepared *p, const double *c, size_t ntrials,
                      const trial_soa *cs, const kmq_par *par, kmq__init_ws *ws)
{
    const size_t groups = (p->blocks + INIT_GROUP - 1) / INIT_GROUP, chunks = p->chunks;
    if (par && par->threads > 1 && groups > 1) {
#ifdef _OPENMP
#pragma omp parallel num_threads(par->threads) default(none)                                       \
    shared(p, c, ntrials, cs, ws, groups, chunks)
#endif
        {
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (size_t g = 0; g < groups; g++) {
                if (ntrials == 0)
                    first_group(p, g, c, ws);
                else
                    trial_group(p, g, c, ntrials, cs, ws);
            }
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t ch = 0; ch < chunks; ch++)
                fold_chunk(p, ch, ntrials, ws);
        }
    } else {
        for (size_t g = 0; g < groups; g++) {
            if (ntrials == 0)
                first_group(p, g, c, ws);
            else
                trial_group(p, g, c, ntrials, cs, ws);
        }
        for (size_t ch = 0; ch < chunks; ch++)
            fold_chunk(p, ch, ntrials, ws);
    }
}

/* The last point of [lo, hi) (whole blocks) with positive mass w D^2, or
 * SIZE_MAX. */
static size_t last_positive(const kmq_kmeans_prepared *p, kmq__init_ws *ws, size_t lo, size_t hi)
{
    for (size_t blk = lo / KMQ__BLOCK; blk * KMQ__BLOCK < hi; blk++)
        catch_up_block(p, blk, ws);
    for (size_t i = hi; i > lo; i--)
        if ((double)p->w[i - 1] * ws->d2[i - 1] > 0.0)
            return i - 1;
    return SIZE_MAX;
}

/* A point drawn with probability w D^2 / phi, for v = u * phi: the walk of
 * "Sums" at the top. */
static size_t pick_by_potential(const kmq_kmeans_prepared *p, kmq__init_ws *ws, double v)
{
    double acc = 0.0;
    size_t last = 0, ch;
    for (ch = 0; ch < p->chunks; ch++) {
        double s = ws->chunk_sum[ch];
        if (s > 0.0)
            last = ch;
        if (acc + s > v)
            break;
        acc += s;
    }
    if (ch == p->chunks) {
        size_t i = last_positive(p, ws, last * KMQ_CHUNK, chunk_end(p, last));
        assert(i != SIZE_MAX);
        return i;
    }
    /* acc <= v, so each local target is >= 0 and only a point with
     * positive mass can lift a running sum above it. */
    double local = v - acc, bacc = 0.0;
    const size_t b0 = ch * KMQ__BLOCKS_PER_CHUNK, b1 = chunk_blocks_end(p, ch);
    size_t blk;
    for (blk = b0; blk < b1; blk++) {
        double s = block_sum_now(ws, blk);
        if (bacc + s > local)
            break;
        bacc += s;
    }
    if (blk < b1) {
        catch_up_block(p, blk, ws);
        double target = local - bacc, s = 0.0;
        for (size_t i = blk * KMQ__BLOCK; i < kmq__init_block_end(p, blk); i++) {
            s += (double)p->w[i] * ws->d2[i];
            if (s > target)
                return i;
        }
        size_t i = last_positive(p, ws, blk * KMQ__BLOCK, kmq__init_block_end(p, blk));
        if (i != SIZE_MAX)
            return i;
    }
    size_t i = last_positive(p, ws, ch * KMQ_CHUNK, chunk_end(p, ch));
    assert(i != SIZE_MAX);
    return i;
}

static void kmeanspp_run(const kmq_kmeans_prepared *p, size_t k, kmq_rng *rng, const kmq_par *par,
                         kmq__init_ws *ws, double *centers)
{
    const size_t groups = (p->blocks + INIT_GROUP - 1) / INIT_GROUP;
    memset(ws->group_evals, 0, groups * sizeof *ws->group_evals);
    size_t first = pick_by_weight(p, p->chunk_w, NULL, kmq_rng_below(rng, p->total_w));
    set_center(p, first, centers);
    ws->pending = 0;
    init_pass(p, centers, 0, NULL, par, ws);
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
        trial_soa cs;
        trial_soa_set(cand, ntrials, ws->pending_center, &cs);
        init_pass(p, cand, ntrials, &cs, par, ws);
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
        /* D^2 catches up later (see "Deferred"); the sums are known now. */
        for (size_t ch = 0; ch < p->chunks; ch++)
            ws->chunk_sum[ch] = ws->chunk_pot[ch * KMQ__MAX_TRIALS + best];
        ws->pending = c;
        ws->pending_trial = best;
        memcpy(ws->pending_center, centers + 3 * c, sizeof ws->pending_center);
    }
    ws->evals = 0;
    for (size_t g = 0; g < groups; g++)
        ws->evals += ws->group_evals[g];
}

static void random_run(const kmq_kmeans_prepared *p, size_t k, kmq_rng *rng, kmq__init_ws *ws,
                       double *centers)
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

uint64_t kmq__init_brute_evals(size_t n, size_t k, kmq_init init)
{
    if (init == KMQ_INIT_RANDOM || k == 0)
        return 0;
    return (uint64_t)n * (1 + (uint64_t)(k - 1) * (trials_for(k) + 1));
}

void kmq__init_run(const kmq_kmeans_prepared *p, size_t k, kmq_init init, uint64_t seed,
                   int restart, const kmq_par *par, kmq__init_ws *ws, double *centers)
{
    assert(k >= 1 && k <= p->n);
    kmq_rng rng;
    kmq_rng_init(&rng, seed, k, (uint64_t)restart);
    if (init == KMQ_INIT_RANDOM)
        random_run(p, k, &rng, ws, centers);
    else
        kmeanspp_run(p, k, &rng, par, ws, centers);
}

/* Whether every sum of w D^2 is exact in double: see "Exact sums". */
static bool exact_sums(const kmq_kmeans_prepared *p)
{
    return (double)p->total_w * (3.0 * 255.0 * 255.0) < 9007199254740992.0; /* 2^53 */
}

kmq_status kmq__init_ws_alloc(kmq__init_ws *ws, const kmq_kmeans_prepared *p, kmq_init init,
                              bool prune, kmq_err *err)
{
    memset(ws, 0, sizeof *ws);
    ws->prune = init == KMQ_INIT_KMEANSPP && prune && exact_sums(p);
    if (init == KMQ_INIT_RANDOM) {
        ws->chunk_w = kmq__alloc_array(p->chunks, sizeof *ws->chunk_w);
        ws->taken = kmq__alloc(p->n);
        if (ws->chunk_w && ws->taken)
            return KMQ_OK;
    } else {
        ws->d2 = kmq__alloc_array(p->n, sizeof *ws->d2);
        ws->chunk_sum = kmq__alloc_array(p->chunks, sizeof *ws->chunk_sum);
        ws->chunk_pot = kmq__alloc_array(p->chunks, KMQ__MAX_TRIALS * sizeof *ws->chunk_pot);
        ws->group_evals =
            kmq__alloc_array((p->blocks + INIT_GROUP - 1) / INIT_GROUP, sizeof *ws->group_evals);
        ws->block_pot = kmq__alloc_array(p->blocks, KMQ__MAX_TRIALS * sizeof *ws->block_pot);
        ws->block_sum = kmq__alloc_array(p->blocks, sizeof *ws->block_sum);
        ws->block_max = kmq__alloc_array(p->blocks, sizeof *ws->block_max);
        ws->sub_max = kmq__alloc_array(p->blocks, KMQ__SUBS * sizeof *ws->sub_max);
        ws->block_upto = kmq__alloc_array(p->blocks, sizeof *ws->block_upto);
        const size_t groups = (p->blocks + INIT_GROUP - 1) / INIT_GROUP;
        ws->group_box = kmq__alloc_array(groups, 6 * sizeof *ws->group_box);
        if (ws->d2 && ws->chunk_sum && ws->chunk_pot && ws->group_evals && ws->block_pot &&
            ws->block_sum && ws->block_max && ws->sub_max && ws->block_upto && ws->group_box) {
            for (size_t g = 0; g < groups; g++) {
                float *gb = ws->group_box + 6 * g;
                memcpy(gb, p->box + 6 * g * INIT_GROUP, 6 * sizeof *gb);
                for (size_t blk = g * INIT_GROUP + 1; blk < group_blocks_end(p, g); blk++)
                    for (int d = 0; d < 3; d++) {
                        const float *bx = p->box + 6 * blk;
                        gb[d] = bx[d] < gb[d] ? bx[d] : gb[d];
                        gb[3 + d] = bx[3 + d] > gb[3 + d] ? bx[3 + d] : gb[3 + d];
                    }
            }
            return KMQ_OK;
        }
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
    kmq__free(ws->block_sum);
    kmq__free(ws->block_max);
    kmq__free(ws->sub_max);
    kmq__free(ws->block_upto);
    kmq__free(ws->group_evals);
    kmq__free(ws->block_pot);
    kmq__free(ws->group_box);
    memset(ws, 0, sizeof *ws);
}
