/* dither.h — Floyd-Steinberg error diffusion of RGB rows onto a fixed
 * palette, one row at a time as an image streams (layer L1).
 *
 * The result is a function of the rows and the palette alone: rows must
 * come in image order (top first), and the only state carried from one row
 * to the next is one row of diffused error. So it does not matter how the
 * image is cut into strips, nor which thread handles a row, as long as one
 * kmq_dither sees its rows in order. Arithmetic is in integers (error in
 * 1/128 of a level), so every machine gives the same bytes.
 *
 * Scan: serpentine (even rows left to right, odd rows right to left, the
 * row number counted from the first row given). Error that would leave the
 * image is dropped. Each pixel takes the palette entry nearest (squared
 * RGB distance, lowest index on ties) to its colour plus the error it
 * received, clamped to 0..255; `strength` (0..1) scales the error passed on.
 * Errors whose squared length (levels^2, three channels) exceeds `limit`
 * are damped (dither.c says how); limit 0 never damps.
 */
#ifndef KMQ_DITHER_H
#define KMQ_DITHER_H

#include "kmq/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kmq_dither kmq_dither;

/* A diffuser for rows of `width` pixels onto `n` (1..256) RGB entries of
 * `palette` (3 * n bytes, copied), damping errors above `limit` (>= 0). Memory: 6 bytes per pixel
 * of a row plus the palette. Returns KMQ_OK, KMQ_E_ARG or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_dither_new(const uint8_t *palette, size_t n, size_t width,
                                         double strength, double limit, kmq_dither **out,
                                         kmq_err *err);

void kmq_dither_free(kmq_dither *d);

/* Dithers the next row of `width` RGB pixels into palette indices `out`.
 * Kernel: no parallel region; one kmq_dither is used by one thread at a
 * time (different ones may run concurrently). */
void kmq_dither_row(kmq_dither *d, const uint8_t *rgb, uint8_t *out);

#endif
