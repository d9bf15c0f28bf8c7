/* job_inputs.c — the expansion of a job's inputs into image files
 * (layer L2, part of the job module; see job.h).
 *
 * Input expansion (kmq_job_list_inputs): an existing path is a file or a
 * folder; a path that does not exist but holds a wildcard is a glob(3). A
 * folder (given, or matched by a glob) takes the regular files with an image
 * extension, descending into subfolders when `recursive`; symlinks are
 * followed, and each folder (dev, ino) is entered once per input, so symlink
 * loops end; folders are read in byte order, so results never depend on the
 * order readdir returns. A file named or matched is always taken; a glob
 * match that is a folder is walked like a folder input. A pattern matching
 * nothing, a missing path, or an unreadable folder (also one met deep in a
 * recursive walk: nothing is skipped silently) is KMQ_E_CONFIG at the
 * input's line. `rel` is the path below the input
 * root (the folder; the glob's leading literal folder; a file's base name).
 * Per job, one real file (dev, ino) is listed once (under the smallest rel),
 * and equal rels of different files get "~2", "~3", ... in the order of
 * their full paths. Entries are sorted by job, then rel, byte-wise.
 *
 * Includes only libc and kmq headers. Serial: no parallel region, nothing
 * here is called from one.
 */
#include "job_internal.h"
#include "kmq/outputs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Input expansion                                                     */

/* Hard caps: a job lists at most this many files, and folders nest at most
 * this deep (the walk recurses; loops are cut by the visited set). */
#define MAX_FILES_PER_JOB ((size_t)50 * 1000 * 1000)
#define MAX_DEPTH         256

typedef struct cand {
    char *path;
    char *rel;
    dev_t dev;
    ino_t ino;
    bool outside; /* a link out of its input folder (links = inside) */
} cand;

typedef struct cand_vec {
    cand *v;
    size_t n, cap;
} cand_vec;

/* Open-addressing set of folder identities (dev, ino); cap is a power of 2. */
typedef struct dir_set {
    struct dir_id {
        dev_t dev;
        ino_t ino;
        bool used;
    } * slots;
    size_t n, cap;
} dir_set;

static int cmp_str_ptr(const void *a, const void *b);

/* Context of one job's expansion, for error messages. */
typedef struct expand_ctx {
    const kmq_job *job;
    const kmq_job_input *input;
    cand_vec *out;
    dir_set visited;
    bool have_output;    /* the output root exists: out_dev/out_ino name it */
    dev_t out_dev;
    ino_t out_ino;
    kmq_input_list *skip; /* folders left out as kmq outputs (items[].path) */
    bool follow_links;    /* links = follow */
    const char *root_real; /* the folder input being walked, resolved; NULL: none */
    bool pushed_outside;   /* cand_push marks the next candidate as outside */
} expand_ctx;

/* Whether `path`, a symbolic link met in the walk of the folder input
 * ctx->root_real, leads outside that folder. A link that cannot be resolved
 * (dangling, a loop) leads nowhere and is left to the run to report. Sets
 * *out; returns KMQ_OK or KMQ_E_NOMEM. */
static kmq_status leads_outside(const expand_ctx *ctx, const char *path, bool *out, kmq_err *err)
{
    *out = false;
    struct stat lsb;
    if (ctx->follow_links || !ctx->root_real || lstat(path, &lsb) != 0 || !S_ISLNK(lsb.st_mode))
        return KMQ_OK;
    /* Only a link to a file or a folder: one to a device or a FIFO is
     * refused as "not a regular file" wherever it points. */
    struct stat target;
    if (stat(path, &target) != 0 || !(S_ISREG(target.st_mode) || S_ISDIR(target.st_mode)))
        return KMQ_OK;
    char *real = realpath(path, NULL); /* malloc'ed by libc */
    if (!real)
        return errno == ENOMEM ? kmq_err_set(err, KMQ_E_NOMEM, "out of memory") : KMQ_OK;
    size_t n = strlen(ctx->root_real);
    bool root_is_slash = n == 1 && ctx->root_real[0] == '/';
    *out = !(root_is_slash || (strncmp(real, ctx->root_real, n) == 0 &&
                               (real[n] == '/' || real[n] == '\0')));
    free(real);
    return KMQ_OK;
}

/* Whether `dir`/`name` is a file kmq wrote: ".kmq.lock" by its name, a
 * run.json or summary.json by the "kmq_version" key near its top. Returns
 * 1 or 0, or -1 when out of memory. */
