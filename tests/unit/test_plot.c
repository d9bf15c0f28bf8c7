/* test_plot.c — the SVG charts: well-formed XML (parsed by Python's
 * ElementTree, an independent parser), axis labels with units, tick labels,
 * the elbow marker, escaping of hostile titles, numbers independent of
 * LC_NUMERIC, argument errors and allocation failures. */
#include "kmq/alloc_hook.h"
#include "kmq/plot.h"
#include "testutil.h"

#include <check.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *path_in(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int next = 0;
    char *out = buf[next++ % 4];
    int n = snprintf(out, 4096, "%s/%s", dir, name);
    ck_assert(n > 0 && n < 4096);
    return out;
}

/* The file parses as XML with an <svg> root in the SVG namespace. */
static void assert_well_formed(const char *path)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; "
             "r = E.parse(sys.argv[1]).getroot(); "
             "sys.exit(0 if r.tag == \"{http://www.w3.org/2000/svg}svg\" else 3)' '%s'",
             path);
    int rc = system(cmd);
    ck_assert_msg(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
                  "%s is not a well-formed SVG document (rc %d)", path, rc);
}

static char *slurp(const char *path)
{
    size_t len = 0;
    unsigned char *data = tu_read_file(path, &len);
    ck_assert_ptr_nonnull(data);
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, data, len);
    s[len] = '\0';
    free(data);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A typical k-sweep: inertia falling steeply then slowly. */
