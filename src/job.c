/* job.c — not yet written. */
typedef int kmq__stub_job;
