/* options.c — one way to read every command's options (layer L4).
 *
 * Each command declares its options as a table (kmq_cli_opt: long name,
 * short letter, value placeholder, default, help); this file turns the table
 * into getopt_long's, so every command accepts `--name VALUE`,
 * `--name=VALUE`, `-xVALUE` and `-x VALUE` alike, reports a missing or
 * unknown option in one sentence, and prints its own `--help` with every
 * option and its default from the same table. `kmq quantize` builds its
 * table from the job-key table (kmq_job_key), so a job key and its flag
 * share name, default and help.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Long options: the table's names, plus for names with '-' the same name
 * with '_' (the job-file spelling: --max_iter works like --max-iter). */
#define MAX_LONG 128

static void underscored(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    for (char *p = out; *p; p++)
        if (*p == '-')
            *p = '_';
}

void kmq_cli_help(FILE *out, const kmq_cli_command *cmd)
{
    fprintf(out, "usage: kmq %s\n\n%s\n", cmd->synopsis, cmd->about);
    if (cmd->nopts)
        fputs("\noptions:\n", out);
    for (size_t i = 0; i < cmd->nopts; i++) {
        const kmq_cli_opt *o = &cmd->opts[i];
        char left[96], shortform[8] = "    ";
        if (o->short_name)
            snprintf(shortform, sizeof shortform, "-%c, ", o->short_name);
        snprintf(left, sizeof left, "%s--%s%s%s", shortform, o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        fprintf(out, "  %-30s %s", left, o->help);
        if (o->def)
            fprintf(out, " (default: %s)", o->def[0] ? o->def : "none");
        fputc('\n', out);
    }
    if (cmd->epilog)
        fprintf(out, "\n%s\n", cmd->epilog);
}

int kmq_cli_parse(const kmq_cli_command *cmd, int argc, char **argv, kmq_cli_on_opt on_opt,
                  void *ctx, const char **pos, size_t max_pos, size_t *npos)
{
    struct option longs[MAX_LONG + 1];
    char names[MAX_LONG][64];
    /* ':' first: a missing value is reported as ':' rather than '?'. No
     * '+': arguments are permuted, so options may follow the positional
     * arguments as users write them (`kmq quantize a.jpg -k 8`). */
    char shorts[2 * MAX_LONG + 3] = ":";
    size_t nl = 0, ns = 1;
    for (size_t i = 0; i < cmd->nopts && nl + 2 < MAX_LONG; i++) {
        const kmq_cli_opt *o = &cmd->opts[i];
        int has = o->arg ? required_argument : no_argument;
        longs[nl++] = (struct option){o->name, has, NULL, (int)(256 + i)};
        if (strchr(o->name, '-')) {
            underscored(o->name, names[nl], sizeof names[nl]);
            longs[nl] = (struct option){names[nl], has, NULL, (int)(256 + i)};
            nl++;
        }
        if (o->short_name) {
            shorts[ns++] = o->short_name;
            if (o->arg)
                shorts[ns++] = ':';
        }
    }
    longs[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    longs[nl] = (struct option){NULL, 0, NULL, 0};
    shorts[ns++] = 'h';
    shorts[ns] = '\0';

    *npos = 0;
    optind = 1;
    opterr = 0;
    for (;;) {
        int li = -1;
        int c = getopt_long(argc, argv, shorts, longs, &li);
        if (c == -1)
            break;
        if (c == 'h') {
            kmq_cli_help(stdout, cmd);
            return KMQ_CLI_HELP;
        }
        if (c == '?' || c == ':') {
            const char *arg = argv[optind - 1];
            if (c == ':')
                fprintf(stderr, "kmq %s: %s needs a value\n", cmd->name, arg);
            else if (optopt && optopt < 256)
                fprintf(stderr, "kmq %s: unknown option '-%c'\n", cmd->name, optopt);
            else
                fprintf(stderr, "kmq %s: unknown option '%s'\n", cmd->name, arg);
            fprintf(stderr, "(kmq %s --help lists the options)\n", cmd->name);
            return KMQ_CLI_ERROR;
        }
        size_t index = (size_t)-1;
        if (c >= 256) {
            index = (size_t)(c - 256);
        } else {
            for (size_t i = 0; i < cmd->nopts; i++)
                if (cmd->opts[i].short_name == c)
                    index = i;
        }
        if (index >= cmd->nopts)
            return KMQ_CLI_ERROR;
        if (!on_opt(ctx, &cmd->opts[index], optarg))
            return KMQ_CLI_ERROR;
    }
    for (int i = optind; i < argc; i++) {
        if (*npos >= max_pos) {
            fprintf(stderr, "kmq %s: unexpected argument '%s'\n(usage: kmq %s)\n", cmd->name,
                    argv[i], cmd->synopsis);
            return KMQ_CLI_ERROR;
        }
        pos[(*npos)++] = argv[i];
    }
    return KMQ_CLI_OK;
}

bool kmq_cli_no_options(void *ctx, const kmq_cli_opt *opt, const char *value)
{
    (void)ctx;
    (void)opt;
    (void)value;
    return true;
}

int kmq_cli_parse_one(const kmq_cli_command *cmd, int argc, char **argv, kmq_cli_on_opt on_opt,
                      void *ctx, const char *what, const char **arg)
{
    size_t npos = 0;
    int parsed = kmq_cli_parse(cmd, argc, argv, on_opt, ctx, arg, 1, &npos);
    if (parsed != KMQ_CLI_OK)
        return parsed == KMQ_CLI_HELP ? KMQ_EXIT_OK : KMQ_EXIT_USAGE;
    if (npos == 0) {
        fprintf(stderr, "kmq %s: which %s? usage: kmq %s\n", cmd->name, what, cmd->synopsis);
        return KMQ_EXIT_USAGE;
    }
    return -1;
}
