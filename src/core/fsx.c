/* fsx.c — atomic file writes and safe output paths (layer L0).
 *
 * Plain POSIX plus internal.h and rng.h's byte hash; includes no other kmq
 * module and no third-party header. No parallel regions; every function is
 * safe to call from several threads at once on different files.
 *
 * Atomic write: kmq_fsx_create opens KMQ_FSX_TMP_PREFIX + name + "." +
 * random suffix in the final folder with O_CREAT|O_EXCL|O_NOFOLLOW (a
 * planted file or symlink is never written through); kmq_fsx_commit
 * flushes, optionally fsyncs, closes and renames it onto the final name.
 * rename() within one folder is atomic, so readers see the old file, the new
 * one, or nothing. Every failure after create removes the temporary file.
 *
 * Output tree: kmq_fsx_mkdirs walks the relative part with openat/mkdirat
 * and O_NOFOLLOW, so a symlink planted inside the output tree (pointing
 * anywhere) is refused instead of followed. kmq_fsx_safe_relpath makes any
 * input-derived path harmless before it gets there, and keeps each of its
 * components within NAME_MAX however much encoding lengthened it.
 */
#include "kmq/fsx.h"
#include "kmq/utf8.h"

#include "internal.h"
#include "kmq/rng.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A file name component may hold at most NAME_MAX (255) bytes on the file
 * systems we target; the temporary name keeps its random suffix intact and
 * shortens the copied final name instead. */
#define FSX_NAME_MAX     255
#define FSX_LONG_SUFFIX  18 /* "%~" and 16 hex digits after a cut name */
#define FSX_SUFFIX_HEX   16
#define FSX_CREATE_TRIES 16

/* Splits `path` into a new folder string ("." when there is none) and a
 * pointer to the base name inside `path`. Returns NULL on allocation failure. */
static char *dir_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return kmq__strdup(".");
    }
    *base = slash + 1;
    if (slash == path)
        return kmq__strdup("/");
    size_t len = (size_t)(slash - path);
    char *dir = kmq__alloc(len + 1);
    if (dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return dir;
}

/* 64 random bits for a temporary name. Uniqueness, not secrecy, is what
 * matters (O_EXCL catches collisions), so a clock/pid/counter mix is an
 * acceptable fallback when getrandom is unavailable. */
static uint64_t random_suffix(void)
{
    static atomic_uint_fast64_t counter = 0;
    uint64_t value = 0;
    if (getrandom(&value, sizeof value, GRND_NONBLOCK) == (ssize_t)sizeof value)
        return value;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    value = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 17);
    value ^= atomic_fetch_add(&counter, 1) * UINT64_C(0x9E3779B97F4A7C15);
    return value;
}

kmq_status kmq_fsx_create(const char *final_path, kmq_fsx_file *f, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    char *dir = NULL;
    char *tmp = NULL;
    char *final_copy = NULL;
    const char *base = NULL;
    int fd = -1;
    FILE *fp = NULL;

    dir = dir_of(final_path, &base);
    final_copy = kmq__strdup(final_path);
    if (!dir || !final_copy) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory creating %s", final_path);
        goto done;
    }
    if (base[0] == '\0') {
        status =
            kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: the path names a folder", final_path);
        goto done;
    }
    /* prefix + name + "." + suffix must fit in one name component. */
    size_t keep = strlen(base);
    size_t room = FSX_NAME_MAX - (sizeof KMQ_FSX_TMP_PREFIX - 1) - 1 - FSX_SUFFIX_HEX;
    if (keep > room)
        keep = room;
    int saved_errno = 0;
    for (int attempt = 0; attempt < FSX_CREATE_TRIES && fd < 0; attempt++) {
        kmq__free(tmp);
        tmp = kmq__asprintf("%s/%s%.*s.%016llx", dir, KMQ_FSX_TMP_PREFIX, (int)keep, base,
                            (unsigned long long)random_suffix());
        if (!tmp) {
            status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory creating %s", final_path);
            goto done;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        saved_errno = errno;
        if (fd < 0 && saved_errno != EEXIST)
            break;
    }
    if (fd < 0) {
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot create a file in folder %s: %s", dir,
                             strerror(saved_errno));
        goto done;
    }
    fp = fdopen(fd, "wb");
    if (!fp) {
        saved_errno = errno;
        close(fd);
        unlink(tmp);
        status = kmq_err_set(err, saved_errno == ENOMEM ? KMQ_E_NOMEM : KMQ_E_WRITE,
                             "cannot write %s: %s", final_path, strerror(saved_errno));
        goto done;
    }
    f->fp = fp;
    f->tmp_path = tmp;
    f->final_path = final_copy;
    tmp = NULL;
    final_copy = NULL;

