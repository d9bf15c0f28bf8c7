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

/* The helpers of f32_scan_filtered, compiled into each of its clones (one
 * dispatch per unit, not per box test). */
#if defined(__GNUC__)
#define INLINE_KERNEL static inline __attribute__((always_inline))
#else
#define INLINE_KERNEL static inline
#endif

/* close[i] = 1 where the float32 nearest of point i may not be the exact
 * one (d2 - d1 <= KMQ__F32_MARGIN), else 0. */
INLINE_KERNEL void mark_close(const float *restrict d1, const float *restrict d2, size_t m,
                              uint8_t *restrict close)
{
    for (size_t i = 0; i < m; i++)
        close[i] = (uint8_t) !(d2[i] - d1[i] > KMQ__F32_MARGIN);
}

/* Where a Lloyd iteration moves the points that change cluster: the
 * unit's labels as counted (ws->acc_lab + lo) and the thread's sums. */
typedef struct lloyd_moves {
    uint8_t *prev;
    uint64_t *sums;
} lloyd_moves;

/* Points [s, s + m) of p, labelled lab[0..m): each whose label differs
 * from mv's (counted under the range's prev, from mv->prev + off) moves
 * to its new cluster, while the range's results are in L1. */
INLINE_KERNEL void move_changed(const kmq_kmeans_prepared *p, size_t s, size_t m,
                                const uint32_t *restrict lab, uint8_t *restrict prev,
                                uint64_t *sums)
{
    uint8_t changed[KMQ_CHUNK];
    for (size_t i = 0; i < m; i++)
        changed[i] = (uint8_t)(lab[i] != prev[i]);
    for (size_t i0 = 0; i0 < m; i0 += 8) {
        if (i0 + 8 <= m) {
            uint64_t word;
            memcpy(&word, changed + i0, sizeof word);
            if (!word)
                continue;
        }
        for (size_t i = i0; i < i0 + 8 && i < m; i++) {
            if (!changed[i])
                continue;
            kmq__move_point(sums, prev[i], lab[i], p->keys[s + i], p->w[s + i]);
            prev[i] = (uint8_t)lab[i];
        }
    }
}

/* Whether every prev[i], i < m, is a. */
INLINE_KERNEL bool same_label(const uint8_t *restrict prev, size_t m, uint8_t a)
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

_Static_assert(KMQ_MAX_K % BOX_LANES == 0, "centre lists pad to whole vectors");

#define FAR_AWAY 1.0e6f

static void pad_list(kmq__centre_list *l)
{
    for (size_t j = l->n; j % BOX_LANES != 0; j++)
        l->x[j] = l->y[j] = l->z[j] = FAR_AWAY;
}

/* Margin (squared colour units) by which a centre must be farther from a
 * whole box than the box's best bound to be left out; see
 * f32_scan_filtered. The proof needs 1 in exact arithmetic; the float box
 * test errs by less than 0.1 on each side (coordinates <= 255, centres
 * rounded to float: < 2e-5 each; three squares summed below 2e5 with
 * relative error < 4 * 2^-24), so 2 leaves room to spare. */
#define FILTER_MARGIN 2.0f

/* Into `to`, the centres of `from` (in their order) that can be nearest
 * to some point of box (min r, g, b, max r, g, b), by two tests, each of
 * which proves a centre it fails at least 1 farther than another for
 * every point of the box:
 *
 *   - range: its squared distance to the box is >= U + FILTER_MARGIN, U
 *     the smallest over the centres of the squared distance to the box's
 *     farthest corner;
 *   - dominance (Kanungo et al. 2002): against z, the centre nearest the
 *     box's middle, gap = |v - c|^2 - |v - z|^2 >= FILTER_MARGIN, v the
 *     box corner farthest along c - z. |x - c|^2 - |x - z|^2 is linear in
 *     x, so over the box it is smallest at v.
 *
 * Two passes over whole vectors: the first finds U and z (and keeps each
 * centre's distance to the box), the second tests and compacts. Float:
 * see FILTER_MARGIN. */
