/* cmd_report.c — `kmq report OUTDIR [--job JOB.ini]`: rebuild the
 * run-level files from the summaries under OUTDIR, e.g. after the shards
 * of a job array wrote into it (layer L4).
 *
 * With shard records under OUTDIR (every `kmq run --shard` leaves one) or
 * --job, the report knows which images the job file lists now: missing ones
 * are "pending" in run.json, the shards that never ran or did not finish
 * are named with why, and the line that re-runs just those is printed
 * (kmq_runner_report). Without either, it reports the summaries it finds.
 *
 * Exit codes: 0 every image the job lists is done (or, without a job, the
 * files are rebuilt from every summary found); 1 some image failed, is
 * missing, or a summary.json did not read back (each named on stderr and
 * left out: the next `kmq run` redoes it); 2 no report is written (no
 * summary.json and no job, a job file that does not load, a write that
 * fails). A run.json that does not read back is named too; only its run
 * facts are lost, which leaves the exit code alone.
 */
#include "cli.h"

#include <stdio.h>

/* Names each file set aside; counts the summaries among them. */
static void print_refused(void *ctx, kmq_run_file file, const kmq_err *why)
{
    size_t *summaries = ctx;
    if (file == KMQ_RUN_FILE_SUMMARY) {
        (*summaries)++;
        kmq_cli_refused(stderr, why,
                        "left out of the report, its image not counted as done "
                        "(kmq run redoes it)");
    } else {
        kmq_cli_refused(stderr, why,
                        "its run facts (job file, threads, start, wall time) are not kept");
    }
}

/* Hands REFUSED events of a job-array report to print_refused. */
static void on_progress(void *ctx, const kmq_progress *p)
{
    if (p->event == KMQ_PROGRESS_REFUSED && p->refused)
        print_refused(ctx, KMQ_RUN_FILE_SUMMARY, p->refused);
}

static bool on_report_option(void *ctx, const kmq_cli_opt *opt, const char *v)
{
    (void)opt; /* --job is the only option */
    if (!v[0]) {
        fprintf(stderr, "kmq report: --job needs a job file\n");
        return false;
    }
    *(const char **)ctx = v;
    return true;
}

static const kmq_cli_opt report_opts[] = {
    {"job", 0, "JOB.ini", "from the shard records",
     "the job file whose images must be there; missing ones are listed"},
};

/* Prints what a job array still lacks; returns the exit code. */
static int tell_array(const char *out_root, const kmq_array_state *a, size_t refused)
{
    for (size_t i = 0; i < a->nrunning; i++)
        fprintf(stderr, "kmq: shard %u of %u is running now\n", (unsigned)a->running[i],
                (unsigned)a->count);
    for (size_t i = 0; i < a->nmissing; i++)
        fprintf(stderr, "kmq: shard %u of %u %s\n", (unsigned)a->missing[i], (unsigned)a->count,
                a->why[i]);
    fprintf(stderr, "kmq: %s: %zu images, %zu ok, %zu failed, %zu missing\n", out_root, a->images,
            a->ok, a->failed, a->not_done);
    if (a->rerun)
        printf("re-run the missing shards with:\n  %s\n", a->rerun);
    if (refused > 0)
        fprintf(stderr, "kmq: %zu summary.json file%s refused; the report leaves %s out\n",
                refused, refused == 1 ? " was" : "s were", refused == 1 ? "it" : "them");
    return a->failed || a->not_done || refused ? KMQ_EXIT_FAILURES : KMQ_EXIT_OK;
}

int kmq_cmd_report(int argc, char **argv)
{
    const char *job_path = NULL;
    const kmq_cli_command cmd = {
        .name = "report",
        .synopsis = "report OUTDIR [--job JOB.ini]",
        .about = "Rebuilds run.json, elbow.csv and index.html from the summaries under OUTDIR\n"
                 "(after the shards of a job array wrote into it, say). With the job file (from\n"
                 "the shard records, or --job), images it lists that are not done are listed\n"
                 "as missing, with the shards that never ran or did not finish and the line\n"
                 "that re-runs them.",
        .opts = report_opts,
        .nopts = sizeof report_opts / sizeof report_opts[0],
        .epilog = "exit codes: 0 written and complete, 1 written but images failed, are\n"
                  "missing or a summary.json was refused, 2 nothing to report or the files\n"
                  "could not be written"};
    const char *out_root = NULL;
    int parsed = kmq_cli_parse_one(&cmd, argc, argv, on_report_option, &job_path,
                                   "output folder", &out_root);
    if (parsed >= 0)
        return parsed;
    kmq_err err = {0};
    size_t refused = 0;
    kmq_array_state array = {0};
    kmq_run_opts opts = {.progress = on_progress, .progress_ctx = &refused};
    kmq_status st = kmq_runner_report(out_root, job_path, &opts, &array, &err);
    if (st == KMQ_OK) {
        int code = tell_array(out_root, &array, refused);
        kmq_array_state_clear(&array);
        return code;
    }
    bool no_array = st == KMQ_E_NOT_FOUND && !job_path && array.count == 0;
    kmq_array_state_clear(&array);
    if (!no_array) {
        kmq_cli_error(&err);
        return KMQ_EXIT_USAGE;
    }
    err = (kmq_err){0};
    if (kmq_report_build(out_root, NULL, NULL, 0, print_refused, &refused, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        return KMQ_EXIT_USAGE;
    }
    if (refused > 0) {
        fprintf(stderr, "kmq: %zu summary.json file%s refused; the report leaves %s out\n", refused,
                refused == 1 ? " was" : "s were", refused == 1 ? "it" : "them");
        return KMQ_EXIT_FAILURES;
    }
    return KMQ_EXIT_OK;
}
