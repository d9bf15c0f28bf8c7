/* kmeans_tree.c — the Lloyd order: the prepared points laid out again in
 * the leaf order of a k-d tree over colour space (layer L1).
 *
 * Includes its private kmeans_points.h and L0 (internal); no I/O. Calls
 * nothing else of src/kmeans: kmeans_points.c builds the view when it
 * prepares the points, and Lloyd's iterations (kmeans_lloyd.c) run over it.
 *
 * Why. Lloyd's filter (kmeans_assign_f32.c) tests each block of
 * KMQ__BLOCK consecutive points against the centres by the block's
 * bounding box, and computes distances only to the centres the box leaves
 * in: the smaller the boxes, the fewer. In Morton order a block of 256
 * colours often straddles the boundary of a large octree cell, and its box
 * spans both sides. The leaves of a k-d tree split at the median of the
 * widest side are about half as wide: on china.jpg at k = 256 the centres
 * left per colour drop from 28 to 14, on a 12.5 MP photo from 7.2 to 3.6
 * (the final centres of a fit, same tests, same block size).
 *
 * Why only Lloyd's iterations. Their results are integer sums, the same in
 * any order. k-means++ draws a colour by walking the potentials in Morton
 * order, and the final pass sums the inertia in doubles chunk by chunk in
 * Morton order: both keep the Morton layout, so every result keeps its
 * bits.
 *
 * The tree. A node of s > KMQ__BLOCK points is split across its widest
 * channel (the first of equals) at the point of rank h, h the multiple of
 * g nearest s / 2 (g = KMQ_CHUNK above a chunk, a pass unit of
 * KMQ_CHUNK / 4 above that, else KMQ__BLOCK), so that every chunk, pass
 * unit and block of the view is one subtree, and only the last block is
 * short. Ranks are by channel value, ties by the current order (a stable
 * partition), so the order is a fixed function of the points.
 *
 * Cost: O(n log(n / KMQ__BLOCK)) in sequential passes over 8-byte
 * records, once per set of prepared points (shared by every k, restart
 * and thread); 32 bytes a colour (coordinates, weights, keys, both
 * permutations).
 */
#include "kmeans_points.h"

#include <string.h>

/* A point as the build moves it: its colour key and Morton index. */
typedef struct tree_rec {
    uint32_t key;
    uint32_t at;
} tree_rec;

static unsigned channel(uint32_t key, int d)
{
    return (key >> (16 - 8 * d)) & 0xffu;
}

/* Splits rec[0..s) (box lo..hi per channel) recursively; tmp has room for
 * s records. */
static void split_node(tree_rec *rec, tree_rec *tmp, size_t s, const unsigned lo[3],
                       const unsigned hi[3])
{
    if (s <= KMQ__BLOCK)
        return;
    int d = 0;
    for (int c = 1; c < 3; c++)
        if (hi[c] - lo[c] > hi[d] - lo[d])
            d = c;
    const size_t g = s > KMQ_CHUNK       ? KMQ_CHUNK
                     : s > KMQ_CHUNK / 4 ? KMQ_CHUNK / 4
                                         : KMQ__BLOCK;
    size_t h = (s / 2 + g / 2) / g * g;
    if (h == 0)
        h = g;
    if (h >= s)
        h = (s - 1) / g * g;
    /* The value v at rank h, and how many points below v go left. */
    size_t count[256] = {0};
    for (size_t i = 0; i < s; i++)
        count[channel(rec[i].key, d)]++;
    unsigned v = 0;
    size_t below = 0;
    while (below + count[v] <= h)
        below += count[v++];
    size_t take = h - below; /* points of value v that go left, first first */
    size_t nl = 0, nr = h;
    unsigned llo[3] = {255, 255, 255}, lhi[3] = {0, 0, 0};
    unsigned rlo[3] = {255, 255, 255}, rhi[3] = {0, 0, 0};
    for (size_t i = 0; i < s; i++) {
        const uint32_t key = rec[i].key;
        const unsigned x = channel(key, d);
        bool left = x < v || (x == v && take > 0);
        if (x == v && left)
            take--;
        unsigned *blo = left ? llo : rlo, *bhi = left ? lhi : rhi;
        for (int c = 0; c < 3; c++) {
            const unsigned y = channel(key, c);
            blo[c] = y < blo[c] ? y : blo[c];
            bhi[c] = y > bhi[c] ? y : bhi[c];
        }
        tmp[left ? nl++ : nr++] = rec[i];
    }
    memcpy(rec, tmp, s * sizeof *rec);
    split_node(rec, tmp, h, llo, lhi);
    split_node(rec + h, tmp + h, s - h, rlo, rhi);
}

