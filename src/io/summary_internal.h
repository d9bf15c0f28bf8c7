/* summary_internal.h — private glue between the files of the summary module:
 * summary_json.c (jansson set-up, strings, the document builder, dumping,
 * summary.json), summary_run.c (run.json, elbow.csv), summary_read.c
 * (reading both documents back) and summary_fields.c (the readers' typed
 * field access). Nothing here is visible outside libkmq. It includes
 * <jansson.h>, so only the summary module's files may include it.
 */
#ifndef KMQ_SUMMARY_INTERNAL_H
#define KMQ_SUMMARY_INTERNAL_H

#include "internal.h"
#include "kmq/summary.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef KMQ_VERSION_STRING
#error "KMQ_VERSION_STRING must be defined by the build"
#endif

#define KMQ__RUN_SCHEMA 1 /* run.json's "schema" */

/* ---- jansson allocation ------------------------------------------------ */

/* Makes jansson allocate through kmq__alloc / kmq__free (installed once per
 * process) and clears this thread's jansson failure flag. Every public
 * function that touches jansson calls it first. */
KMQ_PRIVATE void kmq__sj_begin(void);

/* Whether an allocation inside jansson failed in this thread since the
 * last kmq__sj_begin. */
KMQ_PRIVATE bool kmq__sj_oom(void);

/* ---- UTF-8 ------------------------------------------------------------- */

/* U+FFFD in UTF-8 (3 bytes, no NUL). */
KMQ_PRIVATE extern const char kmq__sj_replacement[3];

/* Length (1..4) of the valid UTF-8 sequence at p (kmq/utf8.h), which has
 * `left` bytes, or 0 if the byte at p does not start one. */
KMQ_PRIVATE size_t kmq__sj_utf8_len(const unsigned char *p, size_t left);

/* A JSON string for s (null for NULL), invalid bytes replaced by U+FFFD.
 * NULL on allocation failure. */
KMQ_PRIVATE json_t *kmq__sj_str(const char *s);

/* ---- building documents ------------------------------------------------ */

/* Builder state: a failure is either out of memory (st stays KMQ_OK) or a
 * value JSON cannot hold (st = KMQ_E_ARG, message already set). */
typedef struct kmq__sj_builder {
    kmq_err *err;
    kmq_status st;
} kmq__sj_builder;

/* Attaches value (taken over, even on failure; NULL is a failure). */
KMQ_PRIVATE bool kmq__sj_put(json_t *obj, const char *key, json_t *value);
KMQ_PRIVATE bool kmq__sj_push(json_t *arr, json_t *value);

/* Attaches a new container and returns it (borrowed), or NULL. */
KMQ_PRIVATE json_t *kmq__sj_put_child(json_t *obj, const char *key, json_t *child);
KMQ_PRIVATE json_t *kmq__sj_push_child(json_t *arr, json_t *child);

/* A real, or null when x is not finite. */
KMQ_PRIVATE json_t *kmq__sj_real(double x);
KMQ_PRIVATE json_t *kmq__sj_int(long long v);

/* An unsigned integer; above 2^63 - 1 it is refused (b->st = KMQ_E_ARG,
 * the message names `key`) and the result is NULL. */
KMQ_PRIVATE json_t *kmq__sj_u64(kmq__sj_builder *b, const char *key, uint64_t v);
KMQ_PRIVATE bool kmq__sj_put_u64(kmq__sj_builder *b, json_t *obj, const char *key, uint64_t v);

/* A number when known; null for 0 in a failed image's summary (!ok). */
KMQ_PRIVATE bool kmq__sj_put_known(kmq__sj_builder *b, json_t *obj, const char *key, uint64_t v,
                                   bool ok);

/* NULL with a positive count is a caller bug; refuse (KMQ_E_ARG) instead of
 * crashing. */
KMQ_PRIVATE bool kmq__sj_need_array(kmq__sj_builder *b, const void *p, size_t n, const char *what);

/* {"code", "message"}, or NULL on allocation failure. */
KMQ_PRIVATE json_t *kmq__sj_error(const char *code, const char *message);

/* What building `what` ended in: b->st when a value was refused, else
 * KMQ_E_NOMEM when root is NULL or jansson ran out of memory, else KMQ_OK. */
KMQ_PRIVATE kmq_status kmq__sj_built(const kmq__sj_builder *b, const json_t *root, const char *what,
                                     kmq_err *err);

/* ---- dumping ----------------------------------------------------------- */

/* Dumps root (indent 2, key order kept, 17 significant digits) into a new
 * buffer (kmq__free) with a final newline. Returns KMQ_OK or KMQ_E_NOMEM;
 * *text and *len are written only on success. */
KMQ_PRIVATE kmq_status kmq__sj_dump(const json_t *root, const char *what, char **text, size_t *len,
                                    kmq_err *err);

