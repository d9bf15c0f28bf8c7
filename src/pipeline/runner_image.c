/* runner_image.c — one image end to end (layer L3, part of the runner
 * module; the pipeline is drawn at the top of runner.c): open, histogram
 * pass, one fit per k on the distinct colours, map pass into every PNG, the
 * summary's numbers. Errors carry no path here: runner.c adds it.
 *
 * Threads: the fit and the labelling are OpenMP drivers called from here,
 * one at a time, with the run's budget. The passes read strips on this
 * thread (libvips decodes with its own pool, sized by the CLI from the same
 * budget); the map pass is itself a driver: each strip is labelled and
 * encoded in one region (encode_strip), never while libvips is working.
 */
#include "kmq/outputs.h"

#include "internal.h"
#include "runner_internal.h"
#include "kmq/dither.h"
#include "kmq/elbow.h"
#include "kmq/fsx.h"
#include "kmq/hist.h"
#include "kmq/image.h"
#include "kmq/kmeans.h"
#include "kmq/labels.h"
#include "kmq/hist_rgba.h"
#include "kmq/pngout.h"
#include "kmq/preview.h"
#include "kmq/rng.h"
#include "runner_colour.h"
#include "runner_fit.h"
#include "runner_plots.h"
#include "strip_reader.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
/* ------------------------------------------------------------------ */
/* One image                                                           */

/* Memory of the map pass. The buffers that hold one strip are sized from
 * one budget, so that their total depends neither on the image width nor on
 * the number of k values (up to 256, with up to two files each). Per pixel
 * of a strip they take:
 *   6 bytes       the strip reader's two decoded strips (RGB)
 *   nk bytes      the strip's labels for every k (label_strip)
 *   2 per writer  each PNG writer's staging capacity (kmq_png_stage sizes it
 *                 for incompressible rows; only the compressed bytes are
 *                 ever touched)
 * The strip is as tall as keeps that under MAP_STRIP_BUDGET, at most the
 * image's own strip height (128 rows, 8 MiB of pixels) and at least one
 * row. So the budget holds while one row fits: up to 26,092 pixels wide
 * with 256 k and both file kinds (1,286 bytes a pixel). 32 MiB keeps 128
 * rows up to 14,563 pixels wide for 4 k and one file kind, and for 256 k
 * still gives strips of at least 13,000 pixels to share among threads.
 * Not covered, because it is per writer and the same whatever the strip
 * height: zlib's deflate state (about 256 KiB), libpng's row buffer (one
 * row), and the staging buffer's fixed slack (untouched unless needed).
 * With dither, each indexed writer also holds one row of error and one row
 * of indices (7 bytes a pixel of one row, whatever the strip height): that
 * comes out of the budget first. */
#define MAP_STRIP_BUDGET ((uint64_t)32 << 20)

/* Whether the indexed PNGs are dithered (strength 0 diffuses nothing: the
 * plain nearest-centre image, bytes and all). An image that keeps its
 * alpha is not: the diffusion is of RGB error (docs/design.md §19). */
static bool dithers(const kmq_job_spec *spec, bool rgba)
{
    return spec->dither == KMQ_DITHER_FS && spec->dither_strength > 0 &&
           (spec->save & KMQ_SAVE_INDEXED) && !rgba;
}

/* Squared error (levels^2, 3 channels) above which dither damps error:
 * four times the image's mean squared error at this k, i.e. errors beyond
 * twice the typical one (edges the palette cannot follow). Tuned on the
 * bundled photos at k = 2..64 (docs/design.md, Dithering). */
static double dither_limit(const kmq_k_result *r)
{
    return 4.0 * r->mse_output;
}

static uint32_t map_strip_rows(const kmq_job_spec *spec, size_t nk, uint32_t width, bool rgba)
{
    uint64_t kinds =
        (spec->save & KMQ_SAVE_INDEXED ? 1u : 0u) + (spec->save & KMQ_SAVE_LABELS ? 1u : 0u);
    /* nk <= KMQ_MAX_K (job check): <= 1,286 bytes a pixel, width < 2^31. */
    uint64_t row_bytes = (uint64_t)width * ((rgba ? 8 : 6) + nk + 2 * kinds * nk);
    uint64_t fixed = dithers(spec, rgba) ? (uint64_t)width * 7 * nk : 0;
    if (fixed >= MAP_STRIP_BUDGET)
        return 1;
    uint64_t rows = (MAP_STRIP_BUDGET - fixed) / row_bytes;
    if (rows < 1)
        return 1;
    return rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows;
}

