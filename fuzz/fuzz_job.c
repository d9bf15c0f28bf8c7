/* fuzz_job.c — libFuzzer target for the job-file parser (kmq_job_load) and
 * the k-list parser.
 *
 * Each input is written to job.ini in a private temporary folder (which
 * also holds a small a.png for inputs to match) and loaded; a loaded job
 * must satisfy the documented invariants (at least one job, every k list
 * ascending, distinct and within 1..KMQ_MAX_K). The input is also parsed
 * as a k list. Inputs are never listed (a fuzzed "input = /" with
 * recursive = true would walk the whole file system), so this target reads
 * only the job file and stats the inputs it names. Build: KMQ_FUZZ=ON with
 * clang (fuzz/CMakeLists.txt).
 */
#include "kmq/job.h"
#include "kmq/kmeans.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char folder[64];
static char job_path[96];
static char image_path[96];

static void remove_files(void)
{
    unlink(job_path);
    unlink(image_path);
    rmdir(folder);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(folder, sizeof folder, "/tmp/kmq-fuzz-job-XXXXXX");
    if (!mkdtemp(folder))
        abort();
    snprintf(job_path, sizeof job_path, "%s/job.ini", folder);
    snprintf(image_path, sizeof image_path, "%s/a.png", folder);
    FILE *f = fopen(image_path, "wb");
    if (!f)
        abort();
    fputs("\x89PNG\r\n\x1a\n", f);
    fclose(f);
    atexit(remove_files);
    return 0;
}

static void check_k(const size_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (k[i] < 1 || (i > 0 && k[i] <= k[i - 1]))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(job_path, "wb");
    if (!f)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    kmq_job job = {0};
    kmq_err err = {0};
    if (kmq_job_load(job_path, &job, &err) == KMQ_OK) {
        if (job.njobs < 1 || !job.output)
            __builtin_trap();
        for (size_t j = 0; j < job.njobs; j++) {
            if (job.jobs[j].nk < 1)
                __builtin_trap();
            check_k(job.jobs[j].k, job.jobs[j].nk);
            if (job.jobs[j].k[job.jobs[j].nk - 1] > KMQ_MAX_K)
                __builtin_trap();
        }
        kmq_job_clear(&job);
    } else if (err.code == KMQ_OK || err.msg[0] == '\0') {
        __builtin_trap(); /* a failure must say what went wrong */
    }

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t *k = NULL, n = 0;
    kmq_err kerr = {0};
    if (kmq_job_parse_k_list(text, &k, &n, &kerr) == KMQ_OK)
        check_k(k, n);
    free(k);
    free(text);
    return 0;
}
