/* test_par.c — the thread budget, the chunk plan and the OpenMP shims.
 *
 * The budget's "all cores" case is checked in a fresh process (this program
 * run again with --print-budget), because OpenMP reads OMP_NUM_THREADS once,
 * when it starts. The serial shims (par.c built without OpenMP) are compiled
 * into this file a second time under other names, so a build with OpenMP
 * checks them too. */
#include "kmq/par.h"
#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- par.c without OpenMP, as serial_par_* ------------------------------ */

#define kmq_par_make          serial_par_make
#define kmq_par_max_threads   serial_par_max_threads
#define kmq_par_thread_num    serial_par_thread_num
#define kmq_par_team_size     serial_par_team_size
#define kmq_par_in_parallel   serial_par_in_parallel
#define kmq_par_limit_nesting serial_par_limit_nesting
#define kmq_par_chunks        serial_par_chunks
#define kmq_par_now_s         serial_par_now_s
kmq_par serial_par_make(int threads);
int serial_par_max_threads(void);
int serial_par_thread_num(void);
int serial_par_team_size(void);
int serial_par_in_parallel(void);
void serial_par_limit_nesting(void);
size_t serial_par_chunks(size_t n);
double serial_par_now_s(void);
#pragma push_macro("_OPENMP")
#undef _OPENMP
#include "par.c"
#pragma pop_macro("_OPENMP")
#undef kmq_par_make
#undef kmq_par_max_threads
#undef kmq_par_thread_num
#undef kmq_par_team_size
#undef kmq_par_in_parallel
#undef kmq_par_limit_nesting
#undef kmq_par_chunks
#undef kmq_par_now_s

/* ---- the budget --------------------------------------------------------- */

/* A positive request is taken as it is, with no cap. */
START_TEST(budget_explicit)
{
    static const int asked[] = {1, 2, 3, 7, 64, 4096, INT_MAX};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++)
        ck_assert_int_eq(kmq_par_make(asked[i]).threads, asked[i]);
}
END_TEST

/* 0 or a negative request means all cores: omp_get_max_threads(). */
START_TEST(budget_all_cores)
{
    int all = kmq_par_max_threads();
    ck_assert_int_ge(all, 1);
#ifdef _OPENMP
    ck_assert_int_eq(all, omp_get_max_threads());
#else
    ck_assert_int_eq(all, 1);
#endif
    ck_assert_int_eq(kmq_par_make(0).threads, all);
    ck_assert_int_eq(kmq_par_make(-1).threads, all);
    ck_assert_int_eq(kmq_par_make(INT_MIN).threads, all);
}
END_TEST

/* "budget max" printed by this program run again with OMP_NUM_THREADS set
 * to `value` (unset when NULL). */
