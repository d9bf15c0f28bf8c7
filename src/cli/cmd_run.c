/* cmd_run.c — not yet written. */
typedef int kmq__stub_cmd_run;
