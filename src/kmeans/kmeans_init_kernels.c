/* kmeans_init_kernels.c — the kernels of k-means++'s O(n) passes (layer
 * L1): D^2 updates, block sums, the candidates' potentials plain and
 * pruned.
 *
 * Includes its private kmeans_init_kernels.h (prepared points, the init's
 * workspace); no I/O, no threads of its own: kmeans_init.c calls these
 * from its passes, on disjoint blocks. What they compute, and why the
 * pruned kernels give the plain one's bits, is kmeans_init.c's header
 * ("Exact sums", "Pruning"); the unit tests compare both with a plain
 * reference loop.
 */
#include "kmeans_init_kernels.h"

/* Kernel: D^2 of points [lo, hi) against centre c (first: replace, else
 * keep the minimum); returns the largest D^2 (0 if empty). In float: see
 * "Exact sums". */
KMQ__VEC_CLONES float kmq__init_update_range(const kmq_kmeans_prepared *p, size_t lo, size_t hi,
                                             const double *c, bool first, float *d2)
{
    const float cr = (float)c[0], cg = (float)c[1], cb = (float)c[2];
    if (first) {
        for (size_t i = lo; i < hi; i++) {
            float dr = p->r[i] - cr, dg = p->g[i] - cg, db = p->b[i] - cb;
            d2[i] = dr * dr + dg * dg + db * db;
        }
    } else {
        for (size_t i = lo; i < hi; i++) {
            float dr = p->r[i] - cr, dg = p->g[i] - cg, db = p->b[i] - cb;
            float d = dr * dr + dg * dg + db * db;
            d2[i] = d < d2[i] ? d : d2[i];
        }
    }
    float m = 0.0f;
    for (size_t i = lo; i < hi; i++)
        m = d2[i] > m ? d2[i] : m;
    return m;
}

/* Sum w D^2 over points [lo, hi) in point order. */
double kmq__init_block_mass(const kmq_kmeans_prepared *p, size_t lo, size_t hi, const float *d2)
{
    double s = 0.0;
    for (size_t i = lo; i < hi; i++)
        s += (double)p->w[i] * d2[i];
    return s;
}

/* Candidates per vector of trial_block: one AVX2 register of doubles. */
#define TRIAL_LANES 4
_Static_assert(TRIAL_LANES == GAIN_LANES / 2, "f64x4 holds TRIAL_LANES doubles");

/* Lanes of a where a < b, else of b: exactly the values `a < b ? a : b`
 * picks (a macro: a function returning a vector would warn about the AVX
 * ABI). */
#define MIN_F64(a, b) ((f64x4)(((i64x4)(a) & ((a) < (b))) | ((i64x4)(b) & ~((a) < (b)))))

/* Kernel of the unpruned reference (KMQ__ALGO_PLAIN): for each of the nl
 * candidates in `live`, sum w min(D^2, |x - c|^2) over points [lo, hi) in
 * point order, into out[q]. Each sum is a
 * chain of dependent additions in point order (that order is what makes it
 * the same bits everywhere), so the candidates go across the vector lanes
 * (up to 2 * TRIAL_LANES = 8 >= KMQ__MAX_TRIALS) and the points along the
 * loop: lane q does the scalar code's operations for candidate q, in the
 * same order, and the chains of different candidates overlap. Unused lanes
 * repeat candidate live[0] and are dropped. GCC's vector extension keeps
 * the sums in registers (the SSE2 clone splits each operation in two). */
KMQ__VEC_CLONES void kmq__init_trial_plain(const kmq_kmeans_prepared *p, size_t lo, size_t hi,
                                           const float *d2, const double *cand, const size_t *live,
                                           size_t nl, double *out)
{
    _Static_assert(KMQ__MAX_TRIALS <= 2 * TRIAL_LANES, "trial lanes");
    double cx[2 * TRIAL_LANES], cy[2 * TRIAL_LANES], cz[2 * TRIAL_LANES];
    for (size_t q = 0; q < 2 * TRIAL_LANES; q++) {
        size_t t = live[q < nl ? q : 0];
        cx[q] = cand[3 * t];
        cy[q] = cand[3 * t + 1];
        cz[q] = cand[3 * t + 2];
    }
    f64x4 cr0, cg0, cb0, cr1, cg1, cb1;
    memcpy(&cr0, cx, sizeof cr0);
    memcpy(&cg0, cy, sizeof cg0);
    memcpy(&cb0, cz, sizeof cb0);
    memcpy(&cr1, cx + TRIAL_LANES, sizeof cr1);
    memcpy(&cg1, cy + TRIAL_LANES, sizeof cg1);
    memcpy(&cb1, cz + TRIAL_LANES, sizeof cb1);
    f64x4 s0 = {0.0, 0.0, 0.0, 0.0}, s1 = s0;
    if (nl <= TRIAL_LANES) {
        for (size_t i = lo; i < hi; i++) {
            const double wi = (double)p->w[i], di = d2[i];
            const double x = p->r[i], y = p->g[i], z = p->b[i];
            f64x4 dr = x - cr0, dg = y - cg0, db = z - cb0;
            f64x4 d = dr * dr + dg * dg + db * db, dv = {di, di, di, di};
            s0 += wi * MIN_F64(d, dv);
        }
    } else {
        for (size_t i = lo; i < hi; i++) {
            const double wi = (double)p->w[i], di = d2[i];
            const double x = p->r[i], y = p->g[i], z = p->b[i];
            f64x4 dr0 = x - cr0, dg0 = y - cg0, db0 = z - cb0;
            f64x4 dr1 = x - cr1, dg1 = y - cg1, db1 = z - cb1;
            f64x4 d0 = dr0 * dr0 + dg0 * dg0 + db0 * db0;
            f64x4 d1 = dr1 * dr1 + dg1 * dg1 + db1 * db1;
            f64x4 dv = {di, di, di, di};
            s0 += wi * MIN_F64(d0, dv);
            s1 += wi * MIN_F64(d1, dv);
        }
    }
    double sums[2 * TRIAL_LANES];
    memcpy(sums, &s0, sizeof s0);
    memcpy(sums + TRIAL_LANES, &s1, sizeof s1);
    memcpy(out, sums, nl * sizeof *out);
}

