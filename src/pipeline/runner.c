/* runner.c — one image end to end, and a whole job (layer L3).
 *
 * Composes the lower layers; nothing below knows the others exist:
 *
 *   job (inputs) -> for each image:
 *     stat + config hash (resume: skip when summary.json has the same hash)
 *     image_open (header only; max_pixels refused here)
 *     pass 1: strips -> hist_add_rgb           (memory: colours, not pixels)
 *     prepare the distinct colours once (kmeans_prepared_new), then
 *     fit every k on them (kmeans, optionally on a sample) and keep the
 *     fit's label of every colour (after a sample: kmeans_assign -> labels)
 *     pass 2: strips -> labels_map_row -> one PNG writer per k and file kind
 *             (memory: one strip for all of them, MAP_STRIP_BUDGET)
 *     summary.json, written last and atomically: "this image is done"
 *     (after each pass and before the summary the file must still have the
 *     stat it had when hashed, else the image fails with file_changed)
 *   -> run.json, elbow.csv (report.c, from the summaries on disk)
 *
 * Error context: everything below reports what went wrong; this file adds
 * the image path (err->where) and turns the failure into an error summary,
 * so one bad image never stops a batch. A run-level failure (output root
 * unusable, interrupted) is returned instead.
 *
 * Threads: the fit and the labelling are OpenMP drivers called from here,
 * one at a time, with the run's budget. The passes read strips on this
 * thread (libvips decodes with its own pool, sized by the CLI from the same
 * budget); the map pass is itself a driver: each strip is labelled and
 * encoded in one region (encode_strip), never while libvips is working.
 */
#include "kmq/outputs.h"
#include "kmq/runner.h"

#include "internal.h"
#include "kmq/elbow.h"
#include "kmq/fsx.h"
#include "kmq/hist.h"
#include "kmq/image.h"
#include "kmq/kmeans.h"
#include "kmq/labels.h"
#include "kmq/pngout.h"
#include "kmq/preview.h"
#include "kmq/rng.h"
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

#define SUMMARY_NAME KMQ_SUMMARY_JSON
#define LOCK_NAME    KMQ_LOCK_FILE
#define SCRATCH_NAME KMQ_SCRATCH_DIR

static bool cancelled(const kmq_run_opts *opts)
{
    return opts->cancel && atomic_load(opts->cancel) != 0;
}

static void report_progress(const kmq_run_opts *opts, kmq_progress *p, double t0)
{
    if (!opts->progress)
        return;
    p->elapsed_s = kmq_par_now_s() - t0;
    opts->progress(opts->progress_ctx, p);
}

bool kmq_runner_in_shard(const char *rel, unsigned index, unsigned count)
{
    if (count <= 1)
        return true;
    uint64_t h = kmq_hash_finish(kmq_hash_bytes(KMQ_HASH_INIT, rel, strlen(rel)));
    return h % count == index;
}

uint64_t kmq_runner_decode_budget(uint64_t setting)
{
    if (setting != KMQ_DECODE_AUTO)
        return setting;
    /* An eighth of the memory, so that a batch beside other work never
     * starts paging for one image, and at most 512 MiB: enough for a
     * progressive JPEG of 89 MP or a WebP of 67 MP, and a few-hundred-byte
     * file that declares more is refused from its header. */
    const uint64_t cap = (uint64_t)512 << 20;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return cap;
    uint64_t eighth = (uint64_t)pages * (uint64_t)page / 8;
    return eighth < cap ? eighth : cap;
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    return kmq_hash_bytes(h, &v, sizeof v);
}

static uint64_t hash_double(uint64_t h, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return hash_u64(h, bits);
}

/* What stat says of an input file. It goes into the config hash, and the
 * runner compares it again after each pass and before the summary: a
 * difference means the file changed while it was processed (the first
 * pass may have read one version and the second another, or the summary
 * would describe a file that is no longer there). Small images are served
 * from memory in the second pass, so only stat can tell. */
typedef struct file_stamp {
    bool ok; /* stat succeeded; else errno_ holds why not */
    int errno_;
    bool regular;
    uint64_t size, mtime_ns, ino, dev;
} file_stamp;

static file_stamp stamp_file(const char *path)
{
    file_stamp f = {0};
    struct stat st;
    if (stat(path, &st) != 0) {
        f.errno_ = errno;
        return f;
    }
    f.ok = true;
    f.regular = S_ISREG(st.st_mode);
    f.size = (uint64_t)st.st_size;
    f.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    f.ino = (uint64_t)st.st_ino;
    f.dev = (uint64_t)st.st_dev;
    return f;
}

static bool same_stamp(const file_stamp *a, const file_stamp *b)
{
    return a->ok == b->ok && a->size == b->size && a->mtime_ns == b->mtime_ns && a->ino == b->ino &&
           a->dev == b->dev;
}

/* KMQ_OK when the file at `path` still has the stamp `before` (or when
 * there was none to compare: a missing file fails on its own), else
 * KMQ_E_CHANGED with what differs. */
static kmq_status check_unchanged(const char *path, const file_stamp *before, kmq_err *err)
{
    if (!before->ok)
        return KMQ_OK;
    file_stamp now = stamp_file(path);
    if (same_stamp(before, &now))
        return KMQ_OK;
    char what[256] = "";
    size_t n = 0;
#define WHAT(...)                                                                                  \
    do {                                                                                           \
        if (n < sizeof what)                                                                       \
            n += (size_t)snprintf(what + n, sizeof what - n, __VA_ARGS__);                         \
    } while (0)
    if (!now.ok) {
        WHAT("stat now fails: %s", strerror(now.errno_));
    } else {
        if (now.size != before->size)
            WHAT("size %" PRIu64 " -> %" PRIu64 " bytes", before->size, now.size);
        if (now.mtime_ns != before->mtime_ns)
            WHAT("%smtime %" PRIu64 ".%09" PRIu64 " -> %" PRIu64 ".%09" PRIu64, n ? ", " : "",
                 before->mtime_ns / 1000000000u, before->mtime_ns % 1000000000u,
                 now.mtime_ns / 1000000000u, now.mtime_ns % 1000000000u);
        if (now.ino != before->ino || now.dev != before->dev)
            WHAT("%sinode %" PRIu64 " -> %" PRIu64, n ? ", " : "", before->ino, now.ino);
    }
#undef WHAT
    return kmq_err_set(err, KMQ_E_CHANGED,
                       "the file changed while it was processed (%s); run again", what);
}

