/* main.c — kmq's entry point: dispatch to sub-commands (layer L4).
 *
 * Also holds what every command shares: signals, error printing, option
 * parsing of numbers, and start-up of the thread budget (OpenMP nesting
 * limit, libvips concurrency).
 */
#include "cli.h"

#include "kmq/image.h"
#include "kmq/par.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

atomic_int kmq_cli_cancel = 0;

static void on_signal(int sig)
{
    atomic_store(&kmq_cli_cancel, 1);
    /* A second signal ends the process at once. */
    signal(sig, SIG_DFL);
}

void kmq_cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void kmq_cli_error(const kmq_err *err)
{
    if (err->where[0])
        fprintf(stderr, "kmq: %s: %s\n", err->where, err->msg);
    else
        fprintf(stderr, "kmq: %s\n", err->msg);
}

static void put_printable(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

void kmq_cli_refused(FILE *out, const kmq_err *why, const char *then)
{
    fputs("kmq: ", out);
    if (why->where[0]) {
        put_printable(out, why->where);
        fputs(": ", out);
    }
    put_printable(out, why->msg);
    fprintf(out, "; %s\n", then);
    fflush(out);
}

bool kmq_cli_parse_uint(const char *option, const char *text, unsigned long long max,
                        unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 || v > max) {
        fprintf(stderr, "kmq: %s expects a whole number from 0 to %llu, not '%s'\n", option, max,
                text);
        return false;
    }
    *out = v;
    return true;
}

int kmq_cli_start(const char *argv0, int threads)
{
    kmq_par par = kmq_par_make(threads);
    kmq_par_limit_nesting();
    kmq_err err = {0};
    if (kmq_image_lib_init(argv0, par.threads, &err) != KMQ_OK) {
        kmq_cli_error(&err);
        return 0;
    }
    return par.threads;
}

static void usage(FILE *out)
{
    fputs("usage: kmq COMMAND [options]\n"
          "\n"
          "k-means colour quantization of whole image collections.\n"
          "\n"
          "commands:\n"
          "  run JOB.ini [--threads N] [--shard I/N] [--force] [--dry-run] [--quiet] [--log FILE]\n"
          "        process every image of a job file (resumes: done images are skipped)\n"
          "  quantize IMAGE -k K[,K2,...] [-o OUTDIR] [--restarts R] [--seed S] [--threads N]\n"
          "           [--save indexed,labels,palette] [--formats LIST]\n"
          "           [--max-decode-bytes N|auto] [--quiet]\n"
          "        quantize one image (default OUTDIR: kmq-out)\n"
          "  bench [--image PATH] [--k 16,64,256] [--restarts R] [--threads-max N] [--repeat N]\n"
          "        [--seed S] [--json FILE] [--svg FILE] [--quiet]\n"
          "        thread-scaling study of the fit (1, 2, 4, ... N threads); exits 1 if any\n"
          "        thread count gives different results (default image data/photos/china.jpg)\n"
          "  report OUTDIR\n"
          "        rebuild run.json and elbow.csv from the summaries under OUTDIR\n"
          "  validate JOB.ini\n"
          "        check a job file and list the images it would process\n"
          "  --help, --version\n"
          "\n"
          "exit codes: 0 all images done, 1 some images failed, 2 usage or job-file error,\n"
          "130 interrupted. See README.md for the job-file keys and the output layout.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KMQ_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return KMQ_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("kmq %s\n", KMQ_VERSION_STRING);
        return KMQ_EXIT_OK;
    }
    /* `kmq COMMAND --help`: the usage above covers every command's options. */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return KMQ_EXIT_OK;
        }
    }
    int code;
    /* From the first instruction of a run, so that a signal at any moment
     * (while the job file is read, libvips starts, the report is written)
     * ends in the same orderly way: run.json says so, exit code 130. */
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "quantize") == 0)
        kmq_cli_install_signals();
    if (strcmp(cmd, "run") == 0)
        code = kmq_cmd_run(argc - 1, argv + 1);
    else if (strcmp(cmd, "quantize") == 0)
        code = kmq_cmd_quantize(argc - 1, argv + 1);
    else if (strcmp(cmd, "report") == 0)
        code = kmq_cmd_report(argc - 1, argv + 1);
    else if (strcmp(cmd, "bench") == 0)
        code = kmq_cmd_bench(argc - 1, argv + 1);
    else if (strcmp(cmd, "validate") == 0)
        code = kmq_cmd_validate(argc - 1, argv + 1);
    else {
        fprintf(stderr, "kmq: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return KMQ_EXIT_USAGE;
    }
    kmq_image_lib_shutdown();
    return code;
}
