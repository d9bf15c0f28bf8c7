/* runner_identity.c — what makes an image the same image (layer L3, part of
 * the runner module): its stat stamp, the hash of its bytes, the config
 * hash that resume compares, the shard an image belongs to, and the decode
 * budget of a job. Reads files; opens no parallel region.
 */
#include "kmq/runner.h"

#include "internal.h"
#include "kmq/rng.h"
#include "runner_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool kmq_runner_in_shard(const char *rel, unsigned index, unsigned count)
{
    if (count <= 1)
        return true;
    uint64_t h = kmq_hash_finish(kmq_hash_bytes(KMQ_HASH_INIT, rel, strlen(rel)));
    return h % count == index;
}

uint64_t kmq_runner_decode_budget(uint64_t setting)
{
    if (setting != KMQ_DECODE_AUTO)
        return setting;
    /* An eighth of the memory, so that a batch beside other work never
     * starts paging for one image, and at most 512 MiB: enough for a
     * progressive JPEG of 89 MP or a WebP of 67 MP, and a few-hundred-byte
     * file that declares more is refused from its header. */
    const uint64_t cap = (uint64_t)512 << 20;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return cap;
    uint64_t eighth = (uint64_t)pages * (uint64_t)page / 8;
    return eighth < cap ? eighth : cap;
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    return kmq_hash_bytes(h, &v, sizeof v);
}

static uint64_t hash_double(uint64_t h, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return hash_u64(h, bits);
}

kmq__file_stamp kmq__stamp_file(const char *path)
{
    kmq__file_stamp f = {0};
    struct stat st;
    if (stat(path, &st) != 0) {
        f.errno_ = errno;
        return f;
    }
    f.ok = true;
    f.regular = S_ISREG(st.st_mode);
    f.size = (uint64_t)st.st_size;
    f.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    f.ino = (uint64_t)st.st_ino;
    f.dev = (uint64_t)st.st_dev;
    return f;
}

static bool same_stamp(const kmq__file_stamp *a, const kmq__file_stamp *b)
{
    return a->ok == b->ok && a->size == b->size && a->mtime_ns == b->mtime_ns && a->ino == b->ino &&
           a->dev == b->dev;
}

/* KMQ_OK when the file at `path` still has the stamp `before` (or when
 * there was none to compare: a missing file fails on its own), else
 * KMQ_E_CHANGED with what differs. */
kmq_status kmq__check_unchanged(const char *path, const kmq__file_stamp *before, kmq_err *err)
{
    if (!before->ok)
        return KMQ_OK;
    kmq__file_stamp now = kmq__stamp_file(path);
    if (same_stamp(before, &now))
        return KMQ_OK;
    char what[256] = "";
    size_t n = 0;
#define WHAT(...)                                                                                  \
    do {                                                                                           \
        if (n < sizeof what)                                                                       \
            n += (size_t)snprintf(what + n, sizeof what - n, __VA_ARGS__);                         \
    } while (0)
    if (!now.ok) {
        WHAT("stat now fails: %s", strerror(now.errno_));
    } else {
        if (now.size != before->size)
            WHAT("size %" PRIu64 " -> %" PRIu64 " bytes", before->size, now.size);
        if (now.mtime_ns != before->mtime_ns)
            WHAT("%smtime %" PRIu64 ".%09" PRIu64 " -> %" PRIu64 ".%09" PRIu64, n ? ", " : "",
                 before->mtime_ns / 1000000000u, before->mtime_ns % 1000000000u,
                 now.mtime_ns / 1000000000u, now.mtime_ns % 1000000000u);
        if (now.ino != before->ino || now.dev != before->dev)
            WHAT("%sinode %" PRIu64 " -> %" PRIu64, n ? ", " : "", before->ino, now.ino);
    }
#undef WHAT
    return kmq_err_set(err, KMQ_E_CHANGED,
                       "the file changed while it was processed (%s); run again", what);
}

/* Bytes hashed from each end of a file for identity = quick. */
#define QUICK_SPAN ((uint64_t)64 * 1024)

/* Feeds bytes [off, off + len) of fd to the hash *h through buf
 * (QUICK_SPAN bytes). false when they cannot all be read (an I/O error, a
 * file that shrank) or the run is cancelled. */
