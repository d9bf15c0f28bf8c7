/* cmd_validate.c — `kmq validate JOB.ini`: check a job file and list the
 * images each job would process, without touching the output (layer L4).
 */
#include "cli.h"

#include "kmq/job.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Every job key of the table with its effective value, in the job-file
 * syntax, so what is printed can be pasted back into a job file. */
static void print_spec(const kmq_job *job, const kmq_job_spec *spec)
{
    printf("[job %s]\n", spec->name);
    for (size_t i = 0; kmq_job_key(i); i++) {
        const kmq_job_key_info *key = kmq_job_key(i);
        if (strcmp(key->sections, "run") == 0 || strcmp(key->name, "input") == 0)
            continue;
        char value[1024];
        kmq_job_format_value(job, spec, key->name, value, sizeof value);
        printf("  %-16s = %s\n", key->name, value);
    }
}

int kmq_cmd_validate(int argc, char **argv)
{
    const kmq_cli_command cmd = {
        .name = "validate",
        .synopsis = "validate JOB.ini",
        .about = "Checks a job file (errors as FILE:LINE: message), prints every key's value\n"
                 "as resolved, and lists the images each job would process and the folders\n"
                 "left out because they hold kmq output. Touches nothing."};
    const char *job_path = NULL;
    int parsed =
        kmq_cli_parse_one(&cmd, argc, argv, kmq_cli_no_options, NULL, "job file", &job_path);
    if (parsed >= 0)
        return parsed;
    argv[1] = (char *)job_path;
    kmq_job job = {0};
    kmq_input_list inputs = {0}, skipped = {0};
    kmq_err err = {0};
    int code = KMQ_EXIT_USAGE;
    if (kmq_job_load(argv[1], &job, &err) != KMQ_OK ||
        kmq_runner_load_palettes(&job, &err) != KMQ_OK ||
        kmq_job_list_inputs_skipping(&job, &inputs, &skipped, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        goto done;
    }
    printf("%s: ok\noutput = %s\nthreads = %d\nseed = %llu\n", argv[1], job.output, job.threads,
           (unsigned long long)job.seed);
    for (size_t j = 0; j < job.njobs; j++) {
        print_spec(&job, &job.jobs[j]);
        size_t count = 0;
        for (size_t i = 0; i < inputs.n; i++)
            count += inputs.items[i].job == j;
        printf("  images           = %zu\n", count);
        for (size_t i = 0; i < inputs.n; i++)
            if (inputs.items[i].job == j) {
                /* One line per image whatever its name holds. */
                fputs("    ", stdout);
                kmq_cli_put_clean(stdout, inputs.items[i].path, SIZE_MAX);
                fputc('\n', stdout);
            }
    }
    for (size_t i = 0; i < skipped.n; i++) {
        fputs("skipped folder (", stdout);
        fputs(skipped.items[i].rel, stdout);
        fputs("): ", stdout);
        kmq_cli_put_clean(stdout, skipped.items[i].path, SIZE_MAX);
        fputc('\n', stdout);
    }
    code = KMQ_EXIT_OK;
done:
    kmq_input_list_clear(&skipped);
    kmq_input_list_clear(&inputs);
    kmq_job_clear(&job);
    return code;
}
