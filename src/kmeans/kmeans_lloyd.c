/* kmeans_lloyd.c — weighted Lloyd iterations: assignment, centre update,
 * reseeding of empty clusters (layer L1).
 *
 * Includes its private kmeans_lloyd.h (kmeans_assign.h, kmeans_points.h)
 * and L0 (internal, par); no I/O. Calls the assignment passes
 * (kmeans_assign.c) and the plain method's nearest-centre kernel for the
 * reseeding (kmeans_assign_plain.c); kmeans.c calls it.
 *
 * Weighted Lloyd. Point i is a distinct colour x_i with weight w_i (its
 * pixel count). An iteration assigns each point to its nearest centre
 * (squared Euclidean distance in double; ties go to the lowest index) and
 * moves centre j to sum_{i in j} w_i x_i / sum_{i in j} w_i. Every pixel of
 * one colour has the same nearest centre, so this is exactly Lloyd over all
 * pixels; the sums are integers (channels 0..255, weights are pixel counts)
 * accumulated in uint64, hence exact and independent of the summation
 * order. kmq_kmeans_prepared_new bounds the total weight by UINT64_MAX /
 * 255^2 so that also sum w x^2 (for the variance) cannot overflow.
 *
 * Convergence as scikit-learn: tol_abs = tol * mean_c Var_c, the mean over
 * the three channels of the pixel-weighted variance. After the centre update
 * of iteration t, stop if shift = sum_j |c_j(t) - c_j(t-1)|^2 <= tol_abs
 * (converged, iterations = t), or after max_iter iterations. The reported
 * inertia is sum_i w_i min_j |x_i - c_j|^2 for the final centres, from one
 * more assignment (a final pass), whose cluster weights are the reported
 * sizes and whose labels are the run's labels.
 *
 * Empty clusters (no point assigned in an iteration) are reseeded as
 * scikit-learn does: rank the points by their distance to the centre they
 * were just assigned to (farthest first, ties: lowest index); the e empty
 * clusters, in index order, take the e first points of that ranking. Each
 * such point moves with its weight: its sums leave its old cluster and
 * become the empty cluster's, whose centre is then the point itself. A
 * cluster emptied by that move keeps its previous centre.
 *
 * Order. The iterations' passes run over the prepared points' Lloyd
 * order (kmq__lloyd_view: a k-d tree's leaves, whose blocks are smaller
 * boxes, so the filter keeps fewer centres); their results are integer
 * sums, the same in any order. The final pass runs over the points in
 * their own order, in which its inertia is summed, counting every point
 * afresh; the reseeding ranks points in their own order too and finds
 * their counted labels through the permutation (tree_at).
 *
 * Incremental sums: the integer sums of an iteration are those of the
 * previous one plus, for each point that changed cluster, its move from the
 * old cluster to the new (ws->as.acc_lab records the cluster each point is
 * counted in; reseeding moves update it too). Integer addition is exact, so
 * the totals are the same integers as a full recount.
 *
 * Threading: kmq__lloyd_run is a driver with the two modes of
 * kmq__assign_pass (par: chunk-parallel regions; NULL: serial, safe inside
 * a region). The reseeding's ranking (far_pass) uses the same two drivers
 * over whole chunks, one sorted list per chunk, merged in chunk order. The
 * centre update is serial, O(k).
 */
#include "kmeans_lloyd.h"

#include <assert.h>
#include <string.h>

/* A reseeding candidate: a point, its distance to its assigned centre, and
 * that centre. */
struct kmq__far_point {
    double d;
    size_t i;
    uint32_t label;
};

/* Keeps in top[0..*nt) the `e` points farthest from their centre, farthest
 * first, ties by lowest index (points arrive in index order and only a
 * strictly larger distance moves ahead). Returns false if fp is not kept. */