/* One PNG being written in the map pass, and the label set it shows. */
typedef struct map_writer {
    kmq_png *png;
    size_t set;
    kmq_dither *dither;  /* an indexed PNG under dither: its rows in order */
    uint8_t *dither_row; /* one row of dithered indices */
    kmq_status status;   /* outcome of this strip's rows */
    kmq_err err;
} map_writer;

/* Everything one image needs while it is processed; freed in one place. */
typedef struct image_work {
    kmq_image *img;
    kmq_hist *hist;
    kmq_labels *labels;
    kmq__strip_reader *reader; /* the pass in progress */
    kmq_preview *preview;      /* averaged from the histogram pass, for the report */
    kmq_preview *thumb;        /* likewise, thumb.jpg (report = light or full) */
    const uint8_t *strip;      /* its current strip (owned by the reader) */
    uint8_t *label_strip;      /* nk * strip_rows * width: labels of one strip per k */
    uint8_t **label_row_ptr;   /* strip_rows * nk pointers into label_strip, row-major */
    kmq_status *row_status;    /* strip_rows: map kernel outcome per row */
    map_writer *writers;       /* every open PNG writer, in (k, kind) order */
    size_t nwriters;
    kmq_png **indexed;   /* nk writers (NULL when not saved) */
    kmq_png **labelmaps; /* nk writers (NULL when not saved) */
    uint64_t *sample_weights;
    uint32_t *sample_keys;
    kmq_kmeans_prepared *prep_all;    /* every point fitted: built once, read by every k */
    kmq_kmeans_prepared *prep_sample; /* the sample's points (NULL: no sample) */
    kmq__colours colours;             /* OKLab values; the grid of space = oklab */
    kmq_hist_rgba *hist4;             /* instead of hist when the image keeps alpha */
    uint8_t *flat;                    /* one strip composited to RGB (alpha kept: pictures) */
} image_work;

static void image_work_free(image_work *w, size_t nk)
{
    /* Before the histogram and the sample: they hold the points' keys. */
    kmq_kmeans_prepared_free(w->prep_all);
    kmq_kmeans_prepared_free(w->prep_sample);
    for (size_t i = 0; w->indexed && i < nk; i++)
        kmq_png_abort(w->indexed[i]);
    for (size_t i = 0; w->labelmaps && i < nk; i++)
        kmq_png_abort(w->labelmaps[i]);
    for (size_t j = 0; j < w->nwriters; j++) {
        kmq_dither_free(w->writers[j].dither);
        kmq__free(w->writers[j].dither_row);
    }
    kmq__free(w->indexed);
    kmq__free(w->labelmaps);
    kmq_labels_free(w->labels);
    kmq_hist_free(w->hist);
    kmq__strip_reader_free(w->reader); /* joins its thread: before the image goes */
    kmq_image_free(w->img);
    kmq_preview_free(w->preview);
    kmq_preview_free(w->thumb);
    kmq__free(w->label_strip);
    kmq__free(w->label_row_ptr);
    kmq__free(w->row_status);
    kmq__free(w->writers);
    kmq__free(w->sample_weights);
    kmq__free(w->sample_keys);
    kmq__colours_free(&w->colours);
    kmq_hist_rgba_free(w->hist4);
    kmq__free(w->flat);
    memset(w, 0, sizeof *w);
}

/* Starts a pass: strips decoded one ahead on a reader thread when the
 * budget has more than one thread. */
static kmq_status start_pass(image_work *w, const kmq_run_opts *opts, kmq_err *err)
{
    kmq__strip_reader_free(w->reader);
    w->reader = NULL;
    return kmq__strip_reader_start(w->img, opts->par.threads > 1, &w->reader, err);
}