static const size_t sweep_k[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const double sweep_inertia[] = {9.0e8,  5.2e8,  2.1e8, 1.8e8,  1.6e8, 1.45e8,
                                       1.35e8, 1.27e8, 1.2e8, 1.15e8, 1.1e8};
static const double sweep_psnr[] = {17.0, 19.5, 22.1, 23.0, 23.8, 24.5,
                                    25.1, 25.6, 26.0, 26.4, 26.8};
#define NSWEEP (sizeof sweep_k / sizeof sweep_k[0])

START_TEST(elbow_chart_has_axes_ticks_and_marker)
{
    const char *dir = tu_fresh_dir("plot_elbow");
    const char *path = path_in(dir, "elbow.svg");
    kmq_err err = {0};
    ck_assert_int_eq(
        kmq_plot_elbow(path, "china.jpg", sweep_k, sweep_inertia, sweep_psnr, NSWEEP, 2, &err),
        KMQ_OK);
    assert_well_formed(path);
    char *svg = slurp(path);
    /* axis labels with units */
    ck_assert_ptr_nonnull(strstr(svg, "class=\"axis-label\""));
    ck_assert_ptr_nonnull(strstr(svg, "inertia (sum of squared RGB distances"));
    ck_assert_ptr_nonnull(strstr(svg, "\u00d710\u2078)")); /* ×10⁸: 9e8 is scaled */
    ck_assert_ptr_nonnull(strstr(svg, "PSNR of the written image (dB)"));
    ck_assert_ptr_nonnull(strstr(svg, "k (number of colours)"));
    /* tick labels: every k of a short sweep, nice PSNR steps */
    ck_assert_int_ge(count(svg, "class=\"tick-label\""), (int)NSWEEP + 6);
    ck_assert_ptr_nonnull(strstr(svg, "text-anchor=\"middle\">12</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">20</text>"));
    /* the elbow, marked in both panels */
    ck_assert_ptr_nonnull(strstr(svg, "class=\"elbow-marker\""));
    ck_assert_ptr_nonnull(strstr(svg, "elbow: k = 4"));
    ck_assert_int_eq(count(svg, "r=\"8\" fill=\"none\""), 2);
    ck_assert_ptr_nonnull(strstr(svg, "<title>china.jpg</title>"));
    free(svg);

    /* without an elbow there is no marker */
    ck_assert_int_eq(
        kmq_plot_elbow(path, "x", sweep_k, sweep_inertia, sweep_psnr, NSWEEP, KMQ_PLOT_NONE, &err),
        KMQ_OK);
    assert_well_formed(path);
    svg = slurp(path);
    ck_assert_ptr_null(strstr(svg, "elbow-marker"));
    free(svg);
}
END_TEST

START_TEST(elbow_chart_lossless_and_single_point)
{
    const char *dir = tu_fresh_dir("plot_elbow_edge");
    const char *path = path_in(dir, "elbow.svg");
    kmq_err err = {0};
    const size_t k[] = {64};
    const double inertia[] = {0.0}, psnr[] = {NAN};
    ck_assert_int_eq(kmq_plot_elbow(path, NULL, k, inertia, psnr, 1, KMQ_PLOT_NONE, &err), KMQ_OK);
    assert_well_formed(path);
    char *svg = slurp(path);
    ck_assert_ptr_nonnull(strstr(svg, "lossless at every k"));
    ck_assert_ptr_null(strstr(svg, "nan"));
    ck_assert_ptr_null(strstr(svg, "\"inf"));
    ck_assert_ptr_null(strstr(svg, "n/a"));
    free(svg);
}
END_TEST

START_TEST(elbow_chart_rejects_bad_arguments)
{
    const char *dir = tu_fresh_dir("plot_args");
    const char *path = path_in(dir, "e.svg");
    kmq_err err = {0};
    const size_t k[] = {4, 3, 8};
    const double v[] = {3, 2, 1};
    ck_assert_int_eq(kmq_plot_elbow(path, "t", k, v, v, 3, KMQ_PLOT_NONE, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "not ascending"));
    kmq_err err2 = {0};
    ck_assert_int_eq(
        kmq_plot_elbow(path, "t", sweep_k, sweep_inertia, sweep_psnr, NSWEEP, NSWEEP, &err2),
        KMQ_E_ARG);
    kmq_err err3 = {0};
    ck_assert_int_eq(
        kmq_plot_elbow(path, "t", sweep_k, sweep_inertia, sweep_psnr, 0, KMQ_PLOT_NONE, &err3),
        KMQ_E_ARG);
    kmq_err err4 = {0};
    const uint8_t rgb[3] = {1, 2, 3}, lab[1] = {1};
    ck_assert_int_eq(kmq_plot_rgb_projections(path, "t", rgb, lab, 1, rgb, 1, &err4), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err4.msg, "label 1"));
    kmq_err err5 = {0};
    ck_assert_int_eq(kmq_plot_elbow("/nonexistent-dir/e.svg", "t", sweep_k, sweep_inertia,
                                    sweep_psnr, NSWEEP, 1, &err5),
                     KMQ_E_WRITE);
    ck_assert_ptr_nonnull(strstr(err5.msg, "nonexistent-dir"));
}
END_TEST

START_TEST(restart_chart_marks_best_and_worst)
{
    const char *dir = tu_fresh_dir("plot_restarts");
    const char *path = path_in(dir, "restarts.svg");
    const double r4[] = {2.3e8, 2.1e8, 2.6e8}, r8[] = {1.0e8, 1.0e8, 1.0e8};
    const double r16[] = {0.0}; /* lossless: a single restart at 0 */
    kmq_plot_strip strips[] = {{4, r4, 3, 1}, {8, r8, 3, 0}, {16, r16, 1, 0}};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_plot_restarts(path, "restarts <b>", strips, 3, &err), KMQ_OK);
    assert_well_formed(path);
    char *svg = slurp(path);
    ck_assert_int_eq(count(svg, "class=\"best\""), 3);
    ck_assert_int_eq(count(svg, "class=\"worst\""), 1); /* equal restarts: no separate worst */
    ck_assert_ptr_nonnull(strstr(svg, "inertia above the best restart of the same k (%)"));
    ck_assert_ptr_nonnull(strstr(svg, "best inertia"));
    ck_assert_ptr_nonnull(strstr(svg, "k = 4, restart 2: inertia 260000000 (+23.810 %, worst)"));
    ck_assert_ptr_nonnull(strstr(svg, "2.100\u00d710\u2078"));
    ck_assert_ptr_nonnull(strstr(svg, "restarts &lt;b&gt;"));
    free(svg);
}
END_TEST

START_TEST(colour_space_and_palette_charts)
{
    const char *dir = tu_fresh_dir("plot_colours");
    const char *cpath = path_in(dir, "colors.svg");
    const char *ppath = path_in(dir, "palette.svg");
    uint8_t rgb[300 * 3], labels[300];
    for (size_t i = 0; i < 300; i++) {
        labels[i] = (uint8_t)(i % 3);
        for (int c = 0; c < 3; c++)
            rgb[3 * i + (size_t)c] = (uint8_t)((i * 37 + (size_t)c * 91) % 256);
    }
    const uint8_t palette[] = {250, 250, 250, 20, 30, 200, 200, 20, 20};
    const uint64_t pixels[] = {100, 700, 200};
    kmq_err err = {0};
    ck_assert_int_eq(kmq_plot_rgb_projections(cpath, "k = 3", rgb, labels, 300, palette, 3, &err),
                     KMQ_OK);
    assert_well_formed(cpath);
    char *svg = slurp(cpath);
    ck_assert_ptr_nonnull(strstr(svg, "R (0\u2013255)"));
    ck_assert_ptr_nonnull(strstr(svg, "G (0\u2013255)"));
    ck_assert_ptr_nonnull(strstr(svg, "B (0\u2013255)"));
    ck_assert_int_eq(count(svg, "class=\"centre\""), 9); /* 3 colours x 3 panels */
    ck_assert_int_eq(count(svg, "fill=\"#1e1ec8\" stroke=\"#000\" stroke-opacity"), 0);
    ck_assert_int_eq(count(svg, "fill=\"#141ec8\" stroke=\"#000\" stroke-opacity"), 3);
    ck_assert_ptr_nonnull(strstr(svg, ">250</text>"));
    free(svg);

    ck_assert_int_eq(kmq_plot_palette(ppath, "palette", palette, pixels, 3, &err), KMQ_OK);
    assert_well_formed(ppath);
    svg = slurp(ppath);
    ck_assert_ptr_nonnull(strstr(svg, "pixel share (%)"));
    ck_assert_ptr_nonnull(strstr(svg, ">100</text>"));
    ck_assert_ptr_nonnull(strstr(svg, "#141ec8: 700 pixels, 70.00 %"));
    /* widest first */
    const char *a = strstr(svg, "#141ec8:"), *b = strstr(svg, "#c81414:"),
               *c = strstr(svg, "#fafafa:");
    ck_assert(a && b && c && a < b && b < c);
    free(svg);
}
END_TEST

START_TEST(hostile_titles_are_escaped)
{
    const char *dir = tu_fresh_dir("plot_escape");
    /* markup, quotes, a control character and invalid UTF-8 */
    const char *title = "<script>&x=\"1\"' \x01 \xff\xfe é";
    const char *epath = path_in(dir, "e.svg");
    const char *rpath = path_in(dir, "r.svg");
    const char *ppath = path_in(dir, "p.svg");
    const char *cpath = path_in(dir, "c.svg");
    kmq_err err = {0};
    const double r[] = {1.0, 2.0};
    kmq_plot_strip strip = {3, r, 2, 0};
    const uint8_t rgb[3] = {9, 9, 9}, lab[1] = {0};
    const uint64_t px[1] = {5};
    ck_assert_int_eq(
        kmq_plot_elbow(epath, title, sweep_k, sweep_inertia, sweep_psnr, NSWEEP, 3, &err), KMQ_OK);
    ck_assert_int_eq(kmq_plot_restarts(rpath, title, &strip, 1, &err), KMQ_OK);
    ck_assert_int_eq(kmq_plot_palette(ppath, title, rgb, px, 1, &err), KMQ_OK);
    ck_assert_int_eq(kmq_plot_rgb_projections(cpath, title, rgb, lab, 1, rgb, 1, &err), KMQ_OK);
    const char *paths[] = {epath, rpath, ppath, cpath};
    for (int i = 0; i < 4; i++) {
        assert_well_formed(paths[i]);
        char *svg = slurp(paths[i]);
        ck_assert_ptr_null(strstr(svg, "<script"));
        ck_assert_ptr_nonnull(
            strstr(svg, "&lt;script&gt;&amp;x=&quot;1&quot;&#39; \xEF\xBF\xBD \xEF\xBF\xBD"
                        "\xEF\xBF\xBD \xC3\xA9"));
        free(svg);
    }
    char *e = kmq_plot_escape("a&b<c>d\"e'f");
    ck_assert_str_eq(e, "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    free(e);
    e = kmq_plot_escape(NULL);
    ck_assert_str_eq(e, "");
    free(e);
    e = kmq_plot_escape("\xC0\xAF \xED\xA0\x80 ok\t\n"); /* overlong, surrogate */
    ck_assert_str_eq(e, "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD ok\t\n");
    free(e);
}
END_TEST

START_TEST(numbers_ignore_the_locale)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8",
                                        "fr_FR.utf8",  "nl_NL.UTF-8", "ru_RU.UTF-8"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++)
        if (setlocale(LC_ALL, names[i]) && strcmp(localeconv()->decimal_point, ",") == 0)
            got = names[i];
    if (!got) {
        fprintf(stderr, "test_plot: no locale with a decimal comma installed; "
                        "locale-independence test skipped\n");
        return;
    }
    char buf[40];
    ck_assert_str_eq(kmq_plot_format_number(1.5, 1, buf), "1.5");
    ck_assert_str_eq(kmq_plot_format_number(-0.25, 2, buf), "-0.25");
    ck_assert_str_eq(kmq_plot_format_number(-0.0001, 2, buf), "0.00");
    ck_assert_str_eq(kmq_plot_format_number(1234567.0, 0, buf), "1234567");
    ck_assert_str_eq(kmq_plot_format_number(2.5e17, 3, buf), "2.50e+17");
    ck_assert_str_eq(kmq_plot_format_number(NAN, 3, buf), "n/a");
    const char *dir = tu_fresh_dir("plot_locale");
    const char *path = path_in(dir, "elbow.svg");
    kmq_err err = {0};
    const size_t k[] = {2, 3, 4};
    const double inertia[] = {0.35, 0.15, 0.1}, psnr[] = {20.5, 22.75, 23.5};
    ck_assert_int_eq(kmq_plot_elbow(path, "t", k, inertia, psnr, 3, 1, &err), KMQ_OK);
    assert_well_formed(path);
    char *svg = slurp(path);
    /* No number in the file has a decimal comma: digit ',' digit appears
     * only inside polyline point lists ("x,y"), which are formatted with
     * '.' inside each coordinate. */
    ck_assert_ptr_nonnull(strstr(svg, "PSNR 22.75 dB</title>"));
    ck_assert_ptr_nonnull(strstr(svg, ">0.3</text>"));
    for (const char *p = strstr(svg, "<text"); p; p = strstr(p + 1, "<text")) {
        const char *end = strstr(p, "</text>");
        ck_assert_ptr_nonnull(end);
        for (const char *q = p; q + 2 < end; q++)
            ck_assert_msg(
                !(q[0] >= '0' && q[0] <= '9' && q[1] == ',' && q[2] >= '0' && q[2] <= '9'),
                "decimal comma in a text element under %s", got);
    }
    free(svg);
    setlocale(LC_ALL, "C");
}
END_TEST

