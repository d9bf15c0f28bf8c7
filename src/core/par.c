/* par.c — OpenMP shims and the thread budget (layer L0).
 *
 * The only file besides the drivers that touches omp_*; without _OPENMP every
 * function reports one thread, so the serial build gives identical output.
 */
#include "kmq/par.h"

#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

kmq_par kmq_par_make(int threads)
{
    kmq_par par;
    par.threads = threads > 0 ? threads : kmq_par_max_threads();
    if (par.threads < 1)
        par.threads = 1;
    return par;
}

int kmq_par_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int kmq_par_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int kmq_par_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

int kmq_par_in_parallel(void)
{
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

void kmq_par_limit_nesting(void)
{
#ifdef _OPENMP
    omp_set_max_active_levels(1);
#endif
}

size_t kmq_par_chunks(size_t n)
{
    /* Not (n + KMQ_CHUNK - 1) / KMQ_CHUNK, which wraps for n near SIZE_MAX. */
    return n / KMQ_CHUNK + (n % KMQ_CHUNK != 0);
}

double kmq_par_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
