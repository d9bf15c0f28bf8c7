/* rng.c — per-restart random streams and stable hashes (layer L0).
 *
 * xoshiro256** (Blackman & Vigna) seeded by splitmix64 from a mix of
 * (seed, k, restart); pure functions of their inputs, no global state.
 */
#include "kmq/rng.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

void kmq_rng_init(kmq_rng *rng, uint64_t seed, uint64_t k, uint64_t restart)
{
    /* Each key goes through its own splitmix round so that (seed, k, r) and
     * (seed, r, k) give different streams. */
    uint64_t state = seed;
    uint64_t mixed = splitmix64(&state);
    state = mixed ^ (k * 0xd1b54a32d192ed03ULL);
    mixed = splitmix64(&state);
    state = mixed ^ (restart * 0xaef17502108ef2d9ULL);
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&state);
}

uint64_t kmq_rng_next(kmq_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double kmq_rng_uniform(kmq_rng *rng)
{
    return (double)(kmq_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t kmq_rng_below(kmq_rng *rng, uint64_t n)
{
    /* Rejection sampling: draw until the value falls below the largest
     * multiple of n, so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = kmq_rng_next(rng);
    } while (x >= limit);
    return x % n;
}

uint64_t kmq_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t kmq_hash_finish(uint64_t h)
{
    uint64_t state = h;
    return splitmix64(&state);
}
