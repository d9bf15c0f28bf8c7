/* runner_fit.c — one image's fits (layer L3, part of the runner module;
 * runner_fit.h): each k through the RGB, OKLab-grid or RGBA engine, or onto
 * a given palette; the result's palette and errors; the search of a
 * quality target. */
#include "runner_fit.h"

#include "kmq/oklab.h"

#include <string.h>

/* Fills everything of one k's result that comes from the fit and the
 * labelling of the distinct colours: palette (rounded centres with their
 * pixel counts), inertia, mse, mse_output (exact, in integers, over the
 * distinct colours: every pixel of a colour has the same error). */
static kmq_status finish_k_result(const kmq_points *all, kmq_space space, bool rgba,
                                  const kmq_fit *fit, const uint8_t *labels, double inertia,
                                  uint64_t pixels, kmq_k_result *r, kmq_err *err)
{
    size_t ke = fit->k_effective;
    r->k = fit->k;
    r->k_effective = ke;
    r->iterations = fit->iterations;
    r->converged = fit->converged;
    r->restarts = fit->restarts;
    r->best_restart = fit->best_restart;
    r->restart_inertia = kmq__alloc_array((size_t)fit->restarts, sizeof(double));
    r->palette = kmq__calloc(ke, sizeof *r->palette);
    if (!r->restart_inertia || !r->palette)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the results of k = %zu", fit->k);
    memcpy(r->restart_inertia, fit->restart_inertia, (size_t)fit->restarts * sizeof(double));
    r->inertia = inertia;
    r->mse = inertia / (double)pixels;
    unsigned bits = 0;
    while (((size_t)1 << bits) < ke)
        bits++;
    const uint64_t channels = rgba ? 4 : 3;
    r->raw_bytes = pixels * channels;
    r->packed_bytes = (pixels * bits + 7) / 8 + channels * (uint64_t)ke;
    for (size_t i = 0; i < all->n; i++)
        r->palette[labels[i]].pixels += all->weights[i];
    if (rgba) {
        kmq__rgba_palette_and_error(all, fit, labels, pixels, r);
        return KMQ_OK;
    }
    for (size_t j = 0; j < ke; j++) {
        if (space == KMQ_SPACE_OKLAB) {
            double lab[3];
            kmq_oklab_from_grid(fit->centers + j * 3, lab);
            kmq_oklab_to_srgb8(lab, r->palette[j].rgb);
        } else {
            for (int c = 0; c < 3; c++)
                r->palette[j].rgb[c] = kmq__round_u8(fit->centers[j * 3 + (size_t)c]);
        }
    }
    uint64_t err_output = 0;
    for (size_t i = 0; i < all->n; i++) {
        uint32_t key = all->keys[i];
        const uint8_t *p = r->palette[labels[i]].rgb;
        int64_t dr = (int64_t)(key >> 16) - p[0];
        int64_t dg = (int64_t)((key >> 8) & 0xff) - p[1];
        int64_t db = (int64_t)(key & 0xff) - p[2];
        /* <= 3 * 255^2 * 2^64 would overflow only beyond 2^45 pixels. */
        err_output += all->weights[i] * (uint64_t)(dr * dr + dg * dg + db * db);
    }
    r->mse_output = (double)err_output / (double)pixels;
    r->psnr_db = r->mse_output > 0 ? 10.0 * log10(3.0 * 255.0 * 255.0 / r->mse_output) : 0.0;
    return KMQ_OK;
}

/* Fits k = spec->k[i] (or maps to the given palette's), labels every
 * distinct colour into `labels` and fills `r`. The fit of a k does not
 * depend on which other k are fitted: its restarts draw from (seed, k, r). */
kmq_status kmq__fit_k(const kmq__fit_env *e, size_t i, uint8_t *labels, kmq_k_result *r,
                      kmq_err *err)
{
    const kmq_job_spec *spec = e->spec;
    if (kmq__run_cancelled(e->opts))
        return kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
    e->prog->stage = "fit";
    e->prog->k = spec->k[i];
    kmq__run_progress(e->opts, e->prog, e->t_run);
    double t_fit = kmq_par_now_s();
    kmq_kmeans_opts ko = {.k = spec->k[i],
                          .restarts = spec->restarts,
                          .max_iter = spec->max_iter,
                          .tol = spec->tol,
                          .init = spec->init,
                          .seed = e->seed,
                          .cancel = e->opts->cancel};
    const kmq_par *par = &e->opts->par;
    kmq_fit fit = {0};
    double inertia = 0;
    kmq_status st;
    /* Labels of the points fitted: the colours', or the grid points'. */
    const uint32_t *grid_of = e->colours->grid_of;
    uint8_t *fit_labels = grid_of ? e->colours->grid_labels : labels;
    if (e->colours->rgba) {
        /* RGBA colours (alpha kept): the premultiplied fit, on every colour. */
        st = kmq_kmeans_fit_rgba(e->all, &ko, par, &fit, err);
        if (st == KMQ_OK) {
            memcpy(labels, fit.labels, e->all->n);
            inertia = fit.inertia;
        }
    } else if (e->jp) {
        /* labels and inertia are the given palette's */
        st = kmq__given_palette_fit(e->prep_all, kmq__job_palette_k(e->jp, i), spec->k[i], par,
                                    labels, &fit, err);
        inertia = fit.inertia;
    } else {
        const kmq_kmeans_prepared *prep = e->prep_sample ? e->prep_sample : e->prep_all;
        st = kmq_kmeans_fit_prepared(prep, &ko, par, &fit, err);
        if (st == KMQ_OK && e->prep_sample) {
            /* The fit saw a sample: every colour of the image needs its label. */
            st = kmq_kmeans_assign_prepared(e->prep_all, fit.centers, fit.k_effective, par,
                                            fit_labels, &inertia, err);
        } else if (st == KMQ_OK) {
            /* The fit saw every point: its labels are the assignment's. */
            memcpy(fit_labels, fit.labels, e->fit_all->n);
        }
        /* Without sampling the fit's own final inertia is the same sum over
         * the same points; keep it so the summary shows the fit's number. */
        if (e->fit_pts->n == e->fit_all->n)
            inertia = fit.inertia;
        /* Each colour takes its grid point's label (space = oklab). */
        for (size_t c = 0; st == KMQ_OK && grid_of && c < e->all->n; c++)
            labels[c] = fit_labels[grid_of[c]];
    }
    if (st == KMQ_OK)
        st = finish_k_result(e->all, e->space, e->colours->rgba, &fit, labels, inertia, e->pixels,
                             r, err);
    if (st == KMQ_OK)
        st = kmq__colour_difference(e->colours, e->all, labels, e->pixels, r, err);
    kmq_fit_clear(&fit);
    r->fit_s = kmq_par_now_s() - t_fit;
    return st;
}

