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
    kmq__f32_scan(p->r + lo, p->g + lo, p->b + lo, m, ws->cen_f32, k, fbuf, fbuf + KMQ_CHUNK, lab);
    const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
    uint64_t evals = (uint64_t)m * k;
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