/* Pass 1: every pixel into the histogram. */
static kmq_status histogram_pass(image_work *w, const kmq_run_opts *opts, kmq_err *err)
{
    kmq_status st = start_pass(w, opts, err);
    if (st != KMQ_OK)
        return st;
    const kmq_image_info *info = kmq_image_get_info(w->img);
    for (;;) {
        uint32_t rows = 0;
        st = kmq__strip_reader_next(w->reader, &w->strip, &rows, err);
        if (st != KMQ_OK)
            return st;
        if (rows == 0)
            return KMQ_OK;
        size_t npix = (size_t)rows * info->width;
        const uint8_t *rgb = w->strip;
        if (w->hist4) {
            st = kmq_hist_rgba_add(w->hist4, w->strip, npix, err);
            if (w->flat) { /* the pictures show it composited */
                kmq__composite_rgba(w->strip, npix, w->colours.background, w->flat);
                rgb = w->flat;
            }
        } else {
            st = kmq_hist_add_rgb(w->hist, w->strip, npix, err);
        }
        if (st != KMQ_OK)
            return st;
        if (w->preview)
            kmq_preview_add_rows(w->preview, rgb, rows);
        if (w->thumb)
            kmq_preview_add_rows(w->thumb, rgb, rows);
        if (kmq__run_cancelled(opts))
            return kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
    }
}

/* Draws `sample` pixels (with replacement, uniformly over all pixels) from
 * the histogram: a reproducible multinomial sample that needs no second
 * read of the image. The stream is keyed (seed, 0, UINT64_MAX), apart from
 * every restart's stream. */
static kmq_status draw_sample(image_work *w, const kmq_points *all, uint64_t sample, uint64_t seed,
                              kmq_points *out, kmq_err *err)
{
    size_t n = all->n;
    uint64_t *cum = kmq__alloc_array(n, sizeof *cum);
    uint64_t *hits = kmq__calloc(n, sizeof *hits);
    kmq_status st = KMQ_OK;
    if (!cum || !hits) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory drawing a sample of %" PRIu64, sample);
        goto done;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += all->weights[i];
        cum[i] = total;
    }
    kmq_rng rng;
    kmq_rng_init(&rng, seed, 0, UINT64_MAX);
    for (uint64_t s = 0; s < sample; s++) {
        uint64_t pixel = kmq_rng_below(&rng, total);
        size_t lo = 0, hi = n - 1; /* first i with cum[i] > pixel */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cum[mid] > pixel)
                hi = mid;
            else
                lo = mid + 1;
        }
        hits[lo]++;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += hits[i] != 0;
    w->sample_keys = kmq__alloc_array(m, sizeof *w->sample_keys);
    w->sample_weights = kmq__alloc_array(m, sizeof *w->sample_weights);
    if (!w->sample_keys || !w->sample_weights) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory drawing a sample of %" PRIu64, sample);
        goto done;
    }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (hits[i]) {
            w->sample_keys[j] = all->keys[i];
            w->sample_weights[j] = hits[i];
            j++;
        }
    }
    out->n = m;
    out->keys = w->sample_keys;
    out->weights = w->sample_weights;
done:
    kmq__free(cum);
    kmq__free(hits);
    return st;
}

static char *k_file_name(size_t k, kmq_k_file f)
{
    char name[KMQ_K_NAME_MAX];
    kmq_k_file_name(k, f, name);
    return kmq__strdup(name);
}

/* Opens one PNG writer per k and file kind the job saves, each staging
 * one strip of compressed rows (see map_pass and MAP_STRIP_BUDGET). */
