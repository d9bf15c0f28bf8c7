/* kmeans_f32.c — nearest and second-nearest centre in float32 (layer L1).
 *
 * Includes its private header and L0 (internal); no I/O. Calls nothing:
 * the float32 and Hamerly assignments (kmeans_assign_f32.c,
 * kmeans_assign_bounds.c) call it. Threading: kernels only (no pragmas),
 * safe inside a region on disjoint outputs.
 *
 * The distance as an expansion. For a colour x (integer channels) and a
 * centre c, |x - c|^2 = |x|^2 + e, e = |c|^2 - 2 x.c. |x|^2 is the same for
 * every centre, so the scan ranks the e, each computed as
 * ((cc + x mr) + y mg) + z mb from the table (mr = -2 c_r as float, cc =
 * |c|^2 rounded once to float): three multiply-adds per centre instead of
 * three subtractions, three multiplications and two additions. |x|^2 (an
 * integer below 2^18, exact in float) is added once at the end.
 *
 * Error bound, for centres inside the RGB cube (0 <= c <= 255, which
 * kmeans.c checks), rounding to nearest, with or without FMA (contraction
 * only removes roundings): c_r is within 2^-17 of its float (c_r < 2^8), so
 * x mr is within 2 * 255 * 2^-17 = 0.0039 of -2 x c_r, 0.0117 for the three
 * channels; cc within 2^-7 = 0.0078 of |c|^2 (< 2^18); each product x mr
 * (|.| < 2^17) rounds by at most 2^-8, 0.0117 for three; the three partial
 * sums stay inside (-2^18, 2^18) (cc - 2 (x c_r + y c_g) >= -260100, and
 * the last is e >= -|x|^2 up to these errors), each rounding by at most
 * 2^-7, 0.0234; adding |x|^2 (result < 2^18) rounds by 2^-7 = 0.0078. In
 * all a float distance is within 0.0625 of the exact one. KMQ__F32_MARGIN
 * and KMQ__F32_SLACK (kmeans_f32.h) rely on 0.08.
 *
 * Ranking: strict <, centres in ascending order, so ties keep the lowest
 * index, as the double scan. The float values themselves vary with the
 * instruction set (FMA or not); the labels the callers derive from them
 * do not.
 */
#include "kmeans_f32.h"

#include "kmeans_points.h"

#include <math.h>
#include <string.h>

/* The kernel, written once for two vector widths (a macro, since GCC's
 * target clones cannot change a type): F32_KERNEL(suffix, lanes,
 * attributes of the loop) defines f32_lanes_<suffix>, 2 * lanes points
 * against all centres (inlined into each clone of the loop), and
 * f32_scan_<suffix>, the loop over the points.
 *
 * Each point's state (nearest, second, index) stays in registers for the
 * whole loop over centres (GCC's vector extension; plain arrays get
 * scalarised), and the centres' rows are read from L1. Two independent
 * groups of points per step hide the latency of the compare-and-select
 * chain. Clones of a width the CPU lacks split each operation in halves. */
