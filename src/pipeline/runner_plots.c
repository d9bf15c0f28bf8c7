/* runner_plots.c — the per-image charts and preview of the HTML report
 * (layer L3, part of the runner).
 *
 * Called once per image by runner.c after the map pass, while the distinct
 * colours and their labels for every k are still in memory (the summary
 * alone cannot give the colour-space chart). Everything else drawn here
 * comes from the summary, formatted by the plot module (L2), which knows
 * nothing of images or summaries.
 *
 * Files (in the image's folder), by the job's `report` key: none writes
 * none of them; light only thumb.jpg (the pages draw their charts inline
 * from the summary); full all of them:
 *   thumb.jpg          the input, longest side KMQ_THUMB_SIDE (light, full)
 *   preview.jpg        the input, longest side KMQ_PREVIEW_SIDE, for the report
 *   elbow.svg          inertia and PSNR against k, the elbow marked (>= 3 k)
 *   restarts.svg       every restart's inertia per k, best and worst marked
 *   kK.palette.svg     the palette of k, widths by pixel share
 *   kK.colors.svg      a colour sample in RGB space coloured by cluster,
 *                      for every k when the job has at most
 *                      KMQ_PLOT_ALL_COLOURS_MAX_K k values, else for the
 *                      elbow k (the middle k of the list when there is no
 *                      elbow); a stale one of a k no longer featured is
 *                      removed.
 *
 * Colour sample. Up to KMQ_PLOT_SAMPLE distinct colours, drawn without
 * replacement with probability growing with their pixel count (weighted
 * reservoir sampling, Efraimidis & Spirakis 2006: colour i gets the key
 * log(u_i) / w_i with u_i uniform in (0, 1]; the colours with the largest
 * keys are kept). The uniforms come from kmq_rng keyed (seed, 0, 2^64 - 2),
 * a stream no fit uses (the fit sample uses 2^64 - 1), in colour order, so
 * the sample is the same for any thread count. Ties of keys go to the
 * lower colour index. Frequent colours dominate, as they do in the image,
 * while rare colours still appear.
 *
 * Serial; no parallel region.
 */
#include "runner_plots.h"

#include "kmq/outputs.h"
#include "kmq/fsx.h"
#include "kmq/plot.h"
#include "kmq/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Min-heap of (key, index) by key, ties: the higher index is "smaller"
 * (evicted first), so lower indices win ties. */
typedef struct keyed {
    double key;
    size_t index;
} keyed;

static bool key_less(const keyed *a, const keyed *b)
{
    return a->key < b->key || (a->key == b->key && a->index > b->index);
}