INLINE_KERNEL void filter_centres(const float *box, const kmq__centre_list *restrict from,
                                  kmq__centre_list *restrict to)
{
    const f32x8 zero = {0};
    f32x8 lo[3], hi[3], mid[3];
    for (int d = 0; d < 3; d++) {
        lo[d] = zero + box[d];
        hi[d] = zero + box[3 + d];
        mid[d] = 0.5f * (lo[d] + hi[d]);
    }
    const float *coord[3] = {from->x, from->y, from->z};
    float near2[KMQ_MAX_K];
    f32x8 far_min = zero + INFINITY, mid_min = far_min;
    i32x8 mid_at = {0}, lane;
    for (int q = 0; q < BOX_LANES; q++)
        lane[q] = q;
    const size_t n = from->n;
    for (size_t j = 0; j < n; j += BOX_LANES) {
        f32x8 n2 = zero, f2 = zero, m2 = zero;
        for (int d = 0; d < 3; d++) {
            f32x8 c;
            memcpy(&c, coord[d] + j, sizeof c);
            /* Only one of lo - c and c - hi can be positive. */
            const f32x8 gap = MAX_F32(lo[d] - c, zero) + MAX_F32(c - hi[d], zero);
            const f32x8 span = MAX_F32(c - lo[d], hi[d] - c);
            const f32x8 e = c - mid[d];
            n2 += gap * gap;
            f2 += span * span;
            m2 += e * e;
        }
        memcpy(near2 + j, &n2, sizeof n2);
        far_min = MIN_F32(f2, far_min);
        /* Strict <: each lane keeps its first nearest. */
        const i32x8 closer = m2 < mid_min;
        mid_at = (closer & (lane + (int32_t)j)) | (~closer & mid_at);
        mid_min = MIN_F32(m2, mid_min);
    }
    float u = far_min[0];
    int zq = 0;
    for (int q = 1; q < BOX_LANES; q++) {
        u = far_min[q] < u ? far_min[q] : u;
        if (mid_min[q] < mid_min[zq] || (mid_min[q] == mid_min[zq] && mid_at[q] < mid_at[zq]))
            zq = q;
    }
    const f32x8 bound = zero + (u + FILTER_MARGIN);
    const size_t zi = (size_t)mid_at[zq];
    const float zc[3] = {from->x[zi], from->y[zi], from->z[zi]};
    /* The positions kept (one store each, branch-free), then their
     * entries: most are left out. */
    uint16_t pos[KMQ_MAX_K];
    size_t kept = 0;
    for (size_t j = 0; j < n; j += BOX_LANES) {
        f32x8 gc = zero, gz = zero, n2;
        for (int d = 0; d < 3; d++) {
            f32x8 c;
            memcpy(&c, coord[d] + j, sizeof c);
            const i32x8 up = c > zc[d];
            const f32x8 v = (f32x8)(((i32x8)hi[d] & up) | ((i32x8)lo[d] & ~up));
            const f32x8 dc = v - c, dz = v - zc[d];
            gc += dc * dc;
            gz += dz * dz;
        }
        memcpy(&n2, near2 + j, sizeof n2);
        const i32x8 keep = (n2 < bound) & (gc - gz < FILTER_MARGIN);
        const size_t lanes = n - j < BOX_LANES ? n - j : BOX_LANES;
        for (size_t q = 0; q < lanes; q++) {
            pos[kept] = (uint16_t)(j + q);
            kept += (size_t)(keep[q] & 1);
        }
    }
    for (size_t q = 0; q < kept; q++) {
        to->idx[q] = from->idx[pos[q]];
        to->x[q] = from->x[pos[q]];
        to->y[q] = from->y[pos[q]];
        to->z[q] = from->z[pos[q]];
    }
    to->n = kept;
    pad_list(to);
}

void kmq__f32_list(const double *cen, size_t k, kmq__centre_list *all)
{
    all->n = k;
    for (size_t j = 0; j < k; j++) {
        all->idx[j] = (uint32_t)j;
        all->x[j] = (float)cen[3 * j];
        all->y[j] = (float)cen[3 * j + 1];
        all->z[j] = (float)cen[3 * j + 2];
    }
    pad_list(all);
}

/* Into `to`, the centres of `from` that can be nearest to some point of
 * blocks [b0, b1) (the union of their boxes). */
INLINE_KERNEL void range_list(const kmq_kmeans_prepared *p, size_t b0, size_t b1,
                              const kmq__centre_list *from, kmq__centre_list *to)
{
    float box[6];
    memcpy(box, p->box + 6 * b0, sizeof box);
    for (size_t blk = b0 + 1; blk < b1; blk++) {
        const float *bx = p->box + 6 * blk;
        for (int d = 0; d < 3; d++) {
            box[d] = bx[d] < box[d] ? bx[d] : box[d];
            box[3 + d] = bx[3 + d] > box[3 + d] ? bx[3 + d] : box[3 + d];
        }
    }
    filter_centres(box, from, to);
}

