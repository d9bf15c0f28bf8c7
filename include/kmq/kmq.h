/* kmq.h — the installed C API of libkmq: k-means over 8-bit RGB colours.
 *
 * This one header is what `cmake --install` and the Debian package ship
 * (pkg-config: kmq). Everything else in include/kmq/ is the library's own,
 * compiled with hidden visibility and not part of the ABI.
 *
 *     kmq_params p;
 *     kmq_params_init(&p, 16);                    // k = 16, defaults for the rest
 *     kmq_result r = {0};
 *     if (kmq_kmeans_rgb(rgb, NULL, n, &p, &r, msg, sizeof msg) == 0)
 *         use(r.centers, r.labels, r.inertia);   // then kmq_result_free(&r)
 *
 * The fit is exact k-means over the given colours (the same engine and the
 * same results as `kmq quantize`): k-means++ or random seeding, Lloyd
 * iterations, `restarts` runs of which the lowest inertia is kept, the same
 * bits for any thread count. Functions return 0 on success; otherwise a
 * non-zero code (1: out of memory, 2: a bad argument) and,
 * where `msg` is not NULL, one sentence in msg[msglen].
 */
#ifndef KMQ_KMQ_H
#define KMQ_KMQ_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KMQ_EXPORT __attribute__((visibility("default")))
#else
#define KMQ_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this header's ABI: the library's soname is libkmq.so.KMQ_ABI. */
#define KMQ_ABI 0

/* Largest k. */
#define KMQ_K_MAX 256

/* Seeding of each run (kmq_params.init). */
#define KMQ_SEED_KMEANSPP 0 /* k-means++, 2 + floor(ln k) local trials (as scikit-learn) */
#define KMQ_SEED_RANDOM   1 /* k distinct colours drawn with probability by weight */

typedef struct kmq_params {
    int k;         /* 1..KMQ_K_MAX clusters; above the distinct colours, that many */
    int restarts;  /* >= 1 runs, the lowest inertia kept (default 10) */
    int max_iter;  /* >= 1 Lloyd iterations per run (default 300) */
    double tol;    /* >= 0 (default 1e-4): a run stops when the sum over centres of the
                      squared move of one iteration is <= tol times the mean over the three
                      channels of the data's weighted variance (scikit-learn's rule) */
    int init;      /* KMQ_SEED_KMEANSPP (default) or KMQ_SEED_RANDOM */
    uint64_t seed; /* every run's random stream derives from (seed, k, run) */
    int threads;   /* 0: all cores (OMP_NUM_THREADS honoured); results never depend on it */
} kmq_params;

/* What kmq_kmeans_rgb returns. Free with kmq_result_free. */
typedef struct kmq_result {
    int k;           /* centres found: min(params.k, distinct colours of weight > 0) */
    double *centers; /* k * 3 doubles (r, g, b) in [0, 255], unrounded */
    uint64_t *sizes; /* k: total weight per centre */
    uint8_t *labels; /* n: nearest centre of each input colour (lowest index on ties) */
    double inertia;  /* sum of weight * squared distance to the nearest centre */
    int iterations;  /* Lloyd iterations of the best run */
    int converged;   /* 1: the best run stopped on tol, 0: on max_iter */
} kmq_result;

/* "0.1.0": the library's version. */
KMQ_EXPORT const char *kmq_version(void);

/* Fills p with the defaults and k. */
KMQ_EXPORT void kmq_params_init(kmq_params *p, int k);

/* Weighted k-means over n colours: rgb holds n interleaved 8-bit (r, g, b)
 * triples; weights (NULL: all 1) n whole-number weights, 0 leaving a colour
 * out of the fit (it is still labelled). A colour may repeat: repeats add
 * their weights. Fills *out (zero it first or free it before reuse). */
KMQ_EXPORT int kmq_kmeans_rgb(const uint8_t *rgb, const uint64_t *weights, size_t n,
                              const kmq_params *p, kmq_result *out, char *msg, size_t msglen);

/* Releases what out holds and zeroes it; NULL is a no-op. */
KMQ_EXPORT void kmq_result_free(kmq_result *out);

/* Nearest of k centres (k * 3 doubles in [0, 255]) for each of n colours into
 * labels[n] (lowest index on ties), and, if inertia is not NULL, the sum of
 * squared distances. `threads` as kmq_params.threads. */
KMQ_EXPORT int kmq_assign_rgb(const uint8_t *rgb, size_t n, const double *centers, int k,
                              int threads, uint8_t *labels, double *inertia, char *msg,
                              size_t msglen);

/* Colour quantization of an RGB image (width * height interleaved 8-bit
 * pixels, rows packed) as `kmq quantize` does it: palette[3 * 256] receives
 * the *ncolors centres rounded to 8 bits, index[width * height] each pixel's
 * palette index, *inertia (if not NULL) the fit's inertia. */
KMQ_EXPORT int kmq_quantize_rgb(const uint8_t *rgb, size_t width, size_t height,
                                const kmq_params *p, uint8_t *palette, int *ncolors, uint8_t *index,
                                double *inertia, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif
