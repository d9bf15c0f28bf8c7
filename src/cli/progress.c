/* progress.c — progress on stderr and in the log file (layer L4).
 *
 * On a terminal: one live line, rewritten in place (images done/total,
 * current image, stage and k, elapsed, ETA). Otherwise, and always in the
 * --log file: one timestamped line per finished, failed or skipped image.
 * --quiet silences stderr, not the log.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void kmq_cli_progress_init(kmq_cli_progress *p, bool quiet, FILE *log)
{
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->live = !quiet && isatty(STDERR_FILENO);
    p->log = log;
}

static void timestamp(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void format_duration(double s, char *out, size_t size)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, size, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(out, size, "%ldm%02lds", t / 60, t % 60);
}

static void plain_line(FILE *out, const kmq_progress *ev)
{
    char ts[32];
    timestamp(ts);
    fprintf(out, "%s [%zu/%zu] ", ts, ev->index + 1, ev->total);
    kmq_cli_put_clean(out, ev->path, 4096);
    if (ev->event == KMQ_PROGRESS_IMAGE_SKIP) {
        fputs(": already done, skipped\n", out);
    } else if (ev->summary && ev->summary->ok) {
        fprintf(out, ": ok, %zu k values, %.2f s\n", ev->summary->nresults, ev->summary->total_s);
    } else if (ev->summary) {
        fprintf(out, ": FAILED (%s) ", ev->summary->error_code);
        kmq_cli_put_clean(out, ev->summary->error_message ? ev->summary->error_message : "", 4096);
        fputc('\n', out);
    }
    fflush(out);
}

/* A summary.json set aside: what happens instead. */
static const char *refused_then(const kmq_progress *ev)
{
    return ev->path ? "the image is processed again"
                    : "left out of run.json, its image not counted as done";
}

void kmq_cli_progress_cb(void *ctx, const kmq_progress *ev)
{
    kmq_cli_progress *p = ctx;
    if (ev->event == KMQ_PROGRESS_REFUSED) {
        /* Not a failure of this run: stays on screen, goes to the log. */
        if (p->log) {
            char ts[32];
            timestamp(ts);
            fprintf(p->log, "%s ", ts);
            kmq_cli_refused(p->log, ev->refused, refused_then(ev));
        }
        if (!p->quiet) {
            if (p->line_open)
                fputs("\r\033[K", stderr);
            p->line_open = false;
            kmq_cli_refused(stderr, ev->refused, refused_then(ev));
        }
        return;
    }
    bool finished = ev->event == KMQ_PROGRESS_IMAGE_DONE || ev->event == KMQ_PROGRESS_IMAGE_SKIP;
    if (finished) {
        if (ev->event == KMQ_PROGRESS_IMAGE_SKIP)
            p->skipped++;
        else if (ev->summary && ev->summary->ok)
            p->ok++;
        else
            p->failed++;
        if (p->log)
            plain_line(p->log, ev);
    }
    if (p->quiet)
        return;
    if (!p->live) {
        if (finished)
            plain_line(stderr, ev);
        return;
    }
    size_t done = p->ok + p->failed + p->skipped;
    char elapsed[32], eta[32] = "--";
    format_duration(ev->elapsed_s, elapsed, sizeof elapsed);
    size_t worked = p->ok + p->failed;
    if (worked > 0 && done < ev->total)
        format_duration(ev->elapsed_s / (double)worked * (double)(ev->total - done), eta,
                        sizeof eta);
    fprintf(stderr, "\r\033[K[%zu/%zu] %s elapsed, ETA %s | ", done, ev->total, elapsed, eta);
    kmq_cli_put_clean(stderr, ev->path, 40);
    if (ev->event == KMQ_PROGRESS_STAGE)
        fprintf(stderr, " %s", ev->stage);
    if (ev->event == KMQ_PROGRESS_STAGE && ev->k)
        fprintf(stderr, " k=%zu", ev->k);
    if (finished && ev->summary && !ev->summary->ok) {
        /* Failures stay on screen above the live line. */
        fputs("\r\033[K", stderr);
        plain_line(stderr, ev);
    }
    fflush(stderr);
    p->line_open = true;
}

void kmq_cli_progress_finish(kmq_cli_progress *p, const kmq_run_totals *t, double wall_s)
{
    if (p->line_open)
        fputs("\r\033[K", stderr);
    if (!p->quiet)
        fprintf(stderr, "kmq: %zu images: %zu done, %zu already done, %zu failed in %.1f s\n",
                t->images, t->done, t->skipped, t->failed, wall_s);
    if (p->log) {
        char ts[32];
        timestamp(ts);
        fprintf(p->log, "%s run ended: %zu images, %zu done, %zu skipped, %zu failed%s\n", ts,
                t->images, t->done, t->skipped, t->failed, t->interrupted ? ", interrupted" : "");
        fflush(p->log);
    }
}
