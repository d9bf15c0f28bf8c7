/* alloc_hook.h — test hook for allocation-failure sweeps (layer L0).
 *
 * kmq_alloc_fail_after(n): the (n+1)-th allocation from now fails (n = 0: the
 * next one), and every later one succeeds again. A negative n disables the
 * hook. Process-wide and not thread-safe to change: tests only.
 */
#ifndef KMQ_ALLOC_HOOK_H
#define KMQ_ALLOC_HOOK_H

void kmq_alloc_fail_after(long n);

/* Number of allocations made since the hook was last set. */
long kmq_alloc_count(void);

#endif
