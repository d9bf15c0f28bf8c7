/* cmd_bench.c — `kmq bench`: thread-scaling study of the k-means fit
 * (layer L4, docs/design.md and §6).
 *
 * A fixed, reproducible workload: one photo (a bundled one by default) is
 * decoded and its distinct-colour histogram built once; then for every k
 * the full fit (restarts x (k-means++ + Lloyd), seed fixed) runs at 1, 2,
 * 4, ... threads up to --threads-max (and that count itself), --repeat
 * times each, and the median wall time is kept. The repeats run in
 * rounds, each round every thread count once, so that a shared machine's
 * drifting load falls on all thread counts alike, not on one of them.
 * Reported per thread count: time per fit, time per Lloyd iteration (fit
 * time / iterations of all restarts), distance evaluations per second
 * (counted by the library), speedup and parallel efficiency against 1
 * thread; and per k, the distance evaluations of the seeding and of Lloyd
 * against what brute force would compute for the same runs, and the share
 * the pruning avoided. Every thread count must give the same bits (centres, sizes,
 * inertia, iterations, evaluation count, docs/design.md); if one does not,
 * bench says which and exits 1.
 *
 * Writes a table to stdout, JSON (--json, default bench-results.json) and
 * an SVG plot of speedup against threads (--svg, default the JSON path
 * with .svg), written directly here: the plot is a few lines of SVG.
 */
#include "cli.h"

#include "kmq/job.h"

#include "kmq/hist.h"
#include "kmq/image.h"
#include "kmq/kmeans.h"
#include "kmq/par.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>

#define MAX_KS        16
#define MAX_TC        16
#define MAX_REPEAT    100
#define DEFAULT_IMAGE "data/photos/china.jpg"

typedef struct bench_row {
    int threads;
    double fit_s; /* median */
    double min_s, max_s;
    double runs_s[MAX_REPEAT]; /* each run's time, in round order */
    double iter_s;             /* fit_s / iterations_total */
    double evals_per_s;
    double speedup, efficiency;
    double init_share;      /* median share of the runs' time spent drawing initial centres */
    double init_s, lloyd_s; /* medians of the two phases' time, summed over the restarts */
    bool identical;         /* same bits as 1 thread */
    const char *runs;       /* how the restarts shared the threads (runs_mode) */
} bench_row;

/* Preparing the colours (kmq_kmeans_prepared_new), which a run does once
 * per image for all its k: median seconds per thread count, apart from the
 * fits, which start from the prepared colours. */
typedef struct prep_times {
    int n;
    int threads[MAX_TC];
    double s[MAX_TC];
} prep_times;

