/* test_job.c — the job file: parsing, defaults, every kind of mistake with
 * its FILE:LINE, locale independence, input expansion, allocation failures.
 *
 * Job files and fixture trees are written into fresh temporary folders by
 * each test; nothing here needs an image decoder (inputs are just paths).
 */
#include "kmq/alloc_hook.h"
#include "kmq/job.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The docs/design.md example, verbatim. */
static const char *const EXAMPLE =
    "[run]\n"
    "output  = out/demo        ; output root (relative paths: relative to the job file)\n"
    "threads = 0\n"
    "seed    = 42\n"
    "\n"
    "[defaults]                ; any job key; each [job NAME] may override it\n"
    "k          = 2-16:2, 32   ; list of values and ranges (a-b or a-b:step)\n"
    "restarts   = 10\n"
    "max_iter   = 300\n"
    "tol        = 1e-4\n"
    "init       = kmeans++     ; kmeans++ | random\n"
    "sample     = 0            ; 0: fit on all pixels (exact); N: fit on N sampled pixels\n"
    "save       = indexed      ; any of: indexed, labels, palette\n"
    "background = #ffffff      ; alpha is flattened onto this\n"
    "max_pixels = 1000000000\n"
    "\n"
    "[job photos]\n"
    "input     = ../shared/images, extra/*.png  ; files, directories, globs; repeatable\n"
    "recursive = true\n"
    "k         = 4, 8, 16\n";

static char dir[4096];

/* snprintf that must fit (a test path never approaches the buffer size). */
#define FMT(buf, ...) ck_assert_uint_lt((size_t)snprintf(buf, sizeof buf, __VA_ARGS__), sizeof buf)

static void fresh(const char *name)
{
    FMT(dir, "%s", tu_fresh_dir(name));
}

/* dir "/" rel into buf. */
static const char *at(char *buf, size_t size, const char *rel)
{
    int w = snprintf(buf, size, "%s/%s", dir, rel);
    ck_assert(w > 0 && (size_t)w < size);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    tu_write_file(path, text, strlen(text));
}

static void touch(const char *rel)
{
    char path[4096];
    write_text(at(path, sizeof path, rel), "not really an image\n");
}