/* Into view (zeroed, n set, arrays allocated): p's points in tree order,
 * and the permutations into from (view position -> p index) and at (p
 * index -> view position). */
static void fill_view(const kmq_kmeans_prepared *p, tree_rec *rec, tree_rec *tmp,
                      kmq_kmeans_prepared *view, uint32_t *w_keys, uint64_t *w_weights,
                      uint32_t *from, uint32_t *at)
{
    const size_t n = p->n;
    unsigned lo[3] = {255, 255, 255}, hi[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        rec[i].key = p->keys[i];
        rec[i].at = (uint32_t)i;
        for (int c = 0; c < 3; c++) {
            const unsigned y = channel(p->keys[i], c);
            lo[c] = y < lo[c] ? y : lo[c];
            hi[c] = y > hi[c] ? y : hi[c];
        }
    }
    split_node(rec, tmp, n, lo, hi);
    for (size_t i = 0; i < n; i++) {
        const uint32_t src = rec[i].at;
        from[i] = src;
        at[src] = (uint32_t)i;
        w_keys[i] = p->keys[src];
        w_weights[i] = p->w[src];
        view->r[i] = p->r[src];
        view->g[i] = p->g[src];
        view->b[i] = p->b[src];
    }
}

kmq_status kmq__tree_view_new(kmq_kmeans_prepared *p, kmq_err *err)
{
    const size_t n = p->n;
    kmq_kmeans_prepared *view = kmq__calloc(1, sizeof *view);
    tree_rec *rec = kmq__alloc_array(n, sizeof *rec);
    tree_rec *tmp = kmq__alloc_array(n, sizeof *tmp);
    if (view) {
        view->n = n;
        view->chunks = p->chunks;
        view->blocks = p->blocks;
        view->total_w = p->total_w;
        view->mean_var = p->mean_var;
        view->r = kmq__alloc_array(n, sizeof *view->r);
        view->g = kmq__alloc_array(n, sizeof *view->g);
        view->b = kmq__alloc_array(n, sizeof *view->b);
        view->box = kmq__alloc_array(p->blocks, 6 * sizeof *view->box);
        view->own_keys = kmq__alloc_array(n, sizeof *view->own_keys);
        view->own_w = kmq__alloc_array(n, sizeof *view->own_w);
        view->keys = view->own_keys;
        view->w = view->own_w;
    }
    p->tree_from = kmq__alloc_array(n, sizeof *p->tree_from);
    p->tree_at = kmq__alloc_array(n, sizeof *p->tree_at);
    if (!view || !rec || !tmp || !view->r || !view->g || !view->b || !view->box ||
        !view->own_keys || !view->own_w || !p->tree_from || !p->tree_at) {
        kmq__free(rec);
        kmq__free(tmp);
        kmq_kmeans_prepared_free(view);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the tree order of %zu colours", n);
    }
    fill_view(p, rec, tmp, view, view->own_keys, view->own_w, p->tree_from, p->tree_at);
    kmq__fill_boxes(view);
    kmq__free(rec);
    kmq__free(tmp);
    p->tree = view;
    return KMQ_OK;
}