static bool far_insert(kmq__far_point *top, size_t *nt, size_t e, kmq__far_point fp)
{
    size_t pos;
    if (*nt < e)
        pos = (*nt)++;
    else if (fp.d > top[e - 1].d)
        pos = e - 1;
    else
        return false;
    while (pos > 0 && fp.d > top[pos - 1].d) {
        top[pos] = top[pos - 1];
        pos--;
    }
    top[pos] = fp;
    return true;
}

/* Kernel of far_pass: the e points of chunk ch farthest from their centres
 * in cen, into the chunk's list. */
static void far_chunk(const kmq_kmeans_prepared *p, size_t ch, const double *cen, kmq__lloyd_ws *ws,
                      int slot, size_t e)
{
    const size_t k = ws->as.k;
    size_t lo = ch * KMQ_CHUNK, m = kmq__chunk_size(p, ch);
    double *best = ws->as.buf + (size_t)slot * 3 * KMQ_CHUNK;
    uint32_t *lab = ws->as.lab + (size_t)slot * KMQ_CHUNK;
    const double *dist = kmq__nearest_plain(p, lo, m, cen, k, best, best + KMQ_CHUNK, lab);
    kmq__far_point *top = ws->far + ch * k;
    size_t nt = 0;
    for (size_t i = 0; i < m; i++) {
        kmq__far_point fp = {dist[i], lo + i, lab[i]};
        (void)far_insert(top, &nt, e, fp);
    }
    ws->far_n[ch] = nt;
}

/* The e points farthest from their centres in ws->cur into ws->far_all,
 * merging per-chunk lists in chunk order (so ties still go to the lowest
 * index). Same drivers as kmq__assign_pass. */
static void far_pass(const kmq_kmeans_prepared *p, const kmq_par *par, kmq__lloyd_ws *ws, size_t e)
{
    const double *cen = ws->cur;
    if (par && par->threads > 1 && p->chunks > 1) {
#ifdef _OPENMP
#pragma omp parallel num_threads(par->threads) default(none) shared(p, cen, ws, e)
#endif
        {
            int slot = kmq_par_thread_num();
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t ch = 0; ch < p->chunks; ch++)
                far_chunk(p, ch, cen, ws, slot, e);
        }
    } else {
        for (size_t ch = 0; ch < p->chunks; ch++)
            far_chunk(p, ch, cen, ws, 0, e);
    }
    size_t nt = 0;
    for (size_t ch = 0; ch < p->chunks; ch++) {
        const kmq__far_point *top = ws->far + ch * ws->as.k;
        /* The chunk's list is sorted: once one is rejected, so is the rest. */
        for (size_t q = 0; q < ws->far_n[ch]; q++)
            if (!far_insert(ws->far_all, &nt, e, top[q]))
                break;
    }
    assert(nt == e);
}

/* Centres of the next iteration from ws->as.tot into ws->next, reseeding
 * empty clusters first (see the top of the file). */
static void update_centers(const kmq_kmeans_prepared *p, const kmq_par *par, kmq__lloyd_ws *ws)
{
    const size_t k = ws->as.k;
    uint64_t *tot = ws->as.tot;
    size_t e = 0;
    for (size_t j = 0; j < k; j++)
        if (tot[4 * j + 3] == 0)
            ws->empty[e++] = j;
    if (e > 0) {
        /* k <= n points, so at least e points sit in non-empty clusters. */
        far_pass(p, par, ws, e);
        for (size_t q = 0; q < e; q++) {
            const kmq__far_point fp = ws->far_all[q];
            /* acc_lab is in the order of the iterations' view. */
            uint8_t *acc = ws->as.acc_lab + (p->tree ? p->tree_at[fp.i] : fp.i);
            assert(fp.label == *acc);
            uint64_t w = p->w[fp.i];
            uint32_t key = p->keys[fp.i];
            uint64_t c[3] = {key >> 16, (key >> 8) & 0xff, key & 0xff};
            uint64_t *from = tot + 4 * (size_t)fp.label;
            uint64_t *to = tot + 4 * ws->empty[q];
            for (int d = 0; d < 3; d++) {
                from[d] -= w * c[d];
                to[d] = w * c[d];
            }
            from[3] -= w;
            to[3] = w;
            *acc = (uint8_t)ws->empty[q];
        }
    }
    for (size_t j = 0; j < k; j++) {
        uint64_t w = tot[4 * j + 3];
        for (int d = 0; d < 3; d++)
            ws->next[3 * j + d] = w > 0 ? (double)tot[4 * j + d] / (double)w : ws->cur[3 * j + d];
    }
}

