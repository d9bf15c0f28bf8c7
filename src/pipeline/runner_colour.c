/* runner_colour.c — the colour side of one image (layer L3, part of the
 * runner module; runner_colour.h says what). Serial but for the one
 * parallel loop of kmq__colours_prepare. */
#include "runner_colour.h"

#include "kmq/oklab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void kmq__colours_free(kmq__colours *c)
{
    kmq__free(c->lab);
    kmq__free(c->grid_keys);
    kmq__free(c->grid_weights);
    kmq__free(c->grid_of);
    kmq__free(c->grid_labels);
    c->lab = NULL;
    c->grid_keys = NULL;
    c->grid_weights = NULL;
    c->grid_of = NULL;
    c->grid_labels = NULL;
}

/* The 0xRRGGBB a key shows: itself, or an RGBA key composited. */
static uint32_t shown_rgb(const kmq__colours *c, uint32_t key)
{
    if (!c->rgba)
        return key;
    uint8_t px[4] = {(uint8_t)(key >> 24), (uint8_t)(key >> 16), (uint8_t)(key >> 8), (uint8_t)key},
            rgb[3];
    kmq__composite_rgba(px, 1, c->background, rgb);
    return (uint32_t)rgb[0] << 16 | (uint32_t)rgb[1] << 8 | rgb[2];
}

kmq_status kmq__colours_prepare(kmq__colours *c, const kmq_points *all, kmq_space space,
                                const kmq_par *par, kmq_points *grid, kmq_err *err)
{
    const size_t n = all->n;
    const bool oklab = space == KMQ_SPACE_OKLAB && !c->rgba;
    uint64_t *pairs = oklab ? kmq__alloc_array(n, sizeof *pairs) : NULL;
    c->lab = kmq__alloc_array(n, 3 * sizeof *c->lab);
    if (!c->lab || (oklab && !pairs)) {
        kmq__free(pairs);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory converting %zu colours to OKLab", n);
    }
    const uint32_t *keys = all->keys;
    const kmq__colours *cc = c;
    float *lab_out = c->lab;
#ifdef _OPENMP
#pragma omp parallel for num_threads(par->threads) schedule(static) default(none)                  \
    shared(keys, lab_out, pairs, cc) firstprivate(n, oklab)
#else
    (void)par;
#endif
    for (size_t i = 0; i < n; i++) {
        double lab[3];
        kmq_oklab_from_rgb_key(shown_rgb(cc, keys[i]), lab);
        for (int q = 0; q < 3; q++)
            lab_out[3 * i + (size_t)q] = (float)lab[q];
        if (oklab) /* n <= 2^24: the colour's index fits below the key */
            pairs[i] = (uint64_t)kmq_oklab_grid_key(lab) << 32 | (uint64_t)i;
    }
    if (!oklab)
        return KMQ_OK;
    qsort(pairs, n, sizeof *pairs, compare_u64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += i == 0 || (pairs[i] >> 32) != (pairs[i - 1] >> 32);
    c->grid_keys = kmq__alloc_array(m, sizeof *c->grid_keys);
    c->grid_weights = kmq__calloc(m, sizeof *c->grid_weights);
    c->grid_of = kmq__alloc_array(n, sizeof *c->grid_of);
    c->grid_labels = kmq__alloc(m);
    if (!c->grid_keys || !c->grid_weights || !c->grid_of || !c->grid_labels) {
        kmq__free(pairs);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu OKLab points", m);
    }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (i > 0 && (pairs[i] >> 32) != (pairs[i - 1] >> 32))
            j++;
        uint32_t colour = (uint32_t)pairs[i];
        c->grid_keys[j] = (uint32_t)(pairs[i] >> 32);
        c->grid_weights[j] += all->weights[colour];
        c->grid_of[colour] = (uint32_t)j;
    }
    kmq__free(pairs);
    *grid = (kmq_points){m, c->grid_keys, c->grid_weights};
    return KMQ_OK;
}

/* The smallest value v of `bits` (non-negative floats as their bit
 * patterns, which order as the floats do) such that the weights of the
 * values <= v reach `need`: a weighted selection in two passes of 16 bits,
 * exact, O(n). */
static float weighted_select(const uint32_t *bits, const uint64_t *weights, size_t n, uint64_t need,
                             uint64_t *hist)
{
    uint32_t prefix = 0;
    for (int pass = 0; pass < 2; pass++) {
        memset(hist, 0, 65536 * sizeof *hist);
        for (size_t i = 0; i < n; i++) {
            if (pass == 1 && bits[i] >> 16 != prefix)
                continue;
            hist[pass == 0 ? bits[i] >> 16 : bits[i] & 0xffff] += weights[i];
        }
        size_t b = 0;
        for (; b < 65535 && hist[b] < need; b++)
            need -= hist[b];
        prefix = pass == 0 ? (uint32_t)b : prefix << 16 | (uint32_t)b;
    }
    float v;
    memcpy(&v, &prefix, sizeof v);
    return v;
}

