/* cmd_quantize.c — `kmq quantize IMAGE -k K,...`: a run of one image
 * (layer L4). Builds the job in memory, with the image's folder directly
 * under the output folder (no job level, DESIGN §5).
 */
#include "cli.h"

#include "kmq/job.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *value_of(int argc, char **argv, int *i, const char *shortname, const char *name)
{
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) == 0 && arg[len] == '=')
        return arg + len + 1;
    if (strcmp(arg, name) != 0 && !(shortname && strcmp(arg, shortname) == 0))
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "kmq quantize: %s needs a value\n", name);
        return "";
    }
    return argv[++*i];
}

static int usage_error(void)
{
    fprintf(stderr, "usage: kmq quantize IMAGE -k K[,K2,...] [-o OUTDIR] [--restarts R] "
                    "[--seed S] [--threads N] [--save indexed,labels,palette]\n"
                    "       [--formats LIST] [--max-decode-bytes N|auto] [--quiet]\n");
    return KMQ_EXIT_USAGE;
}

/* "indexed,labels" -> bits; false on an unknown word. */
static bool parse_save(const char *text, unsigned *out)
{
    unsigned bits = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save_ptr = NULL, *w = strtok_r(buf, ", ", &save_ptr); w;
         w = strtok_r(NULL, ", ", &save_ptr)) {
        if (strcmp(w, "indexed") == 0)
            bits |= KMQ_SAVE_INDEXED;
        else if (strcmp(w, "labels") == 0)
            bits |= KMQ_SAVE_LABELS;
        else if (strcmp(w, "palette") == 0)
            bits |= KMQ_SAVE_PALETTE;
        else
            return false;
    }
    *out = bits;
    return bits != 0;
}

int kmq_cmd_quantize(int argc, char **argv)
{
    const char *image = NULL, *k_text = NULL, *out_dir = "kmq-out";
    unsigned long long restarts = 0, seed = 0, threads = 0, max_iter = 0;
    bool have_restarts = false, have_max_iter = false, quiet = false;
    unsigned save = 0;
    const char *formats = NULL, *max_decode = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = value_of(argc, argv, &i, "-k", "--k"))) {
            k_text = v;
        } else if ((v = value_of(argc, argv, &i, "-o", "--output"))) {
            out_dir = v;
        } else if ((v = value_of(argc, argv, &i, NULL, "--restarts"))) {
            if (!kmq_cli_parse_uint("--restarts", v, 100000, &restarts) || restarts < 1)
                return usage_error();
            have_restarts = true;
        } else if ((v = value_of(argc, argv, &i, NULL, "--max-iter"))) {
            if (!kmq_cli_parse_uint("--max-iter", v, 1000000, &max_iter) || max_iter < 1)
                return usage_error();
            have_max_iter = true;
        } else if ((v = value_of(argc, argv, &i, NULL, "--seed"))) {
            if (!kmq_cli_parse_uint("--seed", v, INT64_MAX, &seed))
                return usage_error();
        } else if ((v = value_of(argc, argv, &i, NULL, "--threads"))) {
            if (!kmq_cli_parse_uint("--threads", v, 4096, &threads))
                return usage_error();
        } else if ((v = value_of(argc, argv, &i, NULL, "--save"))) {
            if (!parse_save(v, &save)) {
                fprintf(stderr, "kmq quantize: --save takes indexed, labels, palette; not '%s'\n",
                        v);
                return KMQ_EXIT_USAGE;
            }
        } else if ((v = value_of(argc, argv, &i, NULL, "--formats"))) {
            formats = v;
        } else if ((v = value_of(argc, argv, &i, NULL, "--max-decode-bytes"))) {
            max_decode = v;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "kmq quantize: unknown option '%s'\n", argv[i]);
            return usage_error();
        } else if (!image) {
            image = argv[i];
        } else {
            fprintf(stderr, "kmq quantize: one image only ('%s' is extra)\n", argv[i]);
            return usage_error();
        }
    }
    if (!image || !k_text || !k_text[0])
        return usage_error();

    kmq_job job = {0};
    kmq_job_spec spec;
    kmq_job_spec_defaults(&spec);
    kmq_job_input input = {.pattern = (char *)image, .line = 0};
    kmq_err err = {0};
    int code = KMQ_EXIT_USAGE;
    if (kmq_job_parse_k_list(k_text, &spec.k, &spec.nk, &err) != KMQ_OK) {
        kmq_err_where(&err, "-k");
        kmq_cli_error(&err);
        return KMQ_EXIT_USAGE;
    }
    if (have_restarts)
        spec.restarts = (int)restarts;
    if (have_max_iter)
        spec.max_iter = (int)max_iter;
    if (save)
        spec.save = save;
    if ((formats && kmq_job_spec_set(&spec, "formats", formats, &err) != KMQ_OK) ||
        (max_decode && kmq_job_spec_set(&spec, "max_decode_bytes", max_decode, &err) != KMQ_OK)) {
        kmq_err_where(&err, "%s", formats && err.msg[0] && strstr(err.msg, "formats")
                                      ? "--formats"
                                      : "--max-decode-bytes");
        kmq_cli_error(&err);
        goto done;
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

    kmq_run_opts opts = {.force = true};
    opts.par.threads = kmq_cli_start(argv[0], (int)threads);
    if (opts.par.threads == 0)
        goto done;
    code = kmq_cli_run_job(&job, &opts, quiet, NULL);
done:
    free(spec.k); /* the only owned field: everything else points at argv */
    return code;
}
