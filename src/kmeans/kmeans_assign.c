/* kmeans_assign.c — one assignment pass over all points, whichever the
 * method: the two drivers and their scratch (layer L1).
 *
 * Includes its private kmeans_assign.h, kmeans_f32.h and L0 (internal,
 * par); no I/O. Calls the methods' unit kernels (kmeans_assign_plain.c,
 * kmeans_assign_f32.c, kmeans_assign_bounds.c) and the float32 table
 * (kmeans_f32.c); none of them calls back. Lloyd (kmeans_lloyd.c) and the
 * public labelling (kmeans.c) run passes.
 *
 * Threading — one kernel, two drivers (docs/design.md). A pass cuts the points
 * into units: whole chunks of KMQ_CHUNK points in a final pass, which sums
 * the inertia into one double per chunk, and quarter chunks otherwise
 * (pass_unit). The method's kernel assigns a unit's points and adds their
 * integer sums into its thread's slot (padded to a cache line). Given a
 * kmq_par, kmq__assign_pass runs the units on par->threads threads,
 * handed out dynamically (pruned units take uneven time; which thread runs
 * a unit changes no result); given NULL it runs them in order, and is then
 * what each thread uses when whole restarts run side by side. Either way
 * the integer slots are added up after the region (integers: any order
 * gives the same totals) and the chunk doubles are folded in chunk order,
 * so a pass gives the same bits for any thread count and without OpenMP.
 * All scratch is allocated before any region (kmq__assign_ws_alloc).
 */
#include "kmeans_assign.h"

#include "kmeans_f32.h"

#include <assert.h>
#include <string.h>

/* uint64 per cache line: sum slots are padded to a multiple of this. */
#define U64_PER_LINE (KMQ_CACHE_LINE / sizeof(uint64_t))

/* Final passes sum the inertia (a double per chunk, folded in chunk order)
 * and so work in whole chunks. The others only add integers and write
 * per-point bounds, which no split of the points can change, so they hand
 * out quarter chunks: finer pieces keep many threads busy to the end of a
 * pass (a 16 MP photo has about 90 chunks; over 16 threads the last round
 * of whole chunks leaves a sixth of them idle, and pruned chunks differ in
 * cost besides). */
#define PASS_SPLIT 4

void kmq__assign_ws_free(kmq__assign_ws *ws)
{
    kmq__free(ws->sums_block);
    kmq__free(ws->buf);
    kmq__free(ws->lab);
    kmq__free(ws->chunk_inertia);
    kmq__free(ws->cen_f32);
    kmq__free(ws->all);
    kmq__free(ws->chunk_list);
    kmq__free(ws->acc_lab);
    kmq__free(ws->tot);
    kmq__bounds_free(ws->bounds);
    memset(ws, 0, sizeof *ws);
}

kmq_status kmq__assign_ws_alloc(kmq__assign_ws *ws, const kmq_kmeans_prepared *p, size_t k,
                                kmq__assign_method method, int slots, kmq_err *err)
{
    memset(ws, 0, sizeof *ws);
    ws->method = method;
    ws->k = k;
    ws->slots = slots;
    /* Pad each thread's sums (4 per cluster + the evaluation count + the
     * tag of its chunk list) to whole cache lines, and align the block, so
     * two threads never write to one line. */
    ws->stride = (4 * k + 2 + U64_PER_LINE - 1) / U64_PER_LINE * U64_PER_LINE;
    ws->sums_block = kmq__alloc_array((size_t)slots * ws->stride + U64_PER_LINE, sizeof(uint64_t));
    if (ws->sums_block) {
        uintptr_t a = (uintptr_t)ws->sums_block;
        a = (a + KMQ_CACHE_LINE - 1) / KMQ_CACHE_LINE * KMQ_CACHE_LINE;
        ws->sums = (uint64_t *)a;
    }
    ws->buf = kmq__alloc_array((size_t)slots, 3 * KMQ_CHUNK * sizeof *ws->buf);
    ws->lab = kmq__alloc_array((size_t)slots, KMQ_CHUNK * sizeof *ws->lab);
    ws->chunk_inertia = kmq__alloc_array(p->chunks, sizeof *ws->chunk_inertia);
    ws->cen_f32 = kmq__alloc_array(KMQ__F32_STRIDE * k, sizeof *ws->cen_f32);
    ws->all = kmq__alloc(sizeof *ws->all);
    ws->chunk_list = kmq__alloc_array((size_t)slots, sizeof *ws->chunk_list);
    ws->acc_lab = kmq__alloc(p->n);
    ws->tot = kmq__alloc_array(4 * k + 1, sizeof *ws->tot);
    if (ws->sums_block && ws->buf && ws->lab && ws->chunk_inertia && ws->cen_f32 && ws->all &&
        ws->chunk_list && ws->acc_lab && ws->tot) {
        kmq_status st = KMQ_OK;
        if (method == KMQ__ASSIGN_BOUNDS)
            st = kmq__bounds_new(p, k, slots, &ws->bounds, err);
        if (st != KMQ_OK)
            kmq__assign_ws_free(ws);
        return st;
    }
    kmq__assign_ws_free(ws);
    return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for k-means scratch (k = %zu, %zu colours)",
                       k, p->n);
}