/* Kernel of the pruned method: for each candidate t of `reach` (a bit
 * mask), block blk's sum w min(D^2, |x - c|^2), formed as the block's
 * current sum less the gains w (D^2 - |x - c|^2) of the points t is closer
 * to, into out[t]; returns the distances evaluated. Equal to
 * kmq__init_trial_plain's sums by "Exact sums".
 *
 * Each candidate visits only the sub-blocks it can reach (its squared
 * distance to their box below their largest D^2: the 8 tested in one
 * vector). Branch-free within: over half the points a
 * candidate can reach are closer to it. (Measured and dropped: a 16-lane
 * variant for AVX-512, no faster on china.jpg at k = 256.) The distances and D^2 - d go in
 * float, max(D^2 - d, 0) w in double, all exact (integers below 2^24,
 * products and sums below 2^53), so the order of the additions does not
 * matter. */
KMQ__VEC_CLONES uint64_t kmq__init_trial_gain(const kmq_kmeans_prepared *p, size_t blk,
                                              const kmq__init_ws *ws, const trial_soa *cs,
                                              unsigned reach, double *out)
{
    const size_t lo = blk * KMQ__BLOCK, hi = kmq__init_block_end(p, blk);
    const f32x8 zero = {0};
    const float *d2 = ws->d2;
    uint64_t evals = 0;
    for (unsigned t = 0; t < GAIN_LANES; t++) {
        if (!(reach >> t & 1u))
            continue;
        const float cx = cs->x[t], cy = cs->y[t], cz = cs->z[t];
        int32_t visit[KMQ__SUBS];
        sub_reach(p, ws, blk, cx, cy, cz, visit);
        /* The sub-blocks it reaches as bits (none past n: their boxes are
         * far outside the cube), visited in order with the accumulators
         * in registers; the block's data stays in L1 from one candidate
         * to the next. */
        unsigned bits = 0;
        for (unsigned sb = 0; sb < KMQ__SUBS; sb++)
            bits |= (unsigned)(visit[sb] & 1) << sb;
        f64x4 a0 = {0}, a1 = {0};
        double tail = 0.0;
        while (bits) {
            const size_t sb = (size_t)__builtin_ctz(bits);
            bits &= bits - 1;
            const size_t a = lo + sb * KMQ__SUB, e = a + KMQ__SUB < hi ? a + KMQ__SUB : hi;
            evals += e - a;
            size_t i = a;
            for (; i + GAIN_LANES <= e; i += GAIN_LANES) {
                f32x8 x, y, z, dmin;
                f64x4 w0, w1;
                memcpy(&x, p->r + i, sizeof x);
                memcpy(&y, p->g + i, sizeof y);
                memcpy(&z, p->b + i, sizeof z);
                memcpy(&dmin, d2 + i, sizeof dmin);
                memcpy(&w0, p->wd + i, sizeof w0);
                memcpy(&w1, p->wd + i + GAIN_LANES / 2, sizeof w1);
                f32x8 dx = x - cx, dy = y - cy, dz = z - cz;
                f32x8 g = dmin - (dx * dx + dy * dy + dz * dz);
                g = (f32x8)((i32x8)g & (g > zero));
                f64x4 g0 =
                    __builtin_convertvector(__builtin_shufflevector(g, g, 0, 1, 2, 3), f64x4);
                f64x4 g1 =
                    __builtin_convertvector(__builtin_shufflevector(g, g, 4, 5, 6, 7), f64x4);
                a0 += w0 * g0;
                a1 += w1 * g1;
            }
            for (; i < e; i++) {
                float dx = p->r[i] - cx, dy = p->g[i] - cy, dz = p->b[i] - cz;
                float d = dx * dx + dy * dy + dz * dz;
                if (d < d2[i])
                    tail += p->wd[i] * (double)(d2[i] - d);
            }
        }
        const f64x4 sum = a0 + a1;
        out[t] = ws->block_sum[blk] - (sum[0] + sum[1] + sum[2] + sum[3] + tail);
    }
    return evals;
}