static void make_dir(const char *rel)
{
    char path[4096];
    ck_assert_int_eq(mkdir(at(path, sizeof path, rel), 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
    char path[4096];
    ck_assert_int_eq(symlink(target, at(path, sizeof path, rel)), 0);
}

/* Writes dir/job.ini and loads it, requiring success. */
static void load_ok(const char *text, kmq_job *job)
{
    char path[4096];
    write_text(at(path, sizeof path, "job.ini"), text);
    kmq_err err = {0};
    kmq_status st = kmq_job_load(path, job, &err);
    ck_assert_msg(st == KMQ_OK, "load failed: %s: %s", err.where, err.msg);
}

/* Writes dir/job.ini, loads it, requires `code` with where = "FILE:line"
 * (line 0: "FILE") and `needle` in the message. */
static void load_fails(const char *text, kmq_status code, int line, const char *needle)
{
    char path[4096], where[4200];
    write_text(at(path, sizeof path, "job.ini"), text);
    if (line > 0)
        FMT(where, "%s:%d", path, line);
    else
        FMT(where, "%s", path);
    kmq_job job = {0};
    kmq_err err = {0};
    kmq_status st = kmq_job_load(path, &job, &err);
    ck_assert_msg(st == code, "expected %s, got %s (%s) for:\n%s", kmq_status_name(code),
                  kmq_status_name(st), err.msg, text);
    ck_assert_str_eq(err.where, where);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_ptr_null(job.jobs); /* nothing returned on failure */
}

/* Loads and expands, requiring success. */
static void list_ok(const char *text, kmq_job *job, kmq_input_list *list)
{
    load_ok(text, job);
    kmq_err err = {0};
    kmq_status st = kmq_job_list_inputs(job, list, &err);
    ck_assert_msg(st == KMQ_OK, "list failed: %s: %s", err.where, err.msg);
}

/* Requires list rels (of job `j`, in order) to be exactly `rels`, NULL-ended. */
static void expect_rels(const kmq_input_list *list, size_t j, const char *const *rels)
{
    size_t n = 0;
    for (size_t i = 0; i < list->n; i++) {
        if (list->items[i].job != j)
            continue;
        ck_assert_msg(rels[n] != NULL, "extra entry '%s'", list->items[i].rel);
        ck_assert_str_eq(list->items[i].rel, rels[n]);
        n++;
    }
    ck_assert_msg(rels[n] == NULL, "missing entry '%s'", rels[n]);
}

/* ------------------------------------------------------------------ */

START_TEST(example_parses_to_documented_values)
{
    fresh("job_example");
    kmq_job job = {0};
    load_ok(EXAMPLE, &job);
    char expect[4200];
    FMT(expect, "%s/out/demo", dir);
    ck_assert_str_eq(job.output, expect);
    ck_assert_str_eq(job.base_dir, dir);
    ck_assert_int_eq(job.threads, 0);
    ck_assert_uint_eq(job.seed, 42);
    ck_assert_uint_eq(job.njobs, 1);
    const kmq_job_spec *s = &job.jobs[0];
    ck_assert_str_eq(s->name, "photos");
    ck_assert_int_eq(s->line, 17);
    ck_assert_uint_eq(s->nk, 3);
    ck_assert_uint_eq(s->k[0], 4);
    ck_assert_uint_eq(s->k[1], 8);
    ck_assert_uint_eq(s->k[2], 16);
    ck_assert_int_eq(s->restarts, 10);
    ck_assert_int_eq(s->max_iter, 300);
    ck_assert(s->tol == 1e-4);
    ck_assert_int_eq(s->init, KMQ_INIT_KMEANSPP);
    ck_assert_uint_eq(s->sample, 0);
    ck_assert_uint_eq(s->save, KMQ_SAVE_INDEXED);
    ck_assert_uint_eq(s->background[0], 255);
    ck_assert_uint_eq(s->background[1], 255);
    ck_assert_uint_eq(s->background[2], 255);
    ck_assert_uint_eq(s->max_pixels, 1000000000u);
    ck_assert(s->recursive);
    ck_assert_uint_eq(s->ninputs, 2);
    ck_assert_str_eq(s->inputs[0].pattern, "../shared/images");
    ck_assert_str_eq(s->inputs[1].pattern, "extra/*.png");
    ck_assert_int_eq(s->inputs[0].line, 18);
    ck_assert_int_eq(s->inputs[1].line, 18);
    kmq_job_clear(&job);
    ck_assert_ptr_null(job.jobs);
}
END_TEST

START_TEST(example_defaults_k_list_applies_to_jobs_without_k)
{
    fresh("job_example_k");
    char text[4096];
    FMT(text, "%s[job other]\ninput = x\nmax_pixels = 1e9\ninit = random\n", EXAMPLE);
    kmq_job job = {0};
    load_ok(text, &job);
    ck_assert_uint_eq(job.njobs, 2);
    const kmq_job_spec *s = &job.jobs[1];
    static const size_t want[] = {2, 4, 6, 8, 10, 12, 14, 16, 32};
    ck_assert_uint_eq(s->nk, 9);
    for (size_t i = 0; i < 9; i++)
        ck_assert_uint_eq(s->k[i], want[i]);
    ck_assert_uint_eq(s->max_pixels, 1000000000u);
    ck_assert_int_eq(s->init, KMQ_INIT_RANDOM);
    ck_assert(!s->recursive); /* recursive was set in [job photos] only */
    ck_assert_int_eq(job.jobs[0].init, KMQ_INIT_KMEANSPP);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(defaults_when_keys_absent)
{
    fresh("job_defaults");
    kmq_job job = {0};
    load_ok("[run]\noutput = out\n[job a]\ninput = x\nk = 4\n", &job);
    ck_assert_int_eq(job.threads, 0);
    ck_assert_uint_eq(job.seed, 0);
    ck_assert(!job.flat);
    const kmq_job_spec *s = &job.jobs[0];
    ck_assert(!s->recursive);
    ck_assert_int_eq(s->restarts, 10);
    ck_assert_int_eq(s->max_iter, 300);
    ck_assert(s->tol == 1e-4);
    ck_assert_int_eq(s->init, KMQ_INIT_KMEANSPP);
    ck_assert_uint_eq(s->sample, 0);
    ck_assert_uint_eq(s->save, KMQ_SAVE_INDEXED);
    ck_assert_uint_eq(s->background[0], 255);
    ck_assert_uint_eq(s->background[1], 255);
    ck_assert_uint_eq(s->background[2], 255);
    ck_assert_uint_eq(s->max_pixels, 1000000000u);
    ck_assert_int_eq(s->identity, KMQ_IDENTITY_QUICK);

    /* kmq_job_spec_defaults gives the same values. */
    kmq_job_spec d;
    kmq_job_spec_defaults(&d);
    ck_assert(!d.recursive);
    ck_assert_int_eq(d.restarts, s->restarts);
    ck_assert_int_eq(d.max_iter, s->max_iter);
    ck_assert(d.tol == s->tol);
    ck_assert_uint_eq(d.save, s->save);
    ck_assert_uint_eq(d.max_pixels, s->max_pixels);
    ck_assert_int_eq(d.identity, KMQ_IDENTITY_QUICK);
    ck_assert_ptr_null(d.k);
    ck_assert_uint_eq(d.nk, 0);
    ck_assert_ptr_null(d.inputs);
    ck_assert_ptr_null(d.name);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(defaults_section_after_jobs_still_applies)
{
    fresh("job_defaults_after");
    kmq_job job = {0};
    load_ok("[job a]\ninput = x\n"
            "[job b]\ninput = y\nrestarts = 3\n"
            "[defaults]\nk = 5\nrestarts = 7\n"
            "[run]\noutput = out\n",
            &job);
    ck_assert_uint_eq(job.njobs, 2);
    ck_assert_str_eq(job.jobs[0].name, "a");
    ck_assert_str_eq(job.jobs[1].name, "b");
    ck_assert_uint_eq(job.jobs[0].nk, 1);
    ck_assert_uint_eq(job.jobs[0].k[0], 5);
    ck_assert_uint_eq(job.jobs[1].k[0], 5);
    ck_assert_int_eq(job.jobs[0].restarts, 7);
    ck_assert_int_eq(job.jobs[1].restarts, 3); /* the job's own value wins */
    ck_assert_int_eq(job.jobs[1].line, 3);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(value_syntax_variants)
{
    fresh("job_values");
    kmq_job job = {0};
    load_ok("\xEF\xBB\xBF"
            "; a comment\n"
            "# another\n"
            "[run]\r\n"
            "output = /abs/out/   # trailing comment\r\n"
            "seed = 9223372036854775807\n"
            "threads = 8 ; eight\n"
            "[job  a.b_c-1 ]\n"
            "    input = one, two\t# indented\n"
            "\tinput = three\n"
            "k = 16, 2-4, 8, 3\n"
            "recursive = YES\n"
            "init = Random\n"
            "save = labels ,palette\n"
            "background = #0A0\n"
            "max_pixels = 2.5e8\n"
            "sample = 1e5\n"
            "identity = Content\n"
            "tol = 0.5\n",
            &job);
    ck_assert_str_eq(job.output, "/abs/out");
    ck_assert_uint_eq(job.seed, INT64_MAX);
    ck_assert_int_eq(job.threads, 8);
    const kmq_job_spec *s = &job.jobs[0];
    ck_assert_str_eq(s->name, "a.b_c-1");
    ck_assert_uint_eq(s->ninputs, 3);
    ck_assert_str_eq(s->inputs[0].pattern, "one");
    ck_assert_str_eq(s->inputs[1].pattern, "two");
    ck_assert_str_eq(s->inputs[2].pattern, "three");
    ck_assert_int_eq(s->inputs[2].line, 9);
    ck_assert_uint_eq(s->nk, 5);
    ck_assert_uint_eq(s->k[0], 2);
    ck_assert_uint_eq(s->k[4], 16);
    ck_assert(s->recursive);
    ck_assert_int_eq(s->init, KMQ_INIT_RANDOM);
    ck_assert_uint_eq(s->save, KMQ_SAVE_LABELS | KMQ_SAVE_PALETTE);
    ck_assert_uint_eq(s->background[0], 0);
    ck_assert_uint_eq(s->background[1], 0xaa);
    ck_assert_uint_eq(s->background[2], 0);
    ck_assert_uint_eq(s->max_pixels, 250000000u);
    ck_assert_uint_eq(s->sample, 100000u);
    ck_assert(s->tol == 0.5);
    ck_assert_int_eq(s->identity, KMQ_IDENTITY_CONTENT);
    char buf[32];
    kmq_job_format_value(&job, s, "identity", buf, sizeof buf);
    ck_assert_str_eq(buf, "content");
    kmq_job_clear(&job);

    static const char *const bools[][2] = {{"true", "1"}, {"on", "1"},  {"1", "1"}, {"false", "0"},
                                           {"No", "0"},   {"OFF", "0"}, {"0", "0"}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        char text[256];
        FMT(text, "[run]\noutput=o\n[job a]\ninput=x\nk=2\nrecursive=%s\n", bools[i][0]);
        load_ok(text, &job);
        ck_assert_int_eq(job.jobs[0].recursive, bools[i][1][0] == '1');
        kmq_job_clear(&job);
    }
}
END_TEST

START_TEST(relative_output_resolves_against_job_folder)
{
    fresh("job_relative");
    make_dir("conf");
    char path[4096];
    write_text(at(path, sizeof path, "conf/j.ini"),
               "[run]\noutput = ../out\n[job a]\ninput=x\nk=2\n");
    kmq_job job = {0};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_load(path, &job, &err), KMQ_OK);
    char expect[4200];
    FMT(expect, "%s/conf/../out", dir);
    ck_assert_str_eq(job.output, expect);
    ck_assert_str_eq(job.path, path);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(k_list_parser)
{
    size_t *k = NULL, n = 0;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_parse_k_list("2-16:2, 32", &k, &n, &err), KMQ_OK);
    static const size_t want[] = {2, 4, 6, 8, 10, 12, 14, 16, 32};
    ck_assert_uint_eq(n, 9);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(k[i], want[i]);
    free(k);

    ck_assert_int_eq(kmq_job_parse_k_list(" 8 , 4,4, 2 - 4 ,256,1-3:5", &k, &n, &err), KMQ_OK);
    static const size_t want2[] = {1, 2, 3, 4, 8, 256};
    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(k[i], want2[i]);
    free(k);

    static const char *const bad[][2] = {
        {"0", "k = 0 is below 1"},        {"0-4", "below 1"},
        {"3-1", "runs backwards"},        {"2-8:0", "step 0"},
        {"abc", "'abc' is not a number"}, {"4:2", "not a number or a range"},
        {"-3", "not a number"},           {"", "k list is empty"},
        {"  ", "k list is empty"},        {"4,", "empty item"},
        {"4,,8", "empty item"},           {"257", "k = 257 exceeds 256"},
        {"2-300", "k = 300 exceeds 256"}, {"99999999999999999999999", "exceeds 256"},
        {"2.5", "not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kmq_err_clear(&err);
        k = NULL;
        n = 77;
        ck_assert_int_eq(kmq_job_parse_k_list(bad[i][0], &k, &n, &err), KMQ_E_CONFIG);
        ck_assert_msg(strstr(err.msg, bad[i][1]) != NULL, "'%s': message '%s' lacks '%s'",
                      bad[i][0], err.msg, bad[i][1]);
        ck_assert_ptr_null(k);
        ck_assert_uint_eq(n, 77);
    }
}
END_TEST

/* Every kind of mistake: KMQ_E_CONFIG, where = FILE:LINE of the culprit. */
START_TEST(config_errors_name_file_and_line)
{
    fresh("job_errors");
#define RUN "[run]\noutput = out\n" /* lines 1-2 */
    static const struct {
        const char *text;
        int line;
        const char *needle;
    } cases[] = {
        {RUN "[job a]\ninput = x\nk = 4\ncolour = red\n", 6, "unknown key 'colour' in [job a]"},
        {RUN "[jobs]\nk = 4\n", 3, "unknown section [jobs]"},
        {RUN "[Run]\n", 3, "unknown section [Run]"},
        {RUN "[job a]\ninput = x\nk = 0\n", 5, "k = 0 is below 1"},
        {RUN "[job a]\ninput = x\nk = 3-1\n", 5, "runs backwards"},
        {RUN "[job a]\ninput = x\nk = 2-8:0\n", 5, "step 0"},
        {RUN "[job a]\ninput = x\nk = abc\n", 5, "'abc' is not a number"},
        {RUN "[job a]\ninput = x\nsave = indexed\nk = 300\n", 6, "k = 300 exceeds 256"},
        {RUN "[defaults]\nk = 2, 300\n[job a]\ninput = x\n", 4, "k = 300 exceeds 256"},
        {RUN "[job a]\ninput = x\nk =\n", 5, "k has no value"},
        {RUN "[job a]\ninput = x\nk = 4\nrestarts = 0\n", 6, "restarts = 0 is below 1"},
        {RUN "[job a]\ninput = x\nk = 4\nrestarts = -2\n", 6, "restarts = -2 is below 1"},
        {RUN "[job a]\ninput = x\nk = 4\nrestarts = ten\n", 6, "not a whole number"},
        {RUN "[job a]\ninput = x\nk = 4\nmax_iter = 0\n", 6, "max_iter = 0 is below 1"},
        {RUN "[job a]\ninput = x\nk = 4\ntol = -1e-4\n", 6, "tol = -1e-4 is negative"},
        {RUN "[job a]\ninput = x\nk = 4\ntol = 1,5\n", 6, "not a number"},
        {RUN "[job a]\ninput = x\nk = 4\ntol = nan\n", 6, "not a number"},
        {RUN "[job a]\ninput = x\nk = 4\ninit = kmeans\n", 6, "init = 'kmeans' is not one of"},
        {RUN "[job a]\ninput = x\nk = 4\nidentity = mtime\n", 6,
         "identity = 'mtime' is not one of quick, content"},
        {RUN "identity = content\n", 3, "'identity' is not allowed in [run]"},
        {RUN "[job a]\ninput = x\nk = 4\nsave = jpeg\n", 6, "unknown output 'jpeg'"},
        {RUN "[job a]\ninput = x\nk = 4\nsave = indexed,,labels\n", 6, "empty item"},
        {RUN "[job a]\ninput = x\nk = 4\nbackground = white\n", 6, "background = 'white'"},
        {RUN "[job a]\ninput = x\nk = 4\nbackground = #12345\n", 6, "is not a colour"},
        {RUN "[job a]\ninput = x\nk = 4\nbackground = #gggggg\n", 6, "is not a colour"},
        {RUN "[job a]\ninput = x\nk = 4\nmax_pixels = 1.5\n", 6, "not a whole number"},
        {RUN "[job a]\ninput = x\nk = 4\nsample = -5\n", 6, "sample = -5 is below 0"},
        {RUN "[job a]\ninput = x\nk = 4\nrecursive = maybe\n", 6, "not a boolean"},
        {RUN "[job a]\ninput = x\nk = 4\nk = 8\n", 6,
         "key 'k' is given twice in [job a] (first at line 5)"},
        {RUN "[job a]\ninput = x\nk = 4\n[job a]\ninput = y\n", 6,
         "duplicate job name 'a' (first at line 3)"},
        {RUN "[run]\n", 3, "section [run] appears twice (first at line 1)"},
        {RUN "[defaults]\n[defaults]\n", 4, "appears twice"},
        {"[run]\nthreads = 2\n[job a]\ninput = x\nk = 4\n", 1, "no output"},
        {"[job a]\ninput = x\nk = 4\n", 0, "no output"},
        {RUN, 0, "no [job NAME] section"},
        {RUN "[defaults]\nk = 4\n\n[job a]\nrestarts = 3\n", 6, "job 'a' has no input"},
        {RUN "[job a]\ninput = x\n", 3, "job 'a' has no k"},
        {"k = 4\n" RUN, 1, "outside any section"},
        {RUN "[defaults]\ninput = x\n", 4, "'input' is not allowed in [defaults]"},
        {RUN "k = 4\n", 3, "'k' is not allowed in [run]"},
        {RUN "[job a]\noutput = o\n", 4, "'output' is not allowed in [job a]"},
        {RUN "[job ../x]\n", 3, "job name '../x'"},
        {RUN "[job .hidden]\n", 3, "job name '.hidden'"},
        {RUN "[job a b]\n", 3, "job name 'a b'"},
        {RUN "[job]\n", 3, "needs a name"},
        {RUN "[job a]\njust some words\n", 4, "expected '[section]'"},
        {RUN "[job a\n", 3, "no closing ']'"},
        {RUN "[job a]\ninput = a, , b\n", 4, "empty item"},
        {RUN "[run]\nthreads = 5000\n", 3, "appears twice"},
        {"[run]\noutput = o\nthreads = 5000\n", 3, "threads = 5000 exceeds 4096"},
        {"[run]\noutput = o\nseed = -1\n", 3, "seed = -1 is below 0"},
        {"[run]\noutput = o\nseed = 18446744073709551616\n", 3, "too large"},
        {"[run]\noutput = o\nseed = 9223372036854775808\n", 3, "seed"},
        /* the first mistake wins, whatever comes later */
        {RUN "[job a]\nfoo = 1\nbar = 2\n", 4, "unknown key 'foo'"},
        {RUN "[job a]\ninput = x\nk = 4\n[bogus]\nfoo = 1\n", 6, "unknown section [bogus]"},
        {RUN "[job a]\nnot a pair\nfoo = 1\n", 4, "expected"},
        {RUN "[job a]\nfoo = 1\nnot a pair\n", 4, "unknown key 'foo'"},
    };
#undef RUN
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        load_fails(cases[i].text, KMQ_E_CONFIG, cases[i].line, cases[i].needle);

    /* A long line is read whole: no line buffer limits a path. */
    {
        char text[8192] = "[run]\noutput = o\n[job a]\nk = 4\ninput = ";
        size_t len = strlen(text);
        memset(text + len, 'x', 5000);
        strcpy(text + len + 5000, "\n");
        kmq_job job = {0};
        load_ok(text, &job);
        ck_assert_uint_eq(job.jobs[0].ninputs, 1);
        ck_assert_uint_eq(strlen(job.jobs[0].inputs[0].pattern), 5000);
        kmq_job_clear(&job);
    }

    /* A NUL byte in a line. */
    char path[4096];
    static const char nul[] = "[run]\noutput = o\n[job a]\nk = 4\0\ninput = x\n";
    tu_write_file(at(path, sizeof path, "job.ini"), nul, sizeof nul - 1);
    kmq_job job = {0};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_load(path, &job, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "NUL"));
    char where[4200];
    FMT(where, "%s:4", path);
    ck_assert_str_eq(err.where, where);
}
END_TEST

START_TEST(inline_comments_semicolon_and_hash)
{
    fresh("job_comments");
    kmq_job job = {0};
    load_ok("[run] ; the run\noutput = o ; c\n[job a] # the job\ninput = x # c\ninput = y;z\n"
            "k = 4 ; c\nsave = indexed # labels\nbackground = #000 # black\n",
            &job);
    const kmq_job_spec *s = &job.jobs[0];
    ck_assert_str_eq(s->inputs[0].pattern, "x");
    ck_assert_str_eq(s->inputs[1].pattern, "y;z"); /* no blank before ';': part of the path */
    ck_assert_uint_eq(s->save, KMQ_SAVE_INDEXED);
    ck_assert_uint_eq(s->background[0], 0);
    ck_assert_uint_eq(s->nk, 1);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(missing_and_unreadable_job_file)
{
    fresh("job_missing");
    char path[4096];
    kmq_job job = {0};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_load(at(path, sizeof path, "nope.ini"), &job, &err), KMQ_E_NOT_FOUND);
    ck_assert_str_eq(err.where, path);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_load(dir, &job, &err), KMQ_E_UNREADABLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "folder"));
    if (geteuid() != 0) {
        write_text(at(path, sizeof path, "locked.ini"), "[run]\n");
        ck_assert_int_eq(chmod(path, 0), 0);
        kmq_err_clear(&err);
        ck_assert_int_eq(kmq_job_load(path, &job, &err), KMQ_E_UNREADABLE);
        ck_assert_str_eq(err.where, path);
    }
    ck_assert_ptr_null(job.jobs);
}
END_TEST

START_TEST(tol_is_locale_independent)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8",
                                        "fr_FR.utf8"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    if (!got || strcmp(localeconv()->decimal_point, ",") != 0) {
        setlocale(LC_NUMERIC, "C");
        fprintf(stderr, "test_job: no locale with a decimal comma; locale check skipped\n");
        return;
    }
    fresh("job_locale");
    kmq_job job = {0};
    load_ok("[run]\noutput = o\n[job a]\ninput = x\nk = 4\ntol = 1e-4\n", &job);
    ck_assert(job.jobs[0].tol == 1e-4);
    kmq_job_clear(&job);
    load_ok("[run]\noutput = o\n[job a]\ninput = x\nk = 4\ntol = 0.25\n", &job);
    ck_assert(job.jobs[0].tol == 0.25);
    kmq_job_clear(&job);
    load_fails("[run]\noutput = o\n[job a]\ninput = x\nk = 4\ntol = 0,25\n", KMQ_E_CONFIG, 6,
               "not a number");
    setlocale(LC_NUMERIC, "C");
}
END_TEST

START_TEST(spec_check_cross_keys)
{
    kmq_job_spec s;
    kmq_job_spec_defaults(&s);
    size_t k[] = {4, 300};
    kmq_job_input in = {"x.png", 0};
    s.name = "q";
    s.k = k;
    s.nk = 2;
    s.inputs = &in;
    s.ninputs = 1;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_str_eq(err.msg, "k = 300 exceeds 256 for indexed output");
    s.save = KMQ_SAVE_PALETTE;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "exceeds 256"));
    k[1] = 16;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_OK);
    s.save = 0;
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "save"));
    s.save = KMQ_SAVE_INDEXED;
    s.restarts = 0;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "restarts"));
    s.restarts = 1;
    s.ninputs = 0;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "no input"));
    s.ninputs = 1;
    s.tol = -1;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    s.tol = 0;
    k[0] = 16;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "ascending"));
    /* A quality target: in 1..200, k = auto only with it, never with a
     * palette the job shares. */
    k[0] = 4;
    s.target_psnr = 0.5;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "target_psnr"));
    s.target_psnr = 30;
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_OK);
    s.palette = KMQ_PALETTE_SHARED;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "shared or given palette"));
    s.palette = KMQ_PALETTE_PER_IMAGE;
    s.target_psnr = 0;
    s.k_auto = true;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_job_spec_check(&s, &err), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "k = auto needs target_psnr"));
}
END_TEST

