/* runner_palette.c — a job's shared palette (layer L3, part of the runner
 * module): palette = shared fits each k once on the union histogram of
 * every image of the job and maps every image to it.
 *
 * The union histogram is built with one streamed pass per image into one
 * kmq_hist (histograms of images add up), so memory is bounded by the
 * distinct colours of the whole job (at most 2^24), never by pixels or by
 * the number of images; one image is open at a time. Weighted k-means on
 * the union is exactly Lloyd's k-means on all the job's pixels together.
 *
 * The palette's identity (its hash) covers every image of the job, each by
 * its config hash (path, file identity, every key that changes results),
 * so adding, removing or editing an image gives another palette, and every
 * image's config hash (which folds it in) changes: resume redoes them.
 * The files go to OUT/JOB/_palette/ (kmq/palette.h); a later run, or the
 * shards of a cluster run, read them back when the hash matches.
 *
 * Also here: the table of every job's palette for a run (shared or
 * palette_file), `kmq palette` (kmq_runner_palette), and a given palette
 * standing in for an image's fit (kmq__given_palette_fit).
 *
 * Threads: the fit is the usual driver; strips are read on this thread (or
 * the strip reader's) and counted serially, as in an image's own pass.
 */
#include "internal.h"
#include "runner_internal.h"
#include "kmq/fsx.h"
#include "kmq/hist.h"
#include "kmq/image.h"
#include "kmq/kmeans.h"
#include "kmq/pngout.h"
#include "kmq/summary.h"
#include "kmq/rng.h"
#include "strip_reader.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const kmq_palette *kmq__job_palette_k(const kmq__job_palette *jp, size_t i)
{
    return jp->single ? jp->single : &jp->per_k[i];
}

void kmq__config_hash_palette(const kmq__job_palette *jp, char hash[17])
{
    if (!jp)
        return;
    uint64_t h = kmq_hash_bytes(KMQ_HASH_INIT, "palette", 7);
    h = kmq_hash_bytes(h, hash, 16);
    h = kmq_hash_bytes(h, jp->mode, strlen(jp->mode));
    h = kmq_hash_bytes(h, jp->hash, 16);
    snprintf(hash, 17, "%016" PRIx64, kmq_hash_finish(h));
}

void kmq__job_palette_clear(kmq__job_palette *jp)
{
    kmq__free(jp->per_k);
    memset(jp, 0, sizeof *jp);
}

/* A given palette in the place of a fit: every colour's nearest entry
 * (lowest index on a tie) and the inertia of that assignment, recorded as
 * one run of no iteration. The centres are the palette's (unrounded for a
 * shared fit), so labels and inertia are those of the palette as fitted. */
