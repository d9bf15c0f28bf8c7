/* elbow.h — the elbow of an inertia curve by the Kneedle method (layer L1).
 *
 * Kneedle (Satopää, Albrecht, Irwin, Raghavan 2011), offline, for a
 * decreasing convex curve with sensitivity S: points are normalised to
 * [0, 1], the curve is flipped so that the knee becomes a maximum of the
 * difference curve d_i = yn_i - xn_i, local maxima of d are knee
 * candidates, and a candidate is confirmed when d falls below its threshold
 * T = d_max - S * mean(x_{i+1} - x_i) before the next local maximum. Where
 * several knees are confirmed, the one with the largest d wins. Pure
 * function; no allocation beyond a scratch array, no parallel region.
 */
#ifndef KMQ_ELBOW_H
#define KMQ_ELBOW_H

#include "kmq/error.h"

#include <stdbool.h>
#include <stddef.h>

/* Finds the knee of the n points (x[i], y[i]), x strictly ascending,
 * y decreasing (convex). Sets *found and, when found, *index (into x).
 * n < 3 or a flat curve gives *found = false. Returns KMQ_OK, KMQ_E_ARG
 * (x not ascending, non-finite values) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_elbow_kneedle(const double *x, const double *y, size_t n,
                                            double sensitivity, bool *found, size_t *index,
                                            kmq_err *err);

#endif
