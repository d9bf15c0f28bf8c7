/* job_ini.c — reads a job file, an INI file (layer L2).
 *
 * Two phases. Parsing: the whole file is read into memory and taken one
 * line at a time; each line is a section header, a comment, a blank line or
 * `key = value`. The first problem is recorded with its line, and later
 * lines are still read for nothing else. Each key is checked against
 * job.c's table — known, allowed in this section, not given twice (except
 * `input`), value valid — and its raw text is kept with its line. Building:
 * [run] keys fill the kmq_job, then every [job NAME] gets the table
 * defaults, then all of [defaults] (wherever it stands in the file), then
 * its own keys, and kmq_job_spec_check runs the cross-key checks (error at
 * the header line).
 *
 * Why not inih: kmq used Debian's libinih for the `key = value` split only,
 * because everything else needs kmq's own reading anyway (sections without
 * keys, duplicate and unknown sections at their own line, NUL bytes, a BOM,
 * indentation that inih would take for a continuation line) — and it
 * inherited inih's line buffer, fixed at 200 bytes when the library is
 * built, so a long input path could not be written at all. The split is a
 * few lines of C; with it, lines have no length limit.
 *
 * The format, as users see it (README, docs/design.md):
 *   - Leading and trailing blanks are ignored; a UTF-8 BOM is skipped.
 *   - Comments: whole lines starting with ';' or '#'; after a value, ';' or
 *     '#' preceded by a space or tab. A path cannot hold " ;" or " #".
 *   - `key = value` (or `key: value`): the first '=' or ':' splits.
 *   - Names of sections and keys are case-sensitive: [run], [defaults],
 *     [job NAME]; each may appear once (NAME once per file).
 *   - No [job] section: error with where = "FILE" (no line). Missing output:
 *     at the [run] header line, or "FILE" when there is no [run].
 *
 * Serial; no parallel region.
 */
#include "job_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A job file is a few hundred bytes; the cap only bounds the buffer. */
#define MAX_JOB_FILE_BYTES ((size_t)16 << 20)

typedef struct entry {
    const kmq__job_key *key;
    char *value;
    int line;
} entry;

typedef struct section {
    unsigned kind; /* KMQ__SEC_* */
    char *name;    /* job name; NULL for [run] and [defaults] */
    int line;
    entry *entries;
    size_t n, cap;
} section;

enum { CUR_NONE = -1, CUR_BAD = -2 };

typedef struct ini_ctx {
    const char *path;
    const char *base_dir;
    const char *buf;
    size_t len, pos;
    int line;
    section *secs;
    size_t nsecs, cap;
    long cur; /* index into secs, CUR_NONE before any header, CUR_BAD after a bad one */
    int err_line;
    kmq_err err; /* first problem */
} ini_ctx;

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Records the first problem; the line goes into where later. Returns 0 so
 * the handler can `return fail(...)`. */
static int fail(ini_ctx *ctx, kmq_status code, const char *fmt, ...) KMQ_PRINTF(3, 4);