static kmq_status open_writers(image_work *w, const kmq_job_spec *spec, const char *dir,
                               const kmq_summary *s, kmq_err *err)
{
    size_t nk = s->nresults;
    const kmq_image_info *info = kmq_image_get_info(w->img);
    uint32_t strip_rows = kmq_image_strip_rows(w->img);
    w->indexed = kmq__calloc(nk, sizeof *w->indexed);
    w->labelmaps = kmq__calloc(nk, sizeof *w->labelmaps);
    w->writers = kmq__calloc(2 * nk, sizeof *w->writers);
    if (!w->indexed || !w->labelmaps || !w->writers)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory opening output files");
    for (size_t i = 0; i < nk; i++) {
        const kmq_k_result *r = &s->results[i];
        kmq_status st = KMQ_OK;
        if (spec->save & KMQ_SAVE_INDEXED) {
            uint8_t pal[KMQ_MAX_K * 3], alpha[KMQ_MAX_K];
            for (size_t j = 0; j < r->k_effective; j++) {
                memcpy(pal + 3 * j, r->palette[j].rgb, 3);
                alpha[j] = r->palette[j].alpha;
            }
            char *path = kmq_fsx_join(dir, r->indexed.path);
            st = !path      ? kmq_err_set(err, KMQ_E_NOMEM, "out of memory")
                 : r->alpha ? kmq_png_open_indexed_rgba(path, info->width, info->height, pal, alpha,
                                                        r->k_effective, &w->indexed[i], err)
                            : kmq_png_open_indexed(path, info->width, info->height, pal,
                                                   r->k_effective, &w->indexed[i], err);
            kmq__free(path);
            if (st == KMQ_OK) {
                map_writer *mw = &w->writers[w->nwriters++];
                *mw = (map_writer){.png = w->indexed[i], .set = i};
                st = kmq_png_stage(w->indexed[i], strip_rows, err);
                if (st == KMQ_OK && dithers(spec, r->alpha))
                    st = kmq_dither_new(pal, r->k_effective, info->width, spec->dither_strength,
                                        dither_limit(r), &mw->dither, err);
                if (st == KMQ_OK && mw->dither) {
                    mw->dither_row = kmq__alloc(info->width);
                    if (!mw->dither_row)
                        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a dither row");
                }
            }
        }
        if (st == KMQ_OK && (spec->save & KMQ_SAVE_LABELS)) {
            char *path = kmq_fsx_join(dir, r->labels.path);
            st = path ? kmq_png_open_grey(path, info->width, info->height, &w->labelmaps[i], err)
                      : kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            kmq__free(path);
            if (st == KMQ_OK) {
                w->writers[w->nwriters++] = (map_writer){.png = w->labelmaps[i], .set = i};
                st = kmq_png_stage(w->labelmaps[i], strip_rows, err);
            }
        }
        if (st != KMQ_OK)
            return st;
    }
    return KMQ_OK;
}

/* Maps one strip to labels and encodes it: rows are labelled in parallel
 * (the map kernel, disjoint outputs), then the writers encode their rows
 * in parallel, one writer per thread at a time, into memory (kmq_png_stage:
 * no I/O in the region). The first writer to compress a row allocates
 * libpng's zlib state; a failure there lands in that writer's status, like
 * any other, and is read after the region. The bytes do not depend on
 * which thread encodes which writer. */
static void encode_strip(image_work *w, size_t nk, uint32_t rows, const kmq_par *par)
{
    const kmq_image_info *info = kmq_image_get_info(w->img);
    const size_t width = info->width, row_bytes = width * (size_t)info->channels;
    const size_t strip_rows = kmq_image_strip_rows(w->img);
    const uint8_t *strip = w->strip;
    const kmq_labels *labels = w->labels;
    uint8_t *const *row_ptr = w->label_row_ptr;
    const uint8_t *label_strip = w->label_strip;
    kmq_status *row_status = w->row_status;
    map_writer *writers = w->writers;
    const size_t nwriters = w->nwriters;
#ifdef _OPENMP
#pragma omp parallel num_threads(par->threads) default(none)                                       \
    shared(strip, labels, row_ptr, label_strip, row_status, writers)                               \
        firstprivate(nk, rows, width, row_bytes, strip_rows, nwriters)
#else
    (void)par;
#endif
    {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (uint32_t y = 0; y < rows; y++) {
            kmq_err ignored = {0}; /* map_pass redoes a failed row for its message */
            row_status[y] = kmq_labels_map_row(labels, strip + y * row_bytes, width,
                                               row_ptr + y * nk, &ignored);
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t j = 0; j < nwriters; j++) {
            map_writer *mw = &writers[j];
            kmq_err_clear(&mw->err);
            mw->status = KMQ_OK;
            for (uint32_t y = 0; y < rows && mw->status == KMQ_OK; y++) {
                if (row_status[y] != KMQ_OK)
                    break; /* the strip is lost anyway */
                const uint8_t *row = label_strip + (mw->set * strip_rows + y) * width;
                if (mw->dither) {
                    /* One writer's rows stay on one thread, in order: the
                     * error carried from row to row sees the same rows
                     * whatever the threads and the strip height. */
                    kmq_dither_row(mw->dither, strip + y * row_bytes, mw->dither_row);
                    row = mw->dither_row;
                }
                mw->status = kmq_png_write_row(mw->png, row, &mw->err);
            }
        }
    }
}

/* Pass 2: every pixel to its label for every k, strip by strip; each strip
 * is encoded in parallel, then written to the files in writer order. */
