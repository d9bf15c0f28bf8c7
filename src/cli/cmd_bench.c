/* cmd_bench.c — `kmq bench`: thread-scaling study (layer L4). */
#include "cli.h"

#include <stdio.h>

int kmq_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kmq bench: not part of this build yet\n");
    return KMQ_EXIT_USAGE;
}
