/* kmeans_assign_f32.c — the float32 brute-force assignment: every
 * point-centre distance ranked in float32, close calls decided in double
 * (layer L1).
 *
 * Includes its private kmeans_assign.h and kmeans_f32.h, L0 (internal,
 * par); no I/O. Calls the float32 kernel (kmeans_f32.c) and the plain
 * method's exact scan and sums (kmeans_assign_plain.c).
 *
 * KMQ__ASSIGN_F32, the method for k < KMQ__BOUNDS_MIN_K and of every plain
 * labelling (kmq_kmeans_assign). The kernel gives the nearest and
 * second-nearest centre in float32, 8 lanes to the 4 of double; where they
 * differ by more than KMQ__F32_MARGIN the label is provably the double
 * loop's (kmeans_f32.h), otherwise the point is rescanned in double
 * (kmq__nearest_exact). The inertia of a final pass uses kmq__dist2 to the
 * winner, as the plain method. So labels, sums and inertia are the plain
 * method's bits.
 *
 * Threading: a kernel (no pragmas), safe inside a region on disjoint
 * outputs, like the plain one.
 */
#include "kmeans_assign.h"

#include "kmeans_f32.h"

#include <math.h>
#include <string.h>

/* flag[i] = 1 where point i of a chunk is a float32 close call or its
 * nearest centre differs from prev[i], else 0; zero up to the next multiple
 * of 8 so the caller can skip 8 flags at a time. */
KMQ__VEC_CLONES static void flag_todo(const float *restrict d1, const float *restrict d2,
                                      const uint32_t *restrict lab, const uint8_t *restrict prev,
                                      size_t m, uint8_t *restrict flag)
{
    for (size_t i = 0; i < m; i++)
        flag[i] = (uint8_t)(!(d2[i] - d1[i] > KMQ__F32_MARGIN) | (lab[i] != prev[i]));
    for (size_t i = m; i % 8 != 0; i++)
        flag[i] = 0;
}

/* Squared distances from centre c to the nearest and farthest point of a
 * box (min r, g, b, max r, g, b), in double: exact but for a few ulps. */
static void box_range2(const float *box, const double *c, double *near2, double *far2)
{
    double n = 0.0, f = 0.0;
    for (int d = 0; d < 3; d++) {
        double lo = box[d] - c[d], hi = c[d] - box[3 + d];
        double gap = lo > 0.0 ? lo : hi > 0.0 ? hi : 0.0;
        double to_min = c[d] - box[d], to_max = box[3 + d] - c[d];
        double span = to_min > to_max ? to_min : to_max;
        n += gap * gap;
        f += span * span;
    }
    *near2 = n;
    *far2 = f;
}

/* Margin (squared colour units) by which a centre must be farther from a
 * whole block than the block's best bound to be left out of its scan; see
 * f32_scan_filtered. */
#define FILTER_MARGIN 1.0

/* kmq__f32_scan over points [lo, lo + m) of p, block by block (the
 * prepared blocks: KMQ__BLOCK points in Morton order, a small box of
 * colour space), each against only the centres that can be nearest to
 * some point of its box; returns the point-centre distances evaluated.
 *
 * Filtering (the box test of Kanungo et al. 2002). Let U be the smallest,
 * over the centres, squared distance from a centre to the farthest corner
 * of the box: every point has a centre within U. A centre whose squared
 * distance to the box is >= U + FILTER_MARGIN is, for every point, at
 * least FILTER_MARGIN farther (squared, exactly) than some kept centre.
 * Its float32 distance is then > that centre's plus 1 - 2 * 0.0625
 * (kmeans_f32.c's error bound): it is never the float nearest, and where
 * it would have been the float second, the gap to the nearest exceeds
 * KMQ__F32_MARGIN both with it and without it. The kept centres' table
 * rows are those of the full table, in ascending index order (ties keep
 * the lowest index). So lab and d1 are the full scan's, and the test
 * d2 - d1 > KMQ__F32_MARGIN decides the same way: the caller's labels are
 * the same bits. The box distances themselves err by ulps, far below the
 * margin. */
