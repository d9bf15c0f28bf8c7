/* cmd_report.c — `kmq report OUTDIR`: rebuild the run-level files from the
 * summaries under OUTDIR, e.g. after several shards wrote into it (layer L4).
 */
#include "cli.h"

#include <stdio.h>

int kmq_cmd_report(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: kmq report OUTDIR\n");
        return KMQ_EXIT_USAGE;
    }
    kmq_err err = {0};
    if (kmq_report_build(argv[1], NULL, NULL, 0, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        return KMQ_EXIT_USAGE;
    }
    return KMQ_EXIT_OK;
}
