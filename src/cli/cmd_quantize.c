/* cmd_quantize.c — `kmq quantize IMAGE -k K,...`: a run of one image
 * (layer L4). Builds the job in memory, with the image's folder directly
 * under the output folder (no job level, docs/design.md).
 */
#include "cli.h"

#include "kmq/job.h"
#include "kmq/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options: -k, -o, --seed, --threads, --quiet, and one flag per job key
 * of the table (kmq_job_key), spelled with '-' for '_', with the table's
 * default and help, and parsed by the table's own parser. */
#define MAX_OPTS 48

typedef struct quantize_args {
    kmq_job_spec *spec;
    const char *k_text, *out_dir;
    unsigned long long seed, threads;
    bool quiet;
    kmq_err err;
    char flag_names[MAX_OPTS][40];
    kmq_cli_opt opts[MAX_OPTS];
    const char *key_of[MAX_OPTS]; /* job key behind opts[i], or NULL */
    size_t nopts;
} quantize_args;

static void add_opt(quantize_args *a, const char *name, char short_name, const char *arg,
                    const char *def, const char *help, const char *key)
{
    if (a->nopts == MAX_OPTS)
        return;
    snprintf(a->flag_names[a->nopts], sizeof a->flag_names[a->nopts], "%s", name);
    for (char *p = a->flag_names[a->nopts]; *p; p++)
        if (*p == '_')
            *p = '-';
    a->opts[a->nopts] = (kmq_cli_opt){a->flag_names[a->nopts], short_name, arg, def, help};
    a->key_of[a->nopts++] = key;
}

static const kmq_job_key_info *key_named(const char *name)
{
    for (size_t i = 0; kmq_job_key(i); i++)
        if (strcmp(kmq_job_key(i)->name, name) == 0)
            return kmq_job_key(i);
    return NULL;
}

static void build_options(quantize_args *a)
{
    const kmq_job_key_info *k = key_named("k"), *seed = key_named("seed"),
                           *threads = key_named("threads");
    add_opt(a, "k", 'k', "LIST", NULL, k->help, NULL);
    add_opt(a, "output", 'o', "DIR", "kmq-out", "output folder; the image's folder goes in it",
            NULL);
    add_opt(a, "seed", 0, "N", seed->default_value, seed->help, NULL);
    add_opt(a, "threads", 0, "N", threads->default_value, threads->help, NULL);
    for (size_t i = 0; kmq_job_key(i); i++) {
        const kmq_job_key_info *key = kmq_job_key(i);
        if (strcmp(key->sections, "defaults, job") != 0 || strcmp(key->name, "k") == 0)
            continue;
        add_opt(a, key->name, 0, "VALUE", key->default_value, key->help, key->name);
    }
    add_opt(a, "quiet", 'q', NULL, NULL, "no progress on stderr", NULL);
}

static bool on_option(void *ctx, const kmq_cli_opt *opt, const char *value)
{
    quantize_args *a = ctx;
    size_t i = (size_t)(opt - a->opts);
    if (a->key_of[i]) {
        if (kmq_job_spec_set(a->spec, a->key_of[i], value, &a->err) != KMQ_OK) {
            fprintf(stderr, "kmq quantize: --%s: %s\n", opt->name, a->err.msg);
            return false;
        }
        return true;
    }
    if (strcmp(opt->name, "k") == 0)
        a->k_text = value;
    else if (strcmp(opt->name, "output") == 0)
        a->out_dir = value;
    else if (strcmp(opt->name, "seed") == 0)
        return kmq_cli_parse_uint("--seed", value, INT64_MAX, &a->seed);
    else if (strcmp(opt->name, "threads") == 0)
        return kmq_cli_parse_uint("--threads", value, 4096, &a->threads);
    else if (strcmp(opt->name, "quiet") == 0)
        a->quiet = true;
    return true;
}

int kmq_cmd_quantize(int argc, char **argv)
{
    kmq_job_spec spec;
    kmq_job_spec_defaults(&spec);
    quantize_args *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "kmq quantize: out of memory\n");
        return KMQ_EXIT_USAGE;
    }
    a->spec = &spec;
    a->out_dir = "kmq-out";
    build_options(a);
    kmq_cli_command cmd = {
        .name = "quantize",
        .synopsis = "quantize IMAGE -k K[,K2,...] [options]",
        .about = "Quantizes one image (or each image of a folder) with k-means for every k given,\n"
                 "into OUTDIR/NAME/ (kK.png, summary.json, ...), like a job of one image.\n"
                 "Every job-file key is also a flag here (--max-iter or --max_iter).",
        .opts = a->opts,
        .nopts = a->nopts,
        .epilog = "exit codes: 0 done, 1 the image failed, 2 usage error, 130 interrupted"};
    const char *pos[1];
    size_t npos = 0;
    int parsed = kmq_cli_parse(&cmd, argc, argv, on_option, a, pos, 1, &npos);
    const char *image = npos ? pos[0] : NULL;
    const char *k_text = a->k_text, *out_dir = a->out_dir;
    unsigned long long seed = a->seed, threads = a->threads;
    bool quiet = a->quiet;
    free(a);
    if (parsed != KMQ_CLI_OK) {
        free(spec.k);
        free(spec.palette_file);
        return parsed == KMQ_CLI_HELP ? KMQ_EXIT_OK : KMQ_EXIT_USAGE;
    }
    bool have_k = k_text && k_text[0];
    if (!image || have_k == (spec.palette_file != NULL)) {
        fprintf(stderr, "kmq quantize: %s\nusage: kmq %s\n",
                !image   ? "which image? give its path"
                : have_k ? "-k and a palette file exclude each other: the palette's size is k"
                         : "-k is required, e.g. -k 8 or -k 4,8,16 (or --palette-file FILE)",
                cmd.synopsis);
        free(spec.k);
        free(spec.palette_file);
        return KMQ_EXIT_USAGE;
    }

    kmq_job job = {0};
    kmq_job_input input = {.pattern = (char *)image, .line = 0};
    kmq_err err = {0};
    int code = KMQ_EXIT_USAGE;
    if (have_k && kmq_job_spec_set(&spec, "k", k_text, &err) != KMQ_OK) {
        kmq_err_where(&err, "-k");
        kmq_cli_error(&err);
        free(spec.k);
        free(spec.palette_file);
        return KMQ_EXIT_USAGE;
    }
    spec.name = "quantize";
    spec.inputs = &input;
    spec.ninputs = 1;
    if (kmq_job_spec_check(&spec, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        goto done;
    }
    job.path = "";
    job.base_dir = ".";
    job.output = (char *)out_dir;
    job.seed = seed;
    job.threads = (int)threads;
    job.flat = true;
    job.jobs = &spec;
    job.njobs = 1;
    if (kmq_runner_load_palettes(&job, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        goto done;
    }

    kmq_run_opts opts = {.force = true};
    opts.par.threads = kmq_cli_start(argv[0], (int)threads);
    if (opts.par.threads == 0)
        goto done;
    code = kmq_cli_run_job(&job, &opts, quiet, NULL);
done:
    /* The owned fields: everything else points at argv. */
    free(spec.k);
    free(spec.palette_file);
    free(spec.given);
    return code;
}