/* Bytes hashed from each end of a file for identity = quick. */
#define QUICK_SPAN ((uint64_t)64 * 1024)

/* Feeds bytes [off, off + len) of fd to the hash *h through buf
 * (QUICK_SPAN bytes). false when they cannot all be read (an I/O error, a
 * file that shrank) or the run is cancelled. */
static bool hash_range(int fd, uint64_t off, uint64_t len, uint8_t *buf, const atomic_int *cancel,
                       uint64_t *h)
{
    while (len > 0) {
        if (cancel && atomic_load(cancel) != 0)
            return false;
        size_t want = len < QUICK_SPAN ? (size_t)len : (size_t)QUICK_SPAN;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        *h = kmq_hash_bytes(*h, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return true;
}

/* A hash of the file's bytes into *digest (every byte, or for quick the
 * first and last QUICK_SPAN: the whole file up to twice that); false when
 * the file cannot be read as the regular file `stamp` describes. Only a
 * regular file is opened (a FIFO would block), with O_NONBLOCK in case it
 * has just been swapped for one. */
static bool hash_content(const char *path, const file_stamp *stamp, kmq_identity mode,
                         const atomic_int *cancel, uint64_t *digest)
{
    if (!stamp->ok || !stamp->regular)
        return false;
    uint8_t *buf = kmq__alloc((size_t)QUICK_SPAN);
    int fd = buf ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_ino == stamp->ino && (uint64_t)st.st_dev == stamp->dev;
    uint64_t size = stamp->size, h = KMQ_HASH_INIT;
    if (ok && (mode == KMQ_IDENTITY_CONTENT || size <= 2 * QUICK_SPAN)) {
        ok = hash_range(fd, 0, size, buf, cancel, &h);
    } else if (ok) {
        ok = hash_range(fd, 0, QUICK_SPAN, buf, cancel, &h) &&
             hash_range(fd, size - QUICK_SPAN, QUICK_SPAN, buf, cancel, &h);
    }
    if (fd >= 0)
        close(fd);
    kmq__free(buf);
    *digest = h;
    return ok;
}

/* The config hash of one image whose file has the stamp `stamp`. Only what
 * changes results goes in (DESIGN §5): the image's identity and the fitting
 * keys. Each field is hashed with its length or fixed width so that
 * adjacent fields cannot run into each other. A file that cannot be read
 * hashes with a marker instead of its bytes: never a reason to fail here
 * (opening the image reports it), and never equal to a hash that read them.
 * With identity = content the bytes decide, so mtime and inode stay out. */
static void config_hash(const kmq_job_spec *spec, uint64_t seed, const char *path, const char *rel,
                        const file_stamp *stamp, const atomic_int *cancel, char out[17])
{
    uint64_t h = KMQ_HASH_INIT;
    h = hash_u64(h, KMQ_SUMMARY_SCHEMA);
    h = hash_u64(h, strlen(rel));
    h = kmq_hash_bytes(h, rel, strlen(rel));
    h = hash_u64(h, (uint64_t)spec->identity);
    h = hash_u64(h, stamp->size);
    if (spec->identity != KMQ_IDENTITY_CONTENT) {
        h = hash_u64(h, stamp->mtime_ns);
        h = hash_u64(h, stamp->ino);
    }
    uint64_t digest = 0;
    bool read = hash_content(path, stamp, spec->identity, cancel, &digest);
    h = hash_u64(h, read);
    if (read)
        h = hash_u64(h, digest);
    h = hash_u64(h, spec->nk);
    for (size_t i = 0; i < spec->nk; i++)
        h = hash_u64(h, spec->k[i]);
    h = hash_u64(h, (uint64_t)spec->restarts);
    h = hash_u64(h, (uint64_t)spec->max_iter);
    h = hash_double(h, spec->tol);
    h = hash_u64(h, (uint64_t)spec->init);
    h = hash_u64(h, seed);
    h = hash_u64(h, spec->sample);
    h = hash_u64(h, spec->save);
    h = kmq_hash_bytes(h, spec->background, 3);
    h = hash_u64(h, spec->max_pixels);
    h = hash_u64(h, spec->max_decode_bytes);
    h = hash_u64(h, spec->formats);
    snprintf(out, 17, "%016" PRIx64, kmq_hash_finish(h));
}

void kmq_runner_config_hash(const kmq_job_spec *spec, uint64_t seed, const char *path,
                            const char *rel, char out[17])
{
    file_stamp stamp = stamp_file(path);
    config_hash(spec, seed, path, rel, &stamp, NULL, out);
}

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
 * row), and the staging buffer's fixed slack (untouched unless needed). */
#define MAP_STRIP_BUDGET ((uint64_t)32 << 20)

static uint32_t map_strip_rows(const kmq_job_spec *spec, uint32_t width)
{
    uint64_t kinds =
        (spec->save & KMQ_SAVE_INDEXED ? 1u : 0u) + (spec->save & KMQ_SAVE_LABELS ? 1u : 0u);
    /* nk <= KMQ_MAX_K (job check): <= 1,286 bytes a pixel, width < 2^31. */
    uint64_t row_bytes = (uint64_t)width * (6 + spec->nk + 2 * kinds * spec->nk);
    uint64_t rows = MAP_STRIP_BUDGET / row_bytes;
    if (rows < 1)
        return 1;
    return rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows;
}

/* One PNG being written in the map pass, and the label set it shows. */
typedef struct map_writer {
    kmq_png *png;
    size_t set;
    kmq_status status; /* outcome of this strip's rows */
    kmq_err err;
} map_writer;

/* Everything one image needs while it is processed; freed in one place. */
typedef struct image_work {
    kmq_image *img;
    kmq_hist *hist;
    kmq_labels *labels;
    kmq__strip_reader *reader; /* the pass in progress */
    kmq_preview *preview;      /* averaged from the histogram pass, for the report */
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
    kmq_kmeans_prepared *prep_all;    /* every colour: built once, read by every k */
    kmq_kmeans_prepared *prep_sample; /* the sample's colours (NULL: no sample) */
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
    kmq__free(w->indexed);
    kmq__free(w->labelmaps);
    kmq_labels_free(w->labels);
    kmq_hist_free(w->hist);
    kmq__strip_reader_free(w->reader); /* joins its thread: before the image goes */
    kmq_image_free(w->img);
    kmq_preview_free(w->preview);
    kmq__free(w->label_strip);
    kmq__free(w->label_row_ptr);
    kmq__free(w->row_status);
    kmq__free(w->writers);
    kmq__free(w->sample_weights);
    kmq__free(w->sample_keys);
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
        st = kmq_hist_add_rgb(w->hist, w->strip, (size_t)rows * info->width, err);
        if (st != KMQ_OK)
            return st;
        kmq_preview_add_rows(w->preview, w->strip, rows);
        if (cancelled(opts))
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

static uint8_t round_channel(double v)
{
    if (!(v > 0.0))
        return 0;
    if (v >= 255.0)
        return 255;
    return (uint8_t)lround(v);
}

/* Fills everything of one k's result that comes from the fit and the
 * labelling of the distinct colours: palette (rounded centres with their
 * pixel counts), inertia, mse, mse_output (exact, in integers, over the
 * distinct colours: every pixel of a colour has the same error). */
static kmq_status finish_k_result(const kmq_points *all, const kmq_fit *fit, const uint8_t *labels,
                                  double inertia, uint64_t pixels, kmq_k_result *r, kmq_err *err)
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
    for (size_t j = 0; j < ke; j++)
        for (int c = 0; c < 3; c++)
            r->palette[j].rgb[c] = round_channel(fit->centers[j * 3 + (size_t)c]);
    uint64_t err_output = 0;
    for (size_t i = 0; i < all->n; i++) {
        uint32_t key = all->keys[i];
        const uint8_t *p = r->palette[labels[i]].rgb;
        int64_t dr = (int64_t)(key >> 16) - p[0];
        int64_t dg = (int64_t)((key >> 8) & 0xff) - p[1];
        int64_t db = (int64_t)(key & 0xff) - p[2];
        /* <= 3 * 255^2 * 2^64 would overflow only beyond 2^45 pixels. */
        err_output += all->weights[i] * (uint64_t)(dr * dr + dg * dg + db * db);
        r->palette[labels[i]].pixels += all->weights[i];
    }
    r->inertia = inertia;
    r->mse = inertia / (double)pixels;
    r->mse_output = (double)err_output / (double)pixels;
    r->psnr_db = r->mse_output > 0 ? 10.0 * log10(3.0 * 255.0 * 255.0 / r->mse_output) : 0.0;
    r->raw_bytes = pixels * 3;
    unsigned bits = 0;
    while (((size_t)1 << bits) < ke)
        bits++;
    r->packed_bytes = (pixels * bits + 7) / 8 + 3 * (uint64_t)ke;
    return KMQ_OK;
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
            uint8_t pal[KMQ_MAX_K * 3];
            for (size_t j = 0; j < r->k_effective; j++)
                memcpy(pal + 3 * j, r->palette[j].rgb, 3);
            char *path = kmq_fsx_join(dir, r->indexed.path);
            st = path ? kmq_png_open_indexed(path, info->width, info->height, pal, r->k_effective,
                                             &w->indexed[i], err)
                      : kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            kmq__free(path);
            if (st == KMQ_OK) {
                w->writers[w->nwriters++] = (map_writer){.png = w->indexed[i], .set = i};
                st = kmq_png_stage(w->indexed[i], strip_rows, err);
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
    const size_t width = info->width, row_bytes = width * 3;
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
                mw->status = kmq_png_write_row(
                    mw->png, label_strip + (mw->set * strip_rows + y) * width, &mw->err);
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
    size_t row_bytes = (size_t)info->width * 3;
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
        if (cancelled(opts))
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

static kmq_status write_swatch(const char *dir, kmq_k_result *r, kmq_err *err)
{
    uint8_t pal[KMQ_MAX_K * 3];
    uint64_t pixels[KMQ_MAX_K];
    for (size_t j = 0; j < r->k_effective; j++) {
        memcpy(pal + 3 * j, r->palette[j].rgb, 3);
        pixels[j] = r->palette[j].pixels;
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
    return KMQ_OK;
}

/* Processes one image into `dir` and fills `s` (ok or not). `stamp` is the
 * file as stat'ed before the hash `hash` read it; the file must keep it
 * after each pass (KMQ_E_CHANGED otherwise). Returns KMQ_OK when the image
 * is done, an image-level error (s gets the error form), or
 * KMQ_E_INTERRUPTED / KMQ_E_NOMEM from which the run stops. */
static kmq_status run_image(const kmq_job_spec *spec, uint64_t seed, const kmq_input_file *in,
                            const file_stamp *stamp, const char *hash, const char *dir,
                            const kmq_run_opts *opts, kmq_progress *prog, double t_run,
                            kmq_summary *s, kmq_err *err)
{
    double t0 = kmq_par_now_s();
    image_work w = {0};
    kmq_fit fit = {0};
    size_t nk = spec->nk;
    kmq_status st = fill_config(s, spec, seed, opts->par.threads, in->path, in->rel, hash, err);
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
                         .mode = opts->image_mode};
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
    s->pixels = info->pixels;
    /* Both passes read strips of the map pass's height: the buffers below,
     * the reader's and the writers' staging are all sized from it. */
    uint32_t strip_rows = kmq_image_limit_strip_rows(w.img, map_strip_rows(spec, info->width));
    size_t strip_pixels = (size_t)strip_rows * info->width;
    w.label_strip = nk <= SIZE_MAX / strip_pixels ? kmq__alloc_array(nk, strip_pixels) : NULL;
    w.label_row_ptr = kmq__alloc_array((size_t)strip_rows * nk, sizeof *w.label_row_ptr);
    w.row_status = kmq__alloc_array(strip_rows, sizeof *w.row_status);
    s->results = kmq__calloc(nk, sizeof *s->results);
    if (!s->format || !w.label_strip || !w.label_row_ptr || !w.row_status || !s->results) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for a %" PRIu32 "-pixel-wide image",
                         info->width);
        goto done;
    }
    s->nresults = nk;
    /* Row y's output for set i: label_strip + (i * strip_rows + y) * width. */
    for (size_t y = 0; y < strip_rows; y++)
        for (size_t i = 0; i < nk; i++)
            w.label_row_ptr[y * nk + i] = w.label_strip + (i * strip_rows + y) * info->width;

    prog->event = KMQ_PROGRESS_STAGE;
    prog->stage = "histogram";
    prog->k = 0;
    report_progress(opts, prog, t_run);
    double t_hist = kmq_par_now_s();
    st = kmq_hist_new(&w.hist, err);
    if (st == KMQ_OK)
        st = kmq_hist_expect(w.hist, (uint64_t)info->width * info->height, err);
    if (st == KMQ_OK)
        st = kmq_preview_new(info->width, info->height, KMQ_PREVIEW_SIDE, &w.preview, err);
    if (st == KMQ_OK)
        st = histogram_pass(&w, opts, err);
    if (st == KMQ_OK)
        st = kmq_hist_finish(w.hist, err);
    if (st == KMQ_OK)
        st = check_unchanged(in->path, stamp, err);
    if (st != KMQ_OK)
        goto done;
    s->histogram_s = kmq_par_now_s() - t_hist;
    kmq_points all = {kmq_hist_size(w.hist), kmq_hist_keys(w.hist), kmq_hist_weights(w.hist)};
    s->unique_colors = all.n;
    uint64_t pixels = kmq_hist_pixels(w.hist);

    /* The points are prepared once and serve every k. */
    kmq_points fit_pts = all;
    st = kmq_kmeans_prepared_new(&all, &w.prep_all, err);
    if (st == KMQ_OK && spec->sample > 0 && spec->sample < pixels) {
        st = draw_sample(&w, &all, spec->sample, seed, &fit_pts, err);
        if (st == KMQ_OK)
            st = kmq_kmeans_prepared_new(&fit_pts, &w.prep_sample, err);
    }
    if (st != KMQ_OK)
        goto done;
    const kmq_kmeans_prepared *fit_prep = w.prep_sample ? w.prep_sample : w.prep_all;

    st = kmq_labels_new(w.hist, nk, &w.labels, err);
    if (st != KMQ_OK)
        goto done;
    for (size_t i = 0; i < nk; i++) {
        if (cancelled(opts)) {
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
            goto done;
        }
        prog->stage = "fit";
        prog->k = spec->k[i];
        report_progress(opts, prog, t_run);
        double t_fit = kmq_par_now_s();
        kmq_kmeans_opts ko = {.k = spec->k[i],
                              .restarts = spec->restarts,
                              .max_iter = spec->max_iter,
                              .tol = spec->tol,
                              .init = spec->init,
                              .seed = seed,
                              .cancel = opts->cancel};
        st = kmq_kmeans_fit_prepared(fit_prep, &ko, &opts->par, &fit, err);
        if (st != KMQ_OK)
            goto done;
        uint8_t *labels = kmq_labels_set(w.labels, i);
        double inertia = 0;
        if (w.prep_sample) {
            /* The fit saw a sample: every colour of the image needs its label. */
            st = kmq_kmeans_assign_prepared(w.prep_all, fit.centers, fit.k_effective, &opts->par,
                                            labels, &inertia, err);
            if (st != KMQ_OK)
                goto done;
        } else {
            /* The fit saw every colour: its labels are the assignment's. */
            memcpy(labels, fit.labels, all.n);
        }
        /* Without sampling the fit's own final inertia is the same sum over
         * the same points; keep it so the summary shows the fit's number. */
        if (fit_pts.n == all.n)
            inertia = fit.inertia;
        st = finish_k_result(&all, &fit, labels, inertia, pixels, &s->results[i], err);
        if (st == KMQ_OK)
            st = name_files(spec, &s->results[i], err);
        kmq_fit_clear(&fit);
        if (st != KMQ_OK)
            goto done;
        s->results[i].fit_s = kmq_par_now_s() - t_fit;
    }

    prog->stage = "map";
    prog->k = 0;
    report_progress(opts, prog, t_run);
    double t_map = kmq_par_now_s();
    st = open_writers(&w, spec, dir, s, err);
    if (st == KMQ_OK)
        st = map_pass(&w, nk, opts, err);
    if (st == KMQ_OK)
        st = close_writers(&w, s, err);
    for (size_t i = 0; st == KMQ_OK && i < nk; i++)
        if (spec->save & KMQ_SAVE_PALETTE)
            st = write_swatch(dir, &s->results[i], err);
    if (st == KMQ_OK)
        st = check_unchanged(in->path, stamp, err);
    if (st != KMQ_OK)
        goto done;
    /* One pass serves every k: its time is shared out evenly. */
    double map_s = (kmq_par_now_s() - t_map) / (double)nk;
    for (size_t i = 0; i < nk; i++)
        s->results[i].map_s = map_s;
    fill_compression(s);
    find_elbow(s);
    st = kmq__runner_write_plots(dir, w.preview, s, &all, w.labels, err);
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
        if (check_unchanged(in->path, stamp, &changed) != KMQ_OK) {
            *err = changed;
            st = KMQ_E_CHANGED;
        }
    }
    kmq_fit_clear(&fit);
    image_work_free(&w, nk);
    s->total_s = kmq_par_now_s() - t0;
    return st;
}