void kmq__assign_recount(kmq__assign_ws *ws)
{
    ws->counted = false;
    if (ws->bounds)
        kmq__bounds_reset(ws->bounds);
}

void kmq__assign_reset(kmq__assign_ws *ws)
{
    kmq__assign_recount(ws);
    ws->evals = 0;
}

static size_t pass_unit(bool final)
{
    return final ? KMQ_CHUNK : KMQ_CHUNK / PASS_SPLIT;
}

/* Kernel of kmq__assign_pass: points [u * unit, (u + 1) * unit) of the
 * pass, by the workspace's method. */
static void unit_run(const kmq_kmeans_prepared *p, size_t u, const double *cen, bool final,
                     kmq__assign_ws *ws, int slot, uint8_t *labels)
{
    const size_t unit = pass_unit(final), lo = u * unit;
    const size_t m = p->n - lo < unit ? p->n - lo : unit;
    switch (ws->method) {
    case KMQ__ASSIGN_PLAIN:
        kmq__plain_unit(p, lo, m, cen, final, ws, slot, labels);
        break;
    case KMQ__ASSIGN_F32:
        kmq__f32_unit(p, lo, m, cen, final, ws, slot, labels);
        break;
    case KMQ__ASSIGN_BOUNDS:
        kmq__bounds_unit(p, lo, m, cen, final, ws, slot, labels);
        break;
    }
}

void kmq__assign_pass(const kmq_kmeans_prepared *p, const double *cen, bool final,
                      const kmq_par *par, kmq__assign_ws *ws, uint8_t *labels)
{
    const size_t k = ws->k;
    const size_t nsum = 4 * k + 1; /* 4 sums per cluster + the evaluation count */
    const size_t units = (p->n + pass_unit(final) - 1) / pass_unit(final);
    int used = 1;
    if (ws->method != KMQ__ASSIGN_PLAIN)
        kmq__f32_centres(cen, k, ws->cen_f32);
    if (ws->method == KMQ__ASSIGN_F32)
        kmq__f32_list(cen, k, ws->all);
    if (ws->method == KMQ__ASSIGN_BOUNDS)
        kmq__bounds_prepare(ws->bounds, cen, par);
    if (par && par->threads > 1 && units > 1) {
        assert(ws->slots >= par->threads);
        used = par->threads;
        memset(ws->sums, 0, (size_t)used * ws->stride * sizeof *ws->sums);
#ifdef _OPENMP
#pragma omp parallel num_threads(par->threads) default(none)                                       \
    shared(p, cen, final, ws, labels, units)
#endif
        {
            int slot = kmq_par_thread_num();
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (size_t u = 0; u < units; u++)
                unit_run(p, u, cen, final, ws, slot, labels);
        }
    } else {
        memset(ws->sums, 0, ws->stride * sizeof *ws->sums);
        for (size_t u = 0; u < units; u++)
            unit_run(p, u, cen, final, ws, 0, labels);
    }
    /* Integer slots (sums, or changes of the sums once counted): any order
     * gives the same totals. */
    if (!ws->counted)
        memset(ws->tot, 0, nsum * sizeof *ws->tot);
    ws->tot[4 * k] = 0;
    for (int t = 0; t < used; t++) {
        const uint64_t *s = ws->sums + (size_t)t * ws->stride;
        for (size_t j = 0; j < nsum; j++)
            ws->tot[j] += s[j];
    }
    ws->counted = true;
    ws->evals += ws->tot[4 * k];
    /* Doubles: chunk order, whatever thread ran which chunk. */
    double inertia = 0.0;
    if (final)
        for (size_t ch = 0; ch < p->chunks; ch++)
            inertia += ws->chunk_inertia[ch];
    ws->inertia = inertia;
}
