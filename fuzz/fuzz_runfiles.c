/* fuzz_runfiles.c — libFuzzer target for the readers of kmq's own run files
 * (kmq_summary_read, kmq_run_info_read) and for the report built from what
 * they accept (kmq_report_build).
 *
 * Each input is written twice into a private temporary output root, as
 * OUT/img/summary.json and as OUT/run.json, and read back by both readers.
 * A failure must carry its code and a message, and a refusal
 * (KMQ_E_DECODE) must name the file (where = its path). A summary that is
 * accepted must satisfy what the rest of kmq relies on (k and k_effective
 * in 1..KMQ_MAX_K, k_effective <= k, results ascending and matching
 * config.k, best restart within the restarts, width * height == pixels,
 * plain file names, elbow.k one of the results' k); a run.json that is
 * accepted must have a known status and threads >= 0. When either is accepted, the report is
 * rebuilt from OUT without the run's facts (so run.json is read again): it must succeed and be told
 * of exactly the files the readers refused. Build: KMQ_FUZZ=ON with clang (fuzz/CMakeLists.txt).
 */
#include "kmq/kmeans.h"
#include "kmq/runner.h"
#include "kmq/summary.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];
static char image_dir[96];
static char summary_path[128];
static char run_path[128];

static const char *const written[] = {"run.json", "elbow.csv", "index.html"};

static void remove_files(void)
{
    char path[160];
    unlink(summary_path);
    rmdir(image_dir);
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, written[i]);
        unlink(path);
    }
    rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The report writes three files, two of them synced, for every input
     * a reader accepts: on a RAM file system that costs nothing (about six
     * times the executions per second of a disk-backed /tmp). */
    snprintf(root, sizeof root, "/dev/shm/kmq-fuzz-runfiles-XXXXXX");
    if (!mkdtemp(root)) {
        snprintf(root, sizeof root, "/tmp/kmq-fuzz-runfiles-XXXXXX");
        if (!mkdtemp(root))
            abort();
    }
    snprintf(image_dir, sizeof image_dir, "%s/img", root);
    snprintf(summary_path, sizeof summary_path, "%s/summary.json", image_dir);
    snprintf(run_path, sizeof run_path, "%s/run.json", root);
    if (mkdir(image_dir, 0755) != 0)
        abort();
    atexit(remove_files);
    return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
}

/* A failed read says what went wrong, and a refusal names the file. */
static void check_failure(kmq_status st, const kmq_err *err, const char *path)
{
    if (err->code != st || err->msg[0] == '\0')
        __builtin_trap();
    if (st == KMQ_E_DECODE && strcmp(err->where, path) != 0)
        __builtin_trap();
}

static void check_summary(const kmq_summary *s)
{
    if (s->nresults > KMQ_MAX_K || s->nk > KMQ_MAX_K)
        __builtin_trap();
    if (s->ok ? (s->nresults == 0 || s->nresults != s->nk) : s->nresults != 0)
        __builtin_trap();
    if ((uint64_t)s->width * s->height != s->pixels || s->unique_colors > s->pixels)
        __builtin_trap();
    for (size_t i = 0; i < s->nk; i++)
        if (s->k[i] < 1 || s->k[i] > KMQ_MAX_K || (i > 0 && s->k[i] <= s->k[i - 1]))
            __builtin_trap();
    bool elbow_found = false;
    for (size_t i = 0; i < s->nresults; i++) {
        const kmq_k_result *r = &s->results[i];
        if (r->k != s->k[i] || r->k_effective < 1 || r->k_effective > r->k ||
            r->k_effective > s->unique_colors)
            __builtin_trap();
        if (r->restarts < 1 || r->best_restart < 0 || r->best_restart >= r->restarts ||
            !r->restart_inertia || !r->palette)
            __builtin_trap();
        if (!(r->inertia >= 0) || !(r->mse >= 0) || !(r->mse_output >= 0))
            __builtin_trap();
        for (size_t j = 0; j < r->k_effective; j++)
            if (r->palette[j].pixels > s->pixels)
                __builtin_trap();
        const kmq_file_info *files[] = {&r->indexed, &r->labels, &r->swatch};
        for (size_t j = 0; j < 3; j++)
            if (files[j]->path &&
                (files[j]->path[0] == '\0' || strchr(files[j]->path, '/') ||
                 strcmp(files[j]->path, ".") == 0 || strcmp(files[j]->path, "..") == 0))
                __builtin_trap();
        elbow_found |= s->has_elbow && s->elbow_k == r->k;
    }
    if (s->has_elbow && !elbow_found)
        __builtin_trap();
}

static void check_run(const kmq_run_facts *f)
{
    if (!f->status || (strcmp(f->status, "complete") != 0 && strcmp(f->status, "failures") != 0 &&
                       strcmp(f->status, "interrupted") != 0))
        __builtin_trap();
    if (f->threads < 0 || !(isnan(f->wall_s) || f->wall_s >= 0))
        __builtin_trap();
}

typedef struct refusals {
    size_t summaries, runs;
} refusals;

static void count_refused(void *ctx, kmq_run_file file, const kmq_err *why)
{
    refusals *r = ctx;
    if (why->msg[0] == '\0' || why->where[0] == '\0')
        __builtin_trap();
    if (file == KMQ_RUN_FILE_SUMMARY)
        r->summaries++;
    else
        r->runs++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_file(summary_path, data, size);
    write_file(run_path, data, size);

    kmq_summary s = {0};
    kmq_err err = {0};
    kmq_status st = kmq_summary_read(summary_path, &s, &err);
    bool summary_ok = st == KMQ_OK;
    if (summary_ok)
        check_summary(&s);
    else
        check_failure(st, &err, summary_path);
    kmq_summary_clear(&s);

    kmq_run_facts facts = {0};
    kmq_err run_err = {0};
    st = kmq_run_info_read(run_path, &facts, &run_err);
    bool run_ok = st == KMQ_OK;
    if (run_ok)
        check_run(&facts);
    else
        check_failure(st, &run_err, run_path);
    kmq_run_facts_clear(&facts);

    /* The report trusts what the readers accept: it must not fail on it. */
    if (summary_ok || run_ok) {
        refusals seen = {0, 0};
        kmq_err rep_err = {0};
        if (kmq_report_build(root, NULL, NULL, 0, count_refused, &seen, &rep_err) != KMQ_OK)
            __builtin_trap();
        if (seen.summaries != !summary_ok || seen.runs != !run_ok)
            __builtin_trap();
    }
    return 0;
}
