/* hist_internal.h — hist.c's knob for the tests (layer L1, not installed).
 */
#ifndef KMQ_HIST_INTERNAL_H
#define KMQ_HIST_INTERNAL_H

#include "kmq/hist.h"

#include <stddef.h>

/* Pixels the histogram lists before it moves to its 2^24-entry table
 * (default 2^21); only before the first pixel. 0: the table from the
 * start. The tests build both and compare them. */
void kmq__hist_set_list_limit(kmq_hist *h, size_t pixels);

#endif
