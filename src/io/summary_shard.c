/* summary_shard.c — the record one shard of a job array leaves in the output
 * root (layer L2, part of the summary module: it may include <jansson.h>).
 *
 * OUT/.kmq-shards/shard-I-of-N.json, keys in this order:
 *   schema (1), shard, count, status ("running" | "complete" | "failures" |
 *   "interrupted"), job_file, host, pid, threads, started_utc, ended_utc
 *   (null while running), started_unix, ended_unix (0 while running),
 *   images {total, done, skipped, failed}, resubmit (string | null).
 * Written through fsx, atomically and durably; read back with every field
 * checked, as summaries are.
 */
#include "summary_internal.h"
#include "kmq/fsx.h"

#include <limits.h>
#include <string.h>

#define SHARD_SCHEMA 1

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((st = (expr)) != KMQ_OK)                                                               \
            goto done;                                                                             \
    } while (0)

void kmq_shard_record_clear(kmq_shard_record *r)
{
    if (!r)
        return;
    kmq__free(r->status);
    kmq__free(r->job_file);
    kmq__free(r->host);
    kmq__free(r->started_utc);
    kmq__free(r->ended_utc);
    kmq__free(r->resubmit);
    memset(r, 0, sizeof *r);
}

static bool known_status(const char *s)
{
    return strcmp(s, "running") == 0 || strcmp(s, "complete") == 0 ||
           strcmp(s, "failures") == 0 || strcmp(s, "interrupted") == 0;
}

kmq_status kmq_shard_record_write(const char *path, const kmq_shard_record *r, kmq_err *err)
{
    kmq__sj_builder b = {err, KMQ_OK};
    char *text = NULL;
    size_t len = 0;
    kmq__sj_begin();
    json_t *root = json_object();
    json_t *images = NULL;
    bool ok = root && kmq__sj_put(root, "schema", kmq__sj_int(SHARD_SCHEMA)) &&
              kmq__sj_put_u64(&b, root, "shard", r->index) &&
              kmq__sj_put_u64(&b, root, "count", r->count) &&
              kmq__sj_put(root, "status", kmq__sj_str(r->status)) &&
              kmq__sj_put(root, "job_file", kmq__sj_str(r->job_file)) &&
              kmq__sj_put(root, "host", kmq__sj_str(r->host)) &&
              kmq__sj_put_u64(&b, root, "pid", r->pid) &&
              kmq__sj_put(root, "threads", kmq__sj_int(r->threads)) &&
              kmq__sj_put(root, "started_utc", kmq__sj_str(r->started_utc)) &&
              kmq__sj_put(root, "ended_utc", kmq__sj_str(r->ended_utc)) &&
              kmq__sj_put_u64(&b, root, "started_unix", r->started_unix) &&
              kmq__sj_put_u64(&b, root, "ended_unix", r->ended_unix) &&
              (images = kmq__sj_put_child(root, "images", json_object())) != NULL &&
              kmq__sj_put_u64(&b, images, "total", r->images) &&
              kmq__sj_put_u64(&b, images, "done", r->done) &&
              kmq__sj_put_u64(&b, images, "skipped", r->skipped) &&
              kmq__sj_put_u64(&b, images, "failed", r->failed) &&
              kmq__sj_put(root, "resubmit", kmq__sj_str(r->resubmit));
    kmq_status st = kmq__sj_built(&b, ok ? root : NULL, "shard record", err);
    if (st == KMQ_OK)
        st = kmq__sj_dump(root, "shard record", &text, &len, err);
    if (st == KMQ_OK)
        st = kmq_fsx_write_all(path, text, len, true, err);
    json_decref(root);
    kmq__free(text);
    return st;
}

kmq_status kmq_shard_record_read(const char *path, kmq_shard_record *out, kmq_err *err)
{
    kmq_status st;
    json_t *root = NULL, *v;
    kmq_shard_record r = {0};
    kmq__sj_reader rd = {"shard record", err};
    uint64_t u;

    if ((st = kmq__sj_load_file(path, "shard record", &root, err)) != KMQ_OK)
        goto done;
    if (!json_is_object(root)) {
        st = kmq__sj_refuse(&rd, "the document is not an object");
        goto done;
    }
    TRY(kmq__sj_rd_any(&rd, root, "", "schema", &v));
    if (!json_is_integer(v) || json_integer_value(v) != SHARD_SCHEMA) {
        st = kmq__sj_bad_field(&rd, "schema", "is not 1");
        goto done;
    }
    TRY(kmq__sj_rd_u32(&rd, root, "", "count", false, &r.count));
    TRY(kmq__sj_rd_u32(&rd, root, "", "shard", false, &r.index));
    if (r.count == 0 || r.index >= r.count) {
        st = kmq__sj_bad_field(&rd, "shard", "is not below \"count\"");
        goto done;
    }
    TRY(kmq__sj_rd_str(&rd, root, "", "status", false, &r.status));
    if (!known_status(r.status)) {
        st = kmq__sj_bad_field(&rd, "status", "is not running, complete, failures or interrupted");
        goto done;
    }
    TRY(kmq__sj_rd_str(&rd, root, "", "job_file", false, &r.job_file));
    TRY(kmq__sj_rd_str(&rd, root, "", "host", false, &r.host));
    TRY(kmq__sj_rd_u32(&rd, root, "", "pid", false, &r.pid));
    TRY(kmq__sj_rd_i32(&rd, root, "", "threads", 0, INT_MAX, false, &r.threads));
    TRY(kmq__sj_rd_str(&rd, root, "", "started_utc", false, &r.started_utc));
    TRY(kmq__sj_rd_str(&rd, root, "", "ended_utc", true, &r.ended_utc));
    TRY(kmq__sj_rd_u64(&rd, root, "", "started_unix", false, &r.started_unix));
    TRY(kmq__sj_rd_u64(&rd, root, "", "ended_unix", false, &r.ended_unix));
    TRY(kmq__sj_rd_typed(&rd, root, "", "images", JSON_OBJECT, &v));
    TRY(kmq__sj_rd_u64(&rd, v, "images", "total", false, &r.images));
    TRY(kmq__sj_rd_u64(&rd, v, "images", "done", false, &r.done));
    TRY(kmq__sj_rd_u64(&rd, v, "images", "skipped", false, &r.skipped));
    TRY(kmq__sj_rd_u64(&rd, v, "images", "failed", false, &u));
    r.failed = u;
    TRY(kmq__sj_rd_str(&rd, root, "", "resubmit", true, &r.resubmit));
    *out = r;
    memset(&r, 0, sizeof r);
done:
    if (st == KMQ_E_DECODE)
        kmq_err_where(err, "%s", path);
    kmq_shard_record_clear(&r);
    json_decref(root);
    return st;
}
