/* elbow.c — the knee of a decreasing convex curve by Kneedle (layer L1).
 *
 * Includes elbow.h and internal.h only; pure function, no parallel region.
 *
 * Kneedle (Satopää, Albrecht, Irwin, Raghavan, "Finding a 'Kneedle' in a
 * Haystack", ICDCS workshops 2011), offline, with the conventions of the
 * `kneed` Python package for curve="convex", direction="decreasing":
 *
 *   1. Normalise: xn_i = (x_i - x_min) / (x_max - x_min),
 *                 yn_i = (y_i - y_min) / (y_max - y_min).
 *   2. Turn the elbow into a knee: for a decreasing convex curve kneed
 *      replaces yn by max(yn) - yn = 1 - yn. The flipped curve rises from
 *      (0, 0) to (1, 1) and is concave, so it lies on or above the diagonal.
 *   3. Difference curve: d_i = (1 - yn_i) - xn_i, the height of the flipped
 *      curve above the diagonal (d_0 = d_{n-1} = 0 for a monotone curve).
 *      The elbow is where d peaks; the index maps straight back to x
 *      (no reversal is needed for convex + decreasing).
 *   4. Candidates are the local maxima of d in the sense of scipy's
 *      argrelextrema(d, greater_equal) with its default mode "clip": i is a
 *      maximum if d_i >= d_{i-1} and d_i >= d_{i+1}, a missing neighbour at
 *      either end counting as equal.
 *   5. Each candidate i gets the threshold T_i = d_i - S * mean_j |xn_{j+1}
 *      - xn_j| (= d_i - S / (n - 1) for an exact grid). Walking right from i,
 *      the candidate is confirmed as a knee as soon as some d_j with j > i
 *      is < T_i, looking up to and including the next candidate (where
 *      kneed switches to that candidate's threshold).
 *   6. kneed offline returns the first knee confirmed; docs/design.md asks for
 *      the confirmed knee with the largest d (ties: the lowest index), which
 *      is the same on a single-knee curve and the more pronounced elbow
 *      otherwise. No confirmed knee: not found.
 *
 * One kneed detail is left out on purpose: after a local minimum of d,
 * kneed lowers the threshold to 0, which can only confirm a knee where d
 * falls below 0 — where the curve rises above its chord, which a convex
 * decreasing curve never does. Without it a straight line (d = 0 up to
 * rounding) cannot yield a knee from rounding noise.
 */
#include "kmq/elbow.h"

#include "internal.h"

#include <math.h>

kmq_status kmq_elbow_kneedle(const double *x, const double *y, size_t n, double sensitivity,
                             bool *found, size_t *index, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    double *d = NULL;
    if (!found || !index || (n > 0 && (!x || !y)))
        return kmq_err_set(err, KMQ_E_ARG, "kneedle needs points and result storage");
    if (!isfinite(sensitivity) || sensitivity < 0.0)
        return kmq_err_set(err, KMQ_E_ARG, "kneedle sensitivity %g is not finite and >= 0",
                           sensitivity);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return kmq_err_set(err, KMQ_E_ARG, "kneedle point %zu is not finite", i);
        if (i > 0 && !(x[i] > x[i - 1]))
            return kmq_err_set(err, KMQ_E_ARG, "kneedle x values are not ascending at point %zu",
                               i);
    }
    bool have = false;
    size_t knee = 0;
    if (n < 3)
        goto out;
    double y_min = y[0], y_max = y[0];
    for (size_t i = 1; i < n; i++) {
        y_min = y[i] < y_min ? y[i] : y_min;
        y_max = y[i] > y_max ? y[i] : y_max;
    }
    if (!(y_max > y_min))
        goto out; /* flat: no elbow */
    d = kmq__alloc_array(n, sizeof *d);
    if (!d) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory for %zu kneedle points", n);
        goto done;
    }
    const double x_range = x[n - 1] - x[0], y_range = y_max - y_min;
    double dx_sum = 0.0, xn_prev = 0.0;
    for (size_t i = 0; i < n; i++) {
        double xn = (x[i] - x[0]) / x_range;
        double yn = (y[i] - y_min) / y_range;
        d[i] = (1.0 - yn) - xn;
        if (i > 0)
            dx_sum += xn - xn_prev;
        xn_prev = xn;
    }
    const double offset = sensitivity * fabs(dx_sum / (double)(n - 1));
    bool armed = false;
    size_t cand = 0;
    double threshold = 0.0;
    for (size_t i = 0; i + 1 < n; i++) {
        bool is_max = (i == 0 || d[i] >= d[i - 1]) && d[i] >= d[i + 1];
        if (is_max) {
            armed = true;
            cand = i;
            threshold = d[i] - offset;
        }
        if (armed && d[i + 1] < threshold && (!have || d[cand] > d[knee])) {
            have = true;
            knee = cand;
        }
    }
out:
    *found = have;
    if (have)
        *index = knee;
done:
    kmq__free(d);
    return st;
}
