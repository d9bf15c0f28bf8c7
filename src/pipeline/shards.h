/* shards.h — the shards of a job array on one output root (layer L3,
 * private to the pipeline folder; shards.c). */
#ifndef KMQ_SHARDS_H
#define KMQ_SHARDS_H

#include "internal.h"
#include "kmq/job.h"
#include "kmq/runner.h"
#include "kmq/summary.h"

/* A shard's own record: written "running" when it starts
 * (kmq__shard_begin, after it holds its lock) and again when it ends. */
KMQ_PRIVATE kmq_status kmq__shard_begin(const kmq_job *job, const kmq_run_opts *opts,
                                        const char *started_utc, kmq_shard_record *rec,
                                        kmq_err *err);
KMQ_PRIVATE kmq_status kmq__shard_end(const char *root, kmq_shard_record *rec, const char *status,
                                      const kmq_run_totals *totals, kmq_err *err);

/* A plain run (no --shard) covers every image: the records of earlier
 * shards no longer describe the output root, and go. */
KMQ_PRIVATE void kmq__shards_forget(const char *root);

/* The shard of `rel` among `count` (as kmq_runner_in_shard). */
KMQ_PRIVATE uint32_t kmq__shard_of(const char *rel, uint32_t count);

/* What the report gathers about a job array: the records of the newest N,
 * and per shard how many of its images are not done. */
typedef struct kmq__array {
    kmq_array_state *state;
    kmq_shard_record *recs; /* state->count entries; status NULL: no record */
    size_t *undone;         /* per shard */
    kmq_run_shards view;    /* run.json "shards", borrowing from state */
} kmq__array;

/* Reads the records under root into arr (state->count 0 when none).
 * Returns KMQ_OK or KMQ_E_NOMEM; a record that does not read back is
 * skipped (its shard counts as never run). */
KMQ_PRIVATE kmq_status kmq__array_load(const char *root, kmq_array_state *state, kmq__array *arr,
                                       kmq_err *err);

/* Counts one image the job lists now: done (ok or failed for its current
 * configuration) or not. */
KMQ_PRIVATE void kmq__array_count(kmq__array *arr, const char *rel, bool done, bool failed);

/* Decides which shards are missing and why, which run, and the line that
 * re-runs the missing ones; fills arr->view. Returns KMQ_OK or KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__array_finish(const char *root, kmq__array *arr, kmq_err *err);

KMQ_PRIVATE void kmq__array_clear(kmq__array *arr);

#endif