static void sift_down(keyed *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key_less(&h[l], &h[m]))
            m = l;
        if (r < n && key_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        keyed t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(keyed *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!key_less(&h[i], &h[p]))
            return;
        keyed t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int compare_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Indices (ascending) of up to `cap` colours of `all`, drawn as described
 * at the top of the file, into idx; *n gets the count. */
static kmq_status draw_colour_sample(const kmq_points *all, uint64_t seed, size_t cap, size_t *idx,
                                     size_t *n, kmq_err *err)
{
    if (all->n <= cap) {
        for (size_t i = 0; i < all->n; i++)
            idx[i] = i;
        *n = all->n;
        return KMQ_OK;
    }
    keyed *heap = kmq__alloc_array(cap, sizeof *heap);
    if (!heap)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory drawing a colour sample");
    kmq_rng rng;
    kmq_rng_init(&rng, seed, 0, UINT64_MAX - 1);
    size_t used = 0;
    for (size_t i = 0; i < all->n; i++) {
        double u = 1.0 - kmq_rng_uniform(&rng); /* (0, 1]: log is finite */
        keyed k = {log(u) / (double)all->weights[i], i};
        if (used < cap) {
            heap[used] = k;
            sift_up(heap, used++);
        } else if (key_less(&heap[0], &k)) {
            heap[0] = k;
            sift_down(heap, used, 0);
        }
    }
    for (size_t i = 0; i < used; i++)
        idx[i] = heap[i].index;
    qsort(idx, used, sizeof *idx, compare_index);
    *n = used;
    kmq__free(heap);
    return KMQ_OK;
}

/* Whether k index i gets a colour-space chart. */
static bool featured(const kmq_summary *s, size_t i)
{
    if (s->nresults <= KMQ_PLOT_ALL_COLOURS_MAX_K)
        return true;
    if (s->has_elbow)
        return s->results[i].k == s->elbow_k;
    return i == (s->nresults - 1) / 2;
}

/* dir/name, or NULL with KMQ_E_NOMEM set. */
static char *file_in(const char *dir, const char *name, kmq_err *err)
{
    char *p = kmq_fsx_join(dir, name);
    if (!p)
        kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    return p;
}

static kmq_status write_elbow(const char *dir, const kmq_summary *s, const char *title,
                              kmq_err *err)
{
    size_t n = s->nresults;
    size_t *k = kmq__alloc_array(n, sizeof *k);
    double *inertia = kmq__alloc_array(n, sizeof *inertia);
    double *psnr = kmq__alloc_array(n, sizeof *psnr);
    char *path = file_in(dir, KMQ_ELBOW_SVG, err);
    kmq_status st = KMQ_OK;
    if (!k || !inertia || !psnr || !path) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    size_t elbow = KMQ_PLOT_NONE;
    for (size_t i = 0; i < n; i++) {
        const kmq_k_result *r = &s->results[i];
        k[i] = r->k;
        inertia[i] = r->inertia;
        psnr[i] = r->mse_output > 0 ? r->psnr_db : NAN; /* lossless: no point */
        if (s->has_elbow && r->k == s->elbow_k)
            elbow = i;
    }
    st = kmq_plot_elbow(path, title, k, inertia, psnr, n, elbow, err);
done:
    kmq__free(k);
    kmq__free(inertia);
    kmq__free(psnr);
    kmq__free(path);
    return st;
}

static kmq_status write_restarts(const char *dir, const kmq_summary *s, const char *title,
                                 kmq_err *err)
{
    kmq_plot_strip *strips = kmq__alloc_array(s->nresults, sizeof *strips);
    char *path = file_in(dir, KMQ_RESTARTS_SVG, err);
    kmq_status st = KMQ_OK;
    if (!strips || !path) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < s->nresults; i++) {
        const kmq_k_result *r = &s->results[i];
        strips[i] = (kmq_plot_strip){.k = r->k,
                                     .inertia = r->restart_inertia,
                                     .n = (size_t)r->restarts,
                                     .best = (size_t)r->best_restart};
    }
    st = kmq_plot_restarts(path, title, strips, s->nresults, err);
done:
    kmq__free(strips);
    kmq__free(path);
    return st;
}

static kmq_status write_palette(const char *dir, const kmq_k_result *r, kmq_err *err)
{
    uint8_t rgb[KMQ_MAX_K * 3];
    uint64_t pixels[KMQ_MAX_K];
    for (size_t j = 0; j < r->k_effective; j++) {
        memcpy(rgb + 3 * j, r->palette[j].rgb, 3);
        pixels[j] = r->palette[j].pixels;
    }
    char name[48], title[64];
    kmq_k_file_name(r->k, KMQ_K_PALETTE_SVG, name);
    snprintf(title, sizeof title, "palette, k = %zu", r->k);
    char *path = file_in(dir, name, err);
    if (!path)
        return KMQ_E_NOMEM;
    kmq_status st = kmq_plot_palette(path, title, rgb, pixels, r->k_effective, err);
    kmq__free(path);
    return st;
}

/* The colour-space chart of k index i for the sampled colours. */
static kmq_status write_colours(const char *dir, const kmq_summary *s, size_t i,
                                const kmq_points *all, kmq_labels *labels, const size_t *idx,
                                size_t n, uint8_t *rgb, uint8_t *lab, kmq_err *err)
{
    const kmq_k_result *r = &s->results[i];
    const uint8_t *set = kmq_labels_set(labels, i);
    for (size_t j = 0; j < n; j++) {
        uint32_t key = all->keys[idx[j]];
        rgb[3 * j] = (uint8_t)(key >> 16);
        rgb[3 * j + 1] = (uint8_t)(key >> 8);
        rgb[3 * j + 2] = (uint8_t)key;
        lab[j] = set[idx[j]];
    }
    uint8_t pal[KMQ_MAX_K * 3];
    for (size_t j = 0; j < r->k_effective; j++)
        memcpy(pal + 3 * j, r->palette[j].rgb, 3);
    char name[48], title[160];
    kmq_k_file_name(r->k, KMQ_K_COLORS_SVG, name);
    snprintf(title, sizeof title,
             "%zu of %zu distinct colours in RGB space, coloured by cluster (k = %zu)", n, all->n,
             r->k);
    char *path = file_in(dir, name, err);
    if (!path)
        return KMQ_E_NOMEM;
    kmq_status st = kmq_plot_rgb_projections(path, title, rgb, lab, n, pal, r->k_effective, err);
    kmq__free(path);
    return st;
}