/* k = auto is the list 2..256, written back as "auto". */
START_TEST(k_auto_is_two_to_256)
{
    kmq_job_spec s;
    kmq_job_spec_defaults(&s);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_spec_set(&s, "k", "AUTO", &err), KMQ_OK);
    ck_assert(s.k_auto);
    ck_assert_uint_eq(s.nk, 255);
    ck_assert_uint_eq(s.k[0], 2);
    ck_assert_uint_eq(s.k[254], 256);
    char buf[64];
    kmq_job_format_value(NULL, &s, "k", buf, sizeof buf);
    ck_assert_str_eq(buf, "auto");
    ck_assert_int_eq(kmq_job_spec_set(&s, "k", "4, 8", &err), KMQ_OK);
    ck_assert(!s.k_auto);
    kmq_job_format_value(NULL, &s, "k", buf, sizeof buf);
    ck_assert_str_eq(buf, "4, 8");
    ck_assert_int_eq(kmq_job_spec_set(&s, "target_psnr", "35.5", &err), KMQ_OK);
    ck_assert(s.target_psnr == 35.5);
    kmq_job_format_value(NULL, &s, "target_psnr", buf, sizeof buf);
    ck_assert_str_eq(buf, "35.5");
    ck_assert_int_eq(kmq_job_spec_set(&s, "target_psnr", "-1", &err), KMQ_E_CONFIG);
    free(s.k);
}
END_TEST

