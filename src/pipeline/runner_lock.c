/* runner_lock.c — the lock of an output root (layer L3, part of the runner
 * module): one plain run, or the shards of one N, at a time. */
#include "runner_internal.h"

#include "kmq/fsx.h"
#include "kmq/outputs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define LOCK_NAME KMQ_LOCK_FILE

/* One writer per output root, except that shards of one job may share it:
 * every run holds byte 0 of the lock file (exclusively when it processes
 * everything, shared when it is a shard) and a shard also holds byte 1 + I
 * exclusively. So a second plain run, or a second copy of the same shard,
 * is refused, while the N tasks of a job array work side by side. fcntl
 * record locks are released by the kernel when the process dies, and work
 * on network file systems where flock may not.
 *
 * Shards of different N split the images differently, so they would share
 * images: a shard also holds byte SHARD_COUNT_BASE + N shared, and after
 * taking it looks (F_GETLK) for another process's lock anywhere else in
 * [SHARD_COUNT_BASE, end). Each shard takes its lock before it looks, so of
 * two that start at once the later look sees the earlier lock: both may be
 * refused, never both let in. Shard indices are below 2^32, so the bytes
 * 1 + I stay below the base. */
#define SHARD_COUNT_BASE ((off_t)1 << 33)

_Static_assert(sizeof(off_t) >= 8, "shard lock offsets need a 64-bit off_t");

/* Why F_SETLK failed: another process holds the lock (EAGAIN, EACCES), or
 * the file system gives no fcntl locks at all (ENOLCK: NFS without lockd,
 * ENOSYS, EOPNOTSUPP: Lustre mounted without flock). The latter is not "in
 * use": kmq refuses to run without exclusion rather than risk two writers
 * on one root. */
static kmq_status lock_failed(const char *root, const char *path, int e, kmq_err *err)
{
    if (e == EAGAIN || e == EACCES)
        return kmq_err_set(err, KMQ_E_WRITE,
                           "output folder %s is in use by another kmq run (lock %s is held); "
                           "wait for it to finish or choose another output",
                           root, path);
    return kmq_err_set(err, KMQ_E_WRITE,
                       "cannot lock %s: %s; the file system of %s gives no fcntl record locks "
                       "(on NFS the lock daemon, lockd/rpc.statd, must run; Lustre needs the "
                       "flock mount option), and kmq does not write to an output root it "
                       "cannot lock",
                       path, strerror(e), root);
}

/* Whether another process holds a lock in [start, start + len) (len 0: to
 * the end of any file); its start goes to *other_start. */
static kmq_status lock_held_by_other(int fd, off_t start, off_t len, bool *held, off_t *other_start,
                                     const char *path, kmq_err *err)
{
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, F_GETLK, &probe) != 0)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot test the lock file %s: %s", path,
                           strerror(errno));
    *held = probe.l_type != F_UNLCK;
    *other_start = probe.l_start;
    return KMQ_OK;
}

/* Refuses a shard whose N differs from that of shards already running on
 * this root (see lock_output). */
static kmq_status lock_shard_count(int fd, const char *root, const char *path,
                                   const kmq_run_opts *opts, kmq_err *err)
{
    off_t mine = SHARD_COUNT_BASE + (off_t)opts->shard_count;
    struct flock count = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = mine, .l_len = 1};
    if (fcntl(fd, F_SETLK, &count) != 0)
        return lock_failed(root, path, errno, err);
    bool held = false;
    off_t other = 0;
    kmq_status st =
        lock_held_by_other(fd, SHARD_COUNT_BASE, mine - SHARD_COUNT_BASE, &held, &other, path, err);
    if (st == KMQ_OK && !held)
        st = lock_held_by_other(fd, mine + 1, 0, &held, &other, path, err);
    if (st == KMQ_OK && held)
        st = kmq_err_set(err, KMQ_E_WRITE,
                         "output folder %s is in use by shards of N = %lld (lock %s is held); "
                         "--shard %u/%u cannot share it: use the same N or another output",
                         root, (long long)(other - SHARD_COUNT_BASE), path, opts->shard_index,
                         opts->shard_count);
    return st;
}

kmq_status kmq__lock_output(const char *root, const kmq_run_opts *opts, int *fd_out, kmq_err *err)
{
    char *path = kmq_fsx_join(root, LOCK_NAME);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    bool shard = opts->shard_count > 1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    kmq_status st = KMQ_OK;
    struct flock whole = {
        .l_type = shard ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    struct flock mine = {.l_type = F_WRLCK,
                         .l_whence = SEEK_SET,
                         .l_start = 1 + (off_t)opts->shard_index,
                         .l_len = 1};
    if (fd < 0) {
        st = kmq_err_set(err, KMQ_E_WRITE, "cannot create the lock file %s: %s", path,
                         strerror(errno));
    } else if (fcntl(fd, F_SETLK, &whole) != 0) {
        st = lock_failed(root, path, errno, err);
    } else if (shard) {
        /* The count first: a shard of another N is told so, even when it
         * has the index of one already running. */
        st = lock_shard_count(fd, root, path, opts, err);
        if (st == KMQ_OK && fcntl(fd, F_SETLK, &mine) != 0) {
            st = errno == EAGAIN || errno == EACCES
                     ? kmq_err_set(err, KMQ_E_WRITE,
                                   "output folder %s is in use by another kmq run: shard "
                                   "%u/%u is already running there (lock %s is held)",
                                   root, opts->shard_index, opts->shard_count, path)
                     : lock_failed(root, path, errno, err);
        }
    }
    if (st != KMQ_OK && fd >= 0) {
        close(fd); /* releases every lock this process took on the file */
        fd = -1;
    }
    kmq__free(path);
    *fd_out = fd;
    return st;
}
