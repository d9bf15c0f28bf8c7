/* cmd_report.c — not yet written. */
typedef int kmq__stub_cmd_report;