static void budget_in_child(const char *value, int *budget, int *max)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        if (value)
            setenv("OMP_NUM_THREADS", value, 1);
        else
            unsetenv("OMP_NUM_THREADS");
        execl("/proc/self/exe", "test_par", "--print-budget", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char text[64] = {0};
    size_t used = 0;
    ssize_t got;
    while (used < sizeof text - 1 && (got = read(fd[0], text + used, sizeof text - 1 - used)) > 0)
        used += (size_t)got;
    close(fd[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ck_assert_msg(sscanf(text, "%d %d", budget, max) == 2, "child printed '%s'", text);
}

/* OMP_NUM_THREADS decides "all cores", as the README promises for
 * --threads 0; the serial build always has one. */
START_TEST(budget_honours_omp_num_threads)
{
    static const struct {
        const char *env;
        int want;
    } cases[] = {{"3", 3}, {"1", 1}, {"5", 5}, {"2,1", 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int budget = 0, max = 0;
        budget_in_child(cases[i].env, &budget, &max);
#ifdef _OPENMP
        int want = cases[i].want;
#else
        int want = 1;
#endif
        ck_assert_msg(budget == want && max == want, "OMP_NUM_THREADS=%s: budget %d, max %d",
                      cases[i].env, budget, max);
    }
    int budget = 0, max = 0;
    budget_in_child(NULL, &budget, &max);
    ck_assert_int_ge(budget, 1);
    ck_assert_int_eq(budget, max);
}
END_TEST

/* ---- shims -------------------------------------------------------------- */

START_TEST(outside_a_region)
{
    ck_assert_int_eq(kmq_par_thread_num(), 0);
    ck_assert_int_eq(kmq_par_in_parallel(), 0);
}
END_TEST

/* Inside a region each thread sees its own number, 0 .. team - 1, and the
 * team's size, and the region is active when the team has more than one
 * thread; outside, the team is the one thread. */
START_TEST(inside_a_region)
{
#ifdef _OPENMP
    enum { TEAM = 3 };
    int seen[TEAM] = {0}, active[TEAM] = {0}, sizes[TEAM] = {0}, team = 0;
#pragma omp parallel num_threads(TEAM) default(none) shared(seen, active, sizes, team)
    {
        int t = kmq_par_thread_num();
        if (t >= 0 && t < TEAM) {
            seen[t]++;
            active[t] = kmq_par_in_parallel();
            sizes[t] = kmq_par_team_size();
        }
#pragma omp single
        team = omp_get_num_threads();
    }
    ck_assert_int_ge(team, 1);
    for (int t = 0; t < TEAM; t++) {
        ck_assert_int_eq(seen[t], t < team ? 1 : 0);
        if (t < team) {
            ck_assert_int_eq(active[t], team > 1);
            ck_assert_int_eq(sizes[t], team);
        }
    }
    ck_assert_int_eq(kmq_par_in_parallel(), 0);
    ck_assert_int_eq(kmq_par_team_size(), 1);
#else
    ck_assert_int_eq(kmq_par_thread_num(), 0);
    ck_assert_int_eq(kmq_par_team_size(), 1);
#endif
}
END_TEST

/* After kmq_par_limit_nesting, a region opened inside another runs with one
 * thread: every inner body is thread 0 of its own team. */
START_TEST(limit_nesting)
{
    kmq_par_limit_nesting();
#ifdef _OPENMP
    ck_assert_int_eq(omp_get_max_active_levels(), 1);
    int inner_runs = 0, inner_nonzero = 0, outer_team = 0;
#pragma omp parallel num_threads(2) default(none) shared(inner_runs, inner_nonzero, outer_team)
    {
#pragma omp single
        outer_team = omp_get_num_threads();
#pragma omp parallel num_threads(4) default(none) shared(inner_runs, inner_nonzero)
        {
#pragma omp atomic
            inner_runs++;
            if (kmq_par_thread_num() != 0) {
#pragma omp atomic
                inner_nonzero++;
            }
        }
    }
    ck_assert_int_eq(inner_runs, outer_team);
    ck_assert_int_eq(inner_nonzero, 0);
#endif
}
END_TEST

/* Built without OpenMP, par.c reports one thread everywhere, even when
 * called from inside a region, resolves "all cores" to 1, changes no
 * OpenMP setting and plans the same chunks. */
START_TEST(serial_shims)
{
    ck_assert_int_eq(serial_par_max_threads(), 1);
    ck_assert_int_eq(serial_par_thread_num(), 0);
    ck_assert_int_eq(serial_par_team_size(), 1);
    ck_assert_int_eq(serial_par_in_parallel(), 0);
    ck_assert_int_eq(serial_par_make(0).threads, 1);
    ck_assert_int_eq(serial_par_make(-4).threads, 1);
    ck_assert_int_eq(serial_par_make(6).threads, 6);
    static const size_t ns[] = {0, 1, KMQ_CHUNK, KMQ_CHUNK + 1, 123456789, SIZE_MAX};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        ck_assert_uint_eq(serial_par_chunks(ns[i]), kmq_par_chunks(ns[i]));
#ifdef _OPENMP
    int levels = omp_get_max_active_levels();
    serial_par_limit_nesting();
    ck_assert_int_eq(omp_get_max_active_levels(), levels);
    int bad = 0;
#pragma omp parallel num_threads(3) default(none) shared(bad)
    {
        if (serial_par_thread_num() != 0 || serial_par_in_parallel() != 0 ||
            serial_par_max_threads() != 1 || serial_par_team_size() != 1) {
#pragma omp atomic
            bad++;
        }
    }
    ck_assert_int_eq(bad, 0);
#else
    serial_par_limit_nesting();
#endif
    double t0 = serial_par_now_s(), t1 = kmq_par_now_s(), t2 = serial_par_now_s();
    ck_assert(t0 <= t1 && t1 <= t2);
}
END_TEST

/* ---- the chunk plan ----------------------------------------------------- */

START_TEST(chunk_counts)
{
    ck_assert_uint_eq(KMQ_CHUNK, 4096);
    ck_assert_uint_eq(kmq_par_chunks(0), 0);
    ck_assert_uint_eq(kmq_par_chunks(1), 1);
    ck_assert_uint_eq(kmq_par_chunks(KMQ_CHUNK - 1), 1);
    ck_assert_uint_eq(kmq_par_chunks(KMQ_CHUNK), 1);
    ck_assert_uint_eq(kmq_par_chunks(KMQ_CHUNK + 1), 2);
    ck_assert_uint_eq(kmq_par_chunks(10 * KMQ_CHUNK), 10);
    ck_assert_uint_eq(kmq_par_chunks((size_t)1 << 24), ((size_t)1 << 24) / KMQ_CHUNK);
    /* no wrap-around at the top of size_t */
    ck_assert_uint_eq(kmq_par_chunks(SIZE_MAX), SIZE_MAX / KMQ_CHUNK + 1);
    ck_assert_uint_eq(kmq_par_chunks(SIZE_MAX - KMQ_CHUNK + 2), SIZE_MAX / KMQ_CHUNK + 1);
    for (size_t n = 0; n < 3 * KMQ_CHUNK; n += 97) {
        size_t c = kmq_par_chunks(n);
        ck_assert(c * KMQ_CHUNK >= n);                /* the chunks cover n ... */
        ck_assert(c == 0 || (c - 1) * KMQ_CHUNK < n); /* ... and none is empty */
    }
}
END_TEST

/* Values whose sum depends on the order of the additions. */
static double value_at(size_t i)
{
    return ldexp(1.0 + (double)((i * 2654435761u) % 1000) / 1000.0, (int)(i % 41) - 20);
}

/* The drivers' pattern: chunks from kmq_par_chunks, one double slot per
 * chunk, slots folded in chunk order after the region. `visits` counts how
 * often each item was handled. */
static double chunked_sum(const double *x, size_t n, kmq_par par, unsigned char *visits)
{
    size_t nchunks = kmq_par_chunks(n);
    double *slot = calloc(nchunks ? nchunks : 1, sizeof *slot);
    ck_assert_ptr_nonnull(slot);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(par.threads) default(none)               \
    shared(x, n, nchunks, slot, visits)
#else
    (void)par;
#endif
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * KMQ_CHUNK, hi = n - lo > KMQ_CHUNK ? lo + KMQ_CHUNK : n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) {
            s += x[i];
            visits[i]++;
        }
        slot[c] = s;
    }
    double total = 0.0;
    for (size_t c = 0; c < nchunks; c++)
        total += slot[c];
    free(slot);
    return total;
}

/* The plan depends on the data size only: at 1, 2, 3 and 7 threads every
 * item is handled once and the chunk-ordered sum has the same bits. */
START_TEST(chunk_plan_ignores_thread_count)
{
    static const size_t ns[] = {0, 1, KMQ_CHUNK - 1, KMQ_CHUNK, KMQ_CHUNK + 1, 10 * KMQ_CHUNK + 17};
    static const int threads[] = {1, 2, 3, 7};
    const size_t most = 10 * KMQ_CHUNK + 17;
    double *x = malloc(most * sizeof *x);
    unsigned char *visits = malloc(most);
    ck_assert(x && visits);
    for (size_t i = 0; i < most; i++)
        x[i] = value_at(i);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        double first = 0.0;
        for (size_t b = 0; b < sizeof threads / sizeof threads[0]; b++) {
            memset(visits, 0, most);
            double sum = chunked_sum(x, ns[a], kmq_par_make(threads[b]), visits);
            size_t wrong = 0; /* counted, not asserted per item: Check logs every assertion */
            for (size_t i = 0; i < most; i++)
                wrong += visits[i] != (i < ns[a] ? 1 : 0);
            ck_assert_msg(wrong == 0, "n = %zu, %d threads: %zu items not handled once", ns[a],
                          threads[b], wrong);
            if (b == 0)
                first = sum;
            ck_assert_msg(memcmp(&sum, &first, sizeof sum) == 0,
                          "n = %zu: %d threads give %.17g, 1 thread %.17g", ns[a], threads[b], sum,
                          first);
        }
    }
    free(x);
    free(visits);
}
END_TEST

