/* report_palette.c — shared palettes in the report (layer L3, private to
 * the report): a job's shared palette shown once in its block of the
 * overview, and each image's error under it beside its own palette's
 * where the same inputs also ran in a job with palette = per_image.
 * Serial; no parallel region.
 */
#include "report_page.h"

#include "kmq/fsx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_path(const void *a, const void *b)
{
    const kmq_summary *x = *(const kmq_summary *const *)a, *y = *(const kmq_summary *const *)b;
    return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

kmq_status kmq__own_palettes_index(const kmq_run_image *images, size_t n, kmq__own_palettes *own,
                                   kmq_err *err)
{
    own->v = kmq__calloc(n ? n : 1, sizeof *own->v);
    own->n = 0;
    if (!own->v)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const kmq_summary *s = images[i].summary;
        if (s->ok && !s->palette_mode && s->path)
            own->v[own->n++] = s;
    }
    qsort(own->v, own->n, sizeof *own->v, by_path);
    return KMQ_OK;
}

void kmq__own_palettes_clear(kmq__own_palettes *own)
{
    kmq__free(own->v);
    own->v = NULL;
    own->n = 0;
}

const kmq_k_result *kmq__own_palette_result(const kmq__own_palettes *own, const kmq_summary *s,
                                            size_t k)
{
    if (!own || !own->n || !s->palette_mode || !s->path)
        return NULL;
    const kmq_summary **hit = bsearch(&s, own->v, own->n, sizeof *own->v, by_path);
    if (!hit)
        return NULL;
    while (hit > own->v && by_path(hit - 1, &s) == 0)
        hit--; /* the same input in several per-image jobs: the first */
    for (; hit < own->v + own->n && by_path(hit, &s) == 0; hit++)
        for (size_t r = 0; r < (*hit)->nresults; r++)
            if ((*hit)->results[r].k == k)
                return &(*hit)->results[r];
    return NULL;
}

/* What the first k's kK.palette.json says of the fit: the images it
 * covered, and the palette it replaced when the job's images changed. */
static void provenance(page *p, const char *dir, const kmq_summary *s)
{
    char name[64];
    snprintf(name, sizeof name, "k%zu.palette.json", s->results[0].k);
    char *d = kmq_fsx_join(p->root, dir);
    char *path = d ? kmq_fsx_join(d, name) : NULL;
    kmq_palette *pal = kmq__alloc(sizeof *pal);
    kmq_err ignored = {0};
    if (!d || !path || !pal)
        p->buf.failed = true;
    else if (kmq_palette_load(path, pal, &ignored) == KMQ_OK &&
             strcmp(pal->hash, s->palette_hash) == 0) {
        page_fmt(p, "<br>fitted once on the union of %zu image%s", pal->images,
                 pal->images == 1 ? "" : "s");
        if (pal->replaces[0])
            page_fmt(p,
                     "; <b>refitted</b>: the job's images or keys changed since the palette "
                     "<code>%s</code> of %zu image%s, so every image was mapped again",
                     pal->replaces, pal->replaces_images, pal->replaces_images == 1 ? "" : "s");
    }
    kmq__free(pal);
    kmq__free(path);
    kmq__free(d);
}

void kmq__report_shared_palette(page *p, const kmq_run_image *images, size_t n,
                                const kmq__own_palettes *own)
{
    const kmq_summary *s = NULL;
    for (size_t i = 0; i < n && !s; i++)
        if (images[i].summary->ok && images[i].summary->palette_mode &&
            strcmp(images[i].summary->palette_mode, "shared") == 0)
            s = images[i].summary;
    if (!s || !s->nresults)
        return;
    char *job_dir = kmq_fsx_join(s->job, "_palette");
    if (!job_dir) {
        p->buf.failed = true;
        return;
    }
    page_raw(p, "<p class=\"shared-palette\">shared palette <code>");
    page_esc(p, s->palette_hash);
    page_raw(p, "</code>:");
    const char *dir = job_dir; /* _palette/ at the root for kmq quantize */
    for (size_t r = 0; r < s->nresults; r++) {
        char name[64];
        snprintf(name, sizeof name, "k%zu.palette.png", s->results[r].k);
        dir = page_exists(p, job_dir, name) ? job_dir : "_palette";
        page_fmt(p, " k = %zu <img alt=\"shared palette k = %zu\" height=\"16\" src=\"",
                 s->results[r].k, s->results[r].k);
        page_url(p, dir, name);
        page_raw(p, "\">");
    }
    provenance(p, dir, s);
    for (size_t r = 0; r < s->nresults; r++) {
        size_t k = s->results[r].k, both = 0;
        double shared_db = 0, own_db = 0;
        for (size_t i = 0; i < n; i++) {
            const kmq_summary *t = images[i].summary;
            const kmq_k_result *mine = t->ok ? kmq__own_palette_result(own, t, k) : NULL;
            for (size_t q = 0; mine && q < t->nresults; q++)
                if (t->results[q].k == k && t->results[q].mse_output > 0 && mine->mse_output > 0) {
                    shared_db += t->results[q].psnr_db;
                    own_db += mine->psnr_db;
                    both++;
                }
        }
        if (!both)
            continue;
        page_fmt(p,
                 "<br>k = %zu, mean PSNR over the %zu image%s also fitted on their own "
                 "palette: shared ",
                 k, both, both == 1 ? "" : "s");
        page_num(p, shared_db / (double)both, 2);
        page_raw(p, " dB, own ");
        page_num(p, own_db / (double)both, 2);
        page_raw(p, " dB");
    }
    page_raw(p, "</p>\n");
    kmq__free(job_dir);
}
