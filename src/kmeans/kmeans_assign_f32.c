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

/* close[i] = 1 where the float32 nearest of point i may not be the exact
 * one (d2 - d1 <= KMQ__F32_MARGIN), else 0. */
KMQ__VEC_CLONES static void mark_close(const float *restrict d1, const float *restrict d2, size_t m,
                                       uint8_t *restrict close)
{
    for (size_t i = 0; i < m; i++)
        close[i] = (uint8_t) !(d2[i] - d1[i] > KMQ__F32_MARGIN);
}

/* flag_todo and mark_close in one pass. */
KMQ__VEC_CLONES static void flag_todo_close(const float *restrict d1, const float *restrict d2,
                                            const uint32_t *restrict lab,
                                            const uint8_t *restrict prev, size_t m,
                                            uint8_t *restrict flag, uint8_t *restrict close)
{
    for (size_t i = 0; i < m; i++) {
        close[i] = (uint8_t) !(d2[i] - d1[i] > KMQ__F32_MARGIN);
        flag[i] = (uint8_t)(close[i] | (lab[i] != prev[i]));
    }
    for (size_t i = m; i % 8 != 0; i++)
        flag[i] = 0;
}

/* Whether every prev[i], i < m, is a. */
KMQ__VEC_CLONES static bool same_label(const uint8_t *restrict prev, size_t m, uint8_t a)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < m; i++)
        diff |= prev[i] ^ a;
    return diff == 0;
}

/* Lanes of the box test: one AVX2 register of floats. */
#define BOX_LANES 8
typedef float f32x8 __attribute__((vector_size(4 * BOX_LANES)));
typedef int32_t i32x8 __attribute__((vector_size(4 * BOX_LANES)));

/* Lanes of the larger (smaller) of a and b (macros: a function returning
 * a vector would warn about the AVX ABI). */
#define MAX_F32(a, b) ((f32x8)(((i32x8)(a) & ((a) > (b))) | ((i32x8)(b) & ~((a) > (b)))))
#define MIN_F32(a, b) ((f32x8)(((i32x8)(a) & ((a) < (b))) | ((i32x8)(b) & ~((a) < (b)))))

/* A list of centres in float, structure of arrays for the box test, with
 * their indices in the full table (ascending). Entries n up to the next
 * multiple of BOX_LANES are far outside the cube (FAR_AWAY), so whole
 * vectors can be tested and those lanes are never kept. */
typedef struct centre_list {
    size_t n;
    uint32_t idx[KMQ_MAX_K];
    float x[KMQ_MAX_K], y[KMQ_MAX_K], z[KMQ_MAX_K];
} centre_list;
_Static_assert(KMQ_MAX_K % BOX_LANES == 0, "centre lists pad to whole vectors");

#define FAR_AWAY 1.0e6f

static void pad_list(centre_list *l)
{
    for (size_t j = l->n; j % BOX_LANES != 0; j++)
        l->x[j] = l->y[j] = l->z[j] = FAR_AWAY;
}

/* Kernel: for the centres of l, the squared distance to the nearest
 * (near2) and to the farthest (far2) point of box (min r, g, b, max r, g,
 * b), a whole number of vectors; returns the smallest far2. Float: see
 * FILTER_MARGIN. */
KMQ__VEC_CLONES static float box_ranges(const float *restrict box, const centre_list *restrict l,
                                        float *restrict near2, float *restrict far2)
{
    const f32x8 zero = {0};
    f32x8 lo[3], hi[3], best;
    for (int d = 0; d < 3; d++)
        for (int q = 0; q < BOX_LANES; q++) {
            lo[d][q] = box[d];
            hi[d][q] = box[3 + d];
        }
    for (int q = 0; q < BOX_LANES; q++)
        best[q] = INFINITY;
    const float *coord[3] = {l->x, l->y, l->z};
    for (size_t j = 0; j < l->n; j += BOX_LANES) {
        f32x8 n2 = zero, f2 = zero;
        for (int d = 0; d < 3; d++) {
            f32x8 c;
            memcpy(&c, coord[d] + j, sizeof c);
            /* Only one of lo - c and c - hi can be positive. */
            f32x8 gap = MAX_F32(lo[d] - c, zero) + MAX_F32(c - hi[d], zero);
            f32x8 span = MAX_F32(c - lo[d], hi[d] - c);
            n2 += gap * gap;
            f2 += span * span;
        }
        memcpy(near2 + j, &n2, sizeof n2);
        memcpy(far2 + j, &f2, sizeof f2);
        best = MIN_F32(f2, best);
    }
    float m = best[0];
    for (int q = 1; q < BOX_LANES; q++)
        m = best[q] < m ? best[q] : m;
    return m;
}

