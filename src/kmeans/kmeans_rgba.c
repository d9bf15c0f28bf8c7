/* kmeans_rgba.c — weighted k-means over RGBA colours, premultiplied
 * (layer L1; the alpha = keep fit of docs/design.md §19).
 *
 * A point is a straight colour 0xRRGGBBAA (kmq/hist_rgba.h) at the
 * coordinates (a r, a g, a b, A), a = A/255: colour as it shows when
 * composited, alpha on the same 0..255 scale. The squared distance there is
 * the RGBA error of the design (§19): fully transparent colours are one
 * point, and colour differences under low alpha count as little as they
 * show. Each coordinate times 255 is an integer (A·c, or 255·A), so the
 * centre update sums w·(A·c) in uint64, exact as the RGB engine's.
 *
 * The method is the RGB engine's (kmeans.c and friends), in 4 dimensions,
 * brute force: k-means++ greedy with 2 + floor(ln k) local trials drawn by
 * w·D², then Lloyd; an empty cluster keeps its centre; convergence as
 * scikit-learn (tol times the mean per-coordinate variance, against the
 * sum of squared centre shifts); every restart from its own stream
 * (seed, k, restart), the lowest inertia kept (ties: the lowest restart).
 * The RGB engine's pruning and float32 kernels are specialised to 3
 * channels and are not used here: images that keep alpha are mostly
 * icons and UI art with few colours, where brute force is quick.
 *
 * Determinism: labels come from per-point arithmetic; every sum over
 * points is a per-chunk partial (KMQ_CHUNK points, in point order) folded
 * in chunk order, and the centre sums are integers. The same bits for any
 * thread count.
 */
#include "kmq/kmeans.h"

#include "internal.h"
#include "kmq/rng.h"

#include <math.h>
#include <string.h>

#define DIMS 4

/* The assignment kernel also for AVX2, picked at load time (as the RGB
 * engine's kernels, kmeans_points.h). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define KMQ__RGBA_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef KMQ__RGBA_CLONES
#define KMQ__RGBA_CLONES
#endif

typedef struct rgba_points {
    size_t n, chunks;
    const uint64_t *w;
    uint32_t *q;    /* 4 n: A r, A g, A b, 255 A (coordinates times 255) */
    double *x;      /* 4 n: the coordinates */
    float *xf;      /* 4 n: the same in single precision (exact: q / 255 rounded) */
    uint64_t total; /* sum of w */
    double mean_var;
} rgba_points;

static void points_free(rgba_points *p)
{
    kmq__free(p->q);
    kmq__free(p->x);
    kmq__free(p->xf);
}

static kmq_status points_new(const kmq_points *pts, rgba_points *p, kmq_err *err)
{
    memset(p, 0, sizeof *p);
    if (!pts || pts->n == 0 || !pts->keys || !pts->weights)
        return kmq_err_set(err, KMQ_E_ARG, "k-means needs at least one colour");
    p->n = pts->n;
    p->chunks = kmq_par_chunks(p->n);
    p->w = pts->weights;
    p->q = kmq__alloc_array(p->n, DIMS * sizeof *p->q);
    p->x = kmq__alloc_array(p->n, DIMS * sizeof *p->x);
    p->xf = kmq__alloc_array(p->n, DIMS * sizeof *p->xf);
    if (!p->q || !p->x || !p->xf) {
        points_free(p);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu RGBA colours", p->n);
    }
    /* Bound that keeps sum w q^2 within uint64: q <= 65025. */
    const uint64_t w_limit = UINT64_MAX / (65025u * 65025u);
    double s1[DIMS] = {0}, s2[DIMS] = {0};
    for (size_t i = 0; i < p->n; i++) {
        uint32_t key = pts->keys[i];
        uint64_t a = key & 0xff, w = pts->weights[i];
        if ((a == 0 && key != 0) || w == 0 || w > w_limit - p->total) {
            points_free(p);
            return kmq_err_set(err, KMQ_E_ARG, "RGBA colour %zu: key 0x%08x or weight is invalid",
                               i, (unsigned)key);
        }
        p->total += w;
        uint32_t c[DIMS] = {(uint32_t)(a * (key >> 24)), (uint32_t)(a * ((key >> 16) & 0xff)),
                            (uint32_t)(a * ((key >> 8) & 0xff)), (uint32_t)(255 * a)};
        for (int d = 0; d < DIMS; d++) {
            p->q[DIMS * i + (size_t)d] = c[d];
            double v = c[d] / 255.0;
            p->x[DIMS * i + (size_t)d] = v;
            p->xf[DIMS * i + (size_t)d] = (float)v;
            s1[d] += (double)w * v;
            s2[d] += (double)w * v * v;
        }
    }
    double var = 0;
    for (int d = 0; d < DIMS; d++) {
        double mean = s1[d] / (double)p->total, v = s2[d] / (double)p->total - mean * mean;
        var += v > 0 ? v : 0;
    }
    p->mean_var = var / DIMS;
    return KMQ_OK;
}

