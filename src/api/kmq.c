/* kmq.c — the installed C API (include/kmq/kmq.h) over the histogram and
 * k-means modules.
 *
 * Every call turns the caller's colours into a histogram of distinct colours
 * (repeats add their weights), fits or assigns over that, and maps each
 * input colour back through the histogram's index: the same path as the
 * runner's, so a fit here is the fit `kmq quantize` makes of the same pixels.
 * Only the functions of kmq.h are exported (KMQ_EXPORT); the library is
 * compiled with hidden visibility.
 */
#include "kmq/kmq.h"

#include "internal.h"
#include "kmq/error.h"
#include "kmq/hist.h"
#include "kmq/kmeans.h"
#include "kmq/par.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef KMQ_VERSION_STRING
#error "KMQ_VERSION_STRING must be defined by the build"
#endif

/* The public codes are kmq_status values; kmq.h documents these two. */
_Static_assert(KMQ_E_NOMEM == 1 && KMQ_E_ARG == 2, "kmq.h documents the numeric codes");

static int report(kmq_status st, const kmq_err *err, char *msg, size_t msglen)
{
    if (msg && msglen > 0)
        snprintf(msg, msglen, "%s", st == KMQ_OK ? "" : err->msg);
    return (int)st;
}

static int bad_arg(const char *what, char *msg, size_t msglen)
{
    kmq_err err;
    kmq_err_clear(&err);
    return report(kmq_err_set(&err, KMQ_E_ARG, "%s", what), &err, msg, msglen);
}

KMQ_EXPORT const char *kmq_version(void)
{
    return KMQ_VERSION_STRING;
}

KMQ_EXPORT void kmq_params_init(kmq_params *p, int k)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->k = k;
    p->restarts = 10;
    p->max_iter = 300;
    p->tol = 1e-4;
    p->init = KMQ_SEED_KMEANSPP;
}

/* Histogram of n colours: weight 1 each (weights NULL) or weights[i], the
 * colours of weight 0 left out. */
static kmq_status build_hist(const uint8_t *rgb, const uint64_t *weights, size_t n, kmq_hist **out,
                             kmq_err *err)
{
    kmq_hist *h = NULL;
    kmq_status st = kmq_hist_new(&h, err);
    if (st == KMQ_OK && !weights)
        st = kmq_hist_add_rgb(h, rgb, n, err);
    for (size_t i = 0; st == KMQ_OK && weights && i < n; i++) {
        if (weights[i] == 0)
            continue;
        const uint8_t *c = rgb + 3 * i;
        uint32_t key = (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
        st = kmq_hist_add_color(h, key, weights[i], err);
    }
    if (st == KMQ_OK)
        st = kmq_hist_finish(h, err);
    if (st != KMQ_OK) {
        kmq_hist_free(h);
        return st;
    }
    *out = h;
    return KMQ_OK;
}

/* labels[i] = nearest of k centres for each of n colours; *inertia (may be
 * NULL) = sum of squared distances, one per colour given. */
static kmq_status label_colours(const uint8_t *rgb, size_t n, const double *centers, size_t k,
                                const kmq_par *par, uint8_t *labels, double *inertia, kmq_err *err)
{
    kmq_hist *h = NULL;
    uint8_t *dlab = NULL;
    uint32_t *idx = NULL;
    kmq_status st = build_hist(rgb, NULL, n, &h, err);
    if (st != KMQ_OK)
        return st;
    size_t nd = kmq_hist_size(h);
    dlab = kmq__alloc_array(nd, 1);
    idx = kmq__alloc_array(n, sizeof *idx);
    if (!dlab || !idx) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the labels of %zu colours", n);
        goto done;
    }
    kmq_points pts = {nd, kmq_hist_keys(h), kmq_hist_weights(h)};
    double total = 0.0;
    st = kmq_kmeans_assign(&pts, centers, k, par, dlab, &total, err);
    if (st != KMQ_OK)
        goto done;
    (void)kmq_hist_index_rgb(h, rgb, n, idx); /* every colour was counted */
    for (size_t i = 0; i < n; i++)
        labels[i] = dlab[idx[i]];
    if (inertia)
        *inertia = total;
done:
    kmq__free(idx);
    kmq__free(dlab);
    kmq_hist_free(h);
    return st;
}

static kmq_status check_params(const kmq_params *p, kmq_err *err)
{
    if (p->k < 1 || p->k > KMQ_MAX_K)
        return kmq_err_set(err, KMQ_E_ARG, "k = %d is outside 1..%d", p->k, KMQ_MAX_K);
    if (p->init != KMQ_SEED_KMEANSPP && p->init != KMQ_SEED_RANDOM)
        return kmq_err_set(err, KMQ_E_ARG,
                           "init = %d is neither KMQ_SEED_KMEANSPP nor KMQ_SEED_RANDOM", p->init);
    if (p->threads < 0)
        return kmq_err_set(err, KMQ_E_ARG, "threads = %d is negative (0: all cores)", p->threads);
    return KMQ_OK; /* restarts, max_iter and tol: the fit checks them */
}

