/* oklab.h — the fixed sRGB <-> OKLab conversion of space = oklab, and the
 * grid of OKLab points the k-means engine fits on (layer L1).
 *
 * OKLab (Ottosson 2020) is a perceptual colour space in which Euclidean
 * distance follows perceived difference far better than in sRGB. The
 * conversion is the published one: the sRGB transfer function decoded
 * exactly, then the two 3x3 matrices with a cube root between (oklab.c
 * has the constants), in double precision.
 *
 * The engine fits weighted points keyed by three 8-bit channels, with exact
 * integer sums; OKLab points are put on a grid it can take: L, a and b
 * times 255, rounded, with a and b offset by 128 (every sRGB colour lands
 * inside: a in about -0.234..0.276, b in -0.312..0.199). One grid step is
 * 1/255 in OKLab, a tenth of a just-noticeable difference (about 0.02).
 * Distances on the grid are OKLab distances times 255. Pure computation;
 * no parallel region.
 */
#ifndef KMQ_OKLAB_H
#define KMQ_OKLAB_H

#include <stdint.h>

/* 0xRRGGBB -> OKLab (L in 0..1, a and b about -0.4..0.4). */
void kmq_oklab_from_rgb_key(uint32_t key, double lab[3]);

/* OKLab -> 8-bit sRGB: linear values clamped to 0..1 (out-of-gamut
 * colours), encoded, rounded to nearest. */
void kmq_oklab_to_srgb8(const double lab[3], uint8_t rgb[3]);

/* The grid key (0xLLAABB as above) of an OKLab colour. */
uint32_t kmq_oklab_grid_key(const double lab[3]);

/* A point in grid units (as the engine's centres: 0..255 per channel) back
 * to OKLab. */
void kmq_oklab_from_grid(const double grid[3], double lab[3]);

#endif