static int kmq_made(const char *dir, const char *name)
{
    char *path = kmq__job_path_join(dir, name);
    if (!path)
        return -1;
    struct stat sb;
    int made = 0;
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (strcmp(name, KMQ_LOCK_FILE) == 0) {
            made = 1;
        } else {
            char head[256];
            /* O_NONBLOCK: a FIFO swapped in since the lstat must not hang. */
            int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
            ssize_t got = fd >= 0 ? read(fd, head, sizeof head - 1) : 0;
            if (fd >= 0)
                close(fd);
            size_t n = got > 0 ? (size_t)got : 0;
            head[n] = '\0';
            made = memchr(head, '\0', n) == NULL && strstr(head, "\"kmq_version\"") != NULL;
        }
    }
    kmq__free(path);
    return made;
}

/* Sets *out to whether folder `dir` (stat'ed as *sb) is kmq's output
 * rather than input: the job's own output root, or any folder holding
 * kmq's lock file, a run.json or an image's summary.json. Without this, an
 * output root inside a recursive input would feed each run's PNGs and
 * previews to the next. Returns KMQ_OK or KMQ_E_NOMEM. */
static kmq_status is_output_folder(const expand_ctx *ctx, const char *dir, const struct stat *sb,
                                   bool *out, kmq_err *err)
{
    *out = ctx->have_output && sb->st_dev == ctx->out_dev && sb->st_ino == ctx->out_ino;
    static const char *const marks[] = {KMQ_LOCK_FILE, KMQ_RUN_JSON, KMQ_SUMMARY_JSON};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0] && !*out; i++) {
        int made = kmq_made(dir, marks[i]);
        if (made < 0)
            return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        *out = made == 1;
    }
    return KMQ_OK;
}

#define OUTPUT_REASON "it holds kmq output, never read as input"

/* Notes a folder left out (for `kmq validate`); the walk goes on without it. */
static kmq_status note_skipped(expand_ctx *ctx, const char *dir, const char *why, kmq_err *err)
{
    kmq_input_list *skip = ctx->skip;
    if (!skip)
        return KMQ_OK;
    kmq_input_file *grown = kmq__realloc(skip->items, skip->n + 1, sizeof *grown);
    if (!grown)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    skip->items = grown;
    char *copy = kmq__strdup(dir);
    char *reason = kmq__strdup(why);
    if (!copy || !reason) {
        kmq__free(copy);
        kmq__free(reason);
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    }
    skip->items[skip->n++] = (kmq_input_file){copy, reason, 0, false};
    return KMQ_OK;
}

static void where_line(const kmq_job *job, int line, kmq_err *err)
{
    if (!job->path || job->path[0] == '\0')
        return;
    if (line > 0)
        kmq_err_where(err, "%s:%d", job->path, line);
    else
        kmq_err_where(err, "%s", job->path);
}

static size_t dir_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)dev * 0x9E3779B97F4A7C15u ^ (uint64_t)ino;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9u;
    h ^= h >> 29;
    return (size_t)h;
}

/* Adds (dev, ino); *fresh says whether it was new. Returns 0, or -1 out of memory. */
static int dir_set_add(dir_set *set, dev_t dev, ino_t ino, bool *fresh)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct dir_id *slots = kmq__calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i].used)
                continue;
            size_t j = dir_hash(set->slots[i].dev, set->slots[i].ino) & (cap - 1);
            while (slots[j].used)
                j = (j + 1) & (cap - 1);
            slots[j] = set->slots[i];
        }
        kmq__free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t j = dir_hash(dev, ino) & (set->cap - 1);
    while (set->slots[j].used) {
        if (set->slots[j].dev == dev && set->slots[j].ino == ino) {
            *fresh = false;
            return 0;
        }
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j].dev = dev;
    set->slots[j].ino = ino;
    set->slots[j].used = true;
    set->n++;
    *fresh = true;
    return 0;
}