/* Turns a failed image's summary into the error form (DESIGN §5). */
static kmq_status make_error_summary(kmq_summary *s, const kmq_err *image_err)
{
    for (size_t i = 0; i < s->nresults; i++) {
        kmq_k_result *r = &s->results[i];
        kmq__free(r->restart_inertia);
        kmq__free(r->palette);
        kmq__free(r->indexed.path);
        kmq__free(r->labels.path);
        kmq__free(r->swatch.path);
    }
    kmq__free(s->results);
    s->results = NULL;
    s->nresults = 0;
    s->ok = false;
    s->has_elbow = false;
    kmq__free(s->error_code);
    kmq__free(s->error_message);
    s->error_code = kmq__strdup(kmq_status_name(image_err->code));
    s->error_message = kmq__strdup(image_err->msg);
    if (!s->error_code || !s->error_message)
        return KMQ_E_NOMEM;
    return KMQ_OK;
}

/* Whether `name` is a file kmq writes into an image folder (kmq/outputs.h)
 * or a temporary file of fsx. */
static bool is_image_output(const char *name)
{
    return strncmp(name, KMQ_FSX_TMP_PREFIX, strlen(KMQ_FSX_TMP_PREFIX)) == 0 ||
           kmq_is_image_output(name);
}

/* Removes every file kmq writes into the image folder `dir` (see
 * is_image_output), so that an image redone with another k list ends with
 * exactly the files of its current list, and a failed image with its error
 * summary alone. Anything else (files of other names, sub-folders) is left
 * alone, and a symlinked folder is not entered. Best effort: a file that
 * cannot be removed is overwritten or reported later. */
