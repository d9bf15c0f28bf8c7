/* palette.h — a palette to map images to (layer L2): read from a file the
 * user gives (job key palette_file: kmq's kK.palette.json, a GIMP .gpl, or
 * the PLTE of an indexed PNG), and written as the files of a job's shared
 * palette (kK.palette.json, kK.gpl, kK.palette.png).
 *
 * Serial; no parallel region.
 */
#ifndef KMQ_PALETTE_H
#define KMQ_PALETTE_H

#include "kmq/error.h"
#include "kmq/kmeans.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest palette file read (a .gpl of 256 named entries is ~10 KiB; a
 * kK.palette.json with the provenance of many images is larger). */
#define KMQ_PALETTE_FILE_MAX ((size_t)64 << 20)

typedef struct kmq_palette {
    size_t n;                       /* entries, 1..KMQ_MAX_K */
    double centers[KMQ_MAX_K * 3];  /* mapped to: the fitted centres, or the given colours */
    uint8_t rgb[KMQ_MAX_K * 3];     /* what the PNG's PLTE holds: centres rounded */
    uint64_t weights[KMQ_MAX_K];    /* pixels of each entry in the data it was fitted on */
    char hash[17];                  /* a kmq palette's provenance hash ("" for other files) */
} kmq_palette;

/* Reads a palette file, telling the format by its first bytes: '{' kmq's
 * JSON ("palette": [{"rgb": [r, g, b], "centre": [..]}]: the centres
 * when present, else the colours), "GIMP Palette" a .gpl, the PNG signature
 * an indexed PNG (its PLTE, every entry). Errors: KMQ_E_CONFIG with
 * err->where "FILE:LINE" for a .gpl line, "FILE" otherwise; KMQ_E_NOT_FOUND,
 * KMQ_E_UNREADABLE, KMQ_E_NOMEM. Duplicate colours are kept (labels follow
 * the file's order; a tie goes to the lowest index). */
KMQ_MUST_CHECK kmq_status kmq_palette_load(const char *path, kmq_palette *out, kmq_err *err);

/* A 64-bit digest of the palette's entries (centres and count), for the
 * config hash: another palette means other labels. */
uint64_t kmq_palette_digest(const kmq_palette *p);

/* One image a shared palette was fitted on. */
typedef struct kmq_palette_source {
    const char *rel;  /* path relative to its input root */
    const char *hash; /* its config hash (without the palette) */
    bool used;        /* false: it failed to decode and is not in the union */
} kmq_palette_source;

/* What else kK.palette.json records of a shared fit. */
typedef struct kmq_palette_fit_info {
    size_t k;
    const char *job;
    uint64_t pixels, unique_colors;
    double inertia;
    int iterations, restarts;
    bool converged;
    const kmq_palette_source *sources;
    size_t nsources;
} kmq_palette_fit_info;

/* Writes DIR/kK.palette.json, DIR/kK.gpl and DIR/kK.palette.png (each
 * atomically). Returns KMQ_OK, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_palette_write(const char *dir, const kmq_palette *p,
                                            const kmq_palette_fit_info *info, kmq_err *err);

#endif