/* Reads and parses the JSON document at `path` (at most 64 MiB; `what`
 * names it in messages) into *root (json_decref). Returns KMQ_OK,
 * KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE, KMQ_E_TOO_LARGE, KMQ_E_DECODE or
 * KMQ_E_NOMEM (summary_read.c). */
KMQ_PRIVATE kmq_status kmq__sj_load_file(const char *path, const char *what, json_t **root,
                                         kmq_err *err);

/* ---- reading fields (summary_fields.c) --------------------------------- */

/* Reader state: the document's name for messages ("summary", "run.json")
 * and where the first refusal goes. */
typedef struct kmq__sj_reader {
    const char *doc;
    kmq_err *err;
} kmq__sj_reader;

/* The full name of a field: "ctx.key", or "key" at the top level. */
typedef struct kmq__sj_field_name {
    char s[160];
} kmq__sj_field_name;

KMQ_PRIVATE kmq__sj_field_name kmq__sj_name_of(const char *ctx, const char *key);

/* Refuses the document: sets KMQ_E_DECODE, "not a kmq schema-1 DOC:
 * PROBLEM", in rd->err and returns it. */
KMQ_PRIVATE kmq_status kmq__sj_refuse(kmq__sj_reader *rd, const char *fmt, ...) KMQ_PRINTF(2, 3);

/* Refuses with "field \"NAME\" PROBLEM". */
KMQ_PRIVATE kmq_status kmq__sj_bad_field(kmq__sj_reader *rd, const char *name, const char *problem);

/* The functions below read field `key` of obj (named "ctx.key" in
 * messages; ctx "" at the top level) into *out and return KMQ_OK, or refuse
 * the document (KMQ_E_DECODE) when the field is missing, of the wrong type
 * or out of range. */

/* Any value (borrowed from obj). */
KMQ_PRIVATE kmq_status kmq__sj_rd_any(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                      const char *key, json_t **out);

/* A value of JSON type `type`, JSON_OBJECT or JSON_ARRAY (borrowed). */
KMQ_PRIVATE kmq_status kmq__sj_rd_typed(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                        const char *key, json_type type, json_t **out);

/* The value v of field `name`: an integer in lo..hi, or null (read as 0)
 * when `nullable`. The message names the value and the range. */
KMQ_PRIVATE kmq_status kmq__sj_check_int(kmq__sj_reader *rd, const json_t *v, const char *name,
                                         json_int_t lo, json_int_t hi, bool nullable,
                                         json_int_t *out);

/* The value v of field `name`: a number >= lo, or null (a value that was
 * not finite when written; read as NAN) when `nullable`. jansson's parser
 * refuses NaN, infinity and literals beyond the double range, so a number
 * read is finite; it is checked all the same, as it costs nothing. */
KMQ_PRIVATE kmq_status kmq__sj_check_real(kmq__sj_reader *rd, const json_t *v, const char *name,
                                          bool nullable, double lo, double *out);

/* A count: 0..2^63 - 1, the most JSON integers hold. */
KMQ_PRIVATE kmq_status kmq__sj_rd_u64(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                      const char *key, bool nullable, uint64_t *out);

/* A k value: lo..hi with hi <= KMQ_MAX_K, so it fits any size_t. */
KMQ_PRIVATE kmq_status kmq__sj_rd_k(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                    const char *key, json_int_t lo, json_int_t hi, size_t *out);

/* Integers in lo..hi (i32) or 0..UINT32_MAX (u32), null read as 0 when
 * `nullable`. */
KMQ_PRIVATE kmq_status kmq__sj_rd_i32(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                      const char *key, int lo, int hi, bool nullable, int *out);
KMQ_PRIVATE kmq_status kmq__sj_rd_u32(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                      const char *key, bool nullable, uint32_t *out);

/* A number >= lo, or null (NAN) when `nullable`, as kmq__sj_check_real. */
KMQ_PRIVATE kmq_status kmq__sj_rd_real(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                       const char *key, bool nullable, double lo, double *out);

KMQ_PRIVATE kmq_status kmq__sj_rd_bool(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                       const char *key, bool *out);

/* A string (new copy in *out, kmq__free) or, when `nullable`, null (*out =
 * NULL). jansson refuses strings that are not UTF-8 or hold U+0000, so the
 * copy is valid UTF-8 and no NUL cuts it short. Also KMQ_E_NOMEM. */
KMQ_PRIVATE kmq_status kmq__sj_rd_str(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                      const char *key, bool nullable, char **out);

/* An array of exactly `n` entries, n taken from a count field. */
KMQ_PRIVATE kmq_status kmq__sj_rd_array_n(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                          const char *key, size_t n, const char *count_name,
                                          json_t **out);

/* An array of at most `max` entries (checked before anything is allocated
 * for them). */
KMQ_PRIVATE kmq_status kmq__sj_rd_array_max(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                            const char *key, size_t max, const char *why,
                                            json_t **out);

#endif
