/* cmd_quantize.c — not yet written. */
typedef int kmq__stub_cmd_quantize;