done:
    kmq__free(dir);
    kmq__free(tmp);
    kmq__free(final_copy);
    return status;
}

static void fsx_clear(kmq_fsx_file *f)
{
    kmq__free(f->tmp_path);
    kmq__free(f->final_path);
    f->fp = NULL;
    f->tmp_path = NULL;
    f->final_path = NULL;
}

/* fsyncs the folder holding `path`, so the rename itself survives a crash. */
static int sync_folder(const char *path)
{
    const char *base = NULL;
    char *dir = dir_of(path, &base);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int rc = -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        rc = fsync(fd);
        int saved_errno = errno;
        close(fd);
        errno = saved_errno;
    }
    kmq__free(dir);
    return rc;
}

kmq_status kmq_fsx_commit(kmq_fsx_file *f, bool durable, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    int saved_errno = 0;

    if (!f->fp || !f->tmp_path || !f->final_path) {
        status = kmq_err_set(err, KMQ_E_ARG, "commit of a file that was not created");
        goto done;
    }
    /* ferror catches a short fwrite the caller did not check; fflush and
     * fclose are where a full disk usually shows up (buffered data). */
    int bad = ferror(f->fp);
    if (bad)
        saved_errno = EIO;
    if (!bad && fflush(f->fp) != 0) {
        bad = 1;
        saved_errno = errno;
    }
    if (!bad && durable && fsync(fileno(f->fp)) != 0) {
        bad = 1;
        saved_errno = errno;
    }
    if (fclose(f->fp) != 0 && !bad) {
        bad = 1;
        saved_errno = errno;
    }
    f->fp = NULL;
    if (!bad && rename(f->tmp_path, f->final_path) != 0) {
        bad = 1;
        saved_errno = errno;
    }
    if (bad) {
        unlink(f->tmp_path);
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: %s", f->final_path,
                             strerror(saved_errno));
        goto done;
    }
    if (durable && sync_folder(f->final_path) != 0) {
        /* The file is in place; only its durability is in doubt. */
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot sync the folder of %s: %s", f->final_path,
                             strerror(errno));
        goto done;
    }

done:
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        if (f->tmp_path)
            unlink(f->tmp_path);
    }
    fsx_clear(f);
    return status;
}

void kmq_fsx_abort(kmq_fsx_file *f)
{
    if (f->fp)
        fclose(f->fp);
    if (f->tmp_path)
        unlink(f->tmp_path);
    fsx_clear(f);
}

kmq_status kmq_fsx_write_all(const char *path, const void *data, size_t len, bool durable,
                             kmq_err *err)
{
    kmq_fsx_file f = {0};
    kmq_status status = kmq_fsx_create(path, &f, err);
    if (status != KMQ_OK)
        goto done;
    if (len > 0 && fwrite(data, 1, len, f.fp) != len) {
        int saved_errno = errno;
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot write %s: %s", path, strerror(saved_errno));
        goto done;
    }
    status = kmq_fsx_commit(&f, durable, err);

done:
    kmq_fsx_abort(&f); /* no-op after commit */
    return status;
}

