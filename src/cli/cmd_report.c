/* cmd_report.c — `kmq report OUTDIR`: rebuild the run-level files from the
 * summaries under OUTDIR, e.g. after several shards wrote into it (layer L4).
 *
 * Exit codes: 0 when the files are rebuilt from every summary found, failed
 * images included (their summaries record them faithfully); 1 when a
 * summary.json did not read back: each is named on stderr with the field
 * at fault and left out (report.c), the files are written all the same, but
 * they do not cover that image, and the next `kmq run` redoes it; 2 when no
 * report is written (no summary.json at all, a write that fails). A run.json
 * that does not read back is named too; only its run facts are lost, which
 * leaves the exit code alone.
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

int kmq_cmd_report(int argc, char **argv)
{
    const kmq_cli_command cmd = {
        .name = "report",
        .synopsis = "report OUTDIR",
        .about = "Rebuilds run.json, elbow.csv and index.html from the summaries under OUTDIR\n"
                 "(after several shards wrote into it, say), keeping the run's own facts from\n"
                 "the existing run.json.",
        .epilog = "exit codes: 0 written, 1 written but some summary.json was refused, 2 no\n"
                  "summary.json at all or the files could not be written"};
    const char *out_root = NULL;
    int parsed = kmq_cli_parse_one(&cmd, argc, argv, kmq_cli_no_options, NULL, "output folder",
                                   &out_root);
    if (parsed >= 0)
        return parsed;
    kmq_err err = {0};
    size_t refused = 0;
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