/* ---- the clock ---------------------------------------------------------- */

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* kmq_par_now_s is CLOCK_MONOTONIC in seconds: it never goes back, falls
 * between two readings of that clock, and advances by at least a sleep. */
START_TEST(clock_is_monotonic_seconds)
{
    double before = monotonic_s();
    double now = kmq_par_now_s();
    double after = monotonic_s();
    ck_assert(before <= now && now <= after);
    double last = now;
    int backwards = 0;
    for (int i = 0; i < 10000; i++) {
        double t = kmq_par_now_s();
        backwards += t < last;
        last = t;
    }
    ck_assert_int_eq(backwards, 0);
    struct timespec pause = {0, 5000000}; /* 5 ms */
    double t0 = kmq_par_now_s();
    ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, NULL), 0);
    ck_assert(kmq_par_now_s() - t0 >= 0.005 - 1e-6);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--print-budget") == 0) {
        printf("%d %d\n", kmq_par_make(0).threads, kmq_par_max_threads());
        return 0;
    }
    const tu_case cases[] = {
        {"budget_explicit", budget_explicit},
        {"budget_all_cores", budget_all_cores},
        {"budget_honours_omp_num_threads", budget_honours_omp_num_threads},
        {"outside_a_region", outside_a_region},
        {"inside_a_region", inside_a_region},
        {"limit_nesting", limit_nesting},
        {"serial_shims", serial_shims},
        {"chunk_counts", chunk_counts},
        {"chunk_plan_ignores_thread_count", chunk_plan_ignores_thread_count},
        {"clock_is_monotonic_seconds", clock_is_monotonic_seconds},
    };
    Suite *s = suite_create("par");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