typedef struct bench_k {
    size_t k;
    uint64_t iterations_total, evals;
    uint64_t init_evals, brute_init, brute_lloyd; /* kmq_fit's: the share pruning avoided */
    double inertia, mse;
    int nrows;
    bench_row rows[MAX_TC];
} bench_k;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *v, unsigned long long n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "serial" on 1 thread, else "side_by_side" (whole restarts, one per
 * thread) or "split" (each restart's passes across the threads). */
static const char *runs_mode(const kmq_fit *fit, int threads)
{
    if (threads < 2)
        return "serial";
    return fit->runs_side_by_side ? "side_by_side" : "split";
}

static bool same_fit(const kmq_fit *a, const kmq_fit *b)
{
    return a->k_effective == b->k_effective &&
           memcmp(a->centers, b->centers, 3 * a->k_effective * sizeof *a->centers) == 0 &&
           memcmp(a->sizes, b->sizes, a->k_effective * sizeof *a->sizes) == 0 &&
           memcmp(&a->inertia, &b->inertia, sizeof a->inertia) == 0 &&
           a->iterations == b->iterations && a->iterations_total == b->iterations_total &&
           a->distance_evals == b->distance_evals && a->best_restart == b->best_restart;
}

/* Histogram of the whole image; false after printing an error. */
static bool load_hist(const char *path, kmq_hist **out, uint64_t *pixels, uint32_t *w, uint32_t *h)
{
    kmq_err err = {0};
    kmq_image *img = NULL;
    kmq_hist *hist = NULL;
    uint8_t *buf = NULL;
    bool ok = false;
    kmq_image_opts io;
    memset(&io, 0, sizeof io);
    io.background[0] = io.background[1] = io.background[2] = 255;
    io.mode = KMQ_IMAGE_STREAM;
    if (kmq_image_open(path, &io, &img, &err) != KMQ_OK)
        goto done;
    const kmq_image_info *info = kmq_image_get_info(img);
    buf = malloc((size_t)kmq_image_strip_rows(img) * info->width * 3);
    if (!buf) {
        kmq_err_set(&err, KMQ_E_NOMEM, "out of memory for a strip of %u pixels", info->width);
        goto done;
    }
    if (kmq_hist_new(&hist, &err) != KMQ_OK ||
        kmq_hist_expect(hist, (uint64_t)info->width * info->height, &err) != KMQ_OK ||
        kmq_image_rewind(img, &err) != KMQ_OK)
        goto done;
    for (;;) {
        uint32_t rows = 0;
        if (kmq_image_read_strip(img, buf, &rows, &err) != KMQ_OK)
            goto done;
        if (rows == 0)
            break;
        if (kmq_hist_add_rgb(hist, buf, (size_t)rows * info->width, &err) != KMQ_OK)
            goto done;
    }
    if (kmq_hist_finish(hist, &err) != KMQ_OK)
        goto done;
    *pixels = info->pixels;
    *w = info->width;
    *h = info->height;
    *out = hist;
    hist = NULL;
    ok = true;
done:
    if (!ok) {
        if (!err.where[0])
            kmq_err_where(&err, "%s", path);
        kmq_cli_error(&err);
    }
    free(buf);
    kmq_hist_free(hist);
    kmq_image_free(img);
    return ok;
}

/* The share of brute force's distance evaluations a method avoided. */
static double avoided(uint64_t evals, uint64_t brute)
{
    return brute ? 1.0 - (double)evals / (double)brute : 0.0;
}

/* Per k, each phase's evaluations against brute force's. */
static void print_avoided(const bench_k *res, int nk)
{
    printf("\n%5s  %-22s %14s %14s %8s\n", "k", "method", "evaluated", "brute force", "avoided");
    for (int i = 0; i < nk; i++) {
        const bench_k *b = &res[i];
        const uint64_t lloyd = b->evals - b->init_evals;
        printf("%5zu  %-22s %14llu %14llu %7.1f%%\n", b->k, "k-means++ (box-pruned)",
               (unsigned long long)b->init_evals, (unsigned long long)b->brute_init,
               100.0 * avoided(b->init_evals, b->brute_init));
        printf("%5zu  %-22s %14llu %14llu %7.1f%%\n", b->k, "Lloyd (box-filtered)",
               (unsigned long long)lloyd, (unsigned long long)b->brute_lloyd,
               100.0 * avoided(lloyd, b->brute_lloyd));
    }
}

static void json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static bool write_json(const char *path, const char *image, uint32_t w, uint32_t h, uint64_t pixels,
                       size_t colors, double hist_s, const prep_times *prep, int restarts,
                       int repeat, uint64_t seed, int threads_max, const bench_k *res, int nk,
                       bool all_same)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kmq bench: cannot write %s\n", path);
        return false;
    }
    struct utsname un;
    memset(&un, 0, sizeof un);
    uname(&un);
    fprintf(f,
            "{\n  \"schema\": 1,\n  \"kmq_version\": \"%s\",\n  \"machine\": ", KMQ_VERSION_STRING);
    json_escape(f, un.machine);
    fprintf(f, ",\n  \"host\": ");
    json_escape(f, un.nodename);
    fprintf(f, ",\n  \"image\": ");
    json_escape(f, image);
    fprintf(f,
            ",\n  \"width\": %u, \"height\": %u, \"pixels\": %llu, \"unique_colors\": %zu,\n"
            "  \"histogram_s\": %.6f,\n  \"prepare_s\": [",
            w, h, (unsigned long long)pixels, colors, hist_s);
    for (int t = 0; t < prep->n; t++)
        fprintf(f, "%s{\"threads\": %d, \"s\": %.6f}", t ? ", " : "", prep->threads[t], prep->s[t]);
    fprintf(f,
            "],\n  \"restarts\": %d, \"repeat\": %d, \"seed\": %llu, "
            "\"threads_max\": %d,\n  \"identical_across_threads\": %s,\n  \"results\": [\n",
            restarts, repeat, (unsigned long long)seed, threads_max, all_same ? "true" : "false");
    for (int i = 0; i < nk; i++) {
        const bench_k *b = &res[i];
        fprintf(f,
                "    {\"k\": %zu, \"inertia\": %.17g, \"mse\": %.17g, \"iterations_total\": %llu, "
                "\"distance_evals\": %llu,\n     \"init_evals\": %llu, \"brute_init_evals\": "
                "%llu, \"init_avoided\": %.6f, \"lloyd_evals\": %llu, \"brute_lloyd_evals\": %llu, "
                "\"lloyd_avoided\": %.6f, \"threads\": [\n",
                b->k, b->inertia, b->mse, (unsigned long long)b->iterations_total,
                (unsigned long long)b->evals, (unsigned long long)b->init_evals,
                (unsigned long long)b->brute_init, avoided(b->init_evals, b->brute_init),
                (unsigned long long)(b->evals - b->init_evals), (unsigned long long)b->brute_lloyd,
                avoided(b->evals - b->init_evals, b->brute_lloyd));
        for (int t = 0; t < b->nrows; t++) {
            const bench_row *r = &b->rows[t];
            fprintf(f,
                    "      {\"threads\": %d, \"fit_s\": %.6f, \"fit_min_s\": %.6f, \"fit_max_s\": "
                    "%.6f, \"iteration_s\": %.9f, \"distance_evals_per_s\": %.6g, \"speedup\": "
                    "%.4f, \"efficiency\": %.4f, \"init_share\": %.4f, \"init_s\": %.6f, "
                    "\"lloyd_s\": %.6f,\n       \"identical\": %s, \"runs\": \"%s\", "
                    "\"fit_runs_s\": [",
                    r->threads, r->fit_s, r->min_s, r->max_s, r->iter_s, r->evals_per_s, r->speedup,
                    r->efficiency, r->init_share, r->init_s, r->lloyd_s,
                    r->identical ? "true" : "false", r->runs);
            for (int q = 0; q < repeat; q++)
                fprintf(f, "%s%.6f", q ? ", " : "", r->runs_s[q]);
            fprintf(f, "]}%s\n", t + 1 < b->nrows ? "," : "");
        }
        fprintf(f, "    ]}%s\n", i + 1 < nk ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0;
}

/* Speedup against threads: one line per k, the ideal as a dashed diagonal. */
static bool write_svg(const char *path, const char *image, const bench_k *res, int nk,
                      int threads_max)
{
    static const char *colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                    "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kmq bench: cannot write %s\n", path);
        return false;
    }
    const double W = 520, H = 360, L = 60, R = 130, T = 40, B = 50;
    double ymax = threads_max;
    for (int i = 0; i < nk; i++)
        for (int t = 0; t < res[i].nrows; t++)
            ymax = res[i].rows[t].speedup > ymax ? res[i].rows[t].speedup : ymax;
    const double xmax = threads_max > 1 ? threads_max : 2;