static int has_image_ext(const char *name)
{
    static const char *const exts[] = {"jpg", "jpeg", "png", "tif", "tiff", "webp", "gif", "v"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (kmq__ascii_ieq(dot + 1, exts[i]))
            return 1;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Takes ownership of path and rel (freed on failure). */
static kmq_status cand_push(expand_ctx *ctx, char *path, char *rel, dev_t dev, ino_t ino,
                            kmq_err *err)
{
    cand_vec *vec = ctx->out;
    kmq_status st = KMQ_OK;
    if (!path || !rel) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    if (vec->n == vec->cap) {
        if (vec->cap >= MAX_FILES_PER_JOB) {
            st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s' lists more than %zu files",
                             ctx->input->pattern, MAX_FILES_PER_JOB);
            where_line(ctx->job, ctx->input->line, err);
            goto done;
        }
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        cand *grown = kmq__realloc(vec->v, cap, sizeof *grown);
        if (!grown) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        vec->v = grown;
        vec->cap = cap;
    }
    vec->v[vec->n++] = (cand){path, rel, dev, ino, ctx->pushed_outside};
    ctx->pushed_outside = false;
    return KMQ_OK;
done:
    kmq__free(path);
    kmq__free(rel);
    return st;
}

static kmq_status input_error(expand_ctx *ctx, const char *what, const char *path, int errnum,
                              kmq_err *err)
{
    kmq_status st;
    if (strcmp(path, ctx->input->pattern) == 0)
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s': %s: %s", ctx->input->pattern, what,
                         strerror(errnum));
    else
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s': %s '%.200s': %s", ctx->input->pattern,
                         what, path, strerror(errnum));
    where_line(ctx->job, ctx->input->line, err);
    return st;
}

/* Lists folder `dir` (already in the visited set); `rel` is its path below
 * the input root ("" for the root itself). */
/* The names in folder `dir` except "." and "..", sorted byte-wise, so the
 * walk (and which path of a symlinked folder wins) does not depend on the
 * file system's readdir order. The folder is closed before the caller
 * descends, so deep trees do not pile up descriptors. */
static kmq_status read_names(expand_ctx *ctx, const char *dir, char ***out, size_t *out_n,
                             kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d)
        return input_error(ctx, "cannot read folder", dir, errno, err);
    for (;;) {
        errno = 0;
        struct dirent *ent = readdir(d);
        if (!ent) {
            if (errno != 0)
                st = input_error(ctx, "cannot read folder", dir, errno, err);
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t grow = cap ? cap * 2 : 16;
            char **grown = kmq__realloc(names, grow, sizeof *grown);
            if (!grown) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                break;
            }
            names = grown;
            cap = grow;
        }
        if (!(names[n] = kmq__strdup(ent->d_name))) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (st != KMQ_OK) {
        for (size_t i = 0; i < n; i++)
            kmq__free(names[i]);
        kmq__free(names);
        return st;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str_ptr);
    *out = names;
    *out_n = n;
    return KMQ_OK;
}

/* Lists folder `dir` (already in the visited set); `rel` is its path below
 * the input root ("" for the root itself). */