/* Kernel: for the centres of l, how much farther (squared) the corner of
 * box that most favours each one is from it than from the centre
 * (zx, zy, zz): gap[j] = |v - c_j|^2 - |v - z|^2, v the corner farthest
 * along c_j - z. |x - c_j|^2 - |x - z|^2 is linear in x, so over the box
 * it is smallest at v: gap[j] >= 1 means every point of the box is at
 * least 1 farther from c_j than from z (the test of Kanungo et al. 2002).
 * Float: see FILTER_MARGIN. */
KMQ__VEC_CLONES static void box_dominance(const float *restrict box, const centre_list *restrict l,
                                          float zx, float zy, float zz, float *restrict gap)
{
    const float zc[3] = {zx, zy, zz};
    const float *coord[3] = {l->x, l->y, l->z};
    for (size_t j = 0; j < l->n; j += BOX_LANES) {
        f32x8 gc = {0}, gz = {0};
        for (int d = 0; d < 3; d++) {
            f32x8 c, lo, hi;
            memcpy(&c, coord[d] + j, sizeof c);
            for (int q = 0; q < BOX_LANES; q++) {
                lo[q] = box[d];
                hi[q] = box[3 + d];
            }
            const i32x8 up = c > zc[d];
            const f32x8 v = (f32x8)(((i32x8)hi & up) | ((i32x8)lo & ~up));
            const f32x8 dc = v - c, dz = v - zc[d];
            gc += dc * dc;
            gz += dz * dz;
        }
        const f32x8 g = gc - gz;
        memcpy(gap + j, &g, sizeof g);
    }
}

/* Kernel: the index in l of the centre nearest the middle of box (the
 * first of equals). */
KMQ__VEC_CLONES static size_t nearest_middle(const float *restrict box,
                                             const centre_list *restrict l)
{
    const float mid[3] = {0.5f * (box[0] + box[3]), 0.5f * (box[1] + box[4]),
                          0.5f * (box[2] + box[5])};
    const float *coord[3] = {l->x, l->y, l->z};
    float dist[KMQ_MAX_K];
    f32x8 best;
    for (int q = 0; q < BOX_LANES; q++)
        best[q] = INFINITY;
    for (size_t j = 0; j < l->n; j += BOX_LANES) {
        f32x8 d2 = {0};
        for (int d = 0; d < 3; d++) {
            f32x8 c;
            memcpy(&c, coord[d] + j, sizeof c);
            const f32x8 e = c - mid[d];
            d2 += e * e;
        }
        memcpy(dist + j, &d2, sizeof d2);
        best = MIN_F32(d2, best);
    }
    float m = best[0];
    for (int q = 1; q < BOX_LANES; q++)
        m = best[q] < m ? best[q] : m;
    size_t at = 0;
    while (dist[at] != m)
        at++;
    return at;
}

/* Margin (squared colour units) by which a centre must be farther from a
 * whole box than the box's best bound to be left out; see
 * f32_scan_filtered. The proof needs 1 in exact arithmetic; the float box
 * test errs by less than 0.1 on each side (coordinates <= 255, centres
 * rounded to float: < 2e-5 each; three squares summed below 2e5 with
 * relative error < 4 * 2^-24), so 2 leaves room to spare. */
#define FILTER_MARGIN 2.0f

/* Into `to`, the centres of `from` (in their order) that can be nearest
 * to some point of box: those that pass both tests, near2 < min far2 +
 * FILTER_MARGIN (against the centre nearest the box's farthest point) and
 * a dominance gap < FILTER_MARGIN against the centre nearest the box's
 * middle. Either test alone proves a centre it fails at least 1 farther
 * than another for every point of the box. */