void kmq__lloyd_run(const kmq_kmeans_prepared *p, int max_iter, double tol_abs, const kmq_par *par,
                    const atomic_int *cancel, kmq__lloyd_ws *ws, kmq__lloyd_result *res)
{
    const size_t k = ws->as.k;
    const kmq_kmeans_prepared *view = kmq__lloyd_view(p);
    int iterations = max_iter;
    bool converged = false;
    kmq__assign_reset(&ws->as);
    res->cancelled = false;
    for (int it = 1; it <= max_iter; it++) {
        if (kmq__cancelled(cancel)) {
            res->cancelled = true;
            return;
        }
        kmq__assign_pass(view, ws->cur, false, par, &ws->as, NULL);
        update_centers(p, par, ws);
        double shift = 0.0;
        for (size_t j = 0; j < k; j++) {
            double dr = ws->next[3 * j] - ws->cur[3 * j];
            double dg = ws->next[3 * j + 1] - ws->cur[3 * j + 1];
            double db = ws->next[3 * j + 2] - ws->cur[3 * j + 2];
            shift += dr * dr + dg * dg + db * db;
        }
        double *t = ws->cur;
        ws->cur = ws->next;
        ws->next = t;
        if (shift <= tol_abs) {
            iterations = it;
            converged = true;
            break;
        }
    }
    /* The final pass in p's order, which the inertia is summed in; the
     * sums kept so far are in the view's, so they are counted afresh (the
     * same integers). */
    if (view != p)
        kmq__assign_recount(&ws->as);
    kmq__assign_pass(p, ws->cur, true, par, &ws->as, NULL);
    res->inertia = ws->as.inertia;
    res->evals = ws->as.evals;
    res->iterations = iterations;
    res->converged = converged;
}

void kmq__lloyd_ws_free(kmq__lloyd_ws *ws)
{
    kmq__assign_ws_free(&ws->as);
    kmq__free(ws->cur);
    kmq__free(ws->next);
    kmq__free(ws->far);
    kmq__free(ws->far_n);
    kmq__free(ws->far_all);
    kmq__free(ws->empty);
    memset(ws, 0, sizeof *ws);
}

kmq_status kmq__lloyd_ws_alloc(kmq__lloyd_ws *ws, const kmq_kmeans_prepared *p, size_t k,
                               kmq__assign_method method, int slots, kmq_err *err)
{
    memset(ws, 0, sizeof *ws);
    kmq_status st = kmq__assign_ws_alloc(&ws->as, p, k, method, slots, err);
    if (st != KMQ_OK)
        return st;
    ws->cur = kmq__alloc_array(3 * k, sizeof *ws->cur);
    ws->next = kmq__alloc_array(3 * k, sizeof *ws->next);
    ws->far = kmq__alloc_array(p->chunks, k * sizeof *ws->far);
    ws->far_n = kmq__alloc_array(p->chunks, sizeof *ws->far_n);
    ws->far_all = kmq__alloc_array(k, sizeof *ws->far_all);
    ws->empty = kmq__alloc_array(k, sizeof *ws->empty);
    if (ws->cur && ws->next && ws->far && ws->far_n && ws->far_all && ws->empty)
        return KMQ_OK;
    kmq__lloyd_ws_free(ws);
    return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for k-means scratch (k = %zu, %zu colours)",
                       k, p->n);
}
