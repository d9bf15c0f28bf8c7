/* par.h — thread budget, fixed chunk plan and OpenMP shims (layer L0).
 *
 * All omp_* calls of kmq go through here, so the library also builds without
 * OpenMP (one thread, identical results). The thread budget is a value passed
 * to every driver; the library never changes OpenMP's global settings except
 * kmq_par_limit_nesting(), which the CLI calls once.
 */
#ifndef KMQ_PAR_H
#define KMQ_PAR_H

#include <stddef.h>

/* Points (distinct colours) per chunk. Chunk boundaries depend only on this
 * and the data size, never on the thread count: that is what makes results
 * bit-identical for any number of threads. */
#define KMQ_CHUNK ((size_t)4096)

/* Size of one cache line; per-thread slots are padded to it. */
#define KMQ_CACHE_LINE 64

typedef struct kmq_par {
    int threads; /* >= 1 */
} kmq_par;

/* A budget of `threads` threads; 0 or negative means all cores
 * (omp_get_max_threads(), which honours OMP_NUM_THREADS). */
kmq_par kmq_par_make(int threads);

/* omp_get_max_threads(), or 1 without OpenMP. */
int kmq_par_max_threads(void);

/* omp_get_thread_num(), or 0 without OpenMP. */
int kmq_par_thread_num(void);

/* omp_get_num_threads(): threads of the current team (OpenMP may give a
 * region fewer than it asked for), or 1 without OpenMP. */
int kmq_par_team_size(void);

/* Non-zero inside an active parallel region. */
int kmq_par_in_parallel(void);

/* Makes any accidental nested region run with one thread. CLI only. */
void kmq_par_limit_nesting(void);

/* Number of KMQ_CHUNK-sized chunks covering n items. */
size_t kmq_par_chunks(size_t n);

/* Monotonic wall-clock seconds (for timings in summaries). */
double kmq_par_now_s(void);

#endif