#define SX(v) (L + ((v)-1.0) / (xmax - 1.0) * (W - L - R))
#define SY(v) (H - B - (v) / ymax * (H - T - B))
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%.0f\" y=\"22\" font-size=\"14\">kmq bench: fit speedup vs threads</text>\n",
            W, H, L);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L,
            H - B, W - R, H - B);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L,
            H - B, L, (double)T);
    for (int x = 1; x <= (int)xmax; x++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", SX(x),
                H - B + 16, x);
    for (int y = 0; y <= (int)ymax; y++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", L - 6, SY(y) + 4,
                y);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">threads</text>\n"
            "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" "
            "text-anchor=\"middle\">speedup</text>\n",
            (L + W - R) / 2, H - 12, (T + H - B) / 2, (T + H - B) / 2);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"grey\" "
            "stroke-dasharray=\"4 4\"/>\n",
            SX(1), SY(1), SX(xmax), SY(xmax));
    for (int i = 0; i < nk; i++) {
        const char *c = colours[i % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int t = 0; t < res[i].nrows; t++)
            fprintf(f, "%.1f,%.1f ", SX(res[i].rows[t].threads), SY(res[i].rows[t].speedup));
        fprintf(f, "\"/>\n");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">k = %zu</text>\n", W - R + 12,
                T + 16.0 * (i + 1), c, res[i].k);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"grey\">ideal</text>\n", W - R + 12,
            T + 16.0 * (nk + 1));
    fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" fill=\"grey\">", L, H - 2);
    for (const char *s = image; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
    fprintf(f, "</text>\n</svg>\n");
#undef SX
#undef SY
    return fclose(f) == 0;
}