kmq_status kmq_fsx_read_all(const char *path, size_t max_bytes, char **data, size_t *len,
                            kmq_err *err)
{
    kmq_status status = KMQ_OK;
    int fd = -1;
    char *buf = NULL;
    size_t used = 0;
    size_t cap = 0;

    if (max_bytes > SIZE_MAX - 1) /* keeps max_bytes + 1 below from wrapping */
        max_bytes = SIZE_MAX - 1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int saved_errno = errno;
        status = kmq_err_set(err,
                             saved_errno == ENOENT || saved_errno == ENOTDIR ? KMQ_E_NOT_FOUND
                                                                             : KMQ_E_UNREADABLE,
                             "cannot open %s: %s", path, strerror(saved_errno));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        status = kmq_err_set(err, KMQ_E_UNREADABLE, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        status = kmq_err_set(err, KMQ_E_UNREADABLE, "cannot read %s: %s", path,
                             S_ISDIR(st.st_mode) ? "it is a folder" : "not a regular file");
        goto done;
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        status = kmq_err_set(err, KMQ_E_TOO_LARGE, "%s is %llu bytes, the limit is %zu", path,
                             (unsigned long long)st.st_size, max_bytes);
        goto done;
    }
    /* The size is a hint: the file may change while we read, so the loop
     * grows the buffer and enforces max_bytes on what actually arrives. */
    cap = (size_t)st.st_size + 1;
    buf = kmq__alloc(cap);
    if (!buf) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    for (;;) {
        if (used + 1 == cap) {
            if (used >= max_bytes) {
                char probe;
                ssize_t more = read(fd, &probe, 1);
                if (more == 0)
                    break;
                status =
                    kmq_err_set(err, KMQ_E_TOO_LARGE, "%s grew beyond %zu bytes", path, max_bytes);
                goto done;
            }
            size_t grow = cap - 1 < max_bytes - used ? cap : max_bytes - used;
            char *bigger = kmq__realloc(buf, cap + grow, 1);
            if (!bigger) {
                status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory reading %s", path);
                goto done;
            }
            buf = bigger;
            cap += grow;
        }
        ssize_t got = read(fd, buf + used, cap - 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            status =
                kmq_err_set(err, KMQ_E_UNREADABLE, "cannot read %s: %s", path, strerror(errno));
            goto done;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    buf = NULL;

done:
    if (fd >= 0)
        close(fd);
    kmq__free(buf);
    return status;
}

/* mkdir -p for the root, which the user chose: symlinks in it are theirs to
 * have, so plain stat (following links) is the right check here. */
static kmq_status make_root(const char *root, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    char *copy = kmq__strdup(root);
    if (!copy) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory creating %s", root);
        goto done;
    }
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            status =
                kmq_err_set(err, KMQ_E_WRITE, "cannot create folder %s: %s", copy, strerror(errno));
            goto done;
        }
        *p = '/';
    }
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        status =
            kmq_err_set(err, KMQ_E_WRITE, "cannot create folder %s: %s", root, strerror(errno));
        goto done;
    }
    struct stat st;
    if (stat(root, &st) != 0) {
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot use folder %s: %s", root, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot use %s as a folder: it is a file", root);
        goto done;
    }

done:
    kmq__free(copy);
    return status;
}

kmq_status kmq_fsx_mkdirs(const char *root, const char *rel, kmq_err *err)
{
    kmq_status status = KMQ_OK;
    char *copy = NULL;
    int dirfd = -1;

    status = make_root(root, err);
    if (status != KMQ_OK)
        goto done;
    if (!rel || rel[0] == '\0')
        goto done;
    copy = kmq__strdup(rel);
    if (!copy) {
        status = kmq_err_set(err, KMQ_E_NOMEM, "out of memory creating %s/%s", root, rel);
        goto done;
    }
    dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        status = kmq_err_set(err, KMQ_E_WRITE, "cannot open folder %s: %s", root, strerror(errno));
        goto done;
    }
    /* Each component is created or opened relative to its parent's
     * descriptor with O_NOFOLLOW: nothing planted in the tree (a symlink to
     * elsewhere, a file) can redirect where later components go. */
    char *save = NULL;
    for (char *name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            status = kmq_err_set(err, KMQ_E_WRITE, "refusing output path %s/%s: it contains '..'",
                                 root, rel);
            goto done;
        }
        if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST) {
            status = kmq_err_set(err, KMQ_E_WRITE, "cannot create folder %s/%s: %s", root, rel,
                                 strerror(errno));
            goto done;
        }
        int next = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int saved_errno = errno;
            struct stat st;
            if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                status = kmq_err_set(err, KMQ_E_WRITE,
                                     "refusing output folder '%s' in %s/%s: it is a symlink", name,
                                     root, rel);
            else if (saved_errno == ENOTDIR)
                status = kmq_err_set(err, KMQ_E_WRITE,
                                     "refusing output folder '%s' in %s/%s: it is not a folder",
                                     name, root, rel);
            else
                status = kmq_err_set(err, KMQ_E_WRITE, "cannot open folder '%s' in %s/%s: %s", name,
                                     root, rel, strerror(saved_errno));
            goto done;
        }
        close(dirfd);
        dirfd = next;
    }