static void remove_image_outputs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (is_image_output(e->d_name) &&
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Flushes the files of a finished image (and the folder's entries) to disk
 * before its summary.json says "done": fsx renames without fsync, so after a
 * power cut the durable summary could otherwise name a PNG whose data never
 * reached the disk. Returns KMQ_OK or KMQ_E_WRITE (the image then fails). */
static kmq_status sync_image_outputs(const char *dir, kmq_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot open folder %s: %s", dir, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return kmq_err_set(err, KMQ_E_WRITE, "cannot read folder %s: %s", dir, strerror(errno));
    }
    kmq_status st = KMQ_OK;
    struct dirent *e;
    while (st == KMQ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !is_image_output(e->d_name)) /* not temporaries */
            continue;
        int f = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (f < 0)
            continue; /* not a file of ours after all (a symlink, gone) */
        if (fsync(f) != 0)
            st = kmq_err_set(err, KMQ_E_WRITE, "cannot flush %s/%s to disk: %s", dir, e->d_name,
                             strerror(errno));
        close(f);
    }
    if (st == KMQ_OK && fsync(dirfd(d)) != 0)
        st = kmq_err_set(err, KMQ_E_WRITE, "cannot flush folder %s to disk: %s", dir,
                         strerror(errno));
    closedir(d);
    return st;
}