static inline double dist2(const double *x, const double *c)
{
    double s = 0;
    for (int d = 0; d < DIMS; d++) {
        double t = x[d] - c[d];
        s += t * t;
    }
    return s;
}

/* Nearest centre of one chunk's points (lowest index on ties) and the
 * chunk's inertia. Single precision, centres in structure-of-arrays form,
 * so that the distances to every centre vectorise (compiled for AVX2 too,
 * picked at load time); the same operations in the same order on any
 * thread, so the labels do not depend on the thread count. */
KMQ__RGBA_CLONES static double assign_chunk(const rgba_points *p, size_t lo, size_t hi,
                                            const float *cs, size_t k, uint8_t *labels)
{
    const float *c0 = cs, *c1 = cs + KMQ_MAX_K, *c2 = cs + 2 * KMQ_MAX_K, *c3 = cs + 3 * KMQ_MAX_K;
    float d[KMQ_MAX_K];
    double sum = 0;
    for (size_t i = lo; i < hi; i++) {
        const float *x = p->xf + DIMS * i;
        const float x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        for (size_t j = 0; j < k; j++) {
            float t0 = x0 - c0[j], t1 = x1 - c1[j], t2 = x2 - c2[j], t3 = x3 - c3[j];
            d[j] = t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3;
        }
        size_t best = 0;
        float bd = d[0];
        for (size_t j = 1; j < k; j++)
            if (d[j] < bd) {
                bd = d[j];
                best = j;
            }
        labels[i] = (uint8_t)best;
        sum += (double)p->w[i] * (double)bd;
    }
    return sum;
}

/* Nearest centre of every point and the inertia, folded in chunk order.
 * Driver. */
static double assign(const rgba_points *p, const double *centers, size_t k, const kmq_par *par,
                     uint8_t *labels, double *chunk_sum)
{
    float cs[DIMS * KMQ_MAX_K];
    for (size_t j = 0; j < k; j++)
        for (size_t q = 0; q < DIMS; q++)
            cs[q * KMQ_MAX_K + j] = (float)centers[DIMS * j + q];
    const size_t chunks = p->chunks;
    const float *csp = cs;
#ifdef _OPENMP
#pragma omp parallel for num_threads(par->threads) schedule(static) default(none)                  \
    shared(p, csp, labels, chunk_sum) firstprivate(k, chunks)
#else
    (void)par;
#endif
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t lo = ch * KMQ_CHUNK, hi = lo + KMQ_CHUNK < p->n ? lo + KMQ_CHUNK : p->n;
        chunk_sum[ch] = assign_chunk(p, lo, hi, csp, k, labels);
    }
    double total = 0;
    for (size_t ch = 0; ch < chunks; ch++)
        total += chunk_sum[ch];
    return total;
}

/* The point whose running sum of mass[] passes u * total (mass >= 0, in
 * point order); the last point with mass when rounding runs past the end. */
