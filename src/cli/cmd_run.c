/* cmd_run.c — `kmq run JOB.ini`: a whole job file (layer L4). */
#include "cli.h"

#include "kmq/job.h"
#include "kmq/par.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KMQ_IMAGE_MODE=stream|whole|auto: how images are read (docs/design.md). The
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
    if (st == KMQ_OK && opts.dry_run) {
        /* What a run would do now, not a run's tally. */
        if (!quiet)
            fprintf(stderr, "kmq: %zu images%s: %zu already done, %zu to process (dry run)\n",
                    totals.images, opts.shard_count > 1 ? " in this shard" : "", totals.skipped,
                    totals.images - totals.skipped);
        return KMQ_EXIT_OK;
    }
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

static const kmq_cli_opt run_opts[] = {
    {"threads", 0, "N", "0",
     "OpenMP threads; 0: all cores (OMP_NUM_THREADS honoured); overrides the "
     "job file's threads"},
    {"shard", 0, "I/N", NULL, "process only shard I of N (0 <= I < N), for cluster job arrays"},
    {"force", 0, NULL, NULL, "redo images already done"},
    {"dry-run", 'n', NULL, NULL,
     "count the images already done and those that would run; process nothing"},
    {"log", 0, "FILE", NULL, "append one timestamped line per image to FILE"},
    {"quiet", 'q', NULL, NULL, "no progress on stderr"},
};

typedef struct run_args {
    kmq_run_opts *opts;
    const char *log_path;
    long threads;
    bool quiet;
} run_args;

static bool on_run_option(void *ctx, const kmq_cli_opt *opt, const char *v)
{
    run_args *a = ctx;
    unsigned long long n;
    if (strcmp(opt->name, "threads") == 0) {
        if (!kmq_cli_parse_uint("--threads", v, 4096, &n))
            return false;
        a->threads = (long)n;
    } else if (strcmp(opt->name, "shard") == 0) {
        unsigned i, count;
        char tail;
        if (sscanf(v, "%u/%u%c", &i, &count, &tail) != 2 || count == 0 || i >= count) {
            fprintf(stderr, "kmq run: --shard expects I/N with 0 <= I < N, not '%s'\n", v);
            return false;
        }
        a->opts->shard_index = i;
        a->opts->shard_count = count;
    } else if (strcmp(opt->name, "force") == 0) {
        a->opts->force = true;
    } else if (strcmp(opt->name, "dry-run") == 0) {
        a->opts->dry_run = true;
    } else if (strcmp(opt->name, "log") == 0) {
        if (!v[0]) {
            fprintf(stderr, "kmq run: --log needs a file name\n");
            return false;
        }
        a->log_path = v;
    } else if (strcmp(opt->name, "quiet") == 0) {
        a->quiet = true;
    }
    return true;
}

/* The job file and the palette files it names; false (reported) when
 * either is bad, so that nothing runs. */
static bool load_job(const char *path, kmq_job *job)
{
    kmq_err err = {0};
    if (kmq_job_load(path, job, &err) == KMQ_OK && kmq_runner_load_palettes(job, &err) == KMQ_OK)
        return true;
    kmq_cli_error(&err);
    kmq_job_clear(job);
    return false;
}

int kmq_cmd_run(int argc, char **argv)
{
    kmq_run_opts opts = {0};
    run_args args = {.opts = &opts, .threads = -1};
    const kmq_cli_command cmd = {
        .name = "run",
        .synopsis = "run JOB.ini [options]",
        .about = "Processes every image of a job file into its output root. Images already done\n"
                 "with the same configuration are skipped, so running it again resumes.\n"
                 "The job-file keys: kmq help keys.",
        .opts = run_opts,
        .nopts = sizeof run_opts / sizeof run_opts[0],
        .epilog = "exit codes: 0 all images done, 1 some failed, 2 usage or job-file error,\n"
                  "130 interrupted (run.json says so; run again to finish)"};
    const char *job_path = NULL;
    int parsed = kmq_cli_parse_one(&cmd, argc, argv, on_run_option, &args, "job file", &job_path);
    if (parsed >= 0)
        return parsed;
    const char *log_path = args.log_path;
    bool quiet = args.quiet;
    long threads = args.threads;

    kmq_job job = {0};
    if (!load_job(job_path, &job))
        return KMQ_EXIT_USAGE;
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

static const kmq_cli_opt palette_opts[] = {
    {"threads", 0, "N", "0",
     "OpenMP threads; 0: all cores (OMP_NUM_THREADS honoured); overrides the "
     "job file's threads"},
    {"quiet", 'q', NULL, NULL, "print nothing on success"},
};

/* `kmq palette JOB.ini`: the shared palettes of a job file, computed once
 * (or found up to date), so that the shards of a cluster run only map. */
int kmq_cmd_palette(int argc, char **argv)
{
    run_args args = {.threads = -1};
    kmq_run_opts opts = {0};
    args.opts = &opts;
    const kmq_cli_command cmd = {
        .name = "palette",
        .synopsis = "palette JOB.ini [options]",
        .about = "Computes the shared palette of every job with palette = shared into\n"
                 "OUT/JOB/_palette/ (or finds it up to date), so that `kmq run --shard I/N`\n"
                 "only maps. Run it once before the shards of a cluster run.",
        .opts = palette_opts,
        .nopts = sizeof palette_opts / sizeof palette_opts[0],
        .epilog = "exit codes: 0 done, 2 usage or job-file error, or a palette that could not be "
                  "made, 130 interrupted"};
    const char *job_path = NULL;
    int parsed = kmq_cli_parse_one(&cmd, argc, argv, on_run_option, &args, "job file", &job_path);
    if (parsed >= 0)
        return parsed;
    kmq_job job = {0};
    if (!load_job(job_path, &job))
        return KMQ_EXIT_USAGE;
    int code = KMQ_EXIT_USAGE;
    opts.par.threads = kmq_cli_start(argv[0], args.threads >= 0 ? (int)args.threads : job.threads);
    if (opts.par.threads == 0)
        goto done;
    if (!image_mode_from_env(&opts.image_mode))
        goto done;
    opts.cancel = &kmq_cli_cancel;
    size_t fitted = 0;
    kmq_err err = {0};
    kmq_status st = kmq_runner_palette(&job, &opts, &fitted, &err);
    if (st == KMQ_E_INTERRUPTED) {
        code = KMQ_EXIT_INTERRUPTED;
    } else if (st != KMQ_OK) {
        kmq_cli_error(&err);
    } else {
        if (!args.quiet)
            fprintf(
                stderr,
                fitted ? "kmq palette: %zu job(s) with palette = shared, palettes in JOB/_palette/ "
                         "of %s\n"
                       : "kmq palette: no job has palette = shared (%zu); nothing to do in %s\n",
                fitted, job.output);
        code = KMQ_EXIT_OK;
    }
done:
    kmq_job_clear(&job);
    return code;
}
