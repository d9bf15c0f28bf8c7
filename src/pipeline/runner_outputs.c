/* runner_outputs.c — the files kmq keeps in an image folder: which they
 * are, removing them before an image is redone, flushing them to disk
 * before its summary says "done", and clearing temporaries a killed run
 * left (layer L3, private to the runner; runner.c calls these).
 */
#include "kmq/fsx.h"
#include "kmq/outputs.h"

#include "runner_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether `name` is a file kmq writes into an image folder (kmq/outputs.h)
 * or a temporary file of fsx. */
bool kmq__is_image_output(const char *name)
{
    return strncmp(name, KMQ_FSX_TMP_PREFIX, strlen(KMQ_FSX_TMP_PREFIX)) == 0 ||
           kmq_is_image_output(name);
}

/* Removes every file kmq writes into the image folder `dir` (see
 * is_image_output), so that an image redone with another k list ends with
 * exactly the files of its current list, and a failed image with its error
 * summary alone. Anything else (files of other names, sub-folders) is left
 * alone, and a symlinked folder is not entered. Best effort: a file that
 * cannot be removed is overwritten or reported later. */
void kmq__remove_image_outputs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (kmq__is_image_output(e->d_name) &&
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Flushes the files of a finished image (and the folder's entries) to disk
 * before its summary.json says "done": fsx renames without fsync, so after a
 * power cut the durable summary could otherwise name a PNG whose data never
 * reached the disk. Returns KMQ_OK or KMQ_E_WRITE (the image then fails). */
kmq_status kmq__sync_image_outputs(const char *dir, kmq_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return kmq_err_set(err, KMQ_E_WRITE, "cannot open folder %s: %s", dir, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return kmq_err_set(err, KMQ_E_WRITE, "cannot read folder %s: %s", dir, strerror(errno));
    }
    kmq_status st = KMQ_OK;
    struct dirent *e;
    while (st == KMQ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !kmq__is_image_output(e->d_name)) /* not temporaries */
            continue;
        int f = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (f < 0)
            continue; /* not a file of ours after all (a symlink, gone) */
        if (fsync(f) != 0)
            st = kmq_err_set(err, KMQ_E_WRITE, "cannot flush %s/%s to disk: %s", dir, e->d_name,
                             strerror(errno));
        close(f);
    }
    if (st == KMQ_OK && fsync(dirfd(d)) != 0)
        st = kmq_err_set(err, KMQ_E_WRITE, "cannot flush folder %s to disk: %s", dir,
                         strerror(errno));
    closedir(d);
    return st;
}

/* Removes the temporary files a killed run left in `dir` (fsx names them
 * with KMQ_FSX_TMP_PREFIX). Only called on folders this process owns: an
 * image folder it is about to write, or the root under an exclusive lock. */
void kmq__remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t prefix = strlen(KMQ_FSX_TMP_PREFIX);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, KMQ_FSX_TMP_PREFIX, prefix) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}
