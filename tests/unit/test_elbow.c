/* test_elbow.c — Kneedle on curves whose knee is worked out by hand below
 * (normalise, flip, difference d_i = (1 - yn_i) - xn_i, threshold
 * T = d_max - S / (n - 1) on an even grid; see the top of src/elbow.c). */
#include "kmq/alloc_hook.h"
#include "kmq/elbow.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void knee_of(const double *x, const double *y, size_t n, double s, bool *found,
                    size_t *index)
{
    kmq_err err;
    kmq_err_clear(&err);
    *index = 12345;
    ck_assert_int_eq(kmq_elbow_kneedle(x, y, n, s, found, index, &err), KMQ_OK);
}

START_TEST(inverse_curve)
{
    /* y = 1/x at x = 1..10. xn = (x-1)/9, yn = (1/x - 0.1)/0.9, d = 1 - yn - xn:
     *   x:  1    2      3      4      5      6      7      8      9     10
     *   d:  0  .4444  .5185  .5000  .4444  .3704  .2857  .1944  .0988   0
     * The only local maximum is x = 3 (d = .5185, 14/27 exactly). Its
     * threshold is 14/27 - 1/9 = .4074; d drops below it at x = 6 (.3704)
     * before any other maximum: the knee is x = 3, index 2 (kneed with
     * S = 1, convex, decreasing gives the same). */
    double x[10], y[10];
    for (int i = 0; i < 10; i++) {
        x[i] = i + 1;
        y[i] = 1.0 / (i + 1);
    }
    bool found;
    size_t index;
    knee_of(x, y, 10, 1.0, &found, &index);
    ck_assert(found);
    ck_assert_uint_eq(index, 2);
}
END_TEST

START_TEST(sharp_elbow_and_sensitivity)
{
    /* An inertia-like curve at k = 1..7: y = 100, 20, 15, 12, 10, 9, 8.
     * xn = (k-1)/6, yn = (y-8)/92, d = 0, .7029, .5906, .4565, .3116,
     * .1558, 0. Maximum at k = 2 (d = .7029); with S = 1 the threshold is
     * .7029 - 1/6 = .5362 and d(4) = .4565 falls below it: knee at index 1.
     * With S = 10 the threshold is .7029 - 10/6 < 0, which d never
     * undercuts: no knee. */
    double x[7] = {1, 2, 3, 4, 5, 6, 7}, y[7] = {100, 20, 15, 12, 10, 9, 8};
    bool found;
    size_t index;
    knee_of(x, y, 7, 1.0, &found, &index);
    ck_assert(found);
    ck_assert_uint_eq(index, 1);
    knee_of(x, y, 7, 10.0, &found, &index);
    ck_assert(!found);
    ck_assert_uint_eq(index, 12345); /* untouched when not found */
}
END_TEST

START_TEST(straight_line_has_no_knee)
{
    /* d = 0 everywhere (up to rounding) and T = -1/(n-1): never undercut. */
    double x[20], y[20];
    for (int i = 0; i < 20; i++) {
        x[i] = i + 1;
        y[i] = 100.0 - 7.0 * (i + 1);
    }
    bool found;
    size_t index;
    knee_of(x, y, 20, 1.0, &found, &index);
    ck_assert(!found);
    /* Uneven x along a line too. */
    double x2[5] = {1, 2, 4, 8, 16}, y2[5];
    for (int i = 0; i < 5; i++)
        y2[i] = 3.0 - 0.125 * x2[i];
    knee_of(x2, y2, 5, 1.0, &found, &index);
    ck_assert(!found);
}
END_TEST