/* Removes the temporary files a killed run left in `dir` (fsx names them
 * with KMQ_FSX_TMP_PREFIX). Only called on folders this process owns: an
 * image folder it is about to write, or the root under an exclusive lock. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t prefix = strlen(KMQ_FSX_TMP_PREFIX);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, KMQ_FSX_TMP_PREFIX, prefix) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Whether `dir` already holds a finished summary with this hash. A summary
 * that is there but does not read back counts as not done, and progress is
 * told (KMQ_PROGRESS_REFUSED, naming the file and the field). */
static bool already_done(const char *summary_path, const char *hash, const kmq_run_opts *opts,
                         kmq_progress *prog, double t_run)
{
    kmq_summary old = {0};
    kmq_err why = {0};
    kmq_status st = kmq_summary_read(summary_path, &old, &why);
    bool done = st == KMQ_OK && old.ok && old.hash && strcmp(old.hash, hash) == 0;
    kmq_summary_clear(&old);
    if (st != KMQ_OK && st != KMQ_E_NOT_FOUND && st != KMQ_E_NOMEM) {
        kmq_err_where(&why, "%s", summary_path);
        prog->event = KMQ_PROGRESS_REFUSED;
        prog->refused = &why;
        report_progress(opts, prog, t_run);
        prog->refused = NULL;
    }
    return done;
}

/* Where kmq_report_build's refusals go at the end of a run. */
typedef struct refused_sink {
    const kmq_run_opts *opts;
    double t_run;
} refused_sink;

/* A summary found under the output root that the rebuilt run.json leaves
 * out (not one of this run's images: those were redone). */
static void report_refused(void *ctx, kmq_run_file file, const kmq_err *why)
{
    const refused_sink *sink = ctx;
    (void)file; /* with the run's own facts, run.json is not read */
    kmq_progress prog = {.event = KMQ_PROGRESS_REFUSED, .refused = why};
    report_progress(sink->opts, &prog, sink->t_run);
}


/* Whether component number `depth` of an image's folder path, `name`, is a
 * file kmq writes into the folder that holds it: a run-level file at the top
 * of the flat layout (the job folder holds image folders only), an image's
 * own file below. */
static bool name_taken(const char *name, size_t depth, bool flat)
{
    return depth == 0 ? flat && kmq_is_run_file(name) : is_image_output(name);
}