kmq_status kmq__given_palette_fit(const kmq_kmeans_prepared *prep, const kmq_palette *pal, size_t k,
                                  const kmq_par *par, uint8_t *labels, kmq_fit *fit, kmq_err *err)
{
    double inertia = 0;
    kmq_status st =
        kmq_kmeans_assign_prepared(prep, pal->centers, pal->n, par, labels, &inertia, err);
    if (st != KMQ_OK)
        return st;
    memset(fit, 0, sizeof *fit);
    fit->centers = kmq__alloc_array(pal->n * 3, sizeof(double));
    fit->restart_inertia = kmq__alloc_array(1, sizeof(double));
    if (!fit->centers || !fit->restart_inertia) {
        kmq_fit_clear(fit);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    memcpy(fit->centers, pal->centers, pal->n * 3 * sizeof(double));
    fit->restart_inertia[0] = inertia;
    fit->k = k;
    fit->k_effective = pal->n;
    fit->inertia = inertia;
    fit->iterations = 0;
    fit->converged = true;
    fit->restarts = 1;
    fit->best_restart = 0;
    return KMQ_OK;
}

/* Adds every pixel of one image to the union; the image is closed after.
 * *opened says whether any pixel may have been counted. */
static kmq_status add_image(const kmq_job_spec *spec, const kmq_input_file *in,
                            const kmq_run_opts *opts, kmq_hist *hist, bool *opened, kmq_err *err)
{
    kmq_image_opts io = {.max_pixels = spec->max_pixels,
                         .max_decode_bytes = kmq_runner_decode_budget(spec->max_decode_bytes),
                         .formats = spec->formats,
                         .mode = opts->image_mode};
    memcpy(io.background, spec->background, 3);
    kmq_image *img = NULL;
    kmq__strip_reader *reader = NULL;
    kmq_status st = in->outside_link
                        ? kmq_err_set(err, KMQ_E_UNREADABLE, "a link out of its input folder")
                        : kmq_image_open(in->path, &io, &img, err);
    *opened = st == KMQ_OK;
    if (st == KMQ_OK)
        st = kmq__strip_reader_start(img, opts->par.threads > 1, &reader, err);
    size_t width = st == KMQ_OK ? kmq_image_get_info(img)->width : 0;
    while (st == KMQ_OK) {
        const uint8_t *strip = NULL;
        uint32_t rows = 0;
        st = kmq__strip_reader_next(reader, &strip, &rows, err);
        if (st != KMQ_OK || rows == 0)
            break;
        st = kmq_hist_add_rgb(hist, strip, (size_t)rows * width, err);
        if (st == KMQ_OK && kmq__run_cancelled(opts))
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
    }
    kmq__strip_reader_free(reader);
    kmq_image_free(img);
    return st;
}

/* The shared palette's folder relative to the output root. */
static char *palette_rel_dir(const kmq_job *job, const kmq_job_spec *spec)
{
    return job->flat ? kmq__strdup("_palette") : kmq_fsx_join(spec->name, "_palette");
}

/* Fits every k on the union histogram and writes the palette files. */
static kmq_status fit_and_write(const kmq_job *job, const kmq_job_spec *spec,
                                const kmq_input_list *inputs, size_t j, const kmq_run_opts *opts,
                                kmq_palette_source *src, size_t nsrc, const char *dir,
                                const kmq_palette *replaced, kmq__job_palette *jp, kmq_err *err)
{
    kmq_hist *hist = NULL;
    kmq_kmeans_prepared *prep = NULL;
    kmq_fit fit = {0};
    kmq_status st = kmq_hist_new(&hist, err);
    size_t m = 0;
    for (size_t i = 0; st == KMQ_OK && i < inputs->n; i++) {
        if (inputs->items[i].job != j)
            continue;
        kmq_err image_err = {0};
        bool opened = false;
        kmq_status ist = add_image(spec, &inputs->items[i], opts, hist, &opened, &image_err);
        if (ist == KMQ_E_NOMEM || ist == KMQ_E_INTERRUPTED) {
            *err = image_err;
            st = ist;
        }
        /* An image that does not open (missing, unsupported, too large)
         * stays out of the union, recorded as unused; its own run reports
         * why. One that fails half-read may have added some strips: the
         * histogram would not be the union of whole images, so the palette
         * is refused rather than silently skewed. */
        src[m++].used = ist == KMQ_OK;
        if (ist != KMQ_OK && opened && st == KMQ_OK)
            st = kmq_err_set(err, KMQ_E_CONFIG,
                             "palette = shared: image %s failed while read (%s); the shared "
                             "palette takes whole images only: fix or remove it from job '%s'",
                             inputs->items[i].path, image_err.msg, spec->name);
    }
    (void)nsrc;
    if (st == KMQ_OK)
        st = kmq_hist_finish(hist, err);
    if (st == KMQ_OK && kmq_hist_pixels(hist) == 0)
        st = kmq_err_set(err, KMQ_E_CONFIG, "palette = shared: no image of job '%s' could be read",
                         spec->name);
    kmq_points all = {0};
    if (st == KMQ_OK) {
        all = (kmq_points){kmq_hist_size(hist), kmq_hist_keys(hist), kmq_hist_weights(hist)};
        st = kmq_kmeans_prepared_new(&all, &opts->par, &prep, err);
    }
    for (size_t i = 0; st == KMQ_OK && i < spec->nk; i++) {
        kmq_kmeans_opts ko = {.k = spec->k[i],
                              .restarts = spec->restarts,
                              .max_iter = spec->max_iter,
                              .tol = spec->tol,
                              .init = spec->init,
                              .seed = job->seed,
                              .cancel = opts->cancel};
        st = kmq_kmeans_fit_prepared(prep, &ko, &opts->par, &fit, err);
        if (st != KMQ_OK)
            break;
        kmq_palette *p = &jp->per_k[i];
        memset(p, 0, sizeof *p);
        p->n = fit.k_effective;
        for (size_t e = 0; e < p->n; e++) {
            for (int c = 0; c < 3; c++) {
                double v = fit.centers[3 * e + (size_t)c];
                p->centers[3 * e + (size_t)c] = v;
                p->rgb[3 * e + (size_t)c] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5);
            }
            p->weights[e] = fit.sizes[e];
        }
        memcpy(p->hash, jp->hash, sizeof p->hash);
        kmq_palette_fit_info info = {.k = spec->k[i],
                                     .job = spec->name,
                                     .pixels = kmq_hist_pixels(hist),
                                     .unique_colors = all.n,
                                     .inertia = fit.inertia,
                                     .iterations = fit.iterations,
                                     .restarts = fit.restarts,
                                     .converged = fit.converged,
                                     .sources = src,
                                     .nsources = m,
                                     .replaces_hash = replaced ? replaced->hash : NULL,
                                     .replaces_images = replaced ? replaced->images : 0};
        kmq_fit_clear(&fit);
        st = kmq_palette_write(dir, p, &info, err);
        if (st == KMQ_OK) {
            char name[64];
            snprintf(name, sizeof name, "k%zu.palette.png", spec->k[i]);
            char *path = kmq_fsx_join(dir, name);
            uint64_t bytes = 0;
            st = path ? kmq_png_write_swatch(path, p->rgb, p->weights, p->n, &bytes, err)
                      : kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            kmq__free(path);
        }
    }
    kmq_fit_clear(&fit);
    kmq_kmeans_prepared_free(prep);
    kmq_hist_free(hist);
    return st;
}