static const kmq_cli_opt bench_opts[] = {
    {"image", 0, "PATH", DEFAULT_IMAGE, "the photo to fit (decoded once)"},
    {"k", 'k', "LIST", "16, 64, 256", "k values, as in a job file (4,8,16 or 2-16:2)"},
    {"restarts", 0, "N", "10", "restarts of each fit"},
    {"threads-max", 0, "N", "0", "largest thread count; 1, 2, 4, ... up to it (0: all cores)"},
    {"repeat", 0, "N", "3", "runs of each (k, threads); the median is kept"},
    {"seed", 0, "N", "0", "seed of every fit"},
    {"json", 0, "FILE", "bench-results.json", "where the JSON results go"},
    {"svg", 0, "FILE", "the JSON's name with .svg", "where the speedup plot goes"},
    {"quiet", 'q', NULL, NULL, "print only the table"},
};

typedef struct bench_args {
    const char *image, *json, *svg;
    size_t ks[MAX_KS];
    int nk;
    unsigned long long restarts, threads_max, repeat, seed;
    bool quiet;
} bench_args;

static bool on_bench_option(void *ctx, const kmq_cli_opt *opt, const char *v)
{
    bench_args *a = ctx;
    const char *name = opt->name;
    if (strcmp(name, "image") == 0 || strcmp(name, "json") == 0 || strcmp(name, "svg") == 0) {
        if (!v[0]) {
            fprintf(stderr, "kmq bench: --%s needs a file name\n", name);
            return false;
        }
        *(name[0] == 'i' ? &a->image : name[0] == 'j' ? &a->json : &a->svg) = v;
    } else if (strcmp(name, "k") == 0) {
        size_t *list = NULL, n = 0;
        kmq_err err = {0};
        if (kmq_job_parse_k_list(v, &list, &n, &err) != KMQ_OK || n > MAX_KS) {
            fprintf(stderr, "kmq bench: --k: %s\n", n > MAX_KS ? "at most 16 k values" : err.msg);
            free(list);
            return false;
        }
        memcpy(a->ks, list, n * sizeof *list);
        a->nk = (int)n;
        free(list);
    } else if (strcmp(name, "restarts") == 0) {
        if (!kmq_cli_parse_uint("--restarts", v, 10000, &a->restarts) || a->restarts < 1)
            return false;
    } else if (strcmp(name, "threads-max") == 0) {
        return kmq_cli_parse_uint("--threads-max", v, 1024, &a->threads_max);
    } else if (strcmp(name, "repeat") == 0) {
        if (!kmq_cli_parse_uint("--repeat", v, MAX_REPEAT, &a->repeat) || a->repeat < 1)
            return false;
    } else if (strcmp(name, "seed") == 0) {
        return kmq_cli_parse_uint("--seed", v, UINT64_MAX, &a->seed);
    } else if (strcmp(name, "quiet") == 0) {
        a->quiet = true;
    }
    return true;
}