/* Whether result r's written image reaches the target (lossless always does). */
static bool reaches(const kmq_k_result *r, double target_psnr)
{
    return r->mse_output == 0 || r->psnr_db >= target_psnr;
}

/* Fits position i of the k list for the quality target into `scratch`,
 * lists it in s->tried, and keeps it as s->results[0] (labels in set 0)
 * when it reaches the target (the search only fits below its best hit) or
 * when it is the list's last and nothing has reached (`keep_last`). */
static kmq_status try_target_k(const kmq__fit_env *e, size_t i, uint8_t *scratch, bool keep_last,
                               kmq_summary *s, bool *hit, kmq_err *err)
{
    kmq_k_result r = {0};
    kmq_status st = kmq__fit_k(e, i, scratch, &r, err);
    *hit = false;
    if (st != KMQ_OK) {
        kmq_k_result_clear(&r);
        return st;
    }
    s->tried[s->ntried++] = (kmq_target_try){r.k, r.mse_output, r.psnr_db};
    *hit = reaches(&r, e->spec->target_psnr);
    if (*hit || (keep_last && i == e->spec->nk - 1)) {
        kmq_k_result_clear(&s->results[0]);
        s->results[0] = r;
        memcpy(kmq_labels_set(e->labels, 0), scratch, e->all->n);
    } else {
        kmq_k_result_clear(&r);
    }
    return KMQ_OK;
}

/* The quality target: the smallest k of the list whose written image
 * reaches spec->target_psnr, into s->results[0] and label set 0. The error
 * falls as k grows (not strictly: k-means finds local optima), so the list
 * is probed at positions 0, 1, 3, 7, ... until one reaches (the cost is
 * that of the largest k fitted, at most about twice the answer), then
 * bisected between the last miss and that hit. Every position below the
 * answer that the search leaves is one it fitted and saw miss, so the k
 * before the answer in the list always misses: the answer is exactly what
 * fitting the whole list and taking the first k to reach after a miss
 * would give, in about 2 log2(n) fits. When no k reaches, the largest is
 * written. Every k fitted is listed in s->tried. */
kmq_status kmq__search_target(const kmq__fit_env *e, kmq_summary *s, kmq_err *err)
{
    const size_t n = e->spec->nk;
    const double target = e->spec->target_psnr;
    uint8_t *scratch = kmq__alloc(e->all->n ? e->all->n : 1); /* labels of the k on trial */
    s->tried = kmq__calloc(n, sizeof *s->tried);
    if (!scratch || !s->tried) {
        kmq__free(scratch);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the quality target's search");
    }
    s->target_psnr = target;
    size_t best = SIZE_MAX; /* smallest position seen to reach */
    size_t lo = 0;          /* every position below lo was fitted and missed */
    bool hit = false;
    kmq_status st = KMQ_OK;
    for (size_t probe = 0; st == KMQ_OK;) { /* 0, 1, 3, 7, ..., n - 1 */
        st = try_target_k(e, probe, scratch, best == SIZE_MAX, s, &hit, err);
        if (hit) {
            best = probe;
            break;
        }
        lo = probe + 1;
        if (probe == n - 1)
            break; /* nothing reaches: the largest k is kept */
        probe = 2 * probe + 1 < n - 1 ? 2 * probe + 1 : n - 1;
    }
    while (st == KMQ_OK && best != SIZE_MAX && lo < best) {
        size_t mid = lo + (best - lo) / 2;
        st = try_target_k(e, mid, scratch, false, s, &hit, err);
        if (hit)
            best = mid;
        else
            lo = mid + 1;
    }
    kmq__free(scratch);
    if (st != KMQ_OK)
        return st;
    s->target_reached = best != SIZE_MAX;
    /* Fitted in search order; listed ascending by k. */
    for (size_t i = 1; i < s->ntried; i++)
        for (size_t j = i; j > 0 && s->tried[j - 1].k > s->tried[j].k; j--) {
            kmq_target_try t = s->tried[j];
            s->tried[j] = s->tried[j - 1];
            s->tried[j - 1] = t;
        }
    return KMQ_OK;
}
