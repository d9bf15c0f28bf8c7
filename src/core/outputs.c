/* outputs.c — the names of the files kmq writes (layer L0; see outputs.h).
 * No state: any thread may call it. */
#include "kmq/outputs.h"

#include <stdio.h>
#include <string.h>

static const char *const k_suffix[KMQ_K_FILES] = {".png", ".labels.png", ".palette.png",
                                                  ".palette.svg", ".colors.svg"};

void kmq_k_file_name(size_t k, kmq_k_file f, char out[KMQ_K_NAME_MAX])
{
    snprintf(out, KMQ_K_NAME_MAX, "k%zu%s", k, k_suffix[f]);
}

bool kmq_is_image_output(const char *name)
{
    static const char *const fixed[] = {KMQ_SUMMARY_JSON, KMQ_PREVIEW_JPG, KMQ_THUMB_JPG,
                                        KMQ_INDEX_HTML,   KMQ_ELBOW_SVG,   KMQ_RESTARTS_SVG};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(name, fixed[i]) == 0)
            return true;
    if (name[0] != 'k' || name[1] < '1' || name[1] > '9')
        return false;
    const char *p = name + 2;
    while (*p >= '0' && *p <= '9' && p - name < 4)
        p++;
    for (size_t i = 0; i < KMQ_K_FILES; i++)
        if (strcmp(p, k_suffix[i]) == 0)
            return true;
    return false;
}

bool kmq_is_run_file(const char *name)
{
    return strcmp(name, KMQ_RUN_JSON) == 0 || strcmp(name, KMQ_ELBOW_CSV) == 0 ||
           strcmp(name, KMQ_INDEX_HTML) == 0 || strcmp(name, KMQ_REPORT_CSS) == 0;
}
