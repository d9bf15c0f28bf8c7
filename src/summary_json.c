/* summary_json.c — not yet written. */
typedef int kmq__stub_summary_json;
