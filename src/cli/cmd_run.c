/* cmd_run.c — `kmq run JOB.ini`: a whole job file (layer L4). */
#include "cli.h"

#include "kmq/job.h"
#include "kmq/par.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past the value. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "kmq: %s needs a value\n", name);
        return "";
    }
    return argv[++*i];
}

/* KMQ_IMAGE_MODE=stream|whole|auto: how images are read (DESIGN §2). The
 * default, auto, keeps small images decoded between the two passes; the
 * others exist so tests and benchmarks can compare the paths, whose results
 * are identical. */
static bool image_mode_from_env(kmq_image_mode *mode)
{
    const char *v = getenv("KMQ_IMAGE_MODE");
    if (!v || !v[0] || strcmp(v, "auto") == 0)
        *mode = KMQ_IMAGE_AUTO;
    else if (strcmp(v, "stream") == 0)
        *mode = KMQ_IMAGE_STREAM;
    else if (strcmp(v, "whole") == 0)
        *mode = KMQ_IMAGE_WHOLE;
    else {
        fprintf(stderr, "kmq: KMQ_IMAGE_MODE must be auto, stream or whole, not '%s'\n", v);
        return false;
    }
    return true;
}

int kmq_cli_run_job(const kmq_job *job, const kmq_run_opts *base, bool quiet, FILE *log)
{
    kmq_cli_progress progress;
    kmq_cli_progress_init(&progress, quiet, log);
    kmq_run_opts opts = *base;
    if (!image_mode_from_env(&opts.image_mode))
        return KMQ_EXIT_USAGE;
    opts.progress = kmq_cli_progress_cb;
    opts.progress_ctx = &progress;
    opts.cancel = &kmq_cli_cancel;

    double t0 = kmq_par_now_s();
    kmq_run_totals totals = {0};
    kmq_err err = {0};
    kmq_status st = kmq_runner_run(job, &opts, &totals, &err);
    if (st == KMQ_OK || st == KMQ_E_INTERRUPTED)
        kmq_cli_progress_finish(&progress, &totals, kmq_par_now_s() - t0);
    /* A signal after the last image (while run.json was written) still
     * means "interrupted" to whoever sent it: every image is recorded, and
     * run.json says what is done. */
    if (st == KMQ_OK && atomic_load(&kmq_cli_cancel))
        st = KMQ_E_INTERRUPTED;
    if (st == KMQ_E_INTERRUPTED) {
        fprintf(stderr, "kmq: interrupted; %zu of %zu images done, run it again to finish\n",
                totals.done + totals.skipped, totals.images);
        return KMQ_EXIT_INTERRUPTED;
    }
    if (st != KMQ_OK && totals.done + totals.skipped + totals.failed > 0) {
        /* Images were processed and recorded, but the run could not finish
         * its own files (run.json on a full disk): a failed run, not a
         * usage error; every image's state is in its summary and the log. */
        kmq_cli_progress_finish(&progress, &totals, kmq_par_now_s() - t0);
        kmq_cli_error(&err);
        return KMQ_EXIT_FAILURES;
    }
    if (st != KMQ_OK) {
        kmq_cli_error(&err);
        return KMQ_EXIT_USAGE;
    }
    return totals.failed ? KMQ_EXIT_FAILURES : KMQ_EXIT_OK;
}

int kmq_cmd_run(int argc, char **argv)
{
    const char *job_path = NULL, *log_path = NULL;
    bool quiet = false;
    long threads = -1;
    kmq_run_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *v;
        unsigned long long n;
        if ((v = option_value(argc, argv, &i, "--threads"))) {
            if (!kmq_cli_parse_uint("--threads", v, 4096, &n))
                return KMQ_EXIT_USAGE;
            threads = (long)n;
        } else if ((v = option_value(argc, argv, &i, "--shard"))) {
            unsigned a, b;
            char tail;
            if (sscanf(v, "%u/%u%c", &a, &b, &tail) != 2 || b == 0 || a >= b) {
                fprintf(stderr, "kmq: --shard expects I/N with 0 <= I < N, not '%s'\n", v);
                return KMQ_EXIT_USAGE;
            }
            opts.shard_index = a;
            opts.shard_count = b;
        } else if ((v = option_value(argc, argv, &i, "--log"))) {
            if (!v[0])
                return KMQ_EXIT_USAGE;
            log_path = v;
        } else if (strcmp(argv[i], "--force") == 0) {
            opts.force = true;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            opts.dry_run = true;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "kmq run: unknown option '%s'\n", argv[i]);
            return KMQ_EXIT_USAGE;
        } else if (!job_path) {
            job_path = argv[i];
        } else {
            fprintf(stderr, "kmq run: one job file only ('%s' is extra)\n", argv[i]);
            return KMQ_EXIT_USAGE;
        }
    }
    if (!job_path) {
        fprintf(stderr, "usage: kmq run JOB.ini [--threads N] [--shard I/N] [--force] "
                        "[--dry-run] [--quiet] [--log FILE]\n");
        return KMQ_EXIT_USAGE;
    }

    kmq_job job = {0};
    kmq_err err = {0};
    if (kmq_job_load(job_path, &job, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        return KMQ_EXIT_USAGE;
    }
    int code = KMQ_EXIT_USAGE;
    FILE *log = NULL;
    if (log_path) {
        log = fopen(log_path, "a");
        if (!log) {
            perror(log_path);
            goto done;
        }
    }
    opts.par.threads = kmq_cli_start(argv[0], threads >= 0 ? (int)threads : job.threads);
    if (opts.par.threads == 0)
        goto done;
    code = kmq_cli_run_job(&job, &opts, quiet, log);
done:
    if (log)
        fclose(log);
    kmq_job_clear(&job);
    return code;
}