/* The folder of one image relative to the output root: its rel made safe,
 * under the job's folder unless flat. A component named like a file kmq
 * writes beside it gets its first byte percent-encoded ("%72un.json"), so
 * that an input named run.json in `kmq quantize`, or a folder photo.png
 * holding k2.png or summary.json beside a file photo.png of another input,
 * takes no place of kmq's own files. Names stay distinct: a literal '%' is
 * "%25" (kmq_fsx_safe_relpath). */
static char *image_rel_dir(const kmq_job *job, const kmq_input_file *in)
{
    static const char hex[] = "0123456789ABCDEF";
    char *safe = kmq_fsx_safe_relpath(in->rel);
    char *escaped = safe ? kmq__alloc(3 * strlen(safe) + 1) : NULL; /* +2 bytes a component */
    char *dir = NULL;
    if (!escaped)
        goto done;
    size_t o = 0, depth = 0;
    for (char *c = safe; *c; depth++) {
        size_t len = strcspn(c, "/");
        char sep = c[len];
        c[len] = '\0';
        size_t hit = name_taken(c, depth, job->flat);
        c[len] = sep;
        if (hit) {
            escaped[o++] = '%';
            escaped[o++] = hex[(unsigned char)c[0] >> 4];
            escaped[o++] = hex[(unsigned char)c[0] & 15];
        }
        memcpy(escaped + o, c + hit, len - hit);
        o += len - hit;
        if (sep)
            escaped[o++] = '/';
        c += len + (sep ? 1 : 0);
    }
    escaped[o] = '\0';
    if (job->flat) {
        dir = escaped;
        escaped = NULL;
    } else {
        dir = kmq_fsx_join(job->jobs[in->job].name, escaped);
    }
done:
    kmq__free(escaped);
    kmq__free(safe);
    return dir;
}

/* ------------------------------------------------------------------ */
/* A whole job                                                         */

/* One writer per output root, except that shards of one job may share it:
 * every run holds byte 0 of the lock file (exclusively when it processes
 * everything, shared when it is a shard) and a shard also holds byte 1 + I
 * exclusively. So a second plain run, or a second copy of the same shard,
 * is refused, while the N tasks of a job array work side by side. fcntl
 * record locks are released by the kernel when the process dies, and work
 * on network file systems where flock may not.
 *
 * Shards of different N split the images differently, so they would share
 * images: a shard also holds byte SHARD_COUNT_BASE + N shared, and after
 * taking it looks (F_GETLK) for another process's lock anywhere else in
 * [SHARD_COUNT_BASE, end). Each shard takes its lock before it looks, so of
 * two that start at once the later look sees the earlier lock: both may be
 * refused, never both let in. Shard indices are below 2^32, so the bytes
 * 1 + I stay below the base. */
#define SHARD_COUNT_BASE ((off_t)1 << 33)

_Static_assert(sizeof(off_t) >= 8, "shard lock offsets need a 64-bit off_t");

/* Whether another process holds a lock in [start, start + len) (len 0: to
 * the end of any file); its start goes to *other_start. */
static kmq_status lock_held_by_other(int fd, off_t start, off_t len, bool *held, off_t *other_start,
                                     const char *path, kmq_err *err)
{
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, F_GETLK, &probe) != 0)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot test the lock file %s: %s", path,
                           strerror(errno));
    *held = probe.l_type != F_UNLCK;
    *other_start = probe.l_start;
    return KMQ_OK;
}

/* Refuses a shard whose N differs from that of shards already running on
 * this root (see lock_output). */
static kmq_status lock_shard_count(int fd, const char *root, const char *path,
                                   const kmq_run_opts *opts, kmq_err *err)
{
    off_t mine = SHARD_COUNT_BASE + (off_t)opts->shard_count;
    struct flock count = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = mine, .l_len = 1};
    if (fcntl(fd, F_SETLK, &count) != 0)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot lock %s: %s", path, strerror(errno));
    bool held = false;
    off_t other = 0;
    kmq_status st =
        lock_held_by_other(fd, SHARD_COUNT_BASE, mine - SHARD_COUNT_BASE, &held, &other, path, err);
    if (st == KMQ_OK && !held)
        st = lock_held_by_other(fd, mine + 1, 0, &held, &other, path, err);
    if (st == KMQ_OK && held)
        st = kmq_err_set(err, KMQ_E_WRITE,
                         "output folder %s is in use by shards of N = %lld (lock %s is held); "
                         "--shard %u/%u cannot share it: use the same N or another output",
                         root, (long long)(other - SHARD_COUNT_BASE), path, opts->shard_index,
                         opts->shard_count);
    return st;
}

static kmq_status lock_output(const char *root, const kmq_run_opts *opts, int *fd_out, kmq_err *err)
{
    char *path = kmq_fsx_join(root, LOCK_NAME);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    bool shard = opts->shard_count > 1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    kmq_status st = KMQ_OK;
    struct flock whole = {
        .l_type = shard ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    struct flock mine = {.l_type = F_WRLCK,
                         .l_whence = SEEK_SET,
                         .l_start = 1 + (off_t)opts->shard_index,
                         .l_len = 1};
    if (fd < 0) {
        st = kmq_err_set(err, KMQ_E_WRITE, "cannot create the lock file %s: %s", path,
                         strerror(errno));
    } else if (fcntl(fd, F_SETLK, &whole) != 0) {
        st = KMQ_E_WRITE;
    } else if (shard) {
        /* The count first: a shard of another N is told so, even when it
         * has the index of one already running. */
        st = lock_shard_count(fd, root, path, opts, err);
        if (st == KMQ_OK && fcntl(fd, F_SETLK, &mine) != 0)
            st = KMQ_E_WRITE;
    }
    if (st != KMQ_OK && fd >= 0) {
        kmq_err_set(err, st,
                    "output folder %s is in use by another kmq run (lock %s is held); "
                    "wait for it to finish or choose another output",
                    root, path);
        close(fd); /* releases every lock this process took on the file */
        fd = -1;
    }
    kmq__free(path);
    *fd_out = fd;
    return st;
}

static void utc_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Removes the files below `dir` (one level of sub-folders, which is all
 * that libvips and its loaders make), never following a link, then `dir`
 * itself when `remove_self`. Best effort. */
static void clear_scratch(const char *dir, bool remove_self, int depth)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            char *sub = depth < 2 ? kmq_fsx_join(dir, e->d_name) : NULL;
            if (sub)
                clear_scratch(sub, true, depth + 1);
            kmq__free(sub);
        } else {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
    if (remove_self)
        rmdir(dir);
}