static size_t draw(const double *mass, size_t n, double target)
{
    double run = 0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (mass[i] <= 0)
            continue;
        run += mass[i];
        last = i;
        if (run > target)
            return i;
    }
    return last;
}

/* k-means++ with local trials into centers (k of them, k <= n). */
static void seed_kmeanspp(const rgba_points *p, size_t k, kmq_rng *rng, double *centers, double *d2,
                          double *mass)
{
    const size_t n = p->n;
    uint64_t pick = kmq_rng_below(rng, p->total);
    size_t first = 0;
    for (uint64_t run = 0; first < n; first++) {
        run += p->w[first];
        if (run > pick)
            break;
    }
    memcpy(centers, p->x + DIMS * first, DIMS * sizeof *centers);
    for (size_t i = 0; i < n; i++) {
        d2[i] = dist2(p->x + DIMS * i, centers);
        mass[i] = (double)p->w[i] * d2[i];
    }
    size_t trials = 2 + (size_t)floor(log((double)k));
    for (size_t c = 1; c < k; c++) {
        double phi = 0;
        for (size_t i = 0; i < n; i++)
            phi += mass[i];
        size_t best = SIZE_MAX;
        double best_phi = INFINITY;
        for (size_t t = 0; t < trials; t++) {
            size_t cand = draw(mass, n, kmq_rng_uniform(rng) * phi);
            const double *cx = p->x + DIMS * cand;
            double pot = 0;
            for (size_t i = 0; i < n; i++) {
                double d = dist2(p->x + DIMS * i, cx);
                pot += (double)p->w[i] * (d < d2[i] ? d : d2[i]);
            }
            if (pot < best_phi) {
                best_phi = pot;
                best = cand;
            }
        }
        memcpy(centers + DIMS * c, p->x + DIMS * best, DIMS * sizeof *centers);
        for (size_t i = 0; i < n; i++) {
            double d = dist2(p->x + DIMS * i, centers + DIMS * c);
            if (d < d2[i]) {
                d2[i] = d;
                mass[i] = (double)p->w[i] * d;
            }
        }
    }
}

/* `random`: k distinct points, each draw proportional to weight among the
 * points not yet drawn. */
static void seed_random(const rgba_points *p, size_t k, kmq_rng *rng, double *centers, double *mass)
{
    for (size_t i = 0; i < p->n; i++)
        mass[i] = (double)p->w[i];
    double left = (double)p->total;
    for (size_t c = 0; c < k; c++) {
        size_t i = draw(mass, p->n, kmq_rng_uniform(rng) * left);
        memcpy(centers + DIMS * c, p->x + DIMS * i, DIMS * sizeof *centers);
        left -= mass[i];
        mass[i] = 0;
    }
}

/* New centres: the exact weighted means of the labels (integer sums); an
 * empty cluster keeps its centre. Returns the sum of squared shifts. */
static double update(const rgba_points *p, const uint8_t *labels, size_t k, uint64_t *sums,
                     double *centers)
{
    memset(sums, 0, k * (DIMS + 1) * sizeof *sums);
    for (size_t i = 0; i < p->n; i++) {
        uint64_t *s = sums + (DIMS + 1) * labels[i];
        for (int d = 0; d < DIMS; d++)
            s[d] += p->w[i] * p->q[DIMS * i + (size_t)d];
        s[DIMS] += p->w[i];
    }
    double shift = 0;
    for (size_t j = 0; j < k; j++) {
        const uint64_t *s = sums + (DIMS + 1) * j;
        if (s[DIMS] == 0)
            continue;
        for (int d = 0; d < DIMS; d++) {
            double v = (double)s[d] / (255.0 * (double)s[DIMS]);
            double t = v - centers[DIMS * j + (size_t)d];
            shift += t * t;
            centers[DIMS * j + (size_t)d] = v;
        }
    }
    return shift;
}

