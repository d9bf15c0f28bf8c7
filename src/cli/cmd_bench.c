/* cmd_bench.c — not yet written. */
typedef int kmq__stub_cmd_bench;