kmq_status kmq__shared_palette(const kmq_job *job, size_t j, const kmq_input_list *inputs,
                               const kmq_run_opts *opts, bool may_fit, kmq__job_palette *jp,
                               kmq_err *err)
{
    const kmq_job_spec *spec = &job->jobs[j];
    memset(jp, 0, sizeof *jp);
    jp->mode = "shared";
    size_t n = 0;
    for (size_t i = 0; i < inputs->n; i++)
        n += inputs->items[i].job == j;
    kmq_palette_source *src = kmq__calloc(n ? n : 1, sizeof *src);
    char(*hashes)[17] = kmq__calloc(n ? n : 1, sizeof *hashes);
    char *rel_dir = palette_rel_dir(job, spec);
    char *dir = rel_dir ? kmq_fsx_join(job->output, rel_dir) : NULL;
    jp->per_k = kmq__calloc(spec->nk, sizeof *jp->per_k);
    kmq_status st = KMQ_OK;
    if (!src || !hashes || !dir || !jp->per_k) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    /* Identity: every image of the job (all shards), in the listing's
     * order (sorted by rel), each by its own config hash. */
    uint64_t h = kmq_hash_bytes(KMQ_HASH_INIT, "shared", 6);
    for (size_t i = 0, m = 0; i < inputs->n; i++) {
        const kmq_input_file *in = &inputs->items[i];
        if (in->job != j)
            continue;
        kmq__file_stamp stamp = kmq__stamp_file(in->path);
        kmq__config_hash(spec, job->seed, in->path, in->rel, &stamp, opts->cancel, hashes[m]);
        src[m] = (kmq_palette_source){.rel = in->rel, .hash = hashes[m], .used = true};
        h = kmq_hash_bytes(h, in->rel, strlen(in->rel) + 1);
        h = kmq_hash_bytes(h, hashes[m], 16);
        m++;
    }
    if (kmq__run_cancelled(opts)) {
        st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
        goto done;
    }
    snprintf(jp->hash, sizeof jp->hash, "%016" PRIx64, kmq_hash_finish(h));

    /* A palette already there for exactly these images and keys is used.
     * One there for other images or keys is refitted, and the new files
     * say which palette they replace (the report shows it). */
    bool have_all = true;
    kmq_palette replaced = {0};
    for (size_t i = 0; i < spec->nk; i++) {
        char name[64];
        snprintf(name, sizeof name, "k%zu.palette.json", spec->k[i]);
        char *path = kmq_fsx_join(dir, name);
        kmq_err ignored = {0};
        bool loaded = path && kmq_palette_load(path, &jp->per_k[i], &ignored) == KMQ_OK;
        kmq__free(path);
        bool current = loaded && strcmp(jp->per_k[i].hash, jp->hash) == 0;
        if (loaded && !current && jp->per_k[i].hash[0] && !replaced.hash[0])
            replaced = jp->per_k[i];
        have_all = have_all && current;
    }
    if (have_all)
        goto done;
    if (!may_fit) {
        st = kmq_err_set(err, KMQ_E_CONFIG,
                         "job '%s' has palette = shared but %s holds no palette for its current "
                         "images; a shard only maps: run 'kmq palette JOB.ini' once before the "
                         "shards (the images or keys changed since, or it never ran)",
                         spec->name, dir);
        goto done;
    }
    st = kmq_fsx_mkdirs(job->output, rel_dir, err);
    if (st == KMQ_OK)
        st = fit_and_write(job, spec, inputs, j, opts, src, n, dir,
                           replaced.hash[0] ? &replaced : NULL, jp, err);
done:
    if (st != KMQ_OK)
        kmq__job_palette_clear(jp);
    kmq__free(src);
    kmq__free(hashes);
    kmq__free(rel_dir);
    kmq__free(dir);
    return st;
}

