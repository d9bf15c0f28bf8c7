/* image_internal.h — private to the image module (image_vips.c,
 * image_sniff.c): what a file's first bytes say, without libvips. */
#ifndef KMQ_IMAGE_INTERNAL_H
#define KMQ_IMAGE_INTERNAL_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads up to `size` bytes from the start of `path` (opened without
 * blocking, in case it is a FIFO). Returns the count read, 0 on failure. */
KMQ_PRIVATE size_t kmq__image_read_head(const char *path, unsigned char *buf, size_t size);

/* A person's name for a file's format from its first bytes ("BMP", "PDF",
 * "text (CSV, a matrix or other text)"), or NULL. For messages only. */
KMQ_PRIVATE const char *kmq__image_sniff_name(const char *path);

/* The documented format ("jpeg", "png", "tiff", "webp", "gif") whose
 * signature starts the file, or NULL. */
KMQ_PRIVATE const char *kmq__image_signature_format(const char *path);

/* What a JPEG's frame header says. */
typedef struct kmq__jpeg_frame {
    bool found;       /* a SOFn marker was found */
    bool progressive; /* its decoder keeps every coefficient in memory */
    bool arithmetic;  /* arithmetic coded: no length floor applies */
} kmq__jpeg_frame;

/* Walks the marker segments of a JPEG up to its first SOFn (at most 4096
 * segments, each skipped by its length). Leaves *out zeroed when it finds
 * none. */
KMQ_PRIVATE void kmq__jpeg_scan_frame(const char *path, kmq__jpeg_frame *out);

/* The fewest bytes a Huffman-coded JPEG of width x height can have (see
 * image_sniff.c). */
KMQ_PRIVATE uint64_t kmq__jpeg_min_bytes(uint64_t width, uint64_t height);

#endif