int kmq_cmd_bench(int argc, char **argv)
{
    bench_args a = {.image = DEFAULT_IMAGE,
                    .json = "bench-results.json",
                    .ks = {16, 64, 256},
                    .nk = 3,
                    .restarts = 10,
                    .repeat = 3};
    const kmq_cli_command cmd = {
        .name = "bench",
        .synopsis = "bench [options]",
        .about = "Thread-scaling study of the fit: decodes one photo, prepares its colours once\n"
                 "(timed apart, as a run does per image), then fits each k at 1, 2, 4, ...\n"
                 "threads, in rounds; prints time per fit and per iteration, distance\n"
                 "evaluations per second, speedup and efficiency, and writes JSON and an SVG.",
        .opts = bench_opts,
        .nopts = sizeof bench_opts / sizeof bench_opts[0],
        .epilog = "exit codes: 0, or 1 when a thread count gave other results than 1 thread"};
    size_t npos = 0;
    int parsed = kmq_cli_parse(&cmd, argc, argv, on_bench_option, &a, NULL, 0, &npos);
    if (parsed != KMQ_CLI_OK)
        return parsed == KMQ_CLI_HELP ? KMQ_EXIT_OK : KMQ_EXIT_USAGE;
    const char *image = a.image, *json = a.json, *svg = a.svg;
    size_t *ks = a.ks;
    int nk = a.nk;
    unsigned long long restarts = a.restarts, threads_max = a.threads_max, repeat = a.repeat,
                       seed = a.seed;
    bool quiet = a.quiet;
    int tmax = kmq_cli_start(argv[0], (int)threads_max);
    if (tmax < 1)
        return KMQ_EXIT_USAGE;
    char svg_buf[4096];
    if (!svg) {
        size_t len = strlen(json);
        if (len > 5 && strcmp(json + len - 5, ".json") == 0)
            len -= 5;
        snprintf(svg_buf, sizeof svg_buf, "%.*s.svg", (int)len, json);
        svg = svg_buf;
    }
    /* 1, 2, 4, ... below tmax, then tmax. */
    int tcs[MAX_TC], ntc = 0;
    for (int t = 1; t < tmax && ntc < MAX_TC - 1; t *= 2)
        tcs[ntc++] = t;
    tcs[ntc++] = tmax;

    /* The default photo is found from the source tree, or beside a build
     * folder of it (build/kmq -> data/photos), wherever kmq is started. */
    char near_exe[4096];
    if (strcmp(image, DEFAULT_IMAGE) == 0 && access(image, R_OK) != 0) {
        ssize_t n = readlink("/proc/self/exe", near_exe, sizeof near_exe - 1);
        if (n > 0) {
            near_exe[n] = '\0';
            char *slash = strrchr(near_exe, '/');
            if (slash &&
                (size_t)(slash - near_exe) + sizeof("/../" DEFAULT_IMAGE) < sizeof near_exe) {
                strcpy(slash, "/../" DEFAULT_IMAGE);
                if (access(near_exe, R_OK) == 0)
                    image = near_exe;
            }
        }
    }

    kmq_hist *hist = NULL;
    uint64_t pixels = 0;
    uint32_t w = 0, h = 0;
    double t0 = kmq_par_now_s();
    if (!load_hist(image, &hist, &pixels, &w, &h)) {
        if (image == near_exe || strcmp(image, DEFAULT_IMAGE) == 0)
            fprintf(stderr, "kmq bench: run it from the source tree or give --image PATH\n");
        return KMQ_EXIT_FAILURES;
    }
    double hist_s = kmq_par_now_s() - t0;
    kmq_points pts = {kmq_hist_size(hist), kmq_hist_keys(hist), kmq_hist_weights(hist)};
    if (!quiet)
        printf("kmq bench: %s, %ux%u = %llu pixels, %zu distinct colours (histogram %.3f s)\n"
               "restarts %llu, seed %llu, median of %llu runs, threads 1..%d\n\n",
               image, w, h, (unsigned long long)pixels, pts.n, hist_s, restarts, seed, repeat,
               tmax);
    /* The colours are prepared once, as a run prepares an image's for all
     * its k; that time is reported apart, per thread count, and the fits
     * start from the prepared colours (the same whatever built them). */
    prep_times prep_t = {.n = ntc};
    kmq_kmeans_prepared *prep = NULL;
    for (int t = 0; t < ntc; t++) {
        double runs[MAX_REPEAT];
        for (unsigned long long q = 0; q < repeat; q++) {
            kmq_par par = {.threads = tcs[t]};
            kmq_kmeans_prepared *p = NULL;
            kmq_err err = {0};
            double s = kmq_par_now_s();
            if (kmq_kmeans_prepared_new(&pts, &par, &p, &err) != KMQ_OK) {
                kmq_cli_error(&err);
                kmq_kmeans_prepared_free(prep);
                kmq_hist_free(hist);
                return KMQ_EXIT_FAILURES;
            }
            runs[q] = kmq_par_now_s() - s;
            kmq_kmeans_prepared_free(prep);
            prep = p;
        }
        qsort(runs, repeat, sizeof runs[0], cmp_double);
        prep_t.threads[t] = tcs[t];
        prep_t.s[t] = median_sorted(runs, repeat);
    }
    if (!quiet) {
        printf("prepared the colours once (a run does so per image):");
        for (int t = 0; t < ntc; t++)
            printf(" %d thread%s %.3f s%s", tcs[t], tcs[t] > 1 ? "s" : "", prep_t.s[t],
                   t + 1 < ntc ? "," : "\n\n");
    }
    bench_k *res = calloc((size_t)nk, sizeof *res);
    if (!res) {
        kmq_kmeans_prepared_free(prep);
        kmq_hist_free(hist);
        fprintf(stderr, "kmq bench: out of memory\n");
        return KMQ_EXIT_FAILURES;
    }
    bool all_same = true, failed = false;
    double times[MAX_TC][MAX_REPEAT], shares[MAX_TC][MAX_REPEAT];
    double init_t[MAX_TC][MAX_REPEAT], lloyd_t[MAX_TC][MAX_REPEAT];
    if (!quiet)
        printf("%5s %7s %10s %12s %12s %8s %6s %6s %9s  %s\n", "k", "threads", "fit_s", "iter_ms",
               "Mevals/s", "speedup", "eff", "init%", "identical", "runs");
    for (int i = 0; i < nk && !failed; i++) {
        bench_k *b = &res[i];
        b->k = ks[i];
        kmq_fit ref = {0};
        kmq_kmeans_opts o = {.k = ks[i],
                             .restarts = (int)restarts,
                             .max_iter = 300,
                             .tol = 1e-4,
                             .init = KMQ_INIT_KMEANSPP,
                             .seed = seed};
        b->nrows = ntc;
        for (int t = 0; t < ntc; t++) {
            b->rows[t].threads = tcs[t];
            b->rows[t].identical = true;
        }
        for (unsigned long long q = 0; q < repeat && !failed; q++) {
            for (int t = 0; t < ntc; t++) {
                kmq_par par = {.threads = tcs[t]};
                kmq_fit fit = {0};
                kmq_err err = {0};
                double s = kmq_par_now_s();
                kmq_status st = kmq_kmeans_fit_prepared(prep, &o, &par, &fit, &err);
                times[t][q] = kmq_par_now_s() - s;
                if (st != KMQ_OK) {
                    kmq_cli_error(&err);
                    failed = true;
                    break;
                }
                b->rows[t].runs = runs_mode(&fit, tcs[t]);
                double runs_s = fit.init_s + fit.lloyd_s;
                shares[t][q] = runs_s > 0.0 ? fit.init_s / runs_s : 0.0;
                init_t[t][q] = fit.init_s;
                lloyd_t[t][q] = fit.lloyd_s;
                if (t == 0 && q == 0) {
                    ref = fit;
                    continue;
                }
                if (!same_fit(&ref, &fit))
                    b->rows[t].identical = false;
                kmq_fit_clear(&fit);
            }
        }
        for (int t = 0; t < ntc && !failed; t++) {
            bench_row *r = &b->rows[t];
            memcpy(r->runs_s, times[t], repeat * sizeof times[t][0]);
            qsort(times[t], repeat, sizeof times[t][0], cmp_double);
            r->fit_s = median_sorted(times[t], repeat);
            qsort(shares[t], repeat, sizeof shares[t][0], cmp_double);
            r->init_share = median_sorted(shares[t], repeat);
            qsort(init_t[t], repeat, sizeof init_t[t][0], cmp_double);
            r->init_s = median_sorted(init_t[t], repeat);
            qsort(lloyd_t[t], repeat, sizeof lloyd_t[t][0], cmp_double);
            r->lloyd_s = median_sorted(lloyd_t[t], repeat);
            r->min_s = times[t][0];
            r->max_s = times[t][repeat - 1];
            r->iter_s = ref.iterations_total ? r->fit_s / (double)ref.iterations_total : 0.0;
            r->evals_per_s = r->fit_s > 0 ? (double)ref.distance_evals / r->fit_s : 0.0;
            r->speedup = r->fit_s > 0 ? b->rows[0].fit_s / r->fit_s : 0.0;
            r->efficiency = r->speedup / r->threads;
            all_same = all_same && r->identical;
            if (!quiet)
                printf("%5zu %7d %10.4f %12.4f %12.1f %8.2f %6.2f %6.1f %9s  %s\n", b->k,
                       r->threads, r->fit_s, 1e3 * r->iter_s, r->evals_per_s / 1e6, r->speedup,
                       r->efficiency, 100.0 * r->init_share, r->identical ? "yes" : "NO", r->runs);
        }
        b->iterations_total = ref.iterations_total;
        b->evals = ref.distance_evals;
        b->init_evals = ref.init_evals;
        b->brute_init = ref.brute_init_evals;
        b->brute_lloyd = ref.brute_lloyd_evals;
        b->inertia = ref.inertia;
        b->mse = pixels ? ref.inertia / (double)pixels : 0.0;
        kmq_fit_clear(&ref);
    }
    int code = KMQ_EXIT_OK;
    if (!failed && !quiet)
        print_avoided(res, nk);
    if (failed) {
        code = KMQ_EXIT_FAILURES;
    } else {
        if (!write_json(json, image, w, h, pixels, pts.n, hist_s, &prep_t, (int)restarts,
                        (int)repeat, seed, tmax, res, nk, all_same) ||
            !write_svg(svg, image, res, nk, tmax))
            code = KMQ_EXIT_FAILURES;
        else if (!quiet)
            printf("\nwrote %s and %s\n", json, svg);
        if (!all_same) {
            fprintf(stderr, "kmq bench: results DIFFER between thread counts (see 'identical' "
                            "above): the determinism contract is broken\n");
            code = KMQ_EXIT_FAILURES;
        }
    }
    free(res);
    kmq_kmeans_prepared_free(prep);
    kmq_hist_free(hist);
    return code;
}