static uint64_t f32_scan_filtered(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                  const double *cen, const float *cf, size_t k, float *d1,
                                  float *d2, uint32_t *lab)
{
    if (lo % KMQ__BLOCK != 0 || k < 4) {
        kmq__f32_scan(p->r + lo, p->g + lo, p->b + lo, m, cf, k, d1, d2, lab);
        return (uint64_t)m * k;
    }
    float sub[KMQ__F32_STRIDE * KMQ_MAX_K];
    uint32_t idx[KMQ_MAX_K];
    double near2[KMQ_MAX_K];
    uint64_t evals = 0;
    for (size_t off = 0; off < m; off += KMQ__BLOCK) {
        const size_t bm = m - off < KMQ__BLOCK ? m - off : KMQ__BLOCK;
        const float *box = p->box + 6 * ((lo + off) / KMQ__BLOCK);
        double bound = INFINITY;
        for (size_t j = 0; j < k; j++) {
            double far2;
            box_range2(box, cen + 3 * j, &near2[j], &far2);
            bound = far2 < bound ? far2 : bound;
        }
        size_t nk = 0;
        for (size_t j = 0; j < k; j++) {
            if (near2[j] < bound + FILTER_MARGIN) {
                memcpy(sub + KMQ__F32_STRIDE * nk, cf + KMQ__F32_STRIDE * j,
                       KMQ__F32_STRIDE * sizeof *sub);
                idx[nk++] = (uint32_t)j;
            }
        }
        const size_t s = lo + off;
        kmq__f32_scan(p->r + s, p->g + s, p->b + s, bm, sub, nk, d1 + off, d2 + off, lab + off);
        for (size_t i = off; i < off + bm; i++)
            lab[i] = idx[lab[i]];
        evals += (uint64_t)bm * nk;
    }
    return evals;
}

/* The plain unit through the float32 kernel (ws->cen_f32, the table of
 * cen): the same labels (close calls rescanned in double) and, in a final
 * pass, the same double distance to the winner. */
void kmq__f32_unit(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen, bool final,
                   kmq__assign_ws *ws, int slot, uint8_t *labels)
{
    const size_t k = ws->k;
    double *best = ws->buf + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->lab + (size_t)slot * KMQ_CHUNK;
    uint64_t *sums = ws->sums + (size_t)slot * ws->stride;
    /* Two float buffers of KMQ_CHUNK in the first third of `best`. */
    float *fbuf = (float *)best;
    const float *d1 = fbuf, *d2 = fbuf + KMQ_CHUNK;
    uint64_t evals =
        f32_scan_filtered(p, lo, m, cen, ws->cen_f32, k, fbuf, fbuf + KMQ_CHUNK, lab);
    const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
    if (!ws->counted || final) {
        for (size_t i = 0; i < m; i++) {
            if (!(d2[i] - d1[i] > KMQ__F32_MARGIN)) {
                lab[i] = kmq__nearest_exact(r[i], g[i], b[i], cen, k);
                evals += k;
            }
        }
        double *dist = NULL;
        if (final) {
            dist = best + 2 * KMQ_CHUNK;
            for (size_t i = 0; i < m; i++)
                dist[i] = kmq__dist2(r[i], g[i], b[i], cen + 3 * (size_t)lab[i]);
        }
        double inertia = kmq__assign_sums(p, lo, m, dist, lab, sums, ws, labels);
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
            if (!(d2[i] - d1[i] > KMQ__F32_MARGIN)) {
                a = kmq__nearest_exact(r[i], g[i], b[i], cen, k);
                evals += k;
            }
            if (a != prev[i]) {
                kmq__move_point(sums, prev[i], a, keys[i], w[i]);
                prev[i] = (uint8_t)a;
            }
        }
    }
    sums[4 * k] += evals;
}