static kmq_status map_pass(image_work *w, size_t nk, const kmq_run_opts *opts, kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_status st = start_pass(w, opts, err);
    if (st != KMQ_OK)
        return st;
    const kmq_image_info *info = kmq_image_get_info(w->img);
    size_t row_bytes = (size_t)info->width * (size_t)info->channels;
    for (;;) {
        uint32_t rows = 0;
        st = kmq__strip_reader_next(w->reader, &w->strip, &rows, err);
        if (st != KMQ_OK)
            return st;
        if (rows == 0)
            return KMQ_OK;
        encode_strip(w, nk, rows, &opts->par);
        for (uint32_t y = 0; y < rows; y++)
            if (w->row_status[y] != KMQ_OK) /* serially again, for the message */
                return kmq_labels_map_row(w->labels, w->strip + y * row_bytes, info->width,
                                          w->label_row_ptr + y * nk, err);
        for (size_t j = 0; j < w->nwriters; j++) {
            if (w->writers[j].status != KMQ_OK)
                return kmq_err_set(err, w->writers[j].status, "%s", w->writers[j].err.msg);
            st = kmq_png_flush(w->writers[j].png, err);
            if (st != KMQ_OK)
                return st;
        }
        if (kmq__run_cancelled(opts))
            return kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
    }
}

static kmq_status close_writers(image_work *w, kmq_summary *s, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    for (size_t i = 0; i < s->nresults; i++) {
        kmq_k_result *r = &s->results[i];
        if (w->indexed[i]) {
            kmq_png *png = w->indexed[i];
            w->indexed[i] = NULL; /* close frees it, success or not */
            if (st == KMQ_OK)
                st = kmq_png_close(png, &r->indexed.bytes, err);
            else
                kmq_png_abort(png);
        }
        if (w->labelmaps[i]) {
            kmq_png *png = w->labelmaps[i];
            w->labelmaps[i] = NULL;
            if (st == KMQ_OK)
                st = kmq_png_close(png, &r->labels.bytes, err);
            else
                kmq_png_abort(png);
        }
    }
    return st;
}