/* The written image's colour difference (kmq_k_result.delta_e_*): per
 * distinct colour, the OKLab distance to its palette colour times 100;
 * mean over pixels, and the 95th percentile (the smallest difference that
 * at least 95 % of the pixels do not exceed). */
kmq_status kmq__colour_difference(const kmq__colours *c, const kmq_points *all,
                                  const uint8_t *labels, uint64_t pixels, kmq_k_result *r,
                                  kmq_err *err)
{
    float pal[KMQ_MAX_K * 3];
    for (size_t j = 0; j < r->k_effective; j++) {
        const kmq_palette_entry *e = &r->palette[j];
        uint32_t key = (uint32_t)e->rgb[0] << 16 | (uint32_t)e->rgb[1] << 8 | e->rgb[2];
        double lab[3];
        kmq_oklab_from_rgb_key(c->rgba ? shown_rgb(c, key << 8 | e->alpha) : key, lab);
        for (int q = 0; q < 3; q++)
            pal[3 * j + (size_t)q] = (float)lab[q];
    }
    uint32_t *bits = kmq__alloc_array(all->n, sizeof *bits);
    uint64_t *hist = kmq__alloc_array(65536, sizeof *hist);
    if (!bits || !hist) {
        kmq__free(bits);
        kmq__free(hist);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory for the colour difference");
    }
    double sum = 0;
    for (size_t i = 0; i < all->n; i++) {
        const float *x = c->lab + 3 * i, *p = pal + 3 * (size_t)labels[i];
        double d0 = (double)x[0] - p[0], d1 = (double)x[1] - p[1], d2 = (double)x[2] - p[2];
        float de = (float)(100.0 * sqrt(d0 * d0 + d1 * d1 + d2 * d2));
        memcpy(&bits[i], &de, sizeof de);
        sum += (double)de * (double)all->weights[i];
    }
    r->delta_e_mean = sum / (double)pixels;
    /* ceil(0.95 * pixels) in integers (pixels < 2^57: no overflow). */
    r->delta_e_p95 = weighted_select(bits, all->weights, all->n, (pixels * 95 + 99) / 100, hist);
    kmq__free(bits);
    kmq__free(hist);
    return KMQ_OK;
}

void kmq__composite_rgba(const uint8_t *rgba, size_t npix, const uint8_t background[3],
                         uint8_t *rgb)
{
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = rgba + 4 * i;
        unsigned a = p[3];
        for (int q = 0; q < 3; q++)
            rgb[3 * i + (size_t)q] = (uint8_t)((a * p[q] + (255 - a) * background[q] + 127) / 255);
    }
}

void kmq__rgba_palette_and_error(const kmq_points *all, const kmq_fit *fit, const uint8_t *labels,
                                 uint64_t pixels, kmq_k_result *r)
{
    r->alpha = true;
    for (size_t j = 0; j < fit->k_effective; j++) {
        const double *c = fit->centers + 4 * j;
        kmq_palette_entry *e = &r->palette[j];
        e->alpha = kmq__round_u8(c[3]);
        for (int q = 0; q < 3; q++) /* straight colour: premultiplied / alpha */
            e->rgb[q] = e->alpha ? kmq__round_u8(c[q] * 255.0 / e->alpha) : 0;
    }
    /* Per colour, 255^2 times its squared RGBA error: integers, exact in
     * double (< 2^35), summed in colour order. */
    double sum = 0;
    for (size_t i = 0; i < all->n; i++) {
        uint32_t key = all->keys[i];
        const kmq_palette_entry *e = &r->palette[labels[i]];
        int64_t a = key & 0xff, pa = e->alpha, err = 255 * 255 * (a - pa) * (a - pa);
        for (int q = 0; q < 3; q++) {
            int64_t d = a * (int64_t)((key >> (24 - 8 * q)) & 0xff) - pa * (int64_t)e->rgb[q];
            err += d * d;
        }
        sum += (double)all->weights[i] * (double)err;
    }
    r->mse_output = sum / (255.0 * 255.0 * (double)pixels);
    r->psnr_db = r->mse_output > 0 ? 10.0 * log10(4.0 * 255.0 * 255.0 / r->mse_output) : 0.0;
}