/* Points [s, s + bm) of p (one block) against the centres of `block`
 * (nk >= 2; cf: the full table): the kernel over their rows, then the close
 * calls in double over the same list. The exact nearest is kept
 * (f32_scan_filtered), and so is every centre tied with it, so the lowest
 * index of the list is the full scan's. Close calls are then marked sure
 * (d2 = inf). Returns the evaluations. */
INLINE_KERNEL uint64_t scan_block(const kmq_kmeans_prepared *p, size_t s, size_t bm,
                                  const double *cen, const float *cf, const kmq__centre_list *block,
                                  float *d1, float *d2, uint32_t *lab)
{
    const size_t nk = block->n;
    float sub[KMQ__F32_STRIDE * KMQ_MAX_K];
    for (size_t q = 0; q < nk; q++)
        memcpy(sub + KMQ__F32_STRIDE * q, cf + KMQ__F32_STRIDE * block->idx[q],
               KMQ__F32_STRIDE * sizeof *sub);
    kmq__f32_scan(p->r + s, p->g + s, p->b + s, bm, sub, nk, block->idx, d1, d2, lab);
    uint64_t evals = (uint64_t)bm * nk;
    uint8_t close[KMQ__BLOCK];
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

/* Points [s, s + m) of p (a block; results at the given pointers)
 * against the centres of l, which hold the nearest of every point and all
 * tied with it (f32_scan_filtered); given mv (a Lloyd iteration; its
 * labels at prev), the points that change cluster move. Returns the
 * evaluations. */
INLINE_KERNEL uint64_t scan_range(const kmq_kmeans_prepared *p, size_t s, size_t m,
                                  const double *cen, const float *cf, const kmq__centre_list *l,
                                  float *d1, float *d2, uint32_t *lab, const lloyd_moves *mv,
                                  uint8_t *prev)
{
    uint64_t evals = 0;
    if (l->n >= 2) {
        evals = scan_block(p, s, m, cen, cf, l, d1, d2, lab);
    } else {
        /* One centre can be nearest, and every point has it already:
         * nothing moves, and a Lloyd iteration reads no other result. */
        if (mv && same_label(prev, m, (uint8_t)l->idx[0]))
            return 0;
        /* One centre can be nearest: it is, surely (no second). */
        for (size_t i = 0; i < m; i++) {
            lab[i] = l->idx[0];
            d1[i] = 0.0f;
            d2[i] = INFINITY;
        }
    }
    if (mv)
        move_changed(p, s, m, lab, prev, mv->sums);
    return evals;
}

/* kmq__f32_scan over points [lo, lo + m) of p (a unit of whole blocks),
 * block by block (the prepared blocks: KMQ__BLOCK points, a small box of
 * colour space: a subtree of the Lloyd order's k-d tree, or a run of the
 * Morton order), each against only the centres that can be nearest to
 * some point of its box; close calls are decided in double; returns the
 * point-centre distances evaluated. Given mv (a Lloyd iteration), the
 * points that change cluster move, block by block.
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
 * Levels: the unit's box (the union of its blocks') filters all k
 * centres, and each block's box filters what the unit kept; given chunk,
 * the unit's chunk's box filters all k first (into chunk, where
 * chunk_stale, else chunk holds it already from an earlier unit of the
 * same pass) and the unit filters that. A centre an outer box leaves out
 * is >= U + 1 from every point of it, so also from those of an inner box,
 * and the inner box's U over the outer list is its U over all centres (a
 * centre left out is farther than the outer U >= the inner's): each box
 * keeps the centres it would keep alone.
 *
 * Measured and dropped, on the 12.5 MP photo at k = 64: skipping whole
 * blocks by Hamerly's bounds (a block's smallest gap between nearest and
 * second against twice the largest centre move) skipped 2-5% of the blocks,
 * since nearly every block holds a point near a boundary; per-point
 * Hamerly bounds on top of the filter still rescanned 45% of the points
 * (a centre left out of a block's list is bounded only by its distance to
 * the box) and made an iteration 1.5-1.8x slower. On china.jpg at k =
 * 256 (Lloyd order), a third level filtering each sub-block of 32 points
 * against its block's list, for blocks that keep 8 (12) or more centres,
 * cut the distances to 30% (46%) and made an iteration 1.14x (1.08x)
 * slower: the tests and the per-range set-up cost more than the kernel
 * saved (and on the 12.5 MP photo the lists are ~2 centres already). */
KMQ__VEC_CLONES static uint64_t
f32_scan_filtered(const kmq_kmeans_prepared *p, size_t lo, size_t m, const double *cen,
                  const float *cf, const kmq__centre_list *all, kmq__centre_list *chunk,
                  bool chunk_stale, float *d1, float *d2, uint32_t *lab, const lloyd_moves *mv)
{
    const size_t k = all->n;
    if (lo % KMQ__BLOCK != 0 || k < 4) {
        kmq__f32_scan(p->r + lo, p->g + lo, p->b + lo, m, cf, k, NULL, d1, d2, lab);
        uint64_t evals = (uint64_t)m * k;
        for (size_t i = 0; i < m; i++) {
            if (!(d2[i] - d1[i] > KMQ__F32_MARGIN)) {
                lab[i] = kmq__nearest_exact(p->r[lo + i], p->g[lo + i], p->b[lo + i], cen, k);
                d1[i] = 0.0f;
                d2[i] = INFINITY;
                evals += k;
            }
        }
        if (mv)
            move_changed(p, lo, m, lab, mv->prev, mv->sums);
        return evals;
    }
    kmq__centre_list unit, block;
    const size_t b0 = lo / KMQ__BLOCK, b1 = (lo + m + KMQ__BLOCK - 1) / KMQ__BLOCK;
    if (chunk) {
        const size_t c0 = lo / KMQ_CHUNK * KMQ__BLOCKS_PER_CHUNK;
        const size_t c1 =
            c0 + KMQ__BLOCKS_PER_CHUNK < p->blocks ? c0 + KMQ__BLOCKS_PER_CHUNK : p->blocks;
        if (chunk_stale)
            range_list(p, c0, c1, all, chunk);
        range_list(p, b0, b1, chunk, &unit);
    } else {
        range_list(p, b0, b1, all, &unit);
    }
    uint64_t evals = 0;
    for (size_t off = 0; off < m; off += KMQ__BLOCK) {
        const size_t bm = m - off < KMQ__BLOCK ? m - off : KMQ__BLOCK;
        const size_t blk = (lo + off) / KMQ__BLOCK;
        filter_centres(p->box + 6 * blk, &unit, &block);
        evals += scan_range(p, lo + off, bm, cen, cf, &block, d1 + off, d2 + off, lab + off, mv,
                            mv ? mv->prev + off : NULL);
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
    /* In a Lloyd iteration the points that change cluster move as each
     * block is scanned: they are few. */
    /* A unit smaller than a chunk filters its chunk's list, which the
     * thread keeps for the pass's next unit of that chunk (the tag sits in
     * the thread's sums slot, which every pass clears: no other thread
     * writes that line). */
    kmq__centre_list *chunk = NULL;
    bool stale = false;
    if (m < KMQ_CHUNK && lo % KMQ__BLOCK == 0) {
        uint64_t *tag = sums + 4 * k + 1;
        const uint64_t id = lo / KMQ_CHUNK + 1;
        chunk = ws->chunk_list + slot;
        stale = *tag != id;
        *tag = id;
    }
    if (ws->counted && !final) {
        const lloyd_moves mv = {ws->acc_lab + lo, sums};
        sums[4 * k] += f32_scan_filtered(p, lo, m, cen, ws->cen_f32, ws->all, chunk, stale, fbuf,
                                         fbuf + KMQ_CHUNK, lab, &mv);
        return;
    }
    uint64_t evals = f32_scan_filtered(p, lo, m, cen, ws->cen_f32, ws->all, chunk, stale, fbuf,
                                       fbuf + KMQ_CHUNK, lab, NULL);
    double *dist = NULL;
    if (final) {
        const float *r = p->r + lo, *g = p->g + lo, *b = p->b + lo;
        dist = best + 2 * KMQ_CHUNK;
        for (size_t i = 0; i < m; i++)
            dist[i] = kmq__dist2(r[i], g[i], b[i], cen + 3 * (size_t)lab[i]);
    }
    double inertia = kmq__assign_sums(p, lo, m, dist, lab, sums, ws, labels);
    if (final)
        ws->chunk_inertia[lo / KMQ_CHUNK] = inertia;
    sums[4 * k] += evals;
}