/* The run's scratch folder, OUT/.kmq-scratch/NAME, where libvips and its
 * loaders put temporary files (kmq_image_lib_set_temp_dir): inside OUT, so
 * a killed run leaves nothing elsewhere, and owned by this run through its
 * lock (a plain run owns all of .kmq-scratch, shard I its own folder), so
 * what a killed run left is removed here. Returns the folder (free it), or
 * NULL when it cannot be made: temporaries then go where they would have. */
static char *make_scratch(const char *root, const kmq_run_opts *opts)
{
    char *top = kmq_fsx_join(root, SCRATCH_NAME);
    char *name = opts->shard_count > 1 ? kmq__asprintf("shard-%u", opts->shard_index)
                                       : kmq__strdup("run");
    char *dir = top && name ? kmq_fsx_join(top, name) : NULL;
    kmq_err ignored = {0};
    if (dir) {
        if (opts->shard_count <= 1)
            clear_scratch(top, false, 0);
        else
            clear_scratch(dir, false, 1);
        if (kmq_fsx_mkdirs(root, SCRATCH_NAME, &ignored) != KMQ_OK ||
            (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
            kmq__free(dir);
            dir = NULL;
        }
    }
    kmq__free(top);
    kmq__free(name);
    return dir;
}

/* What the run keeps per input for the report: its folder, its config hash
 * (computed when it is processed or skipped, else at the end), and the
 * error summary of an image whose summary could not be written. */
typedef struct input_state {
    char *rel_dir;
    char hash[17];
    bool hashed;
    bool unrecorded;
    kmq_summary lost;
} input_state;

/* Rebuilds the run-level files with the run's facts and every image the
 * job lists now (kmq_report_build). */
static kmq_status write_run_files(const kmq_job *job, const kmq_run_opts *opts, double t_run,
                                  const kmq_input_list *inputs, input_state *states,
                                  const kmq_run_info *info, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_expected_image *expected = kmq__calloc(inputs->n ? inputs->n : 1, sizeof *expected);
    if (!expected)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < inputs->n; i++) {
        const kmq_input_file *in = &inputs->items[i];
        input_state *is = &states[i];
        if (!is->rel_dir && !(is->rel_dir = image_rel_dir(job, in))) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        if (!is->hashed && !cancelled(opts)) {
            /* Only an image with a summary needs its hash (to tell ok from
             * stale); after a signal none is read: the summaries of the
             * images the run did not reach are reported as they are. */
            char *summary = kmq_fsx_join(job->output, is->rel_dir);
            char *path = summary ? kmq_fsx_join(summary, SUMMARY_NAME) : NULL;
            struct stat sb;
            if (path && lstat(path, &sb) == 0) {
                file_stamp stamp = stamp_file(in->path);
                config_hash(&job->jobs[in->job], job->seed, in->path, in->rel, &stamp,
                            opts->cancel, is->hash);
                is->hashed = !cancelled(opts);
            }
            kmq__free(path);
            kmq__free(summary);
        }
        expected[i] = (kmq_expected_image){.job = job->jobs[in->job].name,
                                           .rel = in->rel,
                                           .path = in->path,
                                           .dir = is->rel_dir,
                                           .hash = is->hashed ? is->hash : NULL,
                                           .unrecorded = is->unrecorded ? &is->lost : NULL};
    }
    refused_sink sink = {opts, t_run};
    st = kmq_report_build(job->output, info, expected, inputs->n, report_refused, &sink, err);
done:
    kmq__free(expected);
    return st;
}

