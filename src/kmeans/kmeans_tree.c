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
 * bits. (Measured and left: k-means++ over the view, drawing in the
 * view's order instead, took 25% less time at k = 256 on china.jpg; done
 * exactly it would also need Morton-order sums kept up to date under
 * every update and its draws gathered through the permutation, which
 * would take back much of that.)
 *
 * The tree. A node of s > KMQ__BLOCK points is split across its widest
 * channel (the first of equals) at the point of rank h, h the multiple of
 * g nearest s / 2 (g = KMQ_CHUNK above a chunk, a pass unit of
 * KMQ_CHUNK / 4 above that, else KMQ__BLOCK), so that every chunk, pass
 * unit and block of the view is one subtree, and only the last block is
 * short. Ranks are by channel value, ties by the current order (a stable
 * partition), so the order is a fixed function of the points.
 *
 * Cost: O(n log(n / KMQ__BLOCK)): per level a vectorised box pass, a
 * count and a branch-free partition over the keys and indices (36 ms for
 * 932,548 colours, 3.4 ms for china.jpg's 96,615 on the development VM),
 * once per set of prepared points, shared by every k, restart and thread,
 * on the caller's threads (subtrees as tasks: 1.6x faster on 2); 32 bytes
 * a colour kept (coordinates, weights, keys, both permutations).
 */
#include "kmeans_points.h"

#include "kmq/par.h"

#include <string.h>

/* Kernel: the bounding box of keys[0..s), per channel. A plain loop over
 * contiguous keys, which the compiler vectorises. */
KMQ__VEC_CLONES static void key_box(const uint32_t *restrict keys, size_t s, unsigned lo[3],
                                    unsigned hi[3])
{
    uint32_t lr = 255, lg = 255, lb = 255, hr = 0, hg = 0, hb = 0;
    for (size_t i = 0; i < s; i++) {
        const uint32_t r = keys[i] >> 16, g = (keys[i] >> 8) & 0xff, b = keys[i] & 0xff;
        lr = r < lr ? r : lr;
        lg = g < lg ? g : lg;
        lb = b < lb ? b : lb;
        hr = r > hr ? r : hr;
        hg = g > hg ? g : hg;
        hb = b > hb ? b : hb;
    }
    lo[0] = lr, lo[1] = lg, lo[2] = lb;
    hi[0] = hr, hi[1] = hg, hi[2] = hb;
}

/* A subtree of at least this many points is split as a task of its own
 * when the build runs on several threads; below, too little work to hand
 * out. */
#define TASK_MIN ((size_t)16384)

/* Splits the node of s points (keys, and their indices in p at `at`)
 * recursively; tk and ta have room for s each. Either half of a large
 * node may go to another thread (a task): they share nothing, so the
 * order is the same on any number of threads. */
static void split_node(uint32_t *keys, uint32_t *at, uint32_t *tk, uint32_t *ta, size_t s)
{
    if (s <= KMQ__BLOCK)
        return;
    unsigned lo[3], hi[3];
    key_box(keys, s, lo, hi);
    int d = 0;
    for (int c = 1; c < 3; c++)
        if (hi[c] - lo[c] > hi[d] - lo[d])
            d = c;
    const size_t g = s > KMQ_CHUNK ? KMQ_CHUNK : s > KMQ_CHUNK / 4 ? KMQ_CHUNK / 4 : KMQ__BLOCK;
    size_t h = (s / 2 + g / 2) / g * g;
    if (h == 0)
        h = g;
    if (h >= s)
        h = (s - 1) / g * g;
    /* The value v at rank h, and how many points of value v go left (the
     * first ones). */
    size_t count[256] = {0};
    const int shift = 16 - 8 * d;
    for (size_t i = 0; i < s; i++)
        count[(keys[i] >> shift) & 0xff]++;
    unsigned v = 0;
    size_t below = 0;
    while (below + count[v] <= h)
        below += count[v++];
    size_t take = h - below;
    size_t nl = 0, nr = h;
    for (size_t i = 0; i < s; i++) {
        const unsigned x = (keys[i] >> shift) & 0xff;
        const bool left = x < v || (x == v && take > 0);
        take -= x == v && left;
        const size_t to = left ? nl : nr;
        tk[to] = keys[i];
        ta[to] = at[i];
        nl += left;
        nr += !left;
    }
    memcpy(keys, tk, s * sizeof *keys);
    memcpy(at, ta, s * sizeof *at);
    if (s >= TASK_MIN) {
#ifdef _OPENMP
#pragma omp task default(none) firstprivate(keys, at, tk, ta, h)
#endif
        split_node(keys, at, tk, ta, h);
    } else {
        split_node(keys, at, tk, ta, h);
    }
    split_node(keys + h, at + h, tk + h, ta + h, s - h);
}

/* Threads for building the order of n points: par's, when there is work
 * to share and no region around the call. */
static int build_threads(const kmq_par *par, size_t n)
{
    return par && n >= 2 * TASK_MIN && !kmq_par_in_parallel() ? par->threads : 1;
}

/* The whole tree: on par's threads (tasks), or serially. Driver. */
static void split_all(uint32_t *keys, uint32_t *at, uint32_t *tk, uint32_t *ta, size_t n,
                      const kmq_par *par)
{
    const int threads = build_threads(par, n);
    if (threads > 1) {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) default(none) shared(keys, at, tk, ta, n)
#pragma omp single
#endif
        split_node(keys, at, tk, ta, n);
    } else {
        split_node(keys, at, tk, ta, n);
    }
}

/* Into view (n set, arrays allocated): p's points in tree order, and the
 * permutations into from (view position -> p index) and at (p index ->
 * view position). work: 2 n scratch. Driver (par may be NULL). */
static void fill_view(const kmq_kmeans_prepared *p, const kmq_par *par, uint32_t *work,
                      kmq_kmeans_prepared *view, uint32_t *w_keys, uint64_t *w_weights,
                      uint32_t *from, uint32_t *at)
{
    const size_t n = p->n;
    uint32_t *tk = work, *ta = work + n;
    memcpy(w_keys, p->keys, n * sizeof *w_keys);
    for (size_t i = 0; i < n; i++)
        from[i] = (uint32_t)i;
    split_all(w_keys, from, tk, ta, n, par);
    const int threads = build_threads(par, n);
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) default(none)                       \
    shared(p, view, w_weights, from, at, n)
#endif
    for (size_t i = 0; i < n; i++) {
        const uint32_t src = from[i];
        at[src] = (uint32_t)i;
        w_weights[i] = p->w[src];
        view->r[i] = p->r[src];
        view->g[i] = p->g[src];
        view->b[i] = p->b[src];
    }
}

kmq_status kmq__tree_view_new(kmq_kmeans_prepared *p, const kmq_par *par, kmq_err *err)
{
    const size_t n = p->n;
    kmq_kmeans_prepared *view = kmq__calloc(1, sizeof *view);
    uint32_t *work = kmq__alloc_array(n, 2 * sizeof *work);
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
    if (!view || !work || !view->r || !view->g || !view->b || !view->box || !view->own_keys ||
        !view->own_w || !p->tree_from || !p->tree_at) {
        kmq__free(work);
        kmq_kmeans_prepared_free(view);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the tree order of %zu colours", n);
    }
    fill_view(p, par, work, view, view->own_keys, view->own_w, p->tree_from, p->tree_at);
    kmq__fill_boxes(view);
    kmq__free(work);
    p->tree = view;
    return KMQ_OK;
}
