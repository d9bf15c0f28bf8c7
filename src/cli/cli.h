/* cli.h — shared pieces of the kmq command line (layer L4).
 *
 * The CLI is the only place that writes to stdout/stderr, installs signal
 * handlers, calls exit or decides exit codes (docs/design.md).
 */
#ifndef KMQ_CLI_H
#define KMQ_CLI_H

#include "kmq/error.h"
#include "kmq/runner.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes of docs/design.md. */
enum { KMQ_EXIT_OK = 0, KMQ_EXIT_FAILURES = 1, KMQ_EXIT_USAGE = 2, KMQ_EXIT_INTERRUPTED = 130 };

/* Set by SIGINT/SIGTERM; the runner polls it. */
extern atomic_int kmq_cli_cancel;

/* Installs the SIGINT/SIGTERM handlers (a second signal kills at once). */
void kmq_cli_install_signals(void);

/* Prints "kmq: WHERE: MESSAGE" (or without WHERE) to stderr, through
 * kmq_cli_put_clean. */
void kmq_cli_error(const kmq_err *err);

/* Prints "kmq: WHERE: MESSAGE; THEN" to `out` for a run file kmq set aside
 * (`why` from kmq_summary_read or kmq_run_info_read; THEN says what happens
 * instead). Control characters of a file name are shown as '?'. */
void kmq_cli_refused(FILE *out, const kmq_err *why, const char *then);

/* Writes `s` (a path or message that may hold any bytes a file name can)
 * so that a terminal only prints it: every control character (C0, DEL,
 * C1) and every byte outside valid UTF-8 becomes '?', so a name cannot
 * forge a line, move the cursor or retitle the window. Longer than `max`
 * bytes: "..." and the end. */
void kmq_cli_put_clean(FILE *out, const char *s, size_t max);

/* Parses a non-negative integer option value; prints a usage error and
 * returns false when it is not one. */
bool kmq_cli_parse_uint(const char *option, const char *text, unsigned long long max,
                        unsigned long long *out);

/* Resolves the thread budget (0: all cores) and starts libvips with it.
 * Returns the budget, or 0 after printing an error. */
int kmq_cli_start(const char *argv0, int threads);

/* Progress reporting: a live line on a terminal, plain timestamped lines
 * otherwise and into the log file. */
typedef struct kmq_cli_progress {
    bool quiet;
    bool live; /* stderr is a terminal */
    FILE *log; /* may be NULL */
    size_t ok, failed, skipped;
    bool line_open; /* a live line is on screen */
} kmq_cli_progress;

void kmq_cli_progress_init(kmq_cli_progress *p, bool quiet, FILE *log);
void kmq_cli_progress_cb(void *ctx, const kmq_progress *ev);
/* Ends the live line; prints a final count. */
void kmq_cli_progress_finish(kmq_cli_progress *p, const kmq_run_totals *t, double wall_s);

/* One option of a command: `--name`, `-s` (short_name, 0: none), taking a
 * value shown as `arg` (NULL: a switch), with its default as text (NULL:
 * none shown) and one line of help. */
typedef struct kmq_cli_opt {
    const char *name;
    char short_name;
    const char *arg;
    const char *def;
    const char *help;
} kmq_cli_opt;

/* A command's options and help text (options.c). */
typedef struct kmq_cli_command {
    const char *name;     /* "quantize" */
    const char *synopsis; /* "quantize IMAGE -k K[,K2,...] [options]" */
    const char *about;    /* a paragraph */
    const kmq_cli_opt *opts;
    size_t nopts;
    const char *epilog; /* NULL or a closing paragraph */
} kmq_cli_command;

/* Called for each option met, in order; returns false (after printing why)
 * to stop with a usage error. `value` is NULL for a switch. */
typedef bool (*kmq_cli_on_opt)(void *ctx, const kmq_cli_opt *opt, const char *value);

enum { KMQ_CLI_OK = 0, KMQ_CLI_HELP = 1, KMQ_CLI_ERROR = 2 };

/* Reads argv (argv[0] is the command name) with getopt_long: options may
 * come before or after the positional arguments, which go to pos[] (at
 * most max_pos; more is an error). -h/--help prints the command's help on
 * stdout. Returns KMQ_CLI_OK, KMQ_CLI_HELP, or KMQ_CLI_ERROR after an
 * error message on stderr. */
int kmq_cli_parse(const kmq_cli_command *cmd, int argc, char **argv, kmq_cli_on_opt on_opt,
                  void *ctx, const char **pos, size_t max_pos, size_t *npos);

/* kmq_cli_parse for a command of exactly one positional argument, `what`
 * it is ("job file"), stored in *arg. Returns KMQ_EXIT_OK after --help,
 * KMQ_EXIT_USAGE after an error (message printed), or -1 to go on. */
int kmq_cli_parse_one(const kmq_cli_command *cmd, int argc, char **argv, kmq_cli_on_opt on_opt,
                      void *ctx, const char *what, const char **arg);

/* An on_opt for commands without options of their own (only --help). */
bool kmq_cli_no_options(void *ctx, const kmq_cli_opt *opt, const char *value);

/* Prints the command's usage, about text and every option with its default. */
void kmq_cli_help(FILE *out, const kmq_cli_command *cmd);

int kmq_cmd_run(int argc, char **argv);
int kmq_cmd_quantize(int argc, char **argv);
int kmq_cmd_report(int argc, char **argv);
int kmq_cmd_bench(int argc, char **argv);
int kmq_cmd_validate(int argc, char **argv);
int kmq_cmd_palette(int argc, char **argv);

/* Runs a loaded job with the CLI's progress and signal handling and maps the
 * outcome to an exit code. */
int kmq_cli_run_job(const kmq_job *job, const kmq_run_opts *base, bool quiet, FILE *log);

#endif
