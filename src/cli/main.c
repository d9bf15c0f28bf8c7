/* main.c — kmq's entry point: dispatch to sub-commands (layer L4).
 *
 * Also holds what every command shares: signals, error printing, option
 * parsing of numbers, and start-up of the thread budget (OpenMP nesting
 * limit, libvips concurrency).
 */
#include "cli.h"

#include "kmq/image.h"
#include "kmq/job.h"
#include "kmq/par.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
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

/* Length of the valid UTF-8 sequence at s (1..4) when it is a character a
 * terminal prints rather than obeys, else 0. Refused: C0 controls and DEL,
 * C1 controls (U+0080..U+009F: U+009B is CSI to many terminals), and any
 * byte outside a valid sequence, which an 8-bit terminal may take for a C1
 * control itself (0x9B). */
static size_t printable_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return s[0] >= 0x20 && s[0] != 0x7f;
    size_t n;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4;
    else
        return 0;
    uint32_t cp = s[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0xA0)
        return 0;
    return n;
}

void kmq_cli_put_clean(FILE *out, const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len > max) {
        fputs("...", out);
        s += len - max + 3;
        while (((unsigned char)*s & 0xC0) == 0x80) /* not in the middle of a character */
            s++;
    }
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = printable_len(p);
        if (n == 0) {
            fputc('?', out);
            p++;
        } else {
            fwrite(p, 1, n, out);
            p += n;
        }
    }
}

void kmq_cli_error(const kmq_err *err)
{
    /* where and msg may quote file names from the input folders. */
    fputs("kmq: ", stderr);
    if (err->where[0]) {
        kmq_cli_put_clean(stderr, err->where, sizeof err->where);
        fputs(": ", stderr);
    }
    kmq_cli_put_clean(stderr, err->msg, sizeof err->msg);
    fputc('\n', stderr);
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
          "  run JOB.ini        process every image of a job file (resumes: done images are\n"
          "                     skipped)\n"
          "  quantize IMAGE -k K[,K2,...]\n"
          "                     quantize one image; every job key is also a flag\n"
          "  palette JOB.ini    compute the shared palettes (palette = shared) once, before\n"
          "                     the shards of a cluster run map to them\n"
          "  report OUTDIR      rebuild run.json, elbow.csv and index.html from the summaries\n"
          "  validate JOB.ini   check a job file and list the images it would process\n"
          "  bench              thread-scaling study of the fit\n"
          "  help [COMMAND]     a command's options with their defaults\n"
          "  help keys          the job-file keys, their ranges and defaults\n"
          "  --version\n"
          "\n"
          "`kmq COMMAND --help` lists that command's options.\n"
          "exit codes: 0 all images done, 1 some images failed, 2 usage or job-file error,\n"
          "130 interrupted.\n",
          out);
}

/* `kmq help keys`: the key table as a Markdown table (the README carries
 * this very text, and a test holds one against the other). */
static void put_cell(const char *text)
{
    fputs("| ", stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputc('\\', stdout); /* a '|' would end the cell */
        fputc(*p, stdout);
    }
    fputc(' ', stdout);
}

static void print_keys(void)
{
    puts("| key | section | value | default | meaning |\n|---|---|---|---|---|");
    for (size_t i = 0; kmq_job_key(i); i++) {
        const kmq_job_key_info *k = kmq_job_key(i);
        char name[64];
        snprintf(name, sizeof name, "`%s`", k->name);
        put_cell(name);
        put_cell(k->sections);
        put_cell(k->range);
        put_cell(k->default_value ? k->default_value : "(required)");
        put_cell(k->help);
        puts("|");
    }
}

static int dispatch(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "run") == 0)
        return kmq_cmd_run(argc, argv);
    if (strcmp(cmd, "quantize") == 0)
        return kmq_cmd_quantize(argc, argv);
    if (strcmp(cmd, "report") == 0)
        return kmq_cmd_report(argc, argv);
    if (strcmp(cmd, "bench") == 0)
        return kmq_cmd_bench(argc, argv);
    if (strcmp(cmd, "validate") == 0)
        return kmq_cmd_validate(argc, argv);
    if (strcmp(cmd, "palette") == 0)
        return kmq_cmd_palette(argc, argv);
    fprintf(stderr, "kmq: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return KMQ_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KMQ_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        usage(stdout);
        return KMQ_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("kmq %s\n", KMQ_VERSION_STRING);
        return KMQ_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (strcmp(argv[2], "keys") == 0) {
            print_keys();
            return KMQ_EXIT_OK;
        }
        char *help_argv[] = {argv[2], "--help", NULL};
        return dispatch(argv[2], 2, help_argv);
    }
    /* From the first instruction of a run, so that a signal at any moment
     * (while the job file is read, libvips starts, the report is written)
     * ends in the same orderly way: run.json says so, exit code 130. */
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "quantize") == 0)
        kmq_cli_install_signals();
    int code = dispatch(cmd, argc - 1, argv + 1);
    kmq_image_lib_shutdown();
    return code;
}