static void filter_centres(const float *box, const centre_list *from, centre_list *to)
{
    float near2[KMQ_MAX_K], far2[KMQ_MAX_K], gap[KMQ_MAX_K];
    const float bound = box_ranges(box, from, near2, far2) + FILTER_MARGIN;
    const size_t zi = nearest_middle(box, from);
    box_dominance(box, from, from->x[zi], from->y[zi], from->z[zi], gap);
    size_t n = 0;
    for (size_t j = 0; j < from->n; j++) {
        /* Branch-free: always write, advance where kept. */
        to->idx[n] = from->idx[j];
        to->x[n] = from->x[j];
        to->y[n] = from->y[j];
        to->z[n] = from->z[j];
        n += (near2[j] < bound) & (gap[j] < FILTER_MARGIN);
    }
    to->n = n;
    pad_list(to);
}

/* The chunk's list: the centres that can be nearest to some point of the
 * chunk's box (the union of its blocks'). */
static void chunk_list(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen,
                       size_t k, centre_list *chunk)
{
    centre_list all;
    all.n = k;
    for (size_t j = 0; j < k; j++) {
        all.idx[j] = (uint32_t)j;
        all.x[j] = (float)cen[3 * j];
        all.y[j] = (float)cen[3 * j + 1];
        all.z[j] = (float)cen[3 * j + 2];
    }
    pad_list(&all);
    const size_t b0 = lo / KMQ__BLOCK, b1 = (lo + m + KMQ__BLOCK - 1) / KMQ__BLOCK;
    float cbox[6];
    memcpy(cbox, p->box + 6 * b0, sizeof cbox);
    for (size_t blk = b0 + 1; blk < b1; blk++) {
        const float *bx = p->box + 6 * blk;
        for (int d = 0; d < 3; d++) {
            cbox[d] = bx[d] < cbox[d] ? bx[d] : cbox[d];
            cbox[3 + d] = bx[3 + d] > cbox[3 + d] ? bx[3 + d] : cbox[3 + d];
        }
    }
    filter_centres(cbox, &all, chunk);
}

/* Points [s, s + bm) of p (one block) against the centres of `block`
 * (nk >= 2; cf: the full table): the kernel over their rows, then the close
 * calls in double over the same list. The exact nearest is kept
 * (f32_scan_filtered), and so is every centre tied with it, so the lowest
 * index of the list is the full scan's. Close calls are then marked sure
 * (d2 = inf). Given flag, the flags of flag_todo, made in the same pass as
 * the close calls' marks (a close call is flagged whatever its label turns
 * out to be). Returns the evaluations. */
static uint64_t scan_block(const kmq_kmeans_prepared *p, size_t s, size_t bm, const double *cen,
                           const float *cf, const centre_list *block, float *d1, float *d2,
                           uint32_t *lab, const uint8_t *prev, uint8_t *flag)
{
    const size_t nk = block->n;
    float sub[KMQ__F32_STRIDE * KMQ_MAX_K];
    for (size_t q = 0; q < nk; q++)
        memcpy(sub + KMQ__F32_STRIDE * q, cf + KMQ__F32_STRIDE * block->idx[q],
               KMQ__F32_STRIDE * sizeof *sub);
    kmq__f32_scan(p->r + s, p->g + s, p->b + s, bm, sub, nk, block->idx, d1, d2, lab);
    uint64_t evals = (uint64_t)bm * nk;
    uint8_t close[KMQ__BLOCK];
    if (flag)
        flag_todo_close(d1, d2, lab, prev, bm, flag, close);
    else
        mark_close(d1, d2, bm, close);
    for (size_t i = 0; i < bm; i++) {
        if (i % 8 == 0 && i + 8 <= bm) {
            uint64_t word;
            memcpy(&word, close + i, sizeof word);
            if (!word) {
                i += 7;
                continue;
            }
        }
        if (!close[i])
            continue;
        double bd = INFINITY;
        for (size_t q = 0; q < nk; q++) {
            double d = kmq__dist2(p->r[s + i], p->g[s + i], p->b[s + i], cen + 3 * block->idx[q]);
            if (d < bd) {
                bd = d;
                lab[i] = block->idx[q];
            }
        }
        d1[i] = 0.0f;
        d2[i] = INFINITY;
        evals += nk;
    }
    return evals;
}

