/* fsx.h — atomic file writes and safe output paths (layer L0).
 *
 * Every output file is written to a temporary name in its final folder and
 * renamed into place, so a reader sees either the old file, the new file, or
 * nothing — never a partial one. Temporary names start with KMQ_FSX_TMP_PREFIX
 * so a later run can recognise and remove those a killed run left behind.
 * Plain POSIX; no parallel regions.
 */
#ifndef KMQ_FSX_H
#define KMQ_FSX_H

#include "kmq/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KMQ_FSX_TMP_PREFIX ".kmq-tmp."

/* An output file being written. Plain data: zero-initialise. */
typedef struct kmq_fsx_file {
    FILE *fp;         /* write here between create and commit */
    char *tmp_path;   /* owned */
    char *final_path; /* owned */
} kmq_fsx_file;

/* Opens a new temporary file beside `final_path` (O_EXCL, never through a
 * symlink). Returns KMQ_OK, KMQ_E_WRITE (the message names the folder and
 * the system error) or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_fsx_create(const char *final_path, kmq_fsx_file *f, kmq_err *err);

/* Flushes, closes and renames the temporary file onto its final path. With
 * `durable`, fsyncs the file before the rename and the folder after it.
 * On failure the temporary file is removed. `f` is cleared either way.
 * Returns KMQ_OK or KMQ_E_WRITE (a full disk is reported here). */
KMQ_MUST_CHECK kmq_status kmq_fsx_commit(kmq_fsx_file *f, bool durable, kmq_err *err);

/* Closes and removes the temporary file, clears `f`. Safe on a cleared f. */
void kmq_fsx_abort(kmq_fsx_file *f);

/* Writes `len` bytes to `path` atomically (create + write + commit). */
KMQ_MUST_CHECK kmq_status kmq_fsx_write_all(const char *path, const void *data, size_t len,
                                            bool durable, kmq_err *err);

/* Reads a whole regular file of at most `max_bytes` into a new
 * NUL-terminated buffer (*data, caller frees with free()). Returns KMQ_OK,
 * KMQ_E_NOT_FOUND, KMQ_E_UNREADABLE, KMQ_E_TOO_LARGE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_fsx_read_all(const char *path, size_t max_bytes, char **data,
                                           size_t *len, kmq_err *err);

/* Creates folder `root` (and its parents) if missing, then every component
 * of the relative path `rel` under it, refusing any component that exists
 * as a symlink or non-folder. `rel` must already be safe (see
 * kmq_fsx_safe_relpath). Returns KMQ_OK, KMQ_E_WRITE or KMQ_E_NOMEM. */
KMQ_MUST_CHECK kmq_status kmq_fsx_mkdirs(const char *root, const char *rel, kmq_err *err);

/* Turns an arbitrary relative input path into a relative output path that
 * cannot leave its root: components are kept in order; empty and "."
 * components are dropped; bytes that are not printable ASCII or UTF-8
 * letters, '%', and a leading '.' are percent-encoded ("..": "%2E."), so
 * distinct inputs stay distinct. A component longer than 255 bytes once
 * encoded is cut to 237 bytes (whole characters and escapes) followed by
 * "%~" and 16 hex digits of a 64-bit hash of its bytes. Returns a new
 * string (free()) or NULL on allocation failure. */
char *kmq_fsx_safe_relpath(const char *rel);

/* Joins two path parts with one '/'. Returns a new string or NULL. */
char *kmq_fsx_join(const char *a, const char *b);

#endif