START_TEST(too_few_or_flat)
{
    double x[3] = {1, 2, 3}, y[3] = {5, 1, 0.5}, flat[3] = {4, 4, 4};
    bool found = true;
    size_t index;
    for (size_t n = 0; n < 3; n++) {
        knee_of(x, y, n, 1.0, &found, &index);
        ck_assert(!found);
    }
    knee_of(x, flat, 3, 1.0, &found, &index);
    ck_assert(!found);
    /* Three points: d = 0, .3889, 0. With S = 1 the threshold .3889 - 1/2
     * is negative, so three points never give a knee at S = 1 (d_1 <= 1/2
     * for any decreasing curve); with S = 0.5 it is .1389 and d_2 = 0 is
     * below it. */
    knee_of(x, y, 3, 1.0, &found, &index);
    ck_assert(!found);
    knee_of(x, y, 3, 0.5, &found, &index);
    ck_assert(found);
    ck_assert_uint_eq(index, 1);
}
END_TEST

START_TEST(largest_difference_wins)
{
    /* 21 points, x = 1..21 (xn = i/20, T = d - 0.05). The curve is built from
     * the difference curve we want: f = 1 - yn = d + xn, y = 50 + 1000 (1 - f):
     *   i:  0  1   2   3   4   5   6   7   8   9  10  11  12 ... 20
     *   d:  0 .20 .30 .27 .24 .22 .28 .35 .40 .36 .33 .30 .26 ... 0
     * (d falls by .03-.04 per step after i = 12; y is strictly decreasing.)
     * Maximum at i = 2 (d = .30, T = .25): d(4) = .24 < .25, confirmed.
     * Maximum at i = 8 (d = .40, T = .35): d(10) = .33 < .35, confirmed.
     * kneed offline would return the first knee (i = 2); the contract picks
     * the larger difference: i = 8. */
    static const double f[21] = {0,   .25, .40, .42, .44, .47, .58, .70, .80, .81, .83,
                                 .85, .86, .87, .88, .90, .92, .94, .96, .98, 1.0};
    double x[21], y[21];
    for (int i = 0; i < 21; i++) {
        x[i] = i + 1;
        y[i] = 50.0 + 1000.0 * (1.0 - f[i]);
    }
    bool found;
    size_t index;
    knee_of(x, y, 21, 1.0, &found, &index);
    ck_assert(found);
    ck_assert_uint_eq(index, 8);
    /* The first six points alone, renormalised (y_min is now y_5):
     * d = 0, .33, .45, .29, .14, 0; maximum at i = 2, T = .45 - .2 = .25,
     * d(4) = .14 < .25: knee at index 2. */
    knee_of(x, y, 6, 1.0, &found, &index);
    ck_assert(found);
    ck_assert_uint_eq(index, 2);
}
END_TEST

START_TEST(bad_input)
{
    double x[4] = {1, 2, 2, 3}, y[4] = {4, 3, 2, 1};
    bool found;
    size_t index;
    kmq_err err;
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_elbow_kneedle(x, y, 4, 1.0, &found, &index, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "ascending"));
    double x2[3] = {1, 2, 3}, y2[3] = {4, NAN, 1};
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_elbow_kneedle(x2, y2, 3, 1.0, &found, &index, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "finite"));
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_elbow_kneedle(x2, x2, 3, -1.0, &found, &index, &err), KMQ_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "sensitivity"));
}
END_TEST

START_TEST(alloc_failure)
{
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {10, 3, 2, 1.5, 1};
    bool found;
    size_t index;
    kmq_err err;
    kmq_err_clear(&err);
    kmq_alloc_fail_after(0);
    kmq_status st = kmq_elbow_kneedle(x, y, 5, 1.0, &found, &index, &err);
    kmq_alloc_fail_after(-1);
    ck_assert_int_eq(st, KMQ_E_NOMEM);
    kmq_err_clear(&err);
    ck_assert_int_eq(kmq_elbow_kneedle(x, y, 5, 1.0, &found, &index, &err), KMQ_OK);
    ck_assert(found);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"inverse", inverse_curve},
        {"sharp", sharp_elbow_and_sensitivity},
        {"line", straight_line_has_no_knee},
        {"few_flat", too_few_or_flat},
        {"two_knees", largest_difference_wins},
        {"bad_input", bad_input},
        {"alloc", alloc_failure},
    };
    Suite *s = suite_create("elbow");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