done:
    if (dirfd >= 0)
        close(dirfd);
    kmq__free(copy);
    return status;
}

/* Length of the valid UTF-8 sequence at s (2..4) whose code point is a
 * printable character we keep, or 0. Rejected: malformed, overlong and
 * surrogate sequences, code points above U+10FFFF, C1 controls and no-break
 * space (U+0080..U+00A0), and the invisible format characters that make a
 * name look like another (soft hyphen, zero-width and bidi controls,
 * line/paragraph separators, BOM, noncharacters). Those are percent-encoded
 * byte by byte instead, so distinct names stay distinct. */
static size_t utf8_keep_len(const unsigned char *s)
{
    uint32_t cp = 0;
    size_t n = kmq_utf8_decode(s, 4, &cp);
    if (n < 2)
        return 0;
    if (cp <= 0xA0 || cp == 0xAD || cp == 0x34F || cp == 0x61C || cp == 0x180E)
        return 0;
    if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
        (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF ||
        (cp >= 0xFFF0 && cp <= 0xFFFB) || (cp & 0xFFFE) == 0xFFFE ||
        (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp >= 0xE0000 && cp <= 0xE007F))
        return 0;
    return n;
}

char *kmq_fsx_safe_relpath(const char *rel)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Worst case every byte becomes %XX; the separators we write replace
     * input bytes one for one. */
    size_t in_len = strlen(rel);
    if (in_len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = kmq__alloc(in_len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)rel;
    while (*p) {
        if (*p == '/') {
            p++;
            continue;
        }
        const unsigned char *end = p;
        while (*end && *end != '/')
            end++;
        size_t comp_len = (size_t)(end - p);
        if (comp_len == 1 && p[0] == '.') { /* "." adds nothing */
            p = end;
            continue;
        }
        if (o > 0)
            out[o++] = '/';
        size_t start = o, cut = o;
        for (const unsigned char *q = p; q < end;) {
            size_t keep = 0;
            if (*q >= 0x20 && *q < 0x7F && *q != '%' && !(q == p && *q == '.'))
                keep = 1;
            else if (*q >= 0x80)
                keep = utf8_keep_len(q);
            if (keep > 0) {
                memcpy(out + o, q, keep);
                o += keep;
                q += keep;
            } else {
                out[o++] = '%';
                out[o++] = hex[*q >> 4];
                out[o++] = hex[*q & 0x0F];
                q++;
            }
            if (o - start <= FSX_NAME_MAX - FSX_LONG_SUFFIX)
                cut = o;
        }
        /* Encoding can triple a name: past NAME_MAX the folder could not be
         * made. Keep what fits and add "%~" and a hash of the whole name,
         * which no encoded name contains ('%' is always followed by two
         * hex digits there), so cut names stay apart from all others. */
        if (o - start > FSX_NAME_MAX) {
            uint64_t h = kmq_hash_finish(kmq_hash_bytes(KMQ_HASH_INIT, p, (size_t)(end - p)));
            o = cut;
            out[o++] = '%';
            out[o++] = '~';
            for (int shift = 60; shift >= 0; shift -= 4)
                out[o++] = "0123456789abcdef"[(h >> shift) & 0x0F];
        }
        p = end;
    }
    out[o] = '\0';
    return out;
}

char *kmq_fsx_join(const char *a, const char *b)
{
    size_t alen = strlen(a);
    while (alen > 1 && a[alen - 1] == '/')
        alen--;
    while (*b == '/')
        b++;
    if (alen == 0)
        return kmq__strdup(b);
    if (*b == '\0')
        return kmq__asprintf("%.*s", (int)alen, a);
    if (alen == 1 && a[0] == '/')
        return kmq__asprintf("/%s", b);
    return kmq__asprintf("%.*s/%s", (int)alen, a, b);
}
