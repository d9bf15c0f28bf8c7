/* kmeans_points.h — the prepared points every k-means kernel reads (layer
 * L1, private to src/kmeans). Nothing here is installed.
 *
 * kmq_kmeans_prepared (opaque in kmq/kmeans.h) is defined here so that the
 * kernels of the other kmeans_*.c files can read its arrays. It is built
 * once (kmeans_points.c) and read-only afterwards: any number of fits,
 * restarts and threads may read one at the same time.
 */
#ifndef KMQ_KMEANS_POINTS_H
#define KMQ_KMEANS_POINTS_H

#include "internal.h"
#include "kmq/kmeans.h"
#include "kmq/par.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* k-means++ prunes by blocks of this many consecutive points (Morton order
 * makes them small boxes of colour space); a divisor of KMQ_CHUNK. */
#define KMQ__BLOCK            ((size_t)256)
#define KMQ__BLOCKS_PER_CHUNK (KMQ_CHUNK / KMQ__BLOCK)
/* Sub-blocks per block (KMQ__BLOCK / KMQ__SUBS points each): k-means++
 * prunes within a block at this grain, 8 sub-blocks a vector. */
#define KMQ__SUBS ((size_t)8)
#define KMQ__SUB  (KMQ__BLOCK / KMQ__SUBS)

/* The brute-force kernels are also compiled for AVX2 and picked at load
 * time (GCC function multi-versioning; the default build still runs on any
 * x86-64). The clones compute the same IEEE operations in the same order:
 * AVX2 brings no FMA, and C11 mode keeps GCC from contracting a * b + c
 * (-ffp-contract=off), so the ISA never changes a result bit. (The
 * float32 ranking kernel, kmeans_f32.c, has its own clones with FMA; its
 * floats may differ by ISA, the labels drawn from them may not.) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define KMQ__VEC_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef KMQ__VEC_CLONES
#define KMQ__VEC_CLONES
#endif

/* The float kernels of Lloyd and k-means++ also come in a 16-lane (one
 * AVX-512 register) variant for x86-64-v4 CPUs, chosen at each call
 * (kmq__cpu_wide): half the instructions per point. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define KMQ__WIDE_TARGET __attribute__((target("arch=x86-64-v4")))
static inline bool kmq__cpu_wide(void)
{
    return __builtin_cpu_supports("x86-64-v4");
}
#endif

/* Points as the kernels read them: coordinates in structure-of-arrays form
 * (float holds 0..255 exactly, at half the memory of double), weights and
 * keys borrowed from the caller's kmq_points. */
struct kmq_kmeans_prepared {
    size_t n;
    size_t chunks; /* kmq_par_chunks(n) */
    float *r;      /* owned, n each */
    float *g;
    float *b;
    const uint64_t *w;    /* borrowed */
    double *wd;           /* owned, n: w as double (exact below 2^53) */
    const uint32_t *keys; /* borrowed */
    uint64_t *chunk_w;    /* owned, chunks: total weight of each chunk */
    size_t blocks;        /* ceil(n / KMQ__BLOCK) */
    float *box;           /* owned, 6 per block: min r, g, b, max r, g, b of its points */
    float *sub_box;       /* owned, 6 * KMQ__SUBS per block: its sub-blocks' boxes, min r of
                             each, then min g, ..., max b (past n: far outside the cube) */
    uint64_t total_w;     /* sum of the weights, <= UINT64_MAX / 255^2 */
    double mean_var;      /* mean over the 3 channels of the weighted variance */
    /* The Lloyd order (kmeans_tree.c): the same points laid out in the leaf
     * order of a k-d tree, a view that Lloyd's iterations run over (its
     * r, g, b, w, keys and box in that order; no wd, sub_box or chunk_w),
     * and the two permutations. NULL in a view, for a single block (the
     * orders are then the same), above KMQ__TREE_MAX colours, and where
     * no Lloyd will run (kmq__prepared_new). */
    kmq_kmeans_prepared *tree;
    uint32_t *tree_from; /* owned, n: index here of the view's point i */
    uint32_t *tree_at;   /* owned, n: the view's position of point i */
    uint32_t *own_keys;  /* a view's keys and weights (owned) */
    uint64_t *own_w;
};

/* The Lloyd order is built for at most this many colours (32 bytes a
 * colour: 128 MiB here). Beyond, the points are so many that Morton runs
 * of 256 are small boxes already (at 2^24, every colour, they are exact
 * 8 x 8 x 4 cubes), and the memory would double the fit's. */
#define KMQ__TREE_MAX ((size_t)1 << 22)

/* The layout Lloyd's iterations run over: the tree view, or p itself. */
static inline const kmq_kmeans_prepared *kmq__lloyd_view(const kmq_kmeans_prepared *p)
{
    return p->tree ? p->tree : p;
}

/* kmq_kmeans_prepared_new, with the Lloyd order only if lloyd_order (a
 * labelling or a seeding alone never scans it). */
KMQ_PRIVATE kmq_status kmq__prepared_new(const kmq_points *pts, const kmq_par *par,
                                         bool lloyd_order, kmq_kmeans_prepared **out, kmq_err *err);

/* Each block's bounding box into p->box, and into p->sub_box (unless NULL)
 * its sub-blocks'. */
KMQ_PRIVATE void kmq__fill_boxes(kmq_kmeans_prepared *p);

/* Builds p->tree, p->tree_from and p->tree_at (kmeans_tree.c), on
 * par->threads threads (par NULL: serial; the same result). Returns
 * KMQ_OK or KMQ_E_NOMEM (p then unchanged but for NULL or allocated
 * permutations, which kmq_kmeans_prepared_free frees). */
KMQ_PRIVATE kmq_status kmq__tree_view_new(kmq_kmeans_prepared *p, const kmq_par *par, kmq_err *err);

/* Points [lo, lo + m) of chunk ch: m = KMQ_CHUNK except in the last one. */
static inline size_t kmq__chunk_size(const kmq_kmeans_prepared *p, size_t ch)
{
    size_t lo = ch * KMQ_CHUNK;
    return p->n - lo < KMQ_CHUNK ? p->n - lo : KMQ_CHUNK;
}

#endif
