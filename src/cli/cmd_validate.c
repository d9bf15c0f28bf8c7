/* cmd_validate.c — `kmq validate JOB.ini`: check a job file and list the
 * images each job would process, without touching the output (layer L4).
 */
#include "cli.h"

#include "kmq/job.h"

#include <stdio.h>

static void print_spec(const kmq_job_spec *spec)
{
    printf("[job %s]\n  k          =", spec->name);
    for (size_t i = 0; i < spec->nk; i++)
        printf("%s %zu", i ? "," : "", spec->k[i]);
    printf("\n  restarts   = %d\n  max_iter   = %d\n  tol        = %g\n", spec->restarts,
           spec->max_iter, spec->tol);
    printf("  init       = %s\n", spec->init == KMQ_INIT_RANDOM ? "random" : "kmeans++");
    printf("  sample     = %llu\n", (unsigned long long)spec->sample);
    printf("  save       =%s%s%s\n", spec->save & KMQ_SAVE_INDEXED ? " indexed" : "",
           spec->save & KMQ_SAVE_LABELS ? " labels" : "",
           spec->save & KMQ_SAVE_PALETTE ? " palette" : "");
    printf("  background = #%02x%02x%02x\n", spec->background[0], spec->background[1],
           spec->background[2]);
    printf("  max_pixels = %llu\n", (unsigned long long)spec->max_pixels);
    printf("  recursive  = %s\n", spec->recursive ? "true" : "false");
    printf("  identity   = %s\n", spec->identity == KMQ_IDENTITY_CONTENT ? "content" : "quick");
}

int kmq_cmd_validate(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: kmq validate JOB.ini\n");
        return KMQ_EXIT_USAGE;
    }
    kmq_job job = {0};
    kmq_input_list inputs = {0};
    kmq_err err = {0};
    int code = KMQ_EXIT_USAGE;
    if (kmq_job_load(argv[1], &job, &err) != KMQ_OK ||
        kmq_job_list_inputs(&job, &inputs, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        goto done;
    }
    printf("%s: ok\noutput = %s\nthreads = %d\nseed = %llu\n", argv[1], job.output, job.threads,
           (unsigned long long)job.seed);
    for (size_t j = 0; j < job.njobs; j++) {
        print_spec(&job.jobs[j]);
        size_t count = 0;
        for (size_t i = 0; i < inputs.n; i++)
            count += inputs.items[i].job == j;
        printf("  images     = %zu\n", count);
        for (size_t i = 0; i < inputs.n; i++)
            if (inputs.items[i].job == j)
                printf("    %s\n", inputs.items[i].path);
    }
    code = KMQ_EXIT_OK;
done:
    kmq_input_list_clear(&inputs);
    kmq_job_clear(&job);
    return code;
}