static kmq_status walk_dir(expand_ctx *ctx, const char *dir, const char *rel, bool recursive,
                           int depth, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char **names = NULL;
    size_t n = 0;
    char *child = NULL, *child_rel = NULL;
    if (depth > MAX_DEPTH) {
        st = kmq_err_set(err, KMQ_E_CONFIG,
                         "input '%.200s': folders nest deeper than %d at '%.200s'",
                         ctx->input->pattern, MAX_DEPTH, dir);
        where_line(ctx->job, ctx->input->line, err);
        goto done;
    }
    st = read_names(ctx, dir, &names, &n, err);
    if (st != KMQ_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        child = kmq__job_path_join(dir, name);
        child_rel = rel[0] ? kmq__asprintf("%s/%s", rel, name) : kmq__strdup(name);
        if (!child || !child_rel) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        struct stat sb;
        bool outside = false;
        st = leads_outside(ctx, child, &outside, err);
        if (st != KMQ_OK)
            goto done;
        if (stat(child, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (recursive && outside) {
                st = note_skipped(ctx, child, "a link out of the input folder; links = follow reads it", err);
                if (st != KMQ_OK)
                    goto done;
            } else if (recursive) {
                bool fresh = false;
                if (dir_set_add(&ctx->visited, sb.st_dev, sb.st_ino, &fresh) != 0) {
                    st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                    goto done;
                }
                /* Not fresh: a symlink back into the walk (a loop) or a
                 * second path to a folder walked already. */
                bool output = false;
                if (fresh && (st = is_output_folder(ctx, child, &sb, &output, err)) != KMQ_OK)
                    goto done;
                if (fresh && output) {
                    st = note_skipped(ctx, child, OUTPUT_REASON, err);
                    if (st != KMQ_OK)
                        goto done;
                } else if (fresh) {
                    st = walk_dir(ctx, child, child_rel, recursive, depth + 1, err);
                    if (st != KMQ_OK)
                        goto done;
                }
            }
        } else if (has_image_ext(name)) {
            /* Anything with an image name is listed: a regular file, and
             * also a dangling link, a FIFO, a socket or a device, so that
             * the run reports it (unreadable, not a regular file) instead
             * of skipping it without a word. Only a file gone meanwhile is
             * not. */
            int ok = stat(child, &sb) == 0;
            if (ok || lstat(child, &sb) == 0) {
                ctx->pushed_outside = outside;
                st = cand_push(ctx, child, child_rel, sb.st_dev, sb.st_ino, err);
                child = child_rel = NULL;
                if (st != KMQ_OK)
                    goto done;
            }
        }
        kmq__free(child);
        kmq__free(child_rel);
        child = child_rel = NULL;
    }
done:
    kmq__free(child);
    kmq__free(child_rel);
    for (size_t i = 0; i < n; i++)
        kmq__free(names[i]);
    kmq__free(names);
    return st;
}

/* A folder input (or glob match): enters it once per job. */
static kmq_status take_dir(expand_ctx *ctx, const char *dir, const char *rel, bool recursive,
                           const struct stat *sb, kmq_err *err)
{
    bool fresh = false;
    if (dir_set_add(&ctx->visited, sb->st_dev, sb->st_ino, &fresh) != 0)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    if (!fresh)
        return KMQ_OK; /* entered already by this input (through a symlink) */
    bool output = false;
    kmq_status st = is_output_folder(ctx, dir, sb, &output, err);
    if (st != KMQ_OK)
        return st;
    if (output)
        return note_skipped(ctx, dir, OUTPUT_REASON, err);
    /* Links inside this folder are judged against where it really is. */
    char *real = ctx->follow_links ? NULL : realpath(dir, NULL);
    if (!ctx->follow_links && !real && errno == ENOMEM)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    const char *outer = ctx->root_real;
    ctx->root_real = real;
    st = walk_dir(ctx, dir, rel, recursive, 0, err);
    ctx->root_real = outer;
    free(real);
    return st;
}

static int has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* glob(3) special characters in `s` escaped with '\\', so a base folder
 * named "[2023]" is matched literally. */
static char *glob_escape(const char *s)
{
    size_t extra = 0;
    for (const char *p = s; *p; p++)
        extra += strchr("*?[\\", *p) != NULL;
    char *out = kmq__alloc(strlen(s) + extra + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = s; *p; p++) {
        if (strchr("*?[\\", *p))
            *o++ = '\\';
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* The glob's leading literal folder, unescaped: everything before the last
 * '/' that precedes the first component with a wildcard ("" when that is the
 * first component, "/" for "/x*"). NULL when out of memory. */
static char *glob_root(const char *pattern)
{
    size_t cut = (size_t)-1;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == '\\' && pattern[i + 1]) {
            i++;
            continue;
        }
        if (pattern[i] == '*' || pattern[i] == '?' || pattern[i] == '[')
            break;
        if (pattern[i] == '/')
            cut = i;
    }
    size_t len = cut == (size_t)-1 ? 0 : cut == 0 ? 1 : cut;
    char *root = kmq__alloc(len + 1);
    if (!root)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (pattern[i] == '\\' && i + 1 < len)
            i++;
        root[o++] = pattern[i];
    }
    root[o] = '\0';
    return root;
}

/* `pattern` is the input already joined to the (escaped) base folder. */
static kmq_status take_glob(expand_ctx *ctx, const char *pattern, bool recursive, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char *root = NULL;
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s' matches no file", ctx->input->pattern);
        where_line(ctx->job, ctx->input->line, err);
        goto done;
    }
    if (rc == GLOB_NOSPACE) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory expanding '%.200s'", pattern);
        goto done;
    }
    if (rc != 0) {
        st = input_error(ctx, "cannot expand", pattern, errno ? errno : EIO, err);
        goto done;
    }
    root = glob_root(pattern);
    if (!root) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    size_t rlen = strlen(root);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *match = g.gl_pathv[i];
        const char *rel = base_name(match);
        if (rlen == 0)
            rel = match;
        else if (strcmp(root, "/") == 0 && match[0] == '/')
            rel = match + 1;
        else if (strncmp(match, root, rlen) == 0 && match[rlen] == '/')
            rel = match + rlen + 1;
        struct stat sb;
        if (stat(match, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = take_dir(ctx, match, rel, recursive, &sb, err);
        } else {
            if (stat(match, &sb) != 0 && lstat(match, &sb) != 0)
                continue; /* vanished meanwhile */
            st = cand_push(ctx, kmq__strdup(match), kmq__strdup(rel), sb.st_dev, sb.st_ino, err);
        }
        if (st != KMQ_OK)
            goto done;
    }
