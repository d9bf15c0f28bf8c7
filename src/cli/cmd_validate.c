/* cmd_validate.c — not yet written. */
typedef int kmq__stub_cmd_validate;
