/* kmeans_f32.h — the float32 nearest-two-centres kernel of Lloyd's brute
 * force (layer L1, private to kmeans.c). Nothing here is installed.
 *
 * It is its own translation unit because it alone is compiled with
 * -ffp-contract=fast (CMakeLists.txt): on x86-64-v3 machines a * b + c
 * becomes one FMA. Its float results only rank centres, within the error
 * bound in kmeans_f32.c, whichever way they are rounded; kmeans.c turns
 * them into exact labels (F32_MARGIN) and never uses them as distances
 * beyond that bound (F32_SLACK). */
#ifndef KMQ_KMEANS_F32_H
#define KMQ_KMEANS_F32_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Floats per centre in the kernel's table. */
#define KMQ__F32_STRIDE 4

/* The kernel's table of k centres (cen: k * 3 doubles) into cf[4 k]:
 * -2 r, -2 g, -2 b as float, and r^2 + g^2 + b^2 in double, then float. */
KMQ_PRIVATE void kmq__f32_centres(const double *cen, size_t k, float *cf);

/* For the m points (r, g, b) and the k centres of table cf: the smallest
 * and second-smallest float32 squared distance (d1, d2; d2 = +inf for
 * k = 1) and the index of the smallest (lab; ties: lowest index). Each
 * float distance is within 0.063 of the exact one when every centre lies
 * in [0, 255]^3 (kmeans_f32.c). */
KMQ_PRIVATE void kmq__f32_scan(const float *restrict r, const float *restrict g,
                               const float *restrict b, size_t m, const float *restrict cf,
                               size_t k, float *restrict d1, float *restrict d2,
                               uint32_t *restrict lab);

#endif
