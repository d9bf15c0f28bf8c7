/* rng.h — counter-based random streams keyed by (seed, k, restart) (layer L0).
 *
 * Each restart of each k draws from its own stream, so results do not depend
 * on which thread runs which restart or in what order. The generator is
 * xoshiro256** seeded through splitmix64 from a mix of the three keys.
 * A stream is a plain value: copy it, never share it between threads.
 */
#ifndef KMQ_RNG_H
#define KMQ_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct kmq_rng {
    uint64_t s[4];
} kmq_rng;

/* Initialises the stream for (seed, k, restart). Distinct keys give
 * independent-looking streams; equal keys give equal streams. */
void kmq_rng_init(kmq_rng *rng, uint64_t seed, uint64_t k, uint64_t restart);

/* Next 64 random bits. */
uint64_t kmq_rng_next(kmq_rng *rng);

/* Uniform double in [0, 1) with 53 random bits. */
double kmq_rng_uniform(kmq_rng *rng);

/* Uniform integer in [0, n), without modulo bias. n must be > 0. */
uint64_t kmq_rng_below(kmq_rng *rng, uint64_t n);

/* A stable 64-bit hash of bytes (FNV-1a, then a splitmix64 finaliser);
 * used for config hashes and shard assignment. `h` chains calls: pass
 * KMQ_HASH_INIT first. */
#define KMQ_HASH_INIT 0xcbf29ce484222325ULL
uint64_t kmq_hash_bytes(uint64_t h, const void *data, size_t len);
uint64_t kmq_hash_finish(uint64_t h);

#endif