/* thumb.jpg from the pixels averaged in the histogram pass. */
static kmq_status write_thumb(const char *dir, const kmq_preview *thumb, kmq_err *err)
{
    char *path = file_in(dir, KMQ_THUMB_JPG, err);
    if (!path)
        return KMQ_E_NOMEM;
    uint32_t tw = 0, th = 0;
    const uint8_t *pixels = kmq_preview_pixels(thumb, &tw, &th);
    kmq_status st = kmq_image_save_jpeg(path, pixels, tw, th, KMQ_THUMB_QUALITY, err);
    kmq__free(path);
    return st;
}

kmq_status kmq__runner_write_plots(const char *dir, kmq_report_mode mode,
                                   const kmq_preview *preview_pixels, const kmq_preview *thumb,
                                   const kmq_summary *s, const kmq_points *all, kmq_labels *labels,
                                   kmq_err *err)
{
    if (mode == KMQ_REPORT_NONE)
        return KMQ_OK;
    kmq_status st = write_thumb(dir, thumb, err);
    if (st != KMQ_OK || mode != KMQ_REPORT_FULL)
        return st;
    size_t *idx = kmq__alloc_array(KMQ_PLOT_SAMPLE, sizeof *idx);
    uint8_t *rgb = kmq__alloc_array(KMQ_PLOT_SAMPLE, 3);
    uint8_t *lab = kmq__alloc(KMQ_PLOT_SAMPLE);
    char *preview = file_in(dir, KMQ_PREVIEW_JPG, err);
    char *title = NULL;
    if (!idx || !rgb || !lab || !preview) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the report charts");
        goto done;
    }
    const char *rel = s->rel ? s->rel : s->path;
    uint32_t pw = 0, ph = 0;
    const uint8_t *pixels = kmq_preview_pixels(preview_pixels, &pw, &ph);
    st = kmq_image_save_rgb(preview, pixels, pw, ph, err);
    if (st != KMQ_OK)
        goto done;
    title = kmq__asprintf("%s: inertia and PSNR against k", rel ? rel : "");
    if (!title) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    if (s->nresults >= 3 && (st = write_elbow(dir, s, title, err)) != KMQ_OK)
        goto done;
    kmq__free(title);
    title = kmq__asprintf("%s: inertia of every restart", rel ? rel : "");
    if (!title) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    if ((st = write_restarts(dir, s, title, err)) != KMQ_OK)
        goto done;
    size_t n = 0;
    bool sampled = false;
    for (size_t i = 0; i < s->nresults && st == KMQ_OK; i++) {
        st = write_palette(dir, &s->results[i], err);
        if (st != KMQ_OK)
            break;
        char name[48];
        kmq_k_file_name(s->results[i].k, KMQ_K_COLORS_SVG, name);
        if (!featured(s, i)) {
            char *stale = file_in(dir, name, err);
            if (!stale) {
                st = KMQ_E_NOMEM;
                break;
            }
            unlink(stale); /* from an earlier run that featured this k */
            kmq__free(stale);
            continue;
        }
        if (!sampled) {
            st = draw_colour_sample(all, s->seed, KMQ_PLOT_SAMPLE, idx, &n, err);
            sampled = true;
            if (st != KMQ_OK)
                break;
        }
        st = write_colours(dir, s, i, all, labels, idx, n, rgb, lab, err);
    }
done:
    kmq__free(idx);
    kmq__free(rgb);
    kmq__free(lab);
    kmq__free(preview);
    kmq__free(title);
    return st;
}