/* Sets the file names of one result (relative to the image folder). */
static kmq_status name_files(const kmq_job_spec *spec, kmq_k_result *r, kmq_err *err)
{
    if (spec->save & KMQ_SAVE_INDEXED) {
        r->indexed.path = k_file_name(r->k, KMQ_K_INDEXED);
        r->indexed.bits_per_pixel = (int)kmq_png_bit_depth(r->k_effective);
        if (!r->indexed.path)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    if (spec->save & KMQ_SAVE_LABELS) {
        r->labels.path = k_file_name(r->k, KMQ_K_LABELS);
        r->labels.bits_per_pixel = 8;
        if (!r->labels.path)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    if (spec->save & KMQ_SAVE_PALETTE) {
        r->swatch.path = k_file_name(r->k, KMQ_K_SWATCH);
        r->swatch.bits_per_pixel = 24;
        if (!r->swatch.path)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    return KMQ_OK;
}

/* The palette swatch (save = palette); an RGBA palette shows composited
 * onto the background. */
static kmq_status write_swatch(const char *dir, const uint8_t background[3], kmq_k_result *r,
                               kmq_err *err)
{
    uint8_t pal[KMQ_MAX_K * 3];
    uint64_t pixels[KMQ_MAX_K];
    for (size_t j = 0; j < r->k_effective; j++) {
        const kmq_palette_entry *e = &r->palette[j];
        if (r->alpha)
            kmq__composite_rgba((const uint8_t[4]){e->rgb[0], e->rgb[1], e->rgb[2], e->alpha}, 1,
                                background, pal + 3 * j);
        else
            memcpy(pal + 3 * j, e->rgb, 3);
        pixels[j] = e->pixels;
    }
    char *path = kmq_fsx_join(dir, r->swatch.path);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    kmq_status st = kmq_png_write_swatch(path, pal, pixels, r->k_effective, &r->swatch.bytes, err);
    kmq__free(path);
    return st;
}

static void fill_compression(kmq_summary *s)
{
    for (size_t i = 0; i < s->nresults; i++) {
        kmq_k_result *r = &s->results[i];
        r->png_bytes = r->indexed.bytes;
        r->ratio_vs_raw = r->png_bytes ? (double)r->raw_bytes / (double)r->png_bytes : 0.0;
        r->ratio_vs_input = r->png_bytes ? (double)s->bytes / (double)r->png_bytes : 0.0;
    }
}

static void find_elbow(kmq_summary *s)
{
    s->has_elbow = false;
    if (s->nresults < 3)
        return;
    double x[KMQ_MAX_K], y[KMQ_MAX_K];
    size_t n = s->nresults < KMQ_MAX_K ? s->nresults : KMQ_MAX_K;
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)s->results[i].k;
        y[i] = s->results[i].inertia;
    }
    bool found = false;
    size_t index = 0;
    kmq_err ignored = {0};
    /* A curve Kneedle cannot read (e.g. all zero) simply has no elbow. */
    if (kmq_elbow_kneedle(x, y, n, 1.0, &found, &index, &ignored) == KMQ_OK && found) {
        s->has_elbow = true;
        s->elbow_k = s->results[index].k;
    }
}

/* Copies the config part of the summary from the job (owned copies), with
 * the config hash the runner computed for this image. */
static kmq_status fill_config(kmq_summary *s, const kmq_job_spec *spec, uint64_t seed, int threads,
                              const char *path, const char *rel, const char *hash, kmq_err *err)
{
    s->path = kmq__strdup(path);
    s->rel = kmq__strdup(rel);
    s->job = kmq__strdup(spec->name ? spec->name : "");
    s->init = kmq__strdup(spec->init == KMQ_INIT_RANDOM ? "random" : "kmeans++");
    s->identity = kmq__strdup(spec->identity == KMQ_IDENTITY_CONTENT ? "content" : "quick");
    s->k = kmq__alloc_array(spec->nk, sizeof *s->k);
    s->hash = kmq__strdup(hash);
    if (!s->path || !s->rel || !s->job || !s->init || !s->identity || !s->k || !s->hash)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    memcpy(s->k, spec->k, spec->nk * sizeof *s->k);
    s->nk = spec->nk;
    s->restarts = spec->restarts;
    s->max_iter = spec->max_iter;
    s->tol = spec->tol;
    s->seed = seed;
    s->sample = spec->sample;
    s->threads = threads;
    if (spec->dither == KMQ_DITHER_FS) {
        s->dither = kmq__strdup("floyd-steinberg");
        if (!s->dither)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        s->dither_strength = spec->dither_strength;
    }
    if (spec->space == KMQ_SPACE_OKLAB) {
        s->space = kmq__strdup("oklab");
        if (!s->space)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    if (spec->report != KMQ_REPORT_LIGHT) {
        s->report = kmq__strdup(kmq_report_mode_name(spec->report));
        if (!s->report)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    return KMQ_OK;
}

/* Processes one image into `dir` and fills `s` (ok or not). `stamp` is the
 * file as stat'ed before the hash `hash` read it; the file must keep it
 * after each pass (KMQ_E_CHANGED otherwise). Returns KMQ_OK when the image
 * is done, an image-level error (s gets the error form), or
 * KMQ_E_INTERRUPTED / KMQ_E_NOMEM from which the run stops. */
kmq_status kmq__run_image(const kmq_job_spec *spec, uint64_t seed, const kmq_input_file *in,
                          const kmq__file_stamp *stamp, const char *hash,
                          const kmq__job_palette *jp, const char *dir, const kmq_run_opts *opts,
                          kmq_progress *prog, double t_run, kmq_summary *s, kmq_err *err)
{
    double t0 = kmq_par_now_s();
    image_work w = {0};
    size_t nk = spec->nk;
    /* Results written: one per k, or the one k a quality target chooses. */
    size_t nout = spec->target_psnr > 0 ? 1 : nk;
    kmq_status st = fill_config(s, spec, seed, opts->par.threads, in->path, in->rel, hash, err);
    if (st == KMQ_OK && jp) {
        s->palette_mode = kmq__strdup(jp->mode);
        s->palette_hash = kmq__strdup(jp->hash);
        if (!s->palette_mode || !s->palette_hash)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    if (st != KMQ_OK)
        goto done;
    if (in->outside_link) {
        st = kmq_err_set(err, KMQ_E_UNREADABLE,
                         "a symbolic link that leads out of its input folder, not read under "
                         "links = inside; set links = follow to read it");
        goto done;
    }

    kmq_image_opts io = {.max_pixels = spec->max_pixels,
                         .max_decode_bytes = kmq_runner_decode_budget(spec->max_decode_bytes),
                         .formats = spec->formats,
                         .mode = opts->image_mode,
                         /* A shared or given palette is RGB: alpha is flattened there. */
                         .keep_alpha = spec->alpha == KMQ_ALPHA_KEEP && !jp};
    memcpy(io.background, spec->background, 3);
    st = kmq_image_open(in->path, &io, &w.img, err);
    if (st != KMQ_OK)
        goto done;
    const kmq_image_info *info = kmq_image_get_info(w.img);
    s->bytes = info->bytes;
    s->format = kmq__strdup(info->format);
    s->width = info->width;
    s->height = info->height;
    s->bands = info->bands;
    s->alpha_channel = info->alpha ? 1 : 0;
    s->pixels = info->pixels;
    const bool rgba = info->channels == 4;
    w.colours.rgba = rgba;
    memcpy(w.colours.background, spec->background, 3);
    if (info->alpha) {
        s->alpha = kmq__strdup(rgba ? "keep" : "flatten");
        if (!s->alpha) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
    }
    if (rgba && s->space) { /* the RGBA fit has one space: premultiplied RGBA */
        kmq__free(s->space);
        s->space = NULL;
    }
    /* Both passes read strips of the map pass's height: the buffers below,
     * the reader's and the writers' staging are all sized from it. */
    uint32_t strip_rows =
        kmq_image_limit_strip_rows(w.img, map_strip_rows(spec, nout, info->width, rgba));
    size_t strip_pixels = (size_t)strip_rows * info->width;
    w.label_strip = nout <= SIZE_MAX / strip_pixels ? kmq__alloc_array(nout, strip_pixels) : NULL;
    w.label_row_ptr = kmq__alloc_array((size_t)strip_rows * nout, sizeof *w.label_row_ptr);
    w.row_status = kmq__alloc_array(strip_rows, sizeof *w.row_status);
    s->results = kmq__calloc(nout, sizeof *s->results);
    if (!s->format || !w.label_strip || !w.label_row_ptr || !w.row_status || !s->results) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a %" PRIu32 "-pixel-wide image",
                         info->width);
        goto done;
    }
    s->nresults = nout;
    /* Row y's output for set i: label_strip + (i * strip_rows + y) * width. */
    for (size_t y = 0; y < strip_rows; y++)
        for (size_t i = 0; i < nout; i++)
            w.label_row_ptr[y * nout + i] = w.label_strip + (i * strip_rows + y) * info->width;

    prog->event = KMQ_PROGRESS_STAGE;
    prog->stage = "histogram";
    prog->k = 0;
    kmq__run_progress(opts, prog, t_run);
    double t_hist = kmq_par_now_s();
    if (rgba) {
        st = kmq_hist_rgba_new(&w.hist4, err);
        w.flat = st == KMQ_OK && spec->report != KMQ_REPORT_NONE ? kmq__alloc_array(strip_pixels, 3)
                                                                 : NULL;
        if (st == KMQ_OK && spec->report != KMQ_REPORT_NONE && !w.flat)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a strip");
    } else {
        st = kmq_hist_new(&w.hist, err);
        if (st == KMQ_OK)
            st = kmq_hist_expect(w.hist, (uint64_t)info->width * info->height, err);
    }
    /* The report's pictures come from this pass: no third decode. */
    if (st == KMQ_OK && spec->report == KMQ_REPORT_FULL)
        st = kmq_preview_new(info->width, info->height, KMQ_PREVIEW_SIDE, &w.preview, err);
    if (st == KMQ_OK && spec->report != KMQ_REPORT_NONE)
        st = kmq_preview_new(info->width, info->height, KMQ_THUMB_SIDE, &w.thumb, err);
    if (st == KMQ_OK)
        st = histogram_pass(&w, opts, err);
    if (st == KMQ_OK)
        st = rgba ? kmq_hist_rgba_finish(w.hist4, err) : kmq_hist_finish(w.hist, err);
    if (st == KMQ_OK)
        st = kmq__check_unchanged(in->path, stamp, err);
    if (st != KMQ_OK)
        goto done;
    s->histogram_s = kmq_par_now_s() - t_hist;
    kmq_points all =
        rgba ? (kmq_points){kmq_hist_rgba_size(w.hist4), kmq_hist_rgba_keys(w.hist4),
                            kmq_hist_rgba_weights(w.hist4)}
             : (kmq_points){kmq_hist_size(w.hist), kmq_hist_keys(w.hist), kmq_hist_weights(w.hist)};
    s->unique_colors = all.n;
    uint64_t pixels = rgba ? kmq_hist_rgba_pixels(w.hist4) : kmq_hist_pixels(w.hist);

    /* The points are prepared once and serve every k (the RGBA fit, which
     * sees every colour, prepares its own). */
    kmq_points fit_all = all;
    st = kmq__colours_prepare(&w.colours, &all, spec->space, &opts->par, &fit_all, err);
    kmq_points fit_pts = fit_all;
    if (st == KMQ_OK && !rgba)
        st = kmq_kmeans_prepared_new(&fit_all, &opts->par, &w.prep_all, err);
    if (st == KMQ_OK && !jp && !rgba && spec->sample > 0 && spec->sample < pixels) {
        st = draw_sample(&w, &fit_all, spec->sample, seed, &fit_pts, err);
        if (st == KMQ_OK)
            st = kmq_kmeans_prepared_new(&fit_pts, &opts->par, &w.prep_sample, err);
    }
    if (st != KMQ_OK)
        goto done;

    st = rgba ? kmq_labels_new_rgba(w.hist4, nout, &w.labels, err)
              : kmq_labels_new(w.hist, nout, &w.labels, err);
    if (st != KMQ_OK)
        goto done;
    kmq__fit_env env = {.spec = spec,
                        .seed = seed,
                        .jp = jp,
                        .all = &all,
                        .space = rgba ? KMQ_SPACE_RGB : spec->space,
                        .fit_all = &fit_all,
                        .fit_pts = &fit_pts,
                        .prep_all = w.prep_all,
                        .prep_sample = w.prep_sample,
                        .colours = &w.colours,
                        .labels = w.labels,
                        .pixels = pixels,
                        .opts = opts,
                        .prog = prog,
                        .t_run = t_run};
    if (spec->target_psnr > 0) {
        st = kmq__search_target(&env, s, err);
    } else {
        for (size_t i = 0; st == KMQ_OK && i < nk; i++)
            st = kmq__fit_k(&env, i, kmq_labels_set(w.labels, i), &s->results[i], err);
    }
    for (size_t i = 0; st == KMQ_OK && i < nout; i++)
        st = name_files(spec, &s->results[i], err);
    if (st != KMQ_OK)
        goto done;

    prog->stage = "map";
    prog->k = 0;
    kmq__run_progress(opts, prog, t_run);
    double t_map = kmq_par_now_s();
    st = open_writers(&w, spec, dir, s, err);
    if (st == KMQ_OK)
        st = map_pass(&w, nout, opts, err);
    if (st == KMQ_OK)
        st = close_writers(&w, s, err);
    for (size_t i = 0; st == KMQ_OK && i < nout; i++)
        if (spec->save & KMQ_SAVE_PALETTE)
            st = write_swatch(dir, spec->background, &s->results[i], err);
    if (st == KMQ_OK)
        st = kmq__check_unchanged(in->path, stamp, err);
    if (st != KMQ_OK)
        goto done;
    /* One pass serves every k: its time is shared out evenly. */
    double map_s = (kmq_par_now_s() - t_map) / (double)nout;
    for (size_t i = 0; i < nout; i++)
        s->results[i].map_s = map_s;
    fill_compression(s);
    find_elbow(s);
    st = kmq__runner_write_plots(dir, spec->report, w.preview, w.thumb, s, &all, w.labels, err);
    if (st != KMQ_OK)
        goto done;
    s->ok = true;

done:
    if (st != KMQ_OK && st != KMQ_E_INTERRUPTED && st != KMQ_E_NOMEM) {
        /* A pass that failed on a file that changed under it (other
         * dimensions, colours the histogram never saw, a file gone) failed
         * because of the change: say so, in the same words as the checks
         * between passes, instead of what it tripped over. */
        kmq_err changed = {0};
        if (kmq__check_unchanged(in->path, stamp, &changed) != KMQ_OK) {
            *err = changed;
            st = KMQ_E_CHANGED;
        }
    }
    image_work_free(&w, nout);
    s->total_s = kmq_par_now_s() - t0;
    return st;
}

/* Turns a failed image's summary into the error form (docs/design.md). */
kmq_status kmq__make_error_summary(kmq_summary *s, const kmq_err *image_err)
{
    return kmq_summary_set_error(s, kmq_status_name(image_err->code), image_err->msg);
}