static int fail(ini_ctx *ctx, kmq_status code, const char *fmt, ...)
{
    if (ctx->err.code != KMQ_OK)
        return 0;
    char msg[sizeof ctx->err.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kmq_err_set(&ctx->err, code, "%s", msg);
    ctx->err_line = ctx->line;
    return 0;
}

static const char *section_label(const section *sec, char *buf, size_t size)
{
    if (sec->kind == KMQ__SEC_RUN)
        return "[run]";
    if (sec->kind == KMQ__SEC_DEFAULTS)
        return "[defaults]";
    snprintf(buf, size, "[job %s]", sec->name);
    return buf;
}

static const char *sections_text(unsigned sections)
{
    switch (sections) {
    case KMQ__SEC_RUN:
        return "[run]";
    case KMQ__SEC_JOB:
        return "[job NAME]";
    case KMQ__SEC_DEFAULTS | KMQ__SEC_JOB:
        return "[defaults] or [job NAME]";
    }
    return "another section";
}

/* A header "[...]" seen by the reader: `text` is what stands between the
 * brackets. */
static void on_section(ini_ctx *ctx, const char *text, size_t len)
{
    const char *b = text, *e = text + len;
    while (b < e && blank(*b))
        b++;
    while (e > b && blank(e[-1]))
        e--;
    size_t n = (size_t)(e - b);
    int shown = n > 100 ? 100 : (int)n;
    unsigned kind = 0;
    const char *name = NULL;
    size_t name_len = 0;
    ctx->cur = CUR_BAD;
    if (n == 3 && memcmp(b, "run", 3) == 0) {
        kind = KMQ__SEC_RUN;
    } else if (n == 8 && memcmp(b, "defaults", 8) == 0) {
        kind = KMQ__SEC_DEFAULTS;
    } else if (n >= 3 && memcmp(b, "job", 3) == 0 && (n == 3 || blank(b[3]))) {
        kind = KMQ__SEC_JOB;
        name = b + 3;
        while (name < e && blank(*name))
            name++;
        name_len = (size_t)(e - name);
        if (name_len == 0) {
            fail(ctx, KMQ_E_CONFIG, "section [job] needs a name: [job NAME]");
            return;
        }
    } else {
        fail(ctx, KMQ_E_CONFIG,
             "unknown section [%.*s]; sections are [run], [defaults] and [job NAME]", shown, b);
        return;
    }
    char *owned = NULL;
    if (name) {
        owned = kmq__alloc(name_len + 1);
        if (!owned) {
            fail(ctx, KMQ_E_NOMEM, "out of memory");
            return;
        }
        memcpy(owned, name, name_len);
        owned[name_len] = '\0';
        if (!kmq__job_name_ok(owned)) {
            fail(ctx, KMQ_E_CONFIG,
                 "job name '%.100s' may hold only letters, digits, '-', '_' and '.', must not "
                 "start with '.', and is at most 128 bytes (it names a folder)",
                 owned);
            kmq__free(owned);
            return;
        }
        if (kmq__job_name_reserved(owned)) {
            fail(ctx, KMQ_E_CONFIG,
                 "job name '%.100s' is the name of a run-level file in the output root; choose "
                 "another name",
                 owned);
            kmq__free(owned);
            return;
        }
    }
    for (size_t i = 0; i < ctx->nsecs; i++) {
        const section *old = &ctx->secs[i];
        if (old->kind != kind || (name && strcmp(old->name, owned) != 0))
            continue;
        if (name)
            fail(ctx, KMQ_E_CONFIG, "duplicate job name '%s' (first at line %d)", owned, old->line);
        else
            fail(ctx, KMQ_E_CONFIG, "section [%.*s] appears twice (first at line %d)", shown, b,
                 old->line);
        kmq__free(owned);
        return;
    }
    if (ctx->nsecs == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 8;
        section *grown = kmq__realloc(ctx->secs, cap, sizeof *grown);
        if (!grown) {
            kmq__free(owned);
            fail(ctx, KMQ_E_NOMEM, "out of memory");
            return;
        }
        ctx->secs = grown;
        ctx->cap = cap;
    }
    ctx->secs[ctx->nsecs] = (section){kind, owned, ctx->line, NULL, 0, 0};
    ctx->cur = (long)ctx->nsecs++;
}

/* Cuts an inline comment: ';' or '#' after a blank. */
static void cut_comment(char *value)
{
    for (char *p = value; *p; p++) {
        if ((*p == ';' || *p == '#') && p > value && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    size_t len = strlen(value);
    while (len > 0 && blank(value[len - 1]))
        value[--len] = '\0';
}

/* One `key = value` line of the current section. */
static int on_key(ini_ctx *ctx, const char *name, const char *value)
{
    char label[160];
    if (ctx->err.code != KMQ_OK)
        return 0;
    if (ctx->cur == CUR_NONE)
        return fail(ctx, KMQ_E_CONFIG,
                    "key '%.100s' stands outside any section; put it under [run], [defaults] or "
                    "[job NAME]",
                    name);
    if (ctx->cur < 0)
        return 0;
    section *sec = &ctx->secs[ctx->cur];
    const char *where = section_label(sec, label, sizeof label);
    const kmq__job_key *key = kmq__job_key_find(name);
    if (!key)
        return fail(ctx, KMQ_E_CONFIG, "unknown key '%.100s' in %s", name, where);
    if (!(kmq__job_key_sections(key) & sec->kind))
        return fail(ctx, KMQ_E_CONFIG, "key '%s' is not allowed in %s; it belongs in %s", name,
                    where, sections_text(kmq__job_key_sections(key)));
    if (!kmq__job_key_repeatable(key))
        for (size_t i = 0; i < sec->n; i++)
            if (sec->entries[i].key == key)
                return fail(ctx, KMQ_E_CONFIG, "key '%s' is given twice in %s (first at line %d)",
                            name, where, sec->entries[i].line);

    int ok = 0;
    char *text = kmq__strdup(value);
    kmq_job scratch_job = {0};
    kmq_job_spec scratch_spec = {0};
    kmq_err verr = {0};
    if (!text) {
        fail(ctx, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    cut_comment(text);
    /* Validate now, at this line; the value is applied again when jobs
     * are built, after all of [defaults] is known. */
    scratch_job.base_dir = (char *)ctx->base_dir; /* borrowed; not cleared below */
    if (kmq__job_key_apply(key, text, ctx->line, &scratch_job, &scratch_spec, &verr) != KMQ_OK) {
        fail(ctx, verr.code, "%s", verr.msg);
        goto done;
    }
    if (sec->n == sec->cap) {
        size_t cap = sec->cap ? sec->cap * 2 : 8;
        entry *grown = kmq__realloc(sec->entries, cap, sizeof *grown);
        if (!grown) {
            fail(ctx, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        sec->entries = grown;
        sec->cap = cap;
    }
    sec->entries[sec->n++] = (entry){key, text, ctx->line};
    text = NULL;
    ok = 1;
done:
    kmq__free(text);
    kmq__free(scratch_job.output);
    kmq__job_spec_clear(&scratch_spec);
    return ok;
}

/* Reads the buffer line by line (section headers, comments, keys); the
 * first problem is kept in ctx->err with its line. */
static void parse_lines(ini_ctx *ctx)
{
    while (ctx->pos < ctx->len && ctx->err.code == KMQ_OK) {
        const char *raw = ctx->buf + ctx->pos;
        const char *eol = memchr(raw, '\n', ctx->len - ctx->pos);
        size_t len = eol ? (size_t)(eol - raw) : ctx->len - ctx->pos;
        ctx->pos += len + (eol ? 1 : 0);
        ctx->line++;
        if (ctx->line == 1 && len >= 3 && memcmp(raw, "\xEF\xBB\xBF", 3) == 0) {
            raw += 3;
            len -= 3;
        }
        while (len > 0 && blank(raw[0])) {
            raw++;
            len--;
        }
        while (len > 0 && blank(raw[len - 1]))
            len--;
        if (memchr(raw, '\0', len)) {
            fail(ctx, KMQ_E_CONFIG, "line holds a NUL byte; a job file is text");
            return;
        }
        if (len == 0 || raw[0] == ';' || raw[0] == '#')
            continue;
        if (raw[0] == '[') {
            const char *close = memchr(raw, ']', len);
            if (close)
                on_section(ctx, raw + 1, (size_t)(close - raw - 1));
            else
                fail(ctx, KMQ_E_CONFIG, "section header has no closing ']'");
            continue;
        }
        const char *eq = memchr(raw, '=', len), *colon = memchr(raw, ':', len);
        const char *sep = eq && (!colon || eq < colon) ? eq : colon;
        if (!sep) {
            fail(ctx, KMQ_E_CONFIG, "expected '[section]', 'key = value' or a comment on this line");
            return;
        }
        char *name = kmq__alloc(len + 2); /* name NUL value NUL */
        if (!name) {
            fail(ctx, KMQ_E_NOMEM, "out of memory");
            return;
        }
        size_t nlen = (size_t)(sep - raw), vlen = len - nlen - 1;
        memcpy(name, raw, nlen);
        while (nlen > 0 && blank(name[nlen - 1]))
            nlen--;
        name[nlen] = '\0';
        const char *v = sep + 1;
        while (vlen > 0 && blank(*v)) {
            v++;
            vlen--;
        }
        char *value = name + nlen + 1;
        memcpy(value, v, vlen);
        value[vlen] = '\0';
        on_key(ctx, name, value);
        kmq__free(name);
    }
}

static void ctx_clear(ini_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nsecs; i++) {
        for (size_t j = 0; j < ctx->secs[i].n; j++)
            kmq__free(ctx->secs[i].entries[j].value);
        kmq__free(ctx->secs[i].entries);
        kmq__free(ctx->secs[i].name);
    }
    kmq__free(ctx->secs);
}

/* Reads the whole file; errors carry where = path. */
static kmq_status read_file(const char *path, char **out, size_t *out_len, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *fp = NULL;
    /* O_NONBLOCK so that opening a FIFO nobody writes to does not wait
     * forever (it then reads as empty); cleared again so that a pipe with a
     * writer (`kmq run <(...)`) is read to its end. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
        fp = fdopen(fd, "rb");
    if (!fp) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == ENOENT || e == ENOTDIR)
            st = kmq_err_set(err, KMQ_E_NOT_FOUND, "job file not found");
        else if (e == ENOMEM)
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory opening the job file");
        else
            st = kmq_err_set(err, KMQ_E_UNREADABLE, "cannot open the job file: %s", strerror(e));
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        st = kmq_err_set(err, KMQ_E_UNREADABLE, "the job file is a folder");
        goto done;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_JOB_FILE_BYTES) {
                st = kmq_err_set(err, KMQ_E_CONFIG, "the job file is larger than %zu MiB",
                                 MAX_JOB_FILE_BYTES >> 20);
                goto done;
            }
            size_t grow = cap ? cap * 2 : 4096;
            char *grown = kmq__realloc(buf, grow + 1, 1); /* +1: room for a final NUL */
            if (!grown) {
                st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
                goto done;
            }
            buf = grown;
            cap = grow;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp))
                st = kmq_err_set(err, KMQ_E_UNREADABLE, "cannot read the job file: %s",
                                 strerror(errno));
            break;
        }
    }
done:
    if (fp)
        fclose(fp);
    if (st != KMQ_OK) {
        kmq__free(buf);
        kmq_err_where(err, "%s", path);
        return st;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return KMQ_OK;
}

/* The folder of `path` ("." when it has none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return kmq__strdup(".");
    while (slash > path && slash[-1] == '/')
        slash--;
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = kmq__alloc(len + 1);
    if (dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return dir;
}

/* Applies one section's entries; only out-of-memory can fail here, since
 * every value was validated by the handler. */
static kmq_status apply_entries(const section *sec, const char *path, kmq_job *job,
                                kmq_job_spec *spec, kmq_err *err)
{
    for (size_t i = 0; i < sec->n; i++) {
        const entry *e = &sec->entries[i];
        kmq_status st = kmq__job_key_apply(e->key, e->value, e->line, job, spec, err);
        if (st != KMQ_OK) {
            kmq_err_where(err, "%s:%d", path, e->line);
            return st;
        }
    }
    return KMQ_OK;
}

kmq_status kmq_job_load(const char *path, kmq_job *out, kmq_err *err)
{
    kmq_status st = KMQ_OK;
    kmq_job job = {0};
    char *text = NULL;
    size_t len = 0;
    ini_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cur = CUR_NONE;

    job.path = kmq__strdup(path);
    job.base_dir = dir_of(path);
    if (!job.path || !job.base_dir) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    kmq__job_run_defaults(&job);
    st = read_file(path, &text, &len, err);
    if (st != KMQ_OK)
        goto done;

    ctx.path = path;
    ctx.base_dir = job.base_dir;
    ctx.buf = text;
    ctx.len = len;
    parse_lines(&ctx);
    if (ctx.err.code != KMQ_OK) {
        st = kmq_err_set(err, ctx.err.code, "%s", ctx.err.msg);
        if (st != KMQ_E_NOMEM)
            kmq_err_where(err, "%s:%d", path, ctx.err_line);
        goto done;
    }

    const section *run = NULL, *defaults = NULL;
    size_t njobs = 0;
    for (size_t i = 0; i < ctx.nsecs; i++) {
        if (ctx.secs[i].kind == KMQ__SEC_RUN)
            run = &ctx.secs[i];
        else if (ctx.secs[i].kind == KMQ__SEC_DEFAULTS)
            defaults = &ctx.secs[i];
        else
            njobs++;
    }
    if (run) {
        st = apply_entries(run, path, &job, NULL, err);
        if (st != KMQ_OK)
            goto done;
    }
    if (!job.output) {
        st = kmq_err_set(err, KMQ_E_CONFIG, "no output given; add 'output = FOLDER' to [run]");
        if (run)
            kmq_err_where(err, "%s:%d", path, run->line);
        else
            kmq_err_where(err, "%s", path);
        goto done;
    }
    if (njobs == 0) {
        st = kmq_err_set(err, KMQ_E_CONFIG,
                         "no [job NAME] section; add one with at least one 'input ='");
        kmq_err_where(err, "%s", path);
        goto done;
    }
    job.jobs = kmq__calloc(njobs, sizeof *job.jobs);
    if (!job.jobs) {
        st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ctx.nsecs; i++) {
        const section *sec = &ctx.secs[i];
        if (sec->kind != KMQ__SEC_JOB)
            continue;
        kmq_job_spec *spec = &job.jobs[job.njobs++];
        kmq_job_spec_defaults(spec);
        spec->line = sec->line;
        spec->name = kmq__strdup(sec->name);
        if (!spec->name) {
            st = kmq_err_set(err, KMQ_E_NOMEM, "out of memory");
            goto done;
        }
        if (defaults) {
            st = apply_entries(defaults, path, NULL, spec, err);
            if (st != KMQ_OK)
                goto done;
        }
        st = apply_entries(sec, path, NULL, spec, err);
        if (st != KMQ_OK)
            goto done;
        st = kmq_job_spec_check(spec, err);
        if (st != KMQ_OK) {
            kmq_err_where(err, "%s:%d", path, sec->line);
            goto done;
        }
    }
    *out = job;
    memset(&job, 0, sizeof job);
done:
    ctx_clear(&ctx);
    kmq__free(text);
    kmq_job_clear(&job);
    return st;
}