static bool hash_range(int fd, uint64_t off, uint64_t len, uint8_t *buf, const atomic_int *cancel,
                       uint64_t *h)
{
    while (len > 0) {
        if (cancel && atomic_load(cancel) != 0)
            return false;
        size_t want = len < QUICK_SPAN ? (size_t)len : (size_t)QUICK_SPAN;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        *h = kmq_hash_bytes(*h, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return true;
}

/* A hash of the file's bytes into *digest (every byte, or for quick the
 * first and last QUICK_SPAN: the whole file up to twice that); false when
 * the file cannot be read as the regular file `stamp` describes. Only a
 * regular file is opened (a FIFO would block), with O_NONBLOCK in case it
 * has just been swapped for one. */
static bool hash_content(const char *path, const kmq__file_stamp *stamp, kmq_identity mode,
                         const atomic_int *cancel, uint64_t *digest)
{
    if (!stamp->ok || !stamp->regular)
        return false;
    uint8_t *buf = kmq__alloc((size_t)QUICK_SPAN);
    int fd = buf ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_ino == stamp->ino && (uint64_t)st.st_dev == stamp->dev;
    uint64_t size = stamp->size, h = KMQ_HASH_INIT;
    if (ok && (mode == KMQ_IDENTITY_CONTENT || size <= 2 * QUICK_SPAN)) {
        ok = hash_range(fd, 0, size, buf, cancel, &h);
    } else if (ok) {
        ok = hash_range(fd, 0, QUICK_SPAN, buf, cancel, &h) &&
             hash_range(fd, size - QUICK_SPAN, QUICK_SPAN, buf, cancel, &h);
    }
    if (fd >= 0)
        close(fd);
    kmq__free(buf);
    *digest = h;
    return ok;
}

/* The config hash of one image whose file has the stamp `stamp`. Only what
 * changes results goes in (docs/design.md): the image's identity and the fitting
 * keys. Each field is hashed with its length or fixed width so that
 * adjacent fields cannot run into each other. A file that cannot be read
 * hashes with a marker instead of its bytes: never a reason to fail here
 * (opening the image reports it), and never equal to a hash that read them.
 * With identity = content the bytes decide, so mtime and inode stay out. */
void kmq__config_hash(const kmq_job_spec *spec, uint64_t seed, const char *path, const char *rel,
                      const kmq__file_stamp *stamp, const atomic_int *cancel, char out[17])
{
    uint64_t h = KMQ_HASH_INIT;
    h = hash_u64(h, KMQ_SUMMARY_SCHEMA);
    h = hash_u64(h, strlen(rel));
    h = kmq_hash_bytes(h, rel, strlen(rel));
    h = hash_u64(h, (uint64_t)spec->identity);
    h = hash_u64(h, stamp->size);
    if (spec->identity != KMQ_IDENTITY_CONTENT) {
        h = hash_u64(h, stamp->mtime_ns);
        h = hash_u64(h, stamp->ino);
    }
    uint64_t digest = 0;
    bool read = hash_content(path, stamp, spec->identity, cancel, &digest);
    h = hash_u64(h, read);
    if (read)
        h = hash_u64(h, digest);
    h = hash_u64(h, spec->nk);
    for (size_t i = 0; i < spec->nk; i++)
        h = hash_u64(h, spec->k[i]);
    h = hash_u64(h, (uint64_t)spec->restarts);
    h = hash_u64(h, (uint64_t)spec->max_iter);
    h = hash_double(h, spec->tol);
    h = hash_u64(h, (uint64_t)spec->init);
    h = hash_u64(h, seed);
    h = hash_u64(h, spec->sample);
    h = hash_u64(h, spec->save);
    h = kmq_hash_bytes(h, spec->background, 3);
    h = hash_u64(h, spec->max_pixels);
    h = hash_u64(h, spec->max_decode_bytes);
    h = hash_u64(h, spec->formats);
    /* Keys added later go in only when they differ from their default, so
     * that the hashes (and resume) of jobs that do not use them stay.
     * `report` never goes in: it changes what is drawn, not any result. */
    if (spec->dither != KMQ_DITHER_NONE) {
        h = hash_u64(h, 0x6469746865720000u | (uint64_t)spec->dither); /* "dither" */
        h = hash_double(h, spec->dither_strength);
    }
    if (spec->alpha != KMQ_ALPHA_KEEP) { /* keep, the default, keeps old hashes */
        h = hash_u64(h, 0x616c706861u);  /* "alpha" */
        h = hash_u64(h, (uint64_t)spec->alpha);
    }
    if (spec->space != KMQ_SPACE_RGB) {
        h = hash_u64(h, 0x7370616365u); /* "space" */
        h = hash_u64(h, (uint64_t)spec->space);
    }
    if (spec->target_psnr > 0) {          /* k = auto is in the k list: 2..256 */
        h = hash_u64(h, 0x746172676574u); /* "target" */
        h = hash_double(h, spec->target_psnr);
    }
    snprintf(out, 17, "%016" PRIx64, kmq_hash_finish(h));
}

void kmq_runner_config_hash(const kmq_job_spec *spec, uint64_t seed, const char *path,
                            const char *rel, char out[17])
{
    kmq__file_stamp stamp = kmq__stamp_file(path);
    kmq__config_hash(spec, seed, path, rel, &stamp, NULL, out);
}

bool kmq__summary_current(const kmq_summary *s, const char *hash, const kmq_job_spec *spec)
{
    if (!s->hash || strcmp(s->hash, hash) != 0)
        return false;
    return !(spec->alpha == KMQ_ALPHA_KEEP && s->alpha_channel < 0 &&
             (s->bands == 2 || s->bands == 4));
}