#define F32_KERNEL(SUF, LANES, ATTR)                                                               \
    typedef float f32v_##SUF __attribute__((vector_size(4 * (LANES))));                            \
    typedef int32_t i32v_##SUF __attribute__((vector_size(4 * (LANES))));                          \
    static inline void f32_lanes_##SUF(const float *x, const float *y, const float *z,             \
                                       const float *cf, const uint32_t *idx, size_t k, float *d1,  \
                                       float *d2, uint32_t *lab)                                   \
    {                                                                                              \
        f32v_##SUF px0, py0, pz0, px1, py1, pz1;                                                   \
        memcpy(&px0, x, sizeof px0);                                                               \
        memcpy(&py0, y, sizeof py0);                                                               \
        memcpy(&pz0, z, sizeof pz0);                                                               \
        memcpy(&px1, x + (LANES), sizeof px1);                                                     \
        memcpy(&py1, y + (LANES), sizeof py1);                                                     \
        memcpy(&pz1, z + (LANES), sizeof pz1);                                                     \
        f32v_##SUF bd0 = px0 * 0.0f + INFINITY, sd0 = bd0, bd1 = bd0, sd1 = bd0;                   \
        i32v_##SUF bl0 = (i32v_##SUF){0}, bl1 = bl0;                                               \
        for (size_t j = 0; j < k; j++) {                                                           \
            const i32v_##SUF jv = bl0 * 0 + (int32_t)(idx ? idx[j] : j);                           \
            const float *t = cf + KMQ__F32_STRIDE * j;                                             \
            const float mr = t[0], mg = t[1], mb = t[2], cc = t[3];                                \
            f32v_##SUF e0 = cc + px0 * mr + py0 * mg + pz0 * mb;                                   \
            f32v_##SUF e1 = cc + px1 * mr + py1 * mg + pz1 * mb;                                   \
            i32v_##SUF c0 = e0 < bd0, c1 = e1 < bd1;                                               \
            i32v_##SUF s0 = SELECT_I32(e0 < sd0, (i32v_##SUF)e0, (i32v_##SUF)sd0);                 \
            i32v_##SUF s1 = SELECT_I32(e1 < sd1, (i32v_##SUF)e1, (i32v_##SUF)sd1);                 \
            sd0 = (f32v_##SUF)SELECT_I32(c0, (i32v_##SUF)bd0, s0);                                 \
            sd1 = (f32v_##SUF)SELECT_I32(c1, (i32v_##SUF)bd1, s1);                                 \
            bd0 = (f32v_##SUF)SELECT_I32(c0, (i32v_##SUF)e0, (i32v_##SUF)bd0);                     \
            bd1 = (f32v_##SUF)SELECT_I32(c1, (i32v_##SUF)e1, (i32v_##SUF)bd1);                     \
            bl0 = SELECT_I32(c0, jv, bl0);                                                         \
            bl1 = SELECT_I32(c1, jv, bl1);                                                         \
        }                                                                                          \
        f32v_##SUF xx0 = px0 * px0 + py0 * py0 + pz0 * pz0;                                        \
        f32v_##SUF xx1 = px1 * px1 + py1 * py1 + pz1 * pz1;                                        \
        bd0 += xx0;                                                                                \
        sd0 += xx0;                                                                                \
        bd1 += xx1;                                                                                \
        sd1 += xx1;                                                                                \
        memcpy(d1, &bd0, sizeof bd0);                                                              \
        memcpy(d1 + (LANES), &bd1, sizeof bd1);                                                    \
        memcpy(d2, &sd0, sizeof sd0);                                                              \
        memcpy(d2 + (LANES), &sd1, sizeof sd1);                                                    \
        memcpy(lab, &bl0, sizeof bl0);                                                             \
        memcpy(lab + (LANES), &bl1, sizeof bl1);                                                   \
    }                                                                                              \
                                                                                                   \
    ATTR static void f32_scan_##SUF(const float *restrict r, const float *restrict g,              \
                                    const float *restrict b, size_t m, const float *restrict cf,   \
                                    size_t k, const uint32_t *restrict idx, float *restrict d1,    \
                                    float *restrict d2, uint32_t *restrict lab)                    \
    {                                                                                              \
        size_t i = 0;                                                                              \
        for (; i + 2 * (LANES) <= m; i += 2 * (LANES))                                             \
            f32_lanes_##SUF(r + i, g + i, b + i, cf, idx, k, d1 + i, d2 + i, lab + i);             \
        if (i < m) {                                                                               \
            /* The tail padded with copies of its last point. */                                   \
            float x[2 * (LANES)], y[2 * (LANES)], z[2 * (LANES)];                                  \
            float o1[2 * (LANES)], o2[2 * (LANES)];                                                \
            uint32_t ol[2 * (LANES)];                                                              \
            for (size_t t = 0; t < 2 * (LANES); t++) {                                             \
                size_t src = i + t < m ? i + t : m - 1;                                            \
                x[t] = r[src];                                                                     \
                y[t] = g[src];                                                                     \
                z[t] = b[src];                                                                     \
            }                                                                                      \
            f32_lanes_##SUF(x, y, z, cf, idx, k, o1, o2, ol);                                      \
            for (size_t t = 0; i + t < m; t++) {                                                   \
                d1[i + t] = o1[t];                                                                 \
                d2[i + t] = o2[t];                                                                 \
                lab[i + t] = ol[t];                                                                \
            }                                                                                      \
        }                                                                                          \
    }

/* Lanes of a where mask is set (all ones), else of b (a macro: a
 * function returning a vector would warn about the AVX ABI). */
#define SELECT_I32(mask, a, b) (((a) & (mask)) | ((b) & ~(mask)))

/* 8 lanes (one AVX2 register): x86-64-v3 (AVX2 and FMA) and baseline
 * clones, chosen at load time. 16 lanes (one AVX-512 register) where the
 * CPU has x86-64-v4 (kmq__cpu_wide): on china.jpg at k = 256 an iteration
 * 12% shorter; the 8-lane code compiled for x86-64-v4 was no faster. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define F32_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef F32_CLONES
#define F32_CLONES
#endif

F32_KERNEL(8, 8, F32_CLONES)
#ifdef KMQ__WIDE_TARGET
F32_KERNEL(16, 16, KMQ__WIDE_TARGET)
#endif

void kmq__f32_centres(const double *cen, size_t k, float *cf)
{
    for (size_t j = 0; j < k; j++) {
        const double *c = cen + 3 * j;
        float *t = cf + KMQ__F32_STRIDE * j;
        for (int d = 0; d < 3; d++)
            t[d] = -2.0f * (float)c[d];
        t[3] = (float)(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
    }
}

void kmq__f32_scan(const float *restrict r, const float *restrict g, const float *restrict b,
                   size_t m, const float *restrict cf, size_t k, const uint32_t *restrict idx,
                   float *restrict d1, float *restrict d2, uint32_t *restrict lab)
{
#ifdef KMQ__WIDE_TARGET
    if (kmq__cpu_wide()) {
        f32_scan_16(r, g, b, m, cf, k, idx, d1, d2, lab);
        return;
    }
#endif
    f32_scan_8(r, g, b, m, cf, k, idx, d1, d2, lab);
}