/* kmq__f32_scan over points [lo, lo + m) of p (a unit of whole blocks),
 * block by block (the prepared blocks: KMQ__BLOCK points in Morton order,
 * a small box of colour space), each against only the centres that can be
 * nearest to some point of its box; returns the point-centre distances
 * evaluated. Given flag (a Lloyd iteration), also the flags of flag_todo.
 *
 * Filtering (the box tests of Kanungo et al. 2002). Let U be the smallest,
 * over the centres, squared distance from a centre to the farthest corner
 * of the box: every point has a centre within U. A centre whose squared
 * distance to the box is >= U + 1 is, for every point, at least 1 farther
 * (squared, exactly) than the point's nearest centre, which is therefore
 * kept; so is a centre that box_dominance finds at least 1 farther than
 * the centre nearest the box's middle at every point. A centre left out
 * has a float32 distance > the nearest's plus 1 - 2 * 0.0625
 * (kmeans_f32.c's error bound): it is never the float nearest, and where
 * it would have been the float second, the gap to the nearest exceeds
 * KMQ__F32_MARGIN both with it and without it. The kept centres' table
 * rows are those of the full table, in ascending index order (ties keep
 * the lowest index). So lab and d1 are the full scan's, and the test
 * d2 - d1 > KMQ__F32_MARGIN decides the same way: the caller's labels are
 * the same bits.
 *
 * Two levels: the unit's box (the union of its blocks') filters all k
 * centres, and each block's box filters what the unit kept. A centre the
 * unit leaves out is >= U + 1 from every point of the unit, so also from
 * those of the block, and the block's U over the unit's list is its U
 * over all centres (a centre left out is farther than the unit's U >= the
 * block's): the block keeps the centres it would keep alone.
 *
 * Measured and dropped, on the 12.5 MP photo at k = 64: skipping whole
 * blocks by Hamerly's bounds (a block's smallest gap between nearest and
 * second against twice the largest centre move) skipped 2-5% of the blocks,
 * since nearly every block holds a point near a boundary; per-point
 * Hamerly bounds on top of the filter still rescanned 45% of the points
 * (a centre left out of a block's list is bounded only by its distance to
 * the box) and made an iteration 1.5-1.8x slower; a third level of 32
 * points per list cost more than it saved (1.2-1.3x slower). */
static uint64_t f32_scan_filtered(const kmq_kmeans_prepared *p, size_t lo, size_t m,
                                  const double *cen, const float *cf, size_t k, float *d1,
                                  float *d2, uint32_t *lab, const uint8_t *prev, uint8_t *flag)
{
    if (lo % KMQ__BLOCK != 0 || k < 4) {
        kmq__f32_scan(p->r + lo, p->g + lo, p->b + lo, m, cf, k, NULL, d1, d2, lab);
        if (flag)
            flag_todo(d1, d2, lab, prev, m, flag);
        return (uint64_t)m * k;
    }
    centre_list chunk, block;
    chunk_list(p, lo, m, cen, k, &chunk);
    uint64_t evals = 0;
    for (size_t off = 0; off < m; off += KMQ__BLOCK) {
        const size_t bm = m - off < KMQ__BLOCK ? m - off : KMQ__BLOCK;
        const size_t s = lo + off;
        filter_centres(p->box + 6 * (s / KMQ__BLOCK), &chunk, &block);
        if (block.n == 1 && flag && same_label(prev + off, bm, (uint8_t)block.idx[0])) {
            /* One centre can be nearest, and every point has it already:
             * nothing to flag, and unflagged points' results go unread. */
            memset(flag + off, 0, (bm + 7) / 8 * 8);
            continue;
        }
        if (block.n == 1) {
            /* One centre can be nearest: it is, surely (no second). */
            for (size_t i = off; i < off + bm; i++) {
                lab[i] = block.idx[0];
                d1[i] = 0.0f;
                d2[i] = INFINITY;
            }
            /* While the block's results are in L1. */
            if (flag)
                flag_todo(d1 + off, d2 + off, lab + off, prev + off, bm, flag + off);
        } else {
            evals += scan_block(p, s, bm, cen, cf, &block, d1 + off, d2 + off, lab + off,
                                flag ? prev + off : NULL, flag ? flag + off : NULL);
        }
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
    /* In a Lloyd iteration, flag the points that are close calls or changed
     * cluster: only they need more work, and they are few. */
    const bool lloyd = ws->counted && !final;
    uint8_t *prev = ws->acc_lab + lo;
    uint8_t *flag = (uint8_t *)(best + KMQ_CHUNK);
    uint64_t evals = f32_scan_filtered(p, lo, m, cen, ws->cen_f32, k, fbuf, fbuf + KMQ_CHUNK, lab,
                                       lloyd ? prev : NULL, lloyd ? flag : NULL);
    const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
    if (!lloyd) {
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
