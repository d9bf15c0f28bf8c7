/* kmeans_points.c — prepared points for k-means: checked once, laid out
 * for the kernels, reused by every fit (layer L1).
 *
 * Includes kmeans.h, its private kmeans_points.h and L0 (internal, par); no
 * I/O. Calls nothing else of src/kmeans: every other kmeans_*.c file reads
 * what this one builds.
 *
 * kmq_kmeans_prepared_new checks the points (keys within 24 bits and
 * distinct, weights >= 1, total weight small enough for exact uint64
 * moments), converts the keys into three float coordinate arrays, and
 * computes what every fit over the points needs: each chunk's total weight
 * (weighted draws), the weights as double (k-means++'s exact sums), each
 * block's and sub-block's bounding box (the pruning of Lloyd and
 * k-means++), the total weight and the mean per-channel variance (the
 * scale of `tol`), and, from one block to KMQ__TREE_MAX colours, the
 * Lloyd order (kmeans_tree.c):
 * the same points as a k-d tree's leaves, which Lloyd's iterations scan.
 * The
 * moments are integers (channels 0..255, weights are pixel counts) summed
 * in uint64, so they are exact; the total weight is bounded by UINT64_MAX /
 * 255^2 so that sum w x^2 cannot overflow either.
 *
 * Threading: serial, O(n) plus a 2 MiB bitmap of the 2^24 colours. The
 * result is read-only, so any number of threads and fits share one.
 */
#include "kmq/kmeans.h"

#include "kmeans_points.h"

#include <inttypes.h>
#include <string.h>

#define KEY_MASK ((uint32_t)0xffffff)

void kmq_kmeans_prepared_free(kmq_kmeans_prepared *p)
{
    if (!p)
        return;
    kmq__free(p->r);
    kmq__free(p->g);
    kmq__free(p->b);
    kmq__free(p->chunk_w);
    kmq__free(p->box);
    kmq__free(p->wd);
    kmq__free(p->sub_box);
    kmq__free(p->own_keys);
    kmq__free(p->own_w);
    kmq__free(p->tree_from);
    kmq__free(p->tree_at);
    kmq_kmeans_prepared_free(p->tree);
    kmq__free(p);
}

/* Checks the points and fills the coordinates, chunk weights and moments. */
static kmq_status fill_points(const kmq_points *pts, kmq_kmeans_prepared *out, uint64_t *seen,
                              kmq_err *err)
{
    const size_t n = pts->n;
    /* Bound on the total weight that keeps sum w x^2 <= W * 255^2 exact. */
    const uint64_t w_limit = UINT64_MAX / (255u * 255u);
    uint64_t total = 0;
    uint64_t s1[3] = {0, 0, 0}, s2[3] = {0, 0, 0};
    for (size_t ch = 0; ch < out->chunks; ch++) {
        size_t hi = (ch + 1) * KMQ_CHUNK < n ? (ch + 1) * KMQ_CHUNK : n;
        uint64_t cw = 0;
        for (size_t i = ch * KMQ_CHUNK; i < hi; i++) {
            uint32_t key = pts->keys[i];
            uint64_t w = pts->weights[i];
            if (key > KEY_MASK)
                return kmq_err_set(err, KMQ_E_ARG, "colour %zu: key 0x%" PRIx32 " exceeds 24 bits",
                                   i, key);
            if (seen[key / 64] >> (key % 64) & 1)
                return kmq_err_set(err, KMQ_E_ARG, "colour %zu: key 0x%06" PRIx32 " appears twice",
                                   i, key);
            seen[key / 64] |= (uint64_t)1 << (key % 64);
            if (w == 0 || w > w_limit - total)
                return kmq_err_set(err, KMQ_E_ARG,
                                   "colour %zu: weight %" PRIu64
                                   " is 0 or brings the total above %" PRIu64 " pixels",
                                   i, w, w_limit);
            total += w;
            cw += w;
            uint64_t c[3] = {key >> 16, (key >> 8) & 0xff, key & 0xff};
            out->wd[i] = (double)w;
            out->r[i] = (float)c[0];
            out->g[i] = (float)c[1];
            out->b[i] = (float)c[2];
            for (int d = 0; d < 3; d++) {
                s1[d] += w * c[d];
                s2[d] += w * c[d] * c[d];
            }
        }
        out->chunk_w[ch] = cw;
    }
    out->total_w = total;
    double var_sum = 0.0;
    for (int d = 0; d < 3; d++) {
        double mean = (double)s1[d] / (double)total;
        double var = (double)s2[d] / (double)total - mean * mean;
        var_sum += var > 0.0 ? var : 0.0;
    }
    out->mean_var = var_sum / 3.0;
    return KMQ_OK;
}

