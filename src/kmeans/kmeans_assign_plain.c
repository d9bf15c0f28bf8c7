/* kmeans_assign_plain.c — the double brute-force assignment: every
 * point-centre distance computed in double (layer L1).
 *
 * Includes its private kmeans_assign.h and kmeans_points.h, L0 (internal,
 * par); no I/O. Calls nothing else of src/kmeans; the other methods
 * (kmeans_assign_f32.c, kmeans_assign_bounds.c), the pass drivers
 * (kmeans_assign.c) and the reseeding (kmeans_lloyd.c) call it.
 *
 * This is the reference the other methods must agree with bit for bit
 * (KMQ__ASSIGN_PLAIN; test_kmeans.c runs it against them), and it holds
 * what they share with it: the exact scan of one point, which they fall
 * back to where their shortcuts cannot decide, and the integer sums of a
 * unit of points.
 *
 * Sums. Each point adds w r, w g, w b and w (channels 0..255, w its pixel
 * count) to its cluster's uint64 sums: integers, so exact and the same in
 * any order. The first pass of a run counts every point; later ones start
 * from the previous totals (ws->counted) and move only the points whose
 * label changed, from their old cluster (ws->acc_lab) to the new one:
 * uint64 differences wrap, and the totals come out the same integers as a
 * full recount. The inertia of a final pass is summed in point order per
 * chunk, from the same distances the labels were decided on.
 *
 * Threading: kernels only (no pragmas), safe inside a region on disjoint
 * outputs: a unit writes its own points' labels, its thread's sum slot and
 * its chunk's inertia slot.
 */
#include "kmeans_assign.h"

#include <stdbool.h>

/* Nearest centre of points [lo, lo + m): lab[i] = centre index, and the
 * squared distances in the returned buffer (best or tmp). Centre-major, so
 * the inner loop runs over contiguous points; the distances ping-pong
 * between best and tmp because an in-place update would let GCC turn the
 * select into a conditional store, which it cannot vectorise. The strict <
 * keeps the lowest index on ties. */
KMQ__VEC_CLONES const double *kmq__nearest_plain(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                                 const double *cen, size_t k, double *best,
                                                 double *tmp, uint32_t *restrict lab)
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

uint32_t kmq__nearest_exact(float x, float y, float z, const double *cen, size_t k)
{
    double bd = kmq__dist2(x, y, z, cen);
    uint32_t bj = 0;
    for (size_t j = 1; j < k; j++) {
        double d = kmq__dist2(x, y, z, cen + 3 * j);
        if (d < bd) {
            bd = d;
            bj = (uint32_t)j;
        }
    }
    return bj;
}

/* See "Sums" at the top of the file. */
double kmq__assign_sums(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *dist,
                        const uint32_t *lab, uint64_t *sums, kmq__assign_ws *ws, uint8_t *labels)
{
    const uint32_t *keys = p->keys + lo;
    const uint64_t *w = p->w + lo;
    uint8_t *prev = ws->acc_lab + lo;
    if (ws->counted) {
        for (size_t i = 0; i < m; i++) {
            if (lab[i] == prev[i])
                continue;
            kmq__move_point(sums, prev[i], lab[i], keys[i], w[i]);
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
    if (dist)
        for (size_t i = 0; i < m; i++)
            inertia += (double)w[i] * dist[i];
    if (labels)
        for (size_t i = 0; i < m; i++)
            labels[lo + i] = (uint8_t)lab[i];
    return inertia;
}

void kmq__plain_unit(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen,
                     bool final, kmq__assign_ws *ws, int slot, uint8_t *labels)
{
    double *best = ws->buf + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    uint64_t *sums = ws->sums + (size_t)slot * ws->stride;
    const double *dist = kmq__nearest_plain(p, lo, m, cen, ws->k, best, best + KMQ_CHUNK, lab);
    double inertia = kmq__assign_sums(p, lo, m, final ? dist : NULL, lab, sums, ws, labels);
    if (final)
        ws->chunk_inertia[lo / KMQ_CHUNK] = inertia;
    sums[4 * ws->k] += (uint64_t)m * ws->k;
}
