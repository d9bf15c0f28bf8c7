/* kmeans_f32.h — the float32 nearest-two-centres kernel of the float32
 * and the Hamerly assignments (layer L1, private to src/kmeans). Nothing
 * here is installed.
 *
 * It is its own translation unit because it alone is compiled with
 * -ffp-contract=fast (CMakeLists.txt): on x86-64-v3 machines a * b + c
 * becomes one FMA. Its float results only rank centres, within the error
 * bound in kmeans_f32.c, whichever way they are rounded; its callers turn
 * them into exact labels (KMQ__F32_MARGIN) and never use them as distances
 * beyond that bound (KMQ__F32_SLACK). */
#ifndef KMQ_KMEANS_F32_H
#define KMQ_KMEANS_F32_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Floats per centre in the kernel's table. */
#define KMQ__F32_STRIDE 4

/* Margin (squared colour units) by which the float32 nearest must beat the
 * float32 second-nearest to be the exact answer. A float distance is
 * within 0.08 of the exact one (kmeans_f32.c proves 0.063, with or without
 * FMA), and the double distance (as kmq__dist2 computes it) within 1e-10,
 * so a float gap above 0.25 > 2 * 0.08 means the double distances order
 * the same way, strictly, and the plain double scan picks the same centre.
 * Smaller gaps are rescanned in double by the caller. */
#define KMQ__F32_MARGIN 0.25f

/* Below every exact squared distance to a centre other than the float32
 * winner, when the winner is sure: the float second less this (> 0.08,
 * the error bound above). */
#define KMQ__F32_SLACK 0.125

/* The kernel's table of k centres (cen: k * 3 doubles) into cf[4 k]:
 * -2 r, -2 g, -2 b as float, and r^2 + g^2 + b^2 in double, then float. */
KMQ_PRIVATE void kmq__f32_centres(const double *cen, size_t k, float *cf);

/* For the m points (r, g, b) and the k centres of table cf: the smallest
 * and second-smallest float32 squared distance (d1, d2; d2 = +inf for
 * k = 1) and the index of the smallest (lab; ties: the first row), as its
 * row number or, given idx, idx[row] (a filtered table's rows name their
 * centres). Each
 * float distance is within 0.063 of the exact one when every centre lies
 * in [0, 255]^3 (kmeans_f32.c). */
KMQ_PRIVATE void kmq__f32_scan(const float *restrict r, const float *restrict g,
                               const float *restrict b, size_t m, const float *restrict cf,
                               size_t k, const uint32_t *restrict idx, float *restrict d1,
                               float *restrict d2, uint32_t *restrict lab);

#endif
