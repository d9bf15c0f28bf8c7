/* outputs.h — the names of the files kmq writes (layer L0; plain data).
 *
 * One table for the writer, the clean-up of an image folder on resume, the
 * report's links and the job file's reserved names, so that none of them
 * can drift from the others.
 *
 *   OUT/run.json, OUT/elbow.csv, OUT/index.html,
 *   OUT/report.css                                       run-level files
 *   OUT/.kmq.lock, OUT/.kmq-scratch/                     lock, temporaries
 *   OUT/.kmq-shards/shard-I-of-N.json                    a job array's shard records
 *   IMAGE/summary.json, index.html (its report page), thumb.jpg, preview.jpg,
 *   IMAGE/elbow.svg, restarts.svg
 *   IMAGE/kK.png, kK.labels.png, kK.palette.png, kK.palette.svg, kK.colors.svg
 */
#ifndef KMQ_OUTPUTS_H
#define KMQ_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>

#define KMQ_RUN_JSON    "run.json"
#define KMQ_ELBOW_CSV   "elbow.csv"
#define KMQ_INDEX_HTML  "index.html" /* the overview; also each image's page */
#define KMQ_REPORT_CSS  "report.css" /* the stylesheet of every report page */
#define KMQ_LOCK_FILE   ".kmq.lock"
#define KMQ_SCRATCH_DIR ".kmq-scratch"
#define KMQ_SHARDS_DIR  ".kmq-shards" /* one record per shard of a job array */

#define KMQ_SUMMARY_JSON "summary.json"
#define KMQ_PREVIEW_JPG  "preview.jpg"
#define KMQ_THUMB_JPG    "thumb.jpg"
/* Longest side of thumb.jpg in pixels: the overview's table shows it at up
 * to 100 px, a detail page at up to 200 px. */
#define KMQ_THUMB_SIDE 200
#define KMQ_ELBOW_SVG    "elbow.svg"
#define KMQ_RESTARTS_SVG "restarts.svg"

/* The files of one k in an image folder. */
typedef enum kmq_k_file {
    KMQ_K_INDEXED,     /* kK.png: the indexed PNG */
    KMQ_K_LABELS,      /* kK.labels.png: the label map */
    KMQ_K_SWATCH,      /* kK.palette.png: the palette swatch */
    KMQ_K_PALETTE_SVG, /* kK.palette.svg: the palette, widths by share */
    KMQ_K_COLORS_SVG,  /* kK.colors.svg: a colour sample by cluster */
    KMQ_K_FILES
} kmq_k_file;

/* Enough for any k file name ("k256.palette.png" and longer). */
#define KMQ_K_NAME_MAX 32

/* Writes the name of file `f` of k into out (KMQ_K_NAME_MAX bytes). */
void kmq_k_file_name(size_t k, kmq_k_file f, char out[KMQ_K_NAME_MAX]);

/* Whether `name` is a file kmq writes into an image folder: one of the
 * fixed names above, or a k file for k in 1..999 written without leading
 * zeros. */
bool kmq_is_image_output(const char *name);

/* Whether `name` is one of the run-level files of the output root. */
bool kmq_is_run_file(const char *name);

#endif