/* See kmeans_points.h. One pass; the sub-blocks' boxes laid out per block
 * for 8-lane tests (one past n: far outside the cube, so no test reaches
 * it). */
void kmq__fill_boxes(kmq_kmeans_prepared *out)
{
    for (size_t blk = 0; blk < out->blocks; blk++) {
        float *box = out->box + 6 * blk;
        float *sb = out->sub_box ? out->sub_box + 6 * KMQ__SUBS * blk : NULL;
        for (int d = 0; d < 3; d++) {
            box[d] = 255.0f;
            box[3 + d] = 0.0f;
        }
        for (size_t s = 0; s < KMQ__SUBS; s++) {
            const size_t lo = blk * KMQ__BLOCK + s * KMQ__SUB;
            const size_t hi = lo + KMQ__SUB < out->n ? lo + KMQ__SUB : out->n;
            float sub[6];
            for (int d = 0; d < 3; d++) {
                sub[d] = lo < hi ? 255.0f : 1.0e6f;
                sub[3 + d] = lo < hi ? 0.0f : 1.0e6f;
            }
            for (size_t i = lo; i < hi; i++) {
                const float c[3] = {out->r[i], out->g[i], out->b[i]};
                for (int d = 0; d < 3; d++) {
                    sub[d] = c[d] < sub[d] ? c[d] : sub[d];
                    sub[3 + d] = c[d] > sub[3 + d] ? c[d] : sub[3 + d];
                }
            }
            if (sb)
                for (int d = 0; d < 6; d++)
                    sb[(size_t)d * KMQ__SUBS + s] = sub[d];
            if (lo >= hi)
                continue;
            for (int d = 0; d < 3; d++) {
                box[d] = sub[d] < box[d] ? sub[d] : box[d];
                box[3 + d] = sub[3 + d] > box[3 + d] ? sub[3 + d] : box[3 + d];
            }
        }
    }
}

kmq_status kmq__prepared_new(const kmq_points *pts, const kmq_par *par, bool lloyd_order,
                             kmq_kmeans_prepared **out, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_kmeans_prepared *p = NULL;
    uint64_t *seen = NULL;
    if (!out)
        return kmq_err_set(err, KMQ_E_ARG, "k-means points need a result");
    if (!pts || pts->n == 0 || !pts->keys || !pts->weights)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs at least one colour");
    const size_t n = pts->n;
    p = kmq__calloc(1, sizeof *p);
    if (!p) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu colours", n);
        goto done;
    }
    p->n = n;
    p->chunks = kmq_par_chunks(n);
    p->w = pts->weights;
    p->keys = pts->keys;
    p->r = kmq__alloc_array(n, sizeof *p->r);
    p->g = kmq__alloc_array(n, sizeof *p->g);
    p->b = kmq__alloc_array(n, sizeof *p->b);
    p->chunk_w = kmq__alloc_array(p->chunks, sizeof *p->chunk_w);
    p->blocks = (n + KMQ__BLOCK - 1) / KMQ__BLOCK;
    p->box = kmq__alloc_array(p->blocks, 6 * sizeof *p->box);
    p->wd = kmq__alloc_array(n, sizeof *p->wd);
    p->sub_box = kmq__alloc_array(p->blocks, 6 * KMQ__SUBS * sizeof *p->sub_box);
    /* Each colour once: k-means++ draws by D^2 mass and cannot draw more
     * centres than there are distinct colours (a bitmap of the 2^24). */
    if (p->r && p->g && p->b && p->chunk_w && p->box && p->wd && p->sub_box)
        seen = kmq__calloc(((size_t)KEY_MASK + 1) / 64, sizeof *seen);
    if (!seen) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu colours", n);
        goto done;
    }
    st = fill_points(pts, p, seen, err);
    if (st != KMQ_OK)
        goto done;
    kmq__fill_boxes(p);
    if (lloyd_order && n > KMQ__BLOCK && n <= KMQ__TREE_MAX) {
        st = kmq__tree_view_new(p, par, err);
        if (st != KMQ_OK)
            goto done;
    }
    *out = p;
    p = NULL;
done:
    kmq__free(seen);
    kmq_kmeans_prepared_free(p);
    return st;
}

kmq_status kmq_kmeans_prepared_new(const kmq_points *pts, const kmq_par *par,
                                   kmq_kmeans_prepared **out, kmq_err *err)
{
    return kmq__prepared_new(pts, par, true, out, err);
}
