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
 *
 * Shared passes. When whole restarts run side by side, a thread with no
 * restart left would wait for the last ones to end; instead it counts
 * itself idle in the crew and helps. A serial pass that starts while the
 * crew has an idle thread is opened to it: the pass's arguments are
 * published, then one atomic word (release) holding the pass's
 * generation, its number of units and the next unit to hand out. Owner
 * and helpers claim batches of units by advancing the word (a helper by
 * compare-and-swap on the word it read, so a helper holding an older
 * pass's word claims nothing), run them on their own slots, and a helper
 * adds the units it ran to `helped` (release); the owner waits for every
 * unit before it folds the slots. A helper holding a batch keeps the
 * owner in the pass, so the arguments it reads stay those of its pass.
 * Which thread ran a unit changes no result (above).
 */
#include "kmeans_assign.h"

#include "kmeans_f32.h"

#include <assert.h>
#include <sched.h>
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

/* The open pass's word: generation (24 bits), units, next unit (20 bits
 * each; units stay below OPEN_MAX_UNITS, so claims past the end fit). */
#define OPEN_BITS      20
#define OPEN_MASK      ((UINT64_C(1) << OPEN_BITS) - 1)
#define OPEN_GEN_MASK  ((UINT64_C(1) << 24) - 1)
#define OPEN_MAX_UNITS ((size_t)1 << (OPEN_BITS - 2))

/* Claims per shared pass: a pruned unit can take about a microsecond, as
 * much as an atomic operation on a line two threads write. */
#define CLAIMS_PER_PASS 64

/* Spins of kmq__assign_pause before it yields the CPU. */
#define PAUSE_SPINS 1024

static uint64_t open_word(uint64_t gen, size_t units, size_t next)
{
    return gen << (2 * OPEN_BITS) | (uint64_t)units << OPEN_BITS | (uint64_t)next;
}

static size_t open_units(uint64_t word)
{
    return (size_t)(word >> OPEN_BITS & OPEN_MASK);
}

static size_t open_next(uint64_t word)
{
    return (size_t)(word & OPEN_MASK);
}

static size_t claim_batch(size_t units)
{
    return (units + CLAIMS_PER_PASS - 1) / CLAIMS_PER_PASS;
}

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
    atomic_init(&ws->open, open_word(0, 0, 0));
    atomic_init(&ws->helped, 0);
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

void kmq__assign_pause(unsigned *spins)
{
    if (++*spins < PAUSE_SPINS) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

/* Units [u0, u0 + batch) of a pass of `units` (clipped), on `slot`. */
static size_t run_batch(const kmq_kmeans_prepared *p, size_t u0, size_t batch, size_t units,
                        const double *cen, bool final, kmq__assign_ws *ws, int slot,
                        uint8_t *labels)
{
    const size_t u1 = units - u0 < batch ? units : u0 + batch;
    for (size_t u = u0; u < u1; u++)
        unit_run(p, u, cen, final, ws, slot, labels);
    return u1 - u0;
}

bool kmq__assign_help(kmq__assign_ws *ws, int slot)
{
    uint64_t word = atomic_load_explicit(&ws->open, memory_order_relaxed);
    size_t units, u0;
    do {
        units = open_units(word);
        u0 = open_next(word);
        if (u0 >= units)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&ws->open, &word, word + claim_batch(units),
                                                    memory_order_acquire, memory_order_relaxed));
    const size_t ran = run_batch(ws->pass_p, u0, claim_batch(units), units, ws->pass_cen,
                                 ws->pass_final, ws, slot, ws->pass_labels);
    atomic_fetch_add_explicit(&ws->helped, ran, memory_order_release);
    return true;
}

/* Whether this serial pass is opened to the crew's idle threads. */
static bool shared_now(const kmq__assign_ws *ws, size_t units)
{
    return ws->crew && units > 1 && units <= OPEN_MAX_UNITS &&
           atomic_load_explicit(&ws->crew->idle, memory_order_relaxed) > 0;
}

/* The units of a serial pass, opened to helpers ("Shared passes" above). */
static void shared_pass(const kmq_kmeans_prepared *p, const double *cen, bool final,
                        kmq__assign_ws *ws, uint8_t *labels, size_t units)
{
    const int slot = kmq_par_thread_num();
    const size_t batch = claim_batch(units);
    assert(slot < ws->slots);
    ws->pass_p = p;
    ws->pass_cen = cen;
    ws->pass_final = final;
    ws->pass_labels = labels;
    atomic_store_explicit(&ws->helped, 0, memory_order_relaxed);
    const uint64_t last = atomic_load_explicit(&ws->open, memory_order_relaxed);
    const uint64_t gen = ((last >> (2 * OPEN_BITS)) + 1) & OPEN_GEN_MASK;
    atomic_store_explicit(&ws->open, open_word(gen, units, 0), memory_order_release);
    size_t own = 0;
    for (;;) {
        const uint64_t word = atomic_fetch_add_explicit(&ws->open, batch, memory_order_relaxed);
        if (open_next(word) >= units)
            break;
        own += run_batch(p, open_next(word), batch, units, cen, final, ws, slot, labels);
    }
    unsigned spins = 0;
    while (atomic_load_explicit(&ws->helped, memory_order_acquire) != units - own)
        kmq__assign_pause(&spins);
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
    } else if (shared_now(ws, units)) {
        used = ws->slots;
        memset(ws->sums, 0, (size_t)used * ws->stride * sizeof *ws->sums);
        shared_pass(p, cen, final, ws, labels, units);
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