START_TEST(key_table_and_formatting)
{
    static const char *const names[] = {"output",     "threads",     "seed",
                                        "k",          "target_psnr", "restarts",
                                        "max_iter",   "tol",         "init",
                                        "sample",     "save",        "alpha",
                                        "background", "max_pixels",  "max_decode_bytes",
                                        "formats",    "recursive",   "identity",
                                        "links",      "dither",      "dither_strength",
                                        "space",      "palette",     "palette_file",
                                        "report",     "input"};
    size_t n = 0;
    while (kmq_job_key(n))
        n++;
    ck_assert_uint_eq(n, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < n; i++) {
        const kmq_job_key_info *info = kmq_job_key(i);
        ck_assert_str_eq(info->name, names[i]);
        ck_assert_ptr_nonnull(info->sections);
        ck_assert_ptr_nonnull(info->help);
    }
    fresh("job_format");
    kmq_job job = {0};
    load_ok(EXAMPLE, &job);
    char buf[256];
    const kmq_job_spec *s = &job.jobs[0];
    ck_assert_uint_gt(kmq_job_format_value(&job, s, "k", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "4, 8, 16");
    kmq_job_format_value(&job, s, "background", buf, sizeof buf);
    ck_assert_str_eq(buf, "#ffffff");
    kmq_job_format_value(&job, s, "seed", buf, sizeof buf);
    ck_assert_str_eq(buf, "42");
    kmq_job_format_value(&job, s, "input", buf, sizeof buf);
    ck_assert_str_eq(buf, "../shared/images, extra/*.png");
    kmq_job_format_value(&job, s, "save", buf, sizeof buf);
    ck_assert_str_eq(buf, "indexed");
    kmq_job_format_value(&job, s, "init", buf, sizeof buf);
    ck_assert_str_eq(buf, "kmeans++");
    kmq_job_format_value(&job, s, "recursive", buf, sizeof buf);
    ck_assert_str_eq(buf, "true");
    kmq_job_format_value(&job, s, "identity", buf, sizeof buf);
    ck_assert_str_eq(buf, "quick");
    kmq_job_format_value(&job, s, "report", buf, sizeof buf);
    ck_assert_str_eq(buf, "light");
    kmq_job_format_value(&job, s, "target_psnr", buf, sizeof buf);
    ck_assert_str_eq(buf, "0");
    /* report: a choice, any case; anything else names the key and the words. */
    kmq_job_spec spec;
    kmq_job_spec_defaults(&spec);
    ck_assert_int_eq(spec.report, KMQ_REPORT_LIGHT);
    kmq_err rerr = {0};
    ck_assert_int_eq(kmq_job_spec_set(&spec, "report", "FULL", &rerr), KMQ_OK);
    ck_assert_int_eq(spec.report, KMQ_REPORT_FULL);
    kmq_job_format_value(NULL, &spec, "report", buf, sizeof buf);
    ck_assert_str_eq(buf, "full");
    ck_assert_int_eq(kmq_job_spec_set(&spec, "report", "none", &rerr), KMQ_OK);
    ck_assert_int_eq(spec.report, KMQ_REPORT_NONE);
    ck_assert_int_eq(kmq_job_spec_set(&spec, "report", "pretty", &rerr), KMQ_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(rerr.msg, "report = 'pretty' is not one of light, full, none"));
    ck_assert_int_eq(spec.report, KMQ_REPORT_NONE); /* the old value stays */
    ck_assert_uint_eq(kmq_job_format_value(&job, s, "nonsense", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    /* Truncation reports the full length, like snprintf. */
    ck_assert_uint_eq(kmq_job_format_value(&job, s, "k", buf, 3), 8);
    ck_assert_str_eq(buf, "4,");
    kmq_job_clear(&job);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Input expansion                                                     */

START_TEST(folder_recursive_or_not)
{
    fresh("job_list_folder");
    make_dir("imgs");
    make_dir("imgs/sub");
    make_dir("imgs/sub/deeper");
    touch("imgs/a.jpg");
    touch("imgs/b.png");
    touch("imgs/sub/c.jpg");
    touch("imgs/sub/deeper/d.tif");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = imgs\nk = 4\n", &job, &list);
    static const char *const flat[] = {"a.jpg", "b.png", NULL};
    expect_rels(&list, 0, flat);
    char expect[4200];
    FMT(expect, "%s/imgs/a.jpg", dir);
    ck_assert_str_eq(list.items[0].path, expect);
    kmq_input_list_clear(&list);
    ck_assert_ptr_null(list.items);
    ck_assert_uint_eq(list.n, 0);
    kmq_job_clear(&job);

    list_ok("[run]\noutput=o\n[job a]\ninput = imgs/\nk = 4\nrecursive = true\n", &job, &list);
    static const char *const deep[] = {"a.jpg", "b.png", "sub/c.jpg", "sub/deeper/d.tif", NULL};
    expect_rels(&list, 0, deep);
    FMT(expect, "%s/imgs/sub/deeper/d.tif", dir);
    ck_assert_str_eq(list.items[3].path, expect);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(extension_filter_any_case)
{
    fresh("job_list_ext");
    make_dir("imgs");
    static const char *const names[] = {"a.jpg",  "b.JPG",  "c.jpeg", "d.Png", "e.tif",
                                        "f.TIFF", "g.webp", "h.gif",  "i.v",   "j.V"};
    char rel[64];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        FMT(rel, "imgs/%s", names[i]);
        touch(rel);
    }
    touch("imgs/notes.txt");
    touch("imgs/README");
    touch("imgs/x.jpg.bak");
    touch("imgs/jpg");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = imgs\nk = 4\n", &job, &list);
    static const char *const want[] = {"a.jpg",  "b.JPG", "c.jpeg", "d.Png", "e.tif", "f.TIFF",
                                       "g.webp", "h.gif", "i.v",    "j.V",   NULL};
    expect_rels(&list, 0, want);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(explicit_file_without_image_extension_taken)
{
    fresh("job_list_explicit");
    make_dir("docs");
    touch("docs/notes.txt");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = docs/notes.txt\nk = 4\n", &job, &list);
    ck_assert_uint_eq(list.n, 1);
    ck_assert_str_eq(list.items[0].rel, "notes.txt");
    char expect[4200];
    FMT(expect, "%s/docs/notes.txt", dir);
    ck_assert_str_eq(list.items[0].path, expect);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(glob_inputs_and_rel)
{
    fresh("job_list_glob");
    make_dir("extra");
    make_dir("extra/2023");
    make_dir("extra/2024");
    touch("extra/x.png");
    touch("extra/y.png");
    touch("extra/z.jpg");
    touch("extra/w.txt");
    touch("extra/2023/a.jpg");
    touch("extra/2023/skip.txt");
    touch("extra/2024/b.png");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = extra/*.png\nk = 4\n"
            "[job b]\ninput = extra/20*\nk = 4\n"
            "[job c]\ninput = extra/*.txt\nk = 4\n",
            &job, &list);
    static const char *const a[] = {"x.png", "y.png", NULL};
    static const char *const b[] = {"2023/a.jpg", "2024/b.png", NULL};
    static const char *const c[] = {"w.txt", NULL}; /* matched by a glob: always taken */
    expect_rels(&list, 0, a);
    expect_rels(&list, 1, b);
    expect_rels(&list, 2, c);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);

    /* The job file's folder is matched literally even when its name looks
     * like a glob; rel stays relative to the pattern's literal folder. */
    char sub[4200], path[4300];
    FMT(sub, "%s/[set] 1", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    FMT(path, "%s/p.png", sub);
    write_text(path, "x");
    FMT(path, "%s/job.ini", sub);
    write_text(path, "[run]\noutput=o\n[job a]\ninput = *.png\nk = 4\n");
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_load(path, &job, &err), KMQ_OK);
    ck_assert_int_eq(kmq_job_list_inputs(&job, &list, &err), KMQ_OK);
    ck_assert_uint_eq(list.n, 1);
    ck_assert_str_eq(list.items[0].rel, "p.png");
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(sorted_by_job_then_rel_bytewise)
{
    fresh("job_list_sort");
    make_dir("one");
    make_dir("one/a");
    make_dir("two");
    touch("one/b.jpg");
    touch("one/B.jpg");
    touch("one/a.jpg");
    touch("one/a/x.jpg");
    touch("one/\xc3\xa9.jpg");
    touch("one/z.jpg");
    touch("two/m.jpg");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job zz]\ninput = two\nk = 4\n"
            "[job aa]\ninput = one\nk = 4\nrecursive = on\n",
            &job, &list);
    /* Jobs keep file order (zz first); rels sort by bytes: 'B' < 'a', '.' < '/',
     * and 0xC3 after 'z'. */
    ck_assert_uint_eq(list.n, 7);
    ck_assert_uint_eq(list.items[0].job, 0);
    ck_assert_str_eq(list.items[0].rel, "m.jpg");
    static const char *const one[] = {"B.jpg", "a.jpg",        "a/x.jpg", "b.jpg",
                                      "z.jpg", "\xc3\xa9.jpg", NULL};
    expect_rels(&list, 1, one);
    for (size_t i = 1; i < list.n; i++)
        ck_assert_uint_eq(list.items[i].job, 1);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(same_file_twice_listed_once)
{
    fresh("job_list_dedupe");
    make_dir("imgs");
    touch("imgs/a.jpg");
    touch("imgs/b.jpg");
    make_link("a.jpg", "imgs/link.jpg");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = imgs, imgs/a.jpg\ninput = imgs/*.jpg\nk = 4\n", &job,
            &list);
    /* a.jpg reached by the folder, by name, by the glob and via link.jpg:
     * once, under the smallest rel. */
    static const char *const want[] = {"a.jpg", "b.jpg", NULL};
    expect_rels(&list, 0, want);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);

    /* Two jobs may list the same file: dedupe is per job. */
    list_ok("[run]\noutput=o\n[job a]\ninput = imgs/a.jpg\nk = 4\n"
            "[job b]\ninput = imgs/a.jpg\nk = 4\n",
            &job, &list);
    ck_assert_uint_eq(list.n, 2);
    ck_assert_uint_eq(list.items[1].job, 1);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(colliding_rels_made_unique)
{
    fresh("job_list_collide");
    make_dir("p");
    make_dir("q");
    make_dir("r");
    touch("p/a.jpg");
    touch("q/a.jpg");
    touch("r/a.jpg");
    touch("r/a.jpg~2"); /* explicit file already holding the first suffix */
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = r, q, p\ninput = r/a.jpg~2\nk = 4\n", &job, &list);
    static const char *const want[] = {"a.jpg", "a.jpg~2", "a.jpg~3", "a.jpg~4", NULL};
    expect_rels(&list, 0, want);
    /* Suffixes follow the full paths' order, not the input order. */
    char p[4200], q[4200], r[4200], r2[4200];
    FMT(p, "%s/p/a.jpg", dir);
    FMT(q, "%s/q/a.jpg", dir);
    FMT(r, "%s/r/a.jpg", dir);
    FMT(r2, "%s/r/a.jpg~2", dir);
    ck_assert_str_eq(list.items[0].path, p);
    ck_assert_str_eq(list.items[1].path, r2);
    ck_assert_str_eq(list.items[2].path, q);
    ck_assert_str_eq(list.items[3].path, r);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(symlink_loop_terminates)
{
    fresh("job_list_loop");
    make_dir("imgs");
    make_dir("imgs/sub");
    touch("imgs/a.jpg");
    touch("imgs/sub/b.jpg");
    make_link("..", "imgs/sub/up");
    make_link(".", "imgs/self");
    make_link("sub", "imgs/alias");
    make_link("loopB.jpg", "imgs/loopA.jpg"); /* a cycle of file links */
    make_link("loopA.jpg", "imgs/loopB.jpg");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = imgs\nk = 4\nrecursive = true\n", &job, &list);
    /* sub is reached as "alias" first (byte order), and only once; the
     * link cycle is listed so the run can report it. */
    static const char *const want[] = {"a.jpg", "alias/b.jpg", "loopA.jpg", "loopB.jpg", NULL};
    expect_rels(&list, 0, want);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

START_TEST(odd_file_names_unchanged)
{
    fresh("job_list_odd");
    make_dir("imgs");
    touch("imgs/with space.jpg");
    touch("imgs/new\nline.jpg");
    touch("imgs/\xff\xfe bytes.png");
    touch("imgs/semi;colon #hash.png");
    kmq_job job = {0};
    kmq_input_list list = {0};
    list_ok("[run]\noutput=o\n[job a]\ninput = imgs\nk = 4\n", &job, &list);
    static const char *const want[] = {"new\nline.jpg", "semi;colon #hash.png", "with space.jpg",
                                       "\xff\xfe bytes.png", NULL};
    expect_rels(&list, 0, want);
    char expect[4200];
    FMT(expect, "%s/imgs/new\nline.jpg", dir);
    ck_assert_str_eq(list.items[0].path, expect);
    struct stat sb;
    for (size_t i = 0; i < list.n; i++)
        ck_assert_int_eq(stat(list.items[i].path, &sb), 0);
    kmq_input_list_clear(&list);
    kmq_job_clear(&job);
}
END_TEST

/* Loads (must work), expands (must fail with KMQ_E_CONFIG at `line`). */
static void list_fails(const char *text, int line, const char *needle)
{
    char path[4096], where[4200];
    kmq_job job = {0};
    kmq_input_list list = {0};
    load_ok(text, &job);
    at(path, sizeof path, "job.ini");
    FMT(where, "%s:%d", path, line);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_job_list_inputs(&job, &list, &err), KMQ_E_CONFIG);
    ck_assert_str_eq(err.where, where);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_ptr_null(list.items);
    kmq_job_clear(&job);
}

START_TEST(input_errors_name_pattern_and_line)
{
    fresh("job_list_errors");
    make_dir("imgs");
    make_dir("empty");
    touch("imgs/a.jpg");
    touch("empty/notes.txt");
    list_fails("[run]\noutput=o\n[job a]\nk = 4\ninput = imgs\ninput = nothing/*.png\n", 6,
               "input 'nothing/*.png' matches no file");
    list_fails("[run]\noutput=o\n[job a]\nk = 4\ninput = imgs, missing.jpg\n", 5,
               "input 'missing.jpg' does not exist");
    list_fails("[run]\noutput=o\n[job a]\ninput = imgs\nk=4\n\n[job b]\nk = 4\ninput = empty\n", 7,
               "job 'b' matches no image");
    if (geteuid() != 0) {
        make_dir("locked");
        char path[4096];
        ck_assert_int_eq(chmod(at(path, sizeof path, "locked"), 0), 0);
        list_fails("[run]\noutput=o\n[job a]\nk = 4\ninput = locked\n", 5, "cannot read folder");
        chmod(path, 0755);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation failures                                                 */

START_TEST(alloc_failure_sweep_load)
{
    fresh("job_alloc");
    char path[4096];
    char text[4096];
    /* The example plus a second job, so [defaults] is applied twice. */
    FMT(text, "%s[job more]\ninput = a, b\ninput = c\nsave = labels\n", EXAMPLE);
    write_text(at(path, sizeof path, "job.ini"), text);
    long n = 0;
    for (;; n++) {
        kmq_job job = {0};
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        kmq_status st = kmq_job_load(path, &job, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            ck_assert_uint_eq(job.njobs, 2);
            kmq_job_clear(&job);
            break;
        }
        ck_assert_msg(st == KMQ_E_NOMEM, "allocation %ld: got %s (%s)", n, kmq_status_name(st),
                      err.msg);
        ck_assert_ptr_null(job.jobs);
        ck_assert_ptr_null(job.path);
        ck_assert(n < 100000);
    }
    ck_assert_int_gt(n, 10);
}
END_TEST

START_TEST(alloc_failure_sweep_list_inputs)
{
    fresh("job_alloc_list");
    make_dir("p");
    make_dir("p/sub");
    make_dir("q");
    touch("p/a.jpg");
    touch("p/sub/b.jpg");
    touch("q/a.jpg");
    make_link("..", "p/sub/up");
    kmq_job job = {0};
    load_ok("[run]\noutput=o\n[job a]\ninput = p, q, q/*.jpg\nk = 4\nrecursive = true\n", &job);
    long n = 0;
    for (;; n++) {
        kmq_input_list list = {0};
        kmq_err err = {0};
        kmq_alloc_fail_after(n);
        kmq_status st = kmq_job_list_inputs(&job, &list, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            static const char *const want[] = {"a.jpg", "a.jpg~2", "sub/b.jpg", NULL};
            expect_rels(&list, 0, want);
            kmq_input_list_clear(&list);
            break;
        }
        ck_assert_msg(st == KMQ_E_NOMEM, "allocation %ld: got %s (%s)", n, kmq_status_name(st),
                      err.msg);
        ck_assert_ptr_null(list.items);
        ck_assert(n < 100000);
    }
    ck_assert_int_gt(n, 10);
    kmq_job_clear(&job);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"example", example_parses_to_documented_values},
        {"example_defaults_k", example_defaults_k_list_applies_to_jobs_without_k},
        {"defaults", defaults_when_keys_absent},
        {"defaults_after_jobs", defaults_section_after_jobs_still_applies},
        {"value_syntax", value_syntax_variants},
        {"relative_output", relative_output_resolves_against_job_folder},
        {"k_list", k_list_parser},
        {"config_errors", config_errors_name_file_and_line},
        {"inline_comments", inline_comments_semicolon_and_hash},
        {"job_file_missing", missing_and_unreadable_job_file},
        {"locale", tol_is_locale_independent},
        {"spec_check", spec_check_cross_keys},
        {"k_auto", k_auto_is_two_to_256},
        {"key_table", key_table_and_formatting},
        {"list_folder", folder_recursive_or_not},
        {"list_extensions", extension_filter_any_case},
        {"list_explicit", explicit_file_without_image_extension_taken},
        {"list_glob", glob_inputs_and_rel},
        {"list_sorted", sorted_by_job_then_rel_bytewise},
        {"list_dedupe", same_file_twice_listed_once},
        {"list_collisions", colliding_rels_made_unique},
        {"list_symlink_loop", symlink_loop_terminates},
        {"list_odd_names", odd_file_names_unchanged},
        {"list_errors", input_errors_name_pattern_and_line},
        {"alloc_sweep_load", alloc_failure_sweep_load},
        {"alloc_sweep_list", alloc_failure_sweep_list_inputs},
    };
    Suite *s = suite_create("job");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