done:
    kmq__free(root);
    globfree(&g);
    return st;
}

static kmq_status take_input(expand_ctx *ctx, bool recursive, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char *path = kmq__job_path_join(ctx->job->base_dir, ctx->input->pattern);
    if (!path)
        return kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            st = take_dir(ctx, path, "", recursive, &sb, err);
        } else {
            /* A file named explicitly is always attempted. */
            const char *name = base_name(path);
            st = cand_push(ctx, kmq__strdup(path), kmq__strdup(name), sb.st_dev, sb.st_ino, err);
        }
    } else if ((errno == ENOENT || errno == ENOTDIR) && has_wildcard(ctx->input->pattern)) {
        char *base = ctx->input->pattern[0] == '/'
                         ? NULL
                         : glob_escape(ctx->job->base_dir ? ctx->job->base_dir : ".");
        char *pattern = NULL;
        if (ctx->input->pattern[0] != '/' && !base)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        else if (!(pattern = kmq__job_path_join(base, ctx->input->pattern)))
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        else
            st = take_glob(ctx, pattern, recursive, err);
        kmq__free(pattern);
        kmq__free(base);
    } else if (errno == ENOENT || errno == ENOTDIR) {
        int differs = strcmp(path, ctx->input->pattern) != 0;
        st = kmq_err_set(err, KMQ_E_CONFIG, "input '%.200s' does not exist%s%.200s%s",
                         ctx->input->pattern, differs ? " (looked for '" : "", differs ? path : "",
                         differs ? "')" : "");
        where_line(ctx->job, ctx->input->line, err);
    } else {
        st = input_error(ctx, "cannot access", path, errno, err);
    }
    kmq__free(path);
    return st;
}

static int cmp_identity(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    int c = strcmp(x->rel, y->rel);
    return c ? c : strcmp(x->path, y->path);
}

static int cmp_rel(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    int c = strcmp(x->rel, y->rel);
    return c ? c : strcmp(x->path, y->path);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Dedupes by (dev, ino), then gives equal rels of different files the
 * suffixes ~2, ~3, ... in path order, skipping names some file already has.
 * Leaves vec sorted by rel. */
static kmq_status settle(cand_vec *vec, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char **taken = NULL;
    char **fresh = NULL;
    size_t *target = NULL; /* fresh[f] renames vec->v[target[f]] */
    size_t nfresh = 0;
    if (vec->n == 0)
        return KMQ_OK;
    qsort(vec->v, vec->n, sizeof *vec->v, cmp_identity);
    size_t kept = 0;
    for (size_t i = 0; i < vec->n; i++) {
        if (kept > 0 && vec->v[kept - 1].dev == vec->v[i].dev &&
            vec->v[kept - 1].ino == vec->v[i].ino) {
            kmq__free(vec->v[i].path);
            kmq__free(vec->v[i].rel);
            continue;
        }
        vec->v[kept++] = vec->v[i];
    }
    vec->n = kept;
    qsort(vec->v, vec->n, sizeof *vec->v, cmp_rel);
    size_t dups = 0;
    for (size_t i = 1; i < vec->n; i++)
        dups += strcmp(vec->v[i - 1].rel, vec->v[i].rel) == 0;
    if (dups == 0)
        return KMQ_OK;
    taken = kmq__alloc_array(vec->n, sizeof *taken);
    fresh = kmq__alloc_array(dups, sizeof *fresh);
    target = kmq__alloc_array(dups, sizeof *target);
    if (!taken || !fresh || !target) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < vec->n; i++)
        taken[i] = vec->v[i].rel; /* already sorted */
    /* Renames are collected first and swapped in at the end, so `taken`
     * keeps pointing at the original names meanwhile. */
    size_t group_start = 0;
    for (size_t i = 1; i < vec->n; i++) {
        if (strcmp(vec->v[i].rel, vec->v[group_start].rel) != 0) {
            group_start = i;
            continue;
        }
        for (unsigned long suffix = (unsigned long)(i - group_start) + 1;; suffix++) {
            char *name = kmq__asprintf("%s~%lu", vec->v[i].rel, suffix);
            if (!name) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto done;
            }
            int used = bsearch(&name, taken, vec->n, sizeof *taken, cmp_str_ptr) != NULL;
            for (size_t f = 0; !used && f < nfresh; f++)
                used = strcmp(fresh[f], name) == 0;
            if (!used) {
                target[nfresh] = i;
                fresh[nfresh++] = name;
                break;
            }
            kmq__free(name);
        }
    }
    for (size_t f = 0; f < nfresh; f++) {
        kmq__free(vec->v[target[f]].rel);
        vec->v[target[f]].rel = fresh[f];
    }
    nfresh = 0;
    qsort(vec->v, vec->n, sizeof *vec->v, cmp_rel);