kmq_status kmq_runner_load_palettes(kmq_job *job, kmq_err *err)
{
    for (size_t j = 0; j < job->njobs; j++) {
        kmq_job_spec *spec = &job->jobs[j];
        if (!spec->palette_file)
            continue;
        char *path = spec->palette_file[0] == '/' || !job->base_dir
                         ? kmq__strdup(spec->palette_file)
                         : kmq_fsx_join(job->base_dir, spec->palette_file);
        kmq_palette *pal = kmq__alloc(sizeof *pal);
        size_t *k = kmq__alloc(sizeof *k);
        kmq_status st = KMQ_OK;
        if (!path || !pal || !k)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        if (st == KMQ_OK)
            st = kmq_palette_load(path, pal, err);
        if (st == KMQ_OK) {
            kmq__free(spec->given);
            kmq__free(spec->k);
            spec->given = pal;
            *k = pal->n;
            spec->k = k;
            spec->nk = 1;
            pal = NULL;
            k = NULL;
        }
        kmq__free(path);
        kmq__free(pal);
        kmq__free(k);
        if (st != KMQ_OK)
            return st;
    }
    return KMQ_OK;
}

void kmq__free_job_palettes(const kmq_job *job, kmq__job_palette *job_pal,
                            const kmq__job_palette **palettes)
{
    for (size_t j = 0; job_pal && j < job->njobs; j++)
        kmq__job_palette_clear(&job_pal[j]);
    kmq__free(job_pal);
    kmq__free(palettes);
}

/* The palette of every job that does not fit per image: palette_file's, or
 * the shared one (fitted here when may_fit, else read back). lenient: a
 * shared palette that is not there leaves that job's entry NULL (its
 * images then hash as not done) instead of failing: for --dry-run and for
 * `kmq report`, which only look. */
kmq_status kmq__job_palettes(const kmq_job *job, const kmq_input_list *inputs,
                             const kmq_run_opts *opts, bool may_fit, bool lenient,
                             kmq__job_palette **job_pal, const kmq__job_palette ***palettes,
                             kmq_err *err)
{
    size_t n = job->njobs ? job->njobs : 1;
    *job_pal = kmq__calloc(n, sizeof **job_pal);
    *palettes = kmq__calloc(n, sizeof **palettes);
    if (!*job_pal || !*palettes)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    for (size_t j = 0; j < job->njobs; j++) {
        const kmq_job_spec *spec = &job->jobs[j];
        kmq__job_palette *jp = &(*job_pal)[j];
        if (spec->palette_file && !spec->given)
            return kmq_err_set(err, KMQ_E_INTERNAL,
                               "job '%s': palette_file %s was not read (kmq_runner_load_palettes)",
                               spec->name, spec->palette_file);
        if (spec->given) {
            jp->mode = "file";
            jp->single = spec->given;
            snprintf(jp->hash, sizeof jp->hash, "%016" PRIx64, kmq_palette_digest(spec->given));
        } else if (spec->palette == KMQ_PALETTE_SHARED) {
            bool listed = false;
            for (size_t i = 0; i < inputs->n && !listed; i++)
                listed = inputs->items[i].job == j;
            if (!listed)
                continue;
            kmq_err missing = {0};
            kmq_status st = kmq__shared_palette(job, j, inputs, opts, may_fit, jp, &missing);
            if (st != KMQ_OK && lenient && st != KMQ_E_NOMEM && st != KMQ_E_INTERRUPTED)
                continue;
            if (st != KMQ_OK) {
                *err = missing;
                return st;
            }
        } else {
            continue;
        }
        (*palettes)[j] = jp;
    }
    return KMQ_OK;
}

kmq_status kmq_runner_palette(const kmq_job *job, const kmq_run_opts *opts, size_t *fitted,
                              kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    kmq_input_list inputs = {0};
    kmq__job_palette *job_pal = NULL;
    const kmq__job_palette **palettes = NULL;
    int lock_fd = -1;
    *fitted = 0;
    kmq_run_opts plain = *opts;
    plain.shard_count = 0;
    plain.shard_index = 0;
    kmq_status st = kmq_job_list_inputs(job, &inputs, err);
    if (st == KMQ_OK)
        st = kmq_fsx_mkdirs(job->output, "", err);
    if (st == KMQ_OK) {
        st = kmq__lock_output(job->output, &plain, &lock_fd, err);
        if (st != KMQ_OK)
            kmq_err_where(err, "%s", job->output);
    }
    if (st == KMQ_OK)
        st = kmq__job_palettes(job, &inputs, &plain, true, false, &job_pal, &palettes, err);
    for (size_t j = 0; st == KMQ_OK && j < job->njobs; j++)
        *fitted += palettes[j] && job->jobs[j].palette == KMQ_PALETTE_SHARED;
    if (lock_fd >= 0)
        close(lock_fd);
    kmq__free_job_palettes(job, job_pal, palettes);
    kmq_input_list_clear(&inputs);
    return st;
}