/* Draws chart `which` (0..3) at path. */
static kmq_status draw(int which, const char *path, kmq_err *err)
{
    static const double r[] = {3.0, 2.0, 2.5};
    static const uint8_t rgb[] = {10, 20, 30, 200, 100, 50}, lab[] = {0, 1};
    static const uint64_t px[] = {5, 9};
    kmq_plot_strip strip = {4, r, 3, 1};
    switch (which) {
    case 0:
        return kmq_plot_elbow(path, "t <&>", sweep_k, sweep_inertia, sweep_psnr, NSWEEP, 2, err);
    case 1:
        return kmq_plot_restarts(path, "t <&>", &strip, 1, err);
    case 2:
        return kmq_plot_rgb_projections(path, "t <&>", rgb, lab, 2, rgb, 2, err);
    default:
        return kmq_plot_palette(path, "t <&>", rgb, px, 2, err);
    }
}

START_TEST(allocation_failures_are_clean)
{
    const char *dir = tu_fresh_dir("plot_alloc");
    const char *path = path_in(dir, "chart.svg");
    for (int which = 0; which < 4; which++) {
        for (long n = 0;; n++) {
            kmq_err err = {0};
            kmq_alloc_fail_after(n);
            kmq_status st = draw(which, path, &err);
            kmq_alloc_fail_after(-1);
            if (st == KMQ_OK)
                break;
            ck_assert_int_eq(st, KMQ_E_NOMEM);
            ck_assert_int_lt(n, 10000);
        }
        assert_well_formed(path);
    }
}
END_TEST

static Suite *plot_suite(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("elbow");
    tcase_add_test(tc, elbow_chart_has_axes_ticks_and_marker);
    tcase_add_test(tc, elbow_chart_lossless_and_single_point);
    tcase_add_test(tc, elbow_chart_rejects_bad_arguments);
    suite_add_tcase(s, tc);
    tc = tcase_create("restarts");
    tcase_add_test(tc, restart_chart_marks_best_and_worst);
    suite_add_tcase(s, tc);
    tc = tcase_create("colours");
    tcase_add_test(tc, colour_space_and_palette_charts);
    suite_add_tcase(s, tc);
    tc = tcase_create("escaping");
    tcase_add_test(tc, hostile_titles_are_escaped);
    suite_add_tcase(s, tc);
    tc = tcase_create("locale");
    tcase_add_test(tc, numbers_ignore_the_locale);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_test(tc, allocation_failures_are_clean);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(plot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
