/* formats.c — the table of image format names (layer L0).
 *
 * Plain C, no kmq dependencies beyond its header; no state, so any thread
 * may call it.
 */
#include "kmq/formats.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    bool by_default;
} table[] = {
    {"jpeg", true},    {"png", true},       {"tiff", true},    {"webp", true},   {"gif", true},
    {"vips", true},    {"heif", false},     {"jp2k", false},   {"jxl", false},   {"svg", false},
    {"pdf", false},    {"magick", false},   {"fits", false},   {"openexr", false},
    {"mat", false},    {"csv", false},      {"matrix", false}, {"ppm", false},   {"rad", false},
    {"analyze", false}, {"openslide", false}, {"raw", false},
};

#define NFORMATS (sizeof table / sizeof table[0])
_Static_assert(NFORMATS <= 32, "kmq_formats holds 32 formats");

kmq_formats kmq_formats_default(void)
{
    kmq_formats set = 0;
    for (size_t i = 0; i < NFORMATS; i++)
        if (table[i].by_default)
            set |= (kmq_formats)1 << i;
    return set;
}

kmq_formats kmq_formats_all(void)
{
    return (kmq_formats)((1ull << NFORMATS) - 1);
}

kmq_formats kmq_format_bit(const char *name)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (strcmp(table[i].name, name) == 0)
            return (kmq_formats)1 << i;
    return 0;
}

const char *kmq_format_name(size_t i)
{
    return i < NFORMATS ? table[i].name : NULL;
}

size_t kmq_formats_format(kmq_formats set, char *buf, size_t size)
{
    size_t len = 0;
    if (size > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < NFORMATS; i++) {
        if (!(set & ((kmq_formats)1 << i)))
            continue;
        int n = snprintf(len < size ? buf + len : NULL, len < size ? size - len : 0, "%s%s",
                         len ? ", " : "", table[i].name);
        if (n > 0)
            len += (size_t)n;
    }
    return len;
}