kmq_status kmq_runner_run(const kmq_job *job, const kmq_run_opts *opts, kmq_run_totals *totals,
                          kmq_err *err)
{
    assert(!kmq_par_in_parallel());
    double t_run = kmq_par_now_s();
    char started[32];
    utc_now(started);
    kmq_input_list inputs = {0};
    input_state *states = NULL;
    char *scratch = NULL;
    int lock_fd = -1;
    memset(totals, 0, sizeof *totals);

    kmq_status st = kmq_job_list_inputs(job, &inputs, err);
    if (st != KMQ_OK)
        goto done;
    for (size_t i = 0; i < inputs.n; i++)
        totals->images +=
            kmq_runner_in_shard(inputs.items[i].rel, opts->shard_index, opts->shard_count);
    if (opts->dry_run)
        goto done;
    states = kmq__calloc(inputs.n ? inputs.n : 1, sizeof *states);
    if (!states) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }

    st = kmq_fsx_mkdirs(job->output, "", err);
    if (st == KMQ_OK)
        st = lock_output(job->output, opts, &lock_fd, err);
    if (st != KMQ_OK) {
        kmq_err_where(err, "%s", job->output);
        goto done;
    }
    if (opts->shard_count <= 1)
        remove_stale_temps(job->output);
    scratch = make_scratch(job->output, opts);
    if (scratch && (st = kmq_image_lib_set_temp_dir(scratch, err)) != KMQ_OK)
        goto done;

    size_t index = 0;
    for (size_t i = 0; i < inputs.n && st == KMQ_OK; i++) {
        const kmq_input_file *in = &inputs.items[i];
        input_state *is = &states[i];
        if (!kmq_runner_in_shard(in->rel, opts->shard_index, opts->shard_count))
            continue;
        if (cancelled(opts)) {
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
            break;
        }
        const kmq_job_spec *spec = &job->jobs[in->job];
        kmq_progress prog = {
            .index = index++, .total = totals->images, .job = spec->name, .path = in->path};
        char *rel_dir = image_rel_dir(job, in);
        char *dir = rel_dir ? kmq_fsx_join(job->output, rel_dir) : NULL;
        char *summary_path = dir ? kmq_fsx_join(dir, SUMMARY_NAME) : NULL;
        kmq_summary s = {0};
        is->rel_dir = rel_dir; /* the state owns it from here */
        if (!summary_path) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto next;
        }
        /* The stamp is taken before the file is read for the hash, and
         * checked again after each pass and before the summary. */
        file_stamp stamp = stamp_file(in->path);
        config_hash(spec, job->seed, in->path, in->rel, &stamp, opts->cancel, is->hash);
        if (cancelled(opts)) { /* the hash may be unfinished: decide nothing on it */
            st = kmq_err_set(err, KMQ_E_INTERRUPTED, "interrupted");
            goto next;
        }
        is->hashed = true;
        if (!opts->force && already_done(summary_path, is->hash, opts, &prog, t_run)) {
            totals->skipped++;
            prog.event = KMQ_PROGRESS_IMAGE_SKIP;
            report_progress(opts, &prog, t_run);
            goto next;
        }
        prog.event = KMQ_PROGRESS_IMAGE_START;
        report_progress(opts, &prog, t_run);

        kmq_err image_err = {0};
        kmq_status ist = kmq_fsx_mkdirs(job->output, rel_dir, &image_err);
        bool have_dir = ist == KMQ_OK;
        if (have_dir) {
            /* A re-done image must not keep a stale "done" marker while it
             * is being rewritten (the marker goes first), nor files of k
             * values no longer in its list, nor a killed run's temporaries. */
            unlink(summary_path);
            remove_image_outputs(dir);
            ist = run_image(spec, job->seed, in, &stamp, is->hash, dir, opts, &prog, t_run, &s,
                            &image_err);
            if (ist == KMQ_OK)
                ist = sync_image_outputs(dir, &image_err);
            /* Last look before the summary says "done" for this stamp. */
            if (ist == KMQ_OK)
                ist = check_unchanged(in->path, &stamp, &image_err);
            /* A failed or abandoned image keeps no output file: its PNGs
             * without a summary would look done to a reader. */
            if (ist != KMQ_OK)
                remove_image_outputs(dir);
        }
        if (ist == KMQ_E_INTERRUPTED || ist == KMQ_E_NOMEM) {
            kmq_err_set(err, image_err.code, "%s", image_err.msg);
            kmq_err_where(err, "%s", in->path);
            st = ist;
            goto next;
        }
        if (ist != KMQ_OK) {
            totals->failed++;
            if (make_error_summary(&s, &image_err) != KMQ_OK) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto next;
            }
        } else {
            totals->done++;
        }
        kmq_err write_err = {0};
        bool recorded = false;
        /* Without a folder of its own (kmq_fsx_mkdirs refused a symlink or
         * file planted in the output tree) the failure is not written
         * there, which would follow the planted link: run.json lists it
         * from memory. */
        if (have_dir && kmq_summary_write(summary_path, &s, &write_err) == KMQ_OK) {
            recorded = true;
        } else if (have_dir) {
            /* The image cannot be recorded (disk full, folder gone): it
             * counts as failed, its files go (they would look done and
             * hold space), progress, the log and run.json say why, and the
             * batch goes on; the next run retries it. */
            if (ist == KMQ_OK) {
                totals->done--;
                totals->failed++;
                remove_image_outputs(dir);
                if (make_error_summary(&s, &write_err) != KMQ_OK) {
                    st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                    goto next;
                }
            }
            unlink(summary_path);
        }
        prog.event = KMQ_PROGRESS_IMAGE_DONE;
        prog.summary = &s;
        report_progress(opts, &prog, t_run);
        if (!recorded) {
            is->lost = s; /* kept for run.json; s is zeroed below */
            is->unrecorded = true;
            memset(&s, 0, sizeof s);
        }
    next:
        kmq_summary_clear(&s);
        kmq__free(summary_path);
        kmq__free(dir);
    }

    /* run.json is written for every run that got its lock, however it
     * ended: an interruption before the first image still leaves a record
     * that says so. */
    if (st == KMQ_OK || st == KMQ_E_INTERRUPTED) {
        totals->interrupted = st == KMQ_E_INTERRUPTED;
        kmq_run_info info = {.status = totals->interrupted
                                           ? "interrupted"
                                           : (totals->failed ? "failures" : "complete"),
                             .job_file = job->path && job->path[0] ? job->path : NULL,
                             .threads = opts->par.threads,
                             .wall_s = kmq_par_now_s() - t_run,
                             .started_utc = started};
        kmq_err report_err = {0};
        kmq_status rst = write_run_files(job, opts, t_run, &inputs, states, &info, &report_err);
        if (rst != KMQ_OK && st == KMQ_OK) {
            kmq_err_set(err, report_err.code, "%s", report_err.msg);
            kmq_err_where(err, "%s", report_err.where[0] ? report_err.where : job->output);
            st = rst;
        }
    }

done:
    if (scratch) {
        clear_scratch(scratch, true, 1);
        char *slash = strrchr(scratch, '/');
        if (slash) {
            *slash = '\0';
            rmdir(scratch); /* .kmq-scratch itself, once no shard has a folder there */
        }
        kmq__free(scratch);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    for (size_t i = 0; states && i < inputs.n; i++) {
        kmq__free(states[i].rel_dir);
        kmq_summary_clear(&states[i].lost);
    }
    kmq__free(states);
    kmq_input_list_clear(&inputs);
    return st;
}