static kmq_status fit_colours(const uint8_t *rgb, const uint64_t *weights, size_t n,
                              const kmq_params *p, kmq_result *out, kmq_err *err)
{
    kmq_status st = check_params(p, err);
    if (st != KMQ_OK)
        return st;
    if (n == 0)
        return kmq_err_set(err, KMQ_E_ARG, "no colours to fit");
    kmq_hist *h = NULL;
    st = build_hist(rgb, weights, n, &h, err);
    if (st != KMQ_OK)
        return st;
    kmq_fit fit = {0};
    kmq_result r = {0};
    kmq_par par = kmq_par_make(p->threads);
    size_t nd = kmq_hist_size(h);
    if (nd == 0) {
        st = kmq_err_set(err, KMQ_E_ARG, "every weight is 0: no colour to fit");
        goto done;
    }
    kmq_points pts = {nd, kmq_hist_keys(h), kmq_hist_weights(h)};
    kmq_kmeans_opts opts = {.k = (size_t)p->k,
                            .restarts = p->restarts,
                            .max_iter = p->max_iter,
                            .tol = p->tol,
                            .init =
                                p->init == KMQ_SEED_RANDOM ? KMQ_INIT_RANDOM : KMQ_INIT_KMEANSPP,
                            .seed = p->seed};
    st = kmq_kmeans_fit(&pts, &opts, &par, &fit, err);
    if (st != KMQ_OK)
        goto done;
    size_t ke = fit.k_effective;
    r.k = (int)ke;
    r.inertia = fit.inertia;
    r.iterations = fit.iterations;
    r.converged = fit.converged;
    r.centers = kmq__alloc_array(ke, 3 * sizeof *r.centers);
    r.sizes = kmq__alloc_array(ke, sizeof *r.sizes);
    r.labels = kmq__alloc_array(n, 1);
    uint32_t *idx = kmq__alloc_array(n, sizeof *idx);
    if (!r.centers || !r.sizes || !r.labels || !idx) {
        kmq__free(idx);
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the result of %zu colours", n);
        goto done;
    }
    memcpy(r.centers, fit.centers, ke * 3 * sizeof *r.centers);
    memcpy(r.sizes, fit.sizes, ke * sizeof *r.sizes);
    if (kmq_hist_index_rgb(h, rgb, n, idx)) {
        for (size_t i = 0; i < n; i++)
            r.labels[i] = fit.labels[idx[i]];
    } else {
        /* Colours of weight 0 are not in the histogram: label every colour
         * by the final centres (the same nearest-centre rule). */
        st = label_colours(rgb, n, fit.centers, ke, &par, r.labels, NULL, err);
    }
    kmq__free(idx);
done:
    kmq_fit_clear(&fit);
    kmq_hist_free(h);
    if (st != KMQ_OK) {
        kmq_result_free(&r);
        return st;
    }
    *out = r;
    return KMQ_OK;
}

KMQ_EXPORT int kmq_kmeans_rgb(const uint8_t *rgb, const uint64_t *weights, size_t n,
                              const kmq_params *p, kmq_result *out, char *msg, size_t msglen)
{
    if (!p || !out || (n > 0 && !rgb))
        return bad_arg("kmq_kmeans_rgb: rgb, params and result must not be NULL", msg, msglen);
    kmq_err err;
    kmq_err_clear(&err);
    return report(fit_colours(rgb, weights, n, p, out, &err), &err, msg, msglen);
}

KMQ_EXPORT void kmq_result_free(kmq_result *out)
{
    if (!out)
        return;
    kmq__free(out->centers);
    kmq__free(out->sizes);
    kmq__free(out->labels);
    memset(out, 0, sizeof *out);
}

KMQ_EXPORT int kmq_assign_rgb(const uint8_t *rgb, size_t n, const double *centers, int k,
                              int threads, uint8_t *labels, double *inertia, char *msg,
                              size_t msglen)
{
    if (!centers || (n > 0 && (!rgb || !labels)))
        return bad_arg("kmq_assign_rgb: rgb, centers and labels must not be NULL", msg, msglen);
    if (k < 1 || k > KMQ_MAX_K || threads < 0)
        return bad_arg("kmq_assign_rgb: k must be 1..256 and threads >= 0", msg, msglen);
    if (n == 0) {
        if (inertia)
            *inertia = 0.0;
        return 0;
    }
    kmq_err err;
    kmq_err_clear(&err);
    kmq_par par = kmq_par_make(threads);
    kmq_status st = label_colours(rgb, n, centers, (size_t)k, &par, labels, inertia, &err);
    return report(st, &err, msg, msglen);
}

KMQ_EXPORT int kmq_quantize_rgb(const uint8_t *rgb, size_t width, size_t height,
                                const kmq_params *p, uint8_t *palette, int *ncolors, uint8_t *index,
                                double *inertia, char *msg, size_t msglen)
{
    if (!rgb || !p || !palette || !ncolors || !index)
        return bad_arg("kmq_quantize_rgb: no argument but inertia and msg may be NULL", msg,
                       msglen);
    if (width == 0 || height == 0 || width > SIZE_MAX / 3 / height)
        return bad_arg("kmq_quantize_rgb: width and height must be >= 1", msg, msglen);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_result r = {0};
    size_t n = width * height;
    kmq_status st = fit_colours(rgb, NULL, n, p, &r, &err);
    if (st != KMQ_OK)
        return report(st, &err, msg, msglen);
    for (size_t j = 0; j < (size_t)r.k * 3; j++)
        palette[j] = kmq__round_u8(r.centers[j]);
    memcpy(index, r.labels, n);
    *ncolors = r.k;
    if (inertia)
        *inertia = r.inertia;
    kmq_result_free(&r);
    return 0;
}