kmq_status kmq_kmeans_fit_rgba(const kmq_points *pts, const kmq_kmeans_opts *opts,
                               const kmq_par *par, kmq_fit *out, kmq_err *err)
{
    if (!opts || opts->k < 1 || opts->k > KMQ_MAX_K || opts->restarts < 1 || opts->max_iter < 1 ||
        !(opts->tol >= 0))
        return kmq_err_set(err, KMQ_E_ARG, "bad k-means options");
    rgba_points p;
    kmq_status st = points_new(pts, &p, err);
    if (st != KMQ_OK)
        return st;
    const size_t n = p.n, k = opts->k < n ? opts->k : n;
    const double tol_abs = opts->tol * p.mean_var;
    kmq_fit f = {0};
    f.k = opts->k;
    f.k_effective = k;
    f.restarts = opts->restarts;
    f.centers = kmq__alloc_array(k, DIMS * sizeof *f.centers);
    f.sizes = kmq__calloc(k, sizeof *f.sizes);
    f.labels = kmq__alloc(n);
    f.restart_inertia = kmq__alloc_array((size_t)opts->restarts, sizeof *f.restart_inertia);
    double *centers = kmq__alloc_array(k, DIMS * sizeof *centers);
    uint64_t *sums = kmq__alloc_array(k, (DIMS + 1) * sizeof *sums);
    uint64_t *sizes = kmq__calloc(k, sizeof *sizes);
    uint8_t *labels = kmq__alloc(n);
    double *d2 = kmq__alloc_array(n, sizeof *d2), *mass = kmq__alloc_array(n, sizeof *mass);
    double *chunk_sum = kmq__alloc_array(p.chunks, sizeof *chunk_sum);
    if (!f.centers || !f.sizes || !f.labels || !f.restart_inertia || !centers || !sums || !sizes ||
        !labels || !d2 || !mass || !chunk_sum) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory fitting %zu RGBA colours", n);
        goto done;
    }
    f.inertia = INFINITY;
    for (int r = 0; r < opts->restarts; r++) {
        if (opts->cancel && atomic_load(opts->cancel)) {
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
            goto done;
        }
        kmq_rng rng;
        kmq_rng_init(&rng, opts->seed, opts->k, (uint64_t)r);
        if (k == n) { /* every colour its own centre */
            memcpy(centers, p.x, n * DIMS * sizeof *centers);
        } else if (opts->init == KMQ_INIT_RANDOM) {
            seed_random(&p, k, &rng, centers, mass);
        } else {
            seed_kmeanspp(&p, k, &rng, centers, d2, mass);
        }
        int iterations = 0;
        bool converged = k == n;
        for (int it = 1; it <= opts->max_iter && !converged; it++) {
            if (opts->cancel && atomic_load(opts->cancel)) {
                st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
                goto done;
            }
            assign(&p, centers, k, par, labels, chunk_sum);
            double shift = update(&p, labels, k, sums, centers);
            iterations = it;
            converged = shift <= tol_abs;
        }
        double inertia = assign(&p, centers, k, par, labels, chunk_sum);
        memset(sizes, 0, k * sizeof *sizes);
        for (size_t i = 0; i < n; i++)
            sizes[labels[i]] += p.w[i];
        f.restart_inertia[r] = inertia;
        f.distance_evals += (uint64_t)n * k * (uint64_t)(iterations + 1);
        f.iterations_total += (uint64_t)iterations;
        if (inertia < f.inertia) {
            f.inertia = inertia;
            f.best_restart = r;
            f.iterations = iterations;
            f.converged = converged;
            memcpy(f.centers, centers, k * DIMS * sizeof *centers);
            memcpy(f.sizes, sizes, k * sizeof *sizes);
            memcpy(f.labels, labels, n);
        }
    }
    *out = f;
    memset(&f, 0, sizeof f);
done:
    kmq_fit_clear(&f);
    kmq__free(centers);
    kmq__free(sums);
    kmq__free(sizes);
    kmq__free(labels);
    kmq__free(d2);
    kmq__free(mass);
    kmq__free(chunk_sum);
    points_free(&p);
    return st;
}
