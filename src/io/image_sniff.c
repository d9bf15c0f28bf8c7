/* image_sniff.c — what a file's first bytes say, read without libvips
 * (layer L2, part of the image module): names for formats libvips cannot
 * or may not read, the signatures of the documented formats, and a JPEG's
 * frame header for the decode budget and the length rule (image_vips.c).
 * Every open is non-blocking; nothing is decided from a file name. No
 * state, no parallel region.
 */
#include "image_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads up to `size` bytes from the start of `path` (a regular file, checked
 * already; O_NONBLOCK in case it was swapped for a FIFO since). Returns the
 * count read, 0 on any failure. */
size_t kmq__image_read_head(const char *path, unsigned char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, size);
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

/* A person's name for the format of a file that libvips reads only through
 * ImageMagick, or not at all, from its first bytes; NULL when unknown. Only
 * for messages: nothing is decided by it. */
const char *kmq__image_sniff_name(const char *path)
{
    static const struct {
        size_t at;
        const char *magic;
        size_t len;
        const char *name;
    } known[] = {
        {0, "BM", 2, "BMP"},           {0, "8BPS", 4, "Photoshop PSD"},
        {0, "gimp xcf", 8, "GIMP XCF"}, {0, "\0\0\1\0", 4, "Windows icon (ICO)"},
        {0, "DDS ", 4, "DirectDraw surface (DDS)"}, {0, "qoif", 4, "QOI"},
        {4, "ftyp", 4, "ISO media (HEIF/AVIF)"}, {0, "%!PS", 4, "PostScript"},
        {0, "\x76\x2f\x31\x01", 4, "OpenEXR"}, {0, "SIMPLE  =", 9, "FITS"},
        {0, "MATLAB", 6, "Matlab"},     {0, "%PDF", 4, "PDF"},
    };
    unsigned char head[64] = {0};
    size_t n = kmq__image_read_head(path, head, sizeof head);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (n >= known[i].at + known[i].len &&
            memcmp(head + known[i].at, known[i].magic, known[i].len) == 0)
            return known[i].name;
    bool text = n > 0;
    for (size_t i = 0; i < n && text; i++)
        text = head[i] == '\t' || head[i] == '\n' || head[i] == '\r' || (head[i] >= 0x20 && head[i] < 0x7f);
    return text ? "text (CSV, a matrix or other text)" : NULL;
}

/* Walks the marker segments of a JPEG up to its first SOFn (at most 4096
 * segments, each skipped by its length, so a hostile file costs a few
 * reads). Leaves *out zeroed when it finds none. */
void kmq__jpeg_scan_frame(const char *path, kmq__jpeg_frame *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 || !(f = fdopen(fd, "rb"))) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (fgetc(f) != 0xFF || fgetc(f) != 0xD8)
        goto done;
    for (int segments = 0; segments < 4096; segments++) {
        int c = fgetc(f);
        if (c != 0xFF)
            goto done;
        int marker;
        while ((marker = fgetc(f)) == 0xFF) /* fill bytes */
            ;
        if (marker == EOF || marker == 0xDA || marker == 0xD9)
            goto done; /* a scan or the end before any frame header */
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))
            continue; /* no length */
        int hi = fgetc(f), lo = fgetc(f);
        if (hi == EOF || lo == EOF || ((hi << 8) | lo) < 2)
            goto done;
        long len = (hi << 8) | lo;
        bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                   marker != 0xCC;
        if (sof) {
            out->found = true;
            out->progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE;
            out->arithmetic = marker >= 0xC9;
            goto done;
        }
        if (fseek(f, len - 2, SEEK_CUR) != 0)
            goto done;
    }
done:
    fclose(f);
}

/* The fewest bytes a Huffman-coded JPEG of width x height can have: every
 * 8 x 8 block of a component needs at least one bit (its DC code), and the
 * most subsampled component (4 x 4 at most) still has one block per 32 x 32
 * pixels. A file shorter than this is truncated, or a bomb whose header
 * promises pixels its data cannot hold. Arithmetic coding has no such
 * floor, so it is not checked. */
uint64_t kmq__jpeg_min_bytes(uint64_t width, uint64_t height)
{
    return ((width + 31) / 32) * ((height + 31) / 32) / 8;
}

/* The documented format whose signature starts the file, or NULL. */
const char *kmq__image_signature_format(const char *path)
{
    unsigned char h[12] = {0};
    size_t n = kmq__image_read_head(path, h, sizeof h);
    if (n >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF)
        return "jpeg";
    if (n >= 8 && memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 4 && (memcmp(h, "II*\0", 4) == 0 || memcmp(h, "MM\0*", 4) == 0))
        return "tiff";
    if (n >= 12 && memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WEBP", 4) == 0)
        return "webp";
    if (n >= 4 && memcmp(h, "GIF8", 4) == 0)
        return "gif";
    return NULL;
}