done:
    for (size_t f = 0; f < nfresh; f++)
        kmq__free(fresh[f]);
    kmq__free(fresh);
    kmq__free(target);
    kmq__free(taken);
    return st;
}

void kmq_input_list_clear(kmq_input_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        kmq__free(list->items[i].path);
        kmq__free(list->items[i].rel);
    }
    kmq__free(list->items);
    list->items = NULL;
    list->n = 0;
}

kmq_status kmq_job_list_inputs(const kmq_job *job, kmq_input_list *out, kmq_err *err)
{
    return kmq_job_list_inputs_skipping(job, out, NULL, err);
}

kmq_status kmq_job_list_inputs_skipping(const kmq_job *job, kmq_input_list *out,
                                        kmq_input_list *skipped, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_input_list list = {NULL, 0};
    kmq_input_list skip = {NULL, 0};
    size_t cap = 0;
    cand_vec vec = {NULL, 0, 0};
    expand_ctx ctx = {job, NULL, &vec, {NULL, 0, 0}, false, 0, 0, skipped ? &skip : NULL,
                      false, NULL, false};
    struct stat out_sb;
    if (job->output && stat(job->output, &out_sb) == 0 && S_ISDIR(out_sb.st_mode)) {
        ctx.have_output = true;
        ctx.out_dev = out_sb.st_dev;
        ctx.out_ino = out_sb.st_ino;
    }
    for (size_t j = 0; j < job->njobs; j++) {
        const kmq_job_spec *spec = &job->jobs[j];
        for (size_t i = 0; i < spec->ninputs; i++) {
            /* Folders are entered once per input: enough to end symlink
             * loops, and an input never hides folders from another one
             * (a non-recursive "a" before a recursive parent of "a"). Files
             * reached by several inputs are merged by settle(). */
            ctx.input = &spec->inputs[i];
            ctx.follow_links = spec->links == KMQ_LINKS_FOLLOW;
            st = take_input(&ctx, spec->recursive, err);
            kmq__free(ctx.visited.slots);
            ctx.visited = (dir_set){NULL, 0, 0};
            if (st != KMQ_OK)
                goto done;
        }
        st = settle(&vec, err);
        if (st != KMQ_OK)
            goto done;
        if (vec.n == 0) {
            st = kmq_err_set(err, KMQ_E_CONFIG, "job '%s' matches no image",
                             spec->name ? spec->name : "");
            where_line(job, spec->line, err);
            goto done;
        }
        if (list.n + vec.n > cap) {
            size_t want = list.n + vec.n;
            kmq_input_file *grown = kmq__realloc(list.items, want, sizeof *grown);
            if (!grown) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto done;
            }
            list.items = grown;
            cap = want;
        }
        for (size_t i = 0; i < vec.n; i++)
            list.items[list.n++] = (kmq_input_file){vec.v[i].path, vec.v[i].rel, j,
                                                    vec.v[i].outside};
        vec.n = 0; /* ownership moved to the list */
    }
    *out = list;
    list = (kmq_input_list){NULL, 0};
    if (skipped) {
        *skipped = skip;
        skip = (kmq_input_list){NULL, 0};
    }
done:
    kmq_input_list_clear(&skip);
    for (size_t i = 0; i < vec.n; i++) {
        kmq__free(vec.v[i].path);
        kmq__free(vec.v[i].rel);
    }
    kmq__free(vec.v);
    kmq__free(ctx.visited.slots);
    kmq_input_list_clear(&list);
    return st;
}
