/* formats.h — the names of the image formats kmq may read, and which of
 * them it reads by default (layer L0; plain data, no libvips).
 *
 * A format name is libvips' loader nickname without "load" ("jpegload" ->
 * "jpeg"), so the name a summary reports is the name a job file writes in
 * `formats = ...`. The default set is the formats kmq documents (JPEG, PNG,
 * TIFF, WebP, GIF, libvips .v): decoders that stream or that bound their
 * memory by the header, and that libvips does not mark untrusted (except
 * .v, libvips' own raw format). Every other loader (SVG, PDF, HEIF,
 * ImageMagick, ...) runs only when a job names it.
 */
#ifndef KMQ_FORMATS_H
#define KMQ_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* A set of formats: bit i is row i of the table in formats.c. */
typedef uint32_t kmq_formats;

/* The documented formats: jpeg, png, tiff, webp, gif, vips. */
kmq_formats kmq_formats_default(void);

/* Every format in the table. */
kmq_formats kmq_formats_all(void);

/* The bit of format `name` (exact, lower case), or 0 when kmq knows no
 * such format. */
kmq_formats kmq_format_bit(const char *name);

/* Name of table row i, or NULL past the end (static storage). */
const char *kmq_format_name(size_t i);

/* Writes the names in `set`, comma-separated in table order, into buf
 * (always NUL-terminated when size > 0); returns the length the whole text
 * needs, as snprintf does. */
size_t kmq_formats_format(kmq_formats set, char *buf, size_t size);

#endif
